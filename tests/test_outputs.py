"""Output files (``tuner/outputs.py``): ``tuner export`` formats and safe output paths (no overwrite without
--force, no escaping the folder)."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
import yaml
from support import sqlite_url

from tuner import run_study
from tuner.errors import OutputError
from tuner.outputs import file_in, output_file


@pytest.fixture(scope="module")
def study_spec(tmp_path_factory):
    spec = tmp_path_factory.mktemp("export") / "study.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "data": {"source": "sklearn:breast_cancer"},
                "model": "logistic",
                "cv": {"folds": 3},
                "pruner": "none",
                "budget": {"n_trials": 3},
                "seed": 7,
            }
        )
    )
    run_study(spec)
    return spec


def test_export_parquet_has_one_row_per_trial(study_spec, tmp_path, run_cli):
    out = tmp_path / "trials.parquet"
    result = run_cli("export", study_spec, "--format", "parquet", "--out", out)
    assert result.code == 0, result.err
    frame = pd.read_parquet(out)
    study = optuna.load_study(study_name="tiny", storage=sqlite_url(study_spec.parent))
    assert list(frame["number"]) == [t.number for t in study.trials]
    assert list(frame["value"]) == [t.value for t in study.trials]
    assert [json.loads(v) for v in frame["user_attrs_val_scores"]] == [t.user_attrs["val_scores"] for t in study.trials]
    # class_weight is None or "balanced": stored as text/None, not a type error.
    assert set(frame["params_class_weight"].dropna()) <= {"balanced"}


def test_export_parquet_needs_a_file(study_spec, run_cli):
    result = run_cli("export", study_spec, "--format", "parquet")
    assert result.code == 2 and "give it a path with --out FILE" in result.err


def test_export_into_a_folder_uses_the_study_name_and_keeps_existing_files(study_spec, tmp_path, run_cli):
    folder = tmp_path / "exports"
    folder.mkdir()
    assert run_cli("export", study_spec, "--format", "json", "--out", folder).code == 0
    written = folder / "tiny.json"
    assert json.loads(written.read_text())["study"] == "tiny"
    written.write_text("mine")
    refused = run_cli("export", study_spec, "--format", "json", "--out", folder)
    assert refused.code == 2 and "already exists; pass --force" in refused.err
    assert written.read_text() == "mine"
    assert run_cli("export", study_spec, "--format", "json", "--out", folder, "--force").code == 0
    assert json.loads(written.read_text())["study"] == "tiny"


def test_a_study_name_cannot_lead_out_of_the_folder(tmp_path, run_cli):
    url = sqlite_url(tmp_path)
    optuna.create_study(study_name="../escape", storage=url)
    folder = tmp_path / "exports"
    folder.mkdir()
    result = run_cli("export", "../escape", "--storage", tmp_path / "tuner.db", "--out", folder)
    assert result.code == 2
    assert "would leave that folder" in result.err
    assert not (tmp_path / "escape.csv").exists()


def test_a_symlink_leading_out_of_the_folder_is_refused_even_with_force(study_spec, tmp_path, run_cli):
    folder, outside = tmp_path / "exports", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "victim.csv").write_text("precious")
    (folder / "tiny.csv").symlink_to(outside / "victim.csv")
    result = run_cli("export", study_spec, "--out", folder, "--force")
    assert result.code == 2
    assert "outside" in result.err and "symlink" in result.err
    assert (outside / "victim.csv").read_text() == "precious"


def test_output_rules(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(OutputError, match="already exists"):
        output_file(tmp_path / "a.txt")
    assert output_file(tmp_path / "a.txt", force=True) == tmp_path / "a.txt"
    with pytest.raises(OutputError, match="does not exist"):
        output_file(tmp_path / "missing" / "a.txt")
    with pytest.raises(OutputError, match="would leave that folder"):
        file_in(tmp_path, "/etc/passwd")
    with pytest.raises(OutputError, match="would leave that folder"):
        file_in(tmp_path, "sub/../../x")
    (tmp_path / "link").symlink_to(tmp_path / "a.txt")  # a link that stays inside is fine with --force
    assert file_in(tmp_path, "link", force=True) == tmp_path / "link"
