"""Remedies (``tuner/diagnostics/_remedies.py``): each flag of the best trial turned into knobs to move,
directions and a spec snippet that is a valid fragment of a study file."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import create_trial

from tuner.diagnostics import Remedy, answers, remedies
from tuner.models import get_model
from tuner.spec import load_spec

BASE = {"name": "r", "data": {"source": "sklearn:breast_cancer"}, "model": "random_forest"}


def _best(params: dict[str, Any], **attrs: Any):
    distributions = {
        "max_depth": IntDistribution(2, 32, log=True),
        "min_samples_leaf": IntDistribution(1, 20, log=True),
        "max_features": FloatDistribution(0.1, 1.0),
        "C": FloatDistribution(1e-3, 100.0, log=True),
        "model__C": FloatDistribution(1e-3, 100.0, log=True),
    }
    values = {"train_mean": 0.99, "val_mean": 0.9, "val_std": 0.01, "gap": 0.09, "flags": [], **attrs}
    return create_trial(
        value=0.9, params=params, distributions={k: distributions[k] for k in params}, user_attrs=values
    )


def _for(model: str, best, spec: dict[str, Any] | None = None, **options: Any) -> dict[str, Remedy]:
    parsed = load_spec({**BASE, "model": model, **(spec or {})})
    entry = get_model(model)
    # In a declared pipeline the spec's `model__` names replace the model's own (tuner.models.in_pipeline).
    space = parsed.space if parsed.pipeline else {**entry.space("classification"), **parsed.space}
    found = remedies(
        parsed, best=best, knobs=entry.knobs, space=space, task=options.pop("task", "classification"), **options
    )
    return {r.question: r for r in found}


def _fragment(snippet: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The snippet parsed and pasted over a spec; load_spec must accept the result."""
    fragment = yaml.safe_load(snippet)
    assert isinstance(fragment, dict) and fragment
    spec = {**BASE, **(base or {})}
    for key, value in fragment.items():
        spec[key] = {**spec[key], **value} if isinstance(spec.get(key), dict) and isinstance(value, dict) else value
    load_spec(spec)
    return fragment


def test_overfitting_lowers_depth_raises_leaf_size_and_narrows_the_space_to_the_current_values():
    best = _best({"max_depth": 12, "min_samples_leaf": 3, "max_features": 0.6}, flags=["overfit"])
    remedy = _for("random_forest", best)["overfitting"]
    knobs = remedy.steps[0]
    assert "lower max_depth (tree depth, now 12)" in knobs.text
    assert "raise min_samples_leaf (rows a leaf needs, now 3)" in knobs.text
    assert "lower max_features" in knobs.text
    space = _fragment(knobs.snippet)["space"]
    assert space["max_depth"] == {"type": "int", "low": 2, "high": 12, "log": True}
    assert space["min_samples_leaf"] == {"type": "int", "low": 3, "high": 20, "log": True}
    assert space["max_features"] == {"type": "float", "low": 0.1, "high": 0.6}
    limit = next(s for s in remedy.steps if "max_gap" in s.snippet)
    assert _fragment(limit.snippet) == {"constraints": {"max_gap": 0.045}}  # half the gap
    penalty = next(s for s in remedy.steps if "penalized" in s.snippet)
    assert _fragment(penalty.snippet) == {"objective": {"penalized": 0.5}}
    assert "underfitting" not in _for("random_forest", best)


def test_a_best_value_at_the_bound_extends_the_range_past_it():
    best = _best({"max_depth": 2, "min_samples_leaf": 20, "max_features": 0.1}, flags=["overfit"])
    space = _fragment(_for("random_forest", best)["overfitting"].steps[0].snippet)["space"]
    assert space["max_depth"] == {"type": "int", "low": 1, "high": 2, "log": True}
    assert space["min_samples_leaf"] == {"type": "int", "low": 20, "high": 200, "log": True}
    assert space["max_features"] == {"type": "float", "low": 0.05, "high": 0.1}


def test_underfitting_moves_the_same_knobs_the_other_way():
    best = _best({"C": 0.01}, flags=["underfit"], train_mean=0.7)
    remedy = _for("logistic", best)["underfitting"]
    assert (
        "Regularise less" in remedy.steps[0].text and "raise C (inverse L2 strength, now 0.01)" in remedy.steps[0].text
    )
    c = _fragment(remedy.steps[0].snippet, {"model": "logistic"})["space"]["C"]
    assert c["low"] == 0.01 and c["high"] == get_model("logistic").space("classification")["C"].high and c["log"]
    assert "overfitting" not in _for("logistic", best)


