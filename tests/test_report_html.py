"""``tuner report`` (``tuner/report/_html.py``): the HTML page, its charts, the diagnostics charts and PNG errors."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from datetime import datetime, timedelta

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
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


def _trial(number: int, value: float, **attrs: object) -> FrozenTrial:
    start = datetime(2025, 1, 1) + timedelta(seconds=10 * number)
    return FrozenTrial(
        number=number,
        state=TrialState.COMPLETE,
        value=value,
        datetime_start=start,
        datetime_complete=start + timedelta(seconds=3),
        params={"C": 0.5 + number},
        distributions={"C": FloatDistribution(1e-3, 10.0, log=True)},
        user_attrs=dict(attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


def _diagnosed_snapshot() -> StudySnapshot:
    trials = (
        _trial(0, 0.70, train_scores=[1.0, 0.98], val_scores=[0.72, 0.68], group_scores={"a": 0.8, "b": 0.6}),
        _trial(1, 0.85, train_scores=[0.90, 0.88], val_scores=[0.86, 0.84], group_scores={"a": [0.9, 0.8], "b": 0.7}),
        _trial(2, 0.80, train_scores=[0.95, 0.93], val_scores=[0.81, 0.79], worst_group_score=0.65),
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
