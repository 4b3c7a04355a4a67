"""Learn tuner's start-up portfolio (tuner/search/portfolio.json) offline, across many data sets.

For every catalog model and task kind (classification / regression) it scores a pool of candidate
configurations on every data set of that kind in bench/_suite.py (scikit-learn's bundled sets and
generated ones): each candidate's mean 3-fold CV score, on folds no benchmark run uses. Per data
set the scores are normalised (0 = the median candidate, 1 = the best one, floored at -1), and the
portfolio is chosen greedily, as FLAML's zero-shot and auto-sklearn 2.0's portfolios are: first the
candidate with the best mean, then each time the one that most raises the mean over data sets of the
best normalised score among those chosen so far, until ``--size`` are chosen.

The pool is the library defaults (and the catalog's former hand-picked starts) plus random draws
from the catalog's default space. The score matrix is written to ``--matrix`` (and reused when it
exists, so a rebuild with other selection settings costs nothing); bench/portfolio.py reads it to
learn leave-one-data-set-out portfolios, so a task is never tuned with a portfolio that saw its data.

Usage::

    python bench/build_portfolio.py --matrix /tmp/portfolio-matrix.json            # ~30 CPU minutes
    python bench/build_portfolio.py --matrix /tmp/portfolio-matrix.json --write     # and ship it
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _suite as S

# The pool: cheap models can afford twice as many candidates, and a larger pool holds more
# configurations that are good on a data set unlike the others.
CANDIDATES = 20
CHEAP_CANDIDATES = 40
SIZE = 6
CV_FOLDS = 3
CV_SEED = 777_777
OUT = Path(__file__).resolve().parent.parent / "tuner" / "search" / "portfolio.json"
# Forests and boosting cost seconds per candidate: they are scored on a subset of the data sets
# (digits, 10 classes, would cost minutes per candidate), the cheap models on all of them.
CHEAP = ("logistic", "ridge", "elastic_net", "knn", "svm")
COSTLY_SETS = (
    "breast_cancer",
    "wine",
    "iris",
    "cls_20f_noisy",
    "cls_8f_small",
    "cls_10f_easy",
    "cls_40f_3class",
    "diabetes",
    "reg_friedman",
    "reg_friedman_small",
    "reg_10f_noisy",
    "reg_20f_linear",
    "reg_50f_lowrank",
)
# Tree counts and boosting iterations are drawn from [the catalog's low, 200]: the first trials of a study should be
# cheap (FLAML starts from its cheapest configuration for the same reason), and the pool is scored
# without early stopping. Where the study's folds stop early, the count is raised to the top of the
# range anyway (tuner.search.known_good).
ITERATIONS = ("n_estimators", "max_iter")

# The libraries' own defaults (rounded into the catalog's ranges), and the catalog's former starts.
DEFAULTS: dict[str, list[dict[str, Any]]] = {
    "logistic": [{"C": 1.0, "class_weight": None}],
    "ridge": [{"alpha": 1.0}],
    "elastic_net": [{"alpha": 1.0, "l1_ratio": 0.5}, {"alpha": 0.01, "l1_ratio": 0.5}],
    "random_forest": [
        {"n_estimators": 100, "max_depth": 32, "min_samples_leaf": 1, "max_features": 0.3, "class_weight": None}
    ],
    "extra_trees": [
        {"n_estimators": 100, "max_depth": 32, "min_samples_leaf": 1, "max_features": 1.0, "class_weight": None}
    ],
    "knn": [{"n_neighbors": 5, "weights": "uniform", "p": 2}],
    "svm": [{"C": 1.0, "kernel": "rbf", "gamma": 0.05, "class_weight": None, "epsilon": 0.1}],
    "hist_gradient_boosting": [
        {
            "learning_rate": 0.1,
            "max_iter": 100,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 1e-6,
            "max_features": 1.0,
        },
        {
            "learning_rate": 0.1,
            "max_iter": 100,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 10,
            "l2_regularization": 1.0,
            "max_features": 0.8,
        },
    ],
    "xgboost": [
        {
            "n_estimators": 100,
            "learning_rate": 0.3,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_lambda": 1.0,
            "reg_alpha": 1e-3,
        },
        {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "max_depth": 4,
            "min_child_weight": 1.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
            "reg_alpha": 1e-3,
        },
    ],
    "lightgbm": [
        {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_lambda": 1e-8,
            "reg_alpha": 1e-8,
        },
        {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "num_leaves": 15,
            "min_child_samples": 10,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
            "reg_alpha": 1e-8,
        },
    ],
}


def _round(value: Any) -> Any:
    if isinstance(value, float) and value != 0 and math.isfinite(value):
        return float(f"{value:.3g}")
    return value


def candidates(model: str, kind: str) -> list[dict[str, Any]]:
    """The pool for ``model`` on ``kind``: its defaults fitted to the default space, then random draws."""
    import optuna

    from tuner.models import get_model, integer
    from tuner.search import fit_to_space, suggest

    space = {
        name: integer(int(param.low or 1), 200, log=True) if name in ITERATIONS else param
        for name, param in get_model(model).space(kind).items()  # type: ignore[arg-type]
    }
    pool: list[dict[str, Any]] = []
    for config in DEFAULTS.get(model, []):
        fitted = fit_to_space(config, space)
        # A parameter only searched under a condition (svm's gamma: rbf kernel) stays only when it applies.
        fitted = {k: v for k, v in fitted.items() if _applies(space[k], fitted)}
        pool.append(fitted)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=len(model) * 1000 + len(kind)))
    while len(pool) < (CHEAP_CANDIDATES if model in CHEAP else CANDIDATES):
        params = {k: _round(v) for k, v in suggest(study.ask(), space).items()}
        if params not in pool:
            pool.append(params)
    return pool


def _applies(param: Any, chosen: dict[str, Any]) -> bool:
    return all(chosen.get(parent) in (w if isinstance(w, tuple) else (w,)) for parent, w in (param.when or {}).items())


def models_of(kind: str) -> list[str]:
    from tuner.models import get_model, model_names

    return [m for m in model_names() if get_model(m).space(kind)]  # type: ignore[arg-type]


# Pairs whose pool does not finish in a quarter of an hour (a linear-kernel SVR with a large C on
# 50 features): left out, as a portfolio learned without them is still learned on five others.
UNFINISHED = {("svm", "reg_50f_lowrank")}


def datasets_for(model: str, kind: str) -> list[str]:
    return [
        d
        for d, k in S.KIND.items()
        if k == kind and (model in CHEAP or d in COSTLY_SETS) and (model, d) not in UNFINISHED
    ]


def _score_job(job: tuple[str, str, str]) -> tuple[str, str, str, list[float], float]:
    import warnings

    warnings.simplefilter("ignore")
    model, kind, data = job
    ctx = S.context(S.Task(model, data), 0, cv_seed=CV_SEED, folds=CV_FOLDS)
    started = time.process_time()
    scores = []
    for params in candidates(model, kind):
        try:
            scores.append(S.cv_score(ctx, params))
        except Exception:  # a candidate that cannot fit this data counts as the worst
            scores.append(-math.inf)
    return model, kind, data, scores, time.process_time() - started


def build_matrix(path: Path, jobs: int) -> dict[str, Any]:
    """Score every candidate on every data set (resuming from ``path``)."""
    import multiprocessing

    matrix: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    todo = []
    for kind in ("classification", "regression"):
        for model in models_of(kind):
            key = f"{model}:{kind}"
            entry = matrix.setdefault(key, {"candidates": candidates(model, kind), "scores": {}})
            todo += [(model, kind, d) for d in datasets_for(model, kind) if d not in entry["scores"]]
    print(f"{len(todo)} (model, data set) pairs to score", file=sys.stderr)
    with multiprocessing.get_context("spawn").Pool(jobs, maxtasksperchild=4) as pool:
        for n, (model, kind, data, scores, cpu) in enumerate(pool.imap_unordered(_score_job, todo), 1):
            matrix[f"{model}:{kind}"]["scores"][data] = scores
            path.write_text(json.dumps(matrix))
            print(f"  [{n}/{len(todo)}] {model} {kind} {data}: {cpu:.0f} CPU s", file=sys.stderr)
    return matrix


def normalised(scores: dict[str, list[float]], exclude: tuple[str, ...] = ()) -> dict[str, list[float]]:
    out = {}
    for data, row in scores.items():
        if data in exclude:
            continue
        finite = [s for s in row if math.isfinite(s)]
        top, mid = max(finite), statistics.median(finite)
        span = top - mid or 1.0
        out[data] = [max(-1.0, (s - mid) / span) if math.isfinite(s) else -1.0 for s in row]
    return out


def select(entry: dict[str, Any], *, size: int = SIZE, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Greedy portfolio of ``size`` candidates from one matrix entry, ignoring data sets in ``exclude``."""
    norm = normalised(entry["scores"], exclude)
    if not norm:
        return []
    n = len(entry["candidates"])
    chosen: list[int] = []
    best = dict.fromkeys(norm, -math.inf)
    while len(chosen) < min(size, n):
        # the candidate that most raises the mean best-so-far; ties go to the better one on average
        pick = max(
            (c for c in range(n) if c not in chosen),
            key=lambda c, best=best: (  # type: ignore[misc]
                statistics.fmean(max(best[d], norm[d][c]) for d in norm),
                statistics.fmean(norm[d][c] for d in norm),
            ),
        )
        chosen.append(pick)
        best = {d: max(best[d], norm[d][pick]) for d in norm}
    return [entry["candidates"][c] for c in chosen]


