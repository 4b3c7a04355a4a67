"""Helpers shared by the tests: the tiny CV spec, fast objectives that wait on events, specs next to
them, ``python -m tuner`` processes, waiting on a condition, and the checks after a crash.

The fixtures that hand these out (``write_spec``, ``make_study``, ``tuner_process``) live in
``tests/conftest.py``. No helper synchronises by sleeping: objectives hold a trial until a file
appears, tests wait until the storage shows a state.
"""

from __future__ import annotations

import os
import socket
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

# A small, fast study: logistic regression on breast_cancer, 3 folds.
BASE_SPEC: dict[str, Any] = {
    "name": "tiny",
    "data": {"source": "sklearn:breast_cancer"},
    "model": "logistic",
    "metric": "roc_auc",
    "cv": {"scheme": "stratified", "folds": 3},
    "sampler": {"name": "tpe"},
    "pruner": "none",
    "budget": {"n_trials": 4},
    "seed": 7,
}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``changes``, nested dicts merged; a None value deletes the key."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def write_spec_file(folder: Path, changes: dict[str, Any] | None = None, filename: str = "study.yaml") -> Path:
    """Write BASE_SPEC updated with ``changes`` to ``folder / filename`` (the ``write_spec`` fixture's work)."""
    path = folder / filename
    path.write_text(yaml.safe_dump(merge(BASE_SPEC, changes or {}), sort_keys=False))
    return path


