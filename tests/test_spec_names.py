"""Names (``tuner/spec/_names.py``): every closed set of names lives in tuner.spec as a Literal; the registries
that implement them list exactly those names."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from tuner import spec
from tuner.cv import BALANCERS, AugmentPlan
from tuner.cv._plan import _splitter
from tuner.search import PRUNERS, SAMPLERS
from tuner.search._fidelity import _DEFAULTS as FIDELITY_DEFAULTS
from tuner.setup import PruningPlan
from tuner.targets import TARGETS


def test_samplers_pruners_balancers_and_targets_are_exactly_the_spec_names():
    assert set(SAMPLERS) == set(spec.SAMPLER_NAMES)
    assert set(PRUNERS) == set(spec.PRUNER_NAMES)
    assert set(BALANCERS) == set(spec.BALANCE_MODES)
    assert set(TARGETS) == set(spec.TARGET_NAMES)
    assert set(FIDELITY_DEFAULTS) == set(spec.MULTI_FIDELITY_PRUNERS)


@pytest.mark.parametrize("scheme", [s for s in spec.CV_SCHEMES if s != "auto"])
def test_every_cv_scheme_has_a_splitter(scheme):
    assert _splitter(spec.CVSpec(scheme=scheme), scheme, seed=0, task="classification") is not None


def test_searchable_augmentation_settings_are_plan_fields():
    fields = {f.name for f in dataclasses.fields(AugmentPlan)}
    assert set(spec.SEARCHABLE_AUGMENT) <= fields


def test_every_fidelity_is_a_pruning_step():
    steps = set(typing.get_args(typing.get_type_hints(PruningPlan)["step"]))
    assert {"fold" if f == "folds" else f for f in typing.get_args(spec.Fidelity)} <= steps


def test_pipeline_steps_are_exactly_the_spec_names():
    from tuner.models import STEPS

    assert set(STEPS) == set(spec.PIPELINE_STEPS)
