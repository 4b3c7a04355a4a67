"""Objectives (``tuner/objective.py``): custom objectives from the CLI and from Python get the study context
(suggest, folds, metric) and score like the built-in CV objective."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState
from support import sqlite_url

import tuner

# A custom objective that uses the context the way the README shows: suggest, folds, metric.
CV_BY_HAND = """\
import statistics


def objective(trial, ctx):
    params = ctx.suggest(trial)
    scores = []
    for index in range(len(ctx.splits)):
        X_train, y_train, X_val, y_val = ctx.fold(index)
        model = ctx.build_estimator(params).fit(X_train, y_train)
        scores.append(ctx.metric.score(model, X_val, y_val))
    trial.set_user_attr("by_hand", True)
    trial.set_user_attr("folds_seen", len(scores))
    trial.set_user_attr("metric_seen", ctx.metric.name)
    return statistics.fmean(scores)
"""


@pytest.mark.usefixtures("fresh_imports")
def test_custom_objective_from_the_cli_uses_the_context(tmp_path, write_spec, run_cli):
    (tmp_path / "handmade.py").write_text(CV_BY_HAND)
    custom = write_spec(
        {"name": "by-hand", "objective": "handmade:objective", "budget": {"n_trials": 2}}, "by-hand.yaml"
    )
    # a custom objective gets no start-up portfolio, so the reference goes without it too
    builtin = write_spec(
        {"name": "built-in", "budget": {"n_trials": 2}, "warm_start": {"known_good": False}}, "built-in.yaml"
    )
    for spec in (custom, builtin):
        result = run_cli("run", spec, "-q")
        assert result.code == 0, result.err
    storage = sqlite_url(tmp_path)
    by_hand = optuna.load_study(study_name="by-hand", storage=storage).get_trials()
    reference = optuna.load_study(study_name="built-in", storage=storage).get_trials()
    assert len(by_hand) == 2
    for mine, theirs in zip(by_hand, reference, strict=True):
        assert mine.user_attrs["by_hand"] is True and "val_scores" not in mine.user_attrs
        assert mine.user_attrs["folds_seen"] == 3
        assert mine.user_attrs["metric_seen"] == "roc_auc"
        # same seed → same params; the hand-written CV must then score exactly like the built-in one
        assert mine.params == theirs.params
        assert math.isclose(mine.value, theirs.value, rel_tol=1e-12)


def test_custom_objective_from_python(write_spec):
    calls = []

    def objective(trial, ctx):
        params = ctx.suggest(trial)
        calls.append((params, ctx))
        X_train, y_train, X_val, y_val = ctx.fold(trial.number % len(ctx.splits))
        model = ctx.build_estimator(params).fit(X_train, y_train)
        return ctx.metric.score(model, X_val, y_val)

    result = tuner.run_study(write_spec(), objective=objective)
    trials = result.study.get_trials()
    assert len(calls) == len(trials) == 4
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert [params for params, _ in calls] == [t.params for t in trials]
    ctx = calls[0][1]
    assert isinstance(ctx, tuner.ObjectiveContext)
    assert len(ctx.splits) == 3 and ctx.metric.name == "roc_auc" and ctx.dataset.task == "classification"
    assert result.best_value == max(t.value for t in trials)
    assert "val_scores" not in result.best_trial.user_attrs, "the built-in objective did not run"


def test_an_optuna_style_objective_takes_the_trial_alone(write_spec):
    result = tuner.run_study(write_spec(), objective=lambda trial: (trial.suggest_float("x", 0, 1) - 0.3) ** 2)
    trials = result.study.get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert result.best_value == max(t.value for t in trials)


class _Scaled:
    """A callable object with a default argument: Optuna's form, as its signature says."""

    def __call__(self, trial, scale=2.0):
        return scale * trial.suggest_float("x", 0, 1)


@pytest.mark.parametrize(
    ("objective", "takes"),
    [
        (lambda trial: 0.0, False),
        (lambda trial, ctx: 0.0, True),
        (lambda trial, ctx=None: 0.0, True),
        (lambda *args: 0.0, True),
        (_Scaled(), True),
    ],
)
def test_the_objective_signature_is_read_once(objective, takes):
    from tuner.objective import takes_context

    assert takes_context(objective, where="here") is takes


@pytest.mark.parametrize(
    "objective",
    [lambda: 0.0, lambda trial, ctx, extra: 0.0, lambda trial, *, budget: 0.0, "module:function"],
)
def test_an_objective_of_another_form_is_refused_before_any_trial(write_spec, objective):
    spec = write_spec()
    with pytest.raises(tuner.TunerError, match="argument 'objective'") as caught:
        tuner.run_study(spec, objective=objective)
    assert "\n" not in str(caught.value)
    assert not (spec.parent / "tuner.db").exists() or not optuna.get_all_study_names(sqlite_url(spec.parent))


def test_a_study_whose_plain_objective_always_fails_ends_with_its_first_error(write_spec):
    def broken(trial):
        trial.suggest_float("x", 0, 1)
        raise ValueError("the model exploded")

    with pytest.raises(tuner.TunerError, match=r"no trial of the study has completed.*ValueError: the model exploded"):
        tuner.run_study(write_spec(), objective=broken)


BROKEN_OPTUNA_STYLE = """\
def objective(trial):
    trial.suggest_float("x", 0, 1)
    raise RuntimeError("no GPU here")
"""


@pytest.mark.usefixtures("fresh_imports")
def test_a_cli_study_whose_plain_objective_always_fails_exits_non_zero(tmp_path, write_spec, run_cli):
    (tmp_path / "broken.py").write_text(BROKEN_OPTUNA_STYLE)
    spec = write_spec({"name": "broken", "objective": "broken:objective", "budget": {"n_trials": 2}}, "broken.yaml")
    result = run_cli("run", spec, "-q")
    assert result.code != 0
    assert "RuntimeError: no GPU here" in result.err