def alias_bomb(levels: int, width: int = 9) -> str:
    """A valid-looking spec whose ``sampler.options`` hold a billion-laughs YAML: anchor ``l<k>`` lists
    ``width`` aliases of ``l<k-1>``, so the last one expands to ``width ** levels`` values."""
    lines = ["name: bomb", "data: {source: 'sklearn:iris'}", "model: logistic", "sampler:", "  name: tpe", "  options:"]
    lines.append(f"    l0: &l0 [{', '.join(['lol'] * width)}]")
    for level in range(1, levels + 1):
        lines.append(f"    l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def sqlite_url(folder: Path) -> str:
    """The URL of the default storage of specs in ``folder`` (``tuner.db`` next to them)."""
    return f"sqlite:///{folder / 'tuner.db'}"


# How long anything in a test may wait for an event before it counts as never coming.
PATIENCE_S = 120.0

# Objectives the tests choose from. Each takes milliseconds; where a test needs a trial to stay
# RUNNING (to kill its worker, to press Ctrl-C, to read the study mid-run), the trial waits for a
# file the test writes, never for a length of time.
OBJECTIVES = f"""
import time
from pathlib import Path

PATIENCE_S = {PATIENCE_S}


def _wait_for_file(path, what):
    deadline = time.monotonic() + PATIENCE_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{{what}}: {{path.name}} did not appear within {{PATIENCE_S}} s")
        time.sleep(0.02)


def _is_worker_process():
    import multiprocessing

    return multiprocessing.parent_process() is not None


def fast(trial, ctx):
    return trial.suggest_float("x", 0, 1)


def _record_pid(ctx):
    # Which processes ran trials (Study.pids): a test checks that they are gone after their parent.
    import os

    folder = ctx.spec.base_dir / "pids"
    folder.mkdir(exist_ok=True)
    (folder / str(os.getpid())).touch()


def held(trial, ctx):
    # Trials numbered from the one in `hold_from` (Study.hold) wait until `release` exists (Study.release).
    x = trial.suggest_float("x", 0, 1)
    _record_pid(ctx)
    hold = ctx.spec.base_dir / "hold_from"
    if hold.exists() and trial.number >= int(hold.read_text()):
        _wait_for_file(ctx.spec.base_dir / "release", f"trial {{trial.number}}")
    return x


def gathers(trial, ctx):
    # Every trial waits until budget.n_jobs worker processes have each started one, so every
    # worker runs trials however long the others take to start.
    import os

    x = trial.suggest_float("x", 0, 1)
    folder = ctx.spec.base_dir / "started"
    folder.mkdir(exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + PATIENCE_S
    while len(list(folder.iterdir())) < ctx.spec.budget.n_jobs:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {{len(list(folder.iterdir()))}} worker(s) started a trial")
        time.sleep(0.02)
    return x


def flaky(trial, ctx):
    x = trial.suggest_float("x", 0, 1)
    outcome = trial.number % 5
    if outcome == 0:
        raise ValueError(f"bad input in trial {{trial.number}}")
    return {{1: None, 2: float("nan"), 3: float("inf")}}.get(outcome, x)


def broken(trial, ctx):
    trial.suggest_float("x", 0, 1)
    raise RuntimeError(f"broken {{trial.number}}")


def dies_early_once(trial, ctx):
    # A worker process (never the parent, worker 0) dies at the start of its first trial from 3
    # on, before a journal file would name it on the trial; the marker file makes it happen once.
    # The parent holds its own first trial from 3 on until that death, so the worker always gets
    # there, however long it takes to start.
    import os
    import signal

    x = trial.suggest_float("x", 0, 1)
    marker = ctx.spec.base_dir / "died"
    if trial.number >= 3 and not marker.exists():
        if _is_worker_process():
            marker.write_text(str(trial.number))
            os.kill(os.getpid(), signal.SIGKILL)
        _wait_for_file(marker, "the parent waiting for a worker to die")
    return x


def dies_in_workers(trial, ctx):
    # Every trial that a worker process (never the parent, worker 0) starts kills it, after noting
    # its PID in `deaths`. The parent holds its first trial until `hold_deaths` (a count) trials
    # were repaired as lost with their worker, so no trial counts in between.
    import os
    import signal

    from optuna.trial import TrialState
    from tuner.store import open_storage, resolve_url

    x = trial.suggest_float("x", 0, 1)
    folder = ctx.spec.base_dir
    if _is_worker_process():
        with (folder / "deaths").open("a") as deaths:
            deaths.write(f"{{os.getpid()}}\\n")
        os.kill(os.getpid(), signal.SIGKILL)
    storage = open_storage(resolve_url(ctx.spec.storage, base_dir=folder))
    wanted = int((folder / "hold_deaths").read_text())
    deadline = time.monotonic() + PATIENCE_S
    while True:
        trials = storage.get_all_trials(trial.study._study_id, deepcopy=False, states=(TrialState.FAIL,))
        if sum(bool(t.user_attrs.get("lost")) for t in trials) >= wanted:
            return x
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {{wanted}} trials were lost with their worker")
        time.sleep(0.02)


def dies_at_the_end(trial, ctx):
    # The parent (worker 0) holds its trial 1 open until a worker process has died at the start of
    # its first trial, unnamed on a journal file; that trial fills the budget, so the parent's
    # loop ends before the death can be told apart from a live worker's trial.
    import os
    import signal

    x = trial.suggest_float("x", 0, 1)
    marker = ctx.spec.base_dir / "died"
    if _is_worker_process() and not marker.exists():
        marker.write_text(str(trial.number))
        os.kill(os.getpid(), signal.SIGKILL)
    if trial.number == 1:
        _wait_for_file(marker, "the parent waiting for a worker to die")
    return x


def peer_fails_me(trial, ctx):
    # Trial 1 plays a worker whose heartbeat looked stale: a "peer" marks it FAIL meanwhile.
    x = trial.suggest_float("x", 0, 1)
    if trial.number == 1:
        from optuna.trial import TrialState
        from tuner.store import open_storage, resolve_url

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

    @property
    def folder(self) -> Path:
        return self.spec.parent

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        storage = open_storage(self.url)
        return optuna.load_study(study_name=self.name, storage=storage).get_trials()

    def states(self) -> dict[str, int]:
        trials = self.trials()
        return {s.name: sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)}

    def hold(self, from_number: int) -> None:
        """With the ``held`` objective: trials numbered ``from_number`` on wait for :meth:`release`."""
        (self.folder / "hold_from").write_text(str(from_number))

    def release(self) -> None:
        (self.folder / "release").touch()

    def pids(self) -> set[int]:
        """The processes that ran a trial of the ``held`` objective."""
        folder = self.folder / "pids"
        return {int(path.name) for path in folder.iterdir()} if folder.exists() else set()

    def marker(self) -> int:
        """The trial number a ``dies_*`` objective wrote before its worker killed itself."""
        return int((self.folder / "died").read_text())


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


def wait_for(predicate: Callable[[], bool], timeout: float = PATIENCE_S, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds (an exception counts as not yet: the storage may not exist yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


def start_tuner(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m tuner ARGS`` as a child process (stdout/stderr piped) in a session of its own, so that
    everything it starts can be found and killed by its session; see the ``tuner_process`` fixture."""
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def session_processes(session: int) -> list[int]:
    """Live processes (zombies excluded) of session ``session`` (Linux /proc): what is left of a process
    started in a session of its own, its workers and their helpers included."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session and fields[0] not in ("Z", "X"):
            left.append(int(entry.name))
    return left


def running_by(study: Study, pid: int) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials whose worker is process ``pid``."""
    return [
        t
        for t in study.trials()
        if t.state == TrialState.RUNNING and (t.system_attrs.get("tuner:worker") or {}).get("pid") == pid
    ]


def last_beat(storage: optuna.storages.BaseStorage, trial_id: int) -> Any:
    """When the trial's worker last beat: Optuna's heartbeat row on RDB storages (the database's clock),
    the ``beat`` of the trial's worker attribute on journal storages; None before the first beat."""
    from tuner import _optuna

    if isinstance(storage, optuna.storages.RDBStorage):
        return _optuna.heartbeat_table(storage)[1].get(trial_id)
    return (storage.get_trial(trial_id).system_attrs.get("tuner:worker") or {}).get("beat")


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
    assert retries[0].state == TrialState.COMPLETE, [
        (t.number, t.state.name, t.user_attrs, t.system_attrs.get("failed_trial")) for t in trials
    ]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    counted = [t for t in trials if t.state in FINISHED and not t.user_attrs.get("lost")]
    assert len(counted) == n_trials
    check_contiguous(trials)
