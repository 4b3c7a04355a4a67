"""Read studies back from a storage: summaries, the best trial, and flat trial records for export."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from tuner.errors import StorageError, did_you_mean
from tuner.storage import open_storage, redact

if TYPE_CHECKING:
    from datetime import datetime


@dataclass(frozen=True)
class StudyRow:
    """One line of ``tuner list``."""

    name: str
    model: str
    metric: str
    n_trials: int
    n_complete: int
    best_value: float | None
    started: datetime | None


def list_studies(url: str) -> list[StudyRow]:
    storage = open_storage(url)
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        rows.append(
            StudyRow(
                name=summary.study_name,
                model=str(summary.user_attrs.get("tuner:model", "-")),
                metric=str(summary.user_attrs.get("tuner:metric", "-")),
                n_trials=len(trials),
                n_complete=len(complete),
                best_value=_best_value(study),
                started=summary.datetime_start,
            )
        )
    return rows


def load_study(name: str, url: str) -> optuna.Study:
    """Load study ``name``; a missing one is an error that lists the studies that exist."""
    storage = open_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        available = ", ".join(sorted(names)) or "none"
        raise StorageError(
            f"no study named {name!r} in {redact(url)}.{did_you_mean(name, names)} Studies there: {available}. "
            "Pass the spec file instead of the name, or point --storage at the right database."
        )
    return optuna.load_study(study_name=name, storage=storage)


def _best_value(study: optuna.Study) -> float | None:
    if len(study.directions) > 1:
        return None
    try:
        value = study.best_value
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best COMPLETE trial with a finite value, or None."""
    try:
        trial = study.best_trial
    except ValueError:
        return None
    return trial if trial.value is not None and math.isfinite(trial.value) else None


def trial_record(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A flat, JSON-safe record of one trial (NaN and infinities become null)."""
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": _clean(trial.value) if trial.values is None or len(trial.values) <= 1 else None,
        "values": _clean(trial.values),
        "params": _clean(trial.params),
        "user_attrs": _clean(trial.user_attrs),
        "datetime_start": trial.datetime_start.isoformat() if trial.datetime_start else None,
        "datetime_complete": trial.datetime_complete.isoformat() if trial.datetime_complete else None,
        "duration_s": trial.duration.total_seconds() if trial.duration else None,
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def top_trials(study: optuna.Study, limit: int) -> list[optuna.trial.FrozenTrial]:
    """COMPLETE trials, best first."""
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(complete, key=lambda t: t.value or 0.0, reverse=maximize)[:limit]


def export_trials(study: optuna.Study, fmt: str) -> str:
    """Every trial as ``csv`` or ``json`` text (valid JSON: no bare NaN)."""
    records = [trial_record(t) for t in study.get_trials(deepcopy=False)]
    if fmt == "json":
        payload = {"study": study.study_name, "user_attrs": _clean(study.user_attrs), "trials": records}
        return json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n"
    rows = [_flatten(r) for r in records]
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in record.items() if k not in ("params", "user_attrs", "values")}
    row.update({f"params_{k}": v for k, v in record["params"].items()})
    for key, value in record["user_attrs"].items():
        row[f"user_attrs_{key}"] = json.dumps(value) if isinstance(value, list | dict) else value
    return row
