"""Helpers for the fault and service tests: fast objectives, specs next to them, worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from tuner.engine import mark_worker
from tuner.store import Heartbeat, open_storage, resolve_url

# Objectives the tests choose from; each takes milliseconds unless it sleeps on purpose.
OBJECTIVES = """
import math
import time


def fast(trial, ctx):
    return trial.suggest_float("x", 0, 1)


def slow(trial, ctx):
    x = trial.suggest_float("x", 0, 1)
    time.sleep(0.4)
    return x


def stall(trial, ctx):
    # Trial 2 runs long enough to be killed in the middle of it; its retry gets another number.
    x = trial.suggest_float("x", 0, 1)
    time.sleep(3.0 if trial.number == 2 else 0.1)
    return x


def sleepy(trial, ctx):
    x = trial.suggest_float("x", 0, 1)
    time.sleep(3.0)
    return x


def flaky(trial, ctx):
    x = trial.suggest_float("x", 0, 1)
    outcome = trial.number % 5
    if outcome == 0:
        raise ValueError(f"bad input in trial {trial.number}")
    return {1: None, 2: float("nan"), 3: float("inf")}.get(outcome, x)


def broken(trial, ctx):
    trial.suggest_float("x", 0, 1)
    raise RuntimeError(f"broken {trial.number}")


def dies_early_once(trial, ctx):
    # A worker process (never the parent, worker 0) dies at the start of its first trial from 3
    # on, before a journal file would name it on the trial; the marker file makes it happen once.
    import multiprocessing
    import os
    import signal

    x = trial.suggest_float("x", 0, 1)
    marker = ctx.spec.base_dir / "died"
    if trial.number >= 3 and multiprocessing.parent_process() is not None and not marker.exists():
        marker.write_text(str(trial.number))
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.3)  # slow enough that the parent has not run the whole budget before workers start
    return x


def dies_at_the_end(trial, ctx):
    # The parent (worker 0) holds its trial 1 open until a worker process has died at the start of
    # its first trial, unnamed on a journal file; that trial fills the budget, so the parent's
    # loop ends before the death can be told apart from a live worker's trial.
    import multiprocessing
    import os
    import signal

    x = trial.suggest_float("x", 0, 1)
    marker = ctx.spec.base_dir / "died"
    if multiprocessing.parent_process() is not None and not marker.exists():
        marker.write_text(str(trial.number))
        os.kill(os.getpid(), signal.SIGKILL)
    deadline = time.time() + 60
    while trial.number == 1 and not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    return x


def peer_fails_me(trial, ctx):
    # Trial 1 plays a worker whose heartbeat looked stale: a "peer" marks it FAIL meanwhile.
    x = trial.suggest_float("x", 0, 1)
    if trial.number == 1:
        from optuna.trial import TrialState
        from tuner.engine import mark_worker
        from tuner.store import Heartbeat, open_storage, resolve_url

        peer = open_storage(resolve_url(ctx.spec.storage, base_dir=ctx.spec.base_dir))
        peer.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return x
"""

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class Study:
    """A spec on disk with its objective module, and quick access to its trials."""

    spec: Path
    name: str
    url: str

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        storage = open_storage(self.url)
        return optuna.load_study(study_name=self.name, storage=storage).get_trials()

    def states(self) -> dict[str, int]:
        trials = self.trials()
        return {s.name: sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)}


def make_study(
    folder: Path,
    objective: str,
    *,
    n_trials: int,
    storage: str | None = None,
    name: str | None = None,
    budget: dict[str, Any] | None = None,
) -> Study:
    """Write ``<module>.py`` and ``study.yaml`` into ``folder``: iris data, a custom fast objective."""
    module = f"objectives_{uuid.uuid4().hex[:8]}"  # unique, so no test gets another's cached module
    (folder / f"{module}.py").write_text(textwrap.dedent(OBJECTIVES))
    name = name or f"study_{uuid.uuid4().hex[:8]}"
    spec: dict[str, Any] = {
        "name": name,
        "data": {"source": "sklearn:iris"},
        "model": "logistic",
        "objective": f"{module}:{objective}",
        "sampler": "random",
        "pruner": "none",
        "budget": {"n_trials": n_trials, **(budget or {})},
        "seed": 3,
    }
    if storage is not None:
        spec["storage"] = storage
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return Study(spec=path, name=name, url=resolve_url(storage, base_dir=folder))


REMOTE = {"host": "elsewhere", "pid": 1}  # a worker on another machine


def silent_remote_trial(study: Study, heartbeat: Heartbeat) -> optuna.Trial:
    """A trial that a worker on another machine took, beat for once, then fell silent on (its machine died)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    remote = optuna.load_study(study_name=study.name, storage=open_storage(study.url, heartbeat=heartbeat))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna: "Heartbeat of storage is supposed to be used with Study.optimize"
        trial = remote.ask()
    trial.suggest_float("x", 0, 1)
    storage = remote._storage
    mark_worker(storage, trial._trial_id, REMOTE)  # on journal storages, this is its one beat
    if is_heartbeat_enabled(storage):
        storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]  # Optuna's beat on RDB storages
    return trial


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # the storage may not exist yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout} s")


def tuner_process(*args: str, env: dict[str, str] | None = None, new_session: bool = False) -> subprocess.Popen[str]:
    """``python -m tuner ARGS`` as a child process (stdout/stderr piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=new_session,
    )


def running_by(study: Study, pid: int) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials whose worker is process ``pid``."""
    return [
        t
        for t in study.trials()
        if t.state == TrialState.RUNNING and (t.system_attrs.get("tuner:worker") or {}).get("pid") == pid
    ]


def check_contiguous(trials: list[optuna.trial.FrozenTrial]) -> None:
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(len(trials))), f"trial numbers are not 0..{len(trials) - 1}: {numbers}"


def kill_and_resume_checks(study: Study, complete_before: dict[int, float | None], killed: int, n_trials: int) -> None:
    """What must hold after a worker was killed during trial ``killed`` and a rerun finished the study."""
    trials = study.trials()
    by_number = {t.number: t for t in trials}
    for number, value in complete_before.items():
        assert by_number[number].state == TrialState.COMPLETE and by_number[number].value == value
    dead = by_number[killed]
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs.get("lost") is True
    assert "worker lost" in dead.user_attrs["error"]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1, "the killed trial is retried exactly once"
    assert retries[0].params == dead.params
    assert retries[0].state == TrialState.COMPLETE
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    counted = [t for t in trials if t.state in FINISHED and not t.user_attrs.get("lost")]
    assert len(counted) == n_trials
    check_contiguous(trials)
