"""Training-fold-only resampling and augmentation: class balancing, Gaussian jitter, image moves.

Only training rows ever pass through :func:`apply`: :func:`tuner.cv.fit_and_score` hands it the
rows it fits on, and validation rows are scored untouched. Train scores are measured on the original
training rows, not on the resampled or augmented copies.

Settings come from the spec (``balance:`` and ``augment:``) and can be searched like any other
parameter (``space: {balance: [none, oversample], augment.noise_std: {type: float, ...}}``); such
entries configure these steps and are never passed to the estimator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.utils.validation import has_fit_parameter

from tuner.data import Dataset
from tuner.errors import SpecError
from tuner.spec import AUGMENT_PREFIX, BALANCE_KEY, StudySpec

PREFIX = AUGMENT_PREFIX


@dataclass(frozen=True)
class Plan:
    """What happens to one trial's training rows before each fit."""

    balance: str = "none"
    noise_std: float = 0.0
    copies: int = 1
    image_shape: tuple[int, int] | None = None
    shift: int = 0
    rotate: float = 0.0
    mirror: bool = False

    @property
    def moves_images(self) -> bool:
        return self.image_shape is not None and bool(self.shift or self.rotate or self.mirror)

    @property
    def augments(self) -> bool:
        return self.noise_std > 0 or self.moves_images

    @property
    def active(self) -> bool:
        return self.balance != "none" or self.augments


@dataclass(frozen=True)
class FitData:
    """The rows a model is fitted on, with per-row weights when balancing by class weight."""

    X: pd.DataFrame
    y: np.ndarray
    sample_weight: np.ndarray | None = None


def is_step_param(name: str) -> bool:
    """True for space entries that configure these steps rather than the estimator."""
    return name == BALANCE_KEY or name.startswith(PREFIX)


