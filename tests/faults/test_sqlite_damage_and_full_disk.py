"""A damaged SQLite file and a full disk (``tuner/store/_integrity.py``).

Every command that meets a damaged file says so in one paragraph (the file, "database disk image
is malformed", nothing written, what to do) and exits 1, and nothing is written to the file. A
full disk mid-run keeps the completed trials, does not count the storage's failure as a failed
trial, and the next run repairs the trial it left RUNNING. A disk too small even for the schema
leaves no files behind. The damaged files are copies of a real study's database, built here.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sqlite3
import sqlite3.dbapi2
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from support import write_spec_file

from tuner import run_study
from tuner.errors import StorageDamaged, StorageUnavailable
from tuner.store import open_storage

N_TRIALS = 12


@pytest.fixture(scope="module")
def real_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The database of a real 12-trial study of the tiny CV spec, switched back to a rollback journal,
    so that a command switching it to WAL mode would show as a changed file."""
    folder = tmp_path_factory.mktemp("real")
    run_study(write_spec_file(folder, {"budget": {"n_trials": N_TRIALS}, "sampler": {"name": "random"}}))
    db = folder / "real.db"
    # SQLite's own copy: the study's storage may still hold a connection to tuner.db in this process.
    with (
        contextlib.closing(sqlite3.connect(folder / "tuner.db")) as source,
        contextlib.closing(sqlite3.connect(db)) as copy,
    ):
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    return db


