"""Pruners and fidelity levels (``tuner/search/_pruners.py``, ``_fidelity.py``), fold-level and multi-fidelity
pruning: a clearly bad configuration stops after the first folds (or the lowest fidelity), a good one runs to
the end; pruner options from the spec."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.base import BaseEstimator, ClassifierMixin
from support import sqlite_url

import tuner
from tuner.errors import SpecError
from tuner.models import ModelEntry, cat
from tuner.models import _registry as registry
from tuner.search import build_pruner, levels
from tuner.spec import PrunerSpec


class GoodOrBad(ClassifierMixin, BaseEstimator):
    """A real model for "good", a coin flip for "bad": the gap is far beyond fold-to-fold noise."""

    def __init__(self, quality: str = "good") -> None:
        self.quality = quality

    def fit(self, X: object, y: object) -> GoodOrBad:
        from sklearn.dummy import DummyClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        good = make_pipeline(StandardScaler(), LogisticRegression())
        self.model_ = good if self.quality == "good" else DummyClassifier(strategy="uniform", random_state=0)
        self.model_.fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X: object) -> object:
        return self.model_.predict(X)


@pytest.fixture(autouse=True)
def _catalog_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registered for this test only, so catalog-wide tests elsewhere never see it.
    entry = ModelEntry(
        name="good_or_bad",
        description="test model",
        classifier=GoodOrBad,
        classifier_space={"quality": cat("good", "bad")},
    )
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)


def _run(write_spec, changes: dict, qualities: list[str]) -> list[optuna.trial.FrozenTrial]:
    """Run the study with these qualities enqueued in this order; returns its trials."""
    spec = write_spec({"model": "good_or_bad", "metric": "accuracy", **changes})
    url = sqlite_url(Path(spec).parent)
    study = optuna.create_study(study_name="tiny", storage=url, direction="maximize")
    for quality in qualities:
        study.enqueue_trial({"quality": quality})
    tuner.run_study(spec, n_trials=len(qualities))
    return optuna.load_study(study_name="tiny", storage=url).get_trials()


@pytest.mark.parametrize("pruner", ["median", "percentile"])
def test_a_bad_configuration_is_pruned_after_the_first_fold_and_a_good_one_is_not(write_spec, pruner):
    trials = _run(write_spec, {"pruner": pruner, "cv": {"folds": 4}}, ["good"] * 5 + ["bad", "good"])
    bad, good = trials[5], trials[6]
    assert bad.params == {"quality": "bad"} and bad.state == TrialState.PRUNED
    assert len(bad.user_attrs["val_scores"]) == 1  # one fold fitted out of four
    assert good.state == TrialState.COMPLETE and len(good.user_attrs["val_scores"]) == 4
    # Fast folds' reports wait for the trial's attributes (tuner._optuna.report); every one reaches
    # the storage, and a pruned trial's value is its last report, read back from it by `tell`.
    assert list(bad.intermediate_values) == [0] and bad.value == bad.intermediate_values[0]
    assert list(good.intermediate_values) == [0, 1, 2, 3]
    assert good.intermediate_values[3] == pytest.approx(statistics.fmean(good.user_attrs["val_scores"]))


def test_the_default_pruner_prunes_a_bad_configuration_early(write_spec):
    trials = _run(write_spec, {"pruner": None, "cv": {"folds": 4}}, ["good"] * 5 + ["bad", "good"])
    assert trials[5].state == TrialState.PRUNED and len(trials[5].user_attrs["val_scores"]) < 4
    assert trials[6].state == TrialState.COMPLETE


def test_wilcoxon_compares_fold_by_fold_and_prunes_before_the_last_fold(write_spec):
    trials = _run(write_spec, {"pruner": "wilcoxon", "cv": {"folds": 6}}, ["good", "bad", "good"])
    bad = trials[1]
    assert bad.state == TrialState.PRUNED and len(bad.user_attrs["val_scores"]) < 6
    # Per-fold values, not running means, are reported to the paired test.
    assert list(bad.intermediate_values.values()) == bad.user_attrs["val_scores"]
    assert trials[2].state == TrialState.COMPLETE


def test_without_a_pruner_every_fold_runs(write_spec):
    trials = _run(write_spec, {"pruner": "none", "cv": {"folds": 3}}, ["good"] * 5 + ["bad"])
    assert all(t.state == TrialState.COMPLETE and len(t.user_attrs["val_scores"]) == 3 for t in trials)


def test_row_fidelity_screens_out_a_bad_configuration_on_a_ninth_of_the_rows(write_spec):
    pruner = {"name": "successive_halving", "fidelity": "rows"}
    trials = _run(write_spec, {"pruner": pruner, "cv": {"folds": 3}}, ["good"] * 3 + ["bad", "good"])
    bad, good = trials[3], trials[4]
    assert bad.state == TrialState.PRUNED
    assert list(bad.user_attrs["fidelity_scores"]) == ["11"] and "val_scores" not in bad.user_attrs
    assert good.state == TrialState.COMPLETE
    assert list(good.user_attrs["fidelity_scores"]) == ["11", "33"] and len(good.user_attrs["val_scores"]) == 3
    assert sorted(good.intermediate_values) == [11, 33]  # fidelity levels, not folds


def test_iteration_fidelity_cuts_the_boosting_rounds(write_spec):
    space = {"n_estimators": 90, "learning_rate": {"type": "float", "low": 0.05, "high": 0.3}, "max_depth": 2}
    changes = {
        "model": "xgboost",
        "space": space,
        "pruner": {"name": "hyperband", "fidelity": "iterations"},
        "budget": {"n_trials": 3},
    }
    spec = write_spec(changes)
    result = tuner.run_study(spec)
    first = result.study.trials[0]
    assert set(first.user_attrs["fidelity_scores"]) == {"11", "33"}
    assert sorted(first.intermediate_values) == [11, 33]


def test_levels_follow_the_pruner_geometry():
    assert levels(PrunerSpec(name="hyperband", fidelity="rows")) == [11, 33]
    geometry = {"min_resource": 4, "reduction_factor": 4}
    assert levels(PrunerSpec(name="hyperband", fidelity="rows", options=geometry)) == [4, 16]
    pruner = build_pruner(PrunerSpec(name="hyperband", fidelity="rows"), label="t")
    assert pruner._min_resource == 11 and pruner._max_resource == 100


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pruner": {"name": "median", "fidelity": "rows"}}, "needs a multi-fidelity pruner"),
        ({"pruner": {"name": "hyperband", "fidelity": "iterations"}}, "`iterations` needs a boosting model"),
        ({"pruner": {"name": "hyperband", "fidelity": "sizes"}}, "fidelity"),
        (
            {"pruner": {"name": "hyperband", "fidelity": "rows", "options": {"min_resource": 60}}},
            "leaves no level below 100%",
        ),
    ],
)
def test_bad_fidelity_settings_are_refused_before_any_trial(write_spec, changes, message):
    with pytest.raises(SpecError, match=message):
        tuner.run_study(write_spec(changes))


@pytest.mark.parametrize("suggest", [False, True])
@pytest.mark.parametrize("name", ["median", "percentile"])
def test_the_pruner_reads_the_trials_once_per_trial_and_decides_like_optunas_own(name, suggest):
    ours = build_pruner(PrunerSpec(name=name), label="test")
    plain = ours.pruner  # the wrapped Optuna pruner, which reads the trials at every check
    sampler = optuna.samplers.TPESampler(seed=0, constant_liar=False)
    study = optuna.create_study(direction="maximize", pruner=ours, sampler=sampler)
    rng = np.random.default_rng(0)
    for _ in range(8):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for step in range(5):
            trial.report(float(rng.uniform(0.5, 1.0)), step)
        study.tell(trial, float(rng.uniform(0.5, 1.0)))
    reads = 0
    get_all_trials = study._storage.get_all_trials

    def counting(*args, **kwargs):
        nonlocal reads
        reads += 1
        return get_all_trials(*args, **kwargs)

    study._storage.get_all_trials = counting  # type: ignore[method-assign]
    decisions = []
    our_reads = 0
    for values in ([0.9, 0.95, 0.99, 0.97], [0.1, 0.2, 0.1, 0.3]):
        trial = study.ask()
        if suggest:
            trial.suggest_float("x", 0, 1)  # TPE reads the trials and keeps that read for this trial
        for step, value in enumerate(values):
            trial.report(value, step)
            frozen = study._storage.get_trial(trial._trial_id)
            before = reads
            ours_says = trial.should_prune()
            our_reads += reads - before
            decisions.append((ours_says, plain.prune(study, frozen)))
        study.tell(trial, state=TrialState.PRUNED)
    assert all(ours_says == optuna_says for ours_says, optuna_says in decisions)
    assert [d[0] for d in decisions] == [False] * 4 + [True] * 4, "a good trial runs on, a bad one is pruned"
    # Through the wrapper, each trial read the study once, or not at all when it reused the
    # sampler's read; Optuna's own pruner read it at every check.
    assert our_reads == (0 if suggest else 2)
    assert reads - our_reads >= len(decisions)
