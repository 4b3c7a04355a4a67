"""Equal-trials benchmark across model families and data sets, with a held-out re-score of each choice.

Every method tunes the same catalog model over the same space and scores a configuration by the
same 5-fold CV (tuner's folds for the task), for the same number of trials:

- ``tuner``: ``tuner.run_study`` with its defaults, as a user runs it (SQLite storage, start-up
  portfolio, sampler, median pruner); its choice is the run's ``best_params``, whatever tuner's
  best-trial choice is on the commit under test;
- ``optuna-tpe``: raw Optuna, ``TPESampler(seed=…)`` with Optuna's defaults, no pruning;
- ``random``: raw Optuna with ``RandomSampler``;
- ``flaml``: ``flaml.tune.run`` (BlendSearch) with ``num_samples``, told that few iterations are cheap;
- ``sk-random``: scikit-learn ``RandomizedSearchCV``.

Scores are normalised per task: 0 = random search's median (over seeds) best CV score after the
whole budget, 100 = the best CV score any method found on that task. They are reported after 25 %
and 100 % of the trials. Each method's chosen configuration at those points (the raw maximum, or
tuner's choice) is re-scored on fresh partitions of the same data: 3 x 5-fold repeated CV with a seed
no search saw. Held-out scores are normalised the same way on their own scale (0 = the median held-out
score of random search's final choice, 100 = the best held-out score of any choice on that task).

With ``--matrix`` (the score matrix bench/build_portfolio.py writes), the ``tuner`` methods start from
a portfolio learned leave-one-data-set-out: the task's own data set is left out of its learning.
Without it they use the shipped portfolio, which was learned on these data sets too.

The equal-CPU-time comparison is bench/efficiency.py.

Usage::

    python bench/portfolio.py --quick                              # a few minutes
    python bench/portfolio.py --matrix /tmp/portfolio-matrix.json --out /tmp/pf.json   # full run
    python bench/portfolio.py --from /tmp/pf.json                  # re-print
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _suite as S
from _suite import Task

_CAPS = {"type": "int", "low": 20, "high": 200, "log": True}
_RBF = (("kernel", "rbf"),)
# One task per catalog family and then some, on bundled and generated data sets. Tree counts and
# boosting iterations are capped at [20, 200] (as in bench/efficiency.py) to keep a full run short,
# and SVMs keep the RBF kernel (scikit-learn's and FLAML's searches take no conditional parameters).
TASKS = (
    Task("xgboost", "diabetes", (("n_estimators", _CAPS),)),
    Task("svm", "wine", _RBF),
    Task("random_forest", "breast_cancer", (("n_estimators", _CAPS),)),
    Task("knn", "digits"),
    Task("lightgbm", "breast_cancer", (("n_estimators", _CAPS),)),
    Task("elastic_net", "reg_50f_lowrank"),
    Task("svm", "diabetes", _RBF),
    Task("logistic", "cls_60f_sparse"),
    Task("extra_trees", "diabetes", (("n_estimators", _CAPS),)),
    Task("hist_gradient_boosting", "reg_friedman", (("max_iter", _CAPS),)),
    Task("xgboost", "cls_20f_noisy", (("n_estimators", _CAPS),)),
    Task("logistic", "digits"),
)
QUICK_TASKS = (TASKS[1], TASKS[5], TASKS[6], TASKS[7])
METHODS = ("tuner", "optuna-tpe", "random", "flaml", "sk-random")
EARLY = 0.25
# A few bad early configurations on a task where the methods end close together would otherwise
# swamp the mean (one run at -2000 outweighs twenty at +100): each score is floored here.
FLOOR = -100.0


@dataclass
class Run:
    method: str
    task: str
    seed: int
    n_trials: int
    # CV value of each trial in order (None: pruned or failed)
    values: list[float | None] = field(default_factory=list)
    # the method's chosen configuration after EARLY and all of the trials, its CV and held-out scores
    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None

    def best(self, share: float) -> float:
        upto = [v for v in self.values[: max(1, round(share * self.n_trials))] if v is not None]
        return max(upto) if upto else -math.inf


# --- methods: each returns (values in trial order, {share: (chosen params, its CV score)}) --------

Result = tuple[list[float | None], dict[float, tuple[dict[str, Any], float]]]


def _raw_choice(values: list[float | None], params: list[dict[str, Any]], n: int) -> tuple[dict[str, Any], float]:
    scored = [(v, i) for i, v in enumerate(values[:n]) if v is not None]
    value, index = max(scored)
    return params[index], value


def _tuner(task: Task, seed: int, n_trials: int, overrides: list[str], lodo: Path | None) -> Result:
    import tuner

    if lodo is not None:
        _use_portfolio_without(task.data, lodo)
    work = Path(tempfile.mkdtemp(prefix="tuner-pf-"))
    spec = tuner.load_spec(S.spec(task, seed), overrides=overrides)
    storage = f"sqlite:///{work / 'bench.db'}"
    chosen = {}
    for share in (EARLY, 1.0):
        result = tuner.run_study(spec, data=S.frame(task.data), storage=storage, n_trials=round(share * n_trials))
        # tuner's choice of the best trial, through its public API (whatever the commit under test returns)
        chosen[share] = (result.best_params, float(result.best_value) if result.best_value is not None else math.nan)
    trials = sorted(result.study.get_trials(deepcopy=False), key=lambda t: t.number)
    values = [t.value if t.state.name == "COMPLETE" else None for t in trials]
    return values, chosen


# --portfolio-size reaches the pool's worker processes through their environment.
_SIZE_VARIABLE = "TUNER_BENCH_PORTFOLIO_SIZE"


def _use_portfolio_without(data: str, matrix_path: Path) -> None:
    """Make this process's tuner start from a portfolio learned without data set ``data``."""
    import build_portfolio

    import tuner.search._portfolio as shipped

    size = int(os.environ.get(_SIZE_VARIABLE, build_portfolio.SIZE))
    learned = build_portfolio.portfolio(json.loads(matrix_path.read_text()), size=size, exclude=(data,))
    # a pool worker may run several tuner jobs: each replaces the previous one's portfolio
    shipped._models = lambda: learned  # type: ignore[assignment]