def _page_size(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def _page_count(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def _damage(db: Path, where: str) -> None:
    """Overwrite pages of ``db`` with random bytes: two in the middle, the last two, or the first (the header)."""
    size = _page_size(db)
    data = bytearray(db.read_bytes())
    pages = len(data) // size
    chosen = {"middle": [pages // 2, pages // 2 + 1], "last": [pages - 2, pages - 1], "header": [0]}[where]
    rng = random.Random(where)
    for page in chosen:
        data[page * size : (page + 1) * size] = rng.randbytes(size)
    db.write_bytes(bytes(data))


def _limited(real, pages: int):
    """``sqlite3.connect`` whose connections can grow a file to ``pages`` pages only: past that SQLite fails
    with its real "database or disk is full" (SQLITE_FULL), as on a full disk."""

    def connect(*args, **kwargs):
        conn = real(*args, **kwargs)
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    return connect


@contextlib.contextmanager
def _disk_of(pages: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every SQLite connection opened meanwhile in this process (tuner's, SQLAlchemy's) is ``_limited``."""
    limited = _limited(sqlite3.dbapi2.connect, pages)
    with monkeypatch.context() as patch:
        patch.setattr(sqlite3, "connect", limited)
        patch.setattr(sqlite3.dbapi2, "connect", limited)
        yield


# `tuner ARGS` in a process of its own whose SQLite connections are `_limited` to PAGES pages: a run
# that dies of the full disk leaves its trial to a PID that is gone, as a real `tuner run` does.
_RUN_ON_A_FULL_DISK = """
import sqlite3, sqlite3.dbapi2, sys
sys.path.insert(0, {tests!r})
from faults.test_sqlite_damage_and_full_disk import _limited
sqlite3.connect = sqlite3.dbapi2.connect = _limited(sqlite3.dbapi2.connect, {pages})
from tuner.cli import main
sys.exit(main({args!r}))
"""


def _one_paragraph(err: str) -> str:
    assert "Traceback" not in err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("where", ["middle", "last"])
def test_every_command_refuses_a_damaged_file_and_writes_nothing(real_db, tmp_path, run_cli, where):
    db = tmp_path / f"{where}.db"
    shutil.copy(real_db, db)
    _damage(db, where)
    before = db.read_bytes()
    spec = write_spec_file(tmp_path, {"budget": {"n_trials": N_TRIALS + 4}, "sampler": {"name": "random"}})
    found = "database disk image is malformed"
    commands = [
        ("show", f"tiny@{db}"),
        ("best", f"tiny@{db}"),
        ("export", f"tiny@{db}", "--format", "json"),
        ("list", "--storage", db),
        ("doctor", f"tiny@{db}"),
        ("run", spec, "--storage", db, "-q"),
    ]
    for command in commands:
        result = run_cli(*command)
        assert result.code == 1, (command, result.err)
        err = _one_paragraph(result.err)
        assert f"the SQLite storage file {db} is damaged ({found}" in err, command
        assert "nothing was written" in err and f"sqlite3 {db} .recover" in err and "backup" in err
    doctor = run_cli("doctor", f"tiny@{db}")
    assert f"BAD integrity: {found}" in doctor.out
    assert db.read_bytes() == before


def test_a_file_whose_header_is_gone_is_not_taken_for_a_study_and_is_left_alone(real_db, tmp_path, run_cli):
    db = tmp_path / "header.db"
    shutil.copy(real_db, db)
    _damage(db, "header")  # without SQLite's header it may as well be any other file: a bad --storage
    before = db.read_bytes()
    spec = write_spec_file(tmp_path, {"sampler": {"name": "random"}})
    for command in [("show", f"tiny@{db}"), ("doctor", f"tiny@{db}"), ("run", spec, "--storage", db, "-q")]:
        result = run_cli(*command)
        assert result.code == 2, (command, result.err)
        err = _one_paragraph(result.err)
        assert "file is not a database" in err and "is a study storage" in err and "nothing was written" in err
    assert db.read_bytes() == before


def test_damage_met_after_the_file_was_opened_is_the_same_clear_error(real_db, tmp_path):
    db = tmp_path / "live.db"
    shutil.copy(real_db, db)
    storage = open_storage(f"sqlite:///{db}")
    study_id = storage.get_study_id_from_name("tiny")
    _damage(db, "middle")
    with pytest.raises(StorageDamaged, match=r"is damaged \(database disk image is malformed\).*rolled back"):
        storage.get_all_trials(study_id)


def test_doctor_reports_a_sound_file_as_a_passed_integrity_check(real_db, tmp_path, run_cli):
    db = tmp_path / "sound.db"
    shutil.copy(real_db, db)
    result = run_cli("doctor", f"tiny@{db}")
    assert result.code == 0, result.err
    assert "ok  integrity: PRAGMA quick_check: ok" in result.out


def test_a_full_disk_mid_run_keeps_completed_trials_and_the_next_run_repairs_the_running_one(tmp_path, run_cli):
    spec = write_spec_file(tmp_path, {"budget": {"n_trials": 3}, "sampler": {"name": "random"}})
    assert run_cli("run", spec, "-q").code == 0
    db = tmp_path / "tuner.db"
    url = f"sqlite:///{db}"
    kept = {t.number: t.value for t in optuna.load_study(study_name="tiny", storage=url).get_trials()}

    script = _RUN_ON_A_FULL_DISK.format(
        tests=str(Path(__file__).parents[1]),
        pages=_page_count(db) + 1,
        args=["run", str(spec), "--n-trials", "40", "-q"],
    )
    full = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert full.returncode == 1
    err = _one_paragraph(full.stderr)
    assert f"the disk holding the SQLite storage file {db} is full (database or disk is full)" in err
    assert "trials completed before it are kept" in err
    after = optuna.load_study(study_name="tiny", storage=url).get_trials()
    assert {t.number: t.value for t in after if t.number in kept} == kept
    assert not [t for t in after if t.state == TrialState.FAIL], "a full disk is not the objective failing"
    left = [t.number for t in after if t.state == TrialState.RUNNING]
    assert len(left) == 1

    # The next `tuner run` (a new process, as after the disk was freed) repairs it and finishes the budget.
    rerun = subprocess.run(
        [sys.executable, "-m", "tuner", "run", str(spec), "--n-trials", "40", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    final = {t.number: t for t in optuna.load_study(study_name="tiny", storage=url).get_trials()}
    assert final[left[0]].state == TrialState.FAIL and final[left[0]].user_attrs["lost"] is True
    assert sum(t.state == TrialState.COMPLETE for t in final.values()) == 40
    assert not [t for t in final.values() if t.state == TrialState.RUNNING]


def test_a_disk_too_small_for_the_schema_leaves_no_files(tmp_path, run_cli, monkeypatch):
    spec = write_spec_file(tmp_path, {"sampler": {"name": "random"}})
    with _disk_of(3, monkeypatch):
        result = run_cli("run", spec, "-q")
    assert result.code == 1
    err = _one_paragraph(result.err)
    assert "has no room even for a new study's empty tables" in err and "nothing was written" in err
    assert not list(tmp_path.glob("tuner.db*"))


def test_an_existing_file_is_never_removed_when_the_disk_is_full(real_db, tmp_path, monkeypatch):
    db = tmp_path / "existing.db"
    shutil.copy(real_db, db)
    with _disk_of(_page_count(db), monkeypatch):
        storage = open_storage(f"sqlite:///{db}")
        study = optuna.load_study(study_name="tiny", storage=storage)
        with pytest.raises(StorageUnavailable, match="is full"):
            study.set_user_attr("padding", "x" * 100_000)
    assert db.is_file() and len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials) == N_TRIALS


def _mount_tmpfs(folder: Path, size: str) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")


def _trials(db: Path) -> dict[int, tuple[str, bool]]:
    """Each trial's state and whether it is marked lost, read without keeping the file open (so it can be unmounted)."""
    query = (
        "SELECT number, state, EXISTS (SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id "
        "AND a.key = 'lost' AND a.value_json = 'true') FROM trials t"
    )
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {number: (state, bool(lost)) for number, state, lost in conn.execute(query)}


def _unnamed_running(db: Path) -> bool:
    query = (
        "SELECT COUNT(*) FROM trials t WHERE t.state = 'RUNNING' AND NOT EXISTS (SELECT 1 FROM "
        "trial_system_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'tuner:worker')"
    )
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return bool(conn.execute(query).fetchone()[0])


@pytest.mark.slow
def test_a_real_small_disk(tmp_path, write_spec):
    """The same on a size-limited tmpfs: the disk, not SQLite's page limit, runs out."""
    spec = write_spec({"sampler": {"name": "random"}})
    disk = tmp_path / "disk"
    db = disk / "t.db"
    _mount_tmpfs(disk, "64k")

    def run(n_trials: int) -> subprocess.CompletedProcess[str]:
        command = ["run", str(spec), "--storage", str(db), "--n-trials", str(n_trials), "-q"]
        return subprocess.run([sys.executable, "-m", "tuner", *command], capture_output=True, text=True, timeout=300)

    try:
        tiny = run(4)
        assert tiny.returncode == 1 and "has no room even for a new study's empty tables" in tiny.stderr
        assert "Traceback" not in tiny.stderr and not list(disk.iterdir())

        subprocess.run(["mount", "-o", "remount,size=450k", str(disk)], check=True)
        full = run(300)
        assert full.returncode == 1 and "is full (database or disk is full)" in full.stderr
        assert "Traceback" not in full.stderr
        states = [state for state, _ in _trials(db).values()]
        assert "COMPLETE" in states and "FAIL" not in states and states.count("RUNNING") <= 1

        subprocess.run(["mount", "-o", "remount,size=50m", str(disk)], check=True)
        if _unnamed_running(db):
            # The disk filled between creating a trial and naming its worker: no process can be
            # shown dead, so the run waits out the grace period; the error names the command that
            # repairs it now.
            assert "--repair --older-than 0" in full.stderr
            doctor = ["doctor", str(spec), "--storage", str(db), "--repair", "--older-than", "0"]
            repaired = subprocess.run([sys.executable, "-m", "tuner", *doctor], capture_output=True, text=True)
            assert "Traceback" not in repaired.stderr, repaired.stderr
        assert run(len(states) + 2).returncode == 0
        final = _trials(db).values()
        assert "RUNNING" not in [state for state, _ in final]
        assert all(lost for state, lost in final if state == "FAIL")
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _mount_read_only(source: Path, target: Path) -> None:
    target.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root); read-only media cannot be simulated")
    remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True)
    if remount.returncode != 0:
        subprocess.run(["umount", str(target)], capture_output=True)
        pytest.skip("cannot remount read-only here")


@pytest.mark.slow
def test_a_study_on_read_only_media_can_be_read_but_not_run(tmp_path, write_spec, run_cli):
    spec = write_spec({"sampler": {"name": "random"}, "budget": {"n_trials": 3}})
    # Its own process, as a user's run: the last connection to close folds the WAL into the file.
    subprocess.run([sys.executable, "-m", "tuner", "run", str(spec), "-q"], check=True, timeout=300)
    media = tmp_path / "media"
    _mount_read_only(spec.parent, media)
    try:
        shown = run_cli("show", "tiny", "--storage", media / "tuner.db")
        assert shown.code == 0 and "3 complete" in shown.out, shown.err
        ran = run_cli("run", spec, "--storage", media / "tuner.db", "--n-trials", "5", "-q")
        assert ran.code == 1 and "is on read-only media" in ran.err and "Traceback" not in ran.err
    finally:
        if subprocess.run(["umount", str(media)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(media)], capture_output=True)
