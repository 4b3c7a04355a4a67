"""Liveness of workers: heartbeats, zombie trials and their repair, and what ``tuner doctor`` shows.

Workers keep a heartbeat on their running trial (Optuna's own on RDB storages, a timestamp
system attribute on journal storages, which have none), so a trial whose worker died can be told
from one that is still running.

A *zombie* is a trial left RUNNING that nobody runs any more: its worker process on this machine
is gone (checked by the PID every worker records on its trial), or its heartbeat is older than the
grace period (works across machines). Repairing one marks it FAIL with the reason in the user
attribute ``error`` plus ``lost: true`` (so it does not count against the budget), and enqueues one
retry with the same parameters through Optuna's ``RetryHeartbeatStaleTrialCallback``.
"""

from __future__ import annotations

import copy
import functools
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tuner import _optuna
from tuner.store import Check, Heartbeat, StoredStudy, check_storage, counts, kind_of, load_stored, schema

# On journal files a trial is named (its first beat) this long after it starts, so that trials
# shorter than this cost no write for it; until then its start time stands in for the beat.
NAME_AFTER_S = 1.0

Status = Literal["alive", "dead", "stale", "old", "unknown"]


def this_worker() -> dict[str, Any]:
    """The attribute value that names the current process as a trial's worker."""
    return {schema.WORKER_HOST: socket.gethostname(), schema.WORKER_PID: os.getpid()}


def mark_worker(storage: optuna.storages.BaseStorage, trial_id: int, worker: dict[str, Any]) -> None:
    """Name the process running the trial; on journal storages this is also its heartbeat."""
    storage.set_trial_system_attr(trial_id, schema.WORKER, {**worker, schema.WORKER_BEAT: time.time()})


def rdb_heartbeat(storage: optuna.storages.BaseStorage) -> bool:
    """Whether Optuna keeps the heartbeats of this storage itself (an RDB storage opened with one)."""
    return isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None


class Pulse:
    """Names each trial's worker and keeps its heartbeat, from one thread per trial loop.

    RDB storages get their worker named at once and Optuna's heartbeat record from the start of
    the trial (SQLite: ``NAME_AFTER_S`` in, so a shorter trial costs no beat; its worker runs on
    this machine, where its PID tells if it died, and :func:`stale_trial_ids` counts the naming as
    the first beat), then every ``settings.interval`` seconds. Journal storages (file, Redis) have no
    heartbeat of their own: the ``beat`` in the trial's worker attribute is renewed instead. On a
    journal file the worker is named only after ``NAME_AFTER_S`` (a shorter trial costs no write;
    :func:`stale_trial_ids` counts its start as the first beat). Without ``settings`` the worker
    is named and nothing beats; on the in-memory storage, which no other process sees, nothing is
    written at all.
    """

    def __init__(
        self, storage: optuna.storages.BaseStorage, url: str, settings: Heartbeat | None, worker: dict[str, Any]
    ) -> None:
        self.storage, self.settings, self.worker = storage, settings, worker
        self.record: Callable[[int], None] | None = None
        self.first_wait = 0.0
        kind = kind_of(url)
        # No other process sees an in-memory storage, so there is no one to tell who runs a trial.
        self.name_now = kind != "memory"
        if settings is None:
            pass
        elif rdb_heartbeat(storage):
            self.record = storage.record_heartbeat  # type: ignore[attr-defined]
            if kind == "sqlite":
                self.first_wait = min(NAME_AFTER_S, settings.interval)
                self.worker = {**worker, schema.WORKER_BEATS_LATE: True}
        elif isinstance(storage, optuna.storages.JournalStorage):
            self.record = lambda trial_id: mark_worker(storage, trial_id, worker)
            if kind == "journal":
                self.first_wait, self.name_now = min(NAME_AFTER_S, settings.interval), False
            else:  # Redis: workers on other machines, which `tuner doctor` should name from the start
                self.first_wait = settings.interval
        self.changed = threading.Condition()
        self.trial_id: int | None = None
        self.started = 0.0
        # What the thread is doing: "idle" (no trial), "first" (waiting for a trial's first beat)
        # or "beating". Only a thread that must act sooner than it would wake up gets woken.
        self.phase = "idle"
        self.closed = False
        self.thread: threading.Thread | None = None

    def start(self, trial_id: int) -> bool:
        """The loop runs ``trial_id`` now: name the worker on it (unless deferred) and beat for it.

        Returns False, and keeps no beat, when the trial is finished already: another process
        took the same queued trial (a process outside tuner can, on SQLite) and stored its result.
        """
        if self.name_now:
            try:
                mark_worker(self.storage, trial_id, self.worker)
            except UpdateFinishedTrialError:
                return False
        if self.record is None:
            return True
        with self.changed:
            self.trial_id, self.started = trial_id, time.monotonic()
            # A thread waiting for the first beat of the previous trial wakes by then anyway and
            # times this trial from its start: fast trials then cost no thread switch at all.
            if self.phase != "first" or self.first_wait == 0:
                self.changed.notify()
        if self.thread is None:
            self.thread = threading.Thread(target=self._beat, name="tuner-heartbeat", daemon=True)
            self.thread.start()
        return True

    def stop(self) -> None:
        """The trial is over: no more beats for it (the thread notices when it next wakes)."""
        if self.record is None:
            return
        with self.changed:
            self.trial_id = None

    def close(self) -> None:
        with self.changed:
            self.closed, self.trial_id = True, None
            self.changed.notify()
        if self.thread is not None:
            self.thread.join(timeout=(self.settings.interval if self.settings else 0) + 5)

    def _wait_until(self, trial_id: int, due: float) -> bool:
        """Wait (holding ``changed``) until ``due`` while ``trial_id`` runs; True if it still runs then."""
        while self.trial_id == trial_id and not self.closed and time.monotonic() < due:
            self.changed.wait(max(0.0, due - time.monotonic()))
        return self.trial_id == trial_id and not self.closed

    def _beat(self) -> None:
        assert self.settings is not None and self.record is not None
        while True:
            with self.changed:
                if self.trial_id is None and not self.closed:
                    self.phase = "idle"
                    self.changed.wait()
                if self.closed:
                    break
                if self.trial_id is None:
                    continue
                trial_id = self.trial_id
                self.phase = "first"
                if not self._wait_until(trial_id, self.started + self.first_wait):
                    continue
                self.phase = "beating"
            while True:
                try:
                    self.record(trial_id)
                except UpdateFinishedTrialError:
                    break  # a peer already failed the trial; the worker finds out when it reports
                except Exception:  # a dropped connection: the next beat retries, the grace period absorbs it
                    pass
                with self.changed:
                    if not self._wait_until(trial_id, time.monotonic() + self.settings.interval):
                        break
            with self.changed:  # a trial failed by a peer: wait for the next one rather than beat again
                while self.trial_id == trial_id and not self.closed:
                    self.phase = "idle"
                    self.changed.wait()
        remove = getattr(self.storage, "remove_session", None)
        if remove is not None:
            remove()  # RDB sessions are per thread; close this thread's one


