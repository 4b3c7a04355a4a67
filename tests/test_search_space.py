"""Search spaces (``tuner/search/_space.py``): defaults merged with overrides, conditional parameters, and
suggestions in bounds."""

from __future__ import annotations

import math

import optuna
import pytest

from tuner.errors import SpecError
from tuner.models import get_model
from tuner.search import describe, diff, merge, suggest, to_json
from tuner.spec import ParamSpec

LABEL = "study.yaml"


def P(**fields) -> ParamSpec:
    return ParamSpec.model_validate(fields)


def _sample(space, n_trials: int, seed: int = 0) -> list[dict]:
    """Params suggested by a seeded RandomSampler over ``n_trials`` in-memory trials."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    seen: list[dict] = []

    def objective(trial: optuna.Trial) -> float:
        seen.append(suggest(trial, space))
        return 0.0

    study.optimize(objective, n_trials=n_trials)
    return seen


# --- merge -------------------------------------------------------------------------------------


def test_overrides_replace_defaults_add_new_params_and_keep_the_rest():
    defaults = get_model("svm").space("classification")
    overrides = {
        "C": P(type="float", low=0.5, high=2.0),
        "shrinking": P(type="categorical", choices=[True, False]),
        "class_weight": P(type="fixed", value="balanced"),
    }
    space = merge(defaults, overrides, label=LABEL)
    assert space["C"] == overrides["C"]
    assert space["class_weight"] == overrides["class_weight"]
    assert space["shrinking"] == overrides["shrinking"]
    assert space["kernel"] == defaults["kernel"]
    assert space["gamma"] == defaults["gamma"]
    assert set(space) == set(defaults) | {"shrinking"}
    assert defaults["C"].low == 1e-3, "merging must not change the catalog's default space"


def test_merge_orders_parents_before_children():
    space = merge(
        {},
        {
            "child": P(type="float", low=0.1, high=1, when={"parent": "a"}),
            "grandchild": P(type="int", low=1, high=3, when={"child2": True}),
            "child2": P(type="categorical", choices=[True, False], when={"parent": "b"}),
            "parent": P(type="categorical", choices=["a", "b"]),
        },
        label=LABEL,
    )
    order = list(space)
    assert order.index("parent") < order.index("child")
    assert order.index("parent") < order.index("child2") < order.index("grandchild")


# --- conditional parameters --------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_conditional_param_is_suggested_iff_its_parent_matches(seed):
    space = merge(get_model("svm").space("classification"), {}, label=LABEL)
    seen = _sample(space, 120, seed=seed)
    kernels = {params["kernel"] for params in seen}
    assert kernels == {"rbf", "linear"}, "both branches must be exercised"
    for params in seen:
        assert ("gamma" in params) == (params["kernel"] == "rbf"), params


def test_condition_on_several_values_and_nested_conditions():
    space = merge(
        {},
        {
            "kind": P(type="categorical", choices=["a", "b", "c"]),
            "x": P(type="float", low=0, high=1, when={"kind": ["a", "b"]}),
            "flag": P(type="categorical", choices=[True, False], when={"kind": "c"}),
            "y": P(type="int", low=1, high=4, when={"flag": True}),
        },
        label=LABEL,
    )
    seen = _sample(space, 150)
    assert {p["kind"] for p in seen} == {"a", "b", "c"}
    assert any("y" in p for p in seen)
    for params in seen:
        assert ("x" in params) == (params["kind"] in ("a", "b"))
        assert ("flag" in params) == (params["kind"] == "c")
        assert ("y" in params) == (params.get("flag") is True)


def test_condition_on_a_fixed_parent():
    space = merge(
        {},
        {"mode": P(type="fixed", value="on"), "z": P(type="float", low=1, high=2, when={"mode": "on"})},
        label=LABEL,
    )
    assert all(p["mode"] == "on" and "z" in p for p in _sample(space, 5))


def test_cycles_are_rejected():
    space = {
        "a": P(type="categorical", choices=[1, 2], when={"b": 1}),
        "b": P(type="categorical", choices=[1, 2], when={"a": 1}),
    }
    with pytest.raises(SpecError) as info:
        merge({}, space, label=LABEL)
    message = str(info.value)
    assert "cycle" in message and LABEL in message and "'space.a.when'" in message


def test_when_on_an_unknown_parent_is_rejected():
    with pytest.raises(SpecError) as info:
        merge(
            get_model("svm").space("classification"),
            {"gamma": P(type="float", low=1e-3, high=1, log=True, when={"kernal": "rbf"})},
            label=LABEL,
        )
    message = str(info.value)
    assert "'space.gamma.when'" in message and "'kernal'" in message
    assert "kernel" in message, "the error lists the parameters that exist"


@pytest.mark.parametrize(
    ("parent", "wanted"),
    [
        (P(type="categorical", choices=["rbf", "linear"]), "poly"),
        (P(type="categorical", choices=["rbf", "linear"]), ["rbf", "sigmoid"]),
        (P(type="fixed", value="linear"), "rbf"),
    ],
)
def test_when_on_an_impossible_value_is_rejected(parent, wanted):
    with pytest.raises(SpecError, match=r"can never be"):
        merge({}, {"kernel": parent, "gamma": P(type="float", low=0.1, high=1, when={"kernel": wanted})}, label=LABEL)


# --- suggestions -------------------------------------------------------------------------------


def test_suggestions_stay_within_bounds_and_steps():
    space = merge(
        {},
        {
            "f": P(type="float", low=-2.5, high=3.0),
            "flog": P(type="float", low=1e-4, high=10.0, log=True),
            "fstep": P(type="float", low=0.1, high=0.9, step=0.2),
            "i": P(type="int", low=-3, high=7),
            "ilog": P(type="int", low=1, high=1000, log=True),
            "istep": P(type="int", low=2, high=20, step=3),
            "c": P(type="categorical", choices=[None, "x", 3]),
            "fixed": P(type="fixed", value=42),
        },
        label=LABEL,
    )
    seen = _sample(space, 200)
    for p in seen:
        assert -2.5 <= p["f"] <= 3.0
        assert 1e-4 <= p["flog"] <= 10.0
        assert any(math.isclose(p["fstep"], v) for v in (0.1, 0.3, 0.5, 0.7, 0.9)), p["fstep"]
        assert isinstance(p["i"], int) and -3 <= p["i"] <= 7
        assert isinstance(p["ilog"], int) and 1 <= p["ilog"] <= 1000
        assert isinstance(p["istep"], int) and p["istep"] in range(2, 21, 3)
        assert p["c"] in (None, "x", 3)
        assert p["fixed"] == 42
    # log sampling puts about half the mass below the geometric middle (0.0316); uniform would put ~0.3%.
    below = sum(p["flog"] < math.sqrt(1e-4 * 10.0) for p in seen) / len(seen)
    assert 0.3 < below < 0.7
    assert {p["istep"] for p in seen} == set(range(2, 21, 3)), "every step value is reachable"
    assert {p["i"] for p in seen} >= {-3, 7}, "int bounds are inclusive"


def test_suggest_registers_optuna_distributions_with_log_and_step():
    space = merge(
        {},
        {
            "flog": P(type="float", low=1e-3, high=1.0, log=True),
            "istep": P(type="int", low=2, high=20, step=3),
            "fixed": P(type="fixed", value="x"),
        },
        label=LABEL,
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: float(bool(suggest(t, space))), n_trials=1)
    dists = study.trials[0].distributions
    assert dists["flog"] == optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)
    assert dists["istep"] == optuna.distributions.IntDistribution(2, 20, step=3)
    assert "fixed" not in dists, "fixed values are not searched"


# --- helpers used by `tuner models` / `validate` and the resume check --------------------------


def test_describe_and_diff():
    assert describe(P(type="float", low=0.01, high=0.3, log=True)) == "float [0.01, 0.3] log"
    assert describe(P(type="int", low=2, high=20, step=3)) == "int [2, 20] step 3"
    assert describe(P(type="categorical", choices=["gini", "entropy"])) == "one of gini, entropy"
    assert describe(P(type="fixed", value=3)) == "= 3"
    assert describe(P(type="float", low=0.1, high=1, when={"k": "rbf"})).endswith("when k=rbf")
    old = to_json({"a": P(type="fixed", value=1), "b": P(type="int", low=1, high=3)})
    new = to_json({"a": P(type="fixed", value=2), "c": P(type="int", low=1, high=3)})
    assert diff(old, new) == ["a", "b", "c"]
    assert diff(old, old) == []
