"""The per-loop heartbeat thread: when it names a trial's worker and how it keeps beating."""

from __future__ import annotations

import contextlib
import time
import warnings

import optuna

from tuner.engine._liveness import Pulse, heartbeat_ages
from tuner.store import Heartbeat, open_storage, resolve_url
from tuner.store.schema import WORKER as ATTR_WORKER

WORKER = {"host": "here", "pid": 123}


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna: "Heartbeat of storage is supposed to be used with Study.optimize"
        return study.ask()


def _study(path) -> tuple[optuna.Study, optuna.storages.BaseStorage, str]:
    url = resolve_url(str(path), base_dir=path.parent)
    storage = open_storage(url, heartbeat=Heartbeat(interval=1, grace=5))
    return optuna.create_study(storage=storage), storage, url


def test_journal_file_names_the_worker_only_on_trials_longer_than_a_second_then_renews_the_beat(tmp_path):
    study, storage, url = _study(tmp_path / "s.log")
    with contextlib.closing(Pulse(storage, url, Heartbeat(interval=1, grace=5), WORKER)) as pulse:
        short = _ask(study)
        pulse.start(short._trial_id)
        time.sleep(0.2)
        pulse.stop()
        long = _ask(study)
        pulse.start(long._trial_id)
        time.sleep(1.5)
        first = storage.get_trial(long._trial_id).system_attrs[ATTR_WORKER]["beat"]
        time.sleep(1.2)
        renewed = storage.get_trial(long._trial_id).system_attrs[ATTR_WORKER]["beat"]
        pulse.stop()
    assert ATTR_WORKER not in storage.get_trial(short._trial_id).system_attrs, "a short trial costs no write"
    assert renewed > first, "the beat is renewed every interval while the trial runs"


def test_sqlite_names_the_worker_at_once_and_records_optunas_heartbeat_from_the_start(tmp_path):
    study, storage, url = _study(tmp_path / "s.db")
    with contextlib.closing(Pulse(storage, url, Heartbeat(interval=1, grace=5), WORKER)) as pulse:
        trial = _ask(study)
        pulse.start(trial._trial_id)
        assert storage.get_trial(trial._trial_id).system_attrs[ATTR_WORKER]["pid"] == 123
        deadline = time.monotonic() + 5
        while not heartbeat_ages(storage, [storage.get_trial(trial._trial_id)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        ages = heartbeat_ages(storage, [storage.get_trial(trial._trial_id)])
        pulse.stop()
    assert ages and ages[trial.number] < 5, "Optuna's heartbeat row exists within moments of the start"


def test_in_memory_storage_writes_nothing(tmp_path):
    storage = open_storage("memory://")
    study = optuna.create_study(storage=storage)
    pulse = Pulse(storage, "memory://", Heartbeat(interval=1, grace=5), WORKER)
    trial = _ask(study)
    pulse.start(trial._trial_id)
    pulse.stop()
    pulse.close()
    assert ATTR_WORKER not in storage.get_trial(trial._trial_id).system_attrs
