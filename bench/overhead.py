"""Per-trial overhead of ``tuner`` against raw Optuna on the same storage and sampler.

Both sides run the same objective on a fresh storage of the same kind, with the very same sampler
object settings (built by :func:`tuner.search.build_sampler`, which returns a plain Optuna
sampler). The per-trial time is measured from the trials' own timestamps (first start to last
completion, divided by the number of trials), so one-off setup (loading data, creating the
study) is left out and what remains is what every trial pays: sampling, storage writes and
reads, callbacks and, for ``tuner``, its wrappers and user attributes.

Rows:

- ``trivial``: ``x**2`` of one float, the orchestration alone (the ≤ 1.1× target);
- ``cv-dummy``: a 5-fold CV objective with a model that costs nothing to fit
  (``DummyClassifier``), so the per-fold reports, pruning checks and the diagnostics ``tuner``
  stores on each trial show up. The raw side reports every fold and stores its fold scores.

``--cost`` measures what a user pays instead, for a small real model (HistGradientBoosting with
20–60 iterations on breast_cancer, 5-fold, one thread: 0.1–0.3 s a trial on an idle machine):

- start-up: seconds from launching the process to the first trial's start, ``tuner run`` of a
  spec (default SQLite storage) against a raw Optuna script (in memory) that imports the same
  libraries and loads the same data; the raw script also reports how long loading the data took;
- trials per CPU second: the default ``tuner`` study (SQLite file, its CV objective with
  diagnostics, heartbeats) against raw in-memory Optuna running the same model on the same folds
  by hand (same TPE settings, same pruner, ``report``/``should_prune`` each fold), both in this
  process and timed in CPU seconds (``time.process_time``, every thread included). The difference
  per trial is ``tuner``'s orchestration cost (its storage round trips and its diagnostics).

Usage::

    python bench/overhead.py            # 200 trials × 3 repeats per cell
    python bench/overhead.py --quick    # 60 trials × 1 repeat
    python bench/overhead.py --cost     # start-up and trials per CPU second (--quick: fewer)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

import tuner
from tuner.search import build_pruner, build_sampler
from tuner.spec import BudgetSpec, PrunerSpec, SamplerSpec

BACKENDS = ("memory", "sqlite", "journal")
SEED = 0
_SPEC: dict[str, Any] = {
    "data": {"source": "sklearn:iris"},
    "model": "bench_dummy",
    "metric": "accuracy",
    "cv": {"scheme": "stratified", "folds": 5, "seed": 0},
    "seed": SEED,
}


def _register_dummy() -> None:
    from sklearn.dummy import DummyClassifier

    tuner.register_model(
        "bench_dummy",
        classifier=DummyClassifier,
        space={"strategy": ["prior", "most_frequent", "stratified", "uniform"], "constant": None},
        description="constant model (overhead benchmark)",
    )


def _trivial(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10.0, 10.0)
    y = trial.suggest_float("y", -10.0, 10.0)
    return -(x**2) - (y - 1) ** 2


def _tuner_trivial(trial: optuna.Trial, context: Any) -> float:
    return _trivial(trial)


def _raw_cv(folds: list[Any], X: Any, y: Any) -> Callable[[optuna.Trial], float]:
    """A hand-written CV objective as a raw Optuna user would write it: fit, score, report, prune."""
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import get_scorer

    scorer = get_scorer("accuracy")

    def objective(trial: optuna.Trial) -> float:
        strategy = trial.suggest_categorical("strategy", ["prior", "most_frequent", "stratified", "uniform"])
        scores = []
        for step, (train, val) in enumerate(folds):
            model = DummyClassifier(strategy=strategy, random_state=SEED).fit(X.iloc[train], y[train])
            scores.append(float(scorer(model, X.iloc[val], y[val])))
            trial.report(statistics.fmean(scores), step)
            if step < len(folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("val_scores", scores)
        return statistics.fmean(scores)

    return objective


def _storage(backend: str, folder: Path, tag: str) -> tuple[Any, str]:
    """(what raw Optuna gets, the URL tuner gets) for a fresh storage of ``backend``."""
    if backend == "memory":
        return None, "memory://"
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'{tag}.db'}"
        return url, url
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(folder / f"{tag}.log")
    return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path))), path


def _per_trial(study: optuna.Study) -> float:
    trials = study.get_trials(deepcopy=False)
    start = min(t.datetime_start for t in trials if t.datetime_start)
    end = max(t.datetime_complete for t in trials if t.datetime_complete)
    return (end - start).total_seconds() / len(trials)


def _run_raw(row: str, backend: str, folder: Path, tag: str, n_trials: int, context: Any) -> float:
    storage, _ = _storage(backend, folder, tag)
    pruner = build_pruner(PrunerSpec(), label="bench")
    sampler = build_sampler(SamplerSpec(), SEED, label="bench")
    study = optuna.create_study(storage=storage, direction="maximize", sampler=sampler, pruner=pruner)
    objective = _trivial if row == "trivial" else _raw_cv(context.splits, context.dataset.X, context.dataset.y)
    study.optimize(objective, n_trials=n_trials)
    return _per_trial(study)


def _run_tuner(row: str, backend: str, folder: Path, tag: str, n_trials: int) -> float:
    _, url = _storage(backend, folder, tag)
    spec = {**_SPEC, "name": f"overhead-{tag}"}
    result = tuner.run_study(
        spec, storage=url, n_trials=n_trials, objective=_tuner_trivial if row == "trivial" else None
    )
    return _per_trial(result.study)


def _memory_supported() -> bool:
    from tuner.errors import StorageError
    from tuner.store import open_storage

    try:
        open_storage("memory://")
    except StorageError:
        return False
    return True


# The `--cost` study: a small real model, as a user's spec would name it; one thread per fit
# (`budget.threads` where this tuner has it; the bench also caps the pools, for older code).
_COST_SPEC: dict[str, Any] = {
    "data": {"source": "sklearn:breast_cancer"},
    "model": "hist_gradient_boosting",
    "space": {"max_iter": {"type": "int", "low": 20, "high": 60, "log": True}},
    "seed": SEED,
}
if "threads" in BudgetSpec.model_fields:
    _COST_SPEC["budget"] = {"threads": 1}
_RAW_STARTUP = """
import sys
import time
import optuna
import sklearn.ensemble
import sklearn.metrics
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import StratifiedKFold

