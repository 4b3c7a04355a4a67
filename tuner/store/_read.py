"""The read side: studies back from a storage as plain data, and their best trials.

Everything here reads; nothing changes a study. Reports, comparisons and the CLI take a
:class:`StudySummary` or a :class:`StudySnapshot` (read once), never a live connection.

A summary (``show``, ``best``, ``list``, ``compare``, the report's header) does not load every
trial in full. On RDB storages (SQLite, PostgreSQL, MySQL) it reads each trial's number, state,
values, times, constraints and the user attributes the choice of the best trial needs
(:data:`CHOICE_ATTRS`) with plain SQL (:func:`tuner._optuna.rdb_trials`), chooses there, then
reads the chosen trials in full. Journal, Redis and in-memory storages hold every trial in the
process anyway; their summaries come from Optuna's public ``get_trials``. Both paths choose with
the same function, :func:`best_of`, so they agree (``tests/contract/test_fast_reads.py``).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

import tuner.store.schema as schema
from tuner import _optuna
from tuner.store._choice import Choice, choose
from tuner.store._open import StoredStudy, load_stored, open_existing
from tuner.store._sample import plot_sample
from tuner.store._spec import spec_dict
from tuner.store._urls import redact

# Trials that have an outcome; RUNNING and WAITING ones do not yet.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

# What the choice of the best trial (:func:`best_of`) reads of each trial besides its number,
# state, values and constraints. A summary on an RDB storage reads only these user attributes of
# every trial, so a choice that needs another must name it here.
CHOICE_ATTRS: tuple[str, ...] = (schema.VAL_SCORES,)

# Trials per read when a study is streamed (exports) or read in full on an RDB storage.
BATCH = 500


def choice_of(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection], attrs: dict[str, Any]
) -> Choice | None:
    """The one place the trial a single-objective study hands over is chosen, from its trials
    (complete and pruned) and study attributes (:func:`tuner.store._choice.choose`): the best mean
    over the re-scored candidates' CV repeats, or the raw maximum (the feasible COMPLETE trial with
    the best finite value; among equal values the earlier trial). None before there is one, and
    always for several objectives (their Pareto front stands: :func:`pareto_of`). ``trials`` may
    hold only what :data:`CHOICE_ATTRS` names of each trial."""
    if len(directions) != 1:
        return None
    return choose(trials, attrs, maximize=directions[0] == StudyDirection.MAXIMIZE)


def best_of(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection], attrs: dict[str, Any]
) -> FrozenTrial | None:
    """The trial of :func:`choice_of`, or None."""
    choice = choice_of(trials, directions, attrs)
    return None if choice is None else choice.trial


def pareto_of(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    """The feasible Pareto-optimal trials of a multi-objective study (as ``Study.best_trials``), best
    first objective first; empty for a single objective."""
    if len(directions) == 1:
        return []
    sign = 1 if directions[0] == StudyDirection.MAXIMIZE else -1
    front = _optuna.pareto_trials(trials, directions)
    return sorted(front, key=lambda t: sign * t.values[0], reverse=True)


def top_of(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection], limit: int) -> list[FrozenTrial]:
    """COMPLETE trials, best first: feasible ones before those that violate a constraint and, with
    several objectives, the Pareto front first; then by the (first) objective."""
    complete = [
        t for t in trials if t.state == TrialState.COMPLETE and t.values and all(math.isfinite(v) for v in t.values)
    ]
    sign = 1 if directions[0] == StudyDirection.MAXIMIZE else -1
    front = {t.number for t in pareto_of(trials, directions)}
    return sorted(complete, key=lambda t: (is_feasible(t), t.number in front, sign * t.values[0]), reverse=True)[:limit]


class _StudyAttrs:
    """What a summary and a snapshot both read off the study's attributes and stored spec."""

    directions: tuple[str, ...]
    user_attrs: dict[str, Any]
    spec: dict[str, Any]

    @property
    def metric(self) -> str:
        return str(self.user_attrs.get(schema.METRIC, "value"))

    @property
    def model(self) -> str:
        return str(self.user_attrs.get(schema.MODEL, self.spec.get("model", "-")))

    @property
    def data_source(self) -> str:
        data = self.spec.get("data") or {}
        return str(data.get("source") or "-")

    @property
    def objectives(self) -> list[str]:
        """The objectives' names, one per direction (the metric for a plain study)."""
        return objective_names(self.user_attrs, len(self.directions))

    @property
    def multi_objective(self) -> bool:
        return len(self.directions) > 1

    @property
    def refit_model(self) -> dict[str, Any] | None:
        """What ``tuner refit`` recorded about the model it saved, if anything."""
        refit = self.user_attrs.get(schema.REFIT_MODEL)
        return refit if isinstance(refit, dict) else None


