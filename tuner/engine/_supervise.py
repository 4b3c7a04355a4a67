"""What the parent of parallel workers does, for local processes and Dask tasks alike: watch the
trials they finish, report failed workers, and repair what Ctrl-C left running."""

from __future__ import annotations

import pickle
from collections.abc import Sequence

import optuna

from tuner.engine._budget import Budget, is_counted
from tuner.engine._liveness import repair, running_trials
from tuner.engine._loop import Callback, FailureGuard
from tuner.engine._worker import WorkerJob
from tuner.errors import TunerError, WorkerError
from tuner.store import FINISHED, StoredStudy

POLL_S = 0.5
# How long stopped workers get to mark their running trial and exit before they are terminated.
STOP_GRACE_S = 15.0


class Watcher:
    """Feeds trials that finished since the last poll, in the order they finished, to callbacks.

    ``counted`` is how many of them count against the budget.
    """

    def __init__(self, study: optuna.Study, callbacks: Sequence[Callback]) -> None:
        self.study = study
        self.callbacks = callbacks
        self.seen = {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)}
        self.counted = 0

    def poll(self) -> None:
        new = [t for t in self.study.get_trials(deepcopy=False, states=FINISHED) if t.number not in self.seen]
        new.sort(key=lambda t: (t.datetime_complete.timestamp() if t.datetime_complete else 0.0, t.number))
        for trial in new:
            self.seen.add(trial.number)
            self.counted += is_counted(trial)
            for callback in self.callbacks:
                callback(self.study, trial)


def job_bytes(job: WorkerJob) -> bytes:
    """The job pickled for a worker; a clear error when the objective or data cannot be pickled."""
    try:
        return pickle.dumps(job)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise TunerError(
            f"{job.spec.label}: cannot send the study to worker processes ({exc}). With n_jobs > 1 the "
            "objective and data must be picklable: define the objective as a module-level function "
            "(or use `objective: module:function` in the spec), or run with n_jobs=1."
        ) from None


def repair_interrupted(stored: StoredStudy, pids: set[int], first: int) -> None:
    """Mark what the stopped workers left RUNNING as interrupted (no retry: Ctrl-C is no crash)."""
    # A worker stopped right after creating a trial may not have named itself on it yet.
    leftovers = [
        t for t in running_trials(stored, heartbeat=None) if t.pid in pids or (t.host is None and t.number >= first)
    ]
    if leftovers:
        repair(stored, leftovers, interrupted=True)


def check_failures(stored: StoredStudy, job: WorkerJob, failures: list[str], n: int, guard: FailureGuard) -> None:
    """Raise :class:`WorkerError` when workers failed and the budget was not reached."""
    n_trials = job.spec.budget.n_trials
    if not failures or guard.tripped or Budget(n_trials).spent(stored.study):
        return
    raise WorkerError(
        f"{job.spec.label}: {len(failures)} of {n} workers failed ({'; '.join(failures)}) before the budget of "
        f"{n_trials} trials was reached; their errors are printed above. Completed trials are "
        "kept in the storage; fix the cause and rerun to finish the budget."
    )