loading = time.time()
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
loaded = time.time() - loading
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="maximize", storage=sys.argv[1] if len(sys.argv) > 1 else None)

def objective(trial):
    params = {"max_iter": trial.suggest_int("max_iter", 20, 60, log=True)}
    scores = []
    for step, (train, val) in enumerate(folds):
        model = sklearn.ensemble.HistGradientBoostingClassifier(**params).fit(X.iloc[train], y.iloc[train])
        scores.append(sklearn.metrics.roc_auc_score(y.iloc[val], model.predict_proba(X.iloc[val])[:, 1]))
        trial.report(sum(scores) / len(scores), step)
    return sum(scores) / len(scores)

study.optimize(objective, n_trials=1)
print(study.trials[0].datetime_start.timestamp(), loaded)
"""


def _startup(folder: Path, repeats: int) -> None:
    """Seconds from launch to the first trial's start: ``tuner run`` against a raw Optuna script."""
    spec = folder / "startup.yaml"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    raw_script = folder / "raw_startup.py"
    raw_script.write_text(textwrap.dedent(_RAW_STARTUP))
    tuner_s, raw_s, raw_sqlite_s, loading_s = [], [], [], []
    for rep in range(repeats):
        name = f"startup-{rep}-{time.monotonic_ns()}"
        budget = {**_COST_SPEC.get("budget", {}), "n_trials": 1}
        spec.write_text(json.dumps({**_COST_SPEC, "name": name, "budget": budget}))
        launched = time.time()
        subprocess.run(
            [sys.executable, "-m", "tuner", "run", str(spec), "--quiet"], check=True, env=env, capture_output=True
        )
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'tuner.db'}")
        tuner_s.append(study.trials[0].datetime_start.timestamp() - launched)  # type: ignore[union-attr]
        # Raw Optuna in memory, then on a new SQLite file (as tuner's default storage is).
        for times, extra in ((raw_s, []), (raw_sqlite_s, [f"sqlite:///{folder / f'raw-startup-{rep}.db'}"])):
            launched = time.time()
            out = subprocess.run(
                [sys.executable, str(raw_script), *extra], check=True, env=env, capture_output=True, text=True
            ).stdout.split()
            times.append(float(out[0]) - launched)
        loading_s.append(float(out[1]))
    t, r, rs = (statistics.median(x) for x in (tuner_s, raw_s, raw_sqlite_s))
    load = statistics.median(loading_s)
    print(f"start-up to the first trial, median of {repeats} (same data: breast_cancer, 5 folds)")
    print(
        f"{'tuner run s':>12} {'raw optuna s':>13} {'difference s':>13} {'raw: loading data s':>20} "
        f"{'raw optuna on sqlite s':>23} {'tuner − it s':>13}"
    )
    print(f"{t:>12.2f} {r:>13.2f} {t - r:>13.2f} {load:>20.2f} {rs:>23.2f} {t - rs:>13.2f}", flush=True)


