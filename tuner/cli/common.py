"""Options and lookups shared by the commands: storage resolution and study references."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from tuner.storage import DEFAULT_FILE, resolve_url

STORAGE_ENV = "TUNER_STORAGE"
F = TypeVar("F", bound=Callable[..., Any])
_SPEC_SUFFIXES = (".yaml", ".yml")

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


def storage_value(storage: str | None, storage_file: Path | None) -> str | None:
    """--storage, else the URL in --storage-file, else $TUNER_STORAGE, else None."""
    if storage is not None and storage_file is not None:
        raise click.UsageError("give either --storage or --storage-file, not both")
    if storage_file is not None:
        from tuner.storage import read_url_file

        return read_url_file(storage_file)
    return storage or os.environ.get(STORAGE_ENV)


def out() -> Console:
    return Console(soft_wrap=True)


def storage_url(value: str | None) -> str:
    """Resolve --storage (or $TUNER_STORAGE) to a URL; spec files and folders are accepted too."""
    value = value or os.environ.get(STORAGE_ENV)
    if value is None:
        return resolve_url(None, base_dir=Path.cwd())
    path = Path(value)
    if "://" not in value and path.suffix in _SPEC_SUFFIXES:
        from tuner.spec import load_spec

        spec = load_spec(path)
        return resolve_url(spec.storage, base_dir=spec.base_dir)
    if "://" not in value and path.is_dir():
        return resolve_url(None, base_dir=path)
    return resolve_url(value, base_dir=Path.cwd())


def study_ref(study: str, storage: str | None) -> tuple[str, str]:
    """``STUDY`` is a spec file (name and storage come from it) or a study name on --storage."""
    path = Path(study)
    if path.suffix in _SPEC_SUFFIXES:
        from tuner.spec import load_spec

        spec = load_spec(path)
        url = storage_url(storage) if storage or os.environ.get(STORAGE_ENV) else None
        return spec.name, url or resolve_url(spec.storage, base_dir=spec.base_dir)
    return study, storage_url(storage)


def fmt_value(value: Any, *, none: str = "-") -> str:
    """Numbers to 5 significant digits; ``none`` stands for a missing value."""
    if isinstance(value, float):
        return f"{value:.5g}"
    return none if value is None else str(value)