def model_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` without the entries that configure these steps."""
    return {k: v for k, v in params.items() if not is_step_param(k)}


def plan_for(spec: StudySpec, params: Mapping[str, Any]) -> Plan:
    """The spec's fixed ``balance``/``augment`` settings, overridden by this trial's searched values."""
    values: dict[str, Any] = {**spec.augment.model_dump(), "balance": spec.balance}
    for name, value in params.items():
        if name == BALANCE_KEY:
            values["balance"] = value
        elif name.startswith(PREFIX):
            values[name.removeprefix(PREFIX)] = value
    shape = values.get("image_shape")
    values["image_shape"] = tuple(shape) if shape is not None else None
    known = {f.name for f in fields(Plan)}
    return Plan(**{k: v for k, v in values.items() if k in known})


def apply(plan: Plan, X: pd.DataFrame, y: np.ndarray, *, seed: int) -> FitData:
    """Resample and augment training rows; the input is never modified."""
    if not plan.active:
        return FitData(X, y)
    rng = np.random.default_rng(seed)
    data = BALANCERS[plan.balance](X, y, rng)
    return _augment(plan, data, rng) if plan.augments else data


def _no_balance(X: pd.DataFrame, y: np.ndarray, rng: np.random.Generator) -> FitData:
    return FitData(X, y)


def _class_weight(X: pd.DataFrame, y: np.ndarray, rng: np.random.Generator) -> FitData:
    # Same weights as sklearn's class_weight="balanced", but as sample weights, so it works for
    # every estimator that takes sample_weight (XGBoost and HistGradientBoosting included).
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    weight = len(y) / (len(classes) * counts[inverse])
    return FitData(X, y, weight.astype(np.float64))


def _oversample(X: pd.DataFrame, y: np.ndarray, rng: np.random.Generator) -> FitData:
    """Every class drawn with replacement up to the size of the largest; all original rows stay."""
    classes, counts = np.unique(y, return_counts=True)
    extra = [rng.choice(np.flatnonzero(y == c), size=counts.max() - n) for c, n in zip(classes, counts, strict=True)]
    rows = np.concatenate([np.arange(len(y)), *extra])
    return FitData(X.iloc[rows].reset_index(drop=True), y[rows])


def _undersample(X: pd.DataFrame, y: np.ndarray, rng: np.random.Generator) -> FitData:
    """Every class drawn without replacement down to the size of the smallest."""
    classes, counts = np.unique(y, return_counts=True)
    kept = [rng.choice(np.flatnonzero(y == c), size=counts.min(), replace=False) for c in classes]
    rows = np.sort(np.concatenate(kept))
    return FitData(X.iloc[rows].reset_index(drop=True), y[rows])


# Keys are exactly tuner.spec.BALANCE_MODES (tested).
BALANCERS: dict[str, Callable[[pd.DataFrame, np.ndarray, np.random.Generator], FitData]] = {
    "none": _no_balance,
    "class_weight": _class_weight,
    "oversample": _oversample,
    "undersample": _undersample,
}


def _augment(plan: Plan, data: FitData, rng: np.random.Generator) -> FitData:
    """Append ``copies`` altered copies of every training row (moved images, then jitter)."""
    numeric = [c for c in data.X.columns if pd.api.types.is_numeric_dtype(data.X[c])]
    values = data.X[numeric].to_numpy(dtype=np.float64)
    # Noise is in units of each feature's spread in this training fold, so one `noise_std`
    # fits features measured on any scale; constant features stay constant.
    scale = values.std(axis=0) * plan.noise_std
    copies = [data.X]
    for _ in range(plan.copies):
        moved = _move_images(plan, values, rng) if plan.moves_images else values
        if plan.noise_std > 0:
            moved = moved + rng.normal(size=moved.shape) * scale
        copy = data.X.copy()
        copy[numeric] = moved
        copies.append(copy)
    X = pd.concat(copies, ignore_index=True)
    y = np.tile(data.y, plan.copies + 1)
    weight = None if data.sample_weight is None else np.tile(data.sample_weight, plan.copies + 1)
    return FitData(X, y, weight)


def _move_images(plan: Plan, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift by up to ``shift`` pixels, rotate by up to ``rotate`` degrees, mirror left-right at random."""
    assert plan.image_shape is not None
    images = values.reshape(len(values), *plan.image_shape).copy()
    for index, image in enumerate(images):
        if plan.rotate:
            # "nearest" repeats the border (the background in digit-like images) instead of adding zeros.
            image = ndimage.rotate(
                image, rng.uniform(-plan.rotate, plan.rotate), reshape=False, order=1, mode="nearest"
            )
        if plan.shift:
            offset = rng.integers(-plan.shift, plan.shift + 1, size=2)
            image = ndimage.shift(image, offset, order=0, mode="nearest")
        if plan.mirror and rng.random() < 0.5:
            image = image[:, ::-1]
        images[index] = image
    return images.reshape(len(values), -1)


def fit_kwargs(estimator: Any, sample_weight: np.ndarray | None) -> dict[str, Any]:
    """``fit`` keyword arguments passing ``sample_weight`` to the final step, through pipelines."""
    if sample_weight is None:
        return {}
    path = []
    while hasattr(estimator, "steps"):
        name, estimator = estimator.steps[-1]
        path.append(name)
    return {"__".join([*path, "sample_weight"]): sample_weight}


def check(spec: StudySpec, dataset: Dataset, estimator: Any | None) -> None:
    """Refuse settings that cannot work on this data or model, before any trial runs.

    ``estimator`` is an unfitted example of the study's model (None when it cannot be built
    without the trial's parameters); it tells whether class weights can be passed to it.
    """
    label = spec.label
    modes = _possible(spec, BALANCE_KEY, spec.balance)
    if dataset.task != "classification" and set(modes) - {"none"}:
        raise SpecError(
            f"{label}, field 'balance': class balancing ({', '.join(m for m in modes if m != 'none')}) needs a "
            "classification target, but this target is a regression target. Remove `balance`."
        )
    if "class_weight" in modes and estimator is not None and not _takes_sample_weight(estimator):
        raise SpecError(
            f"{label}, field 'balance': `class_weight` balancing passes sample weights to the model, but "
            f"{spec.model!r} does not accept `sample_weight` in fit. Use `oversample` or `undersample` instead."
        )
    moves = any(
        any(bool(v) for v in _possible(spec, f"{PREFIX}{name}", getattr(spec.augment, name)))
        for name in ("shift", "rotate", "mirror")
    )
    shape = spec.augment.image_shape
    if moves and shape is None:
        raise SpecError(
            f"{label}, field 'augment': shifts, rotations and mirroring need the image size, e.g. "
            "`augment: {image_shape: [8, 8]}` for the 8×8 digits."
        )
    if shape is not None:
        n_features = dataset.X.shape[1]
        if shape[0] * shape[1] != n_features or dataset.categorical_columns:
            raise SpecError(
                f"{label}, field 'augment.image_shape': {list(shape)} images have {shape[0] * shape[1]} pixels, but "
                f"the data has {n_features} features"
                + (f" ({len(dataset.categorical_columns)} of them not numeric)" if dataset.categorical_columns else "")
                + ". Give the shape whose pixels are exactly the (numeric) feature columns."
            )


def _possible(spec: StudySpec, key: str, fixed: Any) -> tuple[Any, ...]:
    """Values a step setting can take: its searched choices or range ends, else its fixed value."""
    param = spec.space.get(key)
    if param is None:
        return (fixed,)
    if param.type == "categorical":
        return tuple(param.choices or ())
    if param.type == "fixed":
        return (param.value,)
    return (param.low, param.high)


def _takes_sample_weight(estimator: Any) -> bool:
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return has_fit_parameter(estimator, "sample_weight")
