"""Search efficiency of ``tuner``'s defaults against the tools users pick today.

Every method tunes the same model over the same search space (the catalog's default space) and
scores every configuration by the same cross-validation (same folds, same metric), within the
same wall-clock budget per run:

- ``tuner``: ``tuner.run_study`` with the defaults (sampler, pruner, early stopping, known-good
  starts), on its default SQLite storage;
- ``optuna-tpe``: raw Optuna, ``TPESampler(seed=…)`` with Optuna's defaults, no pruning;
- ``random``: raw Optuna with ``RandomSampler``;
- ``sk-random``: scikit-learn ``RandomizedSearchCV``, run in batches of candidates until the
  budget is spent (scikit-learn has no time budget);
- ``sk-halving``: scikit-learn ``HalvingRandomSearchCV`` (successive halving over rows), rerun
  with twice the candidates while budget remains; its incumbent is rescored by the full CV;
- ``flaml``: ``flaml.tune.run`` (BlendSearch) with ``time_budget_s``, told that few iterations are
  cheap (``low_cost_partial_config``) as FLAML's docs recommend.

Variants of ``tuner`` are written ``tuner[key=value,...]`` with ``--set`` style overrides, e.g.
``tuner[pruner=none,early_stopping.enabled=false]``.

It prints, per method: the best CV score at a quarter, half and all of the budget; the time to
reach random search's final score as a share of the budget; model fits; and, for ``tuner``, the
share of fold fits saved by pruning and of boosting iterations saved by early stopping.

Usage::

    python bench/efficiency.py --quick                  # ~1 minute
    python bench/efficiency.py --out /tmp/eff.json      # full run, < 20 minutes on 2 cores
    python bench/efficiency.py --from /tmp/eff.json --plot /tmp/eff.html   # re-print, plot a task
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# One thread per process: runs go in parallel processes and must not fight over cores. Set
# before numpy/sklearn/xgboost are imported, in this process and so in the workers it starts.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

FOLDS = 5
EPS = 1e-12
# A run is stopped this long after its budget (its last trial would not count anyway), or when
# its method has not started this long after the process was spawned.
GRACE = 0.5
STARTUP_LIMIT = 60.0
# --wall-factor reaches the worker processes through the environment.
WALL_FACTOR = float(os.environ.get("BENCH_WALL_FACTOR", "6"))
TRIALS_FILE = "trials.json"


@dataclass(frozen=True)
class Task:
    model: str
    data: str
    metric: str
    # Overrides of the catalog's default space, for every method alike (see TASKS).
    space: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.model}/{self.data}"


# The catalog's default spaces, except the iteration caps, lowered from [50, 500] to [20, 200]
# so that a 25 s budget holds dozens of trials on 2 cores (a fair comparison of samplers needs
# more than their random start-up trials). Every method searches the same space.
_CAPS = {"type": "int", "low": 20, "high": 200, "log": True}
TASKS = (
    Task("xgboost", "breast_cancer", "roc_auc", (("n_estimators", _CAPS),)),
    Task("lightgbm", "wine", "balanced_accuracy", (("n_estimators", _CAPS),)),
    Task("xgboost", "diabetes", "neg_root_mean_squared_error", (("n_estimators", _CAPS),)),
    Task("hist_gradient_boosting", "diabetes", "neg_root_mean_squared_error", (("max_iter", _CAPS),)),
    Task("random_forest", "breast_cancer", "roc_auc", (("n_estimators", _CAPS),)),
)
QUICK_TASKS = (TASKS[0], TASKS[1])
# The full run takes the first four (about 18 minutes on 2 cores); `--tasks` picks any.
DEFAULT_TASKS = 4
METHODS = ("tuner", "optuna-tpe", "random", "sk-random", "sk-halving", "flaml")


@dataclass
class Run:
    """One method on one task with one seed."""

    method: str
    task: str
    seed: int
    budget: float
    # (seconds since the method started, best CV score so far), one point per improvement
    curve: list[tuple[float, float]] = field(default_factory=list)
    trials: int = 0
    fits: int = 0
    # fold fits a trial would have cost without pruning (tuner only)
    full_fits: int = 0
    pruned: int = 0
    # boosting iterations trained / allowed by the sampled caps (tuner with early stopping)
    iterations: tuple[int, int] | None = None
    error: str | None = None
    # set by the worker: when its clock started (epoch seconds, and its own CPU seconds then),
    # tuner's storage file, and (wall epoch, CPU seconds since start) samples to date its trials
    started_at: float | None = None
    started_cpu: float | None = None
    db: str | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)

    def best_at(self, seconds: float) -> float:
        values = [v for t, v in self.curve if t <= seconds]
        return max(values) if values else -math.inf

    def time_to(self, target: float) -> float:
        return next((t for t, v in self.curve if v >= target - EPS), math.inf)


# --- shared setup -----------------------------------------------------------------------------


def _spec(task: Task, seed: int) -> dict[str, Any]:
    from tuner.seeds import seed_for

    return {
        "name": f"bench-{task.model}-{task.data}-{seed}",
        "data": {"source": f"sklearn:{task.data}"},
        "model": task.model,
        "metric": task.metric,
        # The folds are pinned by their own seed so every method of a seed sees the same folds.
        "cv": {"folds": FOLDS, "seed": seed_for(seed, "bench-cv")},
        "space": dict(task.space),
        "seed": seed,
    }


def _context(task: Task, seed: int) -> Any:
    import tuner
    from tuner.setup import build as build_context

    return build_context(tuner.load_spec(_spec(task, seed)))


def _cv_score(ctx: Any, params: dict[str, Any]) -> float:
    X, y = ctx.dataset.X, ctx.dataset.y
    scores = []
    for train, val in ctx.splits:
        model = ctx.model.build(ctx.dataset.task, params, seed=ctx.model_seed)
        model.fit(X.iloc[train], y[train])
        scores.append(ctx.metric.score(model, X.iloc[val], y[val]))
    return statistics.fmean(scores)


class _Curve:
    """Best-so-far recorder with a clock started at construction.

    The clock is the run's own CPU time (every method runs single-threaded in its own process),
    so other work on the machine does not change the figures; on an idle machine it is the wall
    time. Every update rewrites the run's snapshot file, because the parent process stops the
    worker when the budget is spent instead of waiting for its last trial.
    """

    def __init__(self, run: Run, snapshot: Path) -> None:
        self.run = run
        self.snapshot = snapshot
        self.started = time.process_time()
        run.started_at, run.started_cpu = time.time(), self.started
        self.save()

    def elapsed(self) -> float:
        return time.process_time() - self.started

    def sample_forever(self, every: float = 0.1) -> None:
        """Record (wall, CPU) pairs in a daemon thread, for methods whose trials carry wall times."""
        import threading

        def loop() -> None:
            while True:
                self.run.samples.append((time.time(), self.elapsed()))
                if len(self.run.samples) % 5 == 0:
                    self.save()
                time.sleep(every)

        threading.Thread(target=loop, daemon=True).start()

    def record(self, value: float, *, trials: int, fits: int, at: float | None = None) -> None:
        self.run.trials += trials
        self.run.fits += fits
        best = self.run.curve[-1][1] if self.run.curve else -math.inf
        if math.isfinite(value) and value > best:
            self.run.curve.append((self.elapsed() if at is None else at, value))
        self.save()

    def save(self) -> None:
        tmp = self.snapshot.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.run)))
        os.replace(tmp, self.snapshot)


# --- methods ----------------------------------------------------------------------------------


def _tuner(run: Run, task: Task, overrides: list[str], work: Path) -> None:
    import optuna

    import tuner

    curve = _Curve(run, work / "run.json")
    storage = f"sqlite:///{work / 'bench.db'}"
    if "storage=memory://" in overrides:
        # No file to read afterwards: a thread copies the finished trials next to the snapshot.
        storage = "memory://"
        _share_memory_trials(curve)
    else:
        run.db = storage.removeprefix("sqlite:///")
        # A new SQLite file costs ~2 s of schema creation once (not per study: every later study
        # in the same tuner.db skips it), so the file is created before the clock starts.
        clock = time.process_time()
        optuna.storages.RDBStorage(storage)
        curve.started += time.process_time() - clock
        curve.run.started_cpu = curve.started
        curve.save()
    curve.sample_forever()
    # The parent stops the run when its CPU budget is spent; the wall timeout is only a backstop.
    tuner.run_study(
        _spec(task, run.seed), storage=storage, n_trials=100_000, timeout=run.budget * WALL_FACTOR, overrides=overrides
    )


def _share_memory_trials(curve: _Curve) -> None:
    """Keep a copy of the trials of tuner's in-memory storage next to the snapshot (TRIALS_FILE)."""
    import threading

    import tuner.engine._study

    opened: list[Any] = []
    original = tuner.engine._study.open_storage

    def capture(url: str, **kwargs: Any) -> Any:
        opened.append(original(url, **kwargs))
        return opened[-1]

    tuner.engine._study.open_storage = capture  # type: ignore[assignment]

    def loop() -> None:
        while True:
            time.sleep(0.25)
            if opened:
                storage = opened[-1]
                study_id = storage.get_all_studies()[0]._study_id
                rows = [_trial_row(t) for t in storage.get_all_trials(study_id, deepcopy=False)]
                tmp = curve.snapshot.with_name("trials.tmp")
                tmp.write_text(json.dumps(rows))
                os.replace(tmp, curve.snapshot.with_name(TRIALS_FILE))

    threading.Thread(target=loop, daemon=True).start()


