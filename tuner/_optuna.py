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
- several trial user attributes in one RDB transaction (``optuna.storages._rdb``), and the
  storage behind a study a user hands in (``Study._storage``, ``_CachedStorage._backend``).

``PRIVATE_NAMES`` lists all of them; ``tests/test_optuna.py`` checks that each still exists, so an
Optuna upgrade that moves one fails CI instead of a user's run, and that no other module uses a
private name of an Optuna class. import-linter forbids every other module to import Optuna's
private modules. Where a private name is gone, this module fails loudly rather than falling back:
``optuna<6`` is pinned and the test names the surface.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, cast

import optuna
from optuna.trial import FrozenTrial, TrialState

# (where, name) of every private name used below; the boundary test checks each one.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("optuna.Trial", "_trial_id"),
    ("optuna.Trial", "_cached_frozen_trial"),
    ("optuna.trial.FrozenTrial", "_trial_id"),
    ("optuna.Study", "_storage"),
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
    ("optuna.storages._rdb.storage", "_create_scoped_session"),
    ("optuna.storages._rdb.models", "TrialUserAttributeModel"),
    ("optuna.storages._rdb.models", "TrialModel"),
    ("optuna.storages._rdb.models", "BaseModel"),
    ("RDB schema", "trial_heartbeats(trial_id, heartbeat)"),
    ("module", "optuna.storages._rdb.storage"),
)
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


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (its ``number`` counts within the study only)."""
    return int(trial._trial_id)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads from, unwrapped from Optuna's cache of an RDB storage (for studies
    users hand in)."""
    storage = study._storage
    return storage._backend if isinstance(storage, optuna.storages._CachedStorage) else storage


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


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Store several user attributes of a running trial, in one transaction on RDB storages.

    Optuna commits each ``set_user_attr`` on its own; on the default SQLite storage the ten or so
    attributes of a trial's diagnostics then cost more CPU than fitting a small model. One
    transaction writes the same rows, all of them or (on any error) none. Other storages get one
    ``set_user_attr`` per key. Raises what ``set_user_attr`` raises, e.g.
    ``UpdateFinishedTrialError`` when a peer has finished the trial.
    """
    backend = getattr(trial.storage, "_backend", trial.storage)
    write = getattr(backend, "set_trial_user_attrs", None)  # tuner's storages retry it (store/_retry.py)
    if write is not None:
        write(trial._trial_id, attrs)
    elif isinstance(backend, optuna.storages.RDBStorage):
        write_user_attrs(backend, trial._trial_id, attrs)
    else:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    # What Trial.set_user_attr keeps in step, so trial.user_attrs shows them in this process too.
    trial._cached_frozen_trial.user_attrs.update(attrs)


def write_user_attrs(storage: optuna.storages.RDBStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Write user attributes of trial ``trial_id`` in one transaction of an RDB storage.

    One check of the trial's state and one multi-row upsert, where Optuna's own
    ``set_trial_user_attr`` reads the trial and upserts once per attribute (a trial's diagnostics
    are a dozen attributes: two dozen statements). Other databases get Optuna's per-attribute write.
    """
    # Start-up time: only RDB storages need these (and SQLAlchemy with them).
    from optuna.storages._rdb.models import TrialModel, TrialUserAttributeModel
    from optuna.storages._rdb.storage import _create_scoped_session

    if not attrs:
        return
    rows = [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]
    upsert = _upsert(storage.engine.name, TrialUserAttributeModel, rows)
    with _create_scoped_session(storage.scoped_session) as session:
        if upsert is None:
            for key, value in attrs.items():
                storage._set_trial_attr_without_commit(session, TrialUserAttributeModel, trial_id, key, value)
            return
        trial = TrialModel.find_or_raise_by_id(trial_id, session)
        storage.check_trial_is_updatable(trial_id, cast("TrialState", trial.state))
        session.execute(upsert)


def _upsert(dialect: str, model: Any, rows: list[dict[str, Any]]) -> Any:
    """One INSERT of ``rows`` that overwrites the value of a (trial, key) stored already; None where
    the database has no such statement (SQLite before 3.24, others than SQLite/PostgreSQL/MySQL)."""
    # Start-up time: only RDB storages need SQLAlchemy.
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    if dialect == "mysql":
        statement = mysql.insert(model).values(rows)
        return statement.on_duplicate_key_update(value_json=statement.inserted.value_json)
    if dialect == "postgresql" or (dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0)):
        statement = (postgresql if dialect == "postgresql" else sqlite).insert(model).values(rows)
        return statement.on_conflict_do_update(
            index_elements=[model.trial_id, model.key], set_={"value_json": statement.excluded.value_json}
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