@dataclass(frozen=True)
class StudySummary(_StudyAttrs):
    """What ``show``, ``best``, ``list``, ``compare`` and a report's header say about a study.

    ``best``, ``pareto`` and ``top`` are full trials; the counts and times cover every trial.
    """

    name: str
    storage: str  # redacted
    directions: tuple[str, ...]
    user_attrs: dict[str, Any]
    counts: dict[str, int]
    best: FrozenTrial | None = None
    choice: Choice | None = None  # how ``best`` was chosen and how sure it is (single objective)
    pareto: tuple[FrozenTrial, ...] = ()
    top: tuple[FrozenTrial, ...] = ()
    started: datetime | None = None
    wall_seconds: float | None = None
    seconds_per_trial: float | None = None
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return sum(self.counts.values())

    @property
    def pareto_numbers(self) -> tuple[int, ...]:
        return tuple(t.number for t in self.pareto)


def summarize(
    name: str,
    storage: str,
    directions: Sequence[StudyDirection],
    attrs: dict[str, Any],
    trials: Sequence[FrozenTrial],
    *,
    top: int = 0,
    full: Callable[[list[FrozenTrial]], list[FrozenTrial]] | None = None,
) -> StudySummary:
    """The summary of a study holding ``trials``; ``full`` reads the chosen trials in full when
    ``trials`` hold only part of each (the RDB path), in the order given."""
    fetch = full or (lambda chosen: chosen)
    choice = choice_of(trials, directions, attrs)
    best = None if choice is None else choice.trial
    front = pareto_of(trials, directions)
    leaders = top_of(trials, directions, top) if top else []
    wanted = ([best] if best is not None else []) + front + leaders
    got = {t.number: t for t in fetch(_unique(wanted))} if wanted else {}
    return StudySummary(
        name=name,
        storage=storage,
        directions=tuple(d.name.lower() for d in directions),
        user_attrs=attrs,
        counts=counts(trials),
        best=None if best is None else got[best.number],
        choice=None if choice is None or best is None else dataclasses.replace(choice, trial=got[best.number]),
        pareto=tuple(got[t.number] for t in front),
        top=tuple(got[t.number] for t in leaders),
        **_times(trials),
        spec=spec_dict(attrs),
    )


