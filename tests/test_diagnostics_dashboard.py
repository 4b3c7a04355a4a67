"""Diagnostics in optuna-dashboard (``tuner/diagnostics/_dashboard.py``): objective names, a markdown note
per trial (in the same transaction as its diagnostics) and study-level figures, through the dashboard's API."""

from __future__ import annotations

import optuna
import optuna_dashboard
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
from support import sqlite_url

from tuner import run_study
from tuner._optuna import trial_id
from tuner.cv import FoldLog, FoldScores
from tuner.diagnostics import figures, note, publish, record
from tuner.store import open_storage, schema

SPEC = {
    "name": "dash",
    "data": {"source": "sklearn:iris"},
    "model": "logistic",
    "metric": "accuracy",
    "cv": {"scheme": "stratified", "folds": 3},
    "budget": {"n_trials": 2},
    "seed": 5,
}


def test_the_note_rounds_to_four_significant_digits_and_shows_flags_folds_and_groups():
    attrs = {
        schema.FLAGS: ["overfit"],
        schema.GAP: 0.0012499999999999734,
        schema.TRAIN_MEAN: 0.99875,
        schema.TRAIN_STD: 0.000123456,
        schema.TRAIN_SCORES: [0.9975, 1.0],
        schema.VAL_MEAN: 0.9975000000000001,
        schema.VAL_STD: 0.0025,
        schema.VAL_SCORES: [0.995, 1.0],
        schema.GROUP_SCORES: {"a": 0.912345678, "b": None},
        schema.WORST_GROUP_NAME: "a",
        schema.WORST_GROUP_SCORE: 0.912345678,
        schema.GROUP_GAP: 0.087654321,
    }
    text = note(attrs, number=7, metric="accuracy")
    assert text.startswith("### Trial 7: accuracy")
    assert "**Flags:** overfit · **gap** (train − validation) 0.00125" in text
    assert "| train | 0.9988 | 0.0001235 | 0.9975, 1 |" in text
    assert "| validation | 0.9975 | 0.0025 | 0.995, 1 |" in text
    assert "| a | 0.9123 |" in text and "| b | - |" in text
    assert "largest gap between groups 0.08765" in text
    assert "0.00124999" not in text and "0.91234" not in text


def _write_transactions(engine: sqlalchemy.engine.Engine) -> list[int]:
    """Counts, per committed transaction that wrote anything, the rows it inserted or updated."""
    written: list[int] = []
    pending = [0]

    @sqlalchemy.event.listens_for(engine, "after_cursor_execute")
    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            pending[0] += 1

    @sqlalchemy.event.listens_for(engine, "commit")
    def commit(conn):
        if pending[0]:
            written.append(pending[0])
        pending[0] = 0

    return written


def test_record_writes_diagnostics_and_note_in_one_sqlite_transaction(tmp_path):
    storage = open_storage(sqlite_url(tmp_path))
    study = optuna.create_study(storage=storage, study_name="one")
    trial = study.ask()
    log = FoldLog([FoldScores(val=0.8, train=0.9, fit_seconds=0.1), FoldScores(val=0.7, train=0.95, fit_seconds=0.1)])
    writes = _write_transactions(storage.engine)
    stored = record(trial, log, baseline=0.5, metric="accuracy")
    assert len(writes) == 1, writes  # one storage write: the attributes and the note together
    assert optuna_dashboard.get_note(trial) == note(stored, number=trial.number, metric="accuracy")


@pytest.mark.parametrize(("objective", "names"), [("metric", ["accuracy"]), (["metric", "gap"], ["accuracy", "gap"])])
def test_every_study_names_its_objectives_for_the_dashboard(objective, names):
    result = run_study({**SPEC, "objective": objective, "budget": {"n_trials": 1}, "storage": "memory://"})
    assert result.study.metric_names == names


