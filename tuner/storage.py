"""Storage URLs → Optuna storages with safe settings. Credentials are never printed.

- default / a path ending in ``.db``: SQLite in WAL mode with a busy timeout, so readers (the
  dashboard, ``tuner show``) do not block the running study;
- a path ending in ``.log``/``.jsonl`` or ``journal:///path``: Optuna's journal file storage;
- ``postgresql://…``, ``mysql+pymysql://…``: Optuna's RDB storage with pool pre-ping/recycle;
- ``redis://…``: Optuna's journal storage on Redis;
- ``memory://``: Optuna's in-memory storage (this process only; nothing is kept).

Workers keep a heartbeat on their running trial (Optuna's own on RDB storages, a timestamp
system attribute on journal storages, which have none), so a trial whose worker died can be told
from one that is still running: see :func:`stale_trial_ids` and :mod:`tuner.doctor`.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tuner.errors import StorageError

if TYPE_CHECKING:
    import optuna

DEFAULT_FILE = "tuner.db"
# Optuna's in-memory storage: one process, nothing kept after it ends (benchmarks, notebooks).
MEMORY_URL = "memory://"
_JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
_SQLITE_BUSY_TIMEOUT_S = 60
# Trial system attribute naming the worker process ({"host", "pid", "beat"}); on journal storages
# its "beat" (unix time) is the trial's heartbeat.
ATTR_WORKER = "tuner:worker"


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


def resolve_url(value: str | None, *, base_dir: Path) -> str:
    """Turn a spec/CLI storage value into a URL; plain paths are relative to ``base_dir``."""
    if value is None:
        return f"sqlite:///{(base_dir / DEFAULT_FILE).resolve()}"
    if "://" in value:
        return value
    path = (base_dir / value).resolve()
    if path.suffix in _JOURNAL_SUFFIXES:
        return f"journal:///{path}"
    return f"sqlite:///{path}"


_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)[^&]*")


def redact(url: str) -> str:
    """The URL with any password (in the credentials or the query string) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest = _QUERY_SECRET.sub(r"\1***", rest)
    # The last '@' ends the credentials: a password may itself hold an unescaped '@'.
    creds, at, host = rest.rpartition("@")
    if not at or "/" in creds.partition(":")[0]:
        return f"{scheme}://{rest}"
    user, has_password, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"


def _password(url: str) -> str | None:
    rest = url.partition("://")[2]
    creds = rest.rpartition("@")[0]
    return creds.partition(":")[2] or None