def _trial_row(t: Any) -> dict[str, Any]:
    keep = ("val_scores", "fidelity_scores", "best_iterations")
    return {
        "state": t.state.name,
        "value": t.value if t.state.name == "COMPLETE" else None,
        "complete": t.datetime_complete.timestamp() if t.datetime_complete else None,
        "params": t.params,
        "attrs": {k: t.user_attrs[k] for k in keep if k in t.user_attrs},
    }


def _tuner_stats(run: Run, task: Task, overrides: list[str], work: Path) -> None:
    """Curve, fits, pruning and early-stopping figures of a tuner run, from its storage or trial copy."""
    import numpy as np
    import optuna

    import tuner
    from tuner.models import get_model

    walls, cpus = zip(*run.samples, strict=True)
    spec = tuner.load_spec(_spec(task, run.seed), overrides=overrides)
    if run.db is not None:
        study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{run.db}")
        rows = [_trial_row(t) for t in study.get_trials(deepcopy=False)]
    else:
        copy = work / TRIALS_FILE
        rows = json.loads(copy.read_text()) if copy.is_file() else []
    hook = get_model(task.model).iterations
    rounds = spec.early_stopping.rounds
    trained = allowed = 0
    finished = [t for t in rows if t["state"] in ("COMPLETE", "PRUNED") and t["complete"]]
    for t in sorted(finished, key=lambda t: t["complete"]):
        # After the last saved sample, count the wall time as CPU time (the run was busy).
        at = float(np.interp(t["complete"], walls, cpus)) + max(0.0, t["complete"] - walls[-1])
        if at > run.budget:
            continue
        attrs = t["attrs"]
        run.trials += 1
        run.pruned += t["state"] == "PRUNED"
        run.fits += len(attrs.get("val_scores") or []) + FOLDS * len(attrs.get("fidelity_scores") or {})
        run.full_fits += FOLDS
        cap = t["params"].get(hook.param) if hook is not None else None
        for best in attrs.get("best_iterations") or []:
            if cap:
                trained += min(int(cap), int(best) + rounds)
                allowed += int(cap)
        if t["value"] is not None:
            best_so_far = run.curve[-1][1] if run.curve else -math.inf
            if t["value"] > best_so_far:
                run.curve.append((at, t["value"]))
    run.iterations = (trained, allowed) if allowed else None


