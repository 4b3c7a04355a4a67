"""Typed overrides (`run_study(n_trials=…)`, `tuner run --n-trials`) reach the spec as values:
checked against the field's own constraints, never turned into `--set` text and parsed again."""

from __future__ import annotations

import pytest

import tuner
from tuner.errors import SpecError
from tuner.spec import StudySpec, load_spec


def test_replace_sets_typed_values_and_keeps_the_rest(write_spec):
    spec = load_spec(write_spec())
    changed = spec.replace(n_trials=3, timeout=9.5, seed=11, name="other")
    assert (changed.budget.n_trials, changed.budget.timeout, changed.seed, changed.name) == (3, 9.5, 11, "other")
    assert changed.data is spec.data and changed.space == spec.space and changed.spec_path == spec.spec_path
    assert spec.replace() is spec


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"n_trials": 0}, "budget.n_trials"), ({"timeout": -1.0}, "budget.timeout"), ({"name": "a@b"}, "name")],
)
def test_a_bad_typed_value_names_its_field(write_spec, changes, field):
    spec = load_spec(write_spec())
    with pytest.raises(SpecError, match=rf"field '{field}'"):
        spec.replace(**changes)


def test_a_spec_passed_in_is_not_parsed_again(write_spec, monkeypatch):
    spec = load_spec(write_spec({"budget": {"n_trials": 2}}))
    assert load_spec(spec) is spec

    def refuse(*args, **kwargs):
        raise AssertionError("the spec was validated again")

    monkeypatch.setattr(StudySpec, "model_validate", refuse)
    result = tuner.run_study(spec, n_trials=3, seed=5)
    assert result.spec.budget.n_trials == 3 and result.spec.seed == 5
    assert len(result.study.trials) == 3
