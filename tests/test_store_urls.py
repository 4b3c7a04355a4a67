"""Storage URLs (``tuner/store/_urls.py``): passwords redacted everywhere, URLs read from files."""

from __future__ import annotations

import warnings

import pytest

from tuner.errors import StorageError
from tuner.store import open_storage, read_url_file, redact, resolve_url, storage_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://alice:pw@db:5432/tuner", "postgresql://alice:***@db:5432/tuner"),
        ("postgresql://alice:p@ss/w0rd@db/tuner", "postgresql://alice:***@db/tuner"),
        ("mysql+pymysql://root@127.0.0.1/test", "mysql+pymysql://root@127.0.0.1/test"),
        ("redis://:pw@cache:6379/0?prefix=a", "redis://:***@cache:6379/0?prefix=a"),
        ("postgresql://db/tuner?user=a&password=pw", "postgresql://db/tuner?user=a&password=***"),
        ("sqlite:////home/a@b/tuner.db", "sqlite:////home/a@b/tuner.db"),
    ],
)
def test_redact_hides_every_password(url, shown):
    assert redact(url) == shown


def test_the_url_file_gives_its_first_url_and_bad_files_are_clear_errors(tmp_path):
    path = tmp_path / "url"
    path.write_text("# team database\n\n  postgresql://u:pw@db/x  \n")
    assert read_url_file(path) == "postgresql://u:pw@db/x"
    path.write_text("# only a comment\n")
    with pytest.raises(StorageError, match="holds no storage URL"):
        read_url_file(path)
    with pytest.raises(StorageError, match="cannot read the storage URL"):
        read_url_file(tmp_path / "missing")


def test_a_folder_means_its_tuner_db_in_a_spec_and_on_the_command_line_alike(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    expected = f"sqlite:///{folder / 'tuner.db'}"
    assert resolve_url("studies", base_dir=tmp_path) == expected  # `storage: studies` in a spec
    assert storage_url(str(folder)) == expected  # `--storage studies`
    assert resolve_url("other.db", base_dir=tmp_path) == f"sqlite:///{tmp_path / 'other.db'}"


def test_a_local_file_that_cannot_be_opened_gets_a_file_hint_not_a_server_hint(tmp_path):
    (tmp_path / "notes.db").write_text("not a database, just notes\n" * 100)
    with pytest.raises(StorageError) as caught:
        open_storage(f"sqlite:///{tmp_path / 'notes.db'}")
    message = str(caught.value)
    assert "is a study storage" in message and "server" not in message


@pytest.mark.services
def test_the_redis_journal_opens_without_optunas_experimental_warning():
    from backends import redis

    with redis() as url, warnings.catch_warnings():
        warnings.simplefilter("error")
        open_storage(url)
