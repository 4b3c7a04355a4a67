"""PostgreSQL, MariaDB and Redis used for real: many workers, crashes, dropped connections, secrets."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import optuna
from faults.support import (
    check_contiguous,
    kill_and_resume_checks,
    make_study,
    running_by,
    silent_remote_trial,
    tuner_process,
    wait_for,
)
from optuna.trial import TrialState
from storage_writes import check_set_user_attrs

import tuner
from tuner.engine import WorkerJob, run_worker
from tuner.engine._processes import context as _context
from tuner.spec import load_spec
from tuner.store import Heartbeat, open_storage
from tuner.store.schema import WORKER as ATTR_WORKER

ENQUEUED = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55]


def test_eight_workers_share_the_budget_and_run_each_enqueued_trial_once(tmp_path, server_url):
    n_trials, n_workers = 24, 8
    study = make_study(tmp_path, "fast", n_trials=n_trials, storage=server_url)
    created = optuna.create_study(storage=open_storage(study.url), study_name=study.name, direction="maximize")
    for x in ENQUEUED:
        created.enqueue_trial({"x": x})
    job = WorkerJob(spec=load_spec(study.spec), url=study.url, log_level=logging.ERROR)
    # Eight independent workers, as `tuner worker` on eight machines: no shared gate, only the storage.
    ctx = _context()  # tuner's fork server: imports tuner once, not once per worker
    workers = [ctx.Process(target=run_worker, args=(job,), kwargs={"index": i}) for i in range(n_workers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0] * n_workers

    trials = study.trials()
    check_contiguous(trials)
    assert n_trials <= len(trials) <= n_trials + n_workers - 1, "overshoot is at most workers - 1"
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for x in ENQUEUED:
        assert sum(t.params["x"] == x and "fixed_params" in t.system_attrs for t in trials) == 1
    by_worker = [t.system_attrs[ATTR_WORKER]["pid"] for t in trials]
    assert set(by_worker) <= {w.pid for w in workers} and len(by_worker) == len(trials)


def test_kill_9_on_postgresql_then_resume_retries_the_trial_once(tmp_path, postgres_url):
    study = make_study(tmp_path, "stall", n_trials=5, storage=postgres_url)
    worker = tuner_process("worker", str(study.spec))
    try:
        wait_for(lambda: [t.number for t in running_by(study, worker.pid)] == [2], what="trial 2 running")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
        worker.communicate()
    before = study.trials()
    killed = [t.number for t in before if t.state == TrialState.RUNNING]
    assert len(killed) == 1
    complete = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}
    tuner.run_study(study.spec)
    kill_and_resume_checks(study, complete, killed[0], n_trials=5)


def test_heartbeat_on_postgresql_fails_and_retries_a_silent_remote_workers_trial(tmp_path, postgres_url):
    heartbeat = Heartbeat(interval=1, grace=2)
    study = make_study(tmp_path, "fast", n_trials=3, storage=postgres_url)
    tuner.run_study(study.spec, n_trials=1, heartbeat=heartbeat)
    trial = silent_remote_trial(study, heartbeat)
    time.sleep(heartbeat.grace + 1.5)
    tuner.run_study(study.spec, heartbeat=heartbeat)
    trials = study.trials()
    assert trials[trial.number].state == TrialState.FAIL and "no heartbeat" in trials[trial.number].user_attrs["error"]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == trial.number]
    assert len(retries) == 1 and retries[0].params == trial.params and retries[0].state == TrialState.COMPLETE


def _terminate_backends(database: str) -> int:
    import psycopg2

    from services.conftest import POSTGRES

    with psycopg2.connect(connect_timeout=3, **POSTGRES) as admin, admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        return len(cursor.fetchall())


def test_a_dropped_database_connection_mid_trial_reconnects_without_duplicates(tmp_path, postgres_url):
    study = make_study(tmp_path, "sleepy", n_trials=3, storage=postgres_url)
    worker = tuner_process("worker", str(study.spec), "--heartbeat", "1", "--grace", "30")
    try:
        wait_for(lambda: running_by(study, worker.pid), what="a running trial")
        assert _terminate_backends(postgres_url.rsplit("/", 1)[1]) >= 1
        _out, err = worker.communicate(timeout=120)
    finally:
        worker.kill()
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


def test_the_storage_password_never_shows_in_output_ps_or_exports(tmp_path, postgres_url, run_cli, monkeypatch):
    secret = "Sup3r-secret-pw"  # the server trusts local users, so any password connects
    url = postgres_url.replace("postgres@", f"postgres:{secret}@")
    study = make_study(tmp_path, "slow", n_trials=4)
    run = tuner_process("run", str(study.spec), "--jobs", "2", env={"TUNER_STORAGE": url})
    try:
        wait_for(
            lambda: (
                sum(
                    t.state == TrialState.RUNNING
                    for t in optuna.load_study(study_name=study.name, storage=open_storage(url)).get_trials()
                )
                >= 1
            ),
            what="a running trial",
        )
        command_lines = _command_lines(run.pid)
        out, err = run.communicate(timeout=120)
    finally:
        run.kill()
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


def test_set_user_attrs_on_each_server(server_url):
    check_set_user_attrs(server_url, atomic=not server_url.startswith("redis"))
