"""Which trials a report plots (``tuner.store.plot_sample``): bounded, the best always in, every new
best in, each state in proportion, the same sample every time."""

from __future__ import annotations

import random

import pytest
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from tuner.store import plot_sample


def _trials(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    made = []
    for number in range(n):
        roll = rng.random()
        state = TrialState.COMPLETE if roll < 0.7 else TrialState.PRUNED if roll < 0.95 else TrialState.FAIL
        trial = create_trial(
            state=state,
            value=rng.random() if state == TrialState.COMPLETE else None,
            params={"x": rng.random()},
            distributions={"x": FloatDistribution(0, 1)},
        )
        trial.number = number
        made.append(trial)
    return made


@pytest.mark.parametrize("direction", [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE])
def test_a_sample_is_bounded_keeps_the_best_and_every_new_best_and_each_states_share(direction):
    trials = _trials(3000)
    sign = 1 if direction == StudyDirection.MAXIMIZE else -1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: sign * t.value)
    sample = plot_sample(trials, [direction], keep={best.number, 7}, limit=300)
    numbers = [t.number for t in sample]
    assert len(sample) == 300 and numbers == sorted(set(numbers))
    assert {best.number, 7} <= set(numbers)
    running = -float("inf")
    for trial in complete:  # every trial that set a new best is drawn, so the best-so-far line is exact
        if sign * trial.value > running:
            running = sign * trial.value
            assert trial.number in numbers
    top = sorted(complete, key=lambda t: -sign * t.value)[:30]
    assert {t.number for t in top} <= set(numbers)
    for state in (TrialState.PRUNED, TrialState.FAIL):
        share = sum(t.state == state for t in trials) / len(trials)
        assert sum(t.state == state for t in sample) == pytest.approx(share * 300, abs=max(3, 0.25 * share * 300))
    assert plot_sample(trials, [direction], keep={best.number, 7}, limit=300) == sample


def test_small_studies_and_no_limit_plot_every_trial_and_keep_outnumbers_the_limit():
    trials = _trials(50)
    assert plot_sample(trials, [StudyDirection.MAXIMIZE], keep=set(), limit=50) == trials
    assert plot_sample(trials, [StudyDirection.MAXIMIZE], keep=set(), limit=0) == trials
    front = {t.number for t in trials[:20]}
    sample = plot_sample(trials, [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE], keep=front, limit=10)
    assert {t.number for t in sample} == front  # a Pareto front larger than the limit stays whole


def test_a_sample_spreads_over_the_trial_numbers():
    trials = _trials(2000, seed=1)
    sample = plot_sample(trials, [StudyDirection.MAXIMIZE], keep=set(), limit=200)
    pruned = [t.number for t in sample if t.state == TrialState.PRUNED]
    # Evenly spaced within a state: every tenth of the study has some of them.
    assert {n * 10 // 2000 for n in pruned} == set(range(10))
