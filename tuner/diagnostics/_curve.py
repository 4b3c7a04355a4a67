"""Would more data help? Train and validation scores of one configuration at growing training sizes.

Each fold's training rows are cut to a fraction (nested: a smaller size is a subset of a larger
one, and classes keep their proportions); the model is fitted on the cut and scored on the full
validation rows of the same fold, so every size is judged on the same rows as the study itself.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from tuner.cv import fit_and_score, plan_for
from tuner.errors import TunerError
from tuner.seeds import seed_for
from tuner.setup import StudyContext

DEFAULT_SIZES = (0.1, 0.25, 0.5, 0.75, 1.0)
# The verdict compares the full size with the half size (one doubling of the training rows).
# More data is "likely to help" when that doubling raised the validation score
# - by more than RISE_SE standard errors of the per-fold differences (not noise),
# - by at least RISE_SHARE of the whole rise since the smallest size (the curve still climbs at
#   its end; on a log-linear curve each doubling brings ~30% of the rise across 0.1 → 1), and
# - by at least RISE_LIFT of the model's lift over the constant baseline (a rise worth the data:
#   +0.001 ROC AUC on a 0.99 model is real but not a reason to collect more rows).
RISE_SE = 2.0
RISE_SHARE = 0.15
RISE_LIFT = 0.01


@dataclass(frozen=True)
class CurvePoint:
    """Scores at one training size (means over folds; ``val_scores`` per fold)."""

    fraction: float
    rows: int
    train_mean: float
    val_mean: float
    val_std: float
    val_scores: tuple[float, ...]


@dataclass(frozen=True)
class LearningCurve:
    """The curve and what it says about more data."""

    metric: str
    points: tuple[CurvePoint, ...]
    gain: float
    gain_se: float
    share: float
    more_data_helps: bool
    verdict: str


def learning_curve(
    context: StudyContext, params: Mapping[str, Any], *, sizes: Sequence[float] = DEFAULT_SIZES
) -> LearningCurve:
    """Fit the configuration ``params`` at each training size on the study's folds.

    Args:
        context: The study's context (data, folds, metric, model).
        params: Every parameter the objective used, fixed ones and augmentation settings included
            (``context.params_of(trial)`` for a finished trial).
        sizes: Fractions of each training fold, increasing, ending at 1.0 and including one ≤ 0.5.

    Returns:
        The :class:`LearningCurve` with a verdict on whether more data is likely to help.
    """
    sizes = check_sizes(sizes)
    estimator = context.build_estimator(dict(params))
    plan = plan_for(context.spec, params)
    X, y = context.dataset.X, context.dataset.y
    stratify = context.dataset.task == "classification"
    per_size: dict[float, list[tuple[float, float, int]]] = {s: [] for s in sizes}
    for index, (train, val) in enumerate(context.cv.splits):
        order = _nested_order(train, y, np.random.default_rng(seed_for(context.spec.seed, "curve", index)), stratify)
        for fraction in sizes:
            rows = order(fraction)
            # Convergence notes on tiny cuts say nothing new here: the fold's warnings are dropped.
            fold = fit_and_score(
                clone(estimator),
                X,
                y,
                rows,
                val,
                seed=seed_for(context.spec.seed, "augment", index),
                metric=context.metric,
                augment=plan,
            )
            assert fold.train is not None and fold.val is not None
            per_size[fraction].append((fold.train, fold.val, len(rows)))
    points = tuple(
        CurvePoint(
            fraction=fraction,
            rows=round(statistics.fmean(r for _, _, r in scores)),
            train_mean=statistics.fmean(t for t, _, _ in scores),
            val_mean=statistics.fmean(v for _, v, _ in scores),
            val_std=statistics.pstdev([v for _, v, _ in scores]) if len(scores) > 1 else 0.0,
            val_scores=tuple(v for _, v, _ in scores),
        )
        for fraction, scores in per_size.items()
    )
    return judge(points, metric=context.metric.name, baseline=context.baseline)


def check_sizes(sizes: Sequence[float]) -> tuple[float, ...]:
    """Sizes must increase within (0, 1], end at 1.0 and include a size ≤ 0.5 to compare against."""
    values = tuple(float(s) for s in sizes)
    ok = (
        len(values) >= 3
        and all(0 < s <= 1 for s in values)
        and list(values) == sorted(set(values))
        and values[-1] == 1.0
        and values[0] <= 0.5
    )
    if not ok:
        raise TunerError(
            f"learning-curve sizes must be at least 3 increasing fractions in (0, 1], starting at or below 0.5 "
            f"and ending at 1.0, e.g. 0.1,0.25,0.5,0.75,1; got {', '.join(map(str, values)) or 'none'}."
        )
    return values


def _nested_order(train: np.ndarray, y: np.ndarray, rng: np.random.Generator, stratify: bool) -> Any:
    """A function fraction → training rows; smaller fractions take a prefix of the same shuffle."""
    if not stratify:
        shuffled = rng.permutation(train)
        return lambda fraction: np.sort(shuffled[: max(2, round(fraction * len(shuffled)))])
    by_class = [rng.permutation(train[y[train] == c]) for c in np.unique(y[train])]
    return lambda fraction: np.sort(np.concatenate([rows[: max(1, round(fraction * len(rows)))] for rows in by_class]))


def judge(points: Sequence[CurvePoint], *, metric: str, baseline: float | None = None) -> LearningCurve:
    """Decide from the curve whether more data is likely to help, and say why with the numbers."""
    full = points[-1]
    half = min((p for p in points[:-1] if p.fraction <= 0.5), key=lambda p: abs(p.fraction - 0.5))
    first = points[0]
    diffs = [a - b for a, b in zip(full.val_scores, half.val_scores, strict=True)]
    gain = statistics.fmean(diffs)
    gain_se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
    rise = full.val_mean - first.val_mean
    share = gain / rise if rise > 0 else 0.0
    worth = RISE_LIFT * max(full.val_mean - baseline, 0.0) if baseline is not None else 0.0
    helps = gain > max(RISE_SE * gain_se, worth, 0.0) and share >= RISE_SHARE
    numbers = (
        f"validation {metric} went {half.val_mean:.4g} → {full.val_mean:.4g} ({gain:+.3g} ± {gain_se:.2g}) "
        f"when the training rows grew {half.rows} → {full.rows}, {share:.0%} of the change since {first.rows} rows "
        f"({first.val_mean:.4g})"
    )
    if helps:
        verdict = f"More data is likely to help: {numbers}; the curve is still rising at the largest size."
    else:
        if gain <= max(RISE_SE * gain_se, 0.0):
            why = "the rise is within fold-to-fold noise"
        elif share < RISE_SHARE:
            why = "the curve has flattened"
        else:
            why = f"the rise is under {RISE_LIFT:.0%} of the model's lift over the constant baseline"
        verdict = (
            f"More data is unlikely to help much: {numbers}; {why}. Look at features, the model family or "
            "regularisation instead."
        )
    return LearningCurve(
        metric=metric,
        points=tuple(points),
        gain=gain,
        gain_se=gain_se,
        share=share,
        more_data_helps=helps,
        verdict=verdict,
    )