def _times(trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    """When the first trial started, first start to last end of the finished trials, and their mean duration."""
    started = [t.datetime_start for t in trials if t.datetime_start is not None]
    finished = [t for t in trials if t.state in FINISHED and t.datetime_start and t.datetime_complete]
    durations = [t.duration.total_seconds() for t in finished if t.duration is not None]
    wall = None
    if finished:
        first = min(t.datetime_start for t in finished if t.datetime_start)
        last = max(t.datetime_complete for t in finished if t.datetime_complete)
        wall = (last - first).total_seconds()
    return {
        "started": min(started) if started else None,
        "wall_seconds": wall,
        "seconds_per_trial": statistics.fmean(durations) if durations else None,
    }


def _unique(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    return list({t.number: t for t in trials}.values())


def read_summary(name: str, url: str, *, top: int = 0) -> StudySummary:
    """Summarize study ``name`` on ``url`` without loading every trial in full (see the module's
    docstring); ``top`` also reads the best ``top`` trials in full (:func:`top_of`)."""
    return summary_of(load_stored(name, url), url, top=top)


def summary_of(stored: StoredStudy, url: str, *, top: int = 0) -> StudySummary:
    """:func:`read_summary` of a study already opened."""
    study = stored.study
    trials, full = _choice_trials(stored)
    return summarize(study.study_name, redact(url), study.directions, study.user_attrs, trials, top=top, full=full)


def _choice_trials(
    stored: StoredStudy,
) -> tuple[list[FrozenTrial], Callable[[list[FrozenTrial]], list[FrozenTrial]] | None]:
    """Every trial with what a summary reads of it, and how to read chosen ones in full (None: they are)."""
    read = _rdb_reader(stored.storage)
    if read is None:
        return stored.study.get_trials(deepcopy=False), None
    trials = read(
        stored.study_id, params=False, intermediate=False, user_attrs=CHOICE_ATTRS, system_attrs="constraints"
    )

    def full(chosen: list[FrozenTrial]) -> list[FrozenTrial]:
        by_id = {_optuna.trial_id(t): t for t in read(stored.study_id, trial_ids=[_optuna.trial_id(c) for c in chosen])}
        return [by_id[_optuna.trial_id(c)] for c in chosen]

    return trials, full


def _rdb_reader(storage: optuna.storages.BaseStorage) -> Callable[..., list[FrozenTrial]] | None:
    """:func:`tuner._optuna.rdb_trials` on ``storage`` (retried on a dropped connection when
    ``storage`` is one of tuner's), or None for storages that are not RDB."""
    if not _optuna.is_rdb(storage):
        return None
    retried = getattr(storage, "read_trials", None)
    if retried is not None:
        return retried
    return lambda study_id, **options: _optuna.rdb_trials(storage, study_id, **options)


def all_trials(stored: StoredStudy) -> list[FrozenTrial]:
    """Every trial of the study in full: ``get_trials(deepcopy=False)``, read faster on RDB storages."""
    return [trial for batch in trial_batches(stored) for trial in batch]


def trial_batches(stored: StoredStudy, *, up_to: int | None = None) -> Iterator[list[FrozenTrial]]:
    """Every trial in full, in trial order, :data:`BATCH` at a time on RDB storages (one batch on
    others, which hold every trial in memory anyway); ``up_to`` stops after that storage trial id."""
    read = _rdb_reader(stored.storage)
    if read is None:
        yield stored.study.get_trials(deepcopy=False)
        return
    after = -1
    while True:
        batch = read(stored.study_id, after=after, limit=BATCH)
        if up_to is not None:
            batch = [t for t in batch if _optuna.trial_id(t) <= up_to]
        if not batch:
            return
        yield batch
        after = _optuna.trial_id(batch[-1])


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
    for study in storage.get_all_studies():
        summary = summary_of(load_stored(study.study_name, url, storage=storage), url)
        rows.append(
            StudyRow(
                name=summary.name,
                model=str(summary.user_attrs.get(schema.MODEL, "-")),
                metric=str(summary.user_attrs.get(schema.METRIC, "-")),
                n_trials=summary.n_trials,
                n_complete=summary.counts["complete"],
                best_value=None if summary.best is None else summary.best.value,
                started=summary.started,
            )
        )
    return rows


def load_study(name: str, url: str) -> optuna.Study:
    """Load study ``name``; a missing one is an error that lists the studies that exist."""
    return load_stored(name, url).study


@dataclass(frozen=True)
class StudySnapshot(_StudyAttrs):
    """A study read once from its storage: plain data for reports, comparisons and refits.

    Reports take this instead of a live :class:`optuna.Study`, so they never hold a database
    connection and can be built from any storage (or from trials made in a test).

    ``trials`` are every trial, or a sample of them (:func:`read_study` with ``max_trials``); then
    ``whole`` summarizes the whole study, and :meth:`counts` and :meth:`summary` come from it.
    """

    name: str
    storage: str
    directions: tuple[str, ...]
    user_attrs: dict[str, Any]
    trials: tuple[optuna.trial.FrozenTrial, ...]
    best_number: int | None = None
    pareto_numbers: tuple[int, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict)
    whole: StudySummary | None = None

    @property
    def learning_curve(self) -> dict[str, Any] | None:
        """The learning curve stored by ``tuner diagnose`` (or on the best trial), if any."""
        best = self.best_trial
        curve = (best.user_attrs.get(schema.LEARNING_CURVE_OF_TRIAL) if best else None) or self.user_attrs.get(
            schema.LEARNING_CURVE
        )
        return curve if isinstance(curve, dict) else None

    @property
    def sampled(self) -> bool:
        """``trials`` are a sample of the study's trials (see ``whole``)."""
        return self.whole is not None and self.whole.n_trials > len(self.trials)

    @property
    def best_trial(self) -> optuna.trial.FrozenTrial | None:
        return None if self.best_number is None else self.trial(self.best_number)

    def trial(self, number: int) -> optuna.trial.FrozenTrial | None:
        return next((t for t in self.trials if t.number == number), None)

    def counts(self) -> dict[str, int]:
        """Trials per state, lower-case names (``complete``, ``pruned``, ``fail``, ``running``, ``waiting``)."""
        return dict(self.whole.counts) if self.whole is not None else counts(self.trials)

    def summary(self) -> StudySummary:
        """The study's summary (from every trial, also when ``trials`` are a sample)."""
        if self.whole is not None:
            return self.whole
        return StudySummary(
            name=self.name,
            storage=self.storage,
            directions=self.directions,
            user_attrs=self.user_attrs,
            counts=counts(self.trials),
            best=self.best_trial,
            pareto=tuple(t for n in self.pareto_numbers if (t := self.trial(n)) is not None),
            **_times(self.trials),
            spec=self.spec,
        )

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
    trials = study.get_trials(deepcopy=False)
    return _snapshot_of(study, url, trials)


def _snapshot_of(
    study: optuna.Study, url: str, trials: Sequence[FrozenTrial], whole: StudySummary | None = None
) -> StudySnapshot:
    attrs = dict(study.user_attrs)
    if whole is not None:
        best, front = whole.best, list(whole.pareto)
    else:
        best, front = best_of(trials, study.directions, attrs), pareto_of(trials, study.directions)
    return StudySnapshot(
        name=study.study_name,
        storage=redact(url),
        directions=tuple(d.name.lower() for d in study.directions),
        user_attrs=attrs,
        trials=tuple(trials),
        best_number=None if best is None else best.number,
        pareto_numbers=tuple(t.number for t in front),
        spec=spec_dict(attrs),
        whole=whole,
    )


def read_study(name: str, url: str, *, max_trials: int | None = None) -> StudySnapshot:
    """Load study ``name`` from ``url`` and read it into a :class:`StudySnapshot`.

    Args:
        name: The study's name.
        url: Its storage.
        max_trials: Read at most this many trials in full, for charts: the best trial (or the
            Pareto front), every new best on the way and the top trials always, and the rest
            evenly spread by state and trial number (:func:`tuner.store.plot_sample`). The
            snapshot's ``whole`` then summarizes every trial. None reads every trial.
    """
    stored = load_stored(name, url)
    if max_trials is None:
        return _snapshot_of(stored.study, url, all_trials(stored))
    study = stored.study
    trials, full = _choice_trials(stored)
    whole = summarize(study.study_name, redact(url), study.directions, study.user_attrs, trials, full=full)
    keep = {t.number for t in (whole.best, *whole.pareto) if t is not None}
    chosen = plot_sample(trials, study.directions, keep=keep, limit=max_trials)
    if full is not None:
        chosen = full(chosen)
    return _snapshot_of(study, url, chosen, whole)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The study's final choice's trial (:func:`final_choice`), or None (always None for several objectives)."""
    choice = final_choice(study)
    return None if choice is None else choice.trial


def final_choice(study: optuna.Study) -> Choice | None:
    """The trial a single-objective study hands over, with its uncertainty (:func:`choice_of`), its
    trial read in full; None before the first complete feasible trial with a finite value, and for
    several objectives (their Pareto front stands). Light reads on RDB storages, as summaries."""
    if len(study.directions) > 1:
        return None
    storage = _optuna.storage_of(study)
    read = _rdb_reader(storage)
    if read is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        return choice_of(trials, study.directions, study.user_attrs)
    study_id = storage.get_study_id_from_name(study.study_name)
    trials = read(
        study_id,
        states=(TrialState.COMPLETE, TrialState.PRUNED),
        params=False,
        intermediate=False,
        user_attrs=CHOICE_ATTRS,
        system_attrs="constraints",
    )
    choice = choice_of(trials, study.directions, study.user_attrs)
    if choice is None:
        return None
    return dataclasses.replace(choice, trial=storage.get_trial(_optuna.trial_id(choice.trial)))


def top_trials(study: optuna.Study, limit: int) -> list[optuna.trial.FrozenTrial]:
    """:func:`top_of` the study's trials."""
    return top_of(study.get_trials(deepcopy=False), study.directions, limit)


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """:func:`pareto_of` the study's trials."""
    return pareto_of(study.get_trials(deepcopy=False), study.directions)


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
    the Pareto front for several objectives); None before the first complete feasible trial.

    Inside a trial it reads the trials as the trial's sampler read them (one storage read fewer per
    trial than ``study.best_trial``).
    """
    best = _optuna.pareto_trials(_optuna.cached_trials(study), study.directions)
    values = [t.user_attrs.get(schema.VAL_MEAN) for t in best]
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return max(finite) if finite else None
