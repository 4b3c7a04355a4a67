"""Damaged SQLite files and full disks: find them before writing, and say so in one paragraph.

A SQLite file with garbage in some pages answers most queries until one reaches those pages;
Optuna then wraps SQLite's ``database disk image is malformed`` in a generic storage error. So:

- before a SQLite file is opened at all, ``PRAGMA quick_check`` runs on a read-only connection
  (:func:`refuse_damaged`). It reads every page once but skips the index-to-table cross-checks of
  ``integrity_check``: about 15 ms for a 10,000-trial file (13 MB) with the pages in the OS cache,
  under 0.2 s from a cold disk, against seconds for Optuna to read those trials. A damaged file is
  refused before anything, even WAL mode, is written to it;
- once open, a listener on the storage's engine (:func:`watch`) turns damage found later, and a
  full disk, into :class:`~tuner.errors.StorageUnavailable` with the file's name, instead of
  Optuna's "an exception is raised during the commit";
- :func:`opening` removes the files a failed first open created, so "nothing was written" holds
  when the disk is too small even for the empty schema.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuner.errors import StorageDamaged, StorageUnavailable
from tuner.store._retry import causes

# SQLite's primary result codes; extended codes keep them in the low byte.
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26
_SIDE_FILES = ("-wal", "-shm", "-journal")


def quick_check(path: Path, *, timeout: float) -> str | None:
    """What ``PRAGMA quick_check`` finds wrong with the SQLite file at ``path``; None if it is fine.

    A missing or empty file is fine (the open creates it). A file that cannot be checked for
    another reason (locked past ``timeout``, unreadable) is left to the open that follows, which
    reports that reason.
    """
    try:
        if path.stat().st_size == 0:
            return None  # not yet a database: the open creates it
    except OSError:
        return None
    try:
        # Read-only: a damaged file must not even get its WAL checkpointed into it on close.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc) if _is_damage(exc) else None
    if rows == [("ok",)]:
        return None
    found = "; ".join(str(row[0]).replace("\n", " ") for row in rows[:3])
    return f"database disk image is malformed; quick_check found: {found[:300]}"


def refuse_damaged(path: Path, *, timeout: float) -> None:
    """Raise :class:`~tuner.errors.StorageDamaged` if ``path`` is a damaged SQLite file."""
    found = quick_check(path, timeout=timeout)
    if found is not None:
        raise StorageDamaged(
            f"the SQLite storage file {path} is damaged ({found}), so tuner stopped before writing to it: nothing "
            f"was written. {_recover(path)}",
            found=found,
        )


def translate(path: Path, exc: BaseException) -> StorageUnavailable | None:
    """The one-paragraph error for a damaged file or a full disk behind ``exc``; None for anything else.

    A file without SQLite's header is not taken for a damaged one: more likely the wrong file was
    named (notes, a CSV), which the open reports as such.
    """
    for cause in causes(exc):
        if isinstance(cause, sqlite3.DatabaseError) and _is_damage(cause):
            return StorageDamaged(
                f"the SQLite storage file {path} is damaged ({cause}). The operation that ran into the damage was "
                f"rolled back, so nothing was written by it. {_recover(path)}",
                found=str(cause),
            )
        if (isinstance(cause, sqlite3.DatabaseError) and _code(cause) == _SQLITE_FULL) or (
            isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
        ):
            return StorageUnavailable(
                f"the disk holding the SQLite storage file {path} is full ({cause}). The write that failed was "
                "rolled back; trials completed before it are kept. Free some space, or copy the file to a disk "
                "with room and point --storage at the copy, then run again: `tuner run` marks a trial this left "
                "RUNNING as lost and runs it again (at once when its worker had named itself on it, else once "
                "the 60 s heartbeat grace has passed; `tuner doctor STUDY --repair --older-than 0` does it now)."
            )
    return None


def watch(engine: Any, path: Path) -> None:
    """From now on, damage or a full disk met by ``engine`` raises the error of :func:`translate`.

    SQLAlchemy calls the listener with the driver's error before Optuna wraps it; an error raised
    there replaces it, and Optuna rolls the session back and lets it through.
    """
    from sqlalchemy import event  # start-up time: only SQLite storages need it

    def on_error(context: Any) -> None:
        translated = translate(path, context.original_exception)
        if translated is not None:
            raise translated

    event.listen(engine, "handle_error", on_error)


@contextlib.contextmanager
def opening(path: Path) -> Iterator[None]:
    """Around the open of the SQLite file ``path`` (before :func:`watch` can listen): damage or a
    full disk met meanwhile becomes the error of :func:`translate`, other errors pass unchanged. If
    this open created the file and then ran out of space, the file and its WAL files are removed
    again, so that "nothing was written" is true.

    The file is created here with ``O_EXCL``, so "this open created it" is known, not guessed: a
    file another process made a moment earlier is never removed.
    """
    created = False
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        created = True
    except FileExistsError:
        pass
    except OSError as exc:
        if translate(path, exc) is not None:
            raise _nothing_written(path, exc) from None
        # Anything else (no permission, say) is reported by SQLite's own open, as before.
    try:
        yield
    except Exception as exc:
        translated = translate(path, exc)
        if translated is None:
            raise
        if created and not isinstance(translated, StorageDamaged):
            for suffix in ("", *_SIDE_FILES):
                with contextlib.suppress(OSError):
                    Path(f"{path}{suffix}").unlink()
            raise _nothing_written(path, exc) from None
        raise translated from None


def _nothing_written(path: Path, exc: BaseException) -> StorageUnavailable:
    reason = next((str(c) for c in causes(exc) if isinstance(c, sqlite3.Error | OSError)), str(exc))
    return StorageUnavailable(
        f"the disk holding {path} is full ({reason}): it has no room even for a new study's empty tables. The "
        "files tuner had just created for it were removed again, so nothing was written. Free some space, or point "
        "`storage` (or --storage) at a folder on a disk with room, and run again."
    )


def _recover(path: Path) -> str:
    recovered = path.with_name(f"{path.stem}-recovered{path.suffix or '.db'}")
    return (
        f"Restore the file from a backup, or copy what is still readable into a new file with "
        f"`sqlite3 {path} .recover | sqlite3 {recovered}` and use that one (--storage {recovered}); "
        f"`tuner doctor` then checks it. Keep the damaged file until the copy is good."
    )


_CODE_OF_MESSAGE = {
    "database disk image is malformed": _SQLITE_CORRUPT,
    "file is not a database": _SQLITE_NOTADB,
    "database or disk is full": _SQLITE_FULL,
}


def _is_damage(exc: sqlite3.Error) -> bool:
    # SQLite says "file is not a database" (NOTADB) for a file without its header: more likely the
    # wrong file was named, which the open reports with its own hint. The header is not read here
    # with a plain open(): closing any other descriptor of a database file drops the POSIX locks
    # SQLite holds on it in this process, and concurrent writers then corrupt the file.
    return _code(exc) == _SQLITE_CORRUPT


def _code(exc: sqlite3.Error) -> int:
    code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    # An error raised by Python code (a wrapper, a test's fault injection) has no code, only SQLite's text.
    return code or next((c for text, c in _CODE_OF_MESSAGE.items() if text in str(exc)), 0)
