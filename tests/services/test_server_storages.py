"""PostgreSQL used for real: a dropped connection mid-trial, the password kept out of sight, the plain URL.

Many workers, kill -9, heartbeats, attribute writes and reading while a run writes are storage
contracts: tests/contract runs them over every backend, servers included.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from backends import CONNECT_S, POSTGRES
from optuna.trial import TrialState
from support import PATIENCE_S, check_contiguous, last_beat, running_by, wait_for

from tuner import _optuna
from tuner.store import open_storage

pytestmark = pytest.mark.services


def _terminate_backends(database: str) -> int:
    import psycopg2

    with psycopg2.connect(connect_timeout=CONNECT_S, **POSTGRES) as admin, admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        return len(cursor.fetchall())


@pytest.mark.slow
def test_a_dropped_database_connection_mid_trial_reconnects_without_duplicates(make_study, postgres_url, tuner_process):
    study = make_study("held", n_trials=3, storage=postgres_url)
    study.hold(from_number=0)  # the first trial runs until its worker has beaten over a new connection
    worker = tuner_process("worker", study.spec, "--heartbeat", "1", "--grace", "30")
    wait_for(lambda: running_by(study, worker.pid), what="a running trial")
    running = running_by(study, worker.pid)[0]
    assert _terminate_backends(postgres_url.rsplit("/", 1)[1]) >= 1
    storage = open_storage(postgres_url)
    dropped_at, _ = _optuna.heartbeat_table(storage)
    wait_for(lambda: last_beat(storage, running._trial_id) > dropped_at, what="a heartbeat after the drop")
    study.release()
    _out, err = worker.communicate(timeout=PATIENCE_S)
    assert worker.returncode == 0, err
    trials = study.trials()
    check_contiguous(trials)
    assert len(trials) == 3
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)


def _command_lines(root: int) -> list[str]:
    """Command lines of process ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    lines, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            lines.append((Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return lines


@pytest.mark.slow
def test_the_storage_password_never_shows_in_output_ps_or_exports(
    tmp_path, make_study, postgres_url, run_cli, monkeypatch, tuner_process
):
    secret = "Sup3r-secret-pw"  # the server trusts local users, so any password connects
    url = postgres_url.replace("postgres@", f"postgres:{secret}@")
    study = make_study("held", n_trials=4)
    study.hold(from_number=1)  # both workers hold a trial while their command lines are read
    run = tuner_process("run", study.spec, "--jobs", "2", env={"TUNER_STORAGE": url})
    wait_for(
        lambda: (
            sum(
                t.state == TrialState.RUNNING
                for t in optuna.load_study(study_name=study.name, storage=open_storage(url)).get_trials()
            )
            == 2
        ),
        what="both workers running a trial",
    )
    command_lines = _command_lines(run.pid)
    study.release()
    out, err = run.communicate(timeout=PATIENCE_S)
    assert len(command_lines) >= 3, command_lines  # the run, its fork server and workers
    assert not [line for line in command_lines if secret in line]
    assert run.returncode == 0, err
    assert secret not in out + err and "postgres:***@" in out

    url_file = tmp_path / "storage.url"
    url_file.write_text(url)
    monkeypatch.setenv("TUNER_STORAGE", url)
    outputs = [
        run_cli("show", study.name),
        run_cli("export", study.name, "--format", "json"),
        run_cli("list"),
        run_cli("doctor", study.name, "--storage-file", url_file),
    ]
    assert all(result.code == 0 for result in outputs), [r.err for r in outputs]
    assert not [r for r in outputs if secret in r.out + r.err]
    assert "postgres:***@" in outputs[1].out, "the stored spec keeps the URL, redacted"


def test_a_plain_postgresql_url_opens_with_the_postgres_extra(postgres_url):
    """README documents `postgresql://…`; the `postgres` extra must make that URL work as written."""
    plain = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    storage, reopened = open_storage(plain), open_storage(plain)
    try:
        study = optuna.create_study(storage=storage, study_name="plain-url")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        again = optuna.load_study(study_name="plain-url", storage=reopened)
        assert [t.value for t in again.get_trials()] == [t.value for t in study.get_trials()]
    finally:
        for opened in (storage, reopened):
            opened.engine.dispose()  # type: ignore[attr-defined]
