"""What every trial measures besides its score: train scores, the gap, per-group scores, flags.

The CV objective adds one :class:`FoldScores` per fold to a :class:`FoldLog`; :func:`record`
stores the log as trial user attributes, so ``show``, ``export`` and optuna-dashboard see it.
Every scikit-learn scorer is greater-is-better, so ``gap = mean(train) − mean(validation)`` is
positive when the model does better on the rows it was fitted on.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner.errors import DataError
from tuner.storage import set_user_attrs

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from tuner.data import Dataset
    from tuner.metrics import Metric
    from tuner.spec import StudySpec
    from tuner.splits import Split

# A trial is `overfit` when its gap is larger than OVERFIT_SE standard errors of the per-fold
# gaps (so fold-to-fold noise alone does not flag it) and larger than OVERFIT_SHARE of what the
# model gains over the constant baseline on its training rows (so a tiny but steady gap, such as
# a forest's 1.000 vs 0.995, does not flag it either).
OVERFIT_SE = 2.0
OVERFIT_SHARE = 0.05
# `data.groups` usually names CV groups (patients, sessions); per-group scores of hundreds of
# them are noise, so they are only computed automatically for this many groups or fewer.
MAX_AUTO_GROUPS = 20


@dataclass(frozen=True)
class FoldScores:
    """Scores of one fold: validation, train (original training rows), fit time, per group."""

    val: float
    train: float
    fit_seconds: float
    # group label → (validation score or None when undefined on that fold, validation rows)
    groups: dict[str, tuple[float | None, int]] = field(default_factory=dict)


class FoldLog:
    """The folds a trial has finished so far, with the statistics derived from them."""

    def __init__(self, folds: list[FoldScores] | None = None) -> None:
        self.folds: list[FoldScores] = list(folds or [])

    def add(self, fold: FoldScores) -> None:
        self.folds.append(fold)

    def last(self) -> FoldLog:
        """A log of the latest fold alone (per-fold values for the Wilcoxon pruner)."""
        return FoldLog(self.folds[-1:])

    @property
    def val_scores(self) -> list[float]:
        return [f.val for f in self.folds]

    @property
    def train_scores(self) -> list[float]:
        return [f.train for f in self.folds]

    @property
    def val_mean(self) -> float:
        return statistics.fmean(self.val_scores)

    @property
    def train_mean(self) -> float:
        return statistics.fmean(self.train_scores)

    @property
    def val_std(self) -> float:
        return _spread(self.val_scores)

    @property
    def train_std(self) -> float:
        return _spread(self.train_scores)

    @property
    def gap(self) -> float:
        return self.train_mean - self.val_mean

    @property
    def gap_se(self) -> float:
        """Standard error of the mean gap, from the per-fold gaps (0 with one fold)."""
        gaps = [f.train - f.val for f in self.folds]
        return statistics.stdev(gaps) / math.sqrt(len(gaps)) if len(gaps) > 1 else 0.0

    @property
    def fit_time(self) -> float:
        return sum(f.fit_seconds for f in self.folds)

    @property
    def group_scores(self) -> dict[str, float | None]:
        """Mean validation score of each group over the folds where it could be scored."""
        per_group: dict[str, list[float]] = {}
        for fold in self.folds:
            for name, (score, _) in fold.groups.items():
                per_group.setdefault(name, [])
                if score is not None:
                    per_group[name].append(score)
        return {name: statistics.fmean(s) if s else None for name, s in per_group.items()}

    @property
    def worst_group(self) -> tuple[str, float] | None:
        scored = [(name, s) for name, s in self.group_scores.items() if s is not None]
        return min(scored, key=lambda item: item[1]) if scored else None

    @property
    def group_gap(self) -> float | None:
        scored = [s for s in self.group_scores.values() if s is not None]
        return max(scored) - min(scored) if scored else None


def _spread(values: list[float]) -> float:
    return statistics.pstdev(values) if len(values) > 1 else 0.0


def score_fold(
    metric: Metric,
    model: Any,
    X_train: pd.DataFrame | np.ndarray,
    y_train: np.ndarray,
    X_val: pd.DataFrame | np.ndarray,
    y_val: np.ndarray,
    *,
    fit_seconds: float,
    val_groups: np.ndarray | None = None,
) -> FoldScores:
    """Score a fitted ``model`` on its validation rows, its training rows and each validation group."""
    groups: dict[str, tuple[float | None, int]] = {}
    if val_groups is not None:
        names = np.asarray(val_groups).astype(str)
        for name in np.unique(names):
            mask = names == name
            groups[str(name)] = (_score_or_none(metric, model, X_val[mask], y_val[mask]), int(mask.sum()))
    return FoldScores(
        val=metric.score(model, X_val, y_val),
        train=metric.score(model, X_train, y_train),
        fit_seconds=fit_seconds,
        groups=groups,
    )


def _score_or_none(metric: Metric, model: Any, X: pd.DataFrame, y: np.ndarray) -> float | None:
    # Some metrics are undefined on a group's rows of one fold (ROC AUC with one class present);
    # that fold then does not count for the group.
    try:
        value = metric.score(model, X, y)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def baseline_score(dataset: Dataset, splits: list[Split], metric: Metric) -> float:
    """Mean validation score of a constant model (class priors, or the mean target) on the folds."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    scores = []
    for train, val in splits:
        dummy = DummyClassifier(strategy="prior") if dataset.task == "classification" else DummyRegressor()
        dummy.fit(dataset.X.iloc[train], dataset.y[train])
        scores.append(metric.score(dummy, dataset.X.iloc[val], dataset.y[val]))
    return statistics.fmean(scores)


