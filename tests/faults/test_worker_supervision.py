"""The parent of ``tuner run --jobs N`` owns its worker processes: they stop when it gets SIGTERM or is
killed, a worker killed mid-run is replaced while budget remains, and progress counts each trial of the
budget once. Every wait is on an event (a trial state, a process gone), never on a length of time."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess

import pytest
from optuna.trial import TrialState
from support import PATIENCE_S, Study, check_contiguous, kill_and_resume_checks, session_processes, wait_for

import tuner
from tuner.engine._liveness import pid_alive


def _running_pids(study: Study) -> list[int]:
    return [
        (t.system_attrs.get("tuner:worker") or {}).get("pid", 0)
        for t in study.trials()
        if t.state == TrialState.RUNNING
    ]


def _start_holding(study: Study, tuner_process) -> tuple[subprocess.Popen[str], set[int]]:
    """``tuner run --jobs 2`` with trial 0 complete and each worker holding a trial; its worker processes."""
    study.hold(from_number=1)
    run = tuner_process("run", study.spec, "--jobs", "2")
    wait_for(
        lambda: study.states().get("COMPLETE", 0) >= 1 and len(set(_running_pids(study))) == 2,
        what="both workers running a trial",
    )
    workers = set(_running_pids(study)) - {run.pid}
    assert len(workers) == 1 and workers <= study.pids()
    return run, workers


def _rerun_finishes_the_budget(study: Study, kept: dict[int, float | None], n_trials: int) -> None:
    study.release()
    tuner.run_study(study.spec)
    final = study.trials()
    check_contiguous(final)
    assert not [t for t in final if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    complete = {t.number: t.value for t in final if t.state == TrialState.COMPLETE}
    assert {n: v for n, v in complete.items() if n in kept} == kept, "a COMPLETE trial was lost"
    counted = [t for t in final if t.state != TrialState.FAIL or not t.user_attrs.keys() & {"interrupted", "lost"}]
    assert len(counted) == n_trials


@pytest.mark.slow
def test_sigterm_to_the_parent_stops_its_workers_like_ctrl_c(make_study, tuner_process):
    study = make_study("held", n_trials=10)
    run, workers = _start_holding(study, tuner_process)
    run.send_signal(signal.SIGTERM)  # the parent only, as `kill PID`, a service manager or a batch system does
    _out, err = run.communicate(timeout=PATIENCE_S)
    assert run.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "Resume with: tuner run" in err
    assert not [pid for pid in workers if pid_alive(pid)], "the parent returned before its workers stopped"
    # The output pipes closed, so every process of the run has exited; wait until none shows as running.
    wait_for(lambda: not session_processes(run.pid), what="nothing of the run left (fork server, workers)")
    after = study.trials()
    assert not [t for t in after if t.state == TrialState.RUNNING]
    stopped = [t for t in after if t.state == TrialState.FAIL]
    assert len(stopped) == 2 and all(t.user_attrs.get("interrupted") for t in stopped)
    _rerun_finishes_the_budget(study, {t.number: t.value for t in after if t.state == TrialState.COMPLETE}, 10)


@pytest.mark.slow
def test_kill_9_of_the_parent_stops_its_workers(make_study, tuner_process):
    study = make_study("held", n_trials=10)
    run, workers = _start_holding(study, tuner_process)
    os.kill(run.pid, signal.SIGKILL)
    # The held trials never end by themselves: only a worker that notices its parent's death stops.
    wait_for(lambda: not [pid for pid in workers if pid_alive(pid)], what="the workers gone after their parent")
    wait_for(lambda: not session_processes(run.pid), what="nothing of the run left (fork server, workers)")
    _out, err = run.communicate(timeout=PATIENCE_S)
    assert "parent process" in err and "Traceback" not in err
    after = study.trials()
    # The parent's own trial stays RUNNING (nobody was left to mark it); the next run repairs it.
    running = [t for t in after if t.state == TrialState.RUNNING]
    assert [t.system_attrs["tuner:worker"]["pid"] for t in running] == [run.pid]
    stopped = [t for t in after if t.state == TrialState.FAIL]
    assert len(stopped) == 1 and stopped[0].user_attrs.get("interrupted")
    _rerun_finishes_the_budget(study, {t.number: t.value for t in after if t.state == TrialState.COMPLETE}, 10)


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_replaced_and_progress_counts_each_trial_once(make_study, tuner_process):
    study = make_study("held", n_trials=6)
    run, workers = _start_holding(study, tuner_process)
    (victim,) = workers
    (killed,) = [t.number for t in study.trials() if t.state == TrialState.RUNNING and _worker(t) == victim]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: set(_running_pids(study)) - {run.pid, victim},
        what="a new worker process running a trial in the killed one's place",
    )
    study.release()
    _out, err = run.communicate(timeout=PATIENCE_S)
    assert run.returncode == 0, err
    assert "Traceback" not in err
    kill_and_resume_checks(study, {}, killed, n_trials=6)
    done = [int(n) for n in re.findall(r"\| (\d+)/6 done", err)]
    assert done == list(range(1, 7)), err
    assert f"trial {killed} not counted: worker lost" in err


def _worker(trial) -> int:
    return int((trial.system_attrs.get("tuner:worker") or {}).get("pid", 0))


@pytest.mark.slow
def test_workers_killed_one_after_another_are_replaced_only_up_to_max_failures(make_study, caplog):
    # Every trial kills the worker process that runs it; the parent counts no trial meanwhile.
    study = make_study("dies_in_workers", n_trials=4, budget={"max_failures": 2, "n_jobs": 2})
    (study.folder / "hold_deaths").write_text("3")
    with caplog.at_level(logging.WARNING, logger="tuner"):
        result = tuner.run_study(study.spec)
    deaths = (study.folder / "deaths").read_text().split()
    assert len(deaths) == 3, "the first worker and two replacements die; no third replacement starts"
    messages = [r.getMessage() for r in caplog.records if "was killed" in r.getMessage()]
    assert [m.split("; ")[-1].split(": ")[-1] for m in messages] == [
        f"worker process {deaths[1]} takes its place",
        f"worker process {deaths[2]} takes its place",
        "3 workers were killed with no trial counted in between, so no other takes its place",
    ]
    trials = study.trials()
    assert sum(bool(t.user_attrs.get("lost")) for t in trials) == 3
    assert result.done() == 4 and not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
