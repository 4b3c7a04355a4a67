"""How ``tuner``'s read commands scale: a 10,000-trial SQLite study, against raw Optuna reads of it.

The study is a real ``tuner`` study (a 2-trial run of histogram gradient boosting, 6 parameters,
so every command accepts it: spec, space and metric are stored as ``tuner`` stores them) to which
``optuna``'s ``add_trials`` adds 10,000 trials shaped like ``tuner``'s: 5 folds of intermediate
values, fold scores, train scores, gap, flags, fit times; about 75 % complete, 20 % pruned, 5 %
failed. It is built once and cached in ``/tmp/tuner-bench-scale/`` (``--rebuild`` makes it again).

Each command runs as a subprocess, as a user runs it (start-up included); the table gives its
wall time, its peak resident memory and its time as a ratio to the raw Optuna read of the same
study, measured in the same run: ``optuna.load_study(...).get_trials(deepcopy=False)`` and
``trials_dataframe()``, each in a fresh subprocess too.

Usage::

    python bench/scale.py                 # 10,000 trials, each command once
    python bench/scale.py --repeats 3     # the median of 3 runs per command
    python bench/scale.py --trials 2000   # a smaller study (cached separately)

Run it on another checkout's code with ``PYTHONPATH=/path/to/checkout python bench/scale.py``;
the subprocesses inherit the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

CACHE = Path(tempfile.gettempdir()) / "tuner-bench-scale"
NAME = "scale"
FOLDS = 5
_SPEC = """\
name: scale
data: {source: "sklearn:iris"}
model: hist_gradient_boosting
metric: accuracy
cv: {folds: 5}
storage: study.db
seed: 0
"""
_RAW_GET_TRIALS = """\
import sys, time, optuna
study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])
start = time.perf_counter()
trials = study.get_trials(deepcopy=False)
print(f"{len(trials)} trials in {time.perf_counter() - start:.2f} s", file=sys.stderr)
"""
_RAW_DATAFRAME = """\
import sys, time, optuna
study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])
start = time.perf_counter()
frame = study.trials_dataframe()
print(f"{len(frame)} rows in {time.perf_counter() - start:.2f} s", file=sys.stderr)
"""


def build(n_trials: int, folder: Path) -> Path:
    """The cached study file, built when missing: a real 2-trial ``tuner`` run plus ``n_trials``."""
    path = folder / f"scale-{n_trials}.db"
    if path.is_file():
        return path

    work = Path(tempfile.mkdtemp(prefix="build-", dir=folder))
    (work / "spec.yaml").write_text(_SPEC, encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tuner", "run", str(work / "spec.yaml"), "--n-trials", "2", "-q"],
        check=True,
        cwd=work,
        stdout=subprocess.DEVNULL,
        # One OpenMP thread: histogram boosting on a loaded machine otherwise takes a minute per trial.
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"sqlite:///{work / 'study.db'}"
    with _fast_sqlite():
        storage = optuna.storages.RDBStorage(url)
        study = optuna.load_study(study_name=NAME, storage=storage)
        template = study.trials[0]
        rng = random.Random(0)
        study.add_trials([_trial(template, number, rng) for number in range(n_trials)])
    storage.engine.dispose()
    # Fold the write-ahead log into the file, so the file alone holds the study once moved.
    with contextlib.closing(sqlite3.connect(work / "study.db")) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (work / "study.db").rename(path)
    shutil.rmtree(work)
    print(f"built {path} ({n_trials} trials) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


@contextlib.contextmanager
def _fast_sqlite() -> Iterator[None]:
    """No fsync while the throwaway study is written (it is rebuilt if a crash damages it)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    event.listen(Engine, "connect", pragmas)
    try:
        yield
    finally:
        event.remove(Engine, "connect", pragmas)