def read_url_file(path: Path) -> str:
    """The storage URL kept in a file (first non-empty line), so it stays out of ``ps`` and shell history."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise StorageError(
            f"cannot read the storage URL from {str(path)!r}: {exc.strerror or exc}. "
            "Pass a readable file holding one URL (e.g. postgresql://user:password@host/db)."
        ) from None
    url = next((line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")), None)
    if url is None:
        raise StorageError(f"{str(path)!r} holds no storage URL; write one URL on its first line.")
    return url


def open_existing(url: str) -> optuna.storages.BaseStorage:
    """Open a storage only to read it: a missing SQLite or journal file is an error, not created."""
    for prefix in ("sqlite:///", "journal:///"):
        if url.startswith(prefix) and not Path(url.removeprefix(prefix)).is_file():
            raise StorageError(
                f"no study storage at {url}: the file does not exist. Run a study first, or point "
                "--storage (or $TUNER_STORAGE) at the file, the spec, or the folder that holds tuner.db."
            )
    return open_storage(url)


def open_storage(url: str, *, heartbeat: Heartbeat | None = None) -> optuna.storages.BaseStorage:
    """Open (creating when needed) the storage at ``url``; raises :class:`StorageError`.

    Args:
        url: An Optuna storage URL, ``journal:///path`` or ``redis://…``.
        heartbeat: For storages that run trials: enables Optuna's heartbeat on RDB storages, with a
            stale-trial callback that retries a lost trial once. Readers leave it out.
    """
    try:
        if url == MEMORY_URL:
            import optuna

            return optuna.storages.InMemoryStorage()
        if url.startswith("sqlite:///"):
            return _sqlite(url, heartbeat)
        if url.startswith("journal:///"):
            return _journal_file(Path(url.removeprefix("journal:///")))
        if url.startswith(("redis://", "rediss://", "unix://")):
            return _redis(url)
        return _rdb(url, _server_engine_kwargs(url), heartbeat)
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
        raise StorageError(
            f"cannot open storage {redact(url)}: {_scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, url)}. "
            "Check that the server is running and reachable and that the URL is right "
            "(scheme://user@host:port/database); nothing was written."
        ) from None


def _rdb(url: str, engine_kwargs: dict[str, Any], heartbeat: Heartbeat | None) -> optuna.storages.BaseStorage:
    import optuna
    from optuna.exceptions import ExperimentalWarning

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
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **options)


def _sqlite(url: str, heartbeat: Heartbeat | None) -> optuna.storages.BaseStorage:
    path = Path(url.removeprefix("sqlite:///"))
    if not path.parent.is_dir():
        raise StorageError(
            f"cannot open storage {url}: folder {str(path.parent)!r} does not exist. Create it or point "
            "`storage` (or --storage) at an existing folder."
        )
    # WAL lets readers work while a study writes; it is a property of the file, so set it once
    # before SQLAlchemy opens its pool.
    with sqlite3.connect(path, timeout=_SQLITE_BUSY_TIMEOUT_S) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    storage = _with_schema_retries(lambda: _rdb(url, {"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_S}}, heartbeat))
    _relax_sqlite_sync(storage)
    return storage


def _with_schema_retries(open_: Any, attempts: int = 5) -> Any:
    """Open an RDB storage, retrying while another process is creating the same fresh schema.

    Two processes that open a new SQLite file at once (``tuner run`` and ``tuner dashboard``,
    or a reader polling a study that is starting) both try to create Optuna's tables; the loser
    fails on the version table's unique key although the schema is then complete.
    """
    import time

    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(attempts):
        try:
            return open_()
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _relax_sqlite_sync(storage: Any) -> None:
    # In WAL mode synchronous=NORMAL survives a crash or kill -9 of any process; only a power cut
    # can lose the last commits. Optuna commits several times per trial, and FULL (the default)
    # syncs the disk on each of them.
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened while creating the schema lack the pragma


def _journal_file(path: Path) -> optuna.storages.BaseStorage:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if not path.parent.is_dir():
        raise StorageError(f"cannot open journal storage: folder {str(path.parent)!r} does not exist.")
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return optuna.storages.JournalStorage(backend)


def _redis(url: str) -> optuna.storages.BaseStorage:
    import optuna
    from optuna.storages.journal import JournalRedisBackend

    # `?prefix=NAME` namespaces the journal's keys, so several journals can share one Redis database.
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for key, value in query if key == "prefix"), "")
    url = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "prefix"])))
    backend = JournalRedisBackend(url, prefix=prefix)
    backend._redis.ping()  # fail now, with a clear message, rather than at the first trial
    return optuna.storages.JournalStorage(backend)


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


def _scrub(text: str, url: str) -> str:
    password = _password(url)
    return text.replace(password, "***") if password else text


def is_transient(exc: BaseException) -> bool:
    """Errors that a retry can cure: a dropped connection, a locked SQLite file, a Redis hiccup."""
    from optuna.exceptions import StorageInternalError

    if isinstance(exc, StorageInternalError | ConnectionError | TimeoutError):
        return True
    return type(exc).__module__.split(".")[0] in ("sqlalchemy", "redis", "psycopg2", "psycopg", "pymysql")


def is_server(url: str) -> bool:
    """True for storages that other machines reach (PostgreSQL, MySQL, Redis), not a local file or memory."""
    return not (url == MEMORY_URL or url.startswith(("sqlite:///", "journal:///")))


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Store several user attributes of a running trial, in one transaction on RDB storages.

    Optuna commits each ``set_user_attr`` on its own; on the default SQLite storage the ten or so
    attributes of a trial's diagnostics then cost more CPU than fitting a small model. One
    transaction writes the same rows, all of them or (on any error) none. Other storages (and an
    Optuna without the RDB internals used here) get one ``set_user_attr`` per key. Raises what
    ``set_user_attr`` raises, e.g. ``UpdateFinishedTrialError`` when a peer has finished the trial.
    """
    backend = getattr(trial.storage, "_backend", trial.storage)
    write = getattr(backend, "_set_trial_attr_without_commit", None)
    session_of = getattr(backend, "scoped_session", None)
    if write is not None and session_of is not None:
        try:
            from optuna.storages._rdb.models import TrialUserAttributeModel
            from optuna.storages._rdb.storage import _create_scoped_session
        except ImportError:
            write = None
    if write is None or session_of is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    with _create_scoped_session(session_of) as session:
        for key, value in attrs.items():
            write(session, TrialUserAttributeModel, trial._trial_id, key, value)
    # What Trial.set_user_attr keeps in step, so trial.user_attrs shows them in this process too.
    trial._cached_frozen_trial.user_attrs.update(attrs)


def mark_worker(storage: optuna.storages.BaseStorage, trial_id: int, worker: dict[str, Any]) -> None:
    """Name the process running the trial; on journal storages this is also its heartbeat."""
    storage.set_trial_system_attr(trial_id, ATTR_WORKER, {**worker, "beat": time.time()})


# On journal files a trial is named (its first beat) this long after it starts, so that trials
# shorter than this cost no write for it; until then its start time stands in for the beat.
NAME_AFTER_S = 1.0


