"""The fault table: real faults against real runs, each row "lost COMPLETE trials, raw tracebacks".

    python bench/faults.py [--only NAME ...] [--trials N]

Each scenario runs `tuner` as a user does (`python -m tuner ...` processes) on a study of logistic
regression over breast_cancer, injects one kind of fault while trials run, lets the run (or a
rerun) finish, then checks: every trial that was COMPLETE before the fault is still COMPLETE with
the same value, no process printed a Python traceback, and the study ends with its budget of
finished (COMPLETE or PRUNED) trials. Needs the PostgreSQL and MariaDB servers of the README (127.0.0.1, trust), and root
for the small tmpfs of the disk-full row.

Scenarios wait on events (trial counts in the storage), never on elapsed time alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from tuner.store import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
PATIENCE_S = 300.0


@dataclass
class Outcome:
    name: str
    lost: int = 0
    tracebacks: int = 0
    complete: int = 0
    budget: int = 0
    exit_codes: list[int | None] = field(default_factory=list)
    note: str = ""


def spec_file(folder: Path, storage: str, n_trials: int, name: str = "faults") -> Path:
    spec = {
        "name": name,
        "data": {"source": "sklearn:breast_cancer"},
        "model": "logistic",
        "metric": "roc_auc",
        "cv": {"scheme": "stratified", "folds": 3},
        "budget": {"n_trials": n_trials},
        "storage": storage,
        "seed": 1,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def tuner(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def trials(url: str, name: str = "faults") -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url)).get_trials(deepcopy=False)
    except Exception:
        return []


def complete(url: str) -> dict[int, float | None]:
    return {t.number: t.value for t in trials(url) if t.state == TrialState.COMPLETE}


def finished(url: str) -> int:
    """Trials that count against the budget: COMPLETE and PRUNED (the default median pruner prunes)."""
    return sum(1 for t in trials(url) if t.state in (TrialState.COMPLETE, TrialState.PRUNED))


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def finish(procs: list[subprocess.Popen[str]], outcome: Outcome) -> str:
    """Wait for ``procs``; record their exit codes and tracebacks; return what they printed to stderr."""
    printed = []
    for proc in procs:
        _out, err = proc.communicate(timeout=PATIENCE_S)
        outcome.exit_codes.append(proc.returncode)
        outcome.tracebacks += err.count("Traceback")
        printed.append(err)
    return "".join(printed)


def check(url: str, before: dict[int, float | None], outcome: Outcome) -> Outcome:
    after = complete(url)
    outcome.lost = sum(1 for number, value in before.items() if after.get(number) != value)
    outcome.complete = finished(url)
    failed = [t for t in trials(url) if t.state == TrialState.FAIL]
    if failed:
        lost = sum(bool(t.user_attrs.get("lost")) for t in failed)
        stopped = sum(bool(t.user_attrs.get("interrupted")) for t in failed)
        other = sorted({str(t.user_attrs.get("error", "?"))[:60] for t in failed if not t.user_attrs.get("lost")})
        outcome.note += f"; FAIL, not counted: {lost} lost (retried), {stopped} interrupted"
        if len(failed) > lost + stopped:
            outcome.note += f"; {len(failed) - lost - stopped} other FAIL: {other}"
    return outcome


@contextlib.contextmanager
def postgres_db() -> Iterator[str]:
    import psycopg2

    admin = psycopg2.connect(**PG)
    admin.autocommit = True
    name = f"faults_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def mysql_db() -> Iterator[str]:
    import pymysql

    name = f"faults_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(autocommit=True, **MY)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    admin.close()
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        admin = pymysql.connect(autocommit=True, **MY)
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def terminate_pg_backends(url: str) -> int:
    import psycopg2

    with psycopg2.connect(**PG) as admin, admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.rsplit("/", 1)[1],),
        )
        return len(cursor.fetchall())


def children(pid: int) -> list[int]:
    """Process ``pid``'s descendants (Linux /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                kids.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for kid in kids.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def drops_during(n_trials: int, workers: int) -> Outcome:
    """pg_terminate_backend ×5 during `tuner run --jobs 4`, or during 4 `tuner worker`s."""
    label = "--jobs 4" if workers == 1 else "4 tuner worker"
    outcome = Outcome(f"pg_terminate_backend ×5 during {label}", budget=n_trials)
    with tempfile.TemporaryDirectory() as tmp, postgres_db() as url:
        folder = Path(tmp)
        spec = spec_file(folder, url, n_trials)
        if workers == 1:
            procs = [tuner("run", str(spec), "--jobs", "4", cwd=folder)]
        else:
            procs = [tuner("worker", str(spec), cwd=folder) for _ in range(workers)]
        before: dict[int, float | None] = {}
        for drop in range(5):
            wait_until(lambda d=drop: finished(url) >= (d + 1) * n_trials // 7, "trials between drops")
            before = complete(url)
            terminate_pg_backends(url)
        finish(procs, outcome)
        return check(url, before, outcome)


def fresh_database(kind: str) -> Outcome:
    """4 `tuner worker`s started together on an empty database."""
    outcome = Outcome(f"4 tuner worker on a fresh {kind} database", budget=12)
    make = postgres_db if kind == "PostgreSQL" else mysql_db
    with tempfile.TemporaryDirectory() as tmp, make() as url:
        folder = Path(tmp)
        spec = spec_file(folder, url, 12)
        procs = [tuner("worker", str(spec), cwd=folder) for _ in range(4)]
        finish(procs, outcome)
        return check(url, {}, outcome)


def parent_signal(sig: signal.Signals, n_trials: int) -> Outcome:
    """SIGTERM or kill -9 of the parent of `tuner run --jobs 2`, then a rerun."""
    outcome = Outcome(f"{sig.name} of the parent of --jobs 2, then a rerun", budget=n_trials)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = spec_file(folder, "tuner.db", n_trials)
        url = f"sqlite:///{folder / 'tuner.db'}"
        run = tuner("run", str(spec), "--jobs", "2", cwd=folder)
        wait_until(lambda: finished(url) >= 4 and len(children(run.pid)) >= 1, "trials before the signal")
        workers = children(run.pid)
        before = complete(url)
        os.kill(run.pid, sig)
        finish([run], outcome)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [pid for pid in workers if alive(pid)]
        for pid in orphans:
            os.kill(pid, signal.SIGKILL)
        outcome.note = f"{len(orphans)} worker(s) outlived the parent by 30 s" if orphans else "workers gone"
        finish([tuner("run", str(spec), cwd=folder)], outcome)
        return check(url, before, outcome)


def worker_killed(n_trials: int) -> Outcome:
    """A worker process of `tuner run --jobs 2` killed mid-run: the run goes on and finishes."""
    outcome = Outcome("a worker of --jobs 2 killed mid-run", budget=n_trials)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = spec_file(folder, "tuner.db", n_trials)
        url = f"sqlite:///{folder / 'tuner.db'}"
        run = tuner("run", str(spec), "--jobs", "2", cwd=folder)

        def pids_on_trials() -> set[int]:
            return {
                (t.system_attrs.get("tuner:worker") or {}).get("pid")
                for t in trials(url)
                if t.state == TrialState.COMPLETE
            } - {None, run.pid}

        wait_until(lambda: bool(pids_on_trials()), "a worker process's first trial")
        victim = next(iter(pids_on_trials()))
        before = complete(url)
        os.kill(victim, signal.SIGKILL)
        printed = finish([run], outcome)
        workers = pids_on_trials() - {victim}
        outcome.note = (
            f"{printed.count('takes its place')} replacement(s) started, "
            f"{len(workers)} of them ran trials before the budget was done"
        )
        return check(url, before, outcome)


def disk_full(n_trials: int) -> Outcome:
    """`tuner run` on a 4 MiB tmpfs that fills up mid-run (root only), then a rerun with room."""
    outcome = Outcome("disk full mid-run, then a rerun with room", budget=n_trials)
    with tempfile.TemporaryDirectory() as tmp:
        mount = Path(tmp) / "small"
        mount.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]).returncode != 0:
            outcome.note = "skipped: cannot mount a tmpfs (needs root)"
            return outcome
        try:
            spec = spec_file(mount, "tuner.db", n_trials)
            url = f"sqlite:///{mount / 'tuner.db'}"
            run = tuner("run", str(spec), cwd=mount)
            wait_until(lambda: finished(url) >= 3, "trials before filling the disk")
            before = complete(url)
            filler = mount / "filler"
            with contextlib.suppress(OSError), filler.open("wb") as out:
                while True:
                    out.write(b"\0" * 65536)
            finish([run], outcome)
            filler.unlink()
            outcome.note = f"the full disk stopped the first run with exit {outcome.exit_codes[-1]}"
            finish([tuner("run", str(spec), cwd=mount)], outcome)
            return check(url, before, outcome)
        finally:
            subprocess.run(["umount", "-l", str(mount)])


