"""Heartbeats and repair: a running trial names its worker and keeps a heartbeat; a trial whose worker
is gone or whose heartbeat is stale is repaired (FAIL, ``lost``, retried once) by ``tuner.engine.reap``
when a run starts, or by ``tuner doctor --repair``."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import warnings

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from support import REMOTE, dead_pid, kill_and_resume_checks, last_beat, silent_remote_trial, wait_for

import tuner
from tuner.engine import mark_worker, running_trials
from tuner.engine._liveness import NAME_AFTER_S, Pulse, heartbeat_ages
from tuner.store import Heartbeat, load_stored, open_storage
from tuner.store.schema import WORKER as ATTR_WORKER
from tuner.store.schema import WORKER_BEATS_LATE

FAST_BEATS = Heartbeat(interval=1, grace=2)
WORKER = {"host": "here", "pid": 123}


def _wait_until_stale(study, heartbeat: Heartbeat, number: int) -> None:
    """Wait until the study's liveness check (what a starting run reaps by) calls trial ``number`` stale."""
    stored = load_stored(study.name, study.url, storage=open_storage(study.url, heartbeat=heartbeat))

    def stale() -> bool:
        return any(t.number == number and t.status == "stale" for t in running_trials(stored, heartbeat=heartbeat))

    wait_for(stale, what=f"trial {number} stale after the {heartbeat.grace} s grace period")


