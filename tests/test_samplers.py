"""Sampler settings: TPE lies about running trials only when workers share the study."""

from __future__ import annotations

import optuna

from tuner.samplers import build_sampler
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
