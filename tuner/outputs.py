"""Safe output paths for files that commands write (exports, reports, models, predictions).

Two rules: an existing file is never replaced unless the caller says so (``--force``), and a file
whose name comes from data (a study name, a plot name) stays inside the directory it was given:
a name with ``..`` or a symlink pointing elsewhere is refused rather than followed.
"""

from __future__ import annotations

from pathlib import Path

from tuner.errors import OutputError


def output_file(path: Path, *, force: bool = False) -> Path:
    """Check a file path the user named: its folder must exist; an existing file needs ``force``.

    An existing symlink is refused (even with ``force``) unless it points into the same folder,
    so ``--force`` cannot be used to write through a link to somewhere else.
    """
    return _checked(path.parent, path, force=force, what=str(path))


def file_in(directory: Path, name: str, *, force: bool = False) -> Path:
    """``directory / name`` for a ``name`` derived from data; it must not leave ``directory``.

    Raises:
        OutputError: when ``name`` is absolute, contains ``..`` or a path separator that leads out,
            resolves outside ``directory`` through a symlink, or exists and ``force`` is false.
    """
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts or not candidate.parts:
        raise OutputError(
            f"refusing to write {name!r} into {str(directory)!r}: the file name would leave that folder. "
            "Name the output file explicitly (--out FILE)."
        )
    return _checked(directory, directory / candidate, force=force, what=f"{name!r} in {str(directory)!r}")


def _checked(directory: Path, path: Path, *, force: bool, what: str) -> Path:
    if not directory.is_dir():
        raise OutputError(f"cannot write {what}: folder {str(directory)!r} does not exist. Create it first.")
    root = directory.resolve()
    target = path.resolve()
    if not target.is_relative_to(root):
        raise OutputError(
            f"refusing to write {what}: it resolves to {str(target)!r}, outside {str(root)!r} "
            "(through a symlink or '..'). Write to a real path inside the folder."
        )
    if path.is_symlink() or path.exists():
        if path.is_dir():
            raise OutputError(f"cannot write {what}: it is a folder. Name a file inside it.")
        if not force:
            raise OutputError(f"{what} already exists; pass --force to overwrite it, or choose another name.")
    return path