def _trial(template: optuna.trial.FrozenTrial, number: int, rng: random.Random) -> optuna.trial.FrozenTrial:
    """One trial shaped like a ``tuner`` trial: params from the template's space, fold scores, diagnostics."""
    from optuna.trial import TrialState

    distributions = template.distributions
    params = {}
    for name, dist in distributions.items():
        if isinstance(dist, optuna.distributions.IntDistribution):
            value: float = (
                round(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
                if dist.log
                else rng.randint(dist.low, dist.high)
            )
            params[name] = int(min(max(value, dist.low), dist.high))
        else:
            params[name] = (
                math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
                if dist.log
                else rng.uniform(dist.low, dist.high)
            )
    roll = rng.random()
    state = TrialState.COMPLETE if roll < 0.75 else TrialState.PRUNED if roll < 0.95 else TrialState.FAIL
    quality = rng.betavariate(8, 2)
    n_folds = FOLDS if state == TrialState.COMPLETE else rng.randint(1, FOLDS - 1)
    scores = [round(min(1.0, max(0.0, quality + rng.gauss(0, 0.03))), 4) for _ in range(n_folds)]
    intermediate = {step: statistics.fmean(scores[: step + 1]) for step in range(n_folds)}
    start = dt.datetime(2026, 11, 1) + dt.timedelta(seconds=3 * number)
    user_attrs: dict[str, object] = {}
    values = None
    if state == TrialState.COMPLETE:
        train = [round(min(1.0, s + abs(rng.gauss(0.03, 0.02))), 4) for s in scores]
        gap = statistics.fmean(train) - statistics.fmean(scores)
        user_attrs = {
            "fit_seconds": [round(rng.uniform(0.05, 0.5), 4) for _ in scores],
            "flags": ["overfit"] if gap > 0.05 else [],
            "gap": gap,
            "score_seconds": [round(rng.uniform(0.001, 0.01), 4) for _ in scores],
            "train_mean": statistics.fmean(train),
            "train_scores": train,
            "train_std": statistics.pstdev(train),
            "val_mean": statistics.fmean(scores),
            "val_scores": scores,
            "val_std": statistics.pstdev(scores),
        }
        values = [statistics.fmean(scores)]
    elif state == TrialState.FAIL:
        user_attrs = {"error": "ValueError: bench failure"}
    trial = optuna.trial.create_trial(
        state=state,
        values=values,
        params=params,
        distributions=distributions,
        user_attrs=user_attrs,
        system_attrs={"tuner:worker": {"host": "bench", "pid": 1, "beat": start.timestamp()}},
        intermediate_values=intermediate,
    )
    # Three seconds apart, as a run's trials would be, so time-based columns mean something.
    trial.datetime_start = start
    trial.datetime_complete = start + dt.timedelta(seconds=rng.uniform(0.5, 3.0))
    return trial


def run(argv: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak resident MB and the last line of stderr of one subprocess; its output is
    dropped (errors are shown)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{stderr}")
    return elapsed, usage.ru_maxrss / 1024, (stderr.strip().splitlines() or [""])[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="Build the cached study again.")
    parser.add_argument("--only", nargs="*", help="Run only these rows (e.g. show best).")
    args = parser.parse_args(argv)
    CACHE.mkdir(exist_ok=True)
    if args.rebuild:
        (CACHE / f"scale-{args.trials}.db").unlink(missing_ok=True)
    db = build(args.trials, CACHE)
    url = f"sqlite:///{db}"
    out = Path(tempfile.mkdtemp(prefix="out-", dir=CACHE))
    py = sys.executable
    tuner = [py, "-m", "tuner"]
    rows: dict[str, list[str]] = {
        "raw get_trials": [py, "-c", _RAW_GET_TRIALS, NAME, url],
        "raw trials_dataframe": [py, "-c", _RAW_DATAFRAME, NAME, url],
        "tuner show": [*tuner, "show", NAME, "--storage", str(db)],
        "tuner best": [*tuner, "best", NAME, "--storage", str(db)],
        "tuner list": [*tuner, "list", "--storage", str(db)],
        "tuner compare": [*tuner, "compare", NAME, f"{NAME}@{db}", "--storage", str(db)],
        "tuner export csv": [*tuner, "export", NAME, "--storage", str(db), "--out", str(out / "t.csv"), "--force"],
        "tuner export json": [*tuner, "export", NAME, "--storage", str(db), "--out", str(out / "t.json"), "--force"],
        "tuner report": [*tuner, "report", NAME, "--storage", str(db), "--out", str(out / "r.html"), "--force"],
    }
    if args.only:
        rows = {k: v for k, v in rows.items() if k.startswith("raw") or any(o in k for o in args.only)}
    import tuner as tuner_module

    print(f"tuner from {Path(tuner_module.__file__).parent.parent}; study {db} ({args.trials} trials)")
    print(f"median of {args.repeats} run(s) per row; each row a fresh subprocess (start-up included)")
    measured: dict[str, tuple[float, float, str]] = {}
    for label, command in rows.items():
        runs = [run(command, out) for _ in range(args.repeats)]
        note = runs[-1][2] if label.startswith("raw") else ""
        measured[label] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs), note)
        print(f"  {label}: {measured[label][0]:.2f} s", file=sys.stderr, flush=True)
    base = measured["raw get_trials"][0]
    print()
    print("| command | wall s | peak RSS MB | ratio to raw get_trials | note |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, (seconds, rss, note) in measured.items():
        print(f"| {label} | {seconds:.2f} | {rss:.0f} | {seconds / base:.2f}× | {note} |")
    print("\nraw rows: the whole subprocess (import, load_study, the call); the note is the call alone.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