def _optuna(kind: str) -> Callable[..., Result]:
    def method(task: Task, seed: int, n_trials: int, overrides: list[str], lodo: Path | None) -> Result:
        import optuna

        ctx = S.context(task, seed)
        sampler = optuna.samplers.TPESampler(seed=seed) if kind == "tpe" else optuna.samplers.RandomSampler(seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        params: list[dict[str, Any]] = []

        def objective(trial: optuna.Trial) -> float:
            params.append(ctx.suggest(trial))
            return S.cv_score(ctx, params[-1])

        study.optimize(objective, n_trials=n_trials)
        values: list[float | None] = [t.value for t in study.trials]
        return values, {s: _raw_choice(values, params, round(s * n_trials)) for s in (EARLY, 1.0)}

    return method


def _searchable(ctx: Any) -> dict[str, Any]:
    """The space without conditions that always hold (a parent fixed to the wanted value)."""
    out = {}
    for name, p in ctx.space.items():
        for parent, wanted in (p.when or {}).items():
            fixed = ctx.space[parent]
            if fixed.type != "fixed" or fixed.value not in (wanted if isinstance(wanted, tuple) else (wanted,)):
                raise ValueError(f"conditional parameter {name!r}: not supported by this method")
        out[name] = p
    return out


def _flaml(task: Task, seed: int, n_trials: int, overrides: list[str], lodo: Path | None) -> Result:
    import logging

    from flaml import tune

    logging.getLogger("flaml").setLevel(logging.ERROR)
    ctx = S.context(task, seed)
    config: dict[str, Any] = {}
    low_cost: dict[str, Any] = {}
    for name, p in _searchable(ctx).items():
        if p.type == "fixed":
            config[name] = p.value
        elif p.type == "categorical":
            config[name] = tune.choice(list(p.choices))
        elif p.type == "int":
            config[name] = (tune.lograndint if p.log else tune.randint)(int(p.low), int(p.high) + 1)
            if name in ("n_estimators", "max_iter"):
                low_cost[name] = int(p.low)
        else:
            config[name] = (tune.loguniform if p.log else tune.uniform)(p.low, p.high)
    values: list[float | None] = []
    params: list[dict[str, Any]] = []

    def evaluate(trial_config: dict[str, Any]) -> dict[str, float]:
        params.append(dict(trial_config))
        values.append(S.cv_score(ctx, params[-1]))
        return {"score": values[-1]}

    import numpy as np

    np.random.seed(seed)  # FLAML's random parts draw from numpy's global generator
    tune.run(
        evaluate,
        config=config,
        metric="score",
        mode="max",
        num_samples=n_trials,
        low_cost_partial_config=low_cost or None,
        verbose=0,
    )
    values, params = values[:n_trials], params[:n_trials]
    return values, {s: _raw_choice(values, params, round(s * n_trials)) for s in (EARLY, 1.0)}


def _sk_random(task: Task, seed: int, n_trials: int, overrides: list[str], lodo: Path | None) -> Result:
    from scipy import stats
    from sklearn.model_selection import RandomizedSearchCV

    ctx = S.context(task, seed)
    estimator = ctx.build_estimator(S._with_fixed(ctx, {}))
    # tuner's pipeline may nest the scaler's: the parameters go to the innermost final step
    inner, prefix = estimator, ""
    while hasattr(inner, "steps"):
        prefix += f"{inner.steps[-1][0]}__"
        inner = inner.steps[-1][1]
    distributions: dict[str, Any] = {}
    for name, p in _searchable(ctx).items():
        key = prefix + name
        if p.type == "fixed":
            distributions[key] = [p.value]
        elif p.type == "categorical":
            distributions[key] = list(p.choices)
        elif p.type == "int":
            distributions[key] = (
                _LogInt(int(p.low), int(p.high)) if p.log else stats.randint(int(p.low), int(p.high) + 1)
            )
        else:
            distributions[key] = stats.loguniform(p.low, p.high) if p.log else stats.uniform(p.low, p.high - p.low)
    search = RandomizedSearchCV(
        estimator,
        distributions,
        n_iter=n_trials,
        cv=list(ctx.splits),
        scoring=ctx.metric.scorer,
        random_state=seed,
        refit=False,
        n_jobs=1,
        error_score=math.nan,
    ).fit(ctx.dataset.X, ctx.dataset.y)
    res = search.cv_results_
    values: list[float | None] = [None if math.isnan(v) else float(v) for v in res["mean_test_score"]]
    params = [{k.removeprefix(prefix): _plain(v) for k, v in p.items()} for p in res["params"]]
    return values, {s: _raw_choice(values, params, round(s * n_trials)) for s in (EARLY, 1.0)}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class _LogInt:
    """Integers drawn log-uniformly (what Optuna's ``suggest_int(log=True)`` does)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def rvs(self, random_state: Any = None, size: Any = None) -> Any:
        import numpy as np
        from scipy import stats

        value = stats.loguniform(max(self.low - 0.5, 0.5), self.high + 0.5).rvs(random_state=random_state, size=size)
        return np.clip(np.round(value), self.low, self.high).astype(int)


_METHODS: dict[str, Callable[..., Result]] = {
    "tuner": _tuner,
    "optuna-tpe": _optuna("tpe"),
    "random": _optuna("random"),
    "flaml": _flaml,
    "sk-random": _sk_random,
}


def _parse_method(text: str) -> tuple[str, list[str]]:
    """``tuner[pruner=none,seed=3]`` → ``("tuner", ["pruner=none", "seed=3"])``."""
    name, _, rest = text.partition("[")
    if name not in _METHODS:
        raise SystemExit(f"unknown method {name!r}; expected one of {', '.join(_METHODS)} (variants: tuner[k=v,...])")
    overrides = [item for item in rest.rstrip("]").split(",") if item] if rest else []
    if overrides and name != "tuner":
        raise SystemExit(f"only tuner takes overrides, got {text!r}")
    return name, overrides


def _job(job: tuple[str, Task, int, int, Path | None]) -> Run:
    import logging

    import optuna

    label, task, seed, n_trials, lodo = job
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("tuner").setLevel(logging.ERROR)
    run = Run(method=label, task=task.name, seed=seed, n_trials=n_trials)
    name, overrides = _parse_method(label)
    try:
        values, chosen = _METHODS[name](task, seed, n_trials, overrides, lodo)
        run.values = values
        for share, (params, cv) in chosen.items():
            heldout = S.heldout_score(task, params, seed=seed)
            run.chosen[str(share)] = {"params": params, "cv": cv, "heldout": heldout}
    except Exception as exc:  # a broken method must not sink the whole benchmark; it is reported
        run.error = f"{type(exc).__name__}: {exc}"[:500]
    return run


# --- report -----------------------------------------------------------------------------------


def _norm(value: float, zero: float, top: float) -> float:
    span = top - zero
    return 100.0 * (value - zero) / span if span > 1e-12 else 0.0


def report(runs: list[Run], *, out: Any = sys.stdout) -> dict[str, dict[str, float]]:
    """Print the per-task and summary tables; returns the summary (method → column → mean)."""
    for r in runs:
        if r.error:
            print(f"! {r.method} on {r.task} seed {r.seed} failed: {r.error}", file=out)
    runs = [r for r in runs if not r.error]
    methods = list(dict.fromkeys(r.method for r in runs))
    tasks = list(dict.fromkeys(r.task for r in runs))
    seeds = sorted({r.seed for r in runs})
    n_trials = max(r.n_trials for r in runs)
    early = round(EARLY * n_trials)
    columns = ("cv@25%", "cv@100%", "chosen-cv@100%", "heldout@25%", "heldout@100%")
    per: dict[str, dict[str, list[float]]] = {m: {c: [] for c in columns} for m in methods}
    print(
        f"\n{n_trials} trials per run ({early} = 25 %), {len(seeds)} seed(s), {len(tasks)} task(s); "
        "normalised scores (0 = random search's median final, 100 = best found), mean over seeds\n",
        file=out,
    )
    # The summary takes only tasks every method finished for every seed (a partial run stays comparable).
    complete = {
        t for t in tasks if all(len([r for r in runs if r.task == t and r.method == m]) == len(seeds) for m in methods)
    }
    header = f"{'task':<36}{'method':<44}" + "".join(f"{c:>16}" for c in columns)
    print(header, file=out)
    for task in tasks:
        mine = [r for r in runs if r.task == task]
        randoms = [r for r in mine if r.method == "random"]
        if not randoms:
            print(f"{task:<36}(no random-search run: not normalised)", file=out)
            continue
        zero = statistics.median(r.best(1.0) for r in randoms)
        top = max(r.best(1.0) for r in mine)
        h_zero = statistics.median(r.chosen["1.0"]["heldout"] for r in randoms)
        h_top = max(c["heldout"] for r in mine for c in r.chosen.values())
        for method in methods:
            rows = [r for r in mine if r.method == method]
            if not rows:
                continue
            cells = {
                "cv@25%": [_norm(r.best(EARLY), zero, top) for r in rows],
                "cv@100%": [_norm(r.best(1.0), zero, top) for r in rows],
                "chosen-cv@100%": [_norm(r.chosen["1.0"]["cv"], zero, top) for r in rows],
                "heldout@25%": [_norm(r.chosen["0.25"]["heldout"], h_zero, h_top) for r in rows],
                "heldout@100%": [_norm(r.chosen["1.0"]["heldout"], h_zero, h_top) for r in rows],
            }
            if task in complete:
                for c in columns:
                    per[method][c].extend(cells[c])
            print(
                f"{task:<36}{method:<44}" + "".join(f"{statistics.fmean(cells[c]):>16.0f}" for c in columns),
                file=out,
            )
    print(
        f"\nsummary over the {len(complete)} task(s) every method finished: mean over tasks and seeds, each score "
        f"floored at {FLOOR:g} (unfloored median in brackets)",
        file=out,
    )
    print(f"{'method':<44}" + "".join(f"{c:>20}" for c in columns), file=out)
    summary: dict[str, dict[str, float]] = {}
    for method in methods:
        summary[method] = {c: statistics.fmean(max(x, FLOOR) for x in v) for c, v in per[method].items() if v}
        print(
            f"{method:<44}"
            + "".join(
                f"{summary[method][c]:>12.0f} ({statistics.median(per[method][c]):>4.0f})"
                if per[method][c]
                else f"{'—':>20}"
                for c in columns
            ),
            file=out,
        )
    print(
        "\ncv@X: best CV score found in the first X of the trials; chosen-cv: the CV score of the configuration "
        "the method hands over; heldout@X: that configuration re-scored by 3 x 5-fold CV with a fresh seed.",
        file=out,
    )
    return summary


def _load(rows: list[dict[str, Any]]) -> list[Run]:
    return [Run(**row) for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 cheap tasks, 1 seed, 16 trials")
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", help="model/data names (default: all)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="also tuner[key=value,...] variants")
    parser.add_argument("--matrix", type=Path, help="bench/build_portfolio.py's matrix: leave-one-data-set-out")
    parser.add_argument(
        "--portfolio-size",
        type=int,
        help="with --matrix: learn portfolios of this many configurations (tuner runs are labelled +pN)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one core each)")
    parser.add_argument("--out", type=Path, help="write every run as JSON here")
    parser.add_argument("--from", dest="sources", type=Path, nargs="+", help="report on JSON file(s) of earlier runs")
    args = parser.parse_args(argv)
    for method in args.methods:
        _parse_method(method)
    if args.portfolio_size:
        if args.matrix is None:
            parser.error("--portfolio-size needs --matrix (the portfolios are learned from it)")
        os.environ[_SIZE_VARIABLE] = str(args.portfolio_size)
    if args.sources:
        runs = _load([row for path in args.sources for row in json.loads(path.read_text())])
    else:
        runs = _execute(args)
    report(runs)
    return 0


def _execute(args: argparse.Namespace) -> list[Run]:
    import multiprocessing
    import time

    tasks = QUICK_TASKS if args.quick else TASKS
    if args.tasks:
        tasks = tuple(t for t in TASKS if t.name in args.tasks)
    seeds = range(1 if args.quick else args.seeds)
    n_trials = 16 if args.quick and args.trials == 32 else args.trials
    # Slow methods first, so the last runs to finish are short ones.
    jobs = [(m, t, s, n_trials, args.matrix) for t in tasks for s in seeds for m in args.methods]
    print(f"{len(jobs)} runs of {n_trials} trials on {args.jobs} process(es)", file=sys.stderr)
    started = time.perf_counter()
    runs: list[Run] = []
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=8) as pool:
        for run in pool.imap_unordered(_job, jobs):
            if args.portfolio_size and run.method.startswith("tuner"):
                run.method = f"{run.method}+p{args.portfolio_size}"
            runs.append(run)
            print(
                f"  [{len(runs)}/{len(jobs)}] {run.method} {run.task} seed {run.seed}"
                f"{' FAILED: ' + run.error if run.error else ''} ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
            if args.out:
                args.out.write_text(json.dumps([asdict(r) for r in runs]))
    print(f"total wall time {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return runs


if __name__ == "__main__":
    sys.exit(main())
