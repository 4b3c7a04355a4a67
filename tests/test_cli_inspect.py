"""``tuner list``, ``show``, ``best`` and ``export`` (``tuner/cli/inspect.py``), checked against the storage:
best trials on top, strict JSON with NaN as null, every trial in CSV, clear errors for missing studies or
storages."""

from __future__ import annotations

import csv
import io
import json
import math
import sys

import optuna
import pytest
from optuna.trial import TrialState
from support import sqlite_url, write_spec_file

import tuner

# Trial 1 returns NaN, trial 2 raises: the export must carry FAIL trials and non-finite attrs.
WITH_FAILURES = """\
def objective(trial, ctx):
    c = trial.suggest_float("C", 0.1, 10.0, log=True)
    trial.set_user_attr("ratio", float("nan") if trial.number % 2 else 0.5)
    trial.set_user_attr("curve", [1.0, float("inf")])
    if trial.number == 1:
        return float("nan")
    if trial.number == 2:
        raise RuntimeError("boom in trial 2")
    return 1.0 / (1.0 + c)
"""


def _reject_constant(name: str) -> None:
    raise ValueError(f"bare {name} in JSON output")


def strict_json(text: str):
    return json.loads(text, parse_constant=_reject_constant)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Two finished studies in one storage: a CV study and one with NaN/failed trials."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "cli_failing_objective.py").write_text(WITH_FAILURES)
    cv_spec = write_spec_file(folder, {"name": "cli-cv"}, "cli-cv.yaml")
    nan_spec = write_spec_file(
        folder, {"name": "cli-nan", "objective": "cli_failing_objective:objective"}, "cli-nan.yaml"
    )
    tuner.run_study(cv_spec)
    tuner.run_study(nan_spec)
    yield {"folder": folder, "cv": cv_spec, "nan": nan_spec, "storage": sqlite_url(folder)}
    sys.modules.pop("cli_failing_objective", None)


def _load(studies, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=studies["storage"])


def test_list_shows_every_study_in_the_storage(studies, run_cli):
    result = run_cli("list", "--storage", studies["folder"])
    assert result.code == 0, result.err
    assert "cli-cv" in result.out and "cli-nan" in result.out
    assert "logistic" in result.out and "roc_auc" in result.out
    by_spec = run_cli("list", "--storage", studies["cv"])
    assert by_spec.out == result.out, "a spec file names the same storage as its folder"


def test_show_has_the_best_trial_on_top(studies, run_cli):
    trials = _load(studies, "cli-cv").get_trials()
    best = _load(studies, "cli-cv").best_trial
    result = run_cli("show", studies["cv"])
    assert result.code == 0, result.err
    assert "model logistic, metric roc_auc; 4 complete" in result.out
    rows = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in result.out.splitlines()
        if line.startswith("│")
    ]
    rows = [row for row in rows if row[0]]  # narrow terminals wrap cells onto continuation lines
    assert [row[0] for row in rows] == [str(t.number) for t in sorted(trials, key=lambda t: -t.value)]
    assert rows[0][:2] == [str(best.number), f"{best.value:.5g}"]


def test_show_unknown_study_lists_what_exists(studies, run_cli):
    result = run_cli("show", "cli-cvv", "--storage", studies["folder"])
    assert result.code == 2
    assert result.err.startswith("Error: no study named 'cli-cvv'")
    assert "Did you mean 'cli-cv'" in result.err and "cli-nan" in result.err


@pytest.mark.parametrize("name", ["cli-cv", "cli-nan"])
def test_best_json_matches_optunas_best_trial(studies, run_cli, name):
    result = run_cli("best", studies["folder"] / f"{name}.yaml", "--json")
    assert result.code == 0, result.err
    record = strict_json(result.out)["best_trial"]
    best = _load(studies, name).best_trial
    assert record["number"] == best.number
    assert record["value"] == best.value
    assert record["params"] == best.params
    assert record["state"] == "COMPLETE"


def test_best_text_names_the_trial_and_its_params(studies, run_cli):
    best = _load(studies, "cli-cv").best_trial
    result = run_cli("best", "cli-cv", "--storage", studies["folder"])
    assert result.code == 0, result.err
    assert f"Best trial #{best.number} of cli-cv: roc_auc = {best.value:.5g}" in result.out
    for key in best.params:
        assert f"  {key} = " in result.out


