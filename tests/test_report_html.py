"""``tuner report`` (``tuner/report/_html.py``): the HTML page, its charts, the diagnostics charts and PNG errors."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from datetime import datetime, timedelta

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState
from support import sqlite_url

from tuner import run_study
from tuner.errors import ReportError
from tuner.report import build_plots, render_html, write_pngs
from tuner.store import StudySnapshot


@pytest.fixture(scope="module")
def pruned_study(tmp_path_factory):
    """A small study with a pruner (so per-fold values are reported), shared by the tests."""
    spec = tmp_path_factory.mktemp("report") / "study.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "data": {"source": "sklearn:breast_cancer"},
                "model": "logistic",
                "metric": "roc_auc",
                "cv": {"scheme": "stratified", "folds": 3},
                "pruner": "median",
                "budget": {"n_trials": 5},
                "seed": 7,
            }
        )
    )
    run_study(spec)
    return spec


def test_report_is_self_contained_with_the_optuna_charts(pruned_study, tmp_path, run_cli):
    out = tmp_path / "report.html"
    result = run_cli("report", pruned_study, "--out", out)
    assert result.code == 0, result.err
    page = out.read_text()
    for key in ("history", "importances", "parallel", "slices", "intermediate"):
        assert f'id="plot-{key}"' in page, key
    # plotly.js is inlined exactly once and nothing is fetched from a CDN.
    assert page.count("plotly.js v") >= 1
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert len(page) > 1_000_000
    # Diagnostics charts appear exactly when the trials carry the data; otherwise the page says why.
    study = optuna.load_study(study_name="tiny", storage=sqlite_url(pruned_study.parent))
    if any("train_scores" in t.user_attrs for t in study.trials):
        assert 'id="plot-train_vs_validation"' in page and 'id="plot-gap"' in page
    else:
        assert "no trial recorded train scores" in page
    assert "no trial recorded per-group scores" in page  # breast_cancer has no groups
    assert "not shown: Per-group scores of the best trial" in result.err


def test_report_refuses_to_overwrite_without_force(pruned_study, tmp_path, run_cli):
    out = tmp_path / "r.html"
    out.write_text("keep me")
    refused = run_cli("report", pruned_study, "--out", out)
    assert refused.code == 2
    assert "already exists; pass --force" in refused.err
    assert out.read_text() == "keep me"
    assert run_cli("report", pruned_study, "--out", out, "--force").code == 0
    assert "plot-history" in out.read_text()


def test_report_default_name_and_empty_study(write_spec, tmp_path, run_cli, monkeypatch):
    import optuna

    monkeypatch.chdir(tmp_path)
    optuna.create_study(study_name="empty", storage=sqlite_url(tmp_path))
    result = run_cli("report", "empty")
    assert result.code == 0, result.err
    page = (tmp_path / "empty-report.html").read_text()
    assert "no complete trial yet" in page
    assert "plot-" not in page


def _trial(number: int, value: float, *, max_depth: int | None = None, **attrs: object) -> FrozenTrial:
    start = datetime(2025, 1, 1) + timedelta(seconds=10 * number)
    return FrozenTrial(
        number=number,
        state=TrialState.COMPLETE,
        value=value,
        datetime_start=start,
        datetime_complete=start + timedelta(seconds=3),
        params={"C": 0.5 + number} if max_depth is None else {"max_depth": max_depth},
        distributions={"C": FloatDistribution(1e-3, 10.0, log=True)}
        if max_depth is None
        else {"max_depth": IntDistribution(2, 32, log=True)},
        user_attrs=dict(attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


def _diagnosed_snapshot() -> StudySnapshot:
    trials = (
        _trial(0, 0.70, train_scores=[1.0, 0.98], val_scores=[0.72, 0.68], group_scores={"a": 0.8, "b": 0.6}),
        _trial(1, 0.85, train_scores=[0.90, 0.88], val_scores=[0.86, 0.84], group_scores={"a": [0.9, 0.8], "b": 0.7}),
        _trial(2, 0.80, train_scores=[0.95, 0.93], val_scores=[0.81, 0.79], val_mean=0.80, worst_group_score=0.65),
    )
    curve = {
        "train_sizes": [50, 100, 200],
        "train_scores": [[1.0, 0.9], 0.95, 0.9],
        "val_scores": [0.6, 0.7, 0.8],
        "verdict": "More data is likely to help.",
    }
    return StudySnapshot(
        name="diag",
        storage="mem",
        directions=("maximize",),
        user_attrs={"tuner:metric": "accuracy", "tuner:learning_curve": curve},
        trials=trials,
        best_number=1,
    )


def test_diagnostics_charts_show_the_stored_values():
    content = build_plots(_diagnosed_snapshot())
    plots = {p.key: p.figure for p in content.plots}
    assert {"train_vs_validation", "gap", "groups", "worst_group", "learning_curve"} <= plots.keys()
    gaps = list(plots["gap"].data[0].y)
    assert gaps == pytest.approx([0.99 - 0.70, 0.89 - 0.85, 0.94 - 0.80])
    groups = plots["groups"].data[0]
    assert list(groups.x) == ["a", "b"] and list(groups.y) == pytest.approx([0.85, 0.7])  # best trial #1
    worst = plots["worst_group"].data[0]
    assert list(worst.y) == [0.65] and list(worst.x) == [0.80]
    assert next(p.note for p in content.plots if p.key == "learning_curve") == "More data is likely to help."
    train_curve, val_curve = plots["learning_curve"].data
    assert list(train_curve.y) == pytest.approx([0.95, 0.95, 0.9]) and list(val_curve.x) == [50, 100, 200]
    # One parameter varied, but fewer than two points per value: Optuna plots still render.
    assert "history" in plots


def test_multi_objective_history_is_the_pareto_front():
    trials = tuple(
        FrozenTrial(
            number=i,
            state=TrialState.COMPLETE,
            value=None,
            values=list(values),
            datetime_start=datetime(2025, 1, 1),
            datetime_complete=datetime(2025, 1, 1, 0, 0, 1),
            params={"C": 1.0 + i},
            distributions={"C": FloatDistribution(1e-3, 10.0)},
            user_attrs={},
            system_attrs={},
            intermediate_values={},
            trial_id=i,
        )
        for i, values in enumerate([(0.7, 0.3), (0.8, 0.2), (0.9, 0.4)])
    )
    snap = StudySnapshot(
        name="mo",
        storage="mem",
        directions=("maximize", "minimize"),
        user_attrs={},
        trials=trials,
        pareto_numbers=(1, 2),
    )
    content = build_plots(snap)
    history = next(p for p in content.plots if p.key == "history").figure
    dominated, front = history.data[0], history.data[-1]
    assert list(zip(dominated.x, dominated.y, strict=True)) == [(0.7, 0.3)]
    assert sorted(zip(front.x, front.y, strict=True)) == [(0.8, 0.2), (0.9, 0.4)]


def test_png_export_without_kaleido_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # makes `import kaleido` raise ImportError
    with pytest.raises(ReportError, match=r"PNG export needs the kaleido package: `pip install 'tuner\[png\]'`"):
        write_pngs([], [tmp_path / "x.png"])


def test_png_export_names_the_browser_when_it_fails(monkeypatch, tmp_path):
    import plotly.io as pio

    def no_browser(*args, **kwargs):
        raise RuntimeError("Could not find a Chrome executable")

    monkeypatch.setattr(pio, "write_images", no_browser)
    with pytest.raises(ReportError, match=r"kaleido needs Chrome or Chromium.*BROWSER_PATH"):
        write_pngs([], [tmp_path / "x.png"])


def test_a_sampled_study_says_so_on_each_chart_of_many_trials_and_in_its_header():
    snap = _diagnosed_snapshot()
    whole = replace(snap.summary(), counts={"complete": 25, "pruned": 5, "fail": 0, "running": 0, "waiting": 0})
    content = build_plots(replace(snap, whole=whole))
    notes = {p.key: p.note for p in content.plots}
    assert notes["history"].startswith("Sampled: 3 of 30 trials plotted")
    assert not notes["groups"].startswith("Sampled") and notes["learning_curve"] == "More data is likely to help."
    page = render_html(replace(snap, whole=whole), content)
    assert "3 of 30 trials, sampled" in page and "25 complete, 5 pruned" in page


def test_the_report_of_a_stored_study_plots_at_most_max_trials(pruned_study, tmp_path, run_cli):
    out = tmp_path / "sampled.html"
    result = run_cli("report", pruned_study, "--out", out, "--max-trials", "3")
    assert result.code == 0, result.err
    assert "Sampled: 3 of 5 trials plotted" in out.read_text()


def _snapshot(trials, directions=("maximize",), **attrs) -> StudySnapshot:
    return StudySnapshot(
        name="s",
        storage="mem",
        directions=directions,
        user_attrs={"tuner:metric": "accuracy", **attrs},
        trials=tuple(trials),
        best_number=None if len(directions) > 1 else max(trials, key=lambda t: t.value).number,
        pareto_numbers=tuple(t.number for t in trials) if len(directions) > 1 else (),
    )


def _plots(snap: StudySnapshot) -> dict:
    return {p.key: p.figure for p in build_plots(snap).plots}


def test_worst_group_chart_plots_the_overall_score_against_the_worst_group_when_that_is_the_objective():
    # With `objective: worst_group` the objective value is the worst group's score itself.
    trials = [
        _trial(n, worst, val_mean=overall, worst_group_score=worst)
        for n, (worst, overall) in enumerate([(0.6, 0.9), (0.7, 0.8)])
    ]
    figure = _plots(_snapshot(trials, **{"tuner:objectives": ["worst_group"]}))["worst_group"]
    assert list(figure.data[0].x) == [0.9, 0.8] and list(figure.data[0].y) == [0.6, 0.7]
    assert figure.layout.xaxis.title.text == "overall validation accuracy (higher is better)"
    assert figure.layout.yaxis.title.text == "worst group's validation accuracy (higher is better)"


def _two_objective_trials():
    """Objective 0 (maximised) is high only where x is high, and its low end is set by y; objective 1
    (minimised) is low only where y is low. Importances for the wrong direction of objective 0 rank y first."""
    trials = []
    for i in range(100):
        x, y = (i % 10) / 9, (i // 10) / 9
        start = datetime(2025, 1, 1) + timedelta(seconds=i)
        trials.append(
            FrozenTrial(
                number=i,
                state=TrialState.COMPLETE,
                value=None,
                values=[(1.0 if x > 0.85 else 0.0) + 0.01 * y, (0.0 if y < 0.15 else 1.0) + 0.01 * x],
                datetime_start=start,
                datetime_complete=start + timedelta(seconds=1),
                params={"x": x, "y": y},
                distributions={"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)},
                user_attrs={},
                system_attrs={},
                intermediate_values={},
                trial_id=i,
            )
        )
    return trials


def test_axis_labels_say_what_is_optimised_and_which_way():
    single = _plots(_snapshot([_trial(0, 0.7), _trial(1, 0.8)]))
    assert single["history"].layout.yaxis.title.text == "accuracy (maximize)"
    multi = _plots(
        _snapshot(_two_objective_trials(), ("maximize", "minimize"), **{"tuner:objectives": ["accuracy", "gap"]})
    )
    front = multi["history"].layout
    assert (front.xaxis.title.text, front.yaxis.title.text) == ("accuracy (maximize)", "gap (minimize)")


def test_multi_objective_importances_are_computed_per_objective_each_with_its_direction():
    snap = _snapshot(_two_objective_trials(), ("maximize", "minimize"), **{"tuner:objectives": ["accuracy", "gap"]})
    bars = {trace.name: dict(zip(trace.y, trace.x, strict=True)) for trace in _plots(snap)["importances"].data}
    assert set(bars) == {"accuracy (maximize)", "gap (minimize)"}
    assert bars["accuracy (maximize)"]["x"] > bars["accuracy (maximize)"]["y"]
    assert bars["gap (minimize)"]["y"] > bars["gap (minimize)"]["x"]


def test_small_gaps_stay_visible_next_to_large_ones():
    trials = [
        _trial(0, 0.9, train_scores=[0.901], val_scores=[0.9]),
        _trial(1, 0.6, train_scores=[0.9], val_scores=[0.6], flags=["overfit"]),
    ]
    plots = _plots(_snapshot(trials))
    for key in ("gap", "train_vs_validation"):
        for trace in plots[key].data:
            if trace.mode == "markers":  # each trial a marker with an outline, never a white one on a colour scale
                assert trace.type == "scatter" and trace.marker.colorscale is None
                assert trace.marker.color not in ("white", "#ffffff") and trace.marker.line.width >= 1
    gaps = {t.name: list(t.y) for t in plots["gap"].data if t.mode == "markers"}
    assert gaps == {"no flag": [pytest.approx(0.001)], "overfit": [pytest.approx(0.3)]}


def test_flags_show_per_trial_and_for_the_best_trial():
    trials = [
        _trial(0, 0.9, train_scores=[1.0], val_scores=[0.9], flags=["overfit"]),
        _trial(1, 0.6, train_scores=[0.6], val_scores=[0.6], flags=["underfit"]),
        _trial(2, 0.7, train_scores=[0.7], val_scores=[0.7], flags=[]),
    ]
    snap = _snapshot(trials)
    page = render_html(snap, build_plots(snap))
    assert re.search(r"<h2>Best trial #0</h2><table>.*<td>flags</td><td>\[overfit\]</td>", page)
    assert "<tr><th>overfit</th><td>#0</td></tr><tr><th>underfit</th><td>#1</td></tr>" in page
    names = {t.name for t in _plots(snap)["train_vs_validation"].data}
    assert {"overfit", "underfit", "no flag"} <= names


def test_the_report_opens_with_the_four_training_data_questions_and_their_remedies():
    spec = {"name": "s", "data": {"source": "sklearn:breast_cancer"}, "model": "random_forest"}
    space = {"max_depth": {"type": "int", "low": 2, "high": 32, "log": True}}
    best = _trial(
        0,
        0.9,
        max_depth=12,
        train_mean=1.0,
        val_mean=0.9,
        gap=0.1,
        flags=["overfit"],
        group_scores={"a": 0.95, "b": 0.7},
        group_gap=0.25,
        worst_group_name="b",
        worst_group_score=0.7,
        val_std=0.01,
    )
    snap = StudySnapshot(
        name="s",
        storage="mem",
        directions=("maximize",),
        trials=(best,),
        best_number=0,
        spec=spec,
        user_attrs={"tuner:metric": "accuracy", "tuner:spec": json.dumps(spec), "tuner:space": space},
    )
    page = render_html(snap, build_plots(snap))
    questions = page[page.index('<section id="questions">') :]
    assert page.index('<section id="questions">') < page.index("<table>")  # at the top
    for question in ("Overfitting?", "Underfitting?", "More data?", "Group gap?"):
        assert question in questions
    assert "lower max_depth (tree depth, now 12)" in questions
    assert "max_depth: {type: int, low: 2, high: 12, log: true}" in questions
    assert "objective: worst_group" in questions
    assert "Not measured: `tuner diagnose` draws the learning curve" in questions
