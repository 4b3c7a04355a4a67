"""The database administrator ends every connection of a running study, again and again: the run
reconnects and finishes its budget, with no trial failed, lost or counted twice.

Connections are ended from the test (``pg_terminate_backend``, MariaDB's ``KILL``) every second
for the whole run, so some land between queries (the pool's pre-ping replaces those)
and some in the middle of one (the storage's retry policy, store/_retry.py, makes the call again).
The last trials wait until enough rounds have ended connections, so the run cannot finish first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from backends import MYSQL, POSTGRES, backend_params, supply
from optuna.trial import TrialState
from support import check_contiguous, wait_for

pytestmark = pytest.mark.services

N_TRIALS = 40
MIN_ROUNDS = 5  # rounds that ended at least one connection of the study, during the run


def _ender(kind: str, database: str) -> Callable[[], int]:
    """A function that ends every connection to ``database`` but its own; returns how many it ended."""
    if kind == "postgresql":
        import psycopg2

        admin = psycopg2.connect(connect_timeout=3, **POSTGRES)
        admin.autocommit = True

        def end_postgresql() -> int:
            with admin.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                )
                return len(cursor.fetchall())

        return end_postgresql
    import pymysql

    admin = pymysql.connect(connect_timeout=3, autocommit=True, **MYSQL)

    def end_mysql() -> int:
        ended = 0
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()", (database,)
            )
            for (pid,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL {int(pid)}")
                    ended += 1
                except pymysql.err.OperationalError:
                    pass  # it closed meanwhile
        return ended

    return end_mysql


@contextmanager
def ending_connections(kind: str, url: str) -> Iterator[list[int]]:
    """End the study database's connections in a loop until the block exits; yields the rounds' counts."""
    end = _ender(kind, url.rsplit("/", 1)[1])
    rounds: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(1.0):
            rounds.append(end())

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield rounds
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.fixture(params=backend_params("postgresql", "mysql"))
def server(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    with supply(request.param, tmp_path) as backend:
        yield backend


def _release_after_enough_rounds(study: Any, rounds: list[int]) -> None:
    wait_for(
        lambda: sum(1 for ended in rounds if ended) >= MIN_ROUNDS, what=f"{MIN_ROUNDS} rounds that ended connections"
    )
    study.release()


def _check(study: Any, rounds: list[int], outputs: list[tuple[int | None, str]]) -> None:
    for code, err in outputs:
        assert code == 0, err
        assert "Traceback" not in err, err
    hits = sum(1 for ended in rounds if ended)
    assert hits >= MIN_ROUNDS, f"only {hits} rounds ended a connection during the run; the test proved nothing"
    trials = study.trials()
    check_contiguous(trials)
    spare = _spare_trials(trials)
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= N_TRIALS - len(spare), _not_complete(trials)
    assert all(t.state == TrialState.COMPLETE for t in trials if t not in spare), _not_complete(trials)


def _spare_trials(trials: list[Any]) -> list[Any]:
    """A drop right at the commit of a new trial makes the trial twice (store/_retry.py): the spare
    stays RUNNING with no worker named on it until the grace period, then is repaired as lost."""
    spare = [t for t in trials if t.state == TrialState.RUNNING and "tuner:worker" not in t.system_attrs]
    assert len(spare) <= 1, _not_complete(trials)
    return spare


def _not_complete(trials: list[Any]) -> dict[int, Any]:
    return {t.number: (t.state.name, t.user_attrs, t.system_attrs) for t in trials if t.state != TrialState.COMPLETE}


@pytest.mark.slow
def test_a_run_with_jobs_rides_out_connections_ended_again_and_again(server, make_study, tuner_process):
    study = make_study("held", n_trials=N_TRIALS, storage=server.url)
    study.hold(from_number=N_TRIALS // 2)
    with ending_connections(server.kind, server.url) as rounds:
        run = tuner_process("run", study.spec, "--jobs", "2")
        _release_after_enough_rounds(study, rounds)
        _out, err = run.communicate(timeout=300)
    _check(study, rounds, [(run.returncode, err)])


@pytest.mark.slow
def test_independent_workers_ride_out_connections_ended_again_and_again(server, make_study, tuner_process):
    study = make_study("held", n_trials=N_TRIALS, storage=server.url)
    study.hold(from_number=N_TRIALS // 2)
    with ending_connections(server.kind, server.url) as rounds:
        workers = [tuner_process("worker", study.spec) for _ in range(2)]
        _release_after_enough_rounds(study, rounds)
        outputs = [(w.returncode, w.communicate(timeout=300)[1]) for w in workers]
        outputs = [(w.returncode, err) for w, (_, err) in zip(workers, outputs, strict=True)]
    # Independent workers share only the storage: each may start one trial past the budget.
    trials = study.trials()
    assert N_TRIALS <= len(trials) <= N_TRIALS + 1
    for code, err in outputs:
        assert code == 0, err
        assert "Traceback" not in err, err
    assert sum(1 for ended in rounds if ended) >= MIN_ROUNDS
    spare = _spare_trials(trials)
    assert all(t.state == TrialState.COMPLETE for t in trials if t not in spare), _not_complete(trials)


def test_a_schema_whose_creation_was_cut_off_gets_its_missing_indexes_on_the_retry(tmp_path):
    # MySQL commits each DDL statement: a connection ended between CREATE TABLE and CREATE INDEX
    # leaves `studies` without its unique name index, and two workers could then create one study twice.
    import sqlalchemy

    from tuner.store import _open

    with supply("mysql", tmp_path) as backend:
        _open._rdb(backend.url, {}, None)  # the full schema
        engine = sqlalchemy.create_engine(backend.url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_studies_study_name ON studies")
        attempts = []

        def cut_off_once() -> Any:
            attempts.append(1)
            if len(attempts) == 1:
                raise sqlalchemy.exc.OperationalError("CREATE INDEX", {}, Exception("Lost connection to MySQL server"))
            return _open._rdb(backend.url, {}, None)

        _open._with_schema_retries(cut_off_once)
        indexes = {ix["name"]: ix["unique"] for ix in sqlalchemy.inspect(engine).get_indexes("studies")}
        engine.dispose()
    assert len(attempts) == 2
    assert indexes.get("ix_studies_study_name") in (True, 1)
