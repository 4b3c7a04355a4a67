"""Read while a run writes: ``tuner show``, ``export``, ``best``, ``read_study`` and the dashboard's API
read a study that two workers write, with no "database is locked", and the workers finish the budget
with every trial complete.

The readers must see the study mid-run and the workers must write between one round of reads and
the next, whatever the machine's load: the workers hold trials 4 and 5 while the reads go on, and
each round waits for a new heartbeat of both before the next.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from optuna.trial import TrialState
from support import free_port, last_beat, running_by, wait_for

import tuner
from tuner.store import open_storage

N_TRIALS, HELD = 10, 4  # trials 4 and 5 stay RUNNING, one in each worker, until the reads are done
ROUNDS = 3


def _api(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}{path}", timeout=30) as response:
        return json.load(response)


@pytest.mark.slow
def test_the_read_side_works_while_two_workers_write_the_study(backend, study_on, tuner_process, run_cli):
    study = study_on("held", n_trials=N_TRIALS)
    study.hold(from_number=HELD)
    port = free_port()
    dashboard = tuner_process("dashboard", "--storage", study.spec, "--port", port)
    workers = [tuner_process("worker", study.spec, "--heartbeat", "1", "--grace", "30") for _ in range(2)]
    base = f"http://127.0.0.1:{port}"

    def held_by_both() -> bool:
        return sorted(t.number for w in workers for t in running_by(study, w.pid)) == [HELD, HELD + 1]

    wait_for(held_by_both, what=f"trials {HELD} and {HELD + 1} running, one in each worker")
    wait_for(lambda: _api(base, "/api/meta") is not None, what="the dashboard")
    storage = open_storage(study.url)
    held = [t._trial_id for t in study.trials() if t.state == TrialState.RUNNING]
    # SQLite workers beat one second into a trial.
    wait_for(lambda: all(last_beat(storage, t) is not None for t in held), what="the held trials' first heartbeats")

    for _ in range(ROUNDS):
        beats = [last_beat(storage, trial_id) for trial_id in held]
        shown = run_cli("show", study.spec)
        exported = run_cli("export", study.spec, "--format", "json")
        best = run_cli("best", study.spec, "--json")
        for result in (shown, exported, best):
            assert result.code == 0, result.err
            assert "locked" not in result.out + result.err
        assert f"{HELD} complete, 2 running" in " ".join(shown.out.split())
        states = [t["state"] for t in json.loads(exported.out)["trials"]]
        assert states == ["COMPLETE"] * HELD + ["RUNNING"] * 2, "the reads see the study mid-run"
        assert json.loads(best.out)["best_trial"]["number"] < HELD
        counts = tuner.read_study(study.name, study.url).counts()
        assert (counts["complete"], counts["running"]) == (HELD, 2)
        summaries = _api(base, "/api/studies")["study_summaries"]
        study_id = next(s["study_id"] for s in summaries if s["study_name"] == study.name)
        trials = _api(base, f"/api/studies/{study_id}?after=0")["trials"]
        assert [t["state"] for t in trials] == ["Complete"] * HELD + ["Running"] * 2
        # Both workers write (a heartbeat) before the next round of reads.
        for trial_id, beat in zip(held, beats, strict=True):
            wait_for(lambda t=trial_id, b=beat: last_beat(storage, t) > b, what="a worker's next heartbeat")

    study.release()
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert "locked" not in (out + err).lower()
    dashboard.terminate()
    _out, err = dashboard.communicate(timeout=30)
    assert "locked" not in err.lower() and "Traceback" not in err, err
    trials = study.trials()
    # Two independent workers may run one trial past the budget (workers − 1).
    assert N_TRIALS <= len(trials) <= N_TRIALS + 1
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert not [t.user_attrs["error"] for t in trials if "error" in t.user_attrs]
