"""Errors a user can act on: every error class of the package lives here.

Every error raised for a user mistake is a :class:`TunerError`. Its message is one paragraph that
names where the problem is (file, field), what was found, and how to fix it. The CLI prints it and
exits with the error's ``exit_code``: 2 for bad input, 1 when the environment failed (a server, the
disk, a damaged file) and the input is fine. Python callers can catch ``TunerError``.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable


class TunerError(Exception):
    """Base class of every error caused by input a user can fix."""

    exit_code = 2


class SpecError(TunerError):
    """The study file (or the overrides given to it) is invalid."""


class DataError(TunerError):
    """The data named by the spec cannot be loaded or does not fit the spec."""


class CatalogError(TunerError):
    """An unknown model, metric, sampler, pruner or CV scheme, or a bad custom import."""


class StorageError(TunerError):
    """The study storage cannot be opened, or the study is not in it."""


class StorageUnavailable(StorageError):
    """The storage failed while the input is fine: a server down or gone, a full disk, a damaged file."""

    exit_code = 1


class StorageDamaged(StorageUnavailable):
    """A storage file is damaged (SQLite's "database disk image is malformed"); ``found`` says what was found."""

    def __init__(self, message: str, *, found: str = "") -> None:
        super().__init__(message)
        self.found = found


class OutputError(TunerError):
    """A file cannot be written where it was asked to go."""


class ModelFileError(TunerError):
    """A saved model or its card is missing, altered or does not fit the input."""


class ReportError(TunerError):
    """A report or its images cannot be produced."""


class TooManyFailures(TunerError):
    """``max_failures`` trials in a row failed, or a run's trials failed and none completed; the message shows
    the first error."""


class SearchFitError(TunerError, ValueError):
    """``TunerSearchCV.fit`` cannot work on its data, or no trial completed: a ``ValueError`` as well,
    as scikit-learn's searches raise, so ``cross_val_score`` and estimator checks see the usual type."""


class TrackingError(TunerError):
    """Trials cannot be logged to MLflow: the extra is not installed, or the tracking URI does not work."""


class WorkerError(TunerError):
    """Worker processes or Dask tasks failed before the budget was reached."""


# Messages quote what a user wrote; a value can be megabytes (a long string, a list expanded from YAML
# aliases), so every quote is cut to a length that keeps the message one readable paragraph.
_QUOTE_LIMIT = 80
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _QUOTE_LIMIT
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 6
_REPR.maxdict = 4
_REPR.maxlevel = 3


def shown(value: object) -> str:
    """``repr(value)`` cut to a few dozen characters, for quoting user input in a message."""
    return shorten(_REPR.repr(value))


def shorten(text: str, limit: int = _QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sentence(text: str) -> str:
    """``text`` ending in one full stop: for a message quoted inside another, which may end in one already."""
    return text if text.endswith((".", "!", "?", "…")) else f"{text}."


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_text(kind: str, name: str, choices: Iterable[str]) -> str:
    """One template for every 'unknown X' message: value, closest match, valid names (no final stop)."""
    listed = sorted(choices)
    return f"unknown {kind} {shown(name)}.{did_you_mean(name, listed)} Expected one of: {', '.join(listed)}"


def unknown_name(kind: str, name: str, choices: Iterable[str], *, where: str = "") -> CatalogError:
    """The 'unknown X' error of a catalog lookup, at ``where``."""
    location = f"{where}: " if where else ""
    return CatalogError(f"{location}{unknown_text(kind, name, choices)}.")
