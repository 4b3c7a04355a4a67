"""The one module that touches Optuna's private names.

Everything else in ``tuner`` uses Optuna's public API (studies, storages, samplers, pruners,
``get_trials``, ``tell``, ``RetryHeartbeatStaleTrialCallback``). Where it must go further, it
comes here:

- a live trial's storage id (``Trial._trial_id``), to beat for it and finish it from outside;
- the sampler's read of the study for the current trial (``Study._get_trials(use_cache=True)``),
  which the pruner reuses instead of reading the storage at every fold;
- the "inside an optimize loop" state (``Study._thread_local``, ``Study._stop_flag``): ``tuner``
  runs its own loop, and samplers such as the grid end a search with ``study.stop()``;
- the RUNNING trials whose RDB heartbeat is stale (``RDBStorage._get_stale_trial_ids``), and the
  heartbeat table itself (``trial_heartbeats``) for ``tuner doctor``;
- the private storage calls through which Optuna's cache of an RDB storage reaches the database
  (``_get_trials``, ``_create_new_trial``, ...), which ``tuner`` retries on a dropped connection;
- a trial's suggested parameters in one RDB transaction (:func:`params_in_one_write`:
  one ordered insert, where Optuna commits each);
- several trial user attributes in one RDB transaction (``optuna.storages._rdb``), with the study
  system attributes that carry the trial's optuna-dashboard note (``Study._study_id``) and the
  trial's reports made since its last write (:func:`report`: ``Trial._cached_frozen_trial``), and
  the storage behind a study a user hands in (``Study._storage``, ``_CachedStorage._backend``);
- trials read straight from Optuna's RDB tables (``trials``, ``trial_values``, ``trial_params``,
  ``trial_user_attributes``, ``trial_system_attributes``, ``trial_intermediate_values``) with
  plain SQL instead of its ORM: only the attributes a summary needs, or every trial in batches
  (:func:`rdb_trials`), for ``show``, ``best``, ``list``, ``compare``, ``export`` and ``report``
  on studies of many thousand trials; and the Pareto front and feasibility rules of
  ``Study.best_trials`` applied to trials read that way (:func:`pareto_trials`).

``PRIVATE_NAMES`` lists all of them; ``tests/test_optuna.py`` checks that each still exists, so an
Optuna upgrade that moves one fails CI instead of a user's run, and that no other module uses a
private name of an Optuna class. import-linter forbids every other module to import Optuna's
private modules. Where a private name is gone, this module fails loudly rather than falling back:
``optuna<6`` is pinned and the test names the surface.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Collection, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import optuna
from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

# (where, name) of every private name used below; the boundary test checks each one.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("optuna.Trial", "_trial_id"),
    ("optuna.Trial", "_cached_frozen_trial"),
    ("optuna.trial.FrozenTrial", "_trial_id"),
    ("optuna.Study", "_storage"),
    ("optuna.Study", "_study_id"),
    ("optuna.Study", "_get_trials"),
    ("optuna.Study", "_thread_local"),
    ("optuna.Study", "_stop_flag"),
    ("optuna.storages._CachedStorage", "_backend"),
    ("optuna.storages.RDBStorage", "_get_stale_trial_ids"),
    ("optuna.storages.RDBStorage", "_create_new_trial"),
    ("optuna.storages.RDBStorage", "_get_best_trial_id"),
    ("optuna.storages.RDBStorage", "_get_trials"),
    ("optuna.storages.RDBStorage", "_set_trial_param"),
    ("optuna.storages.RDBStorage", "_set_trial_attr_without_commit"),
    ("optuna.storages.RDBStorage", "_set_trial_intermediate_value_without_commit"),
    ("optuna.storages._rdb.storage", "_create_scoped_session"),
    ("optuna.storages._rdb.models", "TrialUserAttributeModel"),
    ("optuna.storages._rdb.models", "TrialModel"),
    ("optuna.storages._rdb.models", "StudySystemAttributeModel"),
    ("optuna.storages._rdb.models", "BaseModel"),
    ("RDB schema", "trial_heartbeats(trial_id, heartbeat)"),
    ("RDB schema", "trials, trial_values, trial_params, trial_user_attributes, trial_system_attributes, ..."),
    ("module", "optuna.storages._rdb.storage"),
    ("optuna.storages._rdb.models", "TrialValueModel"),
    ("optuna.storages._rdb.models", "TrialParamModel"),
    ("optuna.storages._rdb.models", "TrialSystemAttributeModel"),
    ("optuna.storages._rdb.models", "TrialIntermediateValueModel"),
    ("optuna.study._multi_objective", "_get_pareto_front_trials_by_trials"),
    ("optuna.study._constrained_optimization", "_CONSTRAINTS_KEY"),
)
# The tables and columns of Optuna's RDB schema that :func:`rdb_trials` reads (the boundary test
# checks each against a schema made by the installed Optuna).
RDB_COLUMNS: dict[str, tuple[str, ...]] = {
    "trials": ("trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"),
    "trial_values": ("trial_id", "objective", "value", "value_type"),
    "trial_params": ("param_id", "trial_id", "param_name", "param_value", "distribution_json"),
    "trial_user_attributes": ("trial_id", "key", "value_json"),
    "trial_system_attributes": ("trial_id", "key", "value_json"),
    "trial_intermediate_values": ("trial_id", "step", "intermediate_value", "intermediate_value_type"),
}
# The storage methods that reach the database, journal or server, which tuner's storages retry on
# a dropped connection (store/_retry.py): the public API, and the private calls through which
# Optuna's cache of an RDB storage reads and writes.
STORAGE_CALLS: tuple[str, ...] = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "record_heartbeat",
    "_get_stale_trial_ids",
    "_create_new_trial",
    "_get_best_trial_id",
    "_get_trials",
    "_set_trial_param",
)
# Modules a fork server imports once for every worker (the RDB storage checks its schema with
# alembic at each open): a private module, so it is named here.
PRELOAD = ("optuna.storages._rdb.storage",)


_CONSTRAINTS_KEY = "constraints"  # optuna.study._constrained_optimization._CONSTRAINTS_KEY
# The system attribute Study.enqueue_trial gives a trial: its fixed parameters.
ENQUEUED = "fixed_params"


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (its ``number`` counts within the study only)."""
    return int(trial._trial_id)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads from, unwrapped from Optuna's cache of an RDB storage (for studies
    users hand in)."""
    return _unwrapped(study._storage)


def cached_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials as the sampler read them when the running trial was asked for.

    Optuna keeps that read per thread and drops it at the next ask and tell; without one (a
    sampler that read nothing), this reads the storage once and keeps the result the same way.
    """
    return study._get_trials(deepcopy=False, use_cache=True)


