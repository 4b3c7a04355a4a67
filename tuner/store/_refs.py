"""The one study-reference resolver: what ``STUDY`` and ``--storage`` mean, for every command.

``STUDY`` is a spec file (its name and storage come from the spec), ``NAME@STORAGE``, or a study
name on the given storage. A storage value is an Optuna URL, a ``.db``/``.log`` file, a spec file
(its storage), or a folder holding ``tuner.db``; none means ``./tuner.db``. Study names cannot
contain ``@`` (see ``StudySpec.name``), so ``s@postgresql://user@host/db`` splits at the first ``@``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuner.store._urls import resolve_url

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class StudyRef:
    """A resolved study reference: its name, its storage URL and, when given, its spec file."""

    name: str
    url: str
    spec_file: Path | None = None


def is_spec_file(value: str | Path) -> bool:
    return Path(value).suffix in SPEC_SUFFIXES


def storage_url(value: str | None) -> str:
    """A storage value (URL, file, spec file, folder or None) → the storage URL."""
    if value is None:
        return resolve_url(None, base_dir=Path.cwd())
    if "://" not in value and is_spec_file(value):
        from tuner.spec import load_spec  # start-up time: `tuner list` and `show NAME` parse no spec

        spec = load_spec(value)
        return resolve_url(spec.storage, base_dir=spec.base_dir)
    return resolve_url(value, base_dir=Path.cwd())


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"name@storage"`` → ``(name, storage)``; a plain name → ``(name, None)``."""
    name, sep, where = ref.partition("@")
    if not sep or not name or not where:
        return ref, None
    return name, where


def resolve_ref(ref: str | Path, *, storage: str | None = None) -> StudyRef:
    """A study reference → :class:`StudyRef`; ``storage`` overrides a spec's own storage."""
    if is_spec_file(ref):
        from tuner.spec import load_spec  # start-up time: `tuner list` and `show NAME` parse no spec

        spec = load_spec(ref)
        url = storage_url(storage) if storage else resolve_url(spec.storage, base_dir=spec.base_dir)
        return StudyRef(spec.name, url, Path(ref))
    name, where = split_ref(str(ref))
    return StudyRef(name, storage_url(where if where is not None else storage))
