"""The thread policy (``tuner/threads.py``): its arithmetic, and that every path fits models under it.

A probe model records the OpenMP limit it was fitted under and the ``n_jobs`` the catalog gave it;
a custom objective stores both on the trial. The machine is made to look like 4 idle cores, so the
expected numbers do not depend on the machine the tests run on.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from sklearn.datasets import load_iris

import tuner
from tuner import threads
from tuner.engine import join_study
from tuner.errors import SpecError
from tuner.estimator import TunerSearchCV
from tuner.threads import model_threads, usable_cores


@pytest.mark.parametrize(
    ("setting", "workers", "cores", "busy", "expected"),
    [
        ("auto", 1, 8, 0, 8),  # one worker takes every idle core
        ("auto", 2, 8, 0, 4),
        ("auto", 3, 8, 0, 2),  # rounded down: 3 × 2 ≤ 8
        ("auto", 16, 8, 0, 1),  # never less than one
        ("auto", 1, 8, 6, 2),  # only the cores other work leaves free
        ("auto", 2, 2, 2, 1),  # a loaded machine: one thread, not two that wait for each other
        ("auto", 1, 2, 5, 1),
        ("auto", None, 8, 0, 1),  # a worker that cannot know its peers (`tuner worker`, Dask)
        (3, 2, 2, 0, 3),  # the spec's number is used as it is
        (1, 1, 64, 0, 1),
    ],
)
def test_threads_are_the_free_cores_shared_among_the_workers(setting, workers, cores, busy, expected):
    assert model_threads(setting, workers, cores=cores, busy=busy) == expected


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux: CPU affinity and cgroups")
def test_usable_cores_follow_a_containers_cpu_quota(tmp_path, monkeypatch):
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(threads, "_QUOTA_FILES", ((quota, None),))
    quota.write_text("150000 100000\n")  # 1.5 CPUs' worth of time
    assert usable_cores() == 1
    quota.write_text("max 100000\n")
    assert usable_cores() >= 1
    quota.write_text("100000000 100000\n")  # more than the machine has: affinity decides
    assert usable_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", [0, -2, "all", 1.5, True])
def test_a_thread_count_that_is_not_auto_or_a_positive_int_is_refused(write_spec, value):
    with pytest.raises(SpecError, match=r"budget\.threads.*`auto` or a whole number"):
        tuner.load_spec(write_spec({"budget": {"threads": value}}))


PROBE = """
import numpy as np
import sklearn.ensemble  # loads scikit-learn's OpenMP runtime, whose limit the probe reads
import threadpoolctl
from sklearn.base import BaseEstimator, ClassifierMixin


def openmp_threads():
    return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openmp")


class Probe(ClassifierMixin, BaseEstimator):
    def __init__(self, c=1.0, n_jobs=None, random_state=None):
        self.c, self.n_jobs, self.random_state = c, n_jobs, random_state

    def fit(self, X, y):
        self.openmp_threads_ = openmp_threads()
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def probe(trial, ctx):
    estimator = ctx.build_estimator(ctx.suggest(trial))
    X, y, _, _ = ctx.fold(0)
    model = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    model.fit(X, y)
    trial.set_user_attr("openmp_threads", model.openmp_threads_)
    trial.set_user_attr("n_jobs", model.n_jobs)
    return trial.params["c"]
"""


@pytest.fixture
def probe_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_imports: None) -> Any:
    """``probe_spec(**budget)``: a spec of the probe model and objective, on a machine of 4 idle cores."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0)
    (tmp_path / "probe_mod.py").write_text(textwrap.dedent(PROBE))

    def write(**budget: Any) -> Path:
        spec = {
            "name": "probe",
            "data": {"source": "sklearn:iris"},
            "model": "probe_mod:Probe",
            "space": {"c": [0.25, 0.5, 0.75]},
            "objective": "probe_mod:probe",
            "cv": {"folds": 2},
            "sampler": "random",
            "pruner": "none",
            "budget": {"n_trials": 3, **budget},
            "storage": str(tmp_path / "probe.db"),
            "seed": 1,
        }
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return write


def _limits(study: optuna.Study) -> set[tuple[int, int]]:
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert trials
    return {(t.user_attrs["openmp_threads"], t.user_attrs["n_jobs"] or 1) for t in trials}


def test_a_sequential_run_gives_its_one_worker_every_free_core(probe_spec):
    result = tuner.run_study(probe_spec())
    assert _limits(result.study) == {(4, 4)}


def test_the_spec_sets_the_threads_of_a_run(probe_spec):
    result = tuner.run_study(probe_spec(threads=3))
    assert _limits(result.study) == {(3, 3)}


@pytest.mark.slow
def test_worker_processes_share_the_cores(probe_spec):
    result = tuner.run_study(probe_spec(n_trials=4), n_jobs=2)
    assert _limits(result.study) == {(2, 2)}  # the parent's trials and the worker processes' alike


def test_tuner_worker_takes_one_thread_unless_the_spec_says_more(probe_spec):
    spec = probe_spec()
    join_study(spec)
    assert _limits(optuna.load_study(study_name="probe", storage=f"sqlite:///{spec.parent / 'probe.db'}")) == {(1, 1)}
    join_study(spec, overrides=["budget.threads=2", "budget.n_trials=6"], allow_space_change=True)
    study = optuna.load_study(study_name="probe", storage=f"sqlite:///{spec.parent / 'probe.db'}")
    assert _limits(study) == {(1, 1), (2, 2)}


def test_a_refit_runs_alone_so_it_takes_every_free_core(probe_spec):
    spec = probe_spec(n_jobs=2)
    tuner.run_study(spec, n_jobs=1)
    model = tuner.refit_best(spec, out=None).estimator
    model = getattr(model, "estimator", model)
    assert (model.openmp_threads_, model.n_jobs) == (4, 4)


def test_the_estimators_refit_takes_every_free_core(probe_spec, tmp_path, monkeypatch):
    probe_spec()  # the probe module and the 4 idle cores
    monkeypatch.syspath_prepend(str(tmp_path))
    import probe_mod  # written by the fixture into tmp_path

    X, y = load_iris(return_X_y=True)
    search = TunerSearchCV(probe_mod.Probe(), {"c": [0.25, 0.5]}, n_trials=2, cv=2, random_state=0).fit(X, y)
    assert search.best_estimator_.openmp_threads_ == 4
    assert np.all(search.predict(X) == search.classes_[0])


def test_the_estimators_threads_argument_is_its_specs_budget_threads(probe_spec, tmp_path, monkeypatch):
    probe_spec()  # the probe module and the 4 idle cores
    monkeypatch.syspath_prepend(str(tmp_path))
    import probe_mod  # written by the fixture into tmp_path

    X, y = load_iris(return_X_y=True)
    search = TunerSearchCV(probe_mod.Probe(), {"c": [0.25, 0.5]}, n_trials=2, cv=2, random_state=0, threads=2)
    search.fit(X, y)
    assert search.best_estimator_.openmp_threads_ == 2, "the refit takes the threads given, not every free core"
    with pytest.raises(SpecError, match=r"budget\.threads.*whole number"):
        TunerSearchCV(probe_mod.Probe(), {"c": [0.25, 0.5]}, n_trials=2, cv=2, threads=0).fit(X, y)