def coverage(entry: dict[str, Any], size: int) -> float:
    """Mean over data sets of the best normalised score among the first ``size`` chosen (1 = best in pool)."""
    norm = normalised(entry["scores"])
    picked = select(entry, size=size)
    index = [entry["candidates"].index(p) for p in picked]
    return statistics.fmean(max(norm[d][c] for c in index) for d in norm)


def portfolio(matrix: dict[str, Any], *, size: int = SIZE, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    models: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for key, entry in sorted(matrix.items()):
        model, kind = key.split(":")
        models.setdefault(model, {})[kind] = select(entry, size=size, exclude=exclude)
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=Path, default=Path("/tmp/portfolio-matrix.json"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--write", action="store_true", help=f"write the portfolio to {OUT}")
    parser.add_argument("--select-only", action="store_true", help="score nothing more: select from --matrix as it is")
    args = parser.parse_args(argv)
    matrix = json.loads(args.matrix.read_text()) if args.select_only else build_matrix(args.matrix, args.jobs)
    print("\ncoverage (mean over data sets of the best normalised score so far; 1 = best of the pool):")
    print(f"{'model:kind':<36}" + "".join(f"{k:>6}" for k in range(1, 11)))
    for key, entry in sorted(matrix.items()):
        if entry["scores"]:
            print(f"{key:<36}" + "".join(f"{coverage(entry, k):>6.2f}" for k in range(1, 11)))
    if args.write:
        data = {
            "about": (
                "tuner's start-up portfolio: per catalog model and task, the configurations a new study tries "
                "first, best first. Learned offline by bench/build_portfolio.py (greedy selection over "
                f"{CANDIDATES} candidates ({CHEAP_CANDIDATES} for cheap models) scored by {CV_FOLDS}-fold CV on the data sets of bench/_suite.py)."
            ),
            "models": portfolio(matrix, size=args.size),
        }
        OUT.write_text(json.dumps(data, indent=1) + "\n")
        print(f"\nwritten to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
