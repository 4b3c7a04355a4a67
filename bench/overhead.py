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

Usage::

    python bench/overhead.py            # 200 trials × 3 repeats per cell
    python bench/overhead.py --quick    # 60 trials × 1 repeat
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

import tuner
from tuner.search import build_pruner, build_sampler
from tuner.spec import PrunerSpec, SamplerSpec

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--rows", nargs="+", default=["trivial", "cv-dummy"], choices=["trivial", "cv-dummy"])
    parser.add_argument("--quick", action="store_true", help="60 trials, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.repeats = 60, 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
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