def _raw_cost_objective(context: Any, folds_of: list[int] | None = None) -> Callable[[optuna.Trial], float]:
    """The same model on the same folds, written by hand as a raw Optuna user would.

    With ``folds_of`` (trial number → folds tuner fitted), a trial stops after the folds tuner fitted
    (the pruner is still asked at every fold, as tuner asks it): two pruners that decide a close
    case differently would otherwise fit different work, and the difference would not be tuner's.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import get_scorer

    scorer = get_scorer("roc_auc")
    X, y = context.dataset.X, context.dataset.y

    def objective(trial: optuna.Trial) -> float:
        params = context.suggest(trial)
        scores = []
        for step, (train, val) in enumerate(context.splits):
            model = HistGradientBoostingClassifier(**params, random_state=SEED).fit(X.iloc[train], y[train])
            scores.append(float(scorer(model, X.iloc[val], y[val])))
            trial.report(statistics.fmean(scores), step)
            last = step == len(context.splits) - 1
            if not last and trial.should_prune() and folds_of is None:
                raise optuna.TrialPruned()
            if folds_of is not None and not last and step + 1 >= folds_of[trial.number]:
                raise optuna.TrialPruned()
        return statistics.fmean(scores)

    return objective


def _cost(folder: Path, n_trials: int, repeats: int) -> None:
    """Trials per CPU second: the default tuner study (SQLite) against raw in-memory Optuna.

    CPU time from the end of the first trial to the end of the last, over the trials in between,
    so that one-off setup (opening the study, loading data) counts in the start-up row instead.
    ``tuner`` on ``memory://`` too splits its cost: storage round trips (SQLite − memory) and its
    objective's own work, such as train scores and diagnostics (memory − raw).

    Two raw sides: ``raw`` searches by itself (its TPE draws other configurations than tuner's
    portfolio and TPE, which cost more or less to fit), and ``replay`` runs tuner's own trials again
    (``enqueue_trial`` of each trial's parameters, in order, with the same pruner, each trial
    stopped after the folds tuner fitted), so the two sides fit the same models on the same folds
    and the difference is tuner's orchestration alone. ``replay-sqlite`` replays
    them on an SQLite file, as a raw Optuna user who keeps their trials would.
    """
    from threadpoolctl import threadpool_limits

    from tuner.setup import build as build_context

    context = build_context(tuner.load_spec({**_COST_SPEC, "name": "cost"}))
    cpu: dict[str, list[float]] = {"raw": [], "replay": [], "replay-sqlite": [], "memory": [], "sqlite": []}
    for rep in range(repeats):
        # tuner's in-memory run first: the replays need its trials.
        others = ["raw", "replay", "replay-sqlite", "sqlite"]
        replayed: list[dict[str, Any]] = []
        folds_of: list[int] = []
        for side in ["memory", *(others if rep % 2 == 0 else others[::-1])]:
            ends: list[float] = []

            def mark(study: optuna.Study, trial: optuna.trial.FrozenTrial, ends: list[float] = ends) -> None:
                ends.append(time.process_time())

            with threadpool_limits(limits=1):
                if side in ("raw", "replay", "replay-sqlite"):
                    pruner = build_pruner(PrunerSpec(), label="bench")
                    sampler = build_sampler(SamplerSpec(), SEED, label="bench")
                    storage = f"sqlite:///{folder / f'raw-{rep}.db'}" if side == "replay-sqlite" else None
                    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner, storage=storage)
                    for params in replayed if side != "raw" else []:
                        study.enqueue_trial(params)
                    replaying = folds_of if side != "raw" else None
                    study.optimize(_raw_cost_objective(context, replaying), n_trials=n_trials, callbacks=[mark])
                else:
                    spec = {**_COST_SPEC, "name": f"cost-{rep}-{time.monotonic_ns()}"}
                    url = "memory://" if side == "memory" else str(folder / "cost.db")
                    result = tuner.run_study(spec, storage=url, n_trials=n_trials, callbacks=[mark])
                    if side == "memory":
                        trials = sorted(result.study.get_trials(deepcopy=False), key=lambda t: t.number)
                        replayed = [t.params for t in trials][:n_trials]
                        folds = len(context.splits)
                        folds_of = [
                            folds if t.state == TrialState.COMPLETE else len(t.intermediate_values) for t in trials
                        ]
            cpu[side].append((ends[-1] - ends[0]) / (len(ends) - 1))
    r, rp, rs, m, t = (statistics.median(cpu[side]) for side in ("raw", "replay", "replay-sqlite", "memory", "sqlite"))
    print(
        f"CPU per trial, median of {repeats} run(s) of {n_trials} trials (HistGradientBoosting, 5-fold, 1 thread; "
        "setup excluded)"
    )
    print(
        f"{'raw optuna, own search ms':>26} {'raw optuna, tuner trials ms':>28} {'the same on sqlite ms':>22} "
        f"{'tuner (memory) ms':>18} {'tuner (sqlite) ms':>18} {'of it storage ms':>17}"
    )
    print(
        f"{r * 1e3:>26.1f} {rp * 1e3:>28.1f} {rs * 1e3:>22.1f} {m * 1e3:>18.1f} {t * 1e3:>18.1f} {(t - m) * 1e3:>17.1f}"
    )
    print(
        f"trials per CPU second, tuner (sqlite) ÷ raw: {r / t:.2f}× against raw's own search, "
        f"{rp / t:.2f}× on the same trials (orchestration alone: {(t - rp) * 1e3:.1f} ms a trial)  (goal ≥ 0.90×)"
    )
    print(
        f"on the same storage (SQLite) and trials, tuner ÷ raw optuna: {rs / t:.2f}× ({(t - rs) * 1e3:.1f} ms a trial)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--rows", nargs="+", default=["trivial", "cv-dummy"], choices=["trivial", "cv-dummy"])
    parser.add_argument("--quick", action="store_true", help="60 trials, 1 repeat")
    parser.add_argument("--cost", action="store_true", help="start-up and trials per CPU second, a real small model")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.cost:
        with tempfile.TemporaryDirectory() as tmp:
            _startup(Path(tmp), repeats=3 if args.quick else 5)
            _cost(Path(tmp), n_trials=40 if args.quick else 80, repeats=2 if args.quick else 4)
        return 0
    if args.quick:
        args.trials, args.repeats = 60, 1
    _register_dummy()
    from tuner.setup import build as build_context

    context = build_context(tuner.load_spec({**_SPEC, "name": "overhead"}))
    backends = [b for b in args.backends if b != "memory" or _memory_supported()]
    if len(backends) < len(args.backends):
        print("note: this tuner has no in-memory storage URL (memory://); that backend is skipped", file=sys.stderr)
    print(f"per-trial time, median of {args.repeats} run(s) of {args.trials} trials (tuner default sampler)")
    print(f"{'row':<10} {'storage':<8} {'optuna ms':>10} {'tuner ms':>10} {'ratio':>7}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for row in args.rows:
            for backend in backends:
                raw, ours = [], []
                for rep in range(args.repeats):
                    # Alternate the order so neither side always runs on a warmer cache.
                    pair = [("raw", rep), ("tuner", rep)]
                    for side, _ in pair if rep % 2 == 0 else pair[::-1]:
                        tag = f"{row}-{backend}-{side}-{rep}-{time.monotonic_ns()}"
                        if side == "raw":
                            raw.append(_run_raw(row, backend, folder, tag, args.trials, context))
                        else:
                            ours.append(_run_tuner(row, backend, folder, tag, args.trials))
                r, t = statistics.median(raw), statistics.median(ours)
                if row == "trivial":
                    worst = max(worst, t / r)
                print(f"{row:<10} {backend:<8} {r * 1e3:>10.2f} {t * 1e3:>10.2f} {t / r:>6.2f}×", flush=True)
    print(f"worst trivial-objective ratio: {worst:.2f}× (target ≤ 1.10×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
