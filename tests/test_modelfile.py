"""Model files (``tuner/modelfile.py``): ``tuner predict`` reproduces the refit model's predictions and refuses
a tampered model, a missing card, and input with missing or retyped columns."""

from __future__ import annotations

import hashlib
import json

import joblib
import numpy as np
import optuna
import pandas as pd
import pytest
from support import sqlite_url

from tuner.modelfile import card_path_for
from tuner.setup import build as build_context
from tuner.spec import load_spec


def test_refit_predict_round_trip(holdout_spec, tmp_path, run_cli):
    model = tmp_path / "model.joblib"
    result = run_cli("refit", holdout_spec, "--out", model)
    assert result.code == 0, result.err
    assert "held-out test roc_auc" in result.out
    card = json.loads(card_path_for(model).read_text())
    study = optuna.load_study(study_name="tiny", storage=sqlite_url(holdout_spec.parent))
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
