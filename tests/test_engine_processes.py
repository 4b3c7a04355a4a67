"""Local worker processes (``tuner/engine/_processes.py``): each seeds its sampler differently, and an
objective they could not import is refused before any trial.

How processes share the budget and a storage is a storage contract (tests/contract/test_budget.py).
"""

from __future__ import annotations

import pytest

import tuner
from tuner.errors import TunerError


def test_workers_seed_their_samplers_differently(make_study):
    # SQLite: journal storages name a trial's worker only one second into the trial.
    # `gathers`: each trial waits until both workers started one, so both run trials.
    study = make_study("gathers", n_trials=6, budget={"n_jobs": 2})
    tuner.run_study(study.spec)
    trials = study.trials()
    assert len(trials) == 6
    firsts: dict[int, float] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        firsts.setdefault(trial.system_attrs["tuner:worker"]["pid"], trial.params["x"])
    assert len(firsts) == 2 and len(set(firsts.values())) == 2, "two workers proposed the same first trial"


def test_an_objective_worker_processes_cannot_import_is_refused_before_any_trial(make_study):
    study = make_study("fast", n_trials=4)
    with pytest.raises(TunerError, match="module-level function"):
        tuner.run_study(study.spec, n_jobs=2, objective=lambda trial, ctx: trial.suggest_float("x", 0, 1))
    assert study.trials() == []


def test_the_parent_repairs_a_dead_workers_trial_while_holding_the_workers_gate(monkeypatch):
    """A repair marks the trial FAIL, then queues its retry. A worker that asked for a trial in
    between would start a new one, which could spend the budget and leave the retry WAITING: the
    parent's repairs hold the same gate as the workers' "check the budget, ask"."""
    import contextlib
    import threading
    from types import SimpleNamespace

    import optuna

    from tuner.engine import _processes

    held = threading.Lock()
    repaired_under: list[bool] = []

    @contextlib.contextmanager
    def gate():
        with held:
            yield

    def reap(stored, *, heartbeat, pids):
        repaired_under.append(held.locked())
        return []

    monkeypatch.setattr(_processes, "reap", reap)
    dead = SimpleNamespace(pid=4242, exitcode=-9, is_alive=lambda: False)
    stored = SimpleNamespace(study=optuna.create_study(), url="sqlite:///unused.db")
    job = SimpleNamespace(heartbeat=None, max_failures=3, spec=SimpleNamespace(budget=SimpleNamespace(n_trials=0)))
    supervisor = _processes._Supervisor(
        stored,
        job,
        [dead],
        watcher=SimpleNamespace(poll=lambda: None, counted=0),
        guard=SimpleNamespace(tripped=False),
        stop=threading.Event(),
        first=0,
        replace=lambda procs, cancelled: None,
        gate=gate,
    )
    monkeypatch.setattr(supervisor, "_repair_unnamed", lambda: None)
    supervisor.tick()
    assert repaired_under == [True]