def flags(log: FoldLog, *, baseline: float | None, best_so_far: float | None = None) -> list[str]:
    """``overfit`` and/or ``underfit`` for a trial's fold log (empty when neither applies).

    overfit: the train − validation gap exceeds ``OVERFIT_SE`` standard errors of the per-fold
    gaps and ``OVERFIT_SHARE`` of the train score's lift over the constant baseline.
    underfit: the train score is no better than the baseline, or lower than ``best_so_far`` (the
    validation score of the study's best trial so far), each by more than the trial's fold-to-fold
    spread: the model cannot even fit its training rows as well as the best configuration
    predicts unseen ones.
    """
    out = []
    lift = None if baseline is None else log.train_mean - baseline
    floor = 0.0 if lift is None else OVERFIT_SHARE * max(lift, 0.0)
    if log.gap > max(OVERFIT_SE * log.gap_se, floor):
        out.append("overfit")
    no_lift = lift is not None and lift <= log.val_std
    if no_lift or (best_so_far is not None and log.train_mean < best_so_far - log.val_std):
        out.append("underfit")
    return out


def record(
    trial: optuna.Trial, log: FoldLog, *, baseline: float | None, messages: set[str] | None = None
) -> dict[str, Any]:
    """Store the fold log as user attributes of ``trial``; returns what was stored."""
    attrs: dict[str, Any] = {
        "val_scores": [_finite(s) for s in log.val_scores],
        "val_mean": _finite(log.val_mean),
        "val_std": _finite(log.val_std),
        "train_scores": [_finite(s) for s in log.train_scores],
        "train_mean": _finite(log.train_mean),
        "train_std": _finite(log.train_std),
        "gap": _finite(log.gap),
        "fit_seconds": [round(f.fit_seconds, 4) for f in log.folds],
        "flags": flags(log, baseline=baseline, best_so_far=best_val_mean(trial.study)),
    }
    if any(f.groups for f in log.folds):
        worst = log.worst_group
        attrs["group_scores"] = {k: _finite(v) if v is not None else None for k, v in log.group_scores.items()}
        attrs["worst_group_score"] = _finite(worst[1]) if worst else None
        attrs["worst_group_name"] = worst[0] if worst else None
        attrs["group_gap"] = _finite(log.group_gap) if log.group_gap is not None else None
    if messages:
        attrs["warnings"] = sorted(messages)[:10]
    set_user_attrs(trial, attrs)
    return attrs


def best_val_mean(study: optuna.Study) -> float | None:
    """Mean validation score of the study's best trial so far (the best on the first objective of
    the Pareto front for several objectives); None before the first complete feasible trial."""
    if len(study.directions) == 1:
        try:
            best = [study.best_trial]
        except ValueError:  # no complete (feasible) trial yet
            return None
    else:
        best = study.best_trials
    values = [t.user_attrs.get("val_mean") for t in best]
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return max(finite) if finite else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def scoring_groups(dataset: Dataset, *, explicit: bool) -> tuple[np.ndarray | None, str]:
    """The labels per-group scores use, and why there are none when there are none.

    ``explicit``: the groups come from ``fairness.groups`` (always scored); otherwise from
    ``data.groups``, scored only when there are at most ``MAX_AUTO_GROUPS`` of them.
    """
    groups = dataset.fairness_groups if explicit else dataset.groups
    if groups is None:
        return None, "neither `fairness.groups` nor `data.groups` is set."
    n_groups = len(np.unique(groups.astype(str)))
    if not explicit and n_groups > MAX_AUTO_GROUPS:
        return None, (
            f"`data.groups` has {n_groups} groups, more than the {MAX_AUTO_GROUPS} scored automatically "
            "(CV groups such as patient ids are usually many and small)."
        )
    return groups, ""


def check_groups(groups: np.ndarray, *, field_name: str, label: str) -> None:
    """Per-group scores need every group to have at least two rows and no missing labels."""
    import pandas as pd

    missing = int(pd.isna(groups).sum())
    if missing:
        raise DataError(
            f"{label}, field {field_name!r}: the group column has {missing} missing values, so those rows "
            "belong to no group. Fill them (e.g. with 'unknown') or drop those rows."
        )
    names, counts = np.unique(groups.astype(str), return_counts=True)
    single = names[counts < 2]
    if len(single):
        shown = ", ".join(repr(str(n)) for n in single[:5]) + (" …" if len(single) > 5 else "")
        raise DataError(
            f"{label}, field {field_name!r}: {len(single)} group(s) have a single row ({shown}); a group of "
            "one row cannot be scored across folds. Merge small groups into an 'other' group or drop those rows."
        )


def prepare_groups(spec: StudySpec, dataset: Dataset) -> np.ndarray | None:
    """The labels per-group scores use, checked before any trial runs (None when there are none).

    Raises:
        DataError: a group with one row, or missing labels.
        SpecError: a group objective or constraint while no groups are scored.
    """
    from tuner import targets

    explicit = spec.fairness.groups is not None
    groups, why = scoring_groups(dataset, explicit=explicit)
    if groups is not None:
        check_groups(groups, field_name="fairness.groups" if explicit else "data.groups", label=spec.label)
    targets.check(spec, has_groups=groups is not None, why_no_groups=why)
    return groups
