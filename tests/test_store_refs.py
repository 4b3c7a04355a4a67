"""Study references (``tuner/store/_refs.py``): ``name@storage`` split into the study name and its
storage."""

from __future__ import annotations

import pytest

from tuner.store import split_ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("study", ("study", None)),
        ("study@runs/a.db", ("study", "runs/a.db")),
        ("s@postgresql://user:pw@host:5432/db", ("s", "postgresql://user:pw@host:5432/db")),
        ("@nothing", ("@nothing", None)),
    ],
)
def test_split_ref(ref, expected):
    assert split_ref(ref) == expected
