"""Cross-validation schemes from the spec, as a fixed list of (train_idx, val_idx) pairs.

Splits are computed once per run with a fixed seed, so every trial is scored on the same folds
and pruners compare like with like.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tuner.errors import SpecError

if TYPE_CHECKING:
    from tuner.data import Dataset
    from tuner.spec import CVSpec

Split = tuple[np.ndarray, np.ndarray]
_GROUPED = ("group", "stratified_group")
_STRATIFIED = ("stratified", "stratified_group", "repeated_stratified")


def resolve_scheme(spec: CVSpec, dataset: Dataset) -> str:
    """``auto`` → stratified for classification, group when groups exist, kfold otherwise."""
    if spec.scheme != "auto":
        return spec.scheme
    if dataset.groups is not None:
        return "stratified_group" if dataset.task == "classification" else "group"
    return "stratified" if dataset.task == "classification" else "kfold"


def make_splits(spec: CVSpec, dataset: Dataset, *, seed: int, label: str) -> list[Split]:
    """Return the folds for ``dataset``; raises :class:`SpecError` when the scheme cannot work."""
    scheme = resolve_scheme(spec, dataset)
    _check(spec, scheme, dataset, label)
    splitter = _splitter(spec, scheme, seed)
    y = dataset.y
    return [
        (np.asarray(train, dtype=np.int64), np.asarray(val, dtype=np.int64))
        for train, val in splitter.split(dataset.X, y, dataset.groups)
    ]


def _splitter(spec: CVSpec, scheme: str, seed: int) -> Any:
    from sklearn import model_selection as ms

    seed_or_none = seed if spec.shuffle else None
    if scheme == "kfold":
        return ms.KFold(spec.folds, shuffle=spec.shuffle, random_state=seed_or_none)
    if scheme == "stratified":
        return ms.StratifiedKFold(spec.folds, shuffle=spec.shuffle, random_state=seed_or_none)
    if scheme == "group":
        return ms.GroupKFold(spec.folds, shuffle=spec.shuffle, random_state=seed_or_none)
    if scheme == "stratified_group":
        return ms.StratifiedGroupKFold(spec.folds, shuffle=spec.shuffle, random_state=seed_or_none)
    if scheme == "timeseries":
        return ms.TimeSeriesSplit(spec.folds)
    if scheme == "repeated_kfold":
        return ms.RepeatedKFold(n_splits=spec.folds, n_repeats=spec.repeats, random_state=seed)
    if scheme == "repeated_stratified":
        return ms.RepeatedStratifiedKFold(n_splits=spec.folds, n_repeats=spec.repeats, random_state=seed)
    if scheme == "holdout":
        return ms.ShuffleSplit(n_splits=1, test_size=spec.test_size, random_state=seed)
    raise AssertionError(f"unhandled CV scheme {scheme!r}")


def _check(spec: CVSpec, scheme: str, dataset: Dataset, label: str) -> None:
    where = f"{label}, field 'cv.scheme'"
    if scheme in _GROUPED and dataset.groups is None:
        raise SpecError(
            f"{where}: {scheme!r} CV needs group labels, but `data.groups` is not set. "
            "Name the group column in `data.groups`, or use `stratified`/`kfold`."
        )
    if scheme in _STRATIFIED and dataset.task != "classification":
        raise SpecError(f"{where}: {scheme!r} CV needs a classification target; use `kfold` for regression.")
    n_rows = len(dataset.y)
    if spec.folds > n_rows:
        raise SpecError(f"{label}, field 'cv.folds': {spec.folds} folds but only {n_rows} rows; lower `cv.folds`.")
    if scheme in _STRATIFIED:
        counts = np.bincount(dataset.y)
        smallest = int(counts.min())
        if spec.folds > smallest:
            cls = dataset.classes[int(counts.argmin())]
            raise SpecError(
                f"{label}, field 'cv.folds': {spec.folds} folds but class {cls!r} has only {smallest} rows, so "
                f"some folds would miss it. Set `cv.folds` to at most {smallest}, or merge rare classes."
            )
    if scheme in _GROUPED:
        n_groups = len(np.unique(np.asarray(dataset.groups)))
        if spec.folds > n_groups:
            raise SpecError(
                f"{label}, field 'cv.folds': {spec.folds} folds but only {n_groups} groups; "
                f"set `cv.folds` to at most {n_groups}."
            )
    if spec.repeats > 1 and not scheme.startswith("repeated_"):
        raise SpecError(
            f"{label}, field 'cv.repeats': repeats only apply to repeated_kfold/repeated_stratified, "
            f"not {scheme!r}. Change the scheme or drop `repeats`."
        )
