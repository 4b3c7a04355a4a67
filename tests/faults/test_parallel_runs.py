"""Worker processes on one SQLite file or journal: no lock errors, a global budget, distinct seeds."""

from __future__ import annotations

import os

import pytest
from optuna.trial import TrialState

import tuner
from faults.support import check_contiguous, make_study


@pytest.mark.parametrize("n_jobs", [2, 4])
def test_processes_share_one_fresh_sqlite_file_without_lock_errors(tmp_path, n_jobs):
    study = make_study(tmp_path, "fast", n_trials=200)
    result = tuner.run_study(study.spec, n_jobs=n_jobs)
    trials = study.trials()
    assert len(trials) == 200, "local workers share a gate, so the budget is met exactly"
    check_contiguous(trials)
    assert all(t.state == TrialState.COMPLETE for t in trials), {t.number: t.user_attrs for t in trials if t.user_attrs}
    assert result.ran == 200
    workers = {t.system_attrs["tuner:worker"]["pid"] for t in trials}
    assert len(workers) == n_jobs, "every worker process ran trials"
    assert os.getpid() in workers, "the parent is worker 0: it tunes while the others start"


def test_workers_seed_their_samplers_differently(tmp_path):
    # SQLite: journal storages name a trial's worker only one second into the trial.
    study = make_study(tmp_path, "slow", n_trials=6)
    tuner.run_study(study.spec, n_jobs=2)
    trials = study.trials()
    assert len(trials) == 6
    firsts: dict[int, float] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        firsts.setdefault(trial.system_attrs["tuner:worker"]["pid"], trial.params["x"])
    assert len(firsts) == 2 and len(set(firsts.values())) == 2, "two workers proposed the same first trial"


def test_budget_is_global_across_workers_and_reruns(tmp_path):
    study = make_study(tmp_path, "fast", n_trials=10, budget={"n_jobs": 2})
    first = tuner.run_study(study.spec)
    assert first.ran == 10
    second = tuner.run_study(study.spec, n_trials=16)
    assert second.ran == 6
    trials = study.trials()
    check_contiguous(trials)
    assert len(trials) == 16 and all(t.state == TrialState.COMPLETE for t in trials)
    assert tuner.run_study(study.spec, n_trials=16).ran == 0


def test_processes_opening_one_new_sqlite_file_at_once_all_succeed(tmp_path):
    """Run, dashboard and readers may create the same fresh schema together; none may fail."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = f"from tuner.store import open_storage; open_storage({url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
