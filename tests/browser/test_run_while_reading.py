"""Reading a SQLite study (``tuner show`` and the dashboard's API) while two workers write it.

The run must finish its whole budget with every trial complete and no "database is locked",
and the readers must have seen the study mid-run (so the test really overlapped them).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest
import yaml
from optuna.trial import TrialState

N_TRIALS = 40  # long enough (several seconds) for the readers to see the run mid-way
SPEC = {
    "name": "busy",
    "data": {"source": "sklearn:breast_cancer"},
    "model": "logistic",
    "metric": "roc_auc",
    "cv": {"scheme": "stratified", "folds": 3},
    "pruner": "none",
    "budget": {"n_trials": N_TRIALS},
    "seed": 5,
}


def _tuner(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuner", *args]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_show_and_dashboard_read_while_two_workers_write(tmp_path, run_cli):
    spec = tmp_path / "busy.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    port = _free_port()
    dashboard = subprocess.Popen(
        _tuner("dashboard", "--storage", str(spec), "--port", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    # Two worker processes on one SQLite file.
    log = tmp_path / "run.log"
    handle = log.open("w")
    worker = subprocess.Popen(
        _tuner("run", str(spec), "-q", "--jobs", "2"), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    seen_mid_run: list[int] = []
    reads = api_reads = 0
    try:
        deadline = time.monotonic() + 240
        while worker.poll() is None:
            assert time.monotonic() < deadline, "the run did not finish in time"
            result = run_cli("show", spec)
            if "no study named" in result.err or "no study storage at" in result.err:  # not created yet
                time.sleep(0.2)
                continue
            assert result.code == 0, result.err
            assert "locked" not in result.out + result.err
            reads += 1
            exported = run_cli("export", spec, "--format", "json")
            assert exported.code == 0, exported.err
            complete = sum(t["state"] == "COMPLETE" for t in json.loads(exported.out)["trials"])
            if 0 < complete < N_TRIALS:
                seen_mid_run.append(complete)
            try:
                studies = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10))
                api_reads += 1
                for study in studies["study_summaries"]:
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/studies/{study['study_id']}?after=0", timeout=10
                    ).read()
            except OSError:  # the dashboard is still starting
                pass
            time.sleep(0.3)  # leave the two cores mostly to the workers
    finally:
        for process in (worker, dashboard):
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=60)
        handle.close()
    text = log.read_text()
    assert worker.returncode == 0, text
    assert "locked" not in text.lower(), text

    study = optuna.load_study(study_name="busy", storage=f"sqlite:///{tmp_path / 'tuner.db'}")
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == len(states) == N_TRIALS, states
    assert not [t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")]
    assert reads >= 3 and seen_mid_run, f"reads={reads}, mid-run counts={seen_mid_run}"
    assert api_reads >= 1
