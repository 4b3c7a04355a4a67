"""A declared ``pipeline:`` (``tuner/models/_steps.py``, checked in ``tuner/setup.py``): tuned from YAML with
``step__param`` names that really reach the steps, a bad name refused before any trial with a did-you-mean, an
unknown step refused at load; a ``pkg.module:factory`` that returns a Pipeline is tuned from YAML too."""

from __future__ import annotations

import textwrap

import optuna
import pytest
from support import sqlite_url

import tuner
from tuner import run_study
from tuner.errors import SpecError
from tuner.spec import load_spec

PIPELINE = [{"impute": "median"}, {"scale": "robust"}, {"pca": {"n_components": 5}}]
SPACE = {
    "pca__n_components": {"type": "int", "low": 2, "high": 8},
    "model__C": {"type": "float", "low": 0.01, "high": 10, "log": True},
}


def test_a_pipeline_tuned_from_yaml_sets_the_searched_step_parameters(write_spec, tmp_path):
    spec = write_spec({"pipeline": PIPELINE, "space": SPACE, "budget": {"n_trials": 3}})
    result = run_study(spec)
    stored = optuna.load_study(study_name="tiny", storage=sqlite_url(tmp_path))
    trials = stored.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 3
    assert {"pca__n_components", "model__C", "model__class_weight"} <= set(trials[0].params)
    model = result.best_estimator()
    assert [name for name, _ in model.steps] == ["impute", "scale", "pca", "model"]
    best = stored.best_trial.params
    assert model.named_steps["pca"].n_components == best["pca__n_components"]
    assert best["model__C"] == model.named_steps["model"].C
    assert type(model.named_steps["scale"]).__name__ == "RobustScaler"
    assert model.named_steps["model"].random_state is not None  # seeded like any catalog model


def test_a_bad_step_parameter_is_refused_before_any_trial_with_a_hint(write_spec, tmp_path):
    spec = write_spec({"pipeline": PIPELINE, "space": {"pca__n_component": SPACE["pca__n_components"]}})
    with pytest.raises(SpecError, match=r"'space\.pca__n_component'.*Did you mean 'pca__n_components'"):
        run_study(spec)
    assert not (tmp_path / "tuner.db").exists()


def test_a_step_option_the_transformer_does_not_take_is_refused_at_its_line(write_spec, tmp_path):
    spec = write_spec({"pipeline": [{"pca": {"n_comp": 3}}]})
    with pytest.raises(SpecError, match=r"field 'pipeline\.0'.*unexpected keyword argument 'n_comp'"):
        run_study(spec)
    assert not (tmp_path / "tuner.db").exists()


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ([{"pcaa": 0.9}], r"unknown pipeline step 'pcaa'\. Did you mean 'pca'\?"),
        (["scale", "scale"], r"step 'scale' is listed twice"),
        ([{"scale": "stnadard"}], r"unknown scale kind 'stnadard'\. Did you mean 'standard'\?"),
        ([{"onehot": 3}], r"step 'onehot' takes a mapping of options"),
    ],
)
def test_an_unknown_or_repeated_step_is_refused_at_load(pipeline, message):
    base = {"name": "p", "data": {"source": "sklearn:iris"}, "model": "logistic"}
    with pytest.raises(SpecError, match=message):
        load_spec({**base, "pipeline": pipeline})


def test_the_shorthands_name_each_steps_main_setting():
    spec = load_spec(
        {
            "name": "p",
            "data": {"source": "sklearn:iris"},
            "model": "logistic",
            "pipeline": ["onehot", {"impute": "mean"}, {"scale": "minmax"}, {"pca": 0.95}, {"select": 3}],
        }
    )
    assert [(s.name, s.options) for s in spec.pipeline] == [
        ("onehot", {}),
        ("impute", {"strategy": "mean"}),
        ("scale", {"kind": "minmax"}),
        ("pca", {"n_components": 0.95}),
        ("select", {"k": 3}),
    ]


def test_non_numeric_columns_without_onehot_are_refused_before_any_trial(tmp_path, write_spec):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["size"] = ["big" if v > 14 else "small" for v in frame["mean radius"]]
    frame.to_csv(tmp_path / "cancer.csv", index=False)
    data = {"source": "cancer.csv", "target": "target"}
    with pytest.raises(SpecError, match=r"non-numeric columns \(size\).*add `- onehot`"):
        run_study(write_spec({"data": data, "pipeline": [{"scale": "standard"}]}))
    encoded = run_study(
        write_spec({"data": data, "pipeline": ["onehot", {"scale": "standard"}], "budget": {"n_trials": 2}})
    )
    assert encoded.best_value is not None


def test_a_factory_returning_a_pipeline_is_tuned_from_yaml(tmp_path, fresh_imports):
    (tmp_path / "mypipes.py").write_text(
        textwrap.dedent(
            """
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import Pipeline
            from sklearn.preprocessing import StandardScaler

            def make():
                return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
            """
        )
    )
    spec = tmp_path / "study.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            name: factory
            data: {source: "sklearn:breast_cancer"}
            model: mypipes:make
            space:
              clf__C: {type: float, low: 0.01, high: 10, log: true}
              scale__with_mean: [true, false]
            cv: {folds: 3}
            budget: {n_trials: 3}
            storage: memory://
            """
        )
    )
    result = tuner.run_study(spec)
    assert set(result.best_params) == {"clf__C", "scale__with_mean"}
    model = result.best_estimator()
    assert result.best_params["clf__C"] == model.named_steps["clf"].C
    assert model.named_steps["scale"].with_mean == result.best_params["scale__with_mean"]
    with pytest.raises(SpecError, match=r"'space\.clf__cc'.*Did you mean 'clf__C'"):
        tuner.run_study(spec, overrides=["space.clf__cc=1.0"])


def test_the_example_pipeline_study_validates(run_cli):
    from pathlib import Path

    study = Path(__file__).resolve().parents[1] / "studies" / "pipeline_cancer.yaml"
    result = run_cli("validate", study)
    assert result.code == 0, result.err
    assert "pca__n_components: int [2, 20]" in result.out
