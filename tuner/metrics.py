"""Metric names → scikit-learn scorers, with the task each one fits.

All scikit-learn scorers follow "greater is better" (errors are negated, e.g.
``neg_root_mean_squared_error``), so every single-metric study maximizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Task = Literal["classification", "regression"]

_REGRESSION_PREFIXES = (
    "r2",
    "explained_variance",
    "neg_max_error",
    "neg_mean_",
    "neg_median_",
    "neg_root_mean_",
    "d2_absolute_error",
)
_CLASSIFICATION_PREFIXES = (
    "accuracy",
    "balanced_accuracy",
    "top_k_accuracy",
    "average_precision",
    "neg_brier_score",
    "neg_log_loss",
    "f1",
    "precision",
    "recall",
    "jaccard",
    "roc_auc",
    "matthews_corrcoef",
    "d2_brier_score",
    "d2_log_loss_score",
    "positive_likelihood_ratio",
    "neg_negative_likelihood_ratio",
)
# Binary-only scorers: they fail or mean something else on multiclass targets.
_BINARY_ONLY = {"roc_auc", "average_precision", "f1", "precision", "recall", "jaccard", "neg_brier_score"}


def _supervised_names() -> tuple[str, ...]:
    from sklearn.metrics import get_scorer_names

    return tuple(
        n
        for n in get_scorer_names()
        if n.startswith(_REGRESSION_PREFIXES + _CLASSIFICATION_PREFIXES) and not n.endswith("_samples")
    )


METRIC_NAMES = _supervised_names()


@dataclass(frozen=True)
class Metric:
    """A scorer with its name; ``score(estimator, X, y)`` returns a float, greater is better."""

    name: str
    task: Task
    scorer: Callable[..., Any]

    def score(self, estimator: Any, X: Any, y: Any) -> float:
        return float(self.scorer(estimator, X, y))


def metric_task(name: str) -> Task:
    return "regression" if name.startswith(_REGRESSION_PREFIXES) else "classification"


def default_metric(task: Task, n_classes: int) -> str:
    if task == "regression":
        return "neg_root_mean_squared_error"
    return "roc_auc" if n_classes == 2 else "balanced_accuracy"


def check_metric(name: str, task: Task, n_classes: int) -> str | None:
    """Return why ``name`` does not fit the data, or None when it does."""
    kind = metric_task(name)
    if kind != task:
        examples = "r2, neg_root_mean_squared_error" if task == "regression" else "roc_auc, accuracy, f1_macro"
        return f"{name!r} is a {kind} metric but the target is a {task} target; use e.g. {examples}"
    if task == "classification" and n_classes > 2 and name in _BINARY_ONLY:
        alt = {"roc_auc": "roc_auc_ovr", "neg_brier_score": "neg_log_loss"}.get(name, f"{name}_macro")
        return f"{name!r} only works for binary targets but this target has {n_classes} classes; use {alt!r}"
    return None


def get_metric(name: str, task: Task) -> Metric:
    from sklearn.metrics import get_scorer

    return Metric(name=name, task=task, scorer=get_scorer(name))
