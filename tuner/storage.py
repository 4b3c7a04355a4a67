"""Storage URLs → Optuna storages with safe settings. Credentials are never printed.

- default / a path ending in ``.db``: SQLite in WAL mode with a busy timeout, so readers (the
  dashboard, ``tuner show``) do not block the running study;
- a path ending in ``.log``/``.jsonl`` or ``journal:///path``: Optuna's journal file storage;
- ``postgresql://…``, ``mysql+pymysql://…``: Optuna's RDB storage with pool pre-ping/recycle;
- ``redis://…``: Optuna's journal storage on Redis.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.errors import StorageError

if TYPE_CHECKING:
    import optuna

DEFAULT_FILE = "tuner.db"
_JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
_SQLITE_BUSY_TIMEOUT_S = 60


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


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    creds, _, host = rest.partition("@")
    user, has_password, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"


def _password(url: str) -> str | None:
    rest = url.partition("://")[2]
    creds = rest.split("/", 1)[0].rpartition("@")[0]
    return creds.partition(":")[2] or None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open (creating when needed) the storage at ``url``; raises :class:`StorageError`."""
    import optuna

    try:
        if url.startswith("sqlite:///"):
            return _sqlite(url)
        if url.startswith("journal:///"):
            return _journal_file(Path(url.removeprefix("journal:///")))
        if url.startswith(("redis://", "rediss://")):
            return _redis(url)
        return optuna.storages.RDBStorage(url, engine_kwargs=_server_engine_kwargs(url))
    except StorageError:
        raise
    except ModuleNotFoundError as exc:
        raise StorageError(
            f"cannot open storage {redact(url)}: the driver module {exc.name!r} is not installed. "
            f"Install it (e.g. `pip install {_driver_hint(exc.name or '')}`) and run again."
        ) from None
    except Exception as exc:  # sqlalchemy/redis raise many types; all mean "cannot open"
        raise StorageError(
            f"cannot open storage {redact(url)}: {_scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, url)}. "
            "Check that the server is running and reachable and that the URL is right "
            "(scheme://user@host:port/database); nothing was written."
        ) from None


def _sqlite(url: str) -> optuna.storages.BaseStorage:
    import optuna

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
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_S}})


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

    backend = JournalRedisBackend(url)
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
        "pymysql": "pymysql",
        "MySQLdb": "mysqlclient",
        "redis": "redis",
    }.get(module, module)


def _scrub(text: str, url: str) -> str:
    password = _password(url)
    return text.replace(password, "***") if password else text
