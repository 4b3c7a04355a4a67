"""The CV plan: the scheme resolved once, the held-out test rows, and the ordered folds.

Splits are computed once per run with a fixed seed, so every trial is scored on the same folds
and pruners compare like with like. Everything downstream (the objective, early stopping,
fidelity screening, the learning curve, refit, ``tuner validate``) reads the scheme and the folds
from the :class:`CVPlan`; nothing resolves ``cv.scheme`` again.

**Fold order.** A pruner decides after fold 1 or 2 by comparing the trial's running score with
other trials' scores on the same folds. That decision is only as good as those first folds are
representative:

- time series: the latest split first. Its model is trained on the most history and scored on the
  most recent rows, which is what the final model will face; the earliest splits train on a small
  prefix and favour overly simple models, so pruning on them would discard good configurations.
- grouped and other uneven folds: the largest validation folds first, since their scores are the
  least noisy. Equal-size folds (k-fold, stratified) keep their order.

The order is a pure function of the folds, so every trial (and ``tuner refit``) sees the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import model_selection as ms

from tuner.data import Dataset
from tuner.errors import SpecError
from tuner.seeds import seed_for
from tuner.spec import CVSpec, ResolvedCVScheme

Split = tuple[np.ndarray, np.ndarray]
_GROUPED = ("group", "stratified_group")
# Schemes stratified on the target alone (no groups), which can stratify on fairness groups too.
_STRATIFIED_ONLY = ("stratified", "repeated_stratified")
_STRATIFIED = ("stratified", "stratified_group", "repeated_stratified")


@dataclass(frozen=True)
class CVPlan:
    """How every trial of a study is cross-validated: made once by :func:`make_plan`."""

    scheme: ResolvedCVScheme
    splits: tuple[Split, ...]  # (train positions, validation positions), in pruning order
    # The folds came from a splitter in Python (TunerSearchCV's `cv`): tuner cannot redraw them.
    given: bool = False

    @property
    def n_splits(self) -> int:
        return len(self.splits)

    @property
    def time_ordered(self) -> bool:
        """Rows are in time order: stopping and held-out rows are the latest ones."""
        return self.scheme == "timeseries"

    @property
    def min_train_rows(self) -> int:
        return min(len(train) for train, _ in self.splits)


def make_plan(spec: CVSpec, dataset: Dataset, *, seed: int, label: str) -> tuple[CVPlan, Dataset, Dataset | None]:
    """Resolve the scheme, hold out ``cv.holdout_test`` and split the rest into ordered folds.

    Args:
        spec: The spec's ``cv`` section.
        dataset: All the data.
        seed: The CV seed (``cv.seed``, else derived from the study seed).
        label: How errors name the spec.

    Returns:
        ``(plan, tuning rows, held-out test rows or None)``; the plan's folds index the tuning rows.

    Raises:
        SpecError: when the scheme cannot work on this data (naming the field to change).
    """
    scheme = resolve_scheme(spec, dataset)
    tuning, holdout = _split_holdout(spec, scheme, dataset, seed=seed_for(seed, "holdout"), label=label)
    splits = _make_splits(spec, scheme, tuning, seed=seed, label=label)
    return CVPlan(scheme=scheme, splits=tuple(order_folds(splits, scheme))), tuning, holdout


def resplit(spec: CVSpec, plan: CVPlan, dataset: Dataset, *, seed: int, label: str) -> tuple[Split, ...] | None:
    """The plan's scheme on ``dataset`` (the tuning rows) drawn again with another ``seed``: an
    independent repeat of the same CV, for re-scoring candidates (:mod:`tuner.racing`).

    None when a new seed would not give new folds: time series, unshuffled folds, or folds given
    by a splitter from Python.
    """
    if plan.given or plan.scheme == "timeseries" or not spec.shuffle:
        return None
    splits = _make_splits(spec, plan.scheme, dataset, seed=seed, label=label)
    return tuple(order_folds(splits, plan.scheme))


def resolve_scheme(spec: CVSpec, dataset: Dataset) -> ResolvedCVScheme:
    """``auto`` → stratified for classification, group when groups exist, kfold otherwise."""
    if spec.scheme != "auto":
        return spec.scheme  # type: ignore[return-value]  # the field holds a checked name, typed str
    if dataset.groups is not None:
        return "stratified_group" if dataset.task == "classification" else "group"
    return "stratified" if dataset.task == "classification" else "kfold"


def order_folds(splits: list[Split], scheme: str) -> list[Split]:
    """``splits`` reordered for pruning (see the module docstring)."""
    if scheme == "timeseries":
        return sorted(splits, key=lambda split: -int(split[0].max(initial=-1)))
    # sorted() is stable: folds of equal size keep their original order.
    return sorted(splits, key=lambda split: -len(split[1]))


def _make_splits(spec: CVSpec, scheme: str, dataset: Dataset, *, seed: int, label: str) -> list[Split]:
    """Return the folds for ``dataset``; raises :class:`SpecError` when the scheme cannot work."""
    _check(spec, scheme, dataset, label)
    if scheme == "holdout" and not spec.shuffle:
        # Unshuffled holdout keeps row order: the last `test_size` share validates (time order).
        n_rows = len(dataset.y)
        cut = n_rows - max(1, round(spec.test_size * n_rows))
        return [(np.arange(cut, dtype=np.int64), np.arange(cut, n_rows, dtype=np.int64))]
    splitter = _splitter(spec, scheme, seed, dataset.task)
    y = _class_and_fairness_group(dataset, spec.folds) if scheme in _STRATIFIED_ONLY else dataset.y
    # Only group schemes take groups; scikit-learn warns when other splitters receive them.
    groups = dataset.groups if scheme in _GROUPED else None
    return [
        (np.asarray(train, dtype=np.int64), np.asarray(val, dtype=np.int64))
        for train, val in splitter.split(dataset.X, y, groups)
    ]


def _class_and_fairness_group(dataset: Dataset, folds: int) -> np.ndarray:
    """Labels to stratify on: class × ``fairness.groups``, so every fold holds its share of each
    group; the classes alone when some class-and-group cell has fewer rows than folds."""
    if dataset.fairness_groups is None:
        return dataset.y
    keys = np.char.add(np.char.add(dataset.y.astype(str), "\x1f"), dataset.fairness_groups.astype(str))
    _, cells, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return cells if counts.min() >= folds else dataset.y


def _splitter(spec: CVSpec, scheme: str, seed: int, task: str) -> Any:
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
        shuffle_split = ms.StratifiedShuffleSplit if task == "classification" else ms.ShuffleSplit
        return shuffle_split(n_splits=1, test_size=spec.test_size, random_state=seed)
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


def _split_holdout(
    spec: CVSpec, scheme: str, dataset: Dataset, *, seed: int, label: str
) -> tuple[Dataset, Dataset | None]:
    """Set ``cv.holdout_test`` of the rows aside as a final test set: ``(tuning rows, test rows)``.

    The test rows never reach tuning: folds are computed on the remaining rows. They depend only
    on the data and ``seed``, so ``tuner refit`` recomputes the very same rows from the stored spec.
    Classification keeps class proportions, grouped data keeps whole groups on one side, and time
    series hold out the last rows (the future).
    """
    if spec.holdout_test is None:
        return dataset, None
    n_rows = len(dataset.y)
    index = np.arange(n_rows)
    size = spec.holdout_test
    if scheme == "timeseries":
        n_test = max(1, round(n_rows * size))
        tuning, test = index[: n_rows - n_test], index[n_rows - n_test :]
    elif dataset.groups is not None:
        splitter = ms.GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        tuning, test = next(splitter.split(dataset.X, dataset.y, dataset.groups))
    else:
        stratify = dataset.y if dataset.task == "classification" else None
        try:
            tuning, test = ms.train_test_split(index, test_size=size, random_state=seed, stratify=stratify)
        except ValueError as exc:
            raise SpecError(
                f"{label}, field 'cv.holdout_test': cannot hold out {size:g} of {n_rows} rows ({exc}). "
                "Raise or lower `cv.holdout_test`, or use more data."
            ) from None
    tuning, test = np.sort(tuning), np.sort(test)
    if len(tuning) < spec.folds:
        raise SpecError(
            f"{label}, field 'cv.holdout_test': holding out {size:g} leaves {len(tuning)} rows for {spec.folds} folds; "
            "lower `cv.holdout_test` or `cv.folds`."
        )
    return dataset.take(tuning), dataset.take(test)
