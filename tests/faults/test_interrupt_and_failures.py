"""Ctrl-C in a parallel run, objective failures across workers, unreachable storages, Dask."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
from optuna.trial import TrialState
from support import PATIENCE_S, check_contiguous, wait_for

import tuner
from tuner.errors import TooManyFailures


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_leaves_no_running_trial(make_study, tuner_process):
    study = make_study("held", n_trials=10)
    study.hold(from_number=1)  # trial 0 completes; then each worker holds a trial until Ctrl-C
    run = tuner_process("run", study.spec, "--jobs", "2")  # in its own group, like a terminal
    wait_for(
        lambda: study.states().get("COMPLETE", 0) >= 1 and study.states().get("RUNNING", 0) == 2,
        what="both workers running a trial",
    )
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the parent and its workers
    _out, err = run.communicate(timeout=PATIENCE_S)
    assert run.returncode == 130, err
    assert "Traceback" not in err and "Resume with: tuner run" in err
    after = study.trials()
    assert not [t for t in after if t.state == TrialState.RUNNING]
    stopped = [t for t in after if t.state == TrialState.FAIL]
    assert stopped and all(t.user_attrs.get("interrupted") for t in stopped)
    kept = {t.number: t.value for t in after if t.state == TrialState.COMPLETE}

    study.release()
    tuner.run_study(study.spec)
    final = study.trials()
    check_contiguous(final)
    complete = [t for t in final if t.state == TrialState.COMPLETE]
    assert len(complete) == 10
    assert {t.number: t.value for t in complete if t.number in kept} == kept


def test_objective_errors_nan_inf_and_none_fail_their_trial_and_the_study_goes_on(make_study, run_cli):
    study = make_study("flaky", n_trials=15)
    result = tuner.run_study(study.spec, n_jobs=2)
    trials = study.trials()
    assert len(trials) == 15 and result.ran == 15
    errors = {t.number % 5: t.user_attrs.get("error", "") for t in trials if t.state == TrialState.FAIL}
    assert errors[0].startswith("ValueError: bad input in trial")
    assert "None" in errors[1] and "nan" in errors[2] and "inf" in errors[3]
    assert {t.number % 5 for t in trials if t.state == TrialState.COMPLETE} == {4}
    best = json.loads(run_cli("best", study.spec, "--json").out)["best_trial"]
    assert math.isfinite(best["value"])
    exported = json.loads(run_cli("export", study.spec, "--format", "json").out)["trials"]
    assert all(t["value"] is None or math.isfinite(t["value"]) for t in exported)


def test_max_failures_in_a_row_across_workers_stops_with_the_first_error(make_study, run_cli):
    study = make_study("broken", n_trials=100, budget={"max_failures": 4})
    with pytest.raises(TooManyFailures, match=r"4 trials in a row failed.*RuntimeError: broken \d"):
        tuner.run_study(study.spec, n_jobs=2)
    ran = len(study.trials())
    # The parent's guard sees every worker's trials; each worker also stops at its own streak of 4.
    assert 4 <= ran <= 2 * 4, "workers stop once the guard trips"
    assert not [t for t in study.trials() if t.state == TrialState.RUNNING]
    cli = run_cli("run", study.spec, "--jobs", "2", "-q")
    assert cli.code == 2 and "in a row failed" in cli.err and "Traceback" not in cli.err


def test_unreachable_storage_is_a_clear_error_without_the_password(tmp_path, make_study, run_cli):
    study = make_study("fast", n_trials=4)
    secret = "hunter2-do-not-print"
    url_file = tmp_path / "storage.url"
    url_file.write_text(f"postgresql://tuner:{secret}@127.0.0.1:9/nowhere\n")
    result = run_cli("run", study.spec, "--storage-file", url_file, "--jobs", "2", "-q")
    assert result.code == 2
    assert "cannot open storage postgresql://tuner:***@127.0.0.1:9/nowhere" in result.err
    assert secret not in result.err + result.out and "Traceback" not in result.err


@pytest.mark.slow
def test_dask_local_cluster_with_two_workers_reaches_the_budget(make_study, run_cli):
    pytest.importorskip("distributed")
    study = make_study("fast", n_trials=12)
    result = run_cli("run", study.spec, "--dask", "local", "--jobs", "2", "-q")
    assert result.code == 0, result.err
    trials = study.trials()
    check_contiguous(trials)
    assert len(trials) == 12 and all(t.state == TrialState.COMPLETE for t in trials)
    assert "ran 12 trial(s) now" in result.out


def test_dask_refuses_an_in_memory_storage_that_its_workers_cannot_share(make_study, run_cli):
    pytest.importorskip("distributed")
    study = make_study("fast", n_trials=2)
    result = run_cli("run", study.spec, "--dask", "local", "--storage", "memory://", "-q")
    assert result.code == 2
    assert "in-memory storage cannot be shared with Dask workers" in result.err
