"""A custom model and a custom objective, from Python.

The objective receives the trial and a context with the data, the fixed CV folds and the metric,
so it can score anything: here, accuracy penalised by the model's size.

    python examples/custom_objective.py
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import optuna
from sklearn.base import clone
from sklearn.tree import DecisionTreeClassifier

import tuner

# A model the catalog does not have: register it with its default search space.
tuner.register_model(
    "decision_tree",
    classifier=DecisionTreeClassifier,
    space={
        "max_depth": {"type": "int", "low": 1, "high": 12},
        "min_samples_leaf": {"type": "int", "low": 1, "high": 30, "log": True},
        "criterion": {"type": "categorical", "choices": ["gini", "entropy"]},
    },
    description="A single CART decision tree",
)


def small_and_accurate(trial: optuna.Trial, ctx: tuner.ObjectiveContext) -> float:
    """Mean CV score minus 0.002 per leaf: prefers trees a person can still read."""
    estimator = ctx.build_estimator(ctx.suggest(trial))
    scores, leaves = [], []
    for index in range(len(ctx.splits)):
        X_train, y_train, X_val, y_val = ctx.fold(index)
        model = clone(estimator).fit(X_train, y_train)
        scores.append(ctx.metric.score(model, X_val, y_val))
        leaves.append(model.get_n_leaves())
    trial.set_user_attr("val_scores", scores)
    trial.set_user_attr("leaves", statistics.fmean(leaves))
    return statistics.fmean(scores) - 0.002 * statistics.fmean(leaves)


def main() -> None:
    spec = {
        "name": "custom-tree",
        "data": {"source": "sklearn:breast_cancer"},
        "model": "decision_tree",
        "metric": "accuracy",
        "cv": {"folds": 5},
        "budget": {"n_trials": 25},
        "storage": str(Path(tempfile.mkdtemp()) / "custom.db"),
    }
    result = tuner.run_study(spec, objective=small_and_accurate)
    best = result.best_trial
    assert best is not None
    print(f"best penalised score {best.value:.4f}: {best.params}, {best.user_attrs['leaves']:.1f} leaves")


if __name__ == "__main__":
    main()