@contextlib.contextmanager
def optimize_loop(study: optuna.Study, *, exhausted: bool = False) -> Iterator[None]:
    """Mark the calling thread as inside an optimize loop, as ``Study.optimize`` does.

    Samplers end a search by calling ``study.stop()`` (the grid sampler, once every point is
    tried), which Optuna allows only inside its optimize loop; ``tuner``'s loop is one and obeys
    :func:`stop_requested`. ``exhausted`` starts the loop stopped (a grid done by an earlier run).
    """
    study._thread_local.in_optimize_loop = True
    study._stop_flag = exhausted
    try:
        yield
    finally:
        study._thread_local.in_optimize_loop = False


def stop_requested(study: optuna.Study) -> bool:
    """Whether the sampler called ``study.stop()`` (or the loop started exhausted)."""
    return bool(study._stop_flag)


def stale_trial_ids(storage: optuna.storages.BaseStorage, study_id: int) -> set[int]:
    """RUNNING trials whose RDB heartbeat is older than the storage's grace period."""
    return set(storage._get_stale_trial_ids(study_id))  # type: ignore[attr-defined]


def beaten(storage: optuna.storages.BaseStorage, trial_ids: Collection[int]) -> set[int]:
    """Which of ``trial_ids`` have a heartbeat in Optuna's RDB table."""
    if not trial_ids:
        return set()
    import sqlalchemy  # start-up time: only RDB storages need SQLAlchemy

    query = sqlalchemy.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids").bindparams(
        sqlalchemy.bindparam("ids", expanding=True)
    )
    with _unwrapped(storage).engine.connect() as conn:  # type: ignore[attr-defined]
        return {int(row[0]) for row in conn.execute(query, {"ids": sorted(trial_ids)})}


def heartbeat_table(storage: optuna.storages.BaseStorage) -> tuple[datetime | None, dict[int, datetime]]:
    """The database server's clock and each trial's last heartbeat, read from Optuna's RDB table."""
    import sqlalchemy  # start-up time: only RDB storages need SQLAlchemy (Optuna imports it lazily too)

    engine = storage.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        now = conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
        rows = conn.execute(sqlalchemy.text("SELECT trial_id, heartbeat FROM trial_heartbeats")).all()
    return _as_datetime(now), {int(trial): _as_datetime(beat) for trial, beat in rows if beat is not None}


def _as_datetime(value: Any) -> Any:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=None)


# A running trial's reports that wait for its next write (see `report`), with the time its reports
# were last written (or it started). The trial loop writes what is left before `tell`; a trial
# object that goes away (its run ended by an error) takes its entry with it.
_held: weakref.WeakKeyDictionary[optuna.Trial, tuple[float, dict[int, float]]] = weakref.WeakKeyDictionary()


