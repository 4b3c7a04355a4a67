"""Speedup of ``tuner`` worker processes on a CPU-bound study, against raw Optuna threads.

Every trial fits the same random forest (fixed settings, so every trial costs the same) with
5-fold stratified CV on scikit-learn's digits. The study runs with 1 and with 2 worker processes
(``run_study(n_jobs=...)``) on a fresh SQLite file and on a fresh PostgreSQL database (skipped when
no server answers at 127.0.0.1:5432), then raw Optuna runs the very same objective with
``study.optimize(n_jobs=1)`` and ``n_jobs=2`` (threads), the baseline users have today.

Two figures per row, both measured in this run:

- ``wall``: the whole call, worker start-up included (what a user waits for);
- ``span``: first trial start to last trial end, from the trials' own timestamps (throughput once
  the workers run).

Speedup = the same backend's 1-worker time / this row's time. Target on a 2-core machine:
≥ 1.8× with 2 worker processes. Other work on the machine takes cores away, so the run also
measures what the machine gives right now: the same pure-Python CPU work done by 1 process, then
split over 2 (``cpu ideal``). A 2-worker speedup is only as high as that ideal allows; the last
line prints tuner's speedup as a fraction of it.

Usage::

    python bench/parallel.py              # 32 trials per row
    python bench/parallel.py --trials 12  # quicker
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import yaml

import tuner

_OBJECTIVE = """
import statistics

from sklearn.ensemble import RandomForestClassifier

N_ESTIMATORS = {n_estimators}


def objective(trial, ctx):
    trial.suggest_int("tag", 0, 10**6)  # proposed but unused: every trial does the same work
    scores = []
    for index in range(len(ctx.splits)):
        X_train, y_train, X_val, y_val = ctx.fold(index)
        model = RandomForestClassifier(n_estimators=N_ESTIMATORS, random_state=0, n_jobs=1)
        scores.append(model.fit(X_train, y_train).score(X_val, y_val))
    return statistics.fmean(scores)
"""
_POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}


def _write_study(folder: Path, n_trials: int, n_estimators: int) -> Path:
    module = f"bench_parallel_{uuid.uuid4().hex[:8]}"
    (folder / f"{module}.py").write_text(textwrap.dedent(_OBJECTIVE.format(n_estimators=n_estimators)))
    spec = {
        "name": "bench-parallel",
        "data": {"source": "sklearn:digits"},
        "model": "random_forest",
        "objective": f"{module}:objective",
        "cv": {"scheme": "stratified", "folds": 5},
        "sampler": "random",
        "pruner": "none",
        "budget": {"n_trials": n_trials},
        "seed": 0,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _span(study: optuna.Study) -> float:
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    return (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()


def _run_tuner(spec: Path, storage: str, n_jobs: int, name: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    result = tuner.run_study(spec, storage=storage, n_jobs=n_jobs, study_name=name)
    wall = time.perf_counter() - started
    return wall, _span(result.study), len(result.study.get_trials(deepcopy=False))


def _run_raw(spec: Path, n_trials: int, n_jobs: int) -> tuple[float, float, int]:
    from tuner.setup import build as build_context

    loaded = tuner.load_spec(spec)
    module_name, _, function = str(loaded.objective.custom).partition(":")
    sys.path.insert(0, str(spec.parent))
    objective = getattr(importlib.import_module(module_name), function)
    started = time.perf_counter()
    context = build_context(loaded)  # loading data is part of the user's wall time on both sides
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: objective(trial, context), n_trials=n_trials, n_jobs=n_jobs)
    wall = time.perf_counter() - started
    return wall, _span(study), len(study.trials)


def _burn(units: int) -> float:
    total = 0
    for _ in range(units):
        for i in range(3_000_000):
            total += i
    return float(total)


def _cpu_ideal(units: int = 8) -> tuple[float, float]:
    """Seconds for ``units`` of CPU work in one process, and split over two processes."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_burn, [0, 0])  # start-up outside the timing
        started = time.perf_counter()
        pool.map(_burn, [units])
        one = time.perf_counter() - started
        started = time.perf_counter()
        pool.map(_burn, [units // 2, units - units // 2])
        two = time.perf_counter() - started
    return one, two


def _postgres_database() -> tuple[str, Any] | None:
    try:
        import psycopg2

        admin = psycopg2.connect(connect_timeout=3, **_POSTGRES)
    except Exception as exc:  # no driver or no server: the rows are skipped, the reason printed
        print(f"PostgreSQL rows skipped: {type(exc).__name__}: {str(exc).strip()}")
        return None
    admin.autocommit = True
    name = f"tuner_bench_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg2://{_POSTGRES['user']}@{_POSTGRES['host']}:{_POSTGRES['port']}/{name}", (admin, name)


def _drop(handle: Any) -> None:
    admin, name = handle
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32, help="trials per row (default 32)")
    parser.add_argument("--trees", type=int, default=60, help="trees per forest (default 60)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; {args.trials} trials per row")

    rows: list[tuple[str, int, float, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = _write_study(folder, args.trials, args.trees)
        backends = [("sqlite", f"sqlite:///{folder / 'bench.db'}", None)]
        postgres = _postgres_database()
        if postgres is not None:
            backends.append(("postgresql", postgres[0], postgres[1]))
        cpu_one, cpu_two = _cpu_ideal()
        rows.append(("cpu ideal (pure Python)", 1, cpu_one, cpu_one, 1))
        rows.append(("cpu ideal (pure Python)", 2, cpu_two, cpu_two, 1))
        try:
            for label, url, _handle in backends:
                for n_jobs in (1, 2):
                    wall, span, n = _run_tuner(spec, url, n_jobs, f"bench-{label}-{n_jobs}")
                    rows.append((f"tuner {label}", n_jobs, wall, span, n))
            for n_jobs in (1, 2):
                wall, span, n = _run_raw(spec, args.trials, n_jobs)
                rows.append(("optuna threads (memory)", n_jobs, wall, span, n))
        finally:
            if postgres is not None:
                _drop(postgres[1])

    baseline = {name: (wall, span) for name, jobs, wall, span, _n in rows if jobs == 1}
    print(
        f"{'run':<24} {'workers':>7} {'wall s':>7} {'trials/s':>8} {'speedup':>8} {'span s':>7} {'trials/s':>8} {'speedup':>8}"
    )
    for name, jobs, wall, span, n in rows:
        base_wall, base_span = baseline[name]
        print(
            f"{name:<24} {jobs:>7} {wall:>7.1f} {n / wall:>8.2f} {base_wall / wall:>7.2f}× "
            f"{span:>7.1f} {n / span:>8.2f} {base_span / span:>7.2f}×"
        )
    two = [
        (name, base_wall / wall)
        for name, jobs, wall, _s, _n in rows
        if jobs == 2 and name.startswith("tuner")
        for base_wall in [baseline[name][0]]
    ]
    worst = min(speedup for _name, speedup in two)
    threads = next(
        baseline[name][0] / wall for name, jobs, wall, _s, _n in rows if jobs == 2 and name.startswith("optuna")
    )
    ideal = cpu_one / cpu_two
    print(f"worst 2-worker wall speedup of tuner: {worst:.2f}× (target ≥ 1.8×); raw Optuna threads: {threads:.2f}×")
    print(f"the machine's own 2-process speedup during this run: {ideal:.2f}×; tuner reached {worst / ideal:.0%} of it")
    print(f"load average {os.getloadavg()[0]:.1f} at end (other work on the machine lowers the speedups)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
