"""Everything that runs trials: one trial loop for a single process, local worker processes, Dask
tasks and ``tuner worker``; the budget; the failure guard; Ctrl-C; liveness and repair.

A lazy facade: a local worker process imports :mod:`tuner.engine._child` (and so this package)
before it can handle Ctrl-C, so nothing heavy is imported here until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports

if TYPE_CHECKING:
    from tuner.engine._budget import Budget, counted
    from tuner.engine._liveness import (
        Diagnosis,
        Pulse,
        RunningTrial,
        diagnose_storage,
        mark_worker,
        reap,
        repair,
        running_trials,
        this_worker,
    )
    from tuner.engine._loop import CtrlCLatch, FailureGuard, LoopResult, run_trials
    from tuner.engine._progress import RaceProgress, StudyProgress
    from tuner.engine._run import StudyInterrupted, StudyResult, run_study
    from tuner.engine._study import open_study
    from tuner.engine._worker import WorkerJob, WorkerSummary, join_study, run_worker

_LAZY = {
    "Budget": "tuner.engine._budget",
    "counted": "tuner.engine._budget",
    "Diagnosis": "tuner.engine._liveness",
    "Pulse": "tuner.engine._liveness",
    "RunningTrial": "tuner.engine._liveness",
    "diagnose_storage": "tuner.engine._liveness",
    "mark_worker": "tuner.engine._liveness",
    "reap": "tuner.engine._liveness",
    "repair": "tuner.engine._liveness",
    "running_trials": "tuner.engine._liveness",
    "this_worker": "tuner.engine._liveness",
    "CtrlCLatch": "tuner.engine._loop",
    "FailureGuard": "tuner.engine._loop",
    "LoopResult": "tuner.engine._loop",
    "run_trials": "tuner.engine._loop",
    "RaceProgress": "tuner.engine._progress",
    "StudyProgress": "tuner.engine._progress",
    "StudyInterrupted": "tuner.engine._run",
    "StudyResult": "tuner.engine._run",
    "run_study": "tuner.engine._run",
    "open_study": "tuner.engine._study",
    "WorkerJob": "tuner.engine._worker",
    "WorkerSummary": "tuner.engine._worker",
    "join_study": "tuner.engine._worker",
    "run_worker": "tuner.engine._worker",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "Budget",
    "CtrlCLatch",
    "Diagnosis",
    "FailureGuard",
    "LoopResult",
    "Pulse",
    "RaceProgress",
    "RunningTrial",
    "StudyInterrupted",
    "StudyProgress",
    "StudyResult",
    "WorkerJob",
    "WorkerSummary",
    "counted",
    "diagnose_storage",
    "join_study",
    "mark_worker",
    "open_study",
    "reap",
    "repair",
    "run_study",
    "run_trials",
    "run_worker",
    "running_trials",
    "this_worker",
]
