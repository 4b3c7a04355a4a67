"""Every trial of a study as CSV, JSON or Parquet.

CSV and JSON are streamed: trials are read :data:`~tuner.store._read.BATCH` at a time (on RDB
storages) and written as they come, so memory stays flat however many trials a study holds. The
text is the same as rendering every trial at once (``json.dumps`` of the whole payload, one CSV
header with every column in the order it first appears).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from tuner import _optuna
from tuner.errors import TunerError
from tuner.store._open import StoredStudy
from tuner.store._read import clean, trial_batches, trial_record

EXPORT_FORMATS = ("csv", "json", "parquet")
_BASE_COLUMNS = ("number", "state", "value", "datetime_start", "datetime_complete", "duration_s")


def export_trials(study: optuna.Study, fmt: str) -> str:
    """Every trial as ``csv`` or ``json`` text (valid JSON: no bare NaN); Parquet: :func:`export_parquet`."""
    trials = study.get_trials(deepcopy=False)
    return "".join(_render(study, fmt, [trials], _columns_of(trials)))


def export_stream(stored: StoredStudy, fmt: str) -> Iterator[str]:
    """Every trial of a stored study as ``csv`` or ``json`` text, piece by piece (see the module docstring)."""
    study = stored.study
    if not _optuna.is_rdb(stored.storage):
        yield export_trials(study, fmt)
        return
    names = _optuna.rdb_names(stored.storage, stored.study_id) if fmt == "csv" else None
    # Only the trials that existed when the columns were read, so every row fits the header.
    up_to = names.last_trial_id if names is not None else None
    columns = _columns_from_names(names) if names is not None else []
    yield from _render(study, fmt, trial_batches(stored, up_to=up_to), columns)


def _render(study: optuna.Study, fmt: str, batches: Iterable[list[FrozenTrial]], columns: list[str]) -> Iterator[str]:
    if fmt == "json":
        yield from _json(study, batches)
        return
    buffer = io.StringIO()
    # A running trial may gain attributes after the header was read; its row keeps the header's.
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for batch in batches:
        writer.writerows(_flatten(trial_record(t)) for t in batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _json(study: optuna.Study, batches: Iterable[list[FrozenTrial]]) -> Iterator[str]:
    """``json.dumps({"study", "user_attrs", "trials"}, indent=2)``, written one trial at a time."""
    head = json.dumps(
        {"study": study.study_name, "user_attrs": clean(study.user_attrs)}, indent=2, allow_nan=False, default=str
    )
    first = True
    for batch in batches:
        for trial in batch:
            record = json.dumps(trial_record(trial), indent=2, allow_nan=False, default=str)
            yield (head[:-2] + ',\n  "trials": [\n' if first else ",\n") + _indent(record, "    ")
            first = False
    yield (head[:-2] + ',\n  "trials": []\n}\n') if first else "\n  ]\n}\n"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def _columns_of(trials: Iterable[FrozenTrial]) -> list[str]:
    columns: dict[str, None] = {}
    for trial in trials:
        columns.update(dict.fromkeys(_flatten(trial_record(trial))))
    return list(columns)


def _columns_from_names(names: _optuna.TrialNames) -> list[str]:
    """The CSV header of the trials ``names`` lists: as :func:`_columns_of`, from the names alone."""
    columns: dict[str, None] = dict.fromkeys(_BASE_COLUMNS) if names.trial_ids else {}
    for trial_id in names.trial_ids:
        columns.update(dict.fromkeys(f"params_{p}" for p in names.params.get(trial_id, ())))
        columns.update(dict.fromkeys(f"user_attrs_{k}" for k in names.user_attrs.get(trial_id, ())))
    return list(columns)


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in record.items() if k not in ("params", "user_attrs", "values")}
    row.update({f"params_{k}": v for k, v in record["params"].items()})
    for key, value in record["user_attrs"].items():
        row[f"user_attrs_{key}"] = json.dumps(value) if isinstance(value, list | dict) else value
    return row


def export_parquet(stored: StoredStudy | optuna.Study, path: Path) -> None:
    """Every trial as one Parquet row (the CSV columns; lists and dicts as JSON text)."""
    import pandas as pd  # start-up time: `tuner show`, `list` and `best` never need pandas

    if isinstance(stored, optuna.Study):
        batches: Iterable[list[FrozenTrial]] = [stored.get_trials(deepcopy=False)]
    else:
        batches = trial_batches(stored)
    # A Parquet column has one type, known only once every row is read: the rows are held here.
    rows = [_flatten(trial_record(t)) for batch in batches for t in batch]
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        # Parquet columns have one type; a parameter that is sometimes None-or-str and sometimes a
        # number (categorical choices like [None, 1, "auto"]) is stored as text.
        kinds = {type(v) for v in frame[column] if v is not None and v == v}
        if len(kinds) > 1 and not kinds <= {int, float}:
            frame[column] = [None if v is None else str(v) for v in frame[column]]
    try:
        frame.to_parquet(path, index=False)
    except ImportError as exc:
        raise TunerError(
            f"cannot write {str(path)!r}: Parquet needs pyarrow ({exc}). Install it with "
            "`pip install 'tuner[parquet]'`, or export with --format csv."
        ) from None
