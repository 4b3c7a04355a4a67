"""Queued trials (warm starts, retries of lost trials) run once, however many processes ask at once.

Optuna pops a queued trial by reading its state and then setting it RUNNING. On SQLite, Python's
driver starts no transaction before the read, so two processes could both pop the same trial and
run it twice; tuner's SQLite storage begins every transaction with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import contextlib

import optuna
import pytest

from tuner.engine._processes import context as _context
from tuner.store import open_storage

N_QUEUED, N_PROCESSES = 40, 4


def _pop_until_empty(url: str, name: str, ready, go, out) -> None:
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    ready.release()
    go.wait()
    popped = []
    while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        trial = study.ask()
        popped.append(trial.number)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, ValueError):
            study.tell(trial, 0.0)
    out.put(popped)


@pytest.mark.slow
def test_processes_asking_at_once_each_pop_a_queued_trial_once(backend):
    name = "queue"
    study = optuna.create_study(storage=open_storage(backend.url), study_name=name)
    for x in range(N_QUEUED):
        study.enqueue_trial({"x": x})
    ctx = _context()
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_pop_until_empty, args=(backend.url, name, ready, go, out)) for _ in range(N_PROCESSES)]
    for proc in procs:
        proc.start()
    for _ in procs:
        assert ready.acquire(timeout=120), "a process could not open the study"
    go.set()  # all of them ask from the same moment on
    popped = [number for _ in procs for number in out.get(timeout=240)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0

    twice = sorted({n for n in popped if popped.count(n) > 1})
    assert not twice, f"trials popped by two processes: {twice}"
    assert set(range(N_QUEUED)) <= set(popped), "every queued trial ran"
