"""Every storage a study can live on, one supplier per kind (as Optuna's ``StorageSupplier``).

``supply(kind, folder)`` yields a :class:`Backend`: a SQLite file or a journal file in ``folder``,
or a fresh PostgreSQL database, MariaDB/MySQL database or Redis key prefix, removed afterwards.

A server that is not reachable skips the test with the reason, unless TUNER_REQUIRE_SERVICES=1
(set by .ci/run), where it fails: CI must prove the server tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tuner.store import MEMORY_URL, resolve_url

# The backends of the contract suite, in the order the tests list them.
STORAGE_MODES = ("sqlite", "journal", "postgresql", "mysql", "redis")
SERVERS = ("postgresql", "mysql", "redis")
RDB = ("sqlite", "postgresql", "mysql")

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
REDIS = {"host": "127.0.0.1", "port": 6379}
# A server that is down refuses a connection at once; this bound is for one too loaded to answer
# quickly (a CI machine running other jobs), which must not count as "not usable".
CONNECT_S = 30


@dataclass(frozen=True)
class Backend:
    """One storage for one test: what a spec's ``storage:`` says and the URL it resolves to."""

    kind: str
    storage: str  # the spec's `storage:` value: a file name (relative to the spec) or a server URL
    url: str

    @property
    def rdb(self) -> bool:
        """An RDB storage: Optuna's heartbeat table, and several attributes in one transaction."""
        return self.kind in RDB

    @property
    def names_late(self) -> bool:
        """A journal file names a trial's worker one second into the trial (a shorter one costs no write)."""
        return self.kind == "journal"

    def __str__(self) -> str:
        return self.kind


def unavailable(what: str, error: BaseException | str) -> NoReturn:
    """Skip (or, with TUNER_REQUIRE_SERVICES=1, fail) a test whose server is not usable."""
    if os.environ.get("TUNER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required here (TUNER_REQUIRE_SERVICES=1) but is not usable: {error}")
    pytest.skip(f"{what} is not usable: {error}")


def _driver(module: str, what: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        unavailable(f"{what} (driver {module})", exc)


def _fresh_name() -> str:
    return f"tuner_test_{uuid.uuid4().hex[:12]}"


@contextmanager
def supply(kind: str, folder: Path) -> Iterator[Backend]:
    """A fresh storage of ``kind``; files go into ``folder``, server databases are dropped afterwards."""
    if kind == "memory":
        yield Backend(kind, MEMORY_URL, MEMORY_URL)
    elif kind == "sqlite":
        yield Backend(kind, "tuner.db", resolve_url("tuner.db", base_dir=folder))
    elif kind == "journal":
        yield Backend(kind, "study.log", resolve_url("study.log", base_dir=folder))
    elif kind in _SERVERS:
        with _SERVERS[kind]() as url:
            yield Backend(kind, url, url)
    else:
        raise ValueError(f"unknown backend {kind!r}; expected one of {['memory', *STORAGE_MODES]}")


@contextmanager
def postgresql() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    psycopg2 = _driver("psycopg2", "PostgreSQL")
    try:
        admin = psycopg2.connect(connect_timeout=CONNECT_S, **POSTGRES)
    except Exception as exc:
        unavailable(f"PostgreSQL at {POSTGRES['host']}:{POSTGRES['port']}", exc)
    admin.autocommit = True
    name = _fresh_name()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def mysql() -> Iterator[str]:
    """A fresh MariaDB/MySQL database, dropped afterwards."""
    pymysql = _driver("pymysql", "MySQL/MariaDB")
    try:
        admin = pymysql.connect(connect_timeout=CONNECT_S, autocommit=True, **MYSQL)
    except Exception as exc:
        unavailable(f"MySQL/MariaDB at {MYSQL['host']}:{MYSQL['port']}", exc)
    name = _fresh_name()
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    admin.close()  # an idle admin connection would time out during a long test
    try:
        yield f"mysql+pymysql://{MYSQL['user']}@{MYSQL['host']}:{MYSQL['port']}/{name}"
    finally:
        admin = pymysql.connect(connect_timeout=CONNECT_S, autocommit=True, **MYSQL)
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@contextmanager
def redis() -> Iterator[str]:
    """A Redis journal under a fresh key prefix, whose keys are deleted afterwards."""
    module = _driver("redis", "Redis")
    client = module.Redis(socket_connect_timeout=CONNECT_S, **REDIS)
    try:
        client.ping()
    except Exception as exc:
        unavailable(f"Redis at {REDIS['host']}:{REDIS['port']}", exc)
    prefix = _fresh_name()
    try:
        yield f"redis://{REDIS['host']}:{REDIS['port']}/0?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


_SERVERS = {"postgresql": postgresql, "mysql": mysql, "redis": redis}


def backend_params(*kinds: str) -> list[Any]:
    """``pytest.param`` per kind, with the ``services`` mark on server backends."""
    return [pytest.param(kind, id=kind, marks=[pytest.mark.services] if kind in SERVERS else []) for kind in kinds]