@pytest.mark.slow
def test_a_run_notes_every_trial_and_saves_the_gap_figure_on_sqlite(tmp_path):
    run_study({**SPEC, "storage": str(tmp_path / "tuner.db")})
    storage = open_storage(sqlite_url(tmp_path))
    study = optuna.load_study(study_name="dash", storage=storage)
    assert study.metric_names == ["accuracy"]
    for frozen in study.trials:
        body = optuna_dashboard.get_note(optuna.Trial(study, trial_id(frozen)))
        assert body == note(frozen.user_attrs, number=frozen.number, metric="accuracy")
        assert f"**gap** (train − validation) {frozen.user_attrs['gap']:.4g}" in body
    saved = storage.get_study_system_attrs(storage.get_study_id_from_name("dash"))
    assert any(key.startswith("dashboard:plot_data:tuner-gap-vs-validation:") for key in saved)


def _hand_made_study() -> optuna.Study:
    """Trials as a network study stores them: diagnostics, groups and per-epoch losses of each fold."""
    study = optuna.create_study(directions=["maximize"])
    study.set_user_attr(schema.METRIC, "accuracy")
    study.set_user_attr(
        schema.LEARNING_CURVE,
        {
            "trial": 1,
            "train_sizes": [10, 20, 40],
            "train_scores": [1.0, 0.98, 0.97],
            "val_scores": [[0.6, 0.7], [0.8, 0.8], [0.9, 0.86]],
        },
    )
    for number, (value, gap, flags) in enumerate([(0.8, 0.15, ["overfit"]), (0.9, 0.02, []), (0.6, 0.0, ["underfit"])]):
        attrs = {
            schema.VAL_MEAN: value,
            schema.GAP: gap,
            schema.FLAGS: flags,
            schema.GROUP_SCORES: {"a": value + 0.05, "b": value - 0.05},
        }
        if number == 1:
            attrs[schema.EPOCH_CURVES] = [
                {"train_loss": [0.9, 0.5, 0.3], "val_loss": [0.95, 0.6, 0.55]},
                {"train_loss": [0.8, 0.4, 0.2], "val_loss": [0.9, 0.5, 0.52]},
            ]
        study.add_trial(
            create_trial(
                value=value,
                params={"alpha": 0.1 * (number + 1)},
                distributions={"alpha": FloatDistribution(0.01, 1.0)},
                user_attrs=attrs,
            )
        )
    return study


def test_figures_show_gaps_by_flag_groups_of_the_best_trials_the_learning_curve_and_epoch_losses():
    study = _hand_made_study()
    drawn = figures(study)
    assert list(drawn) == list(schema.DASHBOARD_FIGURES)
    gap = {trace.name: (list(trace.x), list(trace.y)) for trace in drawn["tuner-gap-vs-validation"].data}
    assert gap == {"overfit": ([0.8], [0.15]), "underfit": ([0.6], [0.0]), "none": ([0.9], [0.02])}
    assert "validation accuracy (higher is better)" in drawn["tuner-gap-vs-validation"].layout.xaxis.title.text
    groups = drawn["tuner-group-scores"].data
    assert [t.name for t in groups] == ["trial 1", "trial 0", "trial 2"]  # best first
    assert list(groups[0].y) == pytest.approx([0.95, 0.85])
    curve = drawn["tuner-learning-curve"].data[1]
    assert list(curve.y) == pytest.approx([0.65, 0.8, 0.88])
    epochs = drawn["tuner-epoch-curves"]
    assert "trial #1" in epochs.layout.title.text
    assert [t.name for t in epochs.data][:2] == ["fold 1 train loss", "fold 1 val loss"]
    assert list(epochs.data[3].y) == [0.9, 0.5, 0.52]
    assert publish(study) == list(schema.DASHBOARD_FIGURES)


def test_no_diagnostics_no_figures():
    study = optuna.create_study()
    study.add_trial(create_trial(value=1.0, params={}, distributions={}))
    assert figures(study) == {}
