"""Budget exactness: ``budget.n_trials`` is the study's total across workers and reruns. Local worker
processes take the last trials under a shared lock, so they meet it exactly; independent workers
(``tuner worker``, ``run_worker``) share only the storage and may end up to (workers − 1) over it."""

from __future__ import annotations

import logging
import os

import optuna
import pytest
from optuna.trial import TrialState
from support import check_contiguous

import tuner
from tuner.engine import WorkerJob, run_worker
from tuner.engine._processes import context as _context
from tuner.spec import load_spec
from tuner.store import open_storage
from tuner.store.schema import WORKER as ATTR_WORKER

ENQUEUED = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55]


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", [2, 4])
def test_local_worker_processes_meet_the_budget_exactly_without_lock_errors(backend, study_on, n_jobs):
    # `gathers`: each trial waits until every worker process started one, so all of them run trials.
    study = study_on("gathers", n_trials=200, budget={"n_jobs": n_jobs})
    result = tuner.run_study(study.spec)
    trials = study.trials()
    assert len(trials) == 200, "local workers share a gate, so the budget is met exactly"
    check_contiguous(trials)
    assert all(t.state == TrialState.COMPLETE for t in trials), {t.number: t.user_attrs for t in trials if t.user_attrs}
    assert result.ran == 200
    started = {int(path.name) for path in (study.folder / "started").iterdir()}
    assert len(started) == n_jobs and os.getpid() in started, "the parent is worker 0: it tunes while others start"
    if not backend.names_late:  # a journal file names no worker on trials shorter than a second
        assert {t.system_attrs[ATTR_WORKER]["pid"] for t in trials} == started, "every worker process ran trials"


@pytest.mark.slow
def test_the_budget_is_global_across_workers_and_reruns(backend, study_on):
    study = study_on("fast", n_trials=10, budget={"n_jobs": 2})
    first = tuner.run_study(study.spec)
    assert first.ran == 10
    second = tuner.run_study(study.spec, n_trials=16)
    assert second.ran == 6
    trials = study.trials()
    check_contiguous(trials)
    assert len(trials) == 16 and all(t.state == TrialState.COMPLETE for t in trials)
    assert tuner.run_study(study.spec, n_trials=16).ran == 0


@pytest.mark.slow
def test_independent_workers_share_the_budget_and_run_each_enqueued_trial_once(backend, study_on):
    n_trials, n_workers = 24, 8
    study = study_on("fast", n_trials=n_trials)
    created = optuna.create_study(storage=open_storage(study.url), study_name=study.name, direction="maximize")
    for x in ENQUEUED:
        created.enqueue_trial({"x": x})
    job = WorkerJob(spec=load_spec(study.spec), url=study.url, log_level=logging.ERROR)
    # Eight independent workers, as `tuner worker` on eight machines: no shared gate, only the storage.
    ctx = _context()  # tuner's fork server: imports tuner once, not once per worker
    workers = [ctx.Process(target=run_worker, args=(job,), kwargs={"index": i}) for i in range(n_workers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0] * n_workers

    trials = study.trials()
    check_contiguous(trials)
    assert n_trials <= len(trials) <= n_trials + n_workers - 1, "overshoot is at most workers - 1"
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for x in ENQUEUED:
        assert sum(t.params["x"] == x and "fixed_params" in t.system_attrs for t in trials) == 1
    if not backend.names_late:  # a journal file names no worker on trials shorter than a second
        by_worker = [t.system_attrs[ATTR_WORKER]["pid"] for t in trials]
        assert set(by_worker) <= {w.pid for w in workers} and len(by_worker) == len(trials)
