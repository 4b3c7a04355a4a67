"""The one fit loop: fit an estimator on one fold's training rows and score it.

The CV objective, multi-fidelity screening, the learning curve and the refit all call
:func:`fit_and_score`, as every part of scikit-learn's ``model_selection`` calls its
``_fit_and_score``. It is where the training-rows-only rules hold: resampling and augmentation
touch the rows the model is fitted on, never the validation rows; train scores use the original
training rows; early stopping holds out a split of the training rows, never the validation fold.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tuner.cv._augment import Plan, apply, fit_kwargs
from tuner.cv._early_stopping import MIN_ROWS, StoppingPlan, fit_with_stopping, stopping_split
from tuner.cv._epochs import EpochCurves, OnEpoch, fit_by_epoch
from tuner.cv._records import FoldScores
from tuner.metrics import Metric
from tuner.models import EpochHook

_NO_AUGMENT = Plan()
# Warning texts are cut to this length: a model can put a whole array into one.
_WARNING_CHARS = 300


def _unchanged(X: Any) -> Any:
    return X


@dataclass(frozen=True)
class FoldResult:
    """What one fit measured. Scores are None when not asked for (no validation rows, say)."""

    estimator: Any
    fit_seconds: float
    val: float | None = None
    score_seconds: float = 0.0
    train: float | None = None
    # group label → (validation score or None when undefined on that fold, validation rows)
    groups: dict[str, tuple[float | None, int]] = field(default_factory=dict)
    best_iteration: int | None = None
    warnings: tuple[str, ...] = ()
    # A network's per-epoch losses (see tuner.cv._epochs), or None.
    epochs: EpochCurves | None = None

    def scores(self) -> FoldScores:
        """The fold's record for the trial's :class:`~tuner.cv.FoldLog` (needs both scores)."""
        assert self.val is not None and self.train is not None
        return FoldScores(
            val=self.val,
            train=self.train,
            fit_seconds=self.fit_seconds,
            groups=self.groups,
            score_seconds=self.score_seconds,
        )


def fit_and_score(
    estimator: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray | None,
    val: np.ndarray | None = None,
    *,
    seed: int,
    metric: Metric | None = None,
    augment: Plan = _NO_AUGMENT,
    stopping: StoppingPlan | None = None,
    groups: np.ndarray | None = None,
    val_groups: np.ndarray | None = None,
    score_train: bool = True,
    rows: Callable[[Any], Any] = _unchanged,
    capture_warnings: bool = True,
    fit_params: Mapping[str, Any] | None = None,
    on_epoch: OnEpoch | None = None,
) -> FoldResult:
    """Fit ``estimator`` (in place) on the rows ``train`` of ``X, y`` and score it on the rows ``val``.

    Args:
        estimator: An unfitted estimator; callers pass a clone when they keep the original.
        X: Every row's features.
        y: Every row's target.
        train: Positions of the rows to fit on (None: all rows).
        val: Positions of the rows to score on (None: no validation score).
        seed: Seed of the resampling, augmentation and early-stopping split.
        metric: The scorer (None: fit only).
        augment: Resampling and augmentation of the training rows.
        stopping: Early stopping on a split of the training rows (None: fit to the cap). A network's
            plan trains it epoch by epoch, measuring its loss on that split (see ``tuner.cv._epochs``).
        groups: Group labels of every row; the stopping split keeps whole groups on one side.
        val_groups: Labels of the validation rows whose groups get scores of their own.
        score_train: Also score the original training rows (the train − validation gap), on a sample as
            large as the validation fold (:func:`train_score_rows`).
        rows: Turns fold rows into the form the model takes fastest (see ``native_rows``).
        capture_warnings: Collect warnings raised while fitting and scoring in the result instead
            of letting them through (they would scroll a progress display away); callers keep or
            drop them.
        fit_params: Keyword arguments of ``fit``; values with one entry per row of ``X`` are cut to
            the training rows (as scikit-learn's searches do).
        on_epoch: Called after each epoch of a network trained epoch by epoch, with the epoch
            (0-based) and its train and validation losses; what it raises ends the fit.

    Returns:
        A :class:`FoldResult`.
    """
    X_train = rows(X if train is None else X.iloc[train])
    y_train = y if train is None else y[train]
    best_iteration = None
    curves = None
    caught: list[warnings.WarningMessage] = []
    with warnings.catch_warnings(record=True) if capture_warnings else contextlib.nullcontext() as recorded:
        if recorded is not None:
            warnings.simplefilter("always")
            caught = recorded
        started = time.perf_counter()
        if stopping is None or len(y_train) < MIN_ROWS:
            data = apply(augment, X_train, y_train, seed=seed)
            extra = _fold_params(fit_params, train, len(y))
            estimator.fit(data.X, data.y, **fit_kwargs(estimator, data.sample_weight), **extra)
        else:
            fit_rows, stop_rows = stopping_split(
                y_train,
                stopping.fraction,
                seed=seed,
                stratify=stopping.stratify,
                groups=None if groups is None else (groups if train is None else groups[train]),
                ordered=stopping.ordered,
            )
            # The rows it fits on and the rows it stops on (never the validation fold).
            split = (_take(X_train, fit_rows), y_train[fit_rows], _take(X_train, stop_rows), y_train[stop_rows])
            if isinstance(stopping.hook, EpochHook):
                curves = fit_by_epoch(
                    estimator,
                    stopping.hook,
                    augment,
                    *split,
                    rounds=stopping.rounds,
                    min_delta=stopping.min_delta,
                    seed=seed,
                    on_epoch=on_epoch,
                )
                best_iteration = curves.best_epoch
            else:
                assert stopping.rounds is not None  # boosting plans exist only with early stopping on
                best_iteration = fit_with_stopping(
                    estimator,
                    stopping.hook,
                    augment,
                    *split,
                    rounds=stopping.rounds,
                    min_delta=stopping.min_delta,
                    seed=seed,
                )
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        val_score = train_score = None
        score_seconds = 0.0
        group_scores: dict[str, tuple[float | None, int]] = {}
        if metric is not None and val is not None:
            X_val, y_val = rows(X.iloc[val]), y[val]
            if val_groups is not None:
                group_scores = _group_scores(metric, estimator, X_val, y_val, val_groups)
            val_score = metric.score(estimator, X_val, y_val)
            # The validation rows only, as scikit-learn's `score_time` (train scores are extra work of ours).
            score_seconds = time.perf_counter() - started
        if metric is not None and score_train:
            sample = train_score_rows(y_train, None if val is None else len(val), seed=seed, task=metric.task)
            if sample is None:
                train_score = metric.score(estimator, X_train, y_train)
            else:
                train_score = metric.score(estimator, _take(X_train, sample), y_train[sample])
    messages = dict.fromkeys(f"{w.category.__name__}: {w.message}"[:_WARNING_CHARS] for w in caught)
    return FoldResult(
        estimator=estimator,
        fit_seconds=seconds,
        val=val_score,
        train=train_score,
        score_seconds=score_seconds,
        groups=group_scores,
        best_iteration=best_iteration,
        warnings=tuple(messages),
        epochs=curves,
    )


# Samples drawn so far, by the draw's inputs: every trial of a study samples each fold's rows with
# the same seed, and a stratified draw costs more than a small model's prediction on it.
_SAMPLES: dict[tuple[bytes, str, int, int, bool], np.ndarray] = {}
_SAMPLES_KEPT = 256


def sample_rows(y: np.ndarray, size: int, *, seed: int, stratify: bool) -> np.ndarray:
    """Sorted positions of ``size`` of the rows of ``y``, drawn with ``seed``, keeping each class's
    share when ``stratify`` (read-only: the same draw is handed out again).

    Raises:
        ValueError: ``stratify`` with a class too small to appear in the sample.
    """
    y = np.ascontiguousarray(y)
    # Labels held as Python objects have no bytes to key on: they are drawn every time.
    key = None
    if y.dtype.kind != "O":
        key = (hashlib.blake2b(y.data, digest_size=16).digest(), y.dtype.str, size, seed, stratify)
        found = _SAMPLES.get(key)
        if found is not None:
            return found
    rows, _ = train_test_split(np.arange(len(y)), train_size=size, random_state=seed, stratify=y if stratify else None)
    rows = np.sort(rows)
    rows.setflags(write=False)
    if key is not None:
        if len(_SAMPLES) >= _SAMPLES_KEPT:
            _SAMPLES.clear()
        _SAMPLES[key] = rows
    return rows


def train_score_rows(y_train: np.ndarray, size: int | None, *, seed: int, task: str) -> np.ndarray | None:
    """Positions (within the fold's training rows) the train score is measured on, None for all.

    A sample as large as the validation fold: train and validation scores then have the same
    precision, and scoring the training rows costs no more than scoring the validation fold (a
    5-fold CV would otherwise predict four times as many rows for the gap as for the score it
    tunes). Classification samples are stratified; a class too small to stratify keeps every row.
    """
    if size is None or len(y_train) <= size:
        return None
    try:
        return sample_rows(y_train, size, seed=seed, stratify=task == "classification")
    except ValueError:
        return None


def _fold_params(params: Mapping[str, Any] | None, train: np.ndarray | None, n_rows: int) -> dict[str, Any]:
    if not params or train is None:
        return dict(params or {})
    out = {}
    for key, value in params.items():
        per_row = not isinstance(value, str | bytes) and hasattr(value, "__len__")
        if per_row and len(value) == n_rows:
            value = _take(value, train) if hasattr(value, "iloc") else np.asarray(value)[train]
        out[key] = value
    return out


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _group_scores(
    metric: Metric, model: Any, X_val: Any, y_val: np.ndarray, val_groups: np.ndarray
) -> dict[str, tuple[float | None, int]]:
    names = np.asarray(val_groups).astype(str)
    out: dict[str, tuple[float | None, int]] = {}
    for name in np.unique(names):
        mask = names == name
        out[str(name)] = (
            _score_or_none(metric, model, _take(X_val, np.flatnonzero(mask)), y_val[mask]),
            int(mask.sum()),
        )
    return out


def _score_or_none(metric: Metric, model: Any, X: Any, y: np.ndarray) -> float | None:
    # Some metrics are undefined on a group's rows of one fold (ROC AUC with one class present);
    # that fold then does not count for the group.
    try:
        value = metric.score(model, X, y)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