def report(trial: optuna.Trial, value: float, step: int, *, hold_s: float) -> None:
    """``trial.report``, except that on RDB storages a report made less than ``hold_s`` seconds after
    the trial's reports were last written (or it started) waits for the trial's next write.

    Each report is a transaction of its own in Optuna (about 2 ms of CPU on SQLite, a tenth of a
    0.2 s trial over five folds); held ones go into the transaction of the trial's user attributes
    (:func:`set_user_attrs`), or of its next report after ``hold_s``, or are written before the trial
    is told (:func:`write_reports`). The pruner sees every report at once (it reads the trial kept
    in this process); other processes see them up to ``hold_s`` late, and a trial killed meanwhile
    loses them with the rest of its run. Other storages write each report at once.
    """
    frozen = trial._cached_frozen_trial
    if not is_rdb(trial.storage) or step in frozen.intermediate_values:
        trial.report(value, step)  # Optuna warns about, and ignores, a step reported twice
        return
    start = frozen.datetime_start.timestamp() if frozen.datetime_start else time.time()
    since, held = _held.get(trial) or (start, {})
    held[step] = frozen.intermediate_values[step] = float(value)
    _held[trial] = (since, held)
    if time.time() - since >= hold_s:
        set_user_attrs(trial, {})


def write_reports(trial: optuna.Trial) -> None:
    """Write the reports :func:`report` holds for ``trial`` (one transaction on RDB storages), and forget it."""
    try:
        if _held.get(trial, (0.0, {}))[1]:
            set_user_attrs(trial, {})
    finally:
        _held.pop(trial, None)


def set_user_attrs(
    trial: optuna.Trial, attrs: Mapping[str, Any], *, study_system_attrs: Mapping[str, Any] | None = None
) -> None:
    """Store several user attributes of a running trial, in one transaction on RDB storages.

    Optuna commits each ``set_user_attr`` on its own; on the default SQLite storage the ten or so
    attributes of a trial's diagnostics then cost more CPU than fitting a small model. One
    transaction writes the same rows, all of them or (on any error) none. ``study_system_attrs``
    (a trial's optuna-dashboard note, which the dashboard reads from the study) go into the same
    transaction. Other storages get one ``set_user_attr`` (``set_study_system_attr``) per key.
    Raises what ``set_user_attr`` raises, e.g. ``UpdateFinishedTrialError`` when a peer has
    finished the trial.
    """
    backend = getattr(trial.storage, "_backend", trial.storage)
    write = getattr(backend, "set_trial_user_attrs", None)  # tuner's storages retry it (store/_retry.py)
    if write is None and isinstance(backend, optuna.storages.RDBStorage):
        write = functools.partial(write_user_attrs, backend)
    extra = dict(study_system_attrs or {})
    _since, reports = _held.get(trial, (0.0, {}))
    if write is not None:
        options: dict[str, Any] = {"study_system_attrs": extra} if extra else {}
        if reports:
            options["intermediate_values"] = reports
        write(trial._trial_id, attrs, **options)
        if trial in _held:
            _held[trial] = (time.time(), {})
    else:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        for key, value in extra.items():
            trial.storage.set_study_system_attr(trial.study._study_id, key, value)
        return
    # What Trial.set_user_attr keeps in step, so trial.user_attrs shows them in this process too.
    trial._cached_frozen_trial.user_attrs.update(attrs)


@contextlib.contextmanager
def asking() -> Iterator[None]:
    """Around ``study.ask()``: on tuner's RDB storages the trial ``ask`` creates and then reads is
    not read back (:class:`LeanRDBStorage`), as nothing can have changed it in between."""
    _holding.asking = True
    try:
        yield
    finally:
        _holding.asking = False
        _holding.created = None


@contextlib.contextmanager
def telling() -> Iterator[None]:
    """Around ``study.tell()``: on tuner's RDB storages the trial ``tell`` has just finished is not
    read back (:class:`LeanRDBStorage`). ``tell`` reads the trial, lets the sampler see it, finishes
    it and reads it again; the second read is the first with the state, values and end time just
    written. A write to the trial in between (a sampler's ``after_trial``) makes it a real read."""
    _holding.telling = True
    try:
        yield
    finally:
        _holding.telling = False
        _holding.told = None


@contextlib.contextmanager
def params_in_one_write(trial: optuna.Trial) -> Iterator[None]:
    """The parameters suggested for ``trial`` within the block are written in one transaction at its end.

    Optuna commits each parameter on its own: six of them cost a 0.2 s trial about 3 % of its CPU
    on SQLite. Only tuner's RDB storages hold them (:class:`LeanRDBStorage`); on others
    this does nothing. Inside the block the trial (``trial.params``) and the sampler see each
    parameter at once; other readers of the storage see them at the end of the block.
    """
    backend = getattr(trial.storage, "_backend", trial.storage)
    holding = getattr(backend, "holding_params", None)
    if holding is None:
        yield
        return
    with holding(trial._trial_id):
        yield