def test_knobs_inside_a_declared_pipeline_keep_their_model_prefix():
    best = _best({"model__C": 50.0}, flags=["overfit"])
    pipeline = {"pipeline": ["scale"], "space": {"model__C": {"type": "float", "low": 0.001, "high": 100, "log": True}}}
    knobs = _for("logistic", best, pipeline)["overfitting"].steps[0]
    assert "lower model__C" in knobs.text
    assert _fragment(knobs.snippet, {"model": "logistic", "pipeline": ["scale"]})["space"]["model__C"]["high"] == 50.0


def test_more_data_suggests_the_augmentation_the_spec_supports():
    best = _best({"max_depth": 5})
    tabular = _for("random_forest", best, more_data=True)["more data"]
    space = _fragment(tabular.steps[-1].snippet)["space"]
    assert set(space) == {"augment.noise_std", "augment.copies"}
    images = {"data": {"source": "sklearn:digits"}, "augment": {"image_shape": [8, 8]}}
    moved = _for("random_forest", best, images, more_data=True)["more data"]
    space = _fragment(moved.steps[-1].snippet, images)["space"]
    assert set(space) == {"augment.shift", "augment.rotate"}
    assert "more data" not in _for("random_forest", best, more_data=False)
    assert "more data" not in _for("random_forest", best)  # no curve, no verdict


def test_a_group_gap_suggests_worst_group_objective_a_fairness_constraint_and_balance():
    groups = {
        "group_scores": {"a": 0.95, "b": 0.7},
        "group_gap": 0.25,
        "worst_group_name": "b",
        "worst_group_score": 0.7,
    }
    remedy = _for("random_forest", _best({"max_depth": 5}, **groups))["group gap"]
    assert "group 'b' scores 0.7 against 0.9 overall" in remedy.finding
    snippets = [_fragment(s.snippet) for s in remedy.steps if s.snippet]
    assert {"objective": "worst_group"} in snippets
    assert {"objective": ["metric", "worst_group"]} in snippets
    assert {"constraints": {"max_group_gap": 0.125}} in snippets
    assert {"balance": "oversample"} in snippets
    # Regression has no classes to balance; a study already on the worst group is not told to move there.
    regression = {"data": {"source": "sklearn:diabetes"}, "objective": "worst_group"}
    steps = _for("random_forest", _best({"max_depth": 5}, **groups), regression, task="regression")["group gap"].steps
    assert not any("balance" in s.snippet or "objective" in s.snippet for s in steps)
    # A gap within the folds' spread is noise.
    small = {**groups, "group_gap": 0.015, "val_std": 0.01}
    assert "group gap" not in _for("random_forest", _best({"max_depth": 5}, **small))


@pytest.mark.parametrize("flags", [[], ["overfit"]])
def test_answers_cover_the_four_questions(flags):
    best = _best({"max_depth": 12}, flags=flags)
    found = tuple(_for("random_forest", best).values())
    said = answers(best, metric="accuracy", curve=None, remedies=found)
    assert list(said) == ["overfitting", "underfitting", "more data", "group gap"]
    assert said["more data"].startswith("Not measured: `tuner diagnose`")
    assert said["overfitting"].startswith("Yes" if flags else "No")
    if flags:
        assert "lower max_depth" in said["overfitting"]


def test_diagnose_cli_prints_the_remedies_of_an_overfitting_forest(tmp_path, run_cli, monkeypatch):
    import json

    from frames import classification, study_spec

    monkeypatch.setenv("COLUMNS", "200")
    classification(150, flip=0.2).to_csv(tmp_path / "rows.csv", index=False)
    space = {"n_estimators": 10, "max_depth": 16, "min_samples_leaf": 1, "max_features": 1.0}
    spec = study_spec("forest", "random_forest", space=space)
    spec["data"]["source"] = "rows.csv"
    (tmp_path / "study.yaml").write_text(json.dumps(spec))
    assert run_cli("run", tmp_path / "study.yaml", "-q").code == 0
    shown = run_cli("diagnose", tmp_path / "study.yaml", "--no-curve")
    assert shown.code == 0, shown.err
    assert "What to try next" in shown.out and "Overfitting: the best trial #0" in shown.out
    assert "lower max_depth (tree depth, now 16)" in shown.out
    assert "max_depth: {type: int, low: 8, high: 16}" in shown.out  # a fixed knob becomes a range
    report = json.loads(run_cli("diagnose", tmp_path / "study.yaml", "--no-curve", "--json").out)
    assert report["remedies"][0]["question"] == "overfitting"