class Pulse:
    """Names each trial's worker and keeps its heartbeat, from one thread per trial loop.

    RDB storages get their worker named at once and Optuna's heartbeat record from the start of
    the trial, then every ``settings.interval`` seconds. Journal storages (file, Redis) have no
    heartbeat of their own: the ``beat`` in the trial's worker attribute is renewed instead. On a
    journal file the worker is named only after ``NAME_AFTER_S`` (a shorter trial costs no write;
    :func:`stale_trial_ids` counts its start as the first beat). Without ``settings`` the worker
    is named and nothing beats; on the in-memory storage, which no other process sees, nothing is
    written at all.
    """

    def __init__(
        self, storage: optuna.storages.BaseStorage, settings: Heartbeat | None, worker: dict[str, Any]
    ) -> None:
        from optuna.storages import InMemoryStorage, JournalStorage
        from optuna.storages._heartbeat import is_heartbeat_enabled

        self.storage, self.settings, self.worker = storage, settings, worker
        self.record: Any = None
        self.first_wait = 0.0
        # No other process sees an in-memory storage, so there is no one to tell who runs a trial.
        self.name_now = not isinstance(storage, InMemoryStorage)
        if settings is None:
            pass
        elif is_heartbeat_enabled(storage):
            self.record = getattr(storage, "record_heartbeat")  # noqa: B009 - BaseHeartbeat is not BaseStorage API
        elif isinstance(storage, JournalStorage):
            self.record = lambda trial_id: mark_worker(storage, trial_id, worker)
            if is_journal_file(storage):
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

    def start(self, trial_id: int) -> None:
        """The loop runs ``trial_id`` now: name the worker on it (unless deferred) and beat for it."""
        if self.name_now:
            mark_worker(self.storage, trial_id, self.worker)
        if self.record is None:
            return
        with self.changed:
            self.trial_id, self.started = trial_id, time.monotonic()
            # A thread waiting for the first beat of the previous trial wakes by then anyway and
            # times this trial from its start: fast trials then cost no thread switch at all.
            if self.phase != "first" or self.first_wait == 0:
                self.changed.notify()
        if self.thread is None:
            self.thread = threading.Thread(target=self._beat, name="tuner-heartbeat", daemon=True)
            self.thread.start()

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
        from optuna.exceptions import UpdateFinishedTrialError

        assert self.settings is not None
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


def is_journal_file(storage: optuna.storages.BaseStorage) -> bool:
    from optuna.storages.journal import JournalFileBackend

    return isinstance(getattr(storage, "_backend", None), JournalFileBackend)


def stale_trial_ids(storage: optuna.storages.BaseStorage, study_id: int, settings: Heartbeat | None) -> set[int]:
    """RUNNING trials whose last heartbeat is older than the grace period.

    On RDB storages that is Optuna's own check (trials without a heartbeat record are never
    stale); on journal storages a trial without a beat yet counts from its start.
    """
    from optuna.storages import JournalStorage
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    if is_heartbeat_enabled(storage):
        return set(getattr(storage, "_get_stale_trial_ids")(study_id))  # noqa: B009
    if settings is None or not isinstance(storage, JournalStorage):
        return set()
    cutoff = time.time() - settings.grace
    running = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    return {t._trial_id for t in running if _beat(t) < cutoff}


def _beat(trial: optuna.trial.FrozenTrial) -> float:
    """The trial's last beat; its start while its worker has not named itself yet (see ``NAME_AFTER_S``)."""
    worker = trial.system_attrs.get(ATTR_WORKER)
    beat = worker.get("beat") if isinstance(worker, dict) else None
    if beat is not None:
        return float(beat)
    return trial.datetime_start.timestamp() if trial.datetime_start else time.time()


def heartbeat_ages(storage: optuna.storages.BaseStorage, trials: list[optuna.trial.FrozenTrial]) -> dict[int, float]:
    """Seconds since each trial's last heartbeat, for trials that have one (for ``tuner doctor``)."""
    now = time.time()
    ages = {t.number: now - _beat(t) for t in trials if ATTR_WORKER in t.system_attrs}
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if engine is None:
        return ages
    import sqlalchemy

    ids = {t._trial_id: t.number for t in trials}
    with engine.connect() as conn:
        # Optuna's trial_heartbeats table holds the database server's clock; compare with it too.
        db_now = conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
        rows = conn.execute(sqlalchemy.text("SELECT trial_id, heartbeat FROM trial_heartbeats")).all()
    for trial_id, beat in rows:
        if trial_id in ids and beat is not None and db_now is not None:
            ages[ids[trial_id]] = (_as_datetime(db_now) - _as_datetime(beat)).total_seconds()
    return ages


def _as_datetime(value: Any) -> Any:
    from datetime import datetime

    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=None)
