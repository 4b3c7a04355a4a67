"""Warm starts (``tuner/search/_warmstart.py``): known-good configurations and the best of earlier studies go
first, fitted to the space."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

import tuner
from tuner.errors import SpecError
from tuner.models import get_model
from tuner.search import fit_to_space
from tuner.spec import ParamSpec


def test_a_new_study_starts_with_the_models_known_good_configurations(write_spec):
    space = {"n_estimators": {"type": "int", "low": 10, "high": 40}}  # caps the known-good 500
    result = tuner.run_study(write_spec({"model": "xgboost", "space": space, "budget": {"n_trials": 3}}))
    trials = result.study.trials
    starts = get_model("xgboost").starts
    expected = [fit_to_space(s, result.context.space) for s in starts]
    assert [t.params for t in trials[: len(starts)]] == expected
    assert expected[0]["n_estimators"] == 40 and expected[0]["learning_rate"] == starts[0]["learning_rate"]
    assert "fixed_params" not in trials[len(starts)].system_attrs  # then the sampler takes over


@pytest.mark.parametrize(("early_stopping", "iterations"), [("auto", 100), (True, 300)])
def test_known_good_starts_train_the_library_default_iterations_unless_stopped_early(
    write_spec, early_stopping, iterations
):
    # breast_cancer's training folds hold about 380 rows, under `auto`'s 1000: no early stopping, so a
    # start at the top of the range would train 300 iterations on every fold.
    space = {"n_estimators": {"type": "int", "low": 10, "high": 300}}
    spec = {
        "model": "xgboost",
        "space": space,
        "budget": {"n_trials": 1},
        "early_stopping": {"enabled": early_stopping},
    }
    first = tuner.run_study(write_spec(spec)).study.trials[0]
    assert first.params["n_estimators"] == iterations
    assert first.params["learning_rate"] == get_model("xgboost").starts[0]["learning_rate"]


def test_known_good_starts_can_be_turned_off(write_spec):
    spec = write_spec({"model": "xgboost", "budget": {"n_trials": 1}, "warm_start": {"known_good": False}})
    trial = tuner.run_study(spec).study.trials[0]
    assert "fixed_params" not in trial.system_attrs


@pytest.mark.slow
def test_warm_start_enqueues_the_best_configurations_of_an_earlier_study(write_spec):
    first = tuner.run_study(write_spec({"name": "first", "budget": {"n_trials": 6}}))
    ranked = sorted(
        (t for t in first.study.trials if t.state == TrialState.COMPLETE), key=lambda t: t.value, reverse=True
    )
    second = tuner.run_study(
        write_spec({"name": "second", "budget": {"n_trials": 3}, "warm_start": {"studies": ["first"], "top": 2}})
    )
    trials = second.study.trials
    assert [t.params for t in trials[:2]] == [ranked[0].params, ranked[1].params]
    assert trials[0].value == pytest.approx(ranked[0].value)  # same folds, same model: same score


def test_a_resumed_study_does_not_repeat_its_warm_start(write_spec):
    spec = write_spec({"model": "xgboost", "space": {"n_estimators": 20}, "budget": {"n_trials": 1}})
    tuner.run_study(spec)
    trials = tuner.run_study(spec, n_trials=3).study.trials
    assert len(trials) == 3
    assert sum("fixed_params" in t.system_attrs for t in trials) == 2  # the two starts, once


def test_warm_start_from_a_missing_study_is_refused(write_spec):
    with pytest.raises(SpecError, match=r"warm_start.*no study 'nope'"):
        tuner.run_study(write_spec({"warm_start": ["nope"]}))


def test_warm_start_from_another_model_is_refused(write_spec):
    tuner.run_study(write_spec({"name": "knn-study", "model": "knn", "budget": {"n_trials": 1}}))
    with pytest.raises(SpecError, match="tuned model 'knn', not 'logistic'"):
        tuner.run_study(write_spec({"warm_start": ["knn-study"]}))


def test_fit_to_space_clips_snaps_and_drops_what_the_space_does_not_offer():
    space = {
        "a": ParamSpec(type="float", low=0.1, high=1.0),
        "b": ParamSpec(type="int", low=2, high=10, step=2),
        "c": ParamSpec(type="categorical", choices=("x", "y")),
        "d": ParamSpec(type="fixed", value=3),
    }
    config = {"a": 5.0, "b": 7, "c": "z", "d": 1, "e": 1.0}
    assert fit_to_space(config, space) == {"a": 1.0, "b": 8}
    assert fit_to_space({"a": 0.5, "b": 1, "c": "y"}, space) == {"a": 0.5, "b": 2, "c": "y"}