@pytest.mark.slow
def test_a_silent_remote_workers_trial_goes_stale_then_is_failed_and_retried_once(backend, study_on):
    study = study_on("fast", n_trials=3)
    tuner.run_study(study.spec, n_trials=1, heartbeat=FAST_BEATS)
    trial = silent_remote_trial(study, FAST_BEATS)
    _wait_until_stale(study, FAST_BEATS, trial.number)

    tuner.run_study(study.spec, heartbeat=FAST_BEATS)
    trials = study.trials()
    lost = trials[trial.number]
    assert lost.state == TrialState.FAIL and lost.user_attrs["lost"] is True
    assert "no heartbeat" in lost.user_attrs["error"]
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == trial.number]
    assert len(retry) == 1 and retry[0].params == lost.params and retry[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3


@pytest.mark.slow
def test_a_trial_no_worker_named_itself_on_is_lost_after_the_grace_period(backend, study_on):
    study = study_on("fast", n_trials=3)
    tuner.run_study(study.spec, n_trials=1, heartbeat=FAST_BEATS)
    # A worker asks for a trial and dies before its first beat: the trial carries no worker at all.
    loaded = optuna.load_study(study_name=study.name, storage=open_storage(study.url))
    orphan = loaded.ask()
    orphan.suggest_float("x", 0, 1)
    _kept_within_the_grace_then_lost(study, orphan.number, "no worker named itself")


def _kept_within_the_grace_then_lost(study, number: int, reason: str) -> None:
    """A run within the grace period leaves trial ``number`` RUNNING; once stale, a run repairs it with ``reason``."""
    tuner.run_study(study.spec, n_trials=2, heartbeat=Heartbeat(interval=1, grace=600))
    assert study.trials()[number].state == TrialState.RUNNING, "within the grace period it may still run"

    _wait_until_stale(study, FAST_BEATS, number)
    tuner.run_study(study.spec, heartbeat=FAST_BEATS)
    kill_and_resume_checks(study, {}, number, n_trials=3)
    assert reason in study.trials()[number].user_attrs["error"]


@pytest.mark.slow
def test_a_named_trial_that_never_beat_is_lost_a_grace_period_after_its_naming(backend, study_on):
    """SQLite workers beat one second into a trial; one that died before (on another machine, as
    here, or with its PID taken by a new process) left a named trial without a heartbeat, which
    goes stale a grace period after the naming, as a silent heartbeat would."""
    study = study_on("fast", n_trials=3)
    tuner.run_study(study.spec, n_trials=1, heartbeat=FAST_BEATS)
    storage = open_storage(study.url, heartbeat=FAST_BEATS)
    loaded = optuna.load_study(study_name=study.name, storage=storage)
    named = _ask(loaded)
    named.suggest_float("x", 0, 1)
    mark_worker(storage, named._trial_id, {**REMOTE, WORKER_BEATS_LATE: True})  # as a SQLite worker names itself
    _kept_within_the_grace_then_lost(study, named.number, "no heartbeat from its worker elsewhere:1")


def test_a_live_trial_of_a_worker_without_heartbeats_is_not_called_stale(backend, study_on):
    """Only trials of workers that beat late (SQLite) or of no worker count as stale without a heartbeat row."""
    if not backend.rdb:
        pytest.skip("journal storages have no heartbeat rows: the worker's naming is its beat")
    study = study_on("fast", n_trials=3)
    tuner.run_study(study.spec, n_trials=1, heartbeat=FAST_BEATS)
    storage = open_storage(study.url, heartbeat=FAST_BEATS)
    loaded = optuna.load_study(study_name=study.name, storage=storage)
    with contextlib.closing(
        Pulse(storage, study.url, None, {"host": socket.gethostname(), "pid": os.getpid()})
    ) as pulse:
        live = _ask(loaded)
        pulse.start(live._trial_id)
        stored = load_stored(study.name, study.url, storage=storage)
        wait_for(lambda: time.time() > _named_at(storage, live) + FAST_BEATS.grace + 0.5, what="the grace period over")
        statuses = {t.number: t.status for t in running_trials(stored, heartbeat=FAST_BEATS)}
        pulse.stop()
    assert statuses[live.number] == "alive"


def _named_at(storage: optuna.storages.BaseStorage, trial: optuna.Trial) -> float:
    return float(storage.get_trial(trial._trial_id).system_attrs[ATTR_WORKER]["beat"])


def test_a_worker_whose_trial_a_peer_failed_logs_result_discarded_and_goes_on(backend, study_on, caplog):
    study = study_on("peer_fails_me", n_trials=4)
    with caplog.at_level(logging.WARNING, logger="tuner"):
        result = tuner.run_study(study.spec)
    assert "trial 1: result discarded" in caplog.text
    trials = study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert result.ran == 3


# What `tuner doctor` checks on each kind of storage, besides the connection.
DOCTOR_CHECKS = {
    "sqlite": "journal_mode=wal",
    "journal": "study.log: ",
    "postgresql": "schema: version",
    "mysql": "schema: version",
    "redis": "connect: opened redis://",
}


def test_doctor_lists_zombies_and_repair_fails_and_requeues_them(backend, study_on, run_cli):
    study = study_on("fast", n_trials=3)
    tuner.run_study(study.spec, n_trials=1)
    loaded = optuna.load_study(study_name=study.name, storage=open_storage(study.url))
    zombie = loaded.ask()
    zombie.suggest_float("x", 0, 1)
    mark_worker(loaded._storage, zombie._trial_id, {"host": socket.gethostname(), "pid": dead_pid()})

    listed = run_cli("doctor", study.spec)
    assert listed.code == 1
    assert DOCTOR_CHECKS[backend.kind] in listed.out and "BAD" not in listed.out
    assert "dead" in listed.out and "1 zombie trial(s): #1" in listed.out
    assert study.trials()[1].state == TrialState.RUNNING, "without --repair nothing changes"

    repaired = run_cli("doctor", study.spec, "--repair")
    assert repaired.code == 0, repaired.out
    trials = study.trials()
    assert trials[1].state == TrialState.FAIL and "is gone" in trials[1].user_attrs["error"]
    assert trials[2].state == TrialState.WAITING and trials[2].params == trials[1].params
    assert run_cli("doctor", study.spec).code == 0
    tuner.run_study(study.spec)
    assert study.states() == {"COMPLETE": 3, "FAIL": 1}


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna: "Heartbeat of storage is supposed to be used with Study.optimize"
        return study.ask()


@pytest.mark.slow
def test_a_running_trial_names_its_worker_and_its_heartbeat_is_renewed(backend):
    """RDB storages beat in Optuna's heartbeat table; journal storages renew the ``beat`` of the trial's
    worker attribute. Every storage but a journal file names the worker at the start of the trial; a
    journal file only one second in, so a shorter trial costs no write. SQLite beats one second in."""
    settings = Heartbeat(interval=1, grace=5)
    storage = open_storage(backend.url, heartbeat=settings)
    study = optuna.create_study(storage=storage)

    def frozen(trial: optuna.Trial) -> FrozenTrial:
        return storage.get_trial(trial._trial_id)

    with contextlib.closing(Pulse(storage, backend.url, settings, WORKER)) as pulse:
        short = _ask(study)
        pulse.start(short._trial_id)
        time.sleep(NAME_AFTER_S / 2)  # a trial of half a second: time enough for a beat due at once
        pulse.stop()
        short_beat = last_beat(storage, short._trial_id)
        long = _ask(study)
        started = time.time()
        pulse.start(long._trial_id)
        named_at_once = ATTR_WORKER in frozen(long).system_attrs
        wait_for(lambda: last_beat(storage, long._trial_id) is not None, what="the first heartbeat")
        first = last_beat(storage, long._trial_id)
        wait_for(lambda: last_beat(storage, long._trial_id) > first, what="a renewed heartbeat")  # type: ignore[operator]
        ages = heartbeat_ages(storage, [frozen(long)])
        pulse.stop()
    assert frozen(long).system_attrs[ATTR_WORKER]["pid"] == 123
    assert named_at_once is not backend.names_late
    assert (ATTR_WORKER in frozen(short).system_attrs) is not backend.names_late, "a short trial costs no write"
    if backend.names_late:
        assert first >= started + NAME_AFTER_S - 0.05, "a journal file names the worker one second in"  # type: ignore[operator]
    assert ages[long.number] < settings.grace
    if backend.kind == "sqlite":
        assert short_beat is None, "on SQLite a trial shorter than a second costs no heartbeat"
