"""The final choice: which trial a study hands over, and how sure that choice is.

On small data the gaps between the top configurations are often smaller than the noise of one
k-fold CV, so the trial with the raw maximum is partly the luckiest split (the winner's curse).
:mod:`tuner.racing` re-scores the top candidates on extra CV repeats and stores their scores as
study attributes (:func:`tuner.store.schema.race_key`); this module only reads. It names the
winner by the mean over every repeat, and says how far ahead of the runner-up it is against the
noise of those scores, so ``tuner best``, ``show``, refit, :class:`~tuner.engine.StudyResult` and
``TunerSearchCV.best_params_`` agree without refitting anything.

Uncertainty is the standard error of a mean of CV fold scores, corrected for the overlap of the
training rows between folds (Nadeau & Bengio, 2003): ``var · (1/n + n_test/n_train)``. The plain
``std/√n`` treats folds as independent and would call most leads significant.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

import tuner.store.schema as schema
from tuner.store._spec import spec_dict

# A lead counts as real once it is this many standard errors of the difference.
NOISE_SE = 2.0
# The re-scoring costs at most this share of the study's trials (complete and pruned), counted in
# full CVs: 40 trials allow 10 (candidate, repeat) CVs (5 candidates x 2 repeats), 8 trials 2.
RACE_SHARE = 0.25
# How the candidates' repeats combine into the score that names the winner (bench/robust_choice.py
# measures the alternatives): "mean" of every fold of every repeat, the study's own CV included.
RULES = ("mean", "fresh", "lcb")
DEFAULT_RULE = "mean"


@dataclass(frozen=True)
class Settings:
    """The stored spec's ``final_choice`` (older studies: the defaults)."""

    method: str = "robust"
    candidates: int = 5
    repeats: int = 2


def settings(attrs: dict[str, Any]) -> Settings:
    """The ``final_choice`` a study was run with, read from its stored spec."""
    given = spec_dict(attrs).get("final_choice")
    if isinstance(given, str):
        return Settings(method=given)
    if not isinstance(given, dict):
        return Settings()
    default = Settings()
    return Settings(
        method=str(given.get("method", default.method)),
        candidates=int(given.get("candidates", default.candidates)),
        repeats=int(given.get("repeats", default.repeats)),
    )


def plain_metric(attrs: dict[str, Any]) -> bool:
    """The study optimizes its metric as measured by the built-in CV (no custom code, no penalty):
    its value is the mean of the trial's ``val_scores``, which can be re-scored and compared fold by fold."""
    objective = spec_dict(attrs).get("objective")
    if not isinstance(objective, dict):
        return False
    targets = objective.get("targets") or []
    return objective.get("custom") is None and [t.get("name") for t in targets] == ["metric"]


def corrected_se(values: Sequence[float], folds: int) -> float:
    """Standard error of the mean of CV fold scores (or of paired differences), corrected for
    the training rows the folds share; ``folds`` is k of the k-fold CV they come from."""
    if len(values) < 2:
        return math.nan
    ratio = 1.0 / (folds - 1) if folds > 1 else 0.25
    return math.sqrt(statistics.variance(values) * (1.0 / len(values) + ratio))