def stale_trial_ids(stored: StoredStudy, settings: Heartbeat | None) -> set[int]:
    """RUNNING trials whose last heartbeat is older than the grace period.

    On RDB storages that is Optuna's own check, plus trials that have no heartbeat yet a grace
    period after a worker that beats late (SQLite: :class:`Pulse`) named itself on them, or after
    they started, unnamed: its worker died between
    creating the trial and naming itself, or a dropped connection made it create one trial twice
    (store/_retry.py). On journal storages a trial without a beat yet counts from its start.
    """
    rdb = rdb_heartbeat(stored.storage)
    if settings is None or not (rdb or isinstance(stored.storage, optuna.storages.JournalStorage)):
        return _optuna.stale_trial_ids(stored.storage, stored.study_id) if rdb else set()
    cutoff = time.time() - settings.grace
    running = stored.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if rdb:
        # Unnamed, or named by a worker that beats late (a worker without heartbeats has no beat to miss).
        old = {_optuna.trial_id(t) for t in running if _beat(t) < cutoff and _late_or_unnamed(t)}
        # tuner's storages retry the read on a dropped connection; a study handed in may have a plain one.
        beaten = getattr(stored.storage, "beaten", functools.partial(_optuna.beaten, stored.storage))
        unbeaten = old - beaten(old)
        return _optuna.stale_trial_ids(stored.storage, stored.study_id) | unbeaten
    return {_optuna.trial_id(t) for t in running if _beat(t) < cutoff}


def _late_or_unnamed(trial: FrozenTrial) -> bool:
    worker = trial.system_attrs.get(schema.WORKER)
    return not isinstance(worker, dict) or bool(worker.get(schema.WORKER_BEATS_LATE))


def _beat(trial: FrozenTrial) -> float:
    """The trial's last beat; its start while its worker has not named itself yet (see ``NAME_AFTER_S``)."""
    worker = trial.system_attrs.get(schema.WORKER)
    beat = worker.get(schema.WORKER_BEAT) if isinstance(worker, dict) else None
    if beat is not None:
        return float(beat)
    return trial.datetime_start.timestamp() if trial.datetime_start else time.time()


def heartbeat_ages(storage: optuna.storages.BaseStorage, trials: list[FrozenTrial]) -> dict[int, float]:
    """Seconds since each trial's last heartbeat, for trials that have one (for ``tuner doctor``)."""
    now = time.time()
    ages = {t.number: now - _beat(t) for t in trials if schema.WORKER in t.system_attrs}
    if not isinstance(storage, optuna.storages.RDBStorage):
        return ages
    # Optuna's heartbeat table holds the database server's clock; compare with it too.
    db_now, beats = _optuna.heartbeat_table(storage)
    if db_now is None:
        return ages
    for trial in trials:
        beat = beats.get(_optuna.trial_id(trial))
        if beat is not None:
            ages[trial.number] = (db_now - beat).total_seconds()
    return ages


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


