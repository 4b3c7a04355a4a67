"""Metric names → scikit-learn scorers, with the task each one fits.

All scikit-learn scorers follow "greater is better" (errors are negated, e.g.
``neg_root_mean_squared_error``), so every single-metric study maximizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.metrics import get_scorer

from tuner.spec import REGRESSION_PREFIXES, Task

# Binary-only scorers: they fail or mean something else on multiclass targets.
_BINARY_ONLY = {"roc_auc", "average_precision", "f1", "precision", "recall", "jaccard", "neg_brier_score"}
# Scorers that need predict_proba (an SVM then gets calibrated probabilities).
_PROBABILISTIC = {"neg_log_loss", "neg_brier_score", "d2_log_loss_score", "d2_brier_score"}


@dataclass(frozen=True)
class Metric:
    """A scorer with its name; ``score(estimator, X, y)`` returns a float, greater is better."""

    name: str
    task: Task
    scorer: Callable[..., Any]

    @property
    def needs_proba(self) -> bool:
        return self.name in _PROBABILISTIC

    def score(self, estimator: Any, X: Any, y: Any) -> float:
        return float(self.scorer(estimator, X, y))


def metric_task(name: str) -> Task:
    return "regression" if name.startswith(REGRESSION_PREFIXES) else "classification"


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
    return Metric(name=name, task=task, scorer=get_scorer(name))
