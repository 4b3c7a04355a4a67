"""Storage URLs (``tuner/store/_urls.py``): passwords redacted everywhere, URLs read from files."""

from __future__ import annotations

import pytest

from tuner.errors import StorageError
from tuner.store import read_url_file, redact


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
