"""Several user attributes of a trial in one write, on every local storage."""

from __future__ import annotations

import pytest
from storage_writes import check_set_user_attrs

from tuner.storage import resolve_url


@pytest.mark.parametrize("name", ["study.db", "study.log"])
def test_set_user_attrs_writes_all_or_nothing(tmp_path, name):
    check_set_user_attrs(resolve_url(name, base_dir=tmp_path))


def test_set_user_attrs_on_the_in_memory_storage():
    check_set_user_attrs("memory://")
