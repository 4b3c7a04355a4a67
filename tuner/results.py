"""Read studies back from a storage: summaries, the best trial, and flat trial records for export."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from tuner.errors import StorageError, TunerError, did_you_mean
from tuner.storage import open_existing, redact

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
    storage = open_existing(url)
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
    storage = open_existing(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        available = ", ".join(sorted(names)) or "none"
        raise StorageError(
            f"no study named {name!r} in {redact(url)}.{did_you_mean(name, names)} Studies there: {available}. "
            "Pass the spec file instead of the name, or point --storage at the right database."
        )
    return optuna.load_study(study_name=name, storage=storage)


_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class StudySnapshot:
    """A study read once from its storage: plain data for reports, comparisons and refits.

    Reports take this instead of a live :class:`optuna.Study`, so they never hold a database
    connection and can be built from any storage (or from trials made in a test).
    """

    name: str
    storage: str
    directions: tuple[str, ...]
    user_attrs: dict[str, Any]
    trials: tuple[optuna.trial.FrozenTrial, ...]
    best_number: int | None = None
    pareto_numbers: tuple[int, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return str(self.user_attrs.get("tuner:metric", "value"))

    @property
    def model(self) -> str:
        return str(self.user_attrs.get("tuner:model", self.spec.get("model", "-")))

    @property
    def data_source(self) -> str:
        data = self.spec.get("data") or {}
        return str(data.get("source") or "-")

    @property
    def multi_objective(self) -> bool:
        return len(self.directions) > 1

    @property
    def best_trial(self) -> optuna.trial.FrozenTrial | None:
        return None if self.best_number is None else self.trial(self.best_number)

    def trial(self, number: int) -> optuna.trial.FrozenTrial | None:
        return next((t for t in self.trials if t.number == number), None)

    def counts(self) -> dict[str, int]:
        """Trials per state, lower-case names (``complete``, ``pruned``, ``fail``, ``running``, ``waiting``)."""
        return {state.name.lower(): sum(t.state == state for t in self.trials) for state in TrialState}

    def finished(self) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self.trials if t.state in _FINISHED]

    def to_study(self) -> optuna.Study:
        """An in-memory Optuna study with the finished trials, for Optuna's plotting functions."""
        directions = [optuna.study.StudyDirection[d.upper()] for d in self.directions]
        study = optuna.create_study(study_name=self.name, directions=directions)
        study.add_trials(self.finished())
        return study


def snapshot(study: optuna.Study, url: str) -> StudySnapshot:
    """Read ``study`` once into a :class:`StudySnapshot`."""
    trials = tuple(study.get_trials(deepcopy=False))
    attrs = dict(study.user_attrs)
    multi = len(study.directions) > 1
    best = None if multi else best_trial(study)
    pareto = tuple(t.number for t in study.best_trials) if multi else ()
    try:
        spec = json.loads(attrs["tuner:spec"]) if "tuner:spec" in attrs else {}
    except (TypeError, ValueError):
        spec = {}
    return StudySnapshot(
        name=study.study_name,
        storage=redact(url),
        directions=tuple(d.name.lower() for d in study.directions),
        user_attrs=attrs,
        trials=trials,
        best_number=None if best is None else best.number,
        pareto_numbers=pareto,
        spec=spec,
    )


def read_study(name: str, url: str) -> StudySnapshot:
    """Load study ``name`` from ``url`` and read it into a :class:`StudySnapshot`."""
    return snapshot(load_study(name, url), url)


_SPEC_SUFFIXES = (".yaml", ".yml")


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"name@storage"`` → ``(name, storage)``; a plain name → ``(name, None)``.

    Study names cannot contain ``@`` (see ``StudySpec.name``), so the first ``@`` separates the
    name from the storage, even when the storage URL has ``user@host`` in it.
    """
    name, sep, where = ref.partition("@")
    if not sep or not name or not where:
        return ref, None
    return name, where


def resolve_ref(ref: str, *, storage: str | None = None) -> tuple[str, str]:
    """A study reference → ``(name, storage URL)``.

    ``ref`` is a spec file (name and storage from it; ``storage`` overrides the storage), a
    ``name@storage`` string (a URL or a .db/.log path), or a study name on ``storage``.
    """
    from tuner.storage import resolve_url

    if Path(ref).suffix in _SPEC_SUFFIXES:
        from tuner.spec import load_spec

        spec = load_spec(ref)
        return spec.name, storage or resolve_url(spec.storage, base_dir=spec.base_dir)
    name, where = split_ref(ref)
    if where is not None:
        return name, resolve_url(where, base_dir=Path.cwd())
    return name, resolve_url(storage, base_dir=Path.cwd())


def _best_value(study: optuna.Study) -> float | None:
    if len(study.directions) > 1:
        return None
    try:
        value = study.best_value
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best feasible COMPLETE trial with a finite value, or None (always None for several objectives)."""
    if len(study.directions) > 1:
        return None
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
    """COMPLETE trials, best first: feasible ones before those that violate a constraint and, with
    several objectives, the Pareto front first; then by the (first) objective."""
    from tuner.targets import is_feasible

    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and all(math.isfinite(v) for v in t.values)
    ]
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1
    front = {t.number for t in pareto_front(study)}
    return sorted(complete, key=lambda t: (is_feasible(t), t.number in front, sign * t.values[0]), reverse=True)[:limit]


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The feasible Pareto-optimal trials of a multi-objective study, best first objective first
    (empty for a single objective)."""
    if len(study.directions) == 1:
        return []
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1
    return sorted(study.best_trials, key=lambda t: sign * t.values[0], reverse=True)


EXPORT_FORMATS = ("csv", "json", "parquet")


def export_trials(study: optuna.Study, fmt: str) -> str:
    """Every trial as ``csv`` or ``json`` text (valid JSON: no bare NaN); Parquet: :func:`export_parquet`."""
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


def export_parquet(study: optuna.Study, path: Path) -> None:
    """Every trial as one Parquet row (the CSV columns; lists and dicts as JSON text)."""
    import pandas as pd

    rows = [_flatten(trial_record(t)) for t in study.get_trials(deepcopy=False)]
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
