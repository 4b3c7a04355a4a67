"""``tuner refit`` → ``tuner predict``: held-out rows, the model card, and refusing altered input."""

from __future__ import annotations

import hashlib
import json

import joblib
import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from tuner import run_study
from tuner.modelfile import card_path_for
from tuner.refit import refit_best
from tuner.setup import build as build_context
from tuner.spec import load_spec
from tuner.store import stored_spec

HOLDOUT = {"cv": {"holdout_test": 0.25}}


def _url(tmp_path):
    return f"sqlite:///{tmp_path / 'tuner.db'}"


@pytest.fixture(scope="module")
def holdout_spec(tmp_path_factory):
    """One tuned study with held-out rows, shared by the tests (each writes its own files)."""
    folder = tmp_path_factory.mktemp("refit")
    spec = folder / "study.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "data": {"source": "sklearn:breast_cancer"},
                "model": "logistic",
                "metric": "roc_auc",
                "cv": {"scheme": "stratified", "folds": 3, "holdout_test": 0.25},
                "pruner": "none",
                "budget": {"n_trials": 4},
                "seed": 7,
            }
        )
    )
    run_study(spec)
    return spec


def test_holdout_rows_stay_out_of_tuning_and_are_recomputed_identically(write_spec):
    spec = load_spec(write_spec(HOLDOUT))
    first, second = build_context(spec), build_context(spec)
    assert first.holdout is not None and second.holdout is not None
    n_test, n_tune = len(first.holdout.y), len(first.dataset.y)
    assert n_test + n_tune == 569 and n_test == pytest.approx(569 * 0.25, abs=1)
    # Same rows every time (refit relies on it), and no test row is among the tuning rows.
    pd.testing.assert_frame_equal(first.holdout.X, second.holdout.X)
    tuning_rows = set(map(tuple, first.dataset.X.to_numpy()))
    assert not any(tuple(row) in tuning_rows for row in first.holdout.X.to_numpy())
    # Folds cover exactly the tuning rows.
    val = np.sort(np.concatenate([v for _, v in first.splits]))
    assert np.array_equal(val, np.arange(n_tune))
    # Stratified: class shares agree within a row.
    assert abs(first.holdout.y.mean() - first.dataset.y.mean()) < 0.02


