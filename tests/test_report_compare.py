"""``tuner compare`` (``tuner/report/_compare.py``): one table over studies from different storages, checked
against Optuna."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from support import sqlite_url

from tuner import run_study
from tuner.report import compare, compare_snapshots, format_comparison
from tuner.store import StudySnapshot

SPEC = {
    "data": {"source": "sklearn:breast_cancer"},
    "model": "logistic",
    "metric": "roc_auc",
    "cv": {"scheme": "stratified", "folds": 3},
    "pruner": "none",
    "seed": 7,
}


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """Three small studies: two in their spec folder's tuner.db, one in a separate .db file."""
    folder = tmp_path_factory.mktemp("compare")
    (folder / "other").mkdir()
    changes = {
        "first": {"budget": {"n_trials": 2}},
        "second": {"seed": 11, "budget": {"n_trials": 3}},
        "third": {"storage": "other/runs.db", "metric": "accuracy", "budget": {"n_trials": 2}},
    }
    for name, change in changes.items():
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**SPEC, "name": name, **change}))
        run_study(path)
    return folder


@pytest.fixture
def three_studies(study_dir):
    return {
        "first": (study_dir / "first.yaml", sqlite_url(study_dir)),
        "second": (study_dir / "second.yaml", sqlite_url(study_dir)),
        "third": (study_dir / "third.yaml", f"sqlite:///{study_dir / 'other' / 'runs.db'}"),
    }


def test_compare_json_matches_optuna_best_values_across_storages(three_studies, study_dir, run_cli):
    refs = [
        str(three_studies["first"][0]),  # a spec file
        f"second@{study_dir}",  # name@folder holding tuner.db
        f"third@{study_dir / 'other' / 'runs.db'}",  # name@.db file
    ]
    result = run_cli("compare", *refs, "--format", "json")
    assert result.code == 0, result.err
    rows = {row["study"]: row for row in json.loads(result.out)["studies"]}
    assert list(rows) == ["first", "second", "third"]
    for name, (_, url) in three_studies.items():
        study = optuna.load_study(study_name=name, storage=url)
        row = rows[name]
        assert row["best_value"] == study.best_value
        assert row["best_trial"] == study.best_trial.number
        assert row["best_params"] == study.best_trial.params
        assert row["best_std"] == study.best_trial.user_attrs["val_std"]
        states = [t.state for t in study.trials]
        assert (row["complete"], row["pruned"], row["failed"]) == (
            states.count(TrialState.COMPLETE),
            states.count(TrialState.PRUNED),
            states.count(TrialState.FAIL),
        )
    assert rows["third"]["metric"] == "accuracy" and rows["first"]["metric"] == "roc_auc"
    assert rows["first"]["model"] == "logistic" and rows["first"]["data"] == "sklearn:breast_cancer"
    assert "other/runs.db" in rows["third"]["storage"]


def test_compare_table_csv_and_markdown_show_each_study(three_studies, study_dir, run_cli):
    refs = [f"first@{study_dir}", f"second@{study_dir}", str(three_studies["third"][0])]
    best = {n: optuna.load_study(study_name=n, storage=u).best_value for n, (_, u) in three_studies.items()}

    table = run_cli("compare", *refs)
    assert table.code == 0, table.err
    for name, value in best.items():
        assert name in table.out
        assert f"{value:.5g}" in table.out

    text = run_cli("compare", *refs, "--format", "csv").out
    records = list(csv.DictReader(io.StringIO(text)))
    assert [r["study"] for r in records] == ["first", "second", "third"]
    assert [float(r["best_value"]) for r in records] == [best["first"], best["second"], best["third"]]
    assert json.loads(records[0]["best_params"]).keys() == {"C", "class_weight"}

    markdown = run_cli("compare", *refs, "--format", "markdown").out.splitlines()
    assert markdown[0].startswith("| study | model | data | metric |")
    assert len(markdown) == 2 + 3
    assert f"{best['second']:.5g}" in markdown[3]


def test_compare_library_accepts_live_studies_and_refs(three_studies):
    _, url = three_studies["second"]
    live = optuna.load_study(study_name="second", storage=url)
    rows = compare([live, str(three_studies["first"][0]), f"third@{three_studies['third'][1]}"])
    assert [r.study for r in rows] == ["second", "first", "third"]
    assert rows[0].best_value == live.best_value
    # A live study shows the storage it reads from (an SQLite file here), not "in-memory".
    assert rows[0].storage == url


def test_compare_unknown_study_is_a_clear_error(study_dir, run_cli):
    result = run_cli("compare", f"frist@{study_dir}")
    assert result.code == 2
    assert "no study named 'frist'" in result.err
    assert "Did you mean 'first'?" in result.err


def _trial(number: int, value: float, start: datetime, seconds: float, **attrs: object) -> FrozenTrial:
    return FrozenTrial(
        number=number,
        state=TrialState.COMPLETE,
        value=value,
        datetime_start=start,
        datetime_complete=start + timedelta(seconds=seconds),
        params={"C": 0.1 * (number + 1)},
        distributions={"C": FloatDistribution(1e-3, 10.0, log=True)},
        user_attrs=dict(attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


def test_gap_worst_group_and_times_come_from_the_best_trial():
    t0 = datetime(2025, 1, 1, 12, 0, 0)
    trials = (
        _trial(0, 0.80, t0, 2.0, val_std=0.01, gap=0.30, worst_group_score=0.5),
        _trial(1, 0.90, t0 + timedelta(seconds=6), 4.0, val_std=0.02, gap=0.05, worst_group_score=0.7),
    )
    snap = StudySnapshot(
        name="s",
        storage="mem",
        directions=("maximize",),
        user_attrs={"tuner:metric": "accuracy"},
        trials=trials,
        best_number=1,
    )
    (row,) = compare_snapshots([snap])
    assert (row.best_value, row.best_std, row.gap, row.worst_group) == (0.90, 0.02, 0.05, 0.7)
    assert row.wall_seconds == pytest.approx(10.0)  # first start to last end
    assert row.seconds_per_trial == pytest.approx(3.0)
    markdown = format_comparison([row], "markdown")
    assert "0.9 ± 0.02 (#1)" in markdown and "| 0.05 | 0.7 | 0:10 |" in markdown


def test_a_multi_objective_study_shows_its_pareto_trials_instead_of_a_best():
    t0 = datetime(2025, 1, 1)
    trials = tuple(_trial(i, 0.0, t0, 1.0) for i in range(3))
    snap = StudySnapshot(
        name="mo",
        storage="mem",
        directions=("maximize", "minimize"),
        user_attrs={},
        trials=trials,
        pareto_numbers=(0, 2),
    )
    (row,) = compare_snapshots([snap])
    assert row.best_value is None and row.pareto_trials == (0, 2)
    assert "| Pareto #0, #2 |" in format_comparison([row], "markdown")
    assert json.loads(next(csv.DictReader(io.StringIO(format_comparison([row], "csv"))))["pareto_trials"]) == [0, 2]
