"""Refit (``tuner/refit.py``): the best trial refitted on all tuning rows, with the mean best iteration of
its folds, a model card, the held-out score; multi-objective studies need a chosen trial.

``tuner predict`` with the refit model is in ``test_modelfile.py``."""

from __future__ import annotations

import hashlib
import json

import optuna
from support import sqlite_url

from tuner import run_study
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