def test_refit_predict_round_trip(holdout_spec, tmp_path, run_cli):
    model = tmp_path / "model.joblib"
    result = run_cli("refit", holdout_spec, "--out", model)
    assert result.code == 0, result.err
    assert "held-out test roc_auc" in result.out
    card = json.loads(card_path_for(model).read_text())
    study = optuna.load_study(study_name="tiny", storage=_url(holdout_spec.parent))
    best = study.best_trial

    assert card["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert card["study"]["trial"] == best.number
    assert card["params"] == {**best.params}
    assert card["cv"]["fold_scores"] == best.user_attrs["val_scores"]
    assert card["cv"]["std"] == best.user_attrs["val_std"] and card["cv"]["mean"] == best.value
    assert card["data"]["rows"] == 569 and card["data"]["test_rows"] == 569 - card["data"]["tuning_rows"]
    assert len(card["data"]["columns"]) == 30 and card["data"]["dtypes"]["mean radius"] == "float64"
    assert len(card["data"]["sha256"]) == 64
    assert {"python", "tuner", "optuna", "scikit-learn", "joblib"} <= card["versions"].keys()
    assert card["spec"]["cv"]["holdout_test"] == 0.25

    # The test score is the metric on the held-out rows, recomputed independently.
    context = build_context(load_spec(holdout_spec))
    estimator = joblib.load(model)
    assert card["test"]["score"] == pytest.approx(context.metric.score(estimator, context.holdout.X, context.holdout.y))

    # Recorded on the study for show/report/dashboard.
    recorded = study.user_attrs["tuner:refit_model"]
    assert recorded["path"] == str(model.resolve()) and recorded["sha256"] == card["model_sha256"]
    assert "Refit model (trial" in run_cli("show", holdout_spec).out

    data = context.holdout.X.assign(target=context.holdout.y)
    data.to_csv(tmp_path / "new.csv", index=False)
    predicted = run_cli("predict", model, tmp_path / "new.csv", "--out", tmp_path / "pred.csv")
    assert predicted.code == 0, predicted.err
    preds = pd.read_csv(tmp_path / "pred.csv")
    expected = np.asarray(card["data"]["classes"])[estimator.predict(context.holdout.X)]
    assert np.array_equal(preds["prediction"].to_numpy(), expected)
    np.testing.assert_allclose(preds["proba_1"], estimator.predict_proba(context.holdout.X)[:, 1])


def test_predict_refuses_a_tampered_model_before_unpickling(holdout_spec, tmp_path, run_cli, monkeypatch):
    model = tmp_path / "m.joblib"
    assert run_cli("refit", holdout_spec, "--out", model).code == 0
    pd.DataFrame(np.zeros((2, 30)), columns=json.loads(card_path_for(model).read_text())["data"]["columns"]).to_csv(
        tmp_path / "x.csv", index=False
    )
    payload = bytearray(model.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    model.write_bytes(bytes(payload))

    def never(*args, **kwargs):
        raise AssertionError("the tampered file was unpickled")

    monkeypatch.setattr(joblib, "load", never)
    result = run_cli("predict", model, tmp_path / "x.csv")
    assert result.code == 2
    assert "does not match its card: SHA-256" in result.err
    assert "not loaded (unpickling runs code)" in result.err


def test_predict_refuses_missing_or_retyped_columns(holdout_spec, tmp_path, run_cli):
    model = tmp_path / "m.joblib"
    assert run_cli("refit", holdout_spec, "--out", model).code == 0
    columns = json.loads(card_path_for(model).read_text())["data"]["columns"]
    frame = pd.DataFrame(np.ones((3, 30)), columns=columns)

    frame.drop(columns=["mean radius"]).to_csv(tmp_path / "missing.csv", index=False)
    missing = run_cli("predict", model, tmp_path / "missing.csv")
    assert missing.code == 2
    assert "missing 1 column(s) the model was trained on: mean radius" in missing.err

    frame.assign(**{"mean area": ["large", "1", "2"]}).to_csv(tmp_path / "text.csv", index=False)
    retyped = run_cli("predict", model, tmp_path / "text.csv")
    assert retyped.code == 2
    assert "column 'mean area': trained on float64 values" in retyped.err

    frame.assign(**{"mean area": [None, 1.0, 2.0]}).to_csv(tmp_path / "gaps.csv", index=False)
    gaps = run_cli("predict", model, tmp_path / "gaps.csv")
    assert gaps.code == 2
    assert "the model cannot predict these rows" in gaps.err and "contains NaN" in gaps.err

    frame.to_csv(tmp_path / "ok.csv", index=False)
    (tmp_path / "pred.csv").write_text("old")
    exists = run_cli("predict", model, tmp_path / "ok.csv", "--out", tmp_path / "pred.csv")
    assert exists.code == 2 and "already exists; pass --force" in exists.err
    assert (tmp_path / "pred.csv").read_text() == "old"


def test_refit_refuses_to_overwrite_and_needs_the_card(holdout_spec, tmp_path, run_cli):
    model = tmp_path / "m.joblib"
    assert run_cli("refit", holdout_spec, "--out", model).code == 0
    again = run_cli("refit", holdout_spec, "--out", model)
    assert again.code == 2 and "already exists; pass --force" in again.err
    assert run_cli("refit", holdout_spec, "--out", model, "--force").code == 0
    card_path_for(model).unlink()
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "x.csv", index=False)
    no_card = run_cli("predict", model, tmp_path / "x.csv")
    assert no_card.code == 2 and "model card" in no_card.err and "not found" in no_card.err


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
    url = _url(holdout_spec.parent)
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
    optuna.create_study(study_name="raw", storage=_url(tmp_path))
    result = run_cli("refit", f"raw@{tmp_path / 'tuner.db'}", "--out", tmp_path / "m.joblib")
    assert result.code == 2
    assert "no stored tuner spec" in result.err


def test_stored_spec_prefers_the_given_spec_file(holdout_spec, tmp_path):
    attrs = optuna.load_study(study_name="tiny", storage=_url(holdout_spec.parent)).user_attrs
    assert stored_spec(attrs, name="tiny").spec_path == holdout_spec.resolve()
    other = tmp_path / "sub" / "copy.yaml"
    assert stored_spec(attrs, name="tiny", spec_file=other).base_dir == other.parent.resolve()


@pytest.mark.parametrize("scheme", ["timeseries", "group"])
def test_holdout_keeps_the_future_or_whole_groups_out(scheme):
    from tuner.cv import make_plan
    from tuner.data import Dataset
    from tuner.spec import CVSpec

    rows = 40
    data = Dataset(
        X=pd.DataFrame({"a": np.arange(rows, dtype=float)}),
        y=np.arange(rows, dtype=float),
        task="regression",
        groups=np.repeat(np.arange(8), 5) if scheme == "group" else None,
    )
    _, tuning, test = make_plan(CVSpec(scheme=scheme, folds=3, holdout_test=0.25), data, seed=1, label="s")
    assert test is not None and len(tuning.y) + len(test.y) == rows
    if scheme == "timeseries":
        assert list(test.X["a"]) == list(range(30, 40))  # the last quarter: the future
    else:
        assert not set(tuning.groups) & set(test.groups)  # no group on both sides
        assert len(test.groups) % 5 == 0
