"""Read while a run writes: ``tuner show``, ``export``, ``best`` and ``read_study`` read the study from
another process than the worker writing it, with no "database is locked", and the run finishes its
budget with every trial complete."""

from __future__ import annotations

import json

import pytest
from optuna.trial import TrialState
from support import last_beat, running_by, wait_for

import tuner
from tuner.store import open_storage

N_TRIALS, HELD = 8, 4
ROUNDS = 3


@pytest.mark.slow
def test_the_read_side_works_while_a_worker_writes_the_study(backend, study_on, tuner_process, run_cli):
    study = study_on("held", n_trials=N_TRIALS)
    study.hold(from_number=HELD)  # trial 4 runs, beating every second, until the reads are done
    worker = tuner_process("worker", study.spec, "--heartbeat", "1", "--grace", "30")
    wait_for(lambda: [t.number for t in running_by(study, worker.pid)] == [HELD], what=f"trial {HELD} running")
    held = next(t for t in study.trials() if t.number == HELD)
    storage = open_storage(study.url)

    for _ in range(ROUNDS):
        beat = last_beat(storage, held._trial_id)
        shown = run_cli("show", study.spec)
        exported = run_cli("export", study.spec, "--format", "json")
        best = run_cli("best", study.spec, "--json")
        for result in (shown, exported, best):
            assert result.code == 0, result.err
            assert "locked" not in result.out + result.err
        assert f"{HELD} complete, 1 running" in " ".join(shown.out.split())
        states = [t["state"] for t in json.loads(exported.out)["trials"]]
        assert states == ["COMPLETE"] * HELD + ["RUNNING"], "the reads see the study mid-run"
        assert json.loads(best.out)["best_trial"]["number"] < HELD
        assert tuner.read_study(study.name, study.url).counts() == {
            "complete": HELD,
            "pruned": 0,
            "fail": 0,
            "running": 1,
            "waiting": 0,
        }
        # The worker writes (its heartbeat) between one round of reads and the next.
        wait_for(lambda beat=beat: last_beat(storage, held._trial_id) > beat, what="the worker's next heartbeat")

    study.release()
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert "locked" not in (out + err).lower()
    trials = study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * N_TRIALS
    assert not [t.user_attrs["error"] for t in trials if "error" in t.user_attrs]
