"""The per-loop heartbeat thread: when it names a trial's worker and how it keeps beating."""

from __future__ import annotations

import contextlib
import time
import warnings

import optuna

from tuner.storage import ATTR_WORKER, Heartbeat, Pulse, heartbeat_ages, open_storage, resolve_url

WORKER = {"host": "here", "pid": 123}


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna: "Heartbeat of storage is supposed to be used with Study.optimize"
        return study.ask()


def _study(path) -> optuna.Study:
    url = resolve_url(str(path), base_dir=path.parent)
    return optuna.create_study(storage=open_storage(url, heartbeat=Heartbeat(interval=1, grace=5)))


def test_journal_file_names_the_worker_only_on_trials_longer_than_a_second_then_renews_the_beat(tmp_path):
    study = _study(tmp_path / "s.log")
    with contextlib.closing(Pulse(study._storage, Heartbeat(interval=1, grace=5), WORKER)) as pulse:
        short = _ask(study)
        pulse.start(short._trial_id)
        time.sleep(0.2)
        pulse.stop()
        long = _ask(study)
        pulse.start(long._trial_id)
        time.sleep(1.5)
        first = study._storage.get_trial(long._trial_id).system_attrs[ATTR_WORKER]["beat"]
        time.sleep(1.2)
        renewed = study._storage.get_trial(long._trial_id).system_attrs[ATTR_WORKER]["beat"]
        pulse.stop()
    assert ATTR_WORKER not in study._storage.get_trial(short._trial_id).system_attrs, "a short trial costs no write"
    assert renewed > first, "the beat is renewed every interval while the trial runs"


def test_sqlite_names_the_worker_at_once_and_records_optunas_heartbeat_from_the_start(tmp_path):
    study = _study(tmp_path / "s.db")
    with contextlib.closing(Pulse(study._storage, Heartbeat(interval=1, grace=5), WORKER)) as pulse:
        trial = _ask(study)
        pulse.start(trial._trial_id)
        assert study._storage.get_trial(trial._trial_id).system_attrs[ATTR_WORKER]["pid"] == 123
        deadline = time.monotonic() + 5
        while (
            not heartbeat_ages(study._storage, [study._storage.get_trial(trial._trial_id)])
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        ages = heartbeat_ages(study._storage, [study._storage.get_trial(trial._trial_id)])
        pulse.stop()
    assert ages and ages[trial.number] < 5, "Optuna's heartbeat row exists within moments of the start"


def test_in_memory_storage_writes_nothing(tmp_path):
    study = optuna.create_study()
    pulse = Pulse(study._storage, Heartbeat(interval=1, grace=5), WORKER)
    trial = _ask(study)
    pulse.start(trial._trial_id)
    pulse.stop()
    pulse.close()
    assert ATTR_WORKER not in study._storage.get_trial(trial._trial_id).system_attrs
