"""Zombie trials and storage health: what ``tuner doctor`` shows, and what runs and workers reap.

A *zombie* is a trial left RUNNING that nobody runs any more: its worker process on this machine
is gone (checked by the PID every worker records on its trial), or its heartbeat is older than the
grace period (works across machines). Repairing one marks it FAIL with the reason in the user
attribute ``error`` plus ``lost: true`` (so it does not count against the budget), and enqueues one
retry with the same parameters through Optuna's ``RetryHeartbeatStaleTrialCallback``.
"""

from __future__ import annotations

import copy
import os
import socket
import sqlite3
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from tuner.errors import StorageError, did_you_mean
from tuner.storage import ATTR_WORKER, Heartbeat, heartbeat_ages, open_storage, redact, stale_trial_ids

if TYPE_CHECKING:
    import optuna

# User attributes a repair writes; a retry starts without them.
ATTR_LOST = "lost"
_REPAIR_ATTRS = ("error", ATTR_LOST, "interrupted")
_SYSTEM_ATTRS_NOT_RETRIED = (ATTR_WORKER,)

Status = Literal["alive", "dead", "stale", "old", "unknown"]


@dataclass(frozen=True)
class RunningTrial:
    """A RUNNING trial and what is known about its worker."""

    number: int
    trial_id: int
    started: datetime | None
    host: str | None
    pid: int | None
    heartbeat_age: float | None
    status: Status
    reason: str

    @property
    def zombie(self) -> bool:
        return self.status in ("dead", "stale", "old")

    @property
    def worker(self) -> str:
        return "-" if self.host is None else f"{self.host}:{self.pid}"


def this_worker() -> dict[str, Any]:
    """The attribute value that names the current process as a trial's worker."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` on this machine still runs (a zombie process counts as gone)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows; rely on heartbeats
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def running_trials(
    study: optuna.Study,
    *,
    heartbeat: Heartbeat | None,
    older_than: float | None = None,
    with_ages: bool = False,
) -> list[RunningTrial]:
    """The study's RUNNING trials, each with a status; ``zombie`` ones can be repaired.

    Args:
        study: The study.
        heartbeat: The heartbeat settings workers use (its grace period decides "stale").
        older_than: Also count trials running longer than this many seconds as zombies, whatever
            their worker says (for workers without heartbeat on other machines).
        with_ages: Read each trial's heartbeat age (one more query; for display).
    """
    storage = study._storage
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return []
    stale = stale_trial_ids(storage, study._study_id, heartbeat)
    ages = heartbeat_ages(storage, running) if with_ages else {}
    host = socket.gethostname()
    now = datetime.now()
    out = []
    for trial in running:
        worker = trial.system_attrs.get(ATTR_WORKER) or {}
        w_host, w_pid = worker.get("host"), worker.get("pid")
        status: Status
        if w_host == host and isinstance(w_pid, int) and not pid_alive(w_pid):
            status, reason = "dead", f"its worker process {w_pid} on {w_host} is gone (killed or crashed)"
        elif trial._trial_id in stale:
            grace = heartbeat.grace if heartbeat else "the grace period"
            status = "stale"
            if w_host is None:
                reason = f"started more than {grace} s ago and no worker named itself on it (it died at the start)"
            else:
                reason = f"no heartbeat from its worker {w_host}:{w_pid} for more than {grace} s"
        elif (
            older_than is not None
            and trial.datetime_start
            and (now - trial.datetime_start).total_seconds() > older_than
        ):
            status, reason = "old", f"RUNNING for more than {older_than:g} s (repaired with --older-than)"
        elif w_host == host:
            status, reason = "alive", "its worker process runs on this machine"
        elif w_host is not None:
            status, reason = "unknown", "its worker runs on another machine; no stale heartbeat"
        else:
            status, reason = "unknown", "no worker recorded on the trial (not started by tuner)"
        out.append(
            RunningTrial(
                number=trial.number,
                trial_id=trial._trial_id,
                started=trial.datetime_start,
                host=w_host,
                pid=w_pid,
                heartbeat_age=ages.get(trial.number),
                status=status,
                reason=reason,
            )
        )
    return out


def repair(
    study: optuna.Study, trials: Iterable[RunningTrial], *, interrupted: bool = False, retry: bool = True
) -> list[int]:
    """Mark ``trials`` FAIL with their reason; retry each once unless they were ``interrupted`` (Ctrl-C).

    A trial that another process finished meanwhile is left alone. Returns the repaired numbers.
    """
    storage = study._storage
    retry_callback = _retry_callback(storage) if retry and not interrupted else None
    repaired = []
    for item in trials:
        reason = "interrupted (Ctrl-C) while running" if interrupted else f"worker lost: {item.reason}"
        try:
            storage.set_trial_user_attr(item.trial_id, "error", reason)
            storage.set_trial_user_attr(item.trial_id, "interrupted" if interrupted else ATTR_LOST, True)
            storage.set_trial_state_values(item.trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # its worker (or a peer) finished it first
        repaired.append(item.number)
        if retry_callback is not None:
            retry_callback(study, _retry_template(storage.get_trial(item.trial_id)))
    return repaired


def reap(study: optuna.Study, *, heartbeat: Heartbeat | None, pids: Iterable[int] | None = None) -> list[int]:
    """Repair the study's zombies (all of them, or only those of worker processes ``pids``)."""
    wanted = set(pids) if pids is not None else None
    zombies = [
        t for t in running_trials(study, heartbeat=heartbeat) if t.zombie and (wanted is None or t.pid in wanted)
    ]
    return repair(study, zombies) if zombies else []


