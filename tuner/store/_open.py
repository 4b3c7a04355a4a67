"""Storage URLs → Optuna storages with safe settings, and the health checks of ``tuner doctor``.

- default / a path ending in ``.db``: SQLite in WAL mode with a busy timeout, so readers (the
  dashboard, ``tuner show``) do not block the running study;
- a path ending in ``.log``/``.jsonl`` or ``journal:///path``: Optuna's journal file storage;
- ``postgresql://…``, ``mysql+pymysql://…``: Optuna's RDB storage with pool pre-ping/recycle;
- ``redis://…``: Optuna's journal storage on Redis;
- ``memory://``: Optuna's in-memory storage (this process only; nothing is kept).
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalRedisBackend

from tuner import _optuna
from tuner.errors import StorageError, StorageUnavailable, did_you_mean
from tuner.store._integrity import opening, quick_check, refuse_damaged, watch
from tuner.store._retry import POLICY, RetryingJournalStorage, RetryingRDBStorage, causes, is_dropped
from tuner.store._urls import file_of, kind_of, redact, scrub

_SQLITE_BUSY_TIMEOUT_S = 60


@dataclass(frozen=True)
class Heartbeat:
    """How often a worker proves it is alive, and how long after its last beat its trial counts as lost.

    ``grace`` must exceed ``interval`` by enough to ride out a slow storage; a lost trial is marked
    FAIL and retried once with the same parameters.
    """

    interval: int = 15
    grace: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.interval < self.grace:
            raise ValueError(f"heartbeat needs 0 < interval < grace, got interval={self.interval}, grace={self.grace}")


DEFAULT_HEARTBEAT = Heartbeat()


@dataclass(frozen=True)
class StoredStudy:
    """A study opened on its storage: the Optuna study, the storage object it was opened on
    (the study reads through Optuna's cache of it), the URL and the study's id there."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage
    url: str
    study_id: int


def open_storage(url: str, *, heartbeat: Heartbeat | None = None) -> optuna.storages.BaseStorage:
    """Open (creating when needed) the storage at ``url``; raises :class:`StorageError`.

    Args:
        url: An Optuna storage URL, ``journal:///path``, ``redis://…`` or ``memory://``.
        heartbeat: For storages that run trials: enables Optuna's heartbeat on RDB storages, with a
            stale-trial callback that retries a lost trial once. Readers leave it out.
    """
    kind = kind_of(url)
    try:
        if kind == "memory":
            return optuna.storages.InMemoryStorage()
        if kind == "sqlite":
            return _sqlite(url, heartbeat)
        if kind == "journal":
            return _journal_file(Path(url.removeprefix("journal:///")))
        if kind == "redis":
            return _redis(url)
        _quiet_pool()
        return _with_schema_retries(lambda: _rdb(url, _server_engine_kwargs(url), heartbeat))
    except StorageError:
        raise
    except ImportError as exc:
        # Optuna wraps a missing database driver in a bare ImportError; the module is on the cause.
        module = exc.name or getattr(exc.__cause__, "name", None) or ""
        raise StorageError(
            f"cannot open storage {redact(url)}: the database driver {module or '(unknown)'!r} is not installed. "
            f"Install it (e.g. `pip install {_driver_hint(module)}`), or name an installed driver in the URL "
            "(e.g. `postgresql+psycopg2://…`), and run again."
        ) from None
    except Exception as exc:  # sqlalchemy/redis raise many types; all mean "cannot open"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if kind in ("sqlite", "journal"):
            hint = (
                "Check that the file is a study storage (made by tuner or Optuna), that its folder is writable, "
                "and that the disk has room"
            )
        else:
            hint = (
                "Check that the server is running and reachable and that the URL is right "
                "(scheme://user@host:port/database)"
            )
        raise StorageError(
            f"cannot open storage {redact(url)}: {scrub(first, url)}. {hint}; nothing was written."
        ) from None


def open_existing(url: str) -> optuna.storages.BaseStorage:
    """Open a storage only to read it: a missing SQLite or journal file is an error, not created."""
    path = file_of(url)
    if path is not None and not path.is_file():
        raise StorageError(
            f"no study storage at {url}: the file does not exist. Run a study first, or point "
            "--storage (or $TUNER_STORAGE) at the file, the spec, or the folder that holds tuner.db."
        )
    return open_storage(url)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    # Not get_all_study_summaries: it reads (and deep-copies) every trial of every study.
    return [s.study_name for s in storage.get_all_studies()]


def load_stored(name: str, url: str, *, storage: optuna.storages.BaseStorage | None = None) -> StoredStudy:
    """Open study ``name`` on ``url`` (an existing storage); a missing one is an error that lists those there."""
    storage = storage if storage is not None else open_existing(url)
    names = study_names(storage)
    if name not in names:
        raise StorageError(
            f"no study named {name!r} in {redact(url)}.{did_you_mean(name, names)} Studies there: "
            f"{', '.join(sorted(names)) or 'none'}. Pass the spec file instead of the name, or point --storage "
            "at the right database."
        )
    study = optuna.load_study(study_name=name, storage=storage)
    return StoredStudy(study, storage, url, storage.get_study_id_from_name(name))


def _rdb(url: str, engine_kwargs: dict[str, Any], heartbeat: Heartbeat | None) -> optuna.storages.BaseStorage:
    with warnings.catch_warnings():
        # Heartbeats have been "experimental" since Optuna 2.9; the warning would reach users' terminals.
        warnings.simplefilter("ignore", ExperimentalWarning)
        options: dict[str, Any] = {}
        if heartbeat is not None:
            options = {
                "heartbeat_interval": heartbeat.interval,
                "grace_period": heartbeat.grace,
                "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
            }
        return RetryingRDBStorage(url, engine_kwargs=engine_kwargs, **options)


def _sqlite(url: str, heartbeat: Heartbeat | None) -> optuna.storages.BaseStorage:
    path = Path(url.removeprefix("sqlite:///"))
    if not path.parent.is_dir():
        raise StorageError(
            f"cannot open storage {url}: folder {str(path.parent)!r} does not exist. Create it or point "
            "`storage` (or --storage) at an existing folder."
        )
    if path.is_file() and _on_read_only_media(path):
        if heartbeat is not None:  # a run or a worker: it would write trials
            raise StorageUnavailable(
                f"the SQLite storage file {path} is on read-only media: it can be read (`tuner show`, `export`, "
                "`report`) but trials cannot be written to it. Copy it to a writable folder and point `storage` "
                "(or --storage) at the copy to go on with the study."
            )
        return _read_only_sqlite(path)
    refuse_damaged(path, timeout=_SQLITE_BUSY_TIMEOUT_S)
    with opening(path):
        # WAL lets readers work while a study writes; it is a property of the file, so set it once
        # before SQLAlchemy opens its pool.
        with sqlite3.connect(path, timeout=_SQLITE_BUSY_TIMEOUT_S) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        storage = _with_schema_retries(
            lambda: _rdb(url, {"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_S}}, heartbeat)
        )
        _set_sqlite_connection_modes(storage)
    watch(storage.engine, path)
    return storage


def _on_read_only_media(path: Path) -> bool:
    """The file sits on a file system mounted read-only (a DVD, a read-only share, a snapshot)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows): open as usual
        return False


def _read_only_sqlite(path: Path) -> optuna.storages.BaseStorage:
    """A study on read-only media, opened to be read (``tuner show``, ``export``, ``report``).

    SQLite needs to create a WAL file's shared-memory index even to read it, unless told the file
    is immutable, which it is on read-only media. A study copied while a run had it open comes
    with its ``-wal`` and ``-shm`` files, which SQLite then reads as they are (immutable would
    ignore the WAL's trials).
    """
    with_wal = Path(f"{path}-wal").is_file() and Path(f"{path}-shm").is_file()
    url = f"sqlite:///file:{path}?mode=ro{'' if with_wal else '&immutable=1'}&uri=true"
    return _rdb(url, {"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_S}}, None)


def _with_schema_retries(open_: Callable[[], Any]) -> Any:
    """Open an RDB storage, retrying while another process creates the same fresh schema, or
    while the server ends connections, with the pauses of the retry policy (store/_retry.py).

    Several processes that open a new database at once (``tuner worker`` on many machines, ``tuner
    run`` and ``tuner dashboard``, a reader polling a study that is starting) all try to create
    Optuna's tables. The losers fail on what the winner made meanwhile: a table or type that
    "already exists", the version table's unique key, or (SQLite) a locked file. Creating the
    schema skips what exists, so a retry completes it; the jitter keeps the losers from colliding
    again. Any other error (a server that is down, a wrong password) is raised at once. After a
    retry, indexes that an interrupted creation left out are created (MySQL commits DDL statement
    by statement).
    """
    from sqlalchemy.exc import IntegrityError  # start-up time: only RDB storages need it

    pauses = POLICY.pauses()
    retried = False
    while True:
        try:
            storage = open_()
            if retried:
                _optuna.create_missing_indexes(storage)
            return storage
        except Exception as exc:  # Optuna wraps some driver errors in its StorageInternalError
            again = is_dropped(exc) or any(
                isinstance(cause, IntegrityError)
                or any(text in str(cause) for text in ("already exists", "database is locked"))
                for cause in causes(exc)
            )
            pause = next(pauses, None) if again else None
            if pause is None:
                raise
            retried = True
            time.sleep(random.uniform(0.5, 1.0) * pause)


def _set_sqlite_connection_modes(storage: Any) -> None:
    """Set the pragmas and the transaction mode on each of the storage's connections.

    In WAL mode synchronous=NORMAL survives a crash or kill -9 of any process; only a power cut can
    lose the last commits. Optuna commits several times per trial, and FULL (the default) syncs the
    disk on each of them.

    Python's sqlite3 driver starts a transaction only at the first write, so Optuna's "read the
    trial's state, then write it" runs unlocked: two processes could both pop one queued trial and
    run it twice, or a zombie repair could overwrite a result stored a moment before. ``BEGIN
    IMMEDIATE`` takes the write lock at the start of each transaction, which makes every Optuna
    call atomic across processes (others wait up to the busy timeout), as row locks do on servers.
    """
    from sqlalchemy import event  # start-up time: only RDB storages need it

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.isolation_level = None  # the driver's own BEGIN would come too late

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(storage.engine, "connect", on_connect)
    event.listen(storage.engine, "begin", on_begin)
    storage.engine.dispose()  # connections opened while creating the schema lack these


def _journal_file(path: Path) -> optuna.storages.BaseStorage:
    if not path.parent.is_dir():
        raise StorageError(f"cannot open journal storage: folder {str(path.parent)!r} does not exist.")
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return RetryingJournalStorage(backend)


def _redis(url: str) -> optuna.storages.BaseStorage:
    import redis  # optional extra: tuner[redis]

    # `?prefix=NAME` namespaces the journal's keys, so several journals can share one Redis database.
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for key, value in query if key == "prefix"), "")
    url = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "prefix"])))
    redis.Redis.from_url(url).ping()  # fail now, with a clear message, rather than at the first trial
    with warnings.catch_warnings():
        # Optuna marks the Redis journal "experimental"; the warning would reach users' terminals at every command.
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RetryingJournalStorage(JournalRedisBackend(url, prefix=prefix))


def _quiet_pool() -> None:
    # When a server ends a connection, SQLAlchemy's pool logs a traceback as it discards it ("Exception
    # during reset or similar"). The retry policy (store/_retry.py) handles the drop and says so in
    # one line; the pool's traceback would only alarm.
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)


def _server_engine_kwargs(url: str) -> dict[str, Any]:
    # pre-ping replaces connections the server dropped while idle; recycle stays under MySQL's
    # default wait_timeout. A short connect timeout makes an unreachable server fail fast.
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": 3600}
    if url.startswith("postgresql") or url.startswith("mysql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    return kwargs


def _driver_hint(module: str) -> str:
    return {
        "psycopg2": "psycopg2-binary",
        "psycopg": "'psycopg[binary]'",
        "pymysql": "pymysql",
        "MySQLdb": "mysqlclient",
        "redis": "redis",
    }.get(module, module)


@dataclass(frozen=True)
class Check:
    """One line of the storage check: what was checked, whether it is fine, and the detail."""

    name: str
    ok: bool
    detail: str


def check_storage(url: str, *, heartbeat: Heartbeat | None = None) -> tuple[optuna.storages.BaseStorage, list[Check]]:
    """Open the storage at ``url`` and check it: connection, schema version, SQLite journal mode.

    Returns the opened storage and the checks. Raises :class:`~tuner.errors.StorageError` when it
    cannot be opened at all.
    """
    storage = open_storage(url, heartbeat=heartbeat)
    checks = [Check("connect", True, f"opened {redact(url)}")]
    if isinstance(storage, optuna.storages.RDBStorage):
        current, head = storage.get_current_version(), storage.get_head_version()
        checks.append(
            Check(
                "schema",
                current == head,
                f"version {current}"
                + ("" if current == head else f", Optuna expects {head}: run `optuna storage upgrade`"),
            )
        )
    path = file_of(url)
    if path is not None and kind_of(url) == "sqlite":
        checks.append(_sqlite_mode(path))
        found = quick_check(path, timeout=_SQLITE_BUSY_TIMEOUT_S)
        checks.append(Check("integrity", found is None, found or "PRAGMA quick_check: ok"))
    if path is not None and kind_of(url) == "journal":
        checks.append(_journal_lock(path))
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
