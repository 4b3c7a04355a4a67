"""Kill -9 of a worker: no COMPLETE trial is lost, the dead worker's trial (a zombie) is repaired and
retried once with the same parameters, and the budget is met, whether a later run resumes the study
or the run that lost a worker process finishes it."""

from __future__ import annotations

import os
import signal

import pytest
from optuna.trial import TrialState
from support import kill_and_resume_checks, running_by, wait_for

import tuner


@pytest.mark.slow
def test_kill_9_of_a_worker_mid_trial_then_a_rerun_retries_the_trial_once(backend, study_on, tuner_process):
    study = study_on("held", n_trials=5)
    study.hold(from_number=2)  # trial 2 runs until the worker is killed
    worker = tuner_process("worker", study.spec)
    wait_for(lambda: [t.number for t in running_by(study, worker.pid)] == [2], what="trial 2 running")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    before = study.trials()
    killed = [t for t in before if t.state == TrialState.RUNNING]
    assert len(killed) == 1, "the kill left exactly one trial RUNNING"
    complete = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}

    study.release()
    result = tuner.run_study(study.spec)  # reaps the dead worker's trial at start, then finishes the budget
    assert result.ran >= 1
    kill_and_resume_checks(study, complete, killed[0].number, n_trials=5)


@pytest.mark.slow
def test_a_local_worker_dying_at_the_start_of_a_trial_is_repaired_and_retried_during_the_run(backend, study_on):
    """A worker process is killed at the very start of a trial, in the middle of the run. On a journal
    file it dies before it named itself on that trial, so the parent tells the trial apart only once the
    death has settled; elsewhere the dead PID is on it. The default 60 s grace would be far too late.

    The parent holds its own trial until the worker has died (``dies_early_once``), so the worker
    reaches a trial however long it takes to start: the run never ends before the death.
    """
    study = study_on("dies_early_once", n_trials=16)
    tuner.run_study(study.spec, n_jobs=2)
    kill_and_resume_checks(study, {}, study.marker(), n_trials=16)


@pytest.mark.slow
def test_a_worker_dying_at_the_end_of_the_budget_has_its_trial_repaired_and_retried_before_the_run_returns(
    backend, study_on
):
    study = study_on("dies_at_the_end", n_trials=3)
    tuner.run_study(study.spec, n_jobs=2)
    kill_and_resume_checks(study, {}, study.marker(), n_trials=3)
