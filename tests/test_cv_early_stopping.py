"""Early stopping (``tuner/cv/_early_stopping.py``) inside each fold: best iterations recorded, stopping rows
taken from the training rows only (never the CV validation fold), each library's own mechanism, pipelines, and
opting out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tuner
from tuner.cv import stopping_split
from tuner.models import IterationHook, ModelEntry
from tuner.models import _registry as registry

# A fast boosting setup: high learning rate and a generous cap, so every fold stops well before it.
_FAST = {"learning_rate": 0.5, "max_depth": 2}
_CAP = 300


@pytest.mark.parametrize(
    ("model", "space"),
    [
        ("xgboost", {"n_estimators": _CAP, **_FAST}),
        ("lightgbm", {"n_estimators": _CAP, "learning_rate": 0.5, "num_leaves": 4}),
        ("hist_gradient_boosting", {"max_iter": _CAP, "learning_rate": 0.5, "max_leaf_nodes": 4}),
    ],
)
def test_each_fold_stops_early_and_records_its_best_iteration(write_spec, model, space):
    pytest.importorskip(model.split("_")[0] if model != "hist_gradient_boosting" else "sklearn")
    stopping = {"enabled": True, "rounds": 5}
    spec = write_spec({"model": model, "space": space, "budget": {"n_trials": 1}, "early_stopping": stopping})
    trial = tuner.run_study(spec).study.trials[0]
    best = trial.user_attrs["best_iterations"]
    assert len(best) == 3  # one per fold
    assert all(isinstance(n, int) and 1 <= n < _CAP for n in best)


def test_without_early_stopping_no_best_iterations_are_recorded(write_spec):
    space = {"n_estimators": 20, **_FAST}
    spec = write_spec({"model": "xgboost", "space": space, "budget": {"n_trials": 1}, "early_stopping": False})
    trial = tuner.run_study(spec).study.trials[0]
    assert "best_iterations" not in trial.user_attrs
    assert trial.user_attrs["val_scores"]


@pytest.mark.parametrize(("min_rows", "stops"), [(1000, False), (300, True)])
def test_auto_stops_early_only_when_the_training_folds_are_large_enough(write_spec, min_rows, stops):
    # 3 folds of breast_cancer: about 380 training rows per fold.
    space = {"n_estimators": 60, **_FAST}
    changes = {"model": "xgboost", "space": space, "budget": {"n_trials": 1}, "early_stopping": {"min_rows": min_rows}}
    trial = tuner.run_study(write_spec(changes)).study.trials[0]
    assert ("best_iterations" in trial.user_attrs) is stops


def test_early_stopping_shorthands(write_spec):
    assert tuner.load_spec(write_spec({"early_stopping": "auto"})).early_stopping.enabled == "auto"
    assert tuner.load_spec(write_spec({"early_stopping": True})).early_stopping.enabled is True
    assert tuner.load_spec(write_spec()).early_stopping.enabled == "auto"  # the default


def test_models_without_iterations_are_fitted_as_usual(write_spec):
    trial = tuner.run_study(write_spec({"budget": {"n_trials": 1}})).study.trials[0]  # logistic regression
    assert "best_iterations" not in trial.user_attrs


_SEEN: list[tuple[set[tuple], set[tuple]]] = []


def _rows(X: object) -> set[tuple]:
    return set(map(tuple, np.asarray(X, dtype=float)))


def _spy_xgb(**params: object) -> object:
    """XGBoost that remembers which rows it was fitted on and which it stopped on (the data's
    rows are all distinct, so a row's values identify it)."""
    import xgboost

    class Spy(xgboost.XGBClassifier):
        def fit(self, X, y, **kwargs):  # type: ignore[no-untyped-def]
            _SEEN.append((_rows(X), _rows(kwargs["eval_set"][0][0])))
            return super().fit(X, y, **kwargs)

    return Spy(**{"n_estimators": 100, "learning_rate": 0.5, "max_depth": 2, "n_jobs": 1, **params})


def test_stopping_rows_come_from_the_training_fold_never_the_validation_fold(write_spec, monkeypatch):
    hook = IterationHook("n_estimators", "xgboost")
    entry = ModelEntry(name="spy_xgb", description="test", classifier=_spy_xgb, iterations=hook)
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)  # for this test only
    _SEEN.clear()
    stopping = {"enabled": True, "fraction": 0.2}
    spec = write_spec({"model": "spy_xgb", "budget": {"n_trials": 1}, "early_stopping": stopping})
    result = tuner.run_study(spec)
    splits, X = result.context.splits, result.context.dataset.X
    assert len(_SEEN) == len(splits)
    for (fit_rows, stop_rows), (train, val) in zip(_SEEN, splits, strict=True):
        assert stop_rows and fit_rows.isdisjoint(stop_rows)
        assert fit_rows | stop_rows == _rows(X.iloc[train])  # all of the training fold, nothing else
        assert stop_rows.isdisjoint(_rows(X.iloc[val]))
        assert abs(len(stop_rows) - 0.2 * len(train)) <= 1


def test_stopping_split_keeps_classes_groups_and_time_order():
    y = np.array([0] * 80 + [1] * 20)
    fit_rows, stop_rows = stopping_split(y, 0.2, seed=0, stratify=True)
    assert sorted([*fit_rows, *stop_rows]) == list(range(100))
    assert np.bincount(y[stop_rows]).tolist() == [16, 4]

    groups = np.repeat(np.arange(20), 5)
    fit_rows, stop_rows = stopping_split(y, 0.2, seed=0, stratify=False, groups=groups)
    assert set(groups[fit_rows]).isdisjoint(groups[stop_rows])

    fit_rows, stop_rows = stopping_split(y, 0.1, seed=0, stratify=False, ordered=True)
    assert stop_rows.tolist() == list(range(90, 100)) and fit_rows.max() < stop_rows.min()


