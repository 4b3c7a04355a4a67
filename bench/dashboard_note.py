"""What a trial's optuna-dashboard note costs on SQLite: ``diagnostics.record`` (attributes + note,
one transaction) against the same attributes written alone, and against optuna-dashboard's own
``save_note`` after them (its read-modify-write path), measured in the same run.

Each cell writes the diagnostics of ``--trials`` trials of a 5-fold log on a fresh SQLite study,
interleaved over ``--repeats`` rounds; the table prints the median seconds per trial, the ratio to
"attributes alone", and the write transactions per trial (counted on the engine).

Usage::

    nice -n 5 python bench/dashboard_note.py            # 100 trials x 3 repeats
    nice -n 5 python bench/dashboard_note.py --quick    # 30 trials x 1 repeat
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import optuna_dashboard
import sqlalchemy

from tuner import _optuna
from tuner.cv import FoldLog, FoldScores
from tuner.diagnostics import note, record
from tuner.store import open_storage

LOG = FoldLog([FoldScores(val=0.8 + 0.01 * i, train=0.9 + 0.005 * i, fit_seconds=0.01) for i in range(5)])


def _cells() -> dict[str, Callable[[optuna.Trial], None]]:
    def alone(trial: optuna.Trial) -> None:
        # The same attributes record() stores, without the note.
        attrs = record_attrs(trial)
        _optuna.set_user_attrs(trial, attrs)

    def with_note(trial: optuna.Trial) -> None:
        record(trial, LOG, baseline=0.5, metric="accuracy")

    def dashboard_api(trial: optuna.Trial) -> None:
        attrs = record_attrs(trial)
        _optuna.set_user_attrs(trial, attrs)
        optuna_dashboard.save_note(trial, note(attrs, number=trial.number, metric="accuracy"))

    return {"attributes alone": alone, "record (attributes + note)": with_note, "attributes + save_note": dashboard_api}


def record_attrs(trial: optuna.Trial) -> dict[str, object]:
    """What record() stores for LOG, computed the same way (flags read the study's best so far)."""
    from tuner.diagnostics import SCORE_SECONDS, flags
    from tuner.store import best_val_mean, schema

    return {
        schema.VAL_SCORES: list(LOG.val_scores),
        schema.VAL_MEAN: LOG.val_mean,
        schema.VAL_STD: LOG.val_std,
        schema.TRAIN_SCORES: list(LOG.train_scores),
        schema.TRAIN_MEAN: LOG.train_mean,
        schema.TRAIN_STD: LOG.train_std,
        schema.GAP: LOG.gap,
        schema.FIT_SECONDS: [f.fit_seconds for f in LOG.folds],
        SCORE_SECONDS: [f.score_seconds for f in LOG.folds],
        schema.FLAGS: flags(LOG, baseline=0.5, best_so_far=best_val_mean(trial.study)),
    }


def _run(write: Callable[[optuna.Trial], None], trials: int, folder: Path) -> tuple[float, float]:
    storage = open_storage(f"sqlite:///{folder / 'bench.db'}")
    study = optuna.create_study(storage=storage)
    writes = [0]
    pending = [0]

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            pending[0] += 1

    def commit(conn):
        writes[0] += bool(pending[0])
        pending[0] = 0

    seconds = 0.0
    for _ in range(trials):
        trial = study.ask()
        sqlalchemy.event.listen(storage.engine, "after_cursor_execute", count)
        sqlalchemy.event.listen(storage.engine, "commit", commit)
        start = time.perf_counter()
        write(trial)
        seconds += time.perf_counter() - start
        sqlalchemy.event.remove(storage.engine, "after_cursor_execute", count)
        sqlalchemy.event.remove(storage.engine, "commit", commit)
        study.tell(trial, 0.8)
    storage.engine.dispose()
    return seconds / trials, writes[0] / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    trials, repeats = (30, 1) if args.quick else (args.trials, args.repeats)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cells = _cells()
    times: dict[str, list[float]] = {name: [] for name in cells}
    writes: dict[str, float] = {}
    for _ in range(repeats):
        for name, write in cells.items():
            with tempfile.TemporaryDirectory() as folder:
                per_trial, transactions = _run(write, trials, Path(folder))
            times[name].append(per_trial)
            writes[name] = transactions
    base = statistics.median(times["attributes alone"])
    print(f"SQLite, {trials} trials x {repeats} repeat(s); median per trial")
    print(f"{'cell':<28} {'ms/trial':>9} {'ratio':>6} {'write transactions/trial':>25}")
    for name in cells:
        median = statistics.median(times[name])
        print(f"{name:<28} {median * 1000:>9.2f} {median / base:>6.2f} {writes[name]:>25.2f}")


if __name__ == "__main__":
    main()