def running_trials(
    stored: StoredStudy,
    *,
    heartbeat: Heartbeat | None,
    older_than: float | None = None,
    with_ages: bool = False,
) -> list[RunningTrial]:
    """The study's RUNNING trials, each with a status; ``zombie`` ones can be repaired.

    Args:
        stored: The study on its storage.
        heartbeat: The heartbeat settings workers use (its grace period decides "stale").
        older_than: Also count trials running longer than this many seconds as zombies, whatever
            their worker says (for workers without heartbeat on other machines).
        with_ages: Read each trial's heartbeat age (one more query; for display).
    """
    running = stored.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return []
    stale = stale_trial_ids(stored, heartbeat)
    ages = heartbeat_ages(stored.storage, running) if with_ages else {}
    host = socket.gethostname()
    now = datetime.now()
    out = []
    for trial in running:
        worker = trial.system_attrs.get(schema.WORKER) or {}
        w_host, w_pid = worker.get(schema.WORKER_HOST), worker.get(schema.WORKER_PID)
        trial_id = _optuna.trial_id(trial)
        status: Status
        if w_host == host and isinstance(w_pid, int) and not pid_alive(w_pid):
            status, reason = "dead", f"its worker process {w_pid} on {w_host} is gone (killed or crashed)"
        elif trial_id in stale:
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
                trial_id=trial_id,
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
    stored: StoredStudy, trials: Iterable[RunningTrial], *, interrupted: bool = False, retry: bool = True
) -> list[int]:
    """Mark ``trials`` FAIL with their reason; retry each once unless they were ``interrupted`` (Ctrl-C).

    A trial that another process finished meanwhile is left alone. Returns the repaired numbers.
    """
    storage = stored.storage
    retry_callback = _retry_callback(storage) if retry and not interrupted else None
    repaired = []
    for item in trials:
        reason = "interrupted (Ctrl-C) while running" if interrupted else f"worker lost: {item.reason}"
        try:
            storage.set_trial_user_attr(item.trial_id, schema.ERROR, reason)
            storage.set_trial_user_attr(item.trial_id, schema.INTERRUPTED if interrupted else schema.LOST, True)
            storage.set_trial_state_values(item.trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # its worker (or a peer) finished it first
        repaired.append(item.number)
        if retry_callback is not None:
            retry_callback(stored.study, _retry_template(storage.get_trial(item.trial_id)))
    return repaired


def reap(stored: StoredStudy, *, heartbeat: Heartbeat | None, pids: Iterable[int] | None = None) -> list[int]:
    """Repair the study's zombies (all of them, or only those of worker processes ``pids``)."""
    wanted = set(pids) if pids is not None else None
    zombies = [
        t for t in running_trials(stored, heartbeat=heartbeat) if t.zombie and (wanted is None or t.pid in wanted)
    ]
    return repair(stored, zombies) if zombies else []


def _retry_callback(storage: optuna.storages.BaseStorage) -> Any:
    if isinstance(storage, optuna.storages.RDBStorage):
        callback = storage.get_heartbeat_stale_trial_callback()
        if callback is not None:
            return callback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)


def _retry_template(trial: FrozenTrial) -> FrozenTrial:
    # The retry copies the trial's attributes; without this it would inherit the dead worker's PID
    # (and look dead itself) and the repair's error.
    template = copy.deepcopy(trial)
    template.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in schema.REPAIR_ATTRS}
    template.system_attrs = {k: v for k, v in trial.system_attrs.items() if k != schema.WORKER}
    return template


@dataclass(frozen=True)
class Diagnosis:
    """What ``tuner doctor`` found: storage checks, trial counts and the RUNNING trials."""

    stored: StoredStudy
    checks: list[Check]
    counts: dict[str, int]
    running: list[RunningTrial]

    @property
    def study(self) -> optuna.Study:
        return self.stored.study

    @property
    def zombies(self) -> list[RunningTrial]:
        return [t for t in self.running if t.zombie]


def diagnose_storage(name: str, url: str, *, heartbeat: Heartbeat | None, older_than: float | None = None) -> Diagnosis:
    """Check the storage at ``url`` and the RUNNING trials of study ``name`` (nothing is changed).

    Raises:
        StorageError: when the storage cannot be opened or holds no such study.
    """
    storage, checks = check_storage(url, heartbeat=heartbeat)
    stored = load_stored(name, url, storage=storage)
    running = running_trials(stored, heartbeat=heartbeat, older_than=older_than, with_ages=True)
    return Diagnosis(
        stored=stored, checks=checks, counts=counts(stored.study.get_trials(deepcopy=False)), running=running
    )
