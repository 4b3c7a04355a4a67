"""Options shared by the commands, and the one place the CLI reads the environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from tuner.report import fmt_number
from tuner.store import DEFAULT_FILE, StudyRef, read_url_file, resolve_ref, storage_url

STORAGE_ENV = "TUNER_STORAGE"
F = TypeVar("F", bound=Callable[..., Any])

storage_option = click.option(
    "--storage",
    metavar="URL|PATH",
    default=None,
    help=f"Optuna storage URL, a .db/.log file, a spec file or a folder holding {DEFAULT_FILE}. "
    f"Default: ${STORAGE_ENV}, else ./{DEFAULT_FILE}. Prefer ${STORAGE_ENV} for URLs with passwords.",
)


storage_file_option = click.option(
    "--storage-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the storage URL from this file, so a password stays out of `ps` and shell history.",
)


def out_path_option(help: str) -> Callable[[F], F]:
    """``--out FILE`` (the ``out_path`` argument) of a command that writes a file; ``help`` says which."""
    return click.option("--out", "out_path", type=click.Path(path_type=Path), help=help)


def storage_value(storage: str | None, storage_file: Path | None = None) -> str | None:
    """--storage, else the URL in --storage-file, else $TUNER_STORAGE, else None."""
    if storage is not None and storage_file is not None:
        raise click.UsageError("give either --storage or --storage-file, not both")
    if storage_file is not None:
        return read_url_file(storage_file)
    return storage or os.environ.get(STORAGE_ENV)


def storage_url_of(storage: str | None) -> str:
    """The storage URL --storage (or $TUNER_STORAGE, else ./tuner.db) names."""
    return storage_url(storage_value(storage))


def locate(study: str, storage: str | None, storage_file: Path | None = None) -> StudyRef:
    """A ``STUDY`` argument (spec file, ``NAME@STORAGE`` or a name on --storage) → its name and storage."""
    return resolve_ref(study, storage=storage_value(storage, storage_file))


def out() -> Console:
    return Console(soft_wrap=True)


# Every command shows numbers as tables and reports do.
fmt_value = fmt_number