def test_export_json_has_every_trial_and_no_bare_nan(studies, run_cli):
    result = run_cli("export", studies["nan"], "--format", "json")
    assert result.code == 0, result.err
    payload = strict_json(result.out)
    trials = _load(studies, "cli-nan").get_trials()
    assert [t["number"] for t in payload["trials"]] == [t.number for t in trials] == [0, 1, 2, 3]
    states = {t["number"]: t["state"] for t in payload["trials"]}
    assert states == {0: "COMPLETE", 1: "FAIL", 2: "FAIL", 3: "COMPLETE"}
    nan_trial = payload["trials"][1]
    assert nan_trial["value"] is None
    assert nan_trial["user_attrs"]["ratio"] is None
    assert nan_trial["user_attrs"]["curve"] == [1.0, None]
    assert "not a finite number" in nan_trial["user_attrs"]["error"]
    assert "boom in trial 2" in payload["trials"][2]["user_attrs"]["error"]
    for record, trial in zip(payload["trials"], trials, strict=True):
        assert record["params"] == trial.params
        if trial.state == TrialState.COMPLETE:
            assert record["value"] == trial.value
            assert record["datetime_complete"] == trial.datetime_complete.isoformat()


def test_export_csv_has_every_trial(studies, run_cli, tmp_path):
    out = tmp_path / "trials.csv"
    result = run_cli("export", studies["nan"], "--format", "csv", "--out", out)
    assert result.code == 0, result.err
    assert result.out == ""
    assert f"Wrote {out}" in result.err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    trials = _load(studies, "cli-nan").get_trials()
    assert [int(r["number"]) for r in rows] == [t.number for t in trials]
    assert [r["state"] for r in rows] == [t.state.name for t in trials]
    assert rows[1]["value"] == "" and rows[1]["user_attrs_ratio"] == ""
    assert float(rows[0]["value"]) == trials[0].value
    assert float(rows[0]["params_C"]) == trials[0].params["C"]
    assert json.loads(rows[0]["user_attrs_curve"]) == [1.0, None]
    for row in rows:
        assert "nan" not in {row["value"].lower(), row["user_attrs_ratio"].lower()}


def test_export_of_the_cv_study_to_stdout_matches_the_storage(studies, run_cli):
    payload = strict_json(run_cli("export", studies["cv"], "--format", "json").out)
    trials = _load(studies, "cli-cv").get_trials()
    assert len(payload["trials"]) == len(trials) == 4
    assert payload["user_attrs"]["tuner:model"] == "logistic"
    for record, trial in zip(payload["trials"], trials, strict=True):
        assert record["user_attrs"]["val_scores"] == trial.user_attrs["val_scores"]
        assert math.isclose(record["value"], trial.value)


def test_reading_a_missing_storage_is_an_error_and_creates_no_file(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNER_STORAGE", raising=False)
    for args in (("show", "nosuch"), ("list",), ("best", "nosuch")):
        result = run_cli(*args)
        assert result.code == 2, args
        assert "no study storage at" in result.err and "does not exist" in result.err
    assert not (tmp_path / "tuner.db").exists()


def test_run_then_best_json_reports_the_stored_best(write_spec, run_cli):
    spec = write_spec()
    first = run_cli("run", spec, "-q")
    assert first.code == 0, first.err
    best = run_cli("best", spec, "--json")
    assert best.code == 0, best.err
    record = json.loads(best.out)["best_trial"]
    values = [json.loads(run_cli("export", spec, "--format", "json").out)["trials"][i]["value"] for i in range(4)]
    assert record["value"] == max(values)


@pytest.mark.parametrize("command", ["show", "best", "export"])
def test_every_study_argument_takes_name_at_storage(studies, run_cli, command):
    by_name = run_cli(command, "cli-cv", "--storage", studies["folder"])
    by_ref = run_cli(command, f"cli-cv@{studies['folder']}")
    assert by_ref.code == 0, by_ref.err
    assert by_ref.out == by_name.out
