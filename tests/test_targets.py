"""Targets (``tuner/targets.py``): what a study optimises: the metric, a penalised metric, the worst group's
score, several objectives with a Pareto front, and constraints."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
from frames import classification, run, study_spec, with_groups
from support import sqlite_url

from tuner.errors import SpecError
from tuner.spec import load_spec
from tuner.store import pareto_front, top_trials

TREE = "sklearn.tree:DecisionTreeClassifier"
DEPTH = {"max_depth": {"type": "int", "low": 1, "high": 12}}


def _moons(n: int = 200) -> pd.DataFrame:
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.3, random_state=0)
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y})


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        (None, [("metric", 0.0)]),
        ("worst_group", [("worst_group", 0.0)]),
        ({"penalized": 0.5}, [("penalized", 0.5)]),
        ({"penalized": {"penalty": 0.25}}, [("penalized", 0.25)]),
        (["metric", "gap"], [("metric", 0.0), ("gap", 0.0)]),
        (["metric", "fit_time"], [("metric", 0.0), ("fit_time", 0.0)]),
    ],
)
def test_objective_forms_parse_and_survive_the_stored_json(objective, expected):
    raw = study_spec("forms", TREE, fairness={"groups": "g"})
    if objective is not None:
        raw["objective"] = objective
    spec = load_spec(raw)
    assert [(t.name, t.penalty) for t in spec.objective.targets] == expected
    assert spec.objective.custom is None
    assert load_spec(json.loads(spec.to_json())).objective == spec.objective  # as `tuner:spec` stores it


def test_a_custom_objective_path_still_means_custom_code():
    spec = load_spec(study_spec("custom", TREE, objective="mypkg.objectives:score"))
    assert spec.objective.custom == "mypkg.objectives:score"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective": "worst_grup"}, "unknown objective 'worst_grup'. Did you mean 'worst_group'?"),
        ({"objective": {"penalised": 0.5}}, "unknown objective 'penalised'. Did you mean 'penalized'?"),
        ({"objective": "penalized"}, "`penalized` needs a numeric penalty, e.g. `objective: {penalized: 0.5}`"),
        ({"objective": {"gap": 1}}, "objective 'gap' takes no options"),
        ({"objective": ["metric", "metric"]}, "objective 'metric' is listed twice"),
        ({"objective": ["metric", "gap"], "sampler": "cmaes"}, "sampler 'cmaes' cannot optimize 2 objectives"),
        ({"constraints": {"max_gpa": 0.1}}, "unknown key 'max_gpa'. Did you mean 'max_gap'?"),
        ({"objective": "pkg.mod:fn", "constraints": {"max_gap": 0.1}}, "`constraints` and `balance` need the built-in"),
    ],
)
def test_bad_objectives_and_constraints_are_spec_errors(changes, message):
    with pytest.raises(SpecError) as caught:
        load_spec({**study_spec("bad", TREE), **changes})
    assert message in str(caught.value)


def test_group_objective_without_groups_is_refused_before_any_trial(tmp_path):
    with pytest.raises(SpecError, match="objective 'worst_group' need per-group validation scores"):
        run(study_spec("no-groups", TREE, objective="worst_group"), classification(60), tmp_path)
    assert not (tmp_path / "tuner.db").exists()


def test_penalized_value_is_the_metric_minus_penalty_times_the_stored_gap(tmp_path):
    result = run(
        study_spec("penalized", TREE, space={"max_depth": None}, objective={"penalized": 0.5}), _moons(), tmp_path
    )
    (trial,) = result.study.trials
    attrs = trial.user_attrs
    assert attrs["gap"] > 0.05
    assert trial.value == pytest.approx(attrs["val_mean"] - 0.5 * attrs["gap"])
    assert result.study.user_attrs["tuner:objectives"] == ["accuracy − 0.5×gap"]


def test_worst_group_objective_returns_the_lowest_group_score(tmp_path):
    frame = with_groups(classification(120, flip=0.2), {"a": 80, "b": 40})
    result = run(
        study_spec("worst", TREE, space={"max_depth": 3}, fairness={"groups": "g"}, objective="worst_group"),
        frame,
        tmp_path,
    )
    (trial,) = result.study.trials
    scores = trial.user_attrs["group_scores"]
    assert trial.value == pytest.approx(min(scores.values()))
    assert trial.value < max(scores.values())


def test_multi_objective_study_reports_a_pareto_front(tmp_path, run_cli):
    spec_path = tmp_path / "multi.yaml"
    spec = study_spec("multi", TREE, space=DEPTH, objective=["metric", "gap"], budget={"n_trials": 6}, sampler="random")
    spec["data"]["source"] = "moons.csv"
    _moons().to_csv(tmp_path / "moons.csv", index=False)
    spec_path.write_text(json.dumps(spec))
    ran = run_cli("run", spec_path, "-q")
    assert ran.code == 0, ran.err
    assert "on the Pareto front" in ran.out
    study = optuna.load_study(study_name="multi", storage=sqlite_url(tmp_path))
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    front = pareto_front(study)
    complete = study.trials
    for trial in complete:
        assert trial.values[1] == pytest.approx(trial.user_attrs["gap"])
    for trial in front:  # nobody is at least as good on both and better on one
        assert not any(
            o.values[0] >= trial.values[0] and o.values[1] <= trial.values[1] and o.values != trial.values
            for o in complete
        )
    dominated = [t for t in complete if t.number not in {f.number for f in front}]
    assert dominated, "the test needs a dominated trial to show the front is a real selection"
    best = json.loads(run_cli("best", spec_path, "--json").out)
    assert best["best_trial"] is None
    assert [r["number"] for r in best["pareto_front"]] == [t.number for t in front]
    text = run_cli("best", spec_path).out
    assert text.startswith(f"Pareto front of multi: {len(front)} trial(s)")
    assert run_cli("show", spec_path).code == 0


def test_a_constraint_keeps_an_infeasible_trial_from_being_best(tmp_path, run_cli):
    spec = study_spec(
        "constrained", TREE, space=DEPTH, constraints={"max_gap": 0.08}, budget={"n_trials": 6}, sampler="random"
    )
    result = run(spec, _moons(), tmp_path)
    trials = result.study.trials
    for trial in trials:
        assert trial.constraints["max_gap"] == pytest.approx(trial.user_attrs["gap"] - 0.08)
        assert trial.user_attrs["feasible"] is (trial.user_attrs["gap"] <= 0.08)
    infeasible = [t for t in trials if not t.user_attrs["feasible"]]
    best = result.best_trial
    assert best is not None and best.user_attrs["feasible"]
    assert infeasible and max(t.value for t in infeasible) > best.value  # the constraint changed the answer
    assert best.value == max(t.value for t in trials if t.user_attrs["feasible"])
    assert top_trials(result.study, 10)[0].number == best.number
    spec_path = tmp_path / "constrained.yaml"
    spec_path.write_text(json.dumps({**spec, "storage": "tuner.db", "data": {"source": "moons.csv", "target": "y"}}))
    _moons().to_csv(tmp_path / "moons.csv", index=False)
    assert json.loads(run_cli("best", spec_path, "--json").out)["best_trial"]["number"] == best.number
    assert "infeasible" in run_cli("show", spec_path).out


def test_resuming_a_study_with_other_objectives_is_refused(tmp_path):
    from tuner import run_study

    frame = classification(60)
    run(study_spec("resume", TREE, space={"max_depth": 2}), frame, tmp_path)
    penalized = study_spec("resume", TREE, space={"max_depth": 2}, objective={"penalized": 0.5})
    with pytest.raises(SpecError, match="different `objective`"):
        run(penalized, frame, tmp_path)
    two = study_spec("resume", TREE, space={"max_depth": 2}, objective=["metric", "gap"])
    # Not even when asked to: values of one and of two objectives cannot share a study.
    with pytest.raises(SpecError, match=r"created for 1 objective\(s\) \(maximize\), but the spec's `objective` has 2"):
        run_study(two, data=frame, storage=str(tmp_path / "tuner.db"), allow_space_change=True)