def test_stopping_rows_pass_through_the_preprocessing_pipeline(tmp_path, write_spec):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, -1]].copy()
    frame["colour"] = np.where(frame["mean radius"] > 14, "red", "blue")  # a text column: one-hot encoded first
    frame.to_csv(tmp_path / "data.csv", index=False)
    space = {"n_estimators": _CAP, **_FAST}
    changes = {"data": {"source": "data.csv", "target": "target"}, "model": "xgboost", "space": space}
    spec = write_spec({**changes, "budget": {"n_trials": 1}, "early_stopping": {"enabled": True, "rounds": 5}})
    result = tuner.run_study(spec)
    assert hasattr(result.context.build_estimator({}), "steps")  # a pipeline indeed
    best = result.study.trials[0].user_attrs["best_iterations"]
    assert len(best) == 3 and all(1 <= n < _CAP for n in best)


def test_early_stopping_settings_are_validated(write_spec):
    from tuner.errors import SpecError

    with pytest.raises(SpecError, match=r"early_stopping\.fraction"):
        tuner.load_spec(write_spec({"early_stopping": {"fraction": 0.9}}))
    with pytest.raises(SpecError, match=r"early_stopping\.patience"):
        tuner.load_spec(write_spec({"early_stopping": {"patience": 3}}))


def test_a_class_missing_from_the_stopping_rows_does_not_break_the_split():
    y = np.array([0] * 30 + [1] * 1)
    fit_rows, stop_rows = stopping_split(y, 0.1, seed=0, stratify=True)
    assert len(stop_rows) == 3 and len(fit_rows) == 28
    assert pd.Series(y[fit_rows]).nunique() >= 1


_KINDS: list[str] = []


def _kind_spy_xgb(**params: object) -> object:
    """XGBoost that remembers whether it was fitted on a DataFrame or an array."""
    import xgboost

    class Spy(xgboost.XGBClassifier):
        def fit(self, X, y, **kwargs):  # type: ignore[no-untyped-def]
            _KINDS.append(type(X).__name__)
            return super().fit(X, y, **kwargs)

    return Spy(**{"n_estimators": 20, "max_depth": 2, "n_jobs": 1, **params})


@pytest.mark.parametrize(("changes", "kind"), [({}, "ndarray"), ({"balance": "oversample"}, "DataFrame")])
def test_xgboost_folds_go_in_as_arrays_unless_a_step_needs_the_frame(write_spec, monkeypatch, changes, kind):
    hook = IterationHook("n_estimators", "xgboost")
    entry = ModelEntry(name="kind_spy_xgb", description="test", classifier=_kind_spy_xgb, iterations=hook)
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)
    _KINDS.clear()
    spec = {"model": "kind_spy_xgb", "budget": {"n_trials": 1}, "early_stopping": False, **changes}
    tuner.run_study(write_spec(spec))
    assert [kind] * 3 == _KINDS  # balancing resamples the frame, so it stays a frame


def test_only_xgboost_itself_without_constraints_by_feature_name_takes_arrays():
    import xgboost
    from sklearn.compose import TransformedTargetRegressor

    from tuner.cv import AugmentPlan as Plan
    from tuner.cv import native_rows
    from tuner.cv._early_stopping import _unchanged

    hook = IterationHook("n_estimators", "xgboost")
    fast = native_rows(hook, xgboost.XGBRegressor(), Plan())
    assert fast is not _unchanged and isinstance(fast(pd.DataFrame({"a": [1, 2]})), np.ndarray)
    assert native_rows(hook, xgboost.XGBRegressor(), Plan(balance="oversample")) is _unchanged
    assert native_rows(hook, TransformedTargetRegressor(xgboost.XGBRegressor()), Plan()) is _unchanged
    assert native_rows(hook, xgboost.XGBRegressor(monotone_constraints={"a": 1}), Plan()) is _unchanged
    assert native_rows(hook, xgboost.XGBRegressor(interaction_constraints=[["a", "b"]]), Plan()) is _unchanged
    assert native_rows(hook, xgboost.XGBRegressor(interaction_constraints=[[0, 1]]), Plan()) is fast
    assert native_rows(None, xgboost.XGBRegressor(), Plan()) is _unchanged
    # Nullable integer columns with missing values become NaN.
    frame = pd.DataFrame({"a": pd.array([1, None], dtype="Int64")})
    assert np.isnan(fast(frame)[1, 0])


@pytest.mark.parametrize("stopping", [False, True])
def test_xgboost_scores_the_same_on_arrays_as_on_frames(write_spec, monkeypatch, stopping):
    import dataclasses

    from tuner.cv import _early_stopping as early_stopping

    changes = {"model": "xgboost", "space": {"n_estimators": 30, **_FAST}, "budget": {"n_trials": 1}}
    arrays = tuner.run_study(write_spec({**changes, "early_stopping": stopping})).study.trials[0]
    frames_only = dataclasses.replace(early_stopping._LIBRARIES["xgboost"], takes_rows=lambda estimator: False)
    monkeypatch.setitem(early_stopping._LIBRARIES, "xgboost", frames_only)
    frames = tuner.run_study(write_spec({**changes, "name": "frames", "early_stopping": stopping})).study.trials[0]
    assert arrays.value == frames.value
    for key in ("val_scores", "train_scores", "best_iterations"):
        assert arrays.user_attrs.get(key) == frames.user_attrs.get(key)
