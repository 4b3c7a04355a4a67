"""Real PostgreSQL, MariaDB/MySQL and Redis servers, with a fresh database (or key prefix) per test.

A test that needs a server skips with the reason when the server is not reachable, unless
TUNER_REQUIRE_SERVICES=1 (set by .ci/run), in which case it fails: CI must prove these tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
REDIS = {"host": "127.0.0.1", "port": 6379}


def _unavailable(what: str, error: BaseException | str) -> None:
    if os.environ.get("TUNER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required here (TUNER_REQUIRE_SERVICES=1) but is not usable: {error}")
    pytest.skip(f"{what} is not usable: {error}")


def _driver(module: str, what: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        _unavailable(f"{what} (driver {module})", exc)


def _new_database_name() -> str:
    return f"tuner_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped after the test."""
    psycopg2 = _driver("psycopg2", "PostgreSQL")
    try:
        admin = psycopg2.connect(connect_timeout=3, **POSTGRES)
    except Exception as exc:
        _unavailable(f"PostgreSQL at {POSTGRES['host']}:{POSTGRES['port']}", exc)
    admin.autocommit = True
    name = _new_database_name()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB/MySQL database, dropped after the test."""
    pymysql = _driver("pymysql", "MySQL/MariaDB")
    try:
        admin = pymysql.connect(connect_timeout=3, autocommit=True, **MYSQL)
    except Exception as exc:
        _unavailable(f"MySQL/MariaDB at {MYSQL['host']}:{MYSQL['port']}", exc)
    name = _new_database_name()
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    admin.close()  # an idle admin connection would time out during a long test
    try:
        yield f"mysql+pymysql://{MYSQL['user']}@{MYSQL['host']}:{MYSQL['port']}/{name}"
    finally:
        admin = pymysql.connect(connect_timeout=3, autocommit=True, **MYSQL)
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis journal under a fresh key prefix, whose keys are deleted after the test."""
    redis = _driver("redis", "Redis")
    client = redis.Redis(socket_connect_timeout=3, **REDIS)
    try:
        client.ping()
    except Exception as exc:
        _unavailable(f"Redis at {REDIS['host']}:{REDIS['port']}", exc)
    prefix = _new_database_name()
    try:
        yield f"redis://{REDIS['host']}:{REDIS['port']}/0?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(params=["postgres", "mysql", "redis"])
def server_url(request: pytest.FixtureRequest) -> str:
    """Each server storage in turn."""
    return str(request.getfixturevalue(f"{request.param}_url"))
