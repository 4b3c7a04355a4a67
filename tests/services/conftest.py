"""Server-only tests: what only a PostgreSQL server can show (dropped connections, passwords in URLs).

Every behaviour that all storages share runs in tests/contract over every backend; the servers
come from the same suppliers (tests/backends.py), which skip an unreachable server with the reason,
or fail when TUNER_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from backends import postgresql


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped after the test."""
    with postgresql() as url:
        yield url
