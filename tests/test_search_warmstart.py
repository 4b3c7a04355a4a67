"""Warm starts (``tuner/search/_warmstart.py``): the model's start-up portfolio and the best of earlier studies
go first, fitted to the space."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

import tuner
from tuner.errors import SpecError
from tuner.search import fit_to_space
from tuner.search._portfolio import portfolio
from tuner.spec import ParamSpec


def _fitted_portfolio(model: str, space: dict) -> list[dict]:
    out: list[dict] = []
    for config in portfolio(model, "classification"):
        fitted = fit_to_space(config, space)
        if fitted not in out:
            out.append(fitted)
    return out


def test_a_new_study_starts_with_the_models_portfolio_clipped_into_the_users_space(write_spec):
    # The user's space caps the trees and narrows the learning rate; the portfolio is clipped into it.
    space = {
        "n_estimators": {"type": "int", "low": 10, "high": 40},
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.1},
        "max_depth": 3,
    }
    learned = portfolio("xgboost", "classification")
    spec = {"model": "xgboost", "space": space, "budget": {"n_trials": len(learned) + 1}}
    result = tuner.run_study(write_spec(spec))
    expected = _fitted_portfolio("xgboost", result.context.space)
    assert len(expected) == len(learned)
    trials = result.study.trials
    assert [t.params for t in trials[: len(expected)]] == expected
    assert all(10 <= p["n_estimators"] <= 40 and 0.05 <= p["learning_rate"] <= 0.1 for p in expected)
    assert all("max_depth" not in p for p in expected)  # fixed by the user: not the portfolio's to set
    assert "fixed_params" not in trials[len(expected)].system_attrs  # then the sampler takes over


def test_a_new_studys_first_trials_are_the_portfolios_and_reproducible(write_spec, tmp_path):
    # logistic on breast_cancer (the tiny spec): the portfolio goes first, then TPE, the same both times
    learned = portfolio("logistic", "classification")
    n = len(learned) + 2
    runs = [
        tuner.run_study(write_spec({"budget": {"n_trials": n}, "storage": f"sqlite:///{tmp_path / name}.db"}))
        for name in ("a", "b")
    ]
    first, second = ([t.params for t in r.study.trials] for r in runs)
    assert first[: len(learned)] == learned
    assert first == second
    assert [t.value for t in runs[0].study.trials] == [t.value for t in runs[1].study.trials]


def test_tpe_takes_over_right_after_the_portfolio_and_after_ten_random_draws_without_one(write_spec, tmp_path):
    n = len(portfolio("logistic", "classification"))

    def trials(name: str, startup: int | None, **spec) -> list[dict]:
        if startup is not None:
            spec["sampler"] = {"name": "tpe", "options": {"n_startup_trials": startup}}
        spec.update(budget={"n_trials": n + 3}, storage=f"sqlite:///{tmp_path / name}.db")
        return [t.params for t in tuner.run_study(write_spec(spec)).study.trials]

    with_portfolio = trials("default", None)
    assert with_portfolio == trials("explicit", n)
    assert with_portfolio[n:] != trials("ten", 10)[n:]
    none = {"warm_start": {"known_good": False}}
    without = trials("none", None, **none)
    assert without == trials("none-ten", 10, **none)  # Optuna's default: ten random draws
    assert without[n:] != trials("none-explicit", n, **none)[n:]
    # A narrow space merges the portfolio's configurations: TPE takes over after those that ran.
    narrow = {"space": {"C": {"type": "float", "low": 1.0, "high": 1.5}, "class_weight": None}}
    merged = len(_fitted_portfolio("logistic", {"C": ParamSpec(type="float", low=1.0, high=1.5)}))
    assert 1 < merged < n
    assert trials("narrow", None, **narrow) == trials("narrow-explicit", merged, **narrow)
    assert trials("narrow", None, **narrow)[merged:] != trials("narrow-ten", 10, **narrow)[merged:]


@pytest.mark.parametrize("early_stopping", ["auto", True])
def test_portfolio_iterations_are_caps_at_the_top_of_the_range_only_when_stopped_early(write_spec, early_stopping):
    # breast_cancer's training folds hold about 380 rows, under `auto`'s 1000: no early stopping, so the
    # portfolio's own tree count is trained; stopped early, it is a cap at the top of the range.
    space = {"n_estimators": {"type": "int", "low": 10, "high": 300}}
    spec = {
        "model": "xgboost",
        "space": space,
        "budget": {"n_trials": 1},
        "early_stopping": {"enabled": early_stopping},
    }
    first = tuner.run_study(write_spec(spec)).study.trials[0]
    learned = portfolio("xgboost", "classification")[0]
    assert first.params["n_estimators"] == (learned["n_estimators"] if early_stopping == "auto" else 300)
    assert first.params["learning_rate"] == learned["learning_rate"]


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


def test_a_resumed_study_does_not_repeat_its_warm_start_and_none_is_left_waiting(write_spec):
    spec = write_spec({"model": "xgboost", "space": {"n_estimators": 20}, "budget": {"n_trials": 2}})
    first = tuner.run_study(spec).study.trials
    assert [t.state for t in first] == [TrialState.COMPLETE] * 2  # the budget's worth of the portfolio, no more
    trials = tuner.run_study(spec, n_trials=4).study.trials
    assert len(trials) == 4
    assert sum("fixed_params" in t.system_attrs for t in trials) == 2  # the first run's, once


def test_a_grid_sampler_runs_its_grid_without_the_portfolio(write_spec):
    grid = {"name": "grid", "options": {"search_space": {"C": [0.1, 1.0], "class_weight": [None]}}}
    trials = tuner.run_study(write_spec({"sampler": grid, "budget": {"n_trials": 5}})).study.trials
    assert sorted(t.params["C"] for t in trials) == [0.1, 1.0]


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
