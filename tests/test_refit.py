"""Refit (``tuner/refit.py``): the best trial refitted on all tuning rows, with the mean best iteration of
its folds, a model card, the held-out score; multi-objective studies need a chosen trial; string and categorical
labels round-trip (in memory, to files, through ``tuner predict``); a ``memory://`` study refits from its result.

``tuner predict`` with the refit model is in ``test_modelfile.py``."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import optuna
import pandas as pd
import pytest
from support import sqlite_url

from tuner import TunerError, run_study
from tuner.labels import OriginalLabels
from tuner.modelfile import load_model
from tuner.refit import refit_best


def test_refit_uses_the_mean_best_iteration_of_the_folds(write_spec, tmp_path):
    space = {"max_iter": {"type": "int", "low": 8, "high": 12}, "max_leaf_nodes": 8, "min_samples_leaf": 20}
    spec = write_spec({"model": "hist_gradient_boosting", "space": space, "budget": {"n_trials": 2}})
    result = run_study(spec)
    template = result.study.best_trial
    result.study.add_trial(
        optuna.trial.create_trial(
            params=template.params,
            distributions=template.distributions,
            value=2.0,  # above any ROC AUC: this trial is the best
            user_attrs={"best_iterations": [3, 4, 6], "val_scores": [1.0, 1.0, 1.0], "val_std": 0.0},
        )
    )
    refit = refit_best(str(spec), out=tmp_path / "hgb.joblib")
    final = refit.estimator.steps[-1][1] if hasattr(refit.estimator, "steps") else refit.estimator
    assert final.max_iter == 4 and final.n_iter_ == 4  # round(mean(3, 4, 6)), early stopping off
    searched = template.params["max_iter"]
    assert refit.card["iterations"] == {"param": "max_iter", "value": 4, "per_fold": [3, 4, 6], "searched": searched}
    assert refit.card["params"]["max_iter"] == 4


def test_refit_without_iteration_attrs_keeps_params(holdout_spec, tmp_path):
    refit = refit_best(str(holdout_spec), out=tmp_path / "m.joblib")
    assert refit.card["iterations"] is None
    assert refit.estimator.steps[-1][1].max_iter == 2000  # logistic's own default in the catalog


def test_multi_objective_refit_needs_a_chosen_pareto_trial(holdout_spec, tmp_path, run_cli):
    db = holdout_spec.parent / "tuner.db"
    url = sqlite_url(holdout_spec.parent)
    source = optuna.load_study(study_name="tiny", storage=url)
    multi = optuna.create_study(study_name="multi", storage=url, directions=["maximize", "minimize"])
    for key, value in source.user_attrs.items():
        multi.set_user_attr(key, value)
    for trial in source.trials[:3]:
        multi.add_trial(
            optuna.trial.create_trial(
                params=trial.params,
                distributions=trial.distributions,
                values=[trial.value, trial.user_attrs["val_std"]],
                user_attrs=trial.user_attrs,
            )
        )
    pareto = sorted(t.number for t in multi.best_trials)
    refused = run_cli("refit", f"multi@{db}", "--out", tmp_path / "mo.joblib")
    assert refused.code == 2
    assert "Pareto-optimal trials with --trial N" in refused.err
    assert ", ".join(f"#{n}" for n in pareto) in refused.err
    chosen = run_cli("refit", f"multi@{db}", "--out", tmp_path / "mo.joblib", "--trial", pareto[0])
    assert chosen.code == 0, chosen.err
    assert json.loads((tmp_path / "mo.card.json").read_text())["study"]["trial"] == pareto[0]
    unknown = run_cli("refit", f"multi@{db}", "--out", tmp_path / "x.joblib", "--trial", 99)
    assert unknown.code == 2 and "has no complete trial #99" in unknown.err


def test_refit_finds_relative_data_from_the_stored_spec_folder(tmp_path, write_spec, monkeypatch):
    from sklearn.datasets import load_breast_cancer

    (tmp_path / "data").mkdir()
    load_breast_cancer(as_frame=True).frame.to_csv(tmp_path / "data" / "bc.csv", index=False)
    spec = write_spec({"data": {"source": "data/bc.csv", "target": "target"}, "budget": {"n_trials": 2}})
    run_study(spec)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    refit = refit_best(f"tiny@{tmp_path / 'tuner.db'}", out=elsewhere / "m.joblib")
    assert refit.card["data"]["rows"] == 569
    assert refit.card["data"]["file_sha256"] == hashlib.sha256((tmp_path / "data" / "bc.csv").read_bytes()).hexdigest()


def test_refit_of_a_study_not_made_by_tuner_is_a_clear_error(tmp_path, run_cli):
    optuna.create_study(study_name="raw", storage=sqlite_url(tmp_path))
    result = run_cli("refit", f"raw@{tmp_path / 'tuner.db'}", "--out", tmp_path / "m.joblib")
    assert result.code == 2
    assert "no stored tuner spec" in result.err


def _yes_no_csv(folder):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = np.where(frame.pop("target") == 1, "yes", "no")
    frame.to_csv(folder / "cancer.csv", index=False)
    return {"data": {"source": "cancer.csv", "target": "diagnosis"}, "budget": {"n_trials": 2}}


def test_string_labels_round_trip_in_memory_to_files_and_through_predict(tmp_path, write_spec, run_cli):
    spec = write_spec({**_yes_no_csv(tmp_path), "cv": {"holdout_test": 0.25}})
    result = run_study(spec)
    X = pd.read_csv(tmp_path / "cancer.csv").drop(columns="diagnosis")

    in_memory = refit_best(spec, out=None)
    assert in_memory.model_path is None and not list(tmp_path.glob("*.joblib"))
    assert list(in_memory.estimator.classes_) == ["no", "yes"]
    predicted = in_memory.estimator.predict(X)
    assert set(predicted) == {"no", "yes"}
    proba = in_memory.estimator.predict_proba(X)
    assert np.array_equal(in_memory.estimator.classes_[proba.argmax(axis=1)], predicted)
    assert in_memory.test_score is not None  # the held-out rows are scored on codes, as the trials were

    assert np.array_equal(result.best_estimator().predict(X), predicted)

    to_file = refit_best(spec, out=tmp_path / "m.joblib")
    assert np.array_equal(to_file.estimator.predict(X), predicted)
    assert to_file.card["data"]["classes"] == ["no", "yes"]
    assert np.array_equal(load_model(tmp_path / "m.joblib").estimator.predict(X), predicted)

    cli = run_cli("refit", spec, "--out", tmp_path / "cli.joblib")
    assert cli.code == 0, cli.err
    X.head(40).to_csv(tmp_path / "new.csv", index=False)
    out = run_cli("predict", tmp_path / "cli.joblib", tmp_path / "new.csv", "--out", tmp_path / "pred.csv")
    assert out.code == 0, out.err
    preds = pd.read_csv(tmp_path / "pred.csv")
    # Decoded once: the labels themselves, not "no"/"yes" looked up again as codes (an IndexError or 0/1).
    assert preds["prediction"].tolist() == list(predicted[:40])
    assert list(preds.columns) == ["prediction", "proba_no", "proba_yes"]
    np.testing.assert_allclose(preds["proba_yes"], proba[:40, 1])


def test_a_memory_study_on_python_data_refits_in_the_same_process(tmp_path):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    sizes = pd.Categorical(np.array(["small", "medium", "large"])[y], categories=["small", "medium", "large"])
    spec = {"name": "mem", "data": {}, "model": "logistic", "storage": "memory://", "budget": {"n_trials": 2}}
    result = run_study(spec, X=X, y=sizes)

    model = result.best_estimator()
    assert list(model.classes_) == ["small", "medium", "large"]  # the categories' own order
    assert set(model.predict(X)) == {"small", "medium", "large"}
    assert (model.predict(X) == np.asarray(sizes)).mean() > 0.9

    saved = refit_best(result, out=tmp_path / "mem.joblib")
    assert saved.card["study"]["storage"] == "memory://"
    assert np.array_equal(load_model(tmp_path / "mem.joblib").estimator.predict(X), model.predict(X))
    with pytest.raises(TunerError, match=r"memory:// storage.*result\.best_estimator\(\)"):
        refit_best("mem@memory://", out=None)


def test_integer_labels_that_are_the_codes_stay_a_plain_pipeline(holdout_spec):
    refit = refit_best(str(holdout_spec), out=None)
    assert not isinstance(refit.estimator, OriginalLabels) and hasattr(refit.estimator, "steps")