def damaged_pages(n_trials: int) -> Outcome:
    """Garbage over the middle pages of a real `.db`: show, export, doctor and run on it."""
    outcome = Outcome("damaged SQLite pages: show, export, doctor, run", budget=n_trials)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = spec_file(folder, "tuner.db", n_trials)
        finish([tuner("run", str(spec), cwd=folder)], outcome)
        db = folder / "tuner.db"
        damaged = folder / "damaged.db"
        shutil.copy(db, damaged)
        size = damaged.stat().st_size
        with damaged.open("r+b") as out:
            out.seek(size // 2 // 4096 * 4096)
            out.write(os.urandom(3 * 4096))
        stamp = damaged.read_bytes()
        for command in (["show", "faults"], ["export", "faults"], ["doctor", "faults"]):
            finish([tuner(*command, "--storage", str(damaged), cwd=folder)], outcome)
        spec2 = spec_file(folder, "damaged.db", n_trials + 2)
        finish([tuner("run", str(spec2), cwd=folder)], outcome)
        outcome.note = "damaged file unchanged" if damaged.read_bytes() == stamp else "damaged file was written to"
        outcome.complete = finished(f"sqlite:///{db}")
        return outcome


SCENARIOS: dict[str, Callable[[int], Outcome]] = {
    "drops-jobs": lambda n: drops_during(n, 1),
    "drops-workers": lambda n: drops_during(n, 4),
    "fresh-postgresql": lambda n: fresh_database("PostgreSQL"),
    "fresh-mariadb": lambda n: fresh_database("MariaDB"),
    "sigterm": lambda n: parent_signal(signal.SIGTERM, n),
    "kill-9": lambda n: parent_signal(signal.SIGKILL, n),
    "worker-killed": worker_killed,
    "disk-full": disk_full,
    "damaged": damaged_pages,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS))
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    print(f"{'scenario':<52} {'lost COMPLETE':>13} {'tracebacks':>10} {'finished':>9}  exit codes; note")
    for name in args.only or SCENARIOS:
        try:
            out = SCENARIOS[name](args.trials)
        except Exception as exc:  # a scenario that could not run is a row too
            print(f"{name:<52} {'?':>13} {'?':>10} {'?':>9}  could not run: {type(exc).__name__}: {exc}")
            continue
        done = f"{out.complete}/{out.budget}"
        print(f"{out.name:<52} {out.lost:>13} {out.tracebacks:>10} {done:>9}  {out.exit_codes}; {out.note}", flush=True)


if __name__ == "__main__":
    main()