@dataclass(frozen=True)
class Choice:
    """The trial a study hands over and its uncertainty.

    ``status``: ``raced`` (candidates re-scored, the winner by the mean over every repeat),
    ``clear`` (no other trial was within noise of the leader: nothing to re-score), ``small`` (too
    few trials to re-score two candidates within :data:`RACE_SHARE` of their cost), ``pending``
    (not re-scored yet: the raw maximum until ``tuner run`` or ``tuner refit`` does it),
    ``skipped`` (cannot be re-scored, ``reason`` says why) or ``off`` (``final_choice: raw_max``).
    """

    trial: FrozenTrial
    method: str
    status: str
    raw_best: int
    mean: float | None = None
    se: float | None = None
    n_scores: int = 0
    repeats: int = 1
    runner_up: int | None = None
    lead: float | None = None
    se_diff: float | None = None
    reason: str = ""

    @property
    def within_noise(self) -> bool | None:
        """The lead over the runner-up is under :data:`NOISE_SE` standard errors (None: unknown)."""
        if self.lead is None or self.se_diff is None or not math.isfinite(self.se_diff):
            return None
        return self.lead <= NOISE_SE * self.se_diff

    def lines(self, metric: str) -> list[str]:
        """The choice in words, for ``tuner best`` and ``show``."""
        out = []
        if self.mean is not None:
            spread = "" if self.se is None or not math.isfinite(self.se) else f" ± {self.se:.2g} (SE)"
            out.append(
                f"  {metric} {self.mean:.5g}{spread} over {self.n_scores} fold scores"
                + (f" ({self.repeats} CV repeats)" if self.repeats > 1 else "")
            )
        if self.runner_up is not None and self.lead is not None:
            verdict = {True: "within noise", False: "beyond noise", None: "noise unknown"}[self.within_noise]
            se = (
                ""
                if self.se_diff is None or not math.isfinite(self.se_diff)
                else f", SE of the difference {self.se_diff:.2g}"
            )
            out.append(f"  lead over #{self.runner_up}: {self.lead:.2g}{se}: {verdict}")
        out.append("  chosen: " + self._how())
        return out

    def _how(self) -> str:
        if self.status == "raced":
            moved = "" if self.trial.number == self.raw_best else f"; the raw maximum was #{self.raw_best}"
            return f"best mean over {self.repeats} CV repeats of the top candidates (final_choice: robust){moved}"
        if self.status == "clear":
            return "the raw maximum, clearly ahead of the other candidates (final_choice: robust)"
        if self.status == "small":
            share = f"{RACE_SHARE:.0%}"
            return f"the raw maximum; too few trials to re-score candidates within {share} of their cost (final_choice: robust)"
        if self.status == "pending":
            return (
                "the raw maximum; the top candidates are not re-scored yet (`tuner run` with the budget spent, or "
                "`tuner refit`, re-scores them)"
            )
        if self.status == "skipped":
            return f"the raw maximum; the candidates cannot be re-scored: {self.reason}"
        return "the raw maximum (final_choice: raw_max)"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe fields for ``tuner best --json``."""
        finite = lambda v: v if v is None or math.isfinite(v) else None  # noqa: E731
        return {
            "trial": self.trial.number,
            "method": self.method,
            "status": self.status,
            "raw_best": self.raw_best,
            "mean": finite(self.mean),
            "se": finite(self.se),
            "n_scores": self.n_scores,
            "repeats": self.repeats,
            "runner_up": self.runner_up,
            "lead": finite(self.lead),
            "se_diff": finite(self.se_diff),
            "within_noise": self.within_noise,
            "reason": self.reason or None,
        }


def ranked(trials: Sequence[FrozenTrial], maximize: bool) -> list[FrozenTrial]:
    """COMPLETE feasible trials with a finite value, best first (ties: the earlier trial)."""
    usable = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.value is not None
        and math.isfinite(t.value)
        and all(v <= 0 for v in t.constraints.values())
    ]
    sign = -1.0 if maximize else 1.0
    return sorted(usable, key=lambda t: (sign * float(t.value), t.number))  # type: ignore[arg-type]


def ran(trials: Sequence[FrozenTrial]) -> int:
    """Trials that ran their CV, in full or until pruned (what the race's cost is measured against)."""
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)


def fold_scores(trial: FrozenTrial) -> list[float] | None:
    scores = trial.user_attrs.get(schema.VAL_SCORES)
    if not isinstance(scores, list) or not scores or not all(isinstance(s, int | float) for s in scores):
        return None
    return [float(s) for s in scores]


def candidates(order: Sequence[FrozenTrial], limit: int, folds: int) -> list[FrozenTrial]:
    """The leader and those of the next ``limit - 1`` trials it does not clearly beat on the study's folds.

    The study's folds are the same for every trial, so the comparison is paired fold by fold.
    Scores are greater-is-better (the study's metric).
    """
    if not order:
        return []
    leader = order[0]
    lead_scores = fold_scores(leader)
    pool = [leader]
    for trial in order[1:limit]:
        scores = fold_scores(trial)
        if lead_scores is None or scores is None or len(scores) != len(lead_scores):
            pool.append(trial)
            continue
        diffs = [a - b for a, b in zip(lead_scores, scores, strict=True)]
        se = corrected_se(diffs, folds)
        if not (statistics.fmean(diffs) > NOISE_SE * se):  # NaN (one fold): keep it
            pool.append(trial)
    return pool