def _optuna(sampler_name: str) -> Callable[[Run, Task, list[str], Path], None]:
    def method(run: Run, task: Task, overrides: list[str], work: Path) -> None:
        import optuna

        from tuner.search import suggest

        curve = _Curve(run, work / "run.json")
        ctx = _context(task, run.seed)
        sampler = (
            optuna.samplers.TPESampler(seed=run.seed)
            if sampler_name == "tpe"
            else optuna.samplers.RandomSampler(seed=run.seed)
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)

        def objective(trial: optuna.Trial) -> float:
            value = _cv_score(ctx, suggest(trial, ctx.space))
            curve.record(value, trials=1, fits=len(ctx.splits))
            return value

        study.optimize(objective, timeout=run.budget * WALL_FACTOR)

    return method


def _sk_distributions(space: dict[str, Any], prefix: str) -> dict[str, Any]:
    from scipy import stats

    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.when:
            raise ValueError(f"conditional parameter {name!r}: not supported by the scikit-learn methods here")
        key = prefix + name
        if p.type == "fixed":
            out[key] = [p.value]
        elif p.type == "categorical":
            out[key] = list(p.choices)
        elif p.type == "int":
            low, high = int(p.low), int(p.high)
            out[key] = _LogInt(low, high) if p.log else stats.randint(low, high + 1)
        else:
            out[key] = stats.loguniform(p.low, p.high) if p.log else stats.uniform(p.low, p.high - p.low)
    return out


