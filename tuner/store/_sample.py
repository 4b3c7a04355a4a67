"""Which trials a report plots when a study has more than a chart can show.

Ten thousand trials make charts slow to draw, pages of hundreds of megabytes and a browser that
stalls, and say no more than a thousand chosen well. A sample keeps what a reader looks for:

- the best trial, or the Pareto front (``keep``);
- every trial that set a new best when it finished, so the optimization history's best-so-far
  line is the study's own;
- the top trials by the (first) objective, a tenth of the sample;
- the rest evenly spread over each state (complete, pruned, failed) in proportion to its share,
  and within a state evenly over the trial numbers, so the progress of the search shows.

No randomness: the same study gives the same sample, so a report drawn twice is the same page.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

# The default of `tuner report --max-trials`: enough for every chart to show the study's shape.
PLOT_TRIALS = 1000


def plot_sample(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection], *, keep: Collection[int], limit: int
) -> list[FrozenTrial]:
    """At most ``limit`` of ``trials`` (more only when ``keep`` alone is more), in trial order.

    Args:
        trials: The study's trials (numbers, states and values are enough).
        directions: The study's directions.
        keep: Numbers of trials that are always in the sample (the best trial, the Pareto front).
        limit: The most trials to return; 0 or fewer, or at least ``len(trials)``, returns every trial.
    """
    if limit <= 0 or len(trials) <= limit:
        return list(trials)
    chosen = {t.number for t in trials if t.number in keep}
    scored = [t for t in trials if t.state == TrialState.COMPLETE and t.values and math.isfinite(t.values[0])]
    sign = -1.0 if directions[0] == StudyDirection.MAXIMIZE else 1.0
    for number in _record_setters(scored, sign):
        if len(chosen) >= limit:
            break
        chosen.add(number)
    ranked = sorted(scored, key=lambda t: (sign * t.values[0], t.number))
    for trial in ranked[: max(1, limit // 10)]:
        if len(chosen) >= limit:
            break
        chosen.add(trial.number)
    rest = [t for t in trials if t.number not in chosen]
    for trial in _spread(rest, limit - len(chosen)):
        chosen.add(trial.number)
    return [t for t in trials if t.number in chosen]


def _record_setters(scored: Sequence[FrozenTrial], sign: float) -> list[int]:
    """Trials whose value beat every value before them, in the order they finished (Optuna's
    history chart draws the best-so-far line by trial number)."""
    best = math.inf
    found = []
    for trial in sorted(scored, key=lambda t: t.number):
        value = sign * trial.values[0]
        if value < best:
            best = value
            found.append(trial.number)
    return found


def _spread(trials: Sequence[FrozenTrial], budget: int) -> list[FrozenTrial]:
    """``budget`` of ``trials``: each state's share in proportion to its size (largest remainders),
    at least one per state while the budget lasts, evenly spaced by trial number within a state."""
    if budget <= 0 or not trials:
        return []
    if len(trials) <= budget:
        return list(trials)
    by_state: dict[TrialState, list[FrozenTrial]] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        by_state.setdefault(trial.state, []).append(trial)
    groups = sorted(by_state.values(), key=len)
    shares = [budget * len(g) / len(trials) for g in groups]
    quota = [min(len(g), max(1, math.floor(s))) for g, s in zip(groups, shares, strict=True)]
    # Hand out what rounding left (or take back what the minimum of one added), largest remainder first.
    order = sorted(range(len(groups)), key=lambda i: shares[i] - math.floor(shares[i]), reverse=True)
    while sum(quota) < budget:
        grew = False
        for i in order:
            if sum(quota) < budget and quota[i] < len(groups[i]):
                quota[i] += 1
                grew = True
        if not grew:
            break
    for i in sorted(range(len(groups)), key=lambda i: -quota[i]):
        while sum(quota) > budget and quota[i] > 1:
            quota[i] -= 1
    picked = []
    for group, count in zip(groups, quota, strict=True):
        step = len(group) / count if count else 0
        picked += [group[min(len(group) - 1, int((k + 0.5) * step))] for k in range(count)]
    return picked[:budget]
