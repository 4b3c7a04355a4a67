"""The dashboard and the HTML report in a real, headless Chromium (Debian `chromium` + `chromium-driver`).

Skipped when Chromium or its driver is missing, unless TUNER_REQUIRE_BROWSER=1 (set by .ci/run),
where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support import free_port, sqlite_url

from tuner import run_study
from tuner.refit import refit_best

SPEC = {
    "name": "browsed",
    "data": {"source": "sklearn:breast_cancer"},
    "model": "logistic",
    "metric": "roc_auc",
    "cv": {"scheme": "stratified", "folds": 3, "holdout_test": 0.2},
    "pruner": "median",
    "budget": {"n_trials": 4},
    "seed": 3,
}
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
    # Nothing but localhost resolves: the report must render with no network at all.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


def _require(what: str) -> None:
    message = f"{what}; install Debian `chromium` and `chromium-driver` (see .ci/run)"
    if os.environ.get("TUNER_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (TUNER_REQUIRE_BROWSER=1)")
    pytest.skip(message)


def _executable(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Iterator[object]:
    browser = _executable("chromium", "chromium-browser", "google-chrome")
    chromedriver = _executable("chromedriver")
    if browser is None or chromedriver is None:
        _require("Chromium or chromedriver is not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _require("selenium is not installed (`pip install -e '.[dev]'`)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in _FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    web = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    web.set_page_load_timeout(60)
    try:
        yield web
    finally:
        web.quit()


@pytest.fixture(scope="module")
def study_spec(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browsed")
    spec = folder / "study.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    run_study(spec)
    refit_best(str(spec), out=folder / "model.joblib")
    return spec


def _wait_until(check, timeout: float, what: str, driver=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception:  # the page or server is not there yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            shown = f"; the page shows: {_text(driver)[:2000]!r}" if driver is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{shown}")
        time.sleep(0.25)


@contextlib.contextmanager
def _serve(spec: Path, folder: Path) -> Iterator[str]:
    """`tuner dashboard` on the storage of ``spec``, until the block ends; yields its base URL."""
    port = free_port()
    log = (folder / "dashboard.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner", "dashboard", "--storage", str(spec), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: urllib.request.urlopen(f"{base}/api/meta", timeout=5).status == 200, 60, "the dashboard")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert f"at http://127.0.0.1:{port}/" in (folder / "dashboard.log").read_text()


@pytest.fixture
def dashboard(study_spec, tmp_path) -> Iterator[str]:
    with _serve(study_spec, tmp_path) as base:
        yield base


def _text(driver) -> str:
    return driver.find_element("tag name", "body").text


def test_dashboard_and_report_in_a_real_browser(driver, dashboard, study_spec, tmp_path, run_cli):
    studies = json.load(urllib.request.urlopen(f"{dashboard}/api/studies", timeout=10))["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == "browsed")

    driver.get(f"{dashboard}/dashboard")
    _wait_until(lambda: "browsed" in _text(driver), 60, "the study in the study list", driver)

    driver.get(f"{dashboard}/dashboard/studies/{study_id}/trials")
    page = _wait_until(
        lambda: t if "val_scores" in (t := _text(driver)) else None, 60, "a tuner user attribute", driver
    )
    assert "Trial 0" in page and "Trial 3" in page
    assert "val_std" in page
    driver.save_screenshot(str(tmp_path / "dashboard-trials.png"))

    driver.get(f"{dashboard}/dashboard/studies/{study_id}")
    # Study user attributes are paged five at a time; show them all.
    from selenium.webdriver.support.ui import Select

    rows = _wait_until(
        lambda: driver.find_element("css selector", 'select[aria-label="rows per page"]'), 60, "paging", driver
    )
    Select(rows).select_by_visible_text("All")
    study_page = _wait_until(
        lambda: t if "tuner:refit_model" in (t := _text(driver)) else None,
        60,
        "the refit model on the study page",
        driver,
    )
    assert "model.joblib" in study_page
    driver.save_screenshot(str(tmp_path / "dashboard-study.png"))
    for shot in ("dashboard-trials.png", "dashboard-study.png"):
        assert (tmp_path / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = tmp_path / "report.html"
    assert run_cli("report", study_spec, "--out", report).code == 0
    driver.get_log("browser")  # drop the dashboard's messages; only the report's count below
    driver.get(report.as_uri())
    rendered = _wait_until(
        lambda: driver.execute_script(
            "const divs = [...document.querySelectorAll('.plotly-graph-div')];"
            "return divs.length >= 5 && divs.every(d => d.querySelector('.main-svg')) ? divs.map(d => d.id) : null;"
        ),
        60,
        "the report's plots to render",
    )
    assert {"plot-history", "plot-importances", "plot-parallel", "plot-slices", "plot-intermediate"} <= set(rendered)
    assert driver.execute_script("return typeof Plotly") == "object"
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    driver.save_screenshot(str(tmp_path / "report.png"))


def test_report_png_export_with_kaleido(study_spec, tmp_path, run_cli):
    if _executable("chromium", "chromium-browser", "google-chrome") is None:
        _require("Chromium is not installed, so kaleido cannot render PNGs")
    pytest.importorskip("kaleido")
    images = tmp_path / "png"
    result = run_cli("report", study_spec, "--out", tmp_path / "r.html", "--png", images)
    assert result.code == 0, result.err
    written = sorted(p.name for p in images.iterdir())
    assert {"history.png", "importances.png", "parallel.png", "slices.png", "intermediate.png"} <= set(written)
    for name in written:
        data = (images / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, name


# --- diagnostics where people look: named objectives, a note per trial, figures per study ------

DIAGNOSED = {
    **SPEC,
    "name": "diagnosed",
    "objective": ["metric", "gap"],
    "pruner": "none",
    "cv": {"scheme": "stratified", "folds": 3},
}
EPOCHS = [
    {"train_loss": [0.69, 0.41, 0.30, 0.24, 0.21], "val_loss": [0.70, 0.47, 0.40, 0.39, 0.41]},
    {"train_loss": [0.68, 0.40, 0.29, 0.22, 0.19], "val_loss": [0.69, 0.45, 0.38, 0.37, 0.40]},
]
FIGURE_TITLES = (
    "Train − validation gap vs validation roc_auc",
    "Validation roc_auc per group of the",
    "Learning curve of trial #",
    "Loss per epoch of trial #",
)


def _screenshots(tmp_path_factory) -> Path:
    """Where screenshots go: $TUNER_SCREENSHOTS (kept by CI as artifacts) or a temp folder."""
    wanted = os.environ.get("TUNER_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def diagnosed_spec(tmp_path_factory) -> Path:
    """A two-objective study, diagnosed (learning curve), plus a hand-made network trial with groups and
    per-epoch losses (as the network models store them), figures published as `tuner run` does."""
    import optuna
    from optuna.distributions import FloatDistribution

    from tuner.diagnostics import diagnose, publish
    from tuner.store import schema

    folder = tmp_path_factory.mktemp("diagnosed")
    spec = folder / "study.yaml"
    spec.write_text(yaml.safe_dump(DIAGNOSED))
    result = run_study(spec)
    diagnose(str(spec), sizes=(0.25, 0.5, 1.0))
    study = result.study
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.95, 0.03],
            params={"C": 1.0},
            distributions={"C": FloatDistribution(1e-4, 1e3, log=True)},
            user_attrs={
                schema.VAL_MEAN: 0.95,
                schema.GAP: 0.03,
                schema.FLAGS: ["overfit"],
                schema.GROUP_SCORES: {"young": 0.97, "old": 0.91},
                schema.EPOCH_CURVES: EPOCHS,
            },
        )
    )
    publish(study)
    return spec


@pytest.mark.slow
def test_diagnostics_are_visible_in_the_dashboard_and_the_report(
    driver, diagnosed_spec, tmp_path, tmp_path_factory, run_cli
):
    """Assertions: (1) trial 0's page shows its note: its title, flags and the gap to 4 significant digits;
    (2) the study page shows the four figure titles; (3) its objective pickers read `roc_auc` and `gap`, and
    "Objective 0/1" appears nowhere; (4) the report opens with the four training-data questions.
    Screenshots of the trial page, the study page and the report are kept (see _screenshots)."""
    import optuna

    shots = _screenshots(tmp_path_factory)
    first = optuna.load_study(study_name="diagnosed", storage=sqlite_url(diagnosed_spec.parent)).trials[0]
    gap = f"{first.user_attrs['gap']:.4g}"
    with _serve(diagnosed_spec, tmp_path) as base:
        studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=10))["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == "diagnosed")

        driver.set_window_size(1400, 1400)
        driver.get(f"{base}/dashboard/studies/{study_id}/trials")
        page = _wait_until(
            lambda: t if f"(train − validation) {gap}" in (t := _text(driver)) else None, 60, "trial 0's note", driver
        )
        assert "Flags:" in page and "validation" in page and "Trial 0: roc_auc" in page
        assert "Objective 0" not in page
        driver.save_screenshot(str(shots / "dashboard-trial.png"))

        driver.set_window_size(1400, 3200)  # tall enough to hold the figures below the study's charts
        driver.get(f"{base}/dashboard/studies/{study_id}")
        titles = _wait_until(lambda: _all_figures(driver), 60, "the four diagnostics figures", driver)
        assert len(titles) >= 4
        # The Pareto front's and the history's axis pickers name the objectives (study.set_metric_names).
        pickers = driver.execute_script(
            "return [...document.querySelectorAll('[role=combobox]')].map(e => e.textContent);"
        )
        assert {"roc_auc", "gap"} <= set(pickers), pickers
        assert "Objective 0" not in _text(driver) and "Objective 1" not in _text(driver)
        driver.save_screenshot(str(shots / "dashboard-study.png"))

    report = tmp_path / "report.html"
    assert run_cli("report", diagnosed_spec, "--out", report).code == 0
    driver.set_window_size(1400, 1400)
    driver.get(report.as_uri())
    shown = _wait_until(lambda: t if "Overfitting?" in (t := _text(driver)) else None, 60, "the report's questions")
    for question in ("Underfitting?", "More data?", "Group gap?"):
        assert question in shown
    driver.save_screenshot(str(shots / "report.png"))
    for name in ("dashboard-trial.png", "dashboard-study.png", "report.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshots in {shots}")


def _all_figures(driver) -> list[str] | None:
    """Every plotly title on the page (SVG text) once the four diagnostics figures are drawn, else None."""
    titles = driver.execute_script("return [...document.querySelectorAll('.gtitle')].map(e => e.textContent);")
    return titles if all(any(want in title for title in titles) for want in FIGURE_TITLES) else None
