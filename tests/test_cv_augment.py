"""Augmentation (``tuner/cv/_augment.py``): class balancing, sample weights and noisy or shifted copies,
applied to training rows only and searched like any parameter."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from frames import classification, run, study_spec
from sklearn.base import BaseEstimator, ClassifierMixin

from tuner import register_model
from tuner.cv import _augment as augment
from tuner.errors import SpecError
from tuner.setup import build as build_context
from tuner.spec import load_spec


def _imbalanced(n: int = 100, ones: int = 20) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"row": np.arange(n, dtype=float), "x": rng.normal(size=n), "flat": np.ones(n)})
    y = np.r_[np.zeros(n - ones, dtype=int), np.ones(ones, dtype=int)]
    return X, y


def _plan(**settings: Any) -> augment.Plan:
    return augment.Plan(**settings)


def test_oversampling_equalises_classes_with_copies_of_training_rows_only():
    X, y = _imbalanced()
    data = augment.apply(_plan(balance="oversample"), X, y, seed=0)
    assert np.bincount(data.y).tolist() == [80, 80]
    assert set(data.X["row"]) == set(X["row"])  # every original kept, nothing new invented
    assert (data.X["row"].to_numpy()[data.y == 1] >= 80).all()  # copies keep their labels
    assert len(X) == 100  # the input is not modified


def test_undersampling_keeps_the_smallest_class_size():
    X, y = _imbalanced()
    data = augment.apply(_plan(balance="undersample"), X, y, seed=0)
    assert np.bincount(data.y).tolist() == [20, 20]
    assert set(data.X["row"]) <= set(X["row"])
    assert set(data.X["row"][data.y == 1]) == set(range(80, 100))


def test_class_weights_make_every_class_weigh_the_same():
    X, y = _imbalanced()
    data = augment.apply(_plan(balance="class_weight"), X, y, seed=0)
    assert data.X is X
    assert data.sample_weight is not None
    assert data.sample_weight[y == 0].sum() == pytest.approx(data.sample_weight[y == 1].sum())
    assert data.sample_weight.sum() == pytest.approx(len(y))


def test_gaussian_jitter_appends_noisy_copies_scaled_per_feature():
    rng = np.random.default_rng(1)
    n = 4000
    X = pd.DataFrame({"small": rng.normal(0, 0.1, n), "large": rng.normal(0, 100, n), "flat": np.ones(n), "kind": "a"})
    y = np.zeros(n, dtype=int)
    data = augment.apply(_plan(noise_std=0.5, copies=2), X, y, seed=0)
    assert len(data.X) == 3 * n and len(data.y) == 3 * n
    pd.testing.assert_frame_equal(data.X.iloc[:n], X)
    for copy in (1, 2):
        noise = (
            data.X.iloc[copy * n : (copy + 1) * n].reset_index(drop=True)[["small", "large", "flat"]]
            - X[["small", "large", "flat"]]
        )
        assert noise["small"].std() == pytest.approx(0.5 * X["small"].std(), rel=0.1)
        assert noise["large"].std() == pytest.approx(0.5 * X["large"].std(), rel=0.1)
        assert (noise["flat"] == 0).all()
    assert (data.X["kind"] == "a").all()  # non-numeric columns are copied, not jittered


def _image_rows(n: int = 50) -> pd.DataFrame:
    images = np.zeros((n, 8, 8))
    images[:, 3, 2] = 16.0  # one bright pixel left of centre
    return pd.DataFrame(images.reshape(n, 64), columns=[f"p{i}" for i in range(64)])


def test_image_shifts_move_pixels_by_at_most_the_given_amount():
    X = _image_rows()
    data = augment.apply(_plan(image_shape=(8, 8), shift=1), X, np.zeros(len(X), dtype=int), seed=0)
    moved = data.X.iloc[len(X) :].to_numpy().reshape(-1, 8, 8)
    rows, cols = np.unravel_index(moved.reshape(len(moved), -1).argmax(axis=1), (8, 8))
    assert (np.abs(rows - 3) <= 1).all() and (np.abs(cols - 2) <= 1).all()
    assert (rows != 3).any() or (cols != 2).any()
    assert np.allclose(moved.sum(axis=(1, 2)), 16.0)  # shifted, not smeared


def test_mirroring_flips_left_right_or_leaves_the_image():
    X = _image_rows()
    data = augment.apply(_plan(image_shape=(8, 8), mirror=True), X, np.zeros(len(X), dtype=int), seed=0)
    copies = data.X.iloc[len(X) :].to_numpy().reshape(-1, 8, 8)
    flipped = [bool(c[3, 5] == 16.0) for c in copies]
    same = [bool(c[3, 2] == 16.0) for c in copies]
    assert all(f != s for f, s in zip(flipped, same, strict=True))
    assert any(flipped) and any(same)


def test_rotation_keeps_the_image_size_and_value_range():
    X = _image_rows()
    data = augment.apply(_plan(image_shape=(8, 8), rotate=15.0), X, np.zeros(len(X), dtype=int), seed=0)
    rotated = data.X.iloc[len(X) :].to_numpy()
    assert rotated.shape == (len(X), 64)
    assert rotated.min() >= 0.0 and rotated.max() <= 16.0
    assert not np.allclose(rotated, X.to_numpy())


def test_sample_weights_reach_the_final_step_of_nested_pipelines():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    inner = make_pipeline(StandardScaler(), LogisticRegression())
    outer = make_pipeline(StandardScaler(), inner)
    weights = np.ones(4)
    assert augment.fit_kwargs(outer, weights) == {"pipeline__logisticregression__sample_weight": weights}
    assert augment.fit_kwargs(outer, None) == {}


def test_searched_settings_override_fixed_ones_and_never_reach_the_estimator():
    spec = load_spec(study_spec("plan", "knn", balance="oversample", augment={"noise_std": 0.1, "copies": 2}))
    params = {"n_neighbors": 3, "augment.noise_std": 0.3, "balance": "undersample"}
    assert augment.plan_for(spec, params) == augment.Plan(balance="undersample", noise_std=0.3, copies=2)
    assert augment.model_params(params) == {"n_neighbors": 3}


class Recorder(ClassifierMixin, BaseEstimator):
    """Remembers every matrix it is fitted on or asked to predict."""

    calls: ClassVar[list[tuple[str, pd.DataFrame]]] = []

    def fit(self, X: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Recorder:
        Recorder.calls.append(("fit", X.copy()))
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        Recorder.calls.append(("predict", X.copy()))
        return np.zeros(len(X), dtype=int)


def test_augmentation_and_resampling_never_touch_validation_rows(tmp_path, scratch_registry):
    register_model("test-recorder", classifier=Recorder)
    Recorder.calls.clear()
    X, y = _imbalanced(90, ones=18)
    frame = X.assign(y=y)
    spec = study_spec("leak", "test-recorder", balance="oversample", augment={"noise_std": 0.2, "copies": 2})
    run(spec, frame, tmp_path)
    splits = build_context(load_spec(spec), data=frame).splits
    fits = [i for i, (kind, _) in enumerate(Recorder.calls) if kind == "fit"]
    assert len(fits) == len(splits) == 3
    for start, (train, val) in zip(fits, splits, strict=True):
        fitted = Recorder.calls[start][1]
        block = len(fitted) // 3  # the resampled rows, then 2 jittered copies of them
        originals = fitted.iloc[:block]
        assert set(originals["row"]) == set(train)  # oversampling repeats training rows ...
        assert not set(originals["row"]) & set(val)  # ... and never a validation row
        assert np.bincount(y[originals["row"].astype(int)]).tolist() == [block // 2, block // 2]
        for copy in (1, 2):
            jitter = fitted.iloc[copy * block : (copy + 1) * block].to_numpy() - originals.to_numpy()
            assert np.abs(jitter[:, :2]).max() > 0  # the copies are jittered training rows
        # Scores come from the untouched rows: validation first, then the original training rows
        # (a sample of them as large as the validation fold).
        (_, scored_val), (_, scored_train) = Recorder.calls[start + 1], Recorder.calls[start + 2]
        pd.testing.assert_frame_equal(scored_val.reset_index(drop=True), X.iloc[val].reset_index(drop=True))
        rows = scored_train["row"].astype(int).to_numpy()
        assert len(rows) == len(val) and set(rows) <= set(train)
        pd.testing.assert_frame_equal(scored_train.reset_index(drop=True), X.iloc[rows].reset_index(drop=True))


def test_balance_and_noise_can_be_searched(tmp_path):
    frame = classification(90, flip=0.1)
    frame.loc[frame.index[:60], "y"] = 0
    spec = study_spec(
        "searched",
        "sklearn.tree:DecisionTreeClassifier",
        space={"max_depth": 3, "balance": ["none", "class_weight", "oversample"], "augment.noise_std": [0.0, 0.2]},
        budget={"n_trials": 4},
        sampler="random",
    )
    result = run(spec, frame, tmp_path)
    states = [t.state.name for t in result.study.trials]
    assert states == ["COMPLETE"] * 4
    assert {t.params["balance"] for t in result.study.trials} <= {"none", "class_weight", "oversample"}
    assert all("augment.noise_std" in t.params for t in result.study.trials)


@pytest.mark.parametrize(
    ("changes", "frame", "message"),
    [
        ({"balance": "oversample", "model": "ridge", "metric": None}, "regression", "needs a classification target"),
        ({"balance": "class_weight", "model": "knn"}, "classification", "'knn' does not accept `sample_weight`"),
        ({"augment": {"shift": 1}, "model": "knn"}, "classification", "need the image size"),
        (
            {"augment": {"image_shape": [8, 8], "mirror": True}, "model": "knn"},
            "classification",
            "the data has 4 features",
        ),
        ({"space": {"augment.image_shape": [8, 16]}}, "classification", "'image_shape' cannot be searched"),
    ],
)
def test_impossible_augmentation_is_refused_before_any_trial(tmp_path, changes, frame, message):
    data = classification(60)
    if frame == "regression":
        data["y"] = np.linspace(0, 1, len(data))
    spec = {**study_spec("bad", "knn"), **{k: v for k, v in changes.items() if v is not None}}
    if changes.get("metric", "") is None:
        spec.pop("metric")
    if frame == "regression":
        spec["cv"] = {"scheme": "kfold", "folds": 3}
    with pytest.raises(SpecError) as caught:
        run(spec, data, tmp_path)
    assert message in str(caught.value)
    assert not (tmp_path / "tuner.db").exists()


def test_refit_fits_through_the_same_balancing_and_augmentation_as_the_folds(tmp_path, scratch_registry):
    from tuner import refit_best

    register_model("test-recorder", classifier=Recorder)
    X, y = _imbalanced(90, ones=18)
    frame = X.assign(y=y)
    spec = study_spec("refit-plan", "test-recorder", balance="oversample", augment={"noise_std": 0.2, "copies": 1})
    run(spec, frame, tmp_path)
    Recorder.calls.clear()
    refit_best("refit-plan", storage=str(tmp_path / "tuner.db"), data=frame, out=tmp_path / "model.joblib")
    fitted = [X_fit for kind, X_fit in Recorder.calls if kind == "fit"]
    assert len(fitted) == 1
    block = len(fitted[0]) // 2  # the oversampled rows, then one jittered copy of them
    assert block == 2 * (90 - 18), "every tuning row, with the minority class drawn up to the majority's size"
    assert np.bincount(y[fitted[0].iloc[:block]["row"].astype(int)]).tolist() == [72, 72]
