"""One retry policy for every storage call: a dropped connection or a busy file costs a reconnect, not the run.

Every storage that ``open_storage`` hands out (SQLite, server databases, journal files, Redis)
is one of the classes below: Optuna's own storage with each of its calls wrapped. A call that
fails on a transient error (the server closed the connection, a failover, a locked SQLite file,
a Redis timeout) is made again after a growing pause, up to :data:`POLICY`'s cap; SQLAlchemy
replaces a connection that broke, so the next attempt reconnects. When the cap is reached the
call raises :class:`~tuner.errors.StorageUnavailable` (exit code 1): the worker stops, its
running trial is left RUNNING and the next run repairs it as a lost trial (marked, retried once,
never counted). Errors that a retry cannot cure (a malformed database, a full disk, an integrity
error, a trial already finished) are raised at once.

Only the outermost call retries: a storage method that calls another of its own methods would
otherwise multiply the attempts.

A write whose commit went through just before the connection dropped is made twice. Optuna's
writes of values and attributes are idempotent, and a trial finished twice raises
``UpdateFinishedTrialError``, which the trial loop reads as "stored". Creating a trial is not
idempotent: in that rare case one extra trial stays RUNNING with no worker named on it, which
``tuner doctor --older-than`` repairs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import optuna

from tuner import _optuna
from tuner.errors import StorageUnavailable
from tuner.store._urls import redact, scrub

_log = logging.getLogger("tuner")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all, pausing ``first_delay`` seconds before the second, doubling up to ``max_delay``."""

    attempts: int = 8
    first_delay: float = 0.25
    max_delay: float = 8.0

    def pauses(self) -> Iterator[float]:
        """The pause before each attempt after the first (about 24 s in all by default)."""
        for attempt in range(self.attempts - 1):
            yield min(self.max_delay, self.first_delay * 2**attempt)


POLICY = RetryPolicy()

# Driver error classes that mean "the connection or the server hiccuped", by module and name, so
# that no optional driver is imported to name them.
_TRANSIENT_NAMES = frozenset(
    {
        "OperationalError",
        "InterfaceError",
        "DisconnectionError",
        "PendingRollbackError",
        "TimeoutError",
        "ConnectionError",
        "BusyLoadingError",
    }
)
_TRANSIENT_MODULES = frozenset({"sqlalchemy", "psycopg2", "psycopg", "pymysql", "MySQLdb", "redis", "sqlite3"})
# An OperationalError with one of these texts is a lasting fault of the file or the disk.
_LASTING = ("malformed", "disk is full", "disk full", "readonly", "read-only", "no such table", "not a database")


def is_transient(exc: BaseException) -> bool:
    """An error that a retry can cure: a dropped connection, a busy SQLite file, a Redis hiccup.

    Optuna wraps driver errors (``StorageInternalError`` from SQLAlchemy's), so the chain of causes
    is searched for the driver's own error.
    """
    for current in causes(exc):
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        kind = type(current)
        if kind.__module__.split(".")[0] in _TRANSIENT_MODULES and kind.__name__ in _TRANSIENT_NAMES:
            text = str(current).lower()
            return not any(lasting in text for lasting in _LASTING)
    return False


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it was raised from, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        # `raise … from None` means the error before it is no longer the story.
        current = (
            current.__cause__ if current.__cause__ is not None or current.__suppress_context__ else current.__context__
        )


# Texts of a connection that was open and then ended (by an administrator, a failover, a restart),
# as opposed to one that could not be made (a server down, a wrong port or password).
_DROPPED = (
    "closed the connection",
    "terminating connection",
    "lost connection",
    "gone away",
    "connection already closed",
    "connection was killed",
    "query execution was interrupted",
)


def is_dropped(exc: BaseException) -> bool:
    """A connection that the server ended while in use: opening the storage again will likely work."""
    return any(dropped in str(cause).lower() for cause in causes(exc) for dropped in _DROPPED)


_depth = threading.local()
F = TypeVar("F", bound=Callable[..., Any])


def _retrying(method: F) -> F:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_depth, "inside", False):
            return method(self, *args, **kwargs)
        _depth.inside = True
        try:
            pauses = POLICY.pauses()
            while True:
                try:
                    return method(self, *args, **kwargs)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    pause = next(pauses, None)
                    if pause is None:
                        raise _unavailable(self, exc) from exc
                    # A session whose connection broke mid-transaction refuses further work until
                    # it is rolled back; start the next attempt from a new one.
                    _reset_session(self)
                    _log.warning(
                        "storage call %s failed (%s); retrying in %.2g s",
                        method.__name__,
                        _first_line(self, exc),
                        pause,
                    )
                    time.sleep(pause)
        finally:
            _depth.inside = False

    return call  # type: ignore[return-value]


def _reset_session(storage: Any) -> None:
    remove = getattr(storage, "remove_session", None)
    if remove is not None:
        # Closing a broken connection can fail too; the next attempt opens a new one anyway.
        with contextlib.suppress(Exception):
            remove()


def _first_line(storage: Any, exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    url = getattr(storage, "url", None)
    text = scrub(text, url) if isinstance(url, str) else text
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _unavailable(storage: Any, exc: BaseException) -> StorageUnavailable:
    url = getattr(storage, "url", None)
    where = redact(url) if isinstance(url, str) else "the study storage"
    return StorageUnavailable(
        f"{where} stopped answering: {_first_line(storage, exc)} (retried for about "
        f"{sum(POLICY.pauses()):.0f} s). Completed trials are kept. Check that the server (or the disk) is "
        "back, then run again: a trial left running is repaired and retried, and the run finishes the budget."
    )


def _with_retries(cls: type) -> type:
    for name in _optuna.STORAGE_CALLS:
        method = getattr(cls, name, None)
        if method is not None:
            setattr(cls, name, _retrying(method))
    return cls


@_with_retries
class RetryingRDBStorage(_optuna.LeanRDBStorage):
    """Optuna's RDB storage (SQLite, PostgreSQL, MySQL) whose calls follow :data:`POLICY`, and
    with fewer and cheaper round trips per trial (:class:`tuner._optuna.LeanRDBStorage`)."""

    @_retrying
    def write_params(self, trial_id: int, params: Sequence[_optuna.HeldParam]) -> None:
        """Parameters of a trial in one transaction."""
        super().write_params(trial_id, params)

    @_retrying
    def set_trial_user_attrs(
        self,
        trial_id: int,
        attrs: Mapping[str, Any],
        *,
        study_system_attrs: Mapping[str, Any] | None = None,
        intermediate_values: Mapping[int, float] | None = None,
    ) -> None:
        """Several user attributes of a trial in one transaction (a trial's diagnostics, with its
        optuna-dashboard note in the study's system attributes and its reports held since its last write)."""
        _optuna.write_user_attrs(
            self, trial_id, attrs, study_system_attrs=study_system_attrs, intermediate_values=intermediate_values
        )

    @_retrying
    def beaten(self, trial_ids: Collection[int]) -> set[int]:
        """Which of ``trial_ids`` have a heartbeat row (:func:`tuner._optuna.beaten`)."""
        return _optuna.beaten(self, trial_ids)

    @_retrying
    def read_trials(self, study_id: int, **options: Any) -> list[optuna.trial.FrozenTrial]:
        """Trials read with plain SQL (:func:`tuner._optuna.rdb_trials`, the same options)."""
        return _optuna.rdb_trials(self, study_id, **options)


@_with_retries
class RetryingJournalStorage(optuna.storages.JournalStorage):
    """Optuna's journal storage (a file, Redis) whose calls follow :data:`POLICY`."""