class _LogInt:
    """Integers drawn log-uniformly (what Optuna's ``suggest_int(log=True)`` does)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def rvs(self, random_state: Any = None, size: Any = None) -> Any:
        import numpy as np
        from scipy import stats

        value = stats.loguniform(self.low - 0.5 if self.low > 1 else 0.5, self.high + 0.5).rvs(
            random_state=random_state, size=size
        )
        return np.clip(np.round(value), self.low, self.high).astype(int)


def _sk_setup(ctx: Any) -> tuple[Any, str]:
    estimator = ctx.model.build(ctx.dataset.task, {}, seed=ctx.model_seed)
    prefix = f"{estimator.steps[-1][0]}__" if hasattr(estimator, "steps") else ""
    return estimator, prefix


def _sk_random(run: Run, task: Task, overrides: list[str], work: Path) -> None:
    from sklearn.model_selection import RandomizedSearchCV

    curve = _Curve(run, work / "run.json")
    ctx = _context(task, run.seed)
    estimator, prefix = _sk_setup(ctx)
    distributions = _sk_distributions(ctx.space, prefix)
    batch, size = 0, 2
    while curve.elapsed() < run.budget:
        start = curve.elapsed()
        search = RandomizedSearchCV(
            estimator,
            distributions,
            n_iter=size,
            cv=ctx.splits,
            scoring=ctx.metric.scorer,
            random_state=run.seed * 1000 + batch,
            refit=False,
            n_jobs=1,
        ).fit(ctx.dataset.X, ctx.dataset.y)
        res = search.cv_results_
        # Candidates run one after the other (n_jobs=1): rebuild when each one finished.
        spent = (res["mean_fit_time"] + res["mean_score_time"]) * len(ctx.splits)
        scale = (curve.elapsed() - start) / max(float(spent.sum()), 1e-9)
        done = start
        for score, cost in zip(res["mean_test_score"], spent, strict=True):
            done += float(cost) * scale
            curve.record(float(score), trials=1, fits=len(ctx.splits), at=done)
        batch += 1
        # Size the next batch to what is left of the budget, so the last one overshoots little.
        per_candidate = (curve.elapsed() - start) / len(spent)
        size = int(min(16, max(1, (run.budget - curve.elapsed()) / per_candidate)))


def _sk_halving(run: Run, task: Task, overrides: list[str], work: Path) -> None:
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV, KFold, StratifiedKFold

    curve = _Curve(run, work / "run.json")
    ctx = _context(task, run.seed)
    estimator, prefix = _sk_setup(ctx)
    distributions = _sk_distributions(ctx.space, prefix)
    # Halving subsamples rows, so it needs a splitter, not fixed indices: the same kind and seed
    # as tuner's folds (stratified for classification), which gives the same folds at full size.
    kind = StratifiedKFold if ctx.dataset.task == "classification" else KFold
    splitter = kind(FOLDS, shuffle=True, random_state=ctx.spec.cv.seed)
    candidates, attempt, last = 8, 0, 0.0
    # Each rerun doubles the candidates (about twice the time); start it only if it should fit.
    while curve.elapsed() + 2 * last <= run.budget:
        began = curve.elapsed()
        search = HalvingRandomSearchCV(
            estimator,
            distributions,
            n_candidates=candidates,
            factor=3,
            cv=splitter,
            scoring=ctx.metric.scorer,
            random_state=run.seed * 1000 + attempt,
            refit=False,
            n_jobs=1,
        ).fit(ctx.dataset.X, ctx.dataset.y)
        finished = curve.elapsed()
        res = search.cv_results_
        # Fits at reduced sizes count as fits too: one per candidate, round and fold.
        n_fits = len(res["params"]) * FOLDS
        params = {k.removeprefix(prefix): v for k, v in search.best_params_.items()}
        # Its best score comes from the last (possibly reduced) round; rescore on the full CV so
        # it compares with the others. The rescoring is not charged to its clock.
        paused = time.process_time()
        value = _cv_score(ctx, params)
        curve.started += time.process_time() - paused
        curve.record(value, trials=len(set(map(str, res["params"]))), fits=n_fits, at=finished)
        candidates, attempt, last = candidates * 2, attempt + 1, finished - began


def _flaml(run: Run, task: Task, overrides: list[str], work: Path) -> None:
    from flaml import tune

    curve = _Curve(run, work / "run.json")
    ctx = _context(task, run.seed)
    config, low_cost = {}, {}
    for name, p in ctx.space.items():
        if p.when:
            raise ValueError(f"conditional parameter {name!r}: not supported by the FLAML method here")
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

    def evaluate(params: dict[str, Any]) -> dict[str, float]:
        value = _cv_score(ctx, dict(params))
        curve.record(value, trials=1, fits=len(ctx.splits))
        return {"score": value}

    tune.run(
        evaluate,
        config=config,
        metric="score",
        mode="max",
        time_budget_s=run.budget * WALL_FACTOR,
        num_samples=-1,
        low_cost_partial_config=low_cost or None,
        verbose=0,
    )


_METHODS: dict[str, Callable[[Run, Task, list[str], Path], None]] = {
    "tuner": _tuner,
    "optuna-tpe": _optuna("tpe"),
    "random": _optuna("random"),
    "sk-random": _sk_random,
    "sk-halving": _sk_halving,
    "flaml": _flaml,
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


def _worker(job: tuple[str, Task, int, float], work: Path) -> None:
    """Run one job in this (child) process; everything it measures goes to ``work/run.json``."""
    import logging

    import optuna

    # tuner's modules (about 1 s of CPU to import) are imported before any method's clock starts:
    # every method uses them (data, folds, space), and a one-off import is not search time.
    import tuner.engine._run  # noqa: F401

    label, task, seed, budget = job
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("flaml").setLevel(logging.ERROR)
    name, overrides = _parse_method(label)
    run = Run(method=label, task=task.name, seed=seed, budget=budget)
    try:
        _METHODS[name](run, task, overrides, work)
    except Exception as exc:  # a broken method must not sink the whole benchmark; it is reported
        run = _read(work) or run
        run.error = f"{type(exc).__name__}: {exc}"[:500]
        (work / "run.json").write_text(json.dumps(asdict(run)))


def _cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``pid`` (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.inf  # gone, or no /proc: treat as spent
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read(work: Path) -> Run | None:
    path = work / "run.json"
    if not path.is_file():
        return None
    return _load([json.loads(path.read_text())])[0]


def _finish(job: tuple[str, Task, int, float], work: Path) -> Run:
    label, task, seed, budget = job
    run = _read(work) or Run(method=label, task=task.name, seed=seed, budget=budget, error="no result")
    if run.method.startswith("tuner") and run.samples and not run.error:
        try:
            _tuner_stats(run, task, _parse_method(label)[1], work)
        except Exception as exc:  # reported with the others
            run.error = f"reading the study: {type(exc).__name__}: {exc}"[:500]
    return run


# --- report -----------------------------------------------------------------------------------


def _load(rows: list[dict[str, Any]]) -> list[Run]:
    runs = []
    for row in rows:
        row = dict(row)
        row["curve"] = [tuple(p) for p in row["curve"]]
        row["iterations"] = tuple(row["iterations"]) if row.get("iterations") else None
        runs.append(Run(**row))
    return runs


def _fmt(value: float, digits: int = 4) -> str:
    return "—" if not math.isfinite(value) else f"{value:.{digits}f}"


def report(runs: list[Run], *, out: Any = sys.stdout) -> dict[str, Any]:
    """Print the tables; returns the headline figures."""
    methods = list(dict.fromkeys(r.method for r in runs))
    tasks = list(dict.fromkeys(r.task for r in runs))
    seeds = sorted({r.seed for r in runs})
    budget = max(r.budget for r in runs)
    for r in runs:
        if r.error:
            print(f"! {r.method} on {r.task} seed {r.seed} failed: {r.error}", file=out)
    # Failed runs are listed above and left out of the figures (a rerun can fill them in: --from).
    runs = [r for r in runs if not r.error]
    by = {(r.method, r.task, r.seed): r for r in runs}

    def cell(method: str, task: str, fn: Callable[[Run], float]) -> list[float]:
        return [fn(by[(method, task, s)]) for s in seeds if (method, task, s) in by]

    print(f"\nbudget {budget:g} s per run; {len(seeds)} seed(s); {FOLDS}-fold CV; mean over seeds\n", file=out)
    shares: dict[str, list[float]] = {m: [] for m in methods}
    for task in tasks:
        print(f"== {task}", file=out)
        print(
            f"{'method':<34}{'@25%':>9}{'@50%':>9}{'@100%':>9}{'±sd':>8}{'t→rand':>8}{'trials':>8}{'fits':>7}",
            file=out,
        )
        for method in methods:
            finals = cell(method, task, lambda r: r.best_at(r.budget))
            if not finals:
                continue
            at = [statistics.fmean(cell(method, task, lambda r, f=f: r.best_at(f * r.budget))) for f in (0.25, 0.5)]
            share = []
            for s in seeds:
                rand, mine = by.get(("random", task, s)), by.get((method, task, s))
                if rand and mine:
                    share.append(mine.time_to(rand.best_at(rand.budget)) / rand.budget)
            task_share = statistics.median(share) if share else math.nan
            shares[method].append(task_share)
            sd = statistics.stdev(finals) if len(finals) > 1 and all(map(math.isfinite, finals)) else math.nan
            trials = statistics.fmean(cell(method, task, lambda r: r.trials))
            fits = statistics.fmean(cell(method, task, lambda r: r.fits))
            share_text = "never" if math.isinf(task_share) else f"{task_share:.0%}"
            print(
                f"{method:<34}{_fmt(at[0]):>9}{_fmt(at[1]):>9}{_fmt(statistics.fmean(finals)):>9}"
                f"{_fmt(sd, 3):>8}{share_text:>8}{trials:>8.0f}{fits:>7.0f}",
                file=out,
            )
        print(file=out)
    headline: dict[str, Any] = {}
    print("time to reach random search's final score, share of its budget (median across tasks):", file=out)
    for method in methods:
        values = [v for v in shares[method] if not math.isnan(v)]
        if values:
            med = statistics.median(values)
            headline[f"share:{method}"] = med
            print(f"  {method:<34}{'never' if math.isinf(med) else f'{med:.0%}'}", file=out)
    for rival in ("optuna-tpe", "flaml", "random"):
        if "tuner" not in methods or rival not in methods:
            continue
        wins = 0
        both = [t for t in tasks if cell("tuner", t, lambda r: 1) and cell(rival, t, lambda r: 1)]
        for task in both:
            mine = statistics.fmean(cell("tuner", task, lambda r: r.best_at(r.budget)))
            theirs = statistics.fmean(cell(rival, task, lambda r: r.best_at(r.budget)))
            wins += mine >= theirs - EPS
        headline[f"wins:{rival}"] = (wins, len(both))
        print(f"tuner's best at equal time ≥ {rival}'s on {wins} of {len(both)} tasks", file=out)
    for method in [m for m in methods if m.startswith("tuner")]:
        mine = [r for r in runs if r.method == method and r.full_fits]
        if not mine:
            continue
        saved = 1 - sum(r.fits for r in mine) / sum(r.full_fits for r in mine)
        pruned = sum(r.pruned for r in mine) / max(sum(r.trials for r in mine), 1)
        its = [r.iterations for r in mine if r.iterations]
        text = f"{method}: fold fits saved by pruning {saved:.0%} ({pruned:.0%} of trials pruned)"
        if its:
            text += f"; boosting iterations saved by early stopping {1 - sum(t for t, _ in its) / sum(a for _, a in its):.0%}"
        headline[f"saved:{method}"] = saved
        print(text, file=out)
    if "tuner" in methods and "optuna-tpe" in methods:
        print(
            "\ntuner − optuna-tpe (unpruned) at the full budget, mean over seeds, against the standard error of "
            "that difference from the seed-to-seed spread (worse beyond noise: below −2 SE):",
            file=out,
        )
        for task in tasks:
            mine = cell("tuner", task, lambda r: r.best_at(r.budget))
            theirs = cell("optuna-tpe", task, lambda r: r.best_at(r.budget))
            if not mine or not theirs:
                continue
            diff = statistics.fmean(mine) - statistics.fmean(theirs)
            if len(mine) < 2 or len(theirs) < 2:
                print(f"  {task:<40} {diff:+.4f} (one seed: no noise estimate)", file=out)
                continue
            se = math.sqrt(statistics.variance(mine) / len(mine) + statistics.variance(theirs) / len(theirs))
            verdict = "worse beyond noise" if diff < -2 * se else "within noise or better"
            print(f"  {task:<40} {diff:+.4f} (SE {se:.4f}) {verdict}", file=out)
    return headline


def plot(runs: list[Run], task: str, path: Path) -> None:
    """Best score vs time of each method on ``task`` (every seed, thin lines): HTML, or PNG by suffix."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    methods = list(dict.fromkeys(r.method for r in runs))
    for index, method in enumerate(methods):
        for n, r in enumerate(x for x in runs if x.method == method and x.task == task and x.curve):
            xs = [t for t, _ in r.curve] + [r.budget]
            ys = [v for _, v in r.curve] + [r.curve[-1][1]]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"shape": "hv", "color": colors[index % len(colors)]},
                    name=method,
                    legendgroup=method,
                    showlegend=n == 0,
                )
            )
    fig.update_layout(
        title=f"Best CV score vs wall time: {task}", xaxis_title="seconds", yaxis_title="best CV score so far"
    )
    if path.suffix == ".png":
        fig.write_image(str(path), width=900, height=550)
    else:
        fig.write_html(str(path), include_plotlyjs=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 tasks, 1 seed, 5 s per run")
    parser.add_argument("--budget", type=float, default=25.0, help="seconds per run (default 25)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", help="model/data names (default: all)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="also tuner[key=value,...] variants")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one core each)")
    parser.add_argument(
        "--wall-factor",
        type=float,
        default=6.0,
        help="stop a run after this many times its budget in wall time (default 6; raise on a loaded machine)",
    )
    parser.add_argument("--out", type=Path, help="write every run as JSON here")
    parser.add_argument(
        "--from", dest="sources", type=Path, nargs="+", help="report on JSON file(s) of earlier runs instead of running"
    )
    parser.add_argument("--plot", type=Path, help="write best-score-vs-time of one task (.html or .png)")
    parser.add_argument("--plot-task", help="task to plot (default: the first)")
    args = parser.parse_args(argv)
    for method in args.methods:
        _parse_method(method)
    if args.sources:
        runs = _load([row for path in args.sources for row in json.loads(path.read_text())])
    else:
        global WALL_FACTOR  # one setting for the parent and (by the environment) its workers
        WALL_FACTOR = args.wall_factor
        os.environ["BENCH_WALL_FACTOR"] = str(args.wall_factor)
        runs = _execute(args)
    report(runs)
    if args.plot:
        task = args.plot_task or runs[0].task
        plot(runs, task, args.plot)
        print(f"\nplot of {task} written to {args.plot}")
    return 0


def _execute(args: argparse.Namespace) -> list[Run]:
    import multiprocessing
    import shutil

    tasks = QUICK_TASKS if args.quick else TASKS
    if args.tasks:
        tasks = tuple(t for t in TASKS if t.name in args.tasks)
    elif not args.quick:
        tasks = TASKS[:DEFAULT_TASKS]
    seeds = range(1 if args.quick else args.seeds)
    budget = 5.0 if args.quick and args.budget == 25.0 else args.budget
    pending = [(m, t, s, budget) for s in seeds for t in tasks for m in args.methods]
    total = len(pending)
    started = time.perf_counter()
    print(f"{total} runs of {budget:g} s on {args.jobs} process(es)", file=sys.stderr)
    spawn = multiprocessing.get_context("spawn")
    running: list[tuple[Any, tuple[str, Task, int, float], Path, float]] = []
    runs: list[Run] = []
    while pending or running:
        while pending and len(running) < args.jobs:
            # A fresh process per run: no warm caches or leftover threads carried between methods.
            job, work = pending.pop(0), Path(tempfile.mkdtemp(prefix="tuner-bench-"))
            proc = spawn.Process(target=_worker, args=(job, work), daemon=True)
            proc.start()
            running.append((proc, job, work, time.time()))
        time.sleep(0.1)
        for item in list(running):
            proc, job, work, spawned = item
            snapshot = _read(work)
            # A run's clock starts when its method starts (imports done); it is stopped when it has
            # used its budget of CPU time (or, as a backstop, WALL_FACTOR times that in wall time).
            if snapshot is not None and snapshot.started_at is not None and snapshot.started_cpu is not None:
                spent = _cpu_seconds(proc.pid) - snapshot.started_cpu
                over = spent > job[3] + GRACE or time.time() > snapshot.started_at + job[3] * WALL_FACTOR
            else:
                over = time.time() > spawned + STARTUP_LIMIT
            if proc.is_alive() and over:
                proc.terminate()
            if not proc.is_alive() or proc.exitcode is not None:
                proc.join()
                running.remove(item)
                runs.append(_finish(job, work))
                shutil.rmtree(work, ignore_errors=True)
                print(f"  [{len(runs)}/{total}] {job[0]} {job[1].name} seed {job[2]}", file=sys.stderr)
                if args.out:
                    args.out.write_text(json.dumps([asdict(r) for r in runs]))
    print(f"total wall time {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return runs


if __name__ == "__main__":
    sys.exit(main())
