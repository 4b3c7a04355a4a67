"""Checks of tuner._optuna.set_user_attrs shared by the local and the server storage tests."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from tuner._optuna import set_user_attrs
from tuner.store import MEMORY_URL, open_storage

ATTRS = {"val_scores": [0.5, 0.75], "gap": 0.125, "flags": ["overfit"], "note": None}


def check_set_user_attrs(url: str, *, atomic: bool) -> None:
    """All attributes land (and show on the live trial); a trial a peer finished gets none of them;
    on ``atomic`` (RDB) storages a value that cannot be stored leaves out the whole batch."""
    storage = open_storage(url)
    # What another process reads (the in-memory storage has no other process: the same object).
    reader = storage if url == MEMORY_URL else open_storage(url)
    study = optuna.create_study(storage=storage, study_name="attrs")
    trial = study.ask()
    trial.set_user_attr("kept", 1)
    set_user_attrs(trial, ATTRS)
    assert trial.user_attrs == {"kept": 1, **ATTRS}
    stored = optuna.load_study(study_name="attrs", storage=reader).trials[0]
    assert stored.user_attrs == {"kept": 1, **ATTRS}

    finished = study.ask()
    study.tell(finished, state=TrialState.FAIL)  # as a peer repairing a stale trial would
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(finished, {"gap": 1.0, "val_scores": [1.0]})
    assert optuna.load_study(study_name="attrs", storage=reader).trials[1].user_attrs == {}

    if atomic:
        third = study.ask()
        with pytest.raises(TypeError):
            set_user_attrs(third, {"first": 1, "unstorable": object()})
        assert optuna.load_study(study_name="attrs", storage=reader).trials[2].user_attrs == {}
