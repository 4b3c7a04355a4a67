"""Samplers (``tuner/search/_samplers.py``): TPE lies about running trials only when workers share the study."""

from __future__ import annotations

import optuna

from tuner.search import build_sampler
from tuner.spec import SamplerSpec


def _trials(sampler: optuna.samplers.BaseSampler) -> list[dict[str, float]]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", -3, 3) - 1) ** 2 + t.suggest_float("y", 0, 1), n_trials=25)
    return [t.params for t in study.trials]


def test_tpe_is_a_constant_liar_only_when_workers_share_the_study():
    spec = SamplerSpec()
    assert build_sampler(spec, 0, label="t")._constant_liar is False
    assert build_sampler(spec, 0, label="t", shared=True)._constant_liar is True
    pinned = SamplerSpec(options={"constant_liar": True})
    assert build_sampler(pinned, 0, label="t")._constant_liar is True
    # A lone worker samples the same trials either way (its own running trial is left out).
    assert _trials(build_sampler(spec, 1, label="t")) == _trials(build_sampler(spec, 1, label="t", shared=True))


def test_runs_tell_the_sampler_whether_the_study_is_shared(write_spec, monkeypatch):
    import tuner
    import tuner.engine._worker

    seen: list[bool] = []

    def recording(*args, shared=False, **kwargs):
        seen.append(shared)
        return build_sampler(*args, shared=shared, **kwargs)

    monkeypatch.setattr(tuner.engine._worker, "build_sampler", recording)
    spec = write_spec({"budget": {"n_trials": 2}})
    tuner.run_study(spec)
    assert seen and set(seen) == {False}  # one process on a local file
    seen.clear()
    tuner.run_study(spec, n_trials=6, n_jobs=2)
    assert seen and set(seen) == {True}  # the parent is worker 0; the other worker runs in its own process


def test_server_storages_count_as_shared_local_files_and_memory_do_not():
    from tuner.store import is_server

    assert all(map(is_server, ["postgresql://u@db/x", "mysql+pymysql://root@h/test", "redis://h:6379/0"]))
    assert not any(map(is_server, ["sqlite:////tmp/a.db", "journal:////tmp/a.log", "memory://"]))
