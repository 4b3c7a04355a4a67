"""The stored spec (``tuner/store/_spec.py``): a study's spec read back from its storage."""

from __future__ import annotations

import optuna
from support import sqlite_url

from tuner.store import stored_spec


def test_stored_spec_prefers_the_given_spec_file(holdout_spec, tmp_path):
    attrs = optuna.load_study(study_name="tiny", storage=sqlite_url(holdout_spec.parent)).user_attrs
    assert stored_spec(attrs, name="tiny").spec_path == holdout_spec.resolve()
    other = tmp_path / "sub" / "copy.yaml"
    assert stored_spec(attrs, name="tiny", spec_file=other).base_dir == other.parent.resolve()
