"""Trial times with the thread policy against unlimited OpenMP, on the machine as found and loaded.

Each cell runs real ``tuner`` processes on a study whose trials are all the same fixed
configuration (3-fold CV on a 3,000-row synthetic classification CSV), and takes the median trial
duration from the storage's own timestamps, so start-up is left out:

- ``policy``: ``budget.threads: auto`` (what ``tuner`` does now; the thread count it picked is shown);
- ``unlimited``: ``budget.threads: <cpu_count>``, the libraries' own default (every core), which is
  what a sequential ``tuner run`` and ``tuner worker`` did with HistGradientBoosting before the
  thread policy.

Scenarios: one ``tuner run`` (sequential), and two ``tuner worker`` processes on one study at once
(each used to take every core). Machines: the machine as found (its load is shown; ``auto``
reads it), then the same with two busy-loop processes added; the bench waits until the
one-minute load average shows them.
The ratio is unlimited ÷ policy trial time: above 1 means the policy is faster.

Usage::

    python bench/threads.py               # HistGradientBoosting and XGBoost, 1 trial per cell
    python bench/threads.py --repeats 3   # 3 cells per side, alternating which side runs first
    python bench/threads.py --quick       # HistGradientBoosting only, no worker pair
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import yaml
from sklearn.datasets import make_classification

MODELS: dict[str, dict[str, Any]] = {
    "hgb": {
        "model": "hist_gradient_boosting",
        "space": {
            "learning_rate": 0.1,
            "max_iter": 60,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 1e-3,
            "max_features": 1.0,
        },
    },
    "xgb": {
        "model": "xgboost",
        "space": {
            "n_estimators": 60,
            "learning_rate": 0.1,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 0.9,
            "colsample_bytree": 0.9,
            "reg_lambda": 1.0,
            "reg_alpha": 1e-3,
        },
    },
}


def _write_data(folder: Path) -> Path:
    X, y = make_classification(n_samples=3000, n_features=30, n_informative=12, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(target=y)
    path = folder / "data.csv"
    frame.to_csv(path, index=False)
    return path


def _spec(folder: Path, data: Path, library: str, threads: str, n_trials: int, tag: str) -> Path:
    spec = {
        "name": f"threads-{tag}",
        "data": {"source": str(data), "target": "target"},
        **MODELS[library],
        "metric": "accuracy",
        "cv": {"scheme": "stratified", "folds": 3, "seed": 0},
        "sampler": "random",
        "pruner": "none",
        "early_stopping": False,
        "warm_start": {"known_good": False},
        "budget": {"n_trials": n_trials, "threads": threads if threads == "auto" else int(threads)},
        "storage": str(folder / f"{tag}.db"),
        "seed": 0,
    }
    path = folder / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _tuner(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
    )


def _trial_seconds(spec: Path, tag: str) -> float:
    study = optuna.load_study(study_name=f"threads-{tag}", storage=f"sqlite:///{spec.parent / f'{tag}.db'}")
    trials = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    return statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)  # type: ignore[operator]


def _run_cell(folder: Path, data: Path, library: str, threads: str, scenario: str, n_trials: int) -> float:
    tag = f"{library}-{scenario.replace(' ', '-')}-{threads}-{time.monotonic_ns()}"
    if scenario == "run":
        spec = _spec(folder, data, library, threads, n_trials, tag)
        procs = [_tuner("run", str(spec), "--quiet")]
    else:  # two `tuner worker` processes on one study, started together
        spec = _spec(folder, data, library, threads, 2 * n_trials, tag)
        procs = [_tuner("worker", str(spec)) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"tuner failed ({proc.returncode}): {err.decode()[-2000:]}")
    return _trial_seconds(spec, tag)


@contextmanager
def _hogs(n: int) -> Iterator[None]:
    """``n`` busy-loop processes for the loaded machine; killed (by their own PIDs) on the way out."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        # `auto` reads the one-minute load average: wait until it shows the hogs (at most 90 s).
        deadline = time.monotonic() + 90
        while os.getloadavg()[0] < n - 0.5 and time.monotonic() < deadline:
            time.sleep(2)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _auto_threads(workers: int | None) -> int:
    from tuner.threads import model_threads

    return model_threads("auto", workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="cells per side; from 2 on, the order alternates")
    parser.add_argument("--libraries", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--quick", action="store_true", help="hgb only, 2 trials, sequential run only")
    args = parser.parse_args(argv)
    # A SIGTERM (timeout, kill) unwinds like an error, so the busy-loop processes are killed too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    scenarios = ["run", "2 workers"]
    if args.quick:
        args.libraries, scenarios = ["hgb"], ["run"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    unlimited = str(os.cpu_count() or 1)
    print(f"cpu_count {unlimited}; median trial seconds (3-fold CV, fixed configuration), {args.trials} trial(s)")
    print(
        f"{'machine':<8} {'model':<5} {'scenario':<10} {'load':>5} {'auto':>5} "
        f"{'policy s':>9} {'unlimited s':>12} {'ratio':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = _write_data(folder)
        for machine in ("as found", "+2 hogs"):
            with _hogs(2) if machine == "+2 hogs" else contextlib.nullcontext():
                for library in args.libraries:
                    for scenario in scenarios:
                        load = os.getloadavg()[0]
                        auto = _auto_threads(1 if scenario == "run" else None)
                        times: dict[str, list[float]] = {"auto": [], unlimited: []}
                        # Alternate the order so neither side always runs first.
                        for rep in range(args.repeats):
                            order = ("auto", unlimited) if rep % 2 == 0 else (unlimited, "auto")
                            for threads in order:
                                times[threads].append(_run_cell(folder, data, library, threads, scenario, args.trials))
                        policy, free = float(np.median(times["auto"])), float(np.median(times[unlimited]))
                        print(
                            f"{machine:<8} {library:<5} {scenario:<10} {load:>5.1f} {auto:>5} "
                            f"{policy:>9.2f} {free:>12.2f} {free / policy:>6.2f}×",
                            flush=True,
                        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
