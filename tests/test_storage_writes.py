"""Several user attributes of a trial at once, on every local storage (one transaction on SQLite)."""

from __future__ import annotations

import pytest
from storage_writes import check_set_user_attrs

from tuner.store import resolve_url


@pytest.mark.parametrize(("name", "atomic"), [("study.db", True), ("study.log", False)])
def test_set_user_attrs_on_local_files(tmp_path, name, atomic):
    check_set_user_attrs(resolve_url(name, base_dir=tmp_path), atomic=atomic)


def test_set_user_attrs_on_the_in_memory_storage():
    check_set_user_attrs("memory://", atomic=False)
