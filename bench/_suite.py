"""Data sets, tasks and scoring shared by bench/portfolio.py and bench/build_portfolio.py.

A data set is one of scikit-learn's bundled sets (loaded by tuner itself from ``sklearn:<name>``,
as a user's spec would) or a generated one (``make_classification`` / ``make_regression`` /
``make_friedman1`` with a fixed seed, handed to tuner as a DataFrame). A task is a catalog model
on a data set with a metric. Every method scores a configuration by the same cross-validation:
tuner's own folds for the task, pinned by a seed (``cv.seed``).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

# One thread per process: runs go in parallel processes and must not fight over cores. Set
# before numpy/sklearn/xgboost are imported, in this process and so in the workers it starts.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

FOLDS = 5
BUNDLED = ("breast_cancer", "wine", "digits", "iris", "diabetes")


def _classification(n: int, features: int, informative: int, classes: int, sep: float, flip: float, seed: int) -> Any:
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=n,
        n_features=features,
        n_informative=informative,
        n_redundant=min(features - informative, informative // 2),
        n_classes=classes,
        n_clusters_per_class=2 if classes <= 3 else 1,
        class_sep=sep,
        flip_y=flip,
        random_state=seed,
    )


def _regression(n: int, features: int, informative: int, noise: float, rank: int | None, seed: int) -> Any:
    from sklearn.datasets import make_regression

    return make_regression(
        n_samples=n,
        n_features=features,
        n_informative=informative,
        noise=noise,
        effective_rank=rank,
        random_state=seed,
    )


def _friedman(n: int, noise: float, seed: int) -> Any:
    from sklearn.datasets import make_friedman1

    return make_friedman1(n_samples=n, n_features=10, noise=noise, random_state=seed)


# Generated sets: names say what they are. The first of each kind is also a benchmark task; the rest
# only widen the set the start-up portfolio is learned on (bench/build_portfolio.py).
GENERATED: dict[str, Callable[[], Any]] = {
    "cls_20f_noisy": lambda: _classification(600, 20, 6, 2, 0.8, 0.08, 11),
    "cls_40f_3class": lambda: _classification(700, 40, 10, 3, 1.0, 0.03, 12),
    "cls_10f_easy": lambda: _classification(400, 10, 5, 2, 1.5, 0.01, 13),
    "cls_60f_sparse": lambda: _classification(800, 60, 8, 2, 0.7, 0.05, 14),
    "cls_15f_5class": lambda: _classification(900, 15, 8, 5, 1.2, 0.02, 15),
    "cls_8f_small": lambda: _classification(200, 8, 4, 2, 1.0, 0.1, 16),
    "reg_20f_linear": lambda: _regression(600, 20, 8, 20.0, None, 21),
    "reg_friedman": lambda: _friedman(700, 1.0, 22),
    "reg_50f_lowrank": lambda: _regression(500, 50, 15, 5.0, 10, 23),
    "reg_friedman_small": lambda: _friedman(250, 0.5, 24),
    "reg_10f_noisy": lambda: _regression(400, 10, 4, 60.0, None, 25),
}

KIND = {
    **{name: "classification" for name in ("breast_cancer", "wine", "digits", "iris")},
    "diabetes": "regression",
    **{name: ("classification" if name.startswith("cls") else "regression") for name in GENERATED},
}


@cache
def frame(name: str) -> Any:
    """The generated data set ``name`` as a DataFrame with a ``target`` column (None for a bundled one)."""
    if name in BUNDLED:
        return None
    import pandas as pd

    X, y = GENERATED[name]()
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    table["target"] = y
    return table


def metric_for(data: str) -> str:
    if KIND[data] == "regression":
        return "neg_root_mean_squared_error"
    binary = data in ("breast_cancer",) or (data.startswith("cls") and "class" not in data)
    return "roc_auc" if binary else "accuracy"


@dataclass(frozen=True)
class Task:
    model: str
    data: str
    # Overrides of the catalog's default space, for every method alike.
    space: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.model}/{self.data}"

    @property
    def metric(self) -> str:
        return metric_for(self.data)


def spec(task: Task, seed: int, *, cv_seed: int | None = None, repeats: int = 1, folds: int = FOLDS) -> dict[str, Any]:
    """The study spec of ``task``: tuner's defaults, with the folds pinned by their own seed."""
    from tuner.seeds import seed_for

    cv: dict[str, Any] = {"folds": folds, "seed": seed_for(seed, "bench-cv") if cv_seed is None else cv_seed}
    if repeats > 1:
        kind = "repeated_stratified" if KIND[task.data] == "classification" else "repeated_kfold"
        cv.update(scheme=kind, repeats=repeats)
    return {
        "name": f"bench-{task.model}-{task.data}-{seed}",
        "data": {"source": f"sklearn:{task.data}"} if task.data in BUNDLED else {"target": "target"},
        "model": task.model,
        "metric": task.metric,
        "cv": cv,
        "space": dict(task.space),
        "seed": seed,
    }


def context(task: Task, seed: int, **kwargs: Any) -> Any:
    """tuner's study context of ``task`` (data, folds, metric, space, model), without running anything."""
    import tuner
    from tuner.setup import build

    return build(tuner.load_spec(spec(task, seed, **kwargs)), data=frame(task.data))


def cv_score(ctx: Any, params: Mapping[str, Any]) -> float:
    """Mean validation score of ``params`` over ``ctx``'s folds (higher is better), as tuner builds the model."""
    import warnings

    from sklearn.base import clone

    X, y = ctx.dataset.X, ctx.dataset.y
    estimator = ctx.build_estimator(_with_fixed(ctx, params))
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train, val in ctx.splits:
            model = clone(estimator).fit(X.iloc[train], y[train])
            scores.append(ctx.metric.score(model, X.iloc[val], y[val]))
    return statistics.fmean(scores)


def _with_fixed(ctx: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` plus the space's fixed values (what tuner's objective builds the model with)."""
    out = {name: p.value for name, p in ctx.space.items() if p.type == "fixed"}
    out.update(params)
    return out


def heldout_score(task: Task, params: Mapping[str, Any], *, seed: int, repeats: int = 3) -> float:
    """``params`` re-scored on fresh partitions: ``repeats`` x 5-fold CV with a seed no search saw."""
    from tuner.seeds import seed_for

    ctx = context(task, seed, cv_seed=seed_for(seed, "bench-heldout"), repeats=repeats)
    return cv_score(ctx, params)
