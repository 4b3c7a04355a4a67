"""The read side: studies back from a storage as plain data, their best trials, and exports.

Everything here reads; nothing changes a study. Reports, comparisons and the CLI take a
:class:`StudySnapshot` (read once) or these functions' results, never a live connection.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

import tuner.store.schema as schema
from tuner.errors import TunerError
from tuner.store._choice import Choice, choose
from tuner.store._open import load_stored, open_existing
from tuner.store._spec import spec_dict
from tuner.store._urls import redact

if TYPE_CHECKING:
    from datetime import datetime

# Trials that have an outcome; RUNNING and WAITING ones do not yet.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


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
                model=str(summary.user_attrs.get(schema.MODEL, "-")),
                metric=str(summary.user_attrs.get(schema.METRIC, "-")),
                n_trials=len(trials),
                n_complete=len(complete),
                best_value=None if (best := best_trial(study)) is None else best.value,
                started=summary.datetime_start,
            )
        )
    return rows


def load_study(name: str, url: str) -> optuna.Study:
    """Load study ``name``; a missing one is an error that lists the studies that exist."""
    return load_stored(name, url).study


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
        return str(self.user_attrs.get(schema.METRIC, "value"))

    @property
    def model(self) -> str:
        return str(self.user_attrs.get(schema.MODEL, self.spec.get("model", "-")))

    @property
    def objectives(self) -> list[str]:
        """The objectives' names, one per direction (the metric for a plain study)."""
        return objective_names(self.user_attrs, len(self.directions))

    @property
    def learning_curve(self) -> dict[str, Any] | None:
        """The learning curve stored by ``tuner diagnose`` (or on the best trial), if any."""
        best = self.best_trial
        curve = (best.user_attrs.get(schema.LEARNING_CURVE_OF_TRIAL) if best else None) or self.user_attrs.get(
            schema.LEARNING_CURVE
        )
        return curve if isinstance(curve, dict) else None

    @property
    def refit_model(self) -> dict[str, Any] | None:
        """What ``tuner refit`` recorded about the model it saved, if anything."""
        refit = self.user_attrs.get(schema.REFIT_MODEL)
        return refit if isinstance(refit, dict) else None

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
        return counts(self.trials)

    def finished(self) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self.trials if t.state in FINISHED]

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
    spec = spec_dict(attrs)
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


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The study's final choice (see :func:`final_choice`), or None (always None for several objectives)."""
    choice = final_choice(study)
    return None if choice is None else choice.trial


def final_choice(study: optuna.Study) -> Choice | None:
    """The trial a single-objective study hands over, with its uncertainty (:mod:`tuner.store._choice`):
    the best mean over the re-scored candidates' CV repeats, or the raw maximum; None before the first
    complete feasible trial with a finite value, and for several objectives (their Pareto front stands)."""
    if len(study.directions) > 1:
        return None
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return choose(trials, study.user_attrs, maximize=study.direction == optuna.study.StudyDirection.MAXIMIZE)


def trial_record(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A flat, JSON-safe record of one trial (NaN and infinities become null)."""
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": clean(trial.value) if trial.values is None or len(trial.values) <= 1 else None,
        "values": clean(trial.values),
        "params": clean(trial.params),
        "user_attrs": clean(trial.user_attrs),
        "datetime_start": trial.datetime_start.isoformat() if trial.datetime_start else None,
        "datetime_complete": trial.datetime_complete.isoformat() if trial.datetime_complete else None,
        "duration_s": trial.duration.total_seconds() if trial.duration else None,
    }


def clean(value: Any) -> Any:
    """``value`` made JSON-safe: NaN and infinities become None, inside lists and dicts too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def counts(trials: Iterable[FrozenTrial]) -> dict[str, int]:
    """Trials per state, lower-case names (``complete``, ``pruned``, ``fail``, ``running``, ``waiting``)."""
    listed = list(trials)
    return {state.name.lower(): sum(t.state == state for t in listed) for state in TrialState}


def is_feasible(trial: FrozenTrial) -> bool:
    """No stored constraint is violated (trials of unconstrained studies are all feasible)."""
    return all(value <= 0 for value in trial.constraints.values())


def objective_names(attrs: dict[str, Any], n_objectives: int) -> list[str]:
    """The objectives' names from a study's attributes, one per direction."""
    names = attrs.get(schema.OBJECTIVES)
    if isinstance(names, list) and len(names) == n_objectives:
        return [str(n) for n in names]
    metric = str(attrs.get(schema.METRIC, "value"))
    return [metric] if n_objectives == 1 else [f"value {i}" for i in range(n_objectives)]


def best_val_mean(study: optuna.Study) -> float | None:
    """Mean validation score of the study's best trial so far (the best on the first objective of
    the Pareto front for several objectives); None before the first complete feasible trial."""
    if len(study.directions) == 1:
        try:
            best = [study.best_trial]
        except ValueError:  # no complete (feasible) trial yet
            return None
    else:
        best = study.best_trials
    values = [t.user_attrs.get(schema.VAL_MEAN) for t in best]
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return max(finite) if finite else None


def top_trials(study: optuna.Study, limit: int) -> list[optuna.trial.FrozenTrial]:
    """COMPLETE trials, best first: feasible ones before those that violate a constraint and, with
    several objectives, the Pareto front first; then by the (first) objective."""
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
        payload = {"study": study.study_name, "user_attrs": clean(study.user_attrs), "trials": records}
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
    import pandas as pd  # start-up time: `tuner show`, `list` and `best` never need pandas

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