def race_plan(
    order: Sequence[FrozenTrial], n_trials: int, config: Settings, folds: int
) -> tuple[list[FrozenTrial], int]:
    """The candidates to re-score and on how many extra repeats, within :data:`RACE_SHARE` of the
    study's ``n_trials`` (complete and pruned). Short of that, fewer candidates first (the best raw
    values stay), then fewer repeats: bench/robust_choice.py found a second repeat worth more than
    the 4th and 5th candidates. Fewer than two candidates: nothing to race."""
    pool = candidates(order, config.candidates, folds)
    allowed = math.floor(RACE_SHARE * n_trials)
    repeats = config.repeats
    while repeats > 1 and allowed // repeats < 2:
        repeats -= 1
    pool = pool[: allowed // repeats]
    return (pool, repeats) if len(pool) >= 2 else ([], 0)


def race_scores(attrs: dict[str, Any], number: int, repeats: int) -> list[list[float]] | None:
    """Trial ``number``'s fold scores on extra repeats 1..``repeats``, or None while one is missing."""
    stored = attrs.get(schema.race_key(number))
    if not isinstance(stored, dict):
        return None
    out = []
    for repeat in range(1, repeats + 1):
        scores = stored.get(str(repeat))
        if not isinstance(scores, list) or not scores:
            return None
        out.append([float(s) if s is not None else math.nan for s in scores])
    return out


def study_folds(attrs: dict[str, Any]) -> int:
    """k of the study's k-fold CV (for the overlap correction)."""
    cv = spec_dict(attrs).get("cv") or {}
    folds = cv.get("folds") if isinstance(cv, dict) else None
    return int(folds) if isinstance(folds, int) and folds > 1 else 5


def choose(
    trials: Sequence[FrozenTrial], attrs: dict[str, Any], *, maximize: bool, rule: str = DEFAULT_RULE
) -> Choice | None:
    """The final choice of a single-objective study from its trials (complete and pruned) and study
    attributes, or None before the first complete feasible trial with a finite value. Reads only;
    fits nothing."""
    order = ranked(trials, maximize)
    if not order:
        return None
    raw = order[0]
    config = settings(attrs)
    # Fold scores are the value only when the objective is the plain metric.
    folds = study_folds(attrs) if plain_metric(attrs) else 0
    if config.method == "raw_max":
        return _plain(raw, order, "off", folds, config.method)
    if schema.RACE_SKIPPED in attrs or not folds:
        reason = str(attrs.get(schema.RACE_SKIPPED) or "the objective is not the built-in CV's metric")
        return _plain(raw, order, "skipped", folds, config.method, reason=reason)
    if len(candidates(order, config.candidates, folds)) == 1:
        return _plain(raw, order, "clear", folds, config.method)
    pool, repeats = race_plan(order, ran(trials), config, folds)
    if not pool:
        return _plain(raw, order, "small", folds, config.method)
    scores: dict[int, list[list[float]]] = {}
    for trial in pool:
        extra = race_scores(attrs, trial.number, repeats)
        own = fold_scores(trial)
        if extra is None or own is None:
            return _plain(raw, order, "pending", folds, config.method)
        scores[trial.number] = [own, *extra]
    by_score = sorted(pool, key=lambda t: (-_estimate(scores[t.number], rule, folds), order.index(t)))
    winner, runner = by_score[0], by_score[1]
    everything = [s for repeat in scores[winner.number] for s in repeat]
    diffs = [
        a - b
        for mine, theirs in zip(scores[winner.number], scores[runner.number], strict=True)
        for a, b in zip(mine, theirs, strict=True)
    ]
    return Choice(
        trial=winner,
        method=config.method,
        status="raced",
        raw_best=raw.number,
        mean=statistics.fmean(everything),
        se=corrected_se(everything, folds),
        n_scores=len(everything),
        repeats=1 + repeats,
        runner_up=runner.number,
        lead=statistics.fmean(diffs),
        se_diff=corrected_se(diffs, folds),
    )


def _estimate(repeats: list[list[float]], rule: str, folds: int) -> float:
    every = [s for repeat in repeats for s in repeat]
    if rule == "fresh":  # the extra repeats only: free of the selection on the study's CV
        return statistics.fmean(s for repeat in repeats[1:] for s in repeat)
    if rule == "lcb":  # a lower confidence bound: the mean less one corrected standard error
        return statistics.fmean(every) - corrected_se(every, folds)
    return statistics.fmean(every)


def _plain(
    raw: FrozenTrial, order: list[FrozenTrial], status: str, folds: int, method: str, *, reason: str = ""
) -> Choice:
    """The raw maximum, with its uncertainty on the study's own folds when they are its value
    (``folds`` is 0 otherwise)."""
    runner = order[1] if len(order) > 1 else None
    own = fold_scores(raw) if folds else None
    theirs = fold_scores(runner) if runner is not None else None
    if own is None:
        lead = None if runner is None else abs(float(raw.value) - float(runner.value))  # type: ignore[arg-type]
        return Choice(
            trial=raw,
            method=method,
            status=status,
            raw_best=raw.number,
            mean=raw.value,
            runner_up=None if runner is None else runner.number,
            lead=lead,
            reason=reason,
        )
    paired = theirs is not None and len(theirs) == len(own)
    diffs = [a - b for a, b in zip(own, theirs, strict=True)] if paired and theirs is not None else []
    return Choice(
        trial=raw,
        method=method,
        status=status,
        raw_best=raw.number,
        mean=statistics.fmean(own),
        se=corrected_se(own, folds),
        n_scores=len(own),
        runner_up=None if runner is None else runner.number,
        lead=statistics.fmean(diffs) if diffs else None,
        se_diff=corrected_se(diffs, folds) if diffs else None,
        reason=reason,
    )
