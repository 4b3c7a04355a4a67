"""Model files (``tuner/modelfile.py``, ``tuner/modelkey.py``): ``tuner predict`` reproduces the refit model's
predictions and refuses a tampered model, a card not signed with this machine's key, a wrong pinned hash, a
missing card, and input with missing or retyped columns."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import joblib
import numpy as np
import optuna
import pandas as pd
import pytest
from support import sqlite_url

from tuner.errors import ModelFileError
from tuner.modelfile import card_path_for, load_model
from tuner.modelkey import ModelKey, sign
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


class _Payload:
    """What an attacker puts in a model file: unpickling it runs code (here, writes a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('payload ran')",)


def _refit_with_input(holdout_spec: Path, folder: Path, run_cli) -> tuple[Path, Path]:
    """A model refit into ``folder`` and a CSV of rows it can predict."""
    model = folder / "m.joblib"
    result = run_cli("refit", holdout_spec, "--out", model)
    assert result.code == 0, result.err
    columns = json.loads(card_path_for(model).read_text())["data"]["columns"]
    pd.DataFrame(np.ones((3, len(columns))), columns=columns).to_csv(folder / "x.csv", index=False)
    return model, folder / "x.csv"


def _plant_payload(model: Path, marker: Path) -> None:
    """The attack of issue 16: a malicious pickle in place of the model, the card's hash rewritten to match."""
    joblib.dump(_Payload(marker), model)
    card_path = card_path_for(model)
    card = json.loads(card_path.read_text())
    card["model_sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    card_path.write_text(json.dumps(card, indent=2))


def test_a_malicious_pickle_with_a_rewritten_card_hash_is_refused_before_unpickling(holdout_spec, tmp_path, run_cli):
    model, rows = _refit_with_input(holdout_spec, tmp_path, run_cli)
    marker = tmp_path / "pwned"
    _plant_payload(model, marker)

    result = run_cli("predict", model, rows)
    assert result.code == 2 and not marker.exists()
    assert "its card's signature does not verify with this machine's model key" in result.err
    assert "someone who can write the model's folder but cannot read your key" in result.err
    assert "--sha256 <hex>" in result.err and "Traceback" not in result.err
    with pytest.raises(ModelFileError, match="signature does not verify"):
        load_model(model)
    assert not marker.exists()

    # Re-signed with a key the attacker made up, or with the signature dropped: refused all the same.
    card = json.loads(card_path_for(model).read_text())
    card["signature"] = sign(ModelKey(b"x" * 64, "attacker"), card)
    card_path_for(model).write_text(json.dumps(card))
    resigned = run_cli("predict", model, rows)
    assert resigned.code == 2 and "The card names key" in resigned.err
    del card["signature"]
    card_path_for(model).write_text(json.dumps(card))
    unsigned = run_cli("predict", model, rows)
    assert unsigned.code == 2 and "its card has no signature" in unsigned.err
    assert not marker.exists()

    joblib.load(model)  # the payload is real: loading the file unchecked runs it
    assert marker.read_text() == "payload ran"


def test_a_card_edited_after_refit_is_refused(holdout_spec, tmp_path, run_cli):
    model, rows = _refit_with_input(holdout_spec, tmp_path, run_cli)
    card = json.loads(card_path_for(model).read_text())
    card["data"]["classes"] = list(reversed(card["data"]["classes"]))  # every prediction would be flipped
    card_path_for(model).write_text(json.dumps(card))
    result = run_cli("predict", model, rows)
    assert result.code == 2 and "changed after `tuner refit` signed it" in result.err


def test_refit_creates_a_private_key_file_once_and_predict_uses_it(tmp_path, holdout_spec, run_cli, monkeypatch):
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    model, rows = _refit_with_input(holdout_spec, tmp_path, run_cli)
    key = config / "tuner" / "model.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    secret = key.read_text()
    assert len(secret.strip()) == 64
    card = json.loads(card_path_for(model).read_text())
    assert card["signature"]["algorithm"] == "hmac-sha256"
    assert secret.strip() not in card_path_for(model).read_text()

    predicted = run_cli("predict", model, rows)
    assert predicted.code == 0, predicted.err
    assert load_model(model).estimator.predict is not None
    assert run_cli("refit", holdout_spec, "--out", tmp_path / "second.joblib").code == 0
    assert key.read_text() == secret  # one key per machine, kept across refits

    key.chmod(0o644)
    shared = run_cli("predict", model, rows)
    assert shared.code == 2 and "can be read or changed by other users (mode 0644)" in shared.err
    assert f"chmod 600 {key}" in shared.err


def test_the_key_can_come_from_the_environment(holdout_spec, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TUNER_MODEL_KEY", "k" * 40)
    model, rows = _refit_with_input(holdout_spec, tmp_path, run_cli)
    assert run_cli("predict", model, rows).code == 0
    monkeypatch.setenv("TUNER_MODEL_KEY", "another key of more than thirty-two characters")
    other = run_cli("predict", model, rows)
    assert other.code == 2 and "but the key in $TUNER_MODEL_KEY is" in other.err
    monkeypatch.setenv("TUNER_MODEL_KEY", "short")
    weak = run_cli("predict", model, rows)
    assert weak.code == 2 and "needs at least 32" in weak.err


def test_a_model_from_elsewhere_loads_with_its_pinned_sha256_only(holdout_spec, tmp_path, run_cli, monkeypatch):
    model, rows = _refit_with_input(holdout_spec, tmp_path, run_cli)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "another-machine"))  # no key here

    no_key = run_cli("predict", model, rows)
    assert no_key.code == 2 and "this machine has no model key" in no_key.err
    pinned = run_cli("predict", model, rows, "--sha256", digest.upper())
    assert pinned.code == 0, pinned.err
    assert len(load_model(model, sha256=digest).predict(pd.read_csv(rows))) == 3

    wrong = run_cli("predict", model, rows, "--sha256", "0" * 64)
    assert wrong.code == 2 and "not the 0000000000000000… given with --sha256" in wrong.err
    malformed = run_cli("predict", model, rows, "--sha256", "abc")
    assert malformed.code == 2 and "is not a SHA-256: it needs 64 hexadecimal characters" in malformed.err

    marker = tmp_path / "pwned"
    _plant_payload(model, marker)  # the pinned hash is the original file's: the swapped one is refused
    swapped = run_cli("predict", model, rows, "--sha256", digest)
    assert swapped.code == 2 and "It is not the file you were sent" in swapped.err
    assert not marker.exists()


def test_an_unsigned_card_from_before_signing_needs_a_pinned_hash(holdout_spec, tmp_path, run_cli):
    model, rows = _refit_with_input(holdout_spec, tmp_path, run_cli)
    card = json.loads(card_path_for(model).read_text())
    del card["signature"]
    card_path_for(model).write_text(json.dumps(card))
    refused = run_cli("predict", model, rows)
    assert refused.code == 2 and "its card has no signature" in refused.err
    assert run_cli("predict", model, rows, "--sha256", card["model_sha256"]).code == 0


def test_a_pinned_file_that_is_not_an_estimator_is_refused(holdout_spec, tmp_path, run_cli):
    model, rows = _refit_with_input(holdout_spec, tmp_path, run_cli)
    joblib.dump({"weights": [1, 2, 3]}, model)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    card = json.loads(card_path_for(model).read_text())
    card_path_for(model).write_text(json.dumps({**card, "model_sha256": digest}))
    result = run_cli("predict", model, rows, "--sha256", digest)
    assert result.code == 2 and "holds a builtins.dict, not a scikit-learn estimator with predict()" in result.err