HeldParam = tuple[str, float, BaseDistribution, BaseDistribution | None]
_FINISHED = tuple(state for state in TrialState if state.is_finished())
# SQLAlchemy's names of MySQL and MariaDB, which keep whole seconds of a trial's start.
_WHOLE_SECONDS = ("mysql", "mariadb")
# Per thread: the parameters held for one trial of one storage (`trial`: id of the storage, trial
# id, the parameters; LeanRDBStorage.holding_params), the trial it created last (`created`), and
# within `telling` the trial tell read (`told`: id of the storage, the trial, whether it is finished).
_holding = threading.local()


class LeanRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage with fewer and cheaper round trips per trial; tuner's RDB storages are one
    (store/_retry.py).

    It writes the parameters a trial suggests within ``holding_params`` in one transaction
    (:func:`params_in_one_write`), and reads trials with plain SQL (:func:`rdb_trials`) where
    Optuna's ORM builds an object per row: each trial costs the loop about six reads (its own
    ``get_trial`` at ``ask`` and two at ``tell``; the cache's reads of new and running trials
    before ``ask``, in it, and for the sampler). ``tests/contract/test_fast_reads.py`` checks that
    the trials read are Optuna's own. Within :func:`asking`, the read of the trial ``ask`` has
    just created is the trial its creation returned.
    """

    def _inside_a_transaction(self) -> bool:
        # A read from inside one of Optuna's transactions (checking a trial within a write) goes
        # through its session: a connection of its own would wait for that transaction's lock.
        return bool(self.scoped_session.registry.has() and self.scoped_session().in_transaction())

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        created = super()._create_new_trial(study_id, template_trial)
        # Inside `asking`, the trial `ask` creates is the trial it reads next. MySQL keeps whole
        # seconds of the start time, so there a read differs from the trial the creation returns.
        if getattr(_holding, "asking", False) and template_trial is None and self.engine.name not in _WHOLE_SECONDS:
            _holding.created = (id(self), created)
        return created

    def get_trial(self, trial_id: int) -> FrozenTrial:
        created = getattr(_holding, "created", None)
        _holding.created = None
        if created is not None and created[0] == id(self) and created[1]._trial_id == trial_id:
            return copy.deepcopy(created[1])
        told = getattr(_holding, "told", None)
        if told is not None and told[0] == id(self) and told[1]._trial_id == trial_id and told[2]:
            _holding.told = None
            return copy.deepcopy(told[1])
        if self._inside_a_transaction():
            return super().get_trial(trial_id)
        found = _rdb_trials(
            self, None, states=None, ids=[trial_id], params=True, intermediate=True, user_attrs=None, system_attrs="all"
        )
        if not found:
            raise KeyError(f"No trial with trial-id {trial_id} exists.")  # what Optuna raises
        if getattr(_holding, "telling", False):
            _holding.told = (id(self), copy.deepcopy(found[0]), False)
        return found[0]

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        """Optuna's, in two statements where it finishes a trial: one update of the trial that checks
        it is not finished, one upsert of its values (Optuna reads the trial and each value first)."""
        # Start-up time: only RDB storages need these (and SQLAlchemy with them).
        from optuna.storages._rdb.models import TrialModel, TrialValueModel
        from optuna.storages._rdb.storage import _create_scoped_session
        from sqlalchemy import exc, update

        upsert = _upsert(self.engine.name, TrialValueModel, ("trial_id", "objective"), ("value", "value_type"))
        if not state.is_finished() or upsert is None:
            _holding.told = None
            return super().set_trial_state_values(trial_id, state, values)
        trials = TrialModel.__table__
        # Optuna stores naive UTC (its model's setter converts) and hands out naive local time.
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            with _create_scoped_session(self.scoped_session) as session:
                changed = session.execute(  # type: ignore[attr-defined]  # an UPDATE's CursorResult
                    update(trials)
                    .where(trials.c.trial_id == trial_id, trials.c.state.not_in(_FINISHED))
                    .values(state=state, datetime_complete=now)
                ).rowcount
                if not changed:  # Optuna's errors: no such trial, or a finished one
                    found = TrialModel.find_or_raise_by_id(trial_id, session)
                    self.check_trial_is_updatable(trial_id, cast("TrialState", found.state))
                if values:
                    stored = TrialValueModel.value_to_stored_repr
                    rows = [
                        {"trial_id": trial_id, "objective": objective, "value": value, "value_type": kind}
                        for objective, (value, kind) in enumerate(map(stored, values))
                    ]
                    session.execute(upsert, rows)
        except exc.IntegrityError:
            return False
        told = getattr(_holding, "told", None)
        if told is not None and told[0] == id(self) and told[1]._trial_id == trial_id:
            # MySQL keeps whole seconds of the end time, so there the trial is read back.
            if self.engine.name in _WHOLE_SECONDS:
                _holding.told = None
            else:
                told[1].state, told[1].values, told[1].datetime_complete = state, values, _local(now)
                _holding.told = (told[0], told[1], True)
        return True

    # Any other write to a trial makes the trial `tell` read stale (parameters: `_set_trial_param`).
    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        _holding.told = None
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        _holding.told = None
        super().set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        _holding.told = None
        super().set_trial_system_attr(trial_id, key, value)

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        # What RDBStorage._get_trials returns (except that a deleted study reads as no trials).
        if self._inside_a_transaction():
            return super()._get_trials(study_id, states, included_trial_ids, trial_id_greater_than)
        included = sorted(i for i in included_trial_ids if i <= trial_id_greater_than)
        chosen = None if states is None else [state for state in TrialState if state in states]
        options: dict[str, Any] = dict(
            states=chosen, params=True, intermediate=True, user_attrs=None, system_attrs="all"
        )
        if trial_id_greater_than < 0:
            return _rdb_trials(self, study_id, **options)
        if len(included) <= _IDS_PER_QUERY:
            return _rdb_trials(self, study_id, ids=included, after=trial_id_greater_than, ids_or_after=True, **options)
        newer = _rdb_trials(self, study_id, after=trial_id_greater_than, **options)
        return rdb_trials(self, study_id, trial_ids=included, states=chosen) + newer

    @contextlib.contextmanager
    def holding_params(self, trial_id: int) -> Iterator[None]:
        """Parameters set on ``trial_id`` from this thread within the block are written in one
        transaction at its end."""
        held: list[HeldParam] = []
        _holding.trial = (id(self), trial_id, held)
        try:
            yield
        except BaseException:
            _holding.trial = None
            with contextlib.suppress(Exception):  # the error in the block is the one to report
                self.write_params(trial_id, held)
            raise
        _holding.trial = None
        self.write_params(trial_id, held)

    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        _holding.told = None
        holding = getattr(_holding, "trial", None)
        if holding is None or holding[:2] != (id(self), trial_id):
            super()._set_trial_param(trial_id, param_name, param_value_internal, distribution, previous_distribution)
            return
        # A clash with the study's stored distribution is raised by the suggest that made it, as
        # without holding, before Optuna's cache keeps this distribution as the study's.
        if previous_distribution is None:
            previous_distribution = self._stored_distribution(trial_id, param_name)
        if previous_distribution is not None:
            optuna.distributions.check_distribution_compatibility(previous_distribution, distribution)
        holding[2].append((param_name, param_value_internal, distribution, previous_distribution))

    def _stored_distribution(self, trial_id: int, param_name: str) -> BaseDistribution | None:
        """The distribution the study of ``trial_id`` stores for ``param_name`` (what Optuna looks up
        when its cache does not know the name yet)."""
        # Start-up time: only RDB storages need these (and SQLAlchemy with them).
        from optuna.storages._rdb.models import TrialModel, TrialParamModel
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(self.scoped_session) as session:
            study_id = session.query(TrialModel.study_id).filter(TrialModel.trial_id == trial_id).scalar()
            found = (
                session.query(TrialParamModel.distribution_json)
                .join(TrialModel)
                .filter(TrialModel.study_id == study_id, TrialParamModel.param_name == param_name)
                .first()
            )
        return None if found is None else optuna.distributions.json_to_distribution(found[0])

    def write_params(self, trial_id: int, params: Sequence[HeldParam]) -> None:
        """What ``RDBStorage._set_trial_param`` does for each of ``params`` (name, internal value,
        distribution, the study's distribution of that name when known), in one transaction.

        Each was checked against the study's distribution of its name when it was held
        (:meth:`_set_trial_param`); all are inserted in one statement, in the order suggested.
        """
        if not params:
            return
        # Start-up time: only RDB storages need these (and SQLAlchemy with them).
        from optuna.storages._rdb.models import TrialModel, TrialParamModel
        from optuna.storages._rdb.storage import _create_scoped_session
        from sqlalchemy import insert

        with _create_scoped_session(self.scoped_session, True) as session:
            trial = TrialModel.find_or_raise_by_id(trial_id, session)
            self.check_trial_is_updatable(trial_id, cast("TrialState", trial.state))
            rows = [
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": value,
                    "distribution_json": optuna.distributions.distribution_to_json(distribution),
                }
                for name, value, distribution, _previous in params
            ]
            session.execute(insert(TrialParamModel), rows)  # one cached statement, many rows


def write_user_attrs(
    storage: optuna.storages.RDBStorage,
    trial_id: int,
    attrs: Mapping[str, Any],
    *,
    study_system_attrs: Mapping[str, Any] | None = None,
    intermediate_values: Mapping[int, float] | None = None,
) -> None:
    """Write user attributes of trial ``trial_id`` (and system attributes of its study, and reports
    of the trial by step) in one transaction of an RDB storage.

    One check of the trial's state and one multi-row upsert per table, where Optuna's own
    ``set_trial_user_attr`` reads the trial and upserts once per attribute (a trial's diagnostics
    are a dozen attributes: two dozen statements). Databases without an upsert statement get
    Optuna's per-row writes, in the same transaction.
    """
    # Start-up time: only RDB storages need these (and SQLAlchemy with them).
    from optuna.storages._rdb.models import (
        StudySystemAttributeModel,
        TrialIntermediateValueModel,
        TrialModel,
        TrialUserAttributeModel,
    )
    from optuna.storages._rdb.storage import _create_scoped_session

    if not attrs and not study_system_attrs and not intermediate_values:
        return
    dialect = storage.engine.name
    with _create_scoped_session(storage.scoped_session) as session:
        trial = TrialModel.find_or_raise_by_id(trial_id, session)
        storage.check_trial_is_updatable(trial_id, cast("TrialState", trial.state))
        if attrs:
            rows = [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]
            upsert = _upsert(dialect, TrialUserAttributeModel, ("trial_id", "key"), ("value_json",))
            if upsert is not None:
                session.execute(upsert, rows)
            else:
                for key, value in attrs.items():
                    storage._set_trial_attr_without_commit(session, TrialUserAttributeModel, trial_id, key, value)
        if intermediate_values:
            stored = TrialIntermediateValueModel.intermediate_value_to_stored_repr
            rows = [
                {
                    "trial_id": trial_id,
                    "step": step,
                    **dict(zip(("intermediate_value", "intermediate_value_type"), stored(value), strict=True)),
                }
                for step, value in intermediate_values.items()
            ]
            upsert = _upsert(
                dialect,
                TrialIntermediateValueModel,
                ("trial_id", "step"),
                ("intermediate_value", "intermediate_value_type"),
            )
            if upsert is not None:
                session.execute(upsert, rows)
            else:
                for step, value in intermediate_values.items():
                    storage._set_trial_intermediate_value_without_commit(session, trial_id, step, value)
        if study_system_attrs:
            rows = [
                {"study_id": trial.study_id, "key": key, "value_json": json.dumps(value)}
                for key, value in study_system_attrs.items()
            ]
            upsert = _upsert(dialect, StudySystemAttributeModel, ("study_id", "key"), ("value_json",))
            if upsert is not None:
                session.execute(upsert, rows)
            else:
                for row in rows:  # what RDBStorage.set_study_system_attr does, without its own commit
                    found = session.query(StudySystemAttributeModel).filter_by(study_id=row["study_id"], key=row["key"])
                    existing = found.one_or_none()
                    if existing is None:
                        session.add(StudySystemAttributeModel(**row))
                    else:
                        existing.value_json = row["value_json"]


@functools.cache
def _upsert(dialect: str, model: Any, keys: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """An INSERT, to execute with many rows, that overwrites ``columns`` of a row whose unique ``keys``
    are stored already; None where the database has no such statement (SQLite before 3.24, others
    than SQLite/PostgreSQL/MySQL). One statement per table, so SQLAlchemy compiles it once."""
    # Start-up time: only RDB storages need SQLAlchemy, and each only its own dialect (MySQL's takes 0.1 s).
    if dialect in _WHOLE_SECONDS:  # MySQL, MariaDB
        from sqlalchemy.dialects import mysql

        statement = mysql.insert(model)
        return statement.on_duplicate_key_update({column: statement.inserted[column] for column in columns})
    if dialect == "postgresql" or (dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0)):
        module = "postgresql" if dialect == "postgresql" else "sqlite"
        statement = importlib.import_module(f"sqlalchemy.dialects.{module}").insert(model)
        return statement.on_conflict_do_update(
            index_elements=[getattr(model, key) for key in keys],
            set_={column: statement.excluded[column] for column in columns},
        )
    return None


def create_missing_indexes(storage: optuna.storages.RDBStorage) -> None:
    """Create any index of Optuna's schema that the database lacks (a unique study name among them).

    MySQL commits each DDL statement on its own: a connection ended between ``CREATE TABLE`` and
    ``CREATE INDEX`` leaves a table without its indexes, and creating the schema again skips
    tables that exist, indexes included.
    """
    from optuna.storages._rdb.models import BaseModel  # start-up time: only RDB storages need it

    for table in BaseModel.metadata.sorted_tables:
        for index in table.indexes:
            index.create(storage.engine, checkfirst=True)


def is_rdb(storage: optuna.storages.BaseStorage) -> bool:
    """An RDB storage (SQLite, PostgreSQL, MySQL), which :func:`rdb_trials` can read, even behind Optuna's cache."""
    return isinstance(_unwrapped(storage), optuna.storages.RDBStorage)


def _unwrapped(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    return storage._backend if isinstance(storage, optuna.storages._CachedStorage) else storage


# Most trial ids one `IN (...)` names: SQLite's limit on bound parameters is 32,766 (999 before 3.32).
_IDS_PER_QUERY = 500


def rdb_trials(
    storage: optuna.storages.BaseStorage,
    study_id: int,
    *,
    states: Collection[TrialState] | None = None,
    trial_ids: Collection[int] | None = None,
    after: int = -1,
    limit: int | None = None,
    params: bool = True,
    intermediate: bool = True,
    user_attrs: Collection[str] | None = None,
    system_attrs: Literal["all", "constraints"] = "all",
) -> list[FrozenTrial]:
    """Trials of study ``study_id`` read from Optuna's RDB tables with plain SQL, in trial id order.

    With the defaults the trials equal ``storage.get_all_trials(study_id, states=states)``
    (``tests/contract/test_fast_reads.py`` checks it on every RDB backend); Optuna's ORM builds an
    object per row and costs about ten times as much. The options leave out what a caller does
    not need:

    Args:
        storage: An RDB storage (:func:`is_rdb`).
        study_id: The study's id in the storage.
        states: Only trials in these states.
        trial_ids: Only these trials.
        after: Only trials whose id is greater (to read a study in batches, with ``limit``).
        limit: At most this many trials (the lowest ids).
        params: Read parameters and distributions (else both are empty).
        intermediate: Read intermediate values (else empty).
        user_attrs: Only the user attributes with these keys (None: all of them).
        system_attrs: ``"constraints"`` reads only the system attributes that hold constraint
            values (``FrozenTrial.constraints`` is then complete), ``"all"`` every one.
    """
    if trial_ids is not None:
        ids = sorted(set(trial_ids))
        batches = [ids[i : i + _IDS_PER_QUERY] for i in range(0, len(ids), _IDS_PER_QUERY)]
        options: dict[str, Any] = dict(
            states=states, params=params, intermediate=intermediate, user_attrs=user_attrs, system_attrs=system_attrs
        )
        return [trial for batch in batches for trial in _rdb_trials(storage, study_id, ids=batch, **options)]
    return _rdb_trials(
        storage,
        study_id,
        states=states,
        after=after,
        limit=limit,
        params=params,
        intermediate=intermediate,
        user_attrs=user_attrs,
        system_attrs=system_attrs,
    )


def _rdb_trials(
    storage: optuna.storages.BaseStorage,
    study_id: int | None,
    *,
    states: Collection[TrialState] | None,
    ids: Sequence[int] | None = None,
    after: int = -1,
    ids_or_after: bool = False,
    limit: int | None = None,
    params: bool,
    intermediate: bool,
    user_attrs: Collection[str] | None,
    system_attrs: str,
) -> list[FrozenTrial]:
    import sqlalchemy as sa  # start-up time: only RDB storages need SQLAlchemy (Optuna imports it lazily too)
    from optuna.storages._rdb import models  # start-up time: only RDB storages need it

    trials = models.TrialModel.__table__
    values_table = models.TrialValueModel.__table__
    params_table = models.TrialParamModel.__table__
    user_table = models.TrialUserAttributeModel.__table__
    system_table = models.TrialSystemAttributeModel.__table__
    steps_table = models.TrialIntermediateValueModel.__table__

    chosen: list[Any] = [] if study_id is None else [trials.c.study_id == study_id]
    if states is not None:
        chosen.append(trials.c.state.in_(list(states)))
    if ids_or_after:  # the trials of `ids`, and any newer than `after` (what a cache of the study lacks)
        chosen.append(sa.or_(trials.c.trial_id.in_(list(ids or ())), trials.c.trial_id > after))
    else:
        if ids is not None:
            chosen.append(trials.c.trial_id.in_(list(ids)))
        if after >= 0:
            chosen.append(trials.c.trial_id > after)
    head = (
        sa.select(
            trials.c.trial_id, trials.c.number, trials.c.state, trials.c.datetime_start, trials.c.datetime_complete
        )
        .where(*chosen)
        .order_by(trials.c.trial_id)
    )
    if limit is not None:
        head = head.limit(limit)

    engine = _unwrapped(storage).engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(head).all()
        if not rows:
            return []
        if limit is not None:
            # The rows of a batch: the trials chosen above, by the range of their ids.
            chosen.append(trials.c.trial_id.between(rows[0][0], rows[-1][0]))

        def children(table: Any, *columns: Any, order: Any, where: Sequence[Any] = ()) -> list[Any]:
            query = (
                sa.select(table.c.trial_id, *columns)
                .select_from(table.join(trials, table.c.trial_id == trials.c.trial_id))
                .where(*chosen, *where)
                .order_by(table.c.trial_id, order)
            )
            return list(conn.execute(query).all())

        value_rows = children(
            values_table,
            values_table.c.objective,
            values_table.c.value,
            values_table.c.value_type,
            order=values_table.c.objective,
        )
        param_rows = (
            children(
                params_table,
                params_table.c.param_name,
                params_table.c.param_value,
                params_table.c.distribution_json,
                order=params_table.c.param_id,
            )
            if params
            else []
        )
        step_rows = (
            children(
                steps_table,
                steps_table.c.step,
                steps_table.c.intermediate_value,
                steps_table.c.intermediate_value_type,
                order=steps_table.c.step,
            )
            if intermediate
            else []
        )
        user_rows = (
            []
            if user_attrs is not None and not user_attrs
            else children(
                user_table,
                user_table.c.key,
                user_table.c.value_json,
                order=user_table.c.key,
                where=() if user_attrs is None else (user_table.c.key.in_(list(user_attrs)),),
            )
        )
        constraint = _CONSTRAINTS_KEY
        system_rows = children(
            system_table,
            system_table.c.key,
            system_table.c.value_json,
            order=system_table.c.key,
            where=()
            if system_attrs == "all"
            else (sa.or_(system_table.c.key == constraint, system_table.c.key.startswith(f"{constraint}:")),),
        )

    values: dict[int, list[float]] = {}
    for trial, objective, value, kind in value_rows:
        listed = values.setdefault(trial, [])
        listed.extend([0.0] * (objective + 1 - len(listed)))
        listed[objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
    dists: dict[int, dict[str, BaseDistribution]] = {}
    external: dict[int, dict[str, Any]] = {}
    parsed: dict[str, BaseDistribution] = {}
    for trial, name, internal, text in param_rows:
        dist = parsed.get(text)
        if dist is None:
            dist = parsed[text] = json_to_distribution(text)
        dists.setdefault(trial, {})[name] = dist
        external.setdefault(trial, {})[name] = dist.to_external_repr(internal)
    steps: dict[int, dict[int, float]] = {}
    for trial, step, value, kind in step_rows:
        steps.setdefault(trial, {})[step] = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(
            value, kind
        )
    users: dict[int, dict[str, Any]] = {}
    for trial, key, text in user_rows:
        users.setdefault(trial, {})[key] = json.loads(text)
    systems: dict[int, dict[str, Any]] = {}
    for trial, key, text in system_rows:
        systems.setdefault(trial, {})[key] = json.loads(text)
    return [
        FrozenTrial(
            number=number,
            state=state,
            value=None,
            values=values.get(trial_id),
            datetime_start=_local(start),
            datetime_complete=_local(complete),
            params=external.get(trial_id, {}),
            distributions=dists.get(trial_id, {}),
            user_attrs=users.get(trial_id, {}),
            system_attrs=systems.get(trial_id, {}),
            intermediate_values=steps.get(trial_id, {}),
            trial_id=trial_id,
        )
        for trial_id, number, state, start, complete in rows
    ]


def _local(stamp: datetime | None) -> datetime | None:
    # Optuna stores naive UTC and hands out naive local time (models.TrialModel.datetime_start).
    if stamp is None or _LOCAL_IS_UTC:
        return stamp
    return stamp.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)


# Most servers run on UTC, where the conversion above changes nothing and costs the most of a read.
_LOCAL_IS_UTC = time.timezone == 0 and time.altzone == 0 and time.daylight == 0


def pareto_trials(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    """The trials ``Study.best_trials`` would return for a study holding ``trials``: the COMPLETE
    trials no other beats on every objective, among the feasible ones when any trial has constraints."""
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials  # start-up time: numpy

    constrained = any(trial.constraints for trial in trials)
    return _get_pareto_front_trials_by_trials(trials, directions, consider_constraint=constrained)


@dataclass(frozen=True)
class TrialNames:
    """The parameter names and user attribute keys of a study's trials, in the order
    :func:`rdb_trials` gives them; ``last_trial_id`` is the newest trial's id then (-1: none)."""

    trial_ids: list[int]
    params: dict[int, list[str]]
    user_attrs: dict[int, list[str]]
    last_trial_id: int


def rdb_names(storage: optuna.storages.BaseStorage, study_id: int) -> TrialNames:
    """Every trial's parameter names and user attribute keys, without their values (an export's
    CSV header, before the rows are streamed)."""
    import sqlalchemy as sa  # start-up time: only RDB storages need SQLAlchemy
    from optuna.storages._rdb import models  # start-up time: only RDB storages need it

    trials = models.TrialModel.__table__
    params_table = models.TrialParamModel.__table__
    user_table = models.TrialUserAttributeModel.__table__
    mine = trials.c.study_id == study_id

    def names(table: Any, name: Any, order: Any) -> dict[int, list[str]]:
        query = (
            sa.select(table.c.trial_id, name)
            .select_from(table.join(trials, table.c.trial_id == trials.c.trial_id))
            .where(mine)
            .order_by(table.c.trial_id, order)
        )
        found: dict[int, list[str]] = {}
        for trial, text in conn.execute(query):
            found.setdefault(trial, []).append(text)
        return found

    with _unwrapped(storage).engine.connect() as conn:  # type: ignore[attr-defined]
        ids = list(conn.execute(sa.select(trials.c.trial_id).where(mine).order_by(trials.c.trial_id)).scalars())
        params = names(params_table, params_table.c.param_name, params_table.c.param_id)
        user_attrs = names(user_table, user_table.c.key, user_table.c.key)
    return TrialNames(ids, params, user_attrs, ids[-1] if ids else -1)
