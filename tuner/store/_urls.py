"""Storage URLs: what a spec or CLI value means, and how it is shown. Passwords are never printed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from tuner.errors import StorageError

DEFAULT_FILE = "tuner.db"
# Optuna's in-memory storage: one process, nothing kept after it ends (benchmarks, notebooks).
MEMORY_URL = "memory://"
_JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)[^&]*")

Kind = Literal["memory", "sqlite", "journal", "redis", "rdb"]


def resolve_url(value: str | None, *, base_dir: Path) -> str:
    """Turn a spec/CLI storage value into a URL; plain paths are relative to ``base_dir``."""
    if value is None:
        return f"sqlite:///{(base_dir / DEFAULT_FILE).resolve()}"
    if "://" in value:
        return value
    path = (base_dir / value).resolve()
    if path.is_dir():  # a folder means the default file in it, as `--storage FOLDER` does
        path = path / DEFAULT_FILE
    if path.suffix in _JOURNAL_SUFFIXES:
        return f"journal:///{path}"
    return f"sqlite:///{path}"


def kind_of(url: str) -> Kind:
    """Which kind of storage a URL opens."""
    if url == MEMORY_URL:
        return "memory"
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith("journal:///"):
        return "journal"
    if url.startswith(("redis://", "rediss://", "unix://")):
        return "redis"
    return "rdb"


def is_server(url: str) -> bool:
    """True for storages that other machines reach (PostgreSQL, MySQL, Redis), not a local file or memory."""
    return kind_of(url) in ("redis", "rdb")


def file_of(url: str) -> Path | None:
    """The file a SQLite or journal-file URL names (None for other storages)."""
    for prefix in ("sqlite:///", "journal:///"):
        if url.startswith(prefix):
            return Path(url.removeprefix(prefix))
    return None


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


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's error message, say) with the URL's password replaced by ``***``."""
    rest = url.partition("://")[2]
    password = rest.rpartition("@")[0].partition(":")[2]
    return text.replace(password, "***") if password else text


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
