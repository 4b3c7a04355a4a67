"""Liveness (``tuner/engine/_liveness.py``) on the in-memory storage, which no other process sees.

How each storage names a trial's worker, beats for it and has its zombies repaired is a storage
contract: tests/contract/test_heartbeats.py runs it over every backend.
"""

from __future__ import annotations

import warnings

import optuna

from tuner.engine._liveness import Pulse
from tuner.store import Heartbeat, open_storage
from tuner.store.schema import WORKER as ATTR_WORKER

WORKER = {"host": "here", "pid": 123}


def test_in_memory_storage_writes_nothing():
    storage = open_storage("memory://")
    study = optuna.create_study(storage=storage)
    pulse = Pulse(storage, "memory://", Heartbeat(interval=1, grace=5), WORKER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna: "Heartbeat of storage is supposed to be used with Study.optimize"
        trial = study.ask()
    pulse.start(trial._trial_id)
    pulse.stop()
    pulse.close()
    assert ATTR_WORKER not in storage.get_trial(trial._trial_id).system_attrs
