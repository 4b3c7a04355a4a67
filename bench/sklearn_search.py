"""``TunerSearchCV`` against optuna-integration's ``OptunaSearchCV`` and scikit-learn's ``RandomizedSearchCV``.

Each search tunes the same estimator over the same space, scored by the same folds (one shuffled
splitter object, so every candidate of every method sees the same rows) and the same scorer, with
the same number of candidates, one process each, on three of scikit-learn's bundled data sets:

- ``breast_cancer``: ``StandardScaler`` + ``SVC``, ``C`` and ``gamma`` (log), ROC AUC;
- ``wine``: ``RandomForestClassifier``, four parameters (one categorical), accuracy;
- ``diabetes``: ``StandardScaler`` + ``ElasticNet``, ``alpha`` (log) and ``l1_ratio``, R².

It prints the best mean CV score and the wall time of each method, then runs nested CV,
``cross_val_score(TunerSearchCV(...), X, y)`` on ``breast_cancer``, and prints its outer scores.
The best CV score is each search's own ``best_score_`` on the same folds; it measures how good a
configuration each method found, not a held-out score (the nested CV gives that for tuner).

``TunerSearchCV`` uses its defaults (TPE, median pruning between folds); ``OptunaSearchCV`` uses
Optuna's default TPE without pruning; ``RandomizedSearchCV`` samples the same ranges (log-uniform
where the others search on a log scale).

Usage::

    pip install -e '.[bench]'               # optuna-integration
    python bench/sklearn_search.py          # 40 candidates, 3 seeds: ~2 minutes on 2 cores
    python bench/sklearn_search.py --quick  # 10 candidates, 1 seed: ~10 seconds
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from scipy.stats import loguniform, randint, uniform
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import ElasticNet
from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from tuner import TunerSearchCV

FOLDS = 5
NESTED_OUTER = 3
METHODS = ("tuner", "optuna-integration", "sklearn-random")


@dataclass(frozen=True)
class Task:
    name: str
    load: Callable[..., Any]
    make: Callable[[], Any]
    space: dict[str, Any]  # optuna distributions: TunerSearchCV and OptunaSearchCV take them as they are
    scoring: str
    classifier: bool

    def scipy_space(self) -> dict[str, Any]:
        """The same ranges for ``RandomizedSearchCV``."""
        out: dict[str, Any] = {}
        for name, dist in self.space.items():
            if isinstance(dist, FloatDistribution):
                out[name] = loguniform(dist.low, dist.high) if dist.log else uniform(dist.low, dist.high - dist.low)
            elif isinstance(dist, IntDistribution):
                out[name] = randint(dist.low, dist.high + 1)
            else:
                out[name] = list(dist.choices)
        return out


TASKS = (
    Task(
        "breast_cancer/svc",
        load_breast_cancer,
        lambda: make_pipeline(StandardScaler(), SVC()),
        {
            "svc__C": FloatDistribution(1e-2, 1e3, log=True),
            "svc__gamma": FloatDistribution(1e-5, 1.0, log=True),
        },
        "roc_auc",
        True,
    ),
    Task(
        "wine/random_forest",
        load_wine,
        lambda: RandomForestClassifier(n_jobs=1, random_state=0),
        {
            "n_estimators": IntDistribution(10, 120),
            "max_depth": IntDistribution(1, 12),
            "min_samples_leaf": IntDistribution(1, 20),
            "max_features": CategoricalDistribution(["sqrt", "log2", None]),
        },
        "accuracy",
        True,
    ),
    Task(
        "diabetes/elasticnet",
        load_diabetes,
        lambda: make_pipeline(StandardScaler(), ElasticNet(max_iter=5000)),
        {
            "elasticnet__alpha": FloatDistribution(1e-4, 10.0, log=True),
            "elasticnet__l1_ratio": FloatDistribution(0.0, 1.0),
        },
        "r2",
        False,
    ),
)


def _folds(task: Task, seed: int) -> Any:
    kind = StratifiedKFold if task.classifier else KFold
    return kind(FOLDS, shuffle=True, random_state=seed)


def make_search(method: str, task: Task, n_trials: int, seed: int, cv: Any) -> Any:
    if method == "tuner":
        return TunerSearchCV(task.make(), task.space, cv=cv, scoring=task.scoring, n_trials=n_trials, random_state=seed)
    if method == "optuna-integration":
        from optuna_integration import OptunaSearchCV  # optional extra: bench (optuna-integration)

        return OptunaSearchCV(
            task.make(),
            task.space,
            cv=cv,
            scoring=task.scoring,
            n_trials=n_trials,
            random_state=seed,
            n_jobs=1,
            refit=True,
        )
    return RandomizedSearchCV(
        task.make(), task.scipy_space(), n_iter=n_trials, cv=cv, scoring=task.scoring, random_state=seed, n_jobs=1
    )


def run(task: Task, method: str, n_trials: int, seed: int) -> dict[str, Any]:
    X, y = task.load(return_X_y=True)
    search = make_search(method, task, n_trials, seed, _folds(task, seed))
    started = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - started
    return {"best": float(search.best_score_), "seconds": seconds, "fits": _fold_fits(search)}


def _fold_fits(search: Any) -> int:
    """Fold fits the search made (a pruned trial stops after its last scored fold)."""
    results = getattr(search, "cv_results_", None)
    if results is None:  # OptunaSearchCV keeps its study instead: every trial ran every fold
        return len(search.trials_) * FOLDS
    splits = [np.asarray(results[f"split{i}_test_score"], dtype=float) for i in range(FOLDS)]
    return int(sum(np.isfinite(split).sum() for split in splits))


def nested(n_trials: int, seed: int) -> tuple[list[float], float]:
    """``cross_val_score`` around ``TunerSearchCV`` on breast_cancer: outer folds score the tuned model."""
    task = TASKS[0]
    X, y = task.load(return_X_y=True)
    inner = TunerSearchCV(task.make(), task.space, cv=3, scoring=task.scoring, n_trials=n_trials, random_state=seed)
    outer = StratifiedKFold(NESTED_OUTER, shuffle=True, random_state=seed + 1)
    started = time.perf_counter()
    scores = cross_val_score(inner, X, y, cv=outer, scoring=task.scoring)
    return [float(s) for s in scores], time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 candidates per search and one seed (default 40, 3)")
    parser.add_argument("--trials", type=int, help="candidates per search (overrides --quick)")
    parser.add_argument("--seeds", type=int, help="repeats with seeds 0, 1, …, each with its own folds")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    args = parser.parse_args(argv)
    # One BLAS/OpenMP thread: every method gets the same share of the machine, as tuner's own
    # worker processes do.
    with threadpool_limits(limits=1):
        _compare(args)


def _compare(args: argparse.Namespace) -> None:
    n_trials = args.trials or (10 if args.quick else 40)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # OptunaSearchCV is experimental; convergence warnings of bad ElasticNet/SVC candidates are expected.
    warnings.filterwarnings("ignore")

    print(
        f"{n_trials} candidates per search, {FOLDS}-fold CV (per seed the same shuffled folds for every method), "
        f"seeds {', '.join(map(str, seeds))}; mean over seeds (± standard deviation)"
    )
    print()
    print("| task | metric | method | best CV score | wall s | fold fits |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for task in TASKS:
        for method in args.methods:
            runs = [run(task, method, n_trials, seed) for seed in seeds]
            best = [r["best"] for r in runs]
            spread = f" ± {statistics.stdev(best):.4f}" if len(best) > 1 else ""
            print(
                f"| {task.name} | {task.scoring} | {method} | {statistics.mean(best):.4f}{spread} | "
                f"{statistics.mean(r['seconds'] for r in runs):.1f} | {statistics.mean(r['fits'] for r in runs):.0f} |",
                flush=True,
            )

    scores, seconds = nested(max(5, n_trials // 2), seeds[0])
    print()
    print(
        f"Nested CV, cross_val_score(TunerSearchCV(SVC pipeline, n_trials={max(5, n_trials // 2)}, cv=3), X, y, "
        f"cv={NESTED_OUTER}) on breast_cancer, roc_auc:"
    )
    print(
        f"  outer scores {', '.join(f'{s:.4f}' for s in scores)}; mean {statistics.mean(scores):.4f} "
        f"± {float(np.std(scores)):.4f}; {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