def _retry_callback(storage: Any) -> Any:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    get = getattr(storage, "get_heartbeat_stale_trial_callback", None)
    callback = get() if get is not None else None
    if callback is not None:
        return callback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)


def _retry_template(trial: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    # The retry copies the trial's attributes; without this it would inherit the dead worker's PID
    # (and look dead itself) and the repair's error.
    template = copy.deepcopy(trial)
    template.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _REPAIR_ATTRS}
    template.system_attrs = {k: v for k, v in trial.system_attrs.items() if k not in _SYSTEM_ATTRS_NOT_RETRIED}
    return template


@dataclass(frozen=True)
class Check:
    """One line of the storage check: what was checked, whether it is fine, and the detail."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Diagnosis:
    """What ``tuner doctor`` found: storage checks, trial counts and the RUNNING trials."""

    study: optuna.Study
    checks: list[Check]
    counts: dict[str, int]
    running: list[RunningTrial]

    @property
    def zombies(self) -> list[RunningTrial]:
        return [t for t in self.running if t.zombie]


def diagnose(name: str, url: str, *, heartbeat: Heartbeat | None, older_than: float | None = None) -> Diagnosis:
    """Check the storage at ``url`` and the RUNNING trials of study ``name`` (nothing is changed).

    Raises:
        StorageError: when the storage cannot be opened or holds no such study.
    """
    import optuna

    storage, checks = check_storage(url, heartbeat=heartbeat)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        raise StorageError(
            f"no study named {name!r} in {redact(url)}.{did_you_mean(name, names)} Studies there: "
            f"{', '.join(sorted(names)) or 'none'}. Pass the spec file instead of the name, or point --storage "
            "at the right database."
        )
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    running = running_trials(study, heartbeat=heartbeat, older_than=older_than, with_ages=True)
    return Diagnosis(study=study, checks=checks, counts=counts, running=running)


def check_storage(url: str, *, heartbeat: Heartbeat | None = None) -> tuple[Any, list[Check]]:
    """Open the storage at ``url`` and check it: connection, schema version, SQLite journal mode.

    Returns the opened storage and the checks. Raises :class:`~tuner.errors.StorageError` when it
    cannot be opened at all.
    """
    storage = open_storage(url, heartbeat=heartbeat)
    checks = [Check("connect", True, f"opened {redact(url)}")]
    version = getattr(storage, "get_current_version", None)
    if version is not None:
        current, head = version(), getattr(storage, "get_head_version")()  # noqa: B009 - RDB storages only
        checks.append(
            Check(
                "schema",
                current == head,
                f"version {current}"
                + ("" if current == head else f", Optuna expects {head}: run `optuna storage upgrade`"),
            )
        )
    if url.startswith("sqlite:///"):
        checks.append(_sqlite_mode(Path(url.removeprefix("sqlite:///"))))
    if url.startswith("journal:///"):
        checks.append(_journal_lock(Path(url.removeprefix("journal:///"))))
    return storage, checks


def _sqlite_mode(path: Path) -> Check:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    ok = str(mode).lower() == "wal"
    detail = f"journal_mode={mode}" + ("" if ok else "; several processes need WAL: `tuner run` sets it on open")
    return Check("sqlite", ok, detail)


def _journal_lock(path: Path) -> Check:
    lock = Path(f"{path}.lock")
    if not lock.exists():
        return Check("journal", True, f"{path.name}: {path.stat().st_size if path.exists() else 0} bytes, not locked")
    age = datetime.now().timestamp() - lock.lstat().st_mtime
    # Optuna breaks a journal lock older than its 30 s grace period by itself.
    return Check("journal", age < 30, f"lock file {lock.name} held for {age:.0f} s")
