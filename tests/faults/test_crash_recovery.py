"""Crashes: a worker killed mid-trial, a stale heartbeat, a peer failing a trial, zombie repair."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

import tuner
from faults.support import (
    kill_and_resume_checks,
    make_study,
    running_by,
    silent_remote_trial,
    tuner_process,
    wait_for,
)
from tuner.engine import mark_worker
from tuner.store import Heartbeat, open_storage


@pytest.mark.parametrize("storage", ["tuner.db", "study.log"], ids=["sqlite", "journal"])
def test_kill_9_mid_trial_then_resume_retries_the_trial_once(tmp_path, storage):
    study = make_study(tmp_path, "stall", n_trials=5, storage=storage)
    worker = tuner_process("worker", str(study.spec))
    try:
        wait_for(lambda: [t.number for t in running_by(study, worker.pid)] == [2], what="trial 2 running")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
        worker.communicate()
    before = study.trials()
    killed = [t for t in before if t.state == TrialState.RUNNING]
    assert len(killed) == 1, "the kill left exactly one trial RUNNING"
    complete = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}

    result = tuner.run_study(study.spec)  # reaps the dead worker's trial at start, then finishes the budget
    assert result.ran >= 1
    kill_and_resume_checks(study, complete, killed[0].number, n_trials=5)


@pytest.mark.parametrize("storage", ["tuner.db", "study.log"], ids=["sqlite", "journal"])
def test_stale_heartbeat_of_a_remote_worker_fails_and_retries_its_trial(tmp_path, storage):
    heartbeat = Heartbeat(interval=1, grace=2)
    study = make_study(tmp_path, "fast", n_trials=3, storage=storage)
    tuner.run_study(study.spec, n_trials=1, heartbeat=heartbeat)
    trial = silent_remote_trial(study, heartbeat)
    time.sleep(heartbeat.grace + 1.5)

    tuner.run_study(study.spec, heartbeat=heartbeat)
    trials = study.trials()
    lost = trials[trial.number]
    assert lost.state == TrialState.FAIL and lost.user_attrs["lost"] is True
    assert "no heartbeat" in lost.user_attrs["error"]
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == trial.number]
    assert len(retry) == 1 and retry[0].params == lost.params and retry[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3


def test_journal_trial_whose_worker_died_before_naming_itself_is_lost_after_the_grace_period(tmp_path):
    heartbeat = Heartbeat(interval=1, grace=2)
    study = make_study(tmp_path, "fast", n_trials=3, storage="study.log")
    tuner.run_study(study.spec, n_trials=1, heartbeat=heartbeat)
    # A worker asks for a trial and dies before its first beat: the trial carries no worker at all.
    loaded = optuna.load_study(study_name=study.name, storage=open_storage(study.url))
    orphan = loaded.ask()
    orphan.suggest_float("x", 0, 1)
    tuner.run_study(study.spec, n_trials=2, heartbeat=heartbeat)
    assert study.trials()[orphan.number].state == TrialState.RUNNING, "within the grace period it may still run"

    time.sleep(heartbeat.grace + 0.5)
    tuner.run_study(study.spec, heartbeat=heartbeat)
    kill_and_resume_checks(study, {}, orphan.number, n_trials=3)
    assert "no worker named itself" in study.trials()[orphan.number].user_attrs["error"]


def test_a_local_worker_dying_before_it_named_itself_on_a_journal_trial_is_repaired_at_once(tmp_path):
    study = make_study(tmp_path, "dies_early_once", n_trials=16, storage="study.log")
    tuner.run_study(study.spec, n_jobs=2)  # the default 60 s grace would be far too late
    kill_and_resume_checks(study, {}, int((tmp_path / "died").read_text()), n_trials=16)


def test_a_worker_dying_at_the_end_of_the_budget_has_its_trial_repaired_and_retried_before_the_run_returns(tmp_path):
    study = make_study(tmp_path, "dies_at_the_end", n_trials=3, storage="study.log")
    tuner.run_study(study.spec, n_jobs=2)
    kill_and_resume_checks(study, {}, int((tmp_path / "died").read_text()), n_trials=3)


def test_a_worker_whose_trial_a_peer_failed_logs_result_discarded_and_goes_on(tmp_path, caplog):
    study = make_study(tmp_path, "peer_fails_me", n_trials=4)
    with caplog.at_level(logging.WARNING, logger="tuner"):
        result = tuner.run_study(study.spec)
    assert "trial 1: result discarded" in caplog.text
    trials = study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert result.ran == 3


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_doctor_lists_zombies_and_repair_fails_and_requeues_them(tmp_path, run_cli):
    study = make_study(tmp_path, "fast", n_trials=3)
    tuner.run_study(study.spec, n_trials=1)
    loaded = optuna.load_study(study_name=study.name, storage=open_storage(study.url))
    zombie = loaded.ask()
    zombie.suggest_float("x", 0, 1)
    import socket

    mark_worker(loaded._storage, zombie._trial_id, {"host": socket.gethostname(), "pid": _dead_pid()})

    listed = run_cli("doctor", study.spec)
    assert listed.code == 1
    assert "journal_mode=wal" in listed.out
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
