"""Attribute writes: ``tuner._optuna.set_user_attrs`` stores several user attributes of a trial at once,
all-or-nothing in one transaction on RDB storages, one key after another elsewhere."""

from __future__ import annotations

import optuna
import optuna_dashboard
import pytest
from backends import STORAGE_MODES, backend_params
from optuna.trial import TrialState

from tuner._optuna import set_user_attrs, trial_id
from tuner.diagnostics._dashboard import note_attrs
from tuner.store import MEMORY_URL, open_storage

ATTRS = {"val_scores": [0.5, 0.75], "gap": 0.125, "flags": ["overfit"], "note": None}


@pytest.mark.parametrize("backend", backend_params("memory", *STORAGE_MODES), indirect=True)
def test_set_user_attrs_stores_every_attribute_and_none_on_a_finished_trial(backend):
    """All attributes land, over earlier values of the same keys (and show on the live trial); a trial a
    peer finished gets none of them."""
    storage = open_storage(backend.url)
    # What another process reads (the in-memory storage has no other process: the same object).
    reader = storage if backend.url == MEMORY_URL else open_storage(backend.url)
    study = optuna.create_study(storage=storage, study_name="attrs")
    trial = study.ask()
    trial.set_user_attr("kept", 1)
    trial.set_user_attr("gap", 9.0)  # overwritten by the batch
    set_user_attrs(trial, ATTRS)
    assert trial.user_attrs == {"kept": 1, **ATTRS}
    stored = optuna.load_study(study_name="attrs", storage=reader).trials[0]
    assert stored.user_attrs == {"kept": 1, **ATTRS}

    finished = study.ask()
    study.tell(finished, state=TrialState.FAIL)  # as a peer repairing a stale trial would
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(finished, {"gap": 1.0, "val_scores": [1.0]})
    assert optuna.load_study(study_name="attrs", storage=reader).trials[1].user_attrs == {}


def test_a_value_that_cannot_be_stored_leaves_out_the_whole_batch_on_rdb_storages_only(backend):
    storage, reader = open_storage(backend.url), open_storage(backend.url)
    study = optuna.create_study(storage=storage, study_name="attrs")
    trial = study.ask()
    with pytest.raises(TypeError):
        set_user_attrs(trial, {"first": 1, "unstorable": object()})
    stored = optuna.load_study(study_name="attrs", storage=reader).trials[0].user_attrs
    # One transaction on RDB storages; elsewhere each key is its own write, so the first one stays.
    assert stored == ({} if backend.rdb else {"first": 1})


@pytest.mark.parametrize("backend", backend_params("memory", *STORAGE_MODES), indirect=True)
def test_a_trials_dashboard_note_goes_with_its_attributes_and_optuna_dashboard_reads_it(backend):
    """The note of two chunks lands beside the user attributes; optuna-dashboard's own reader finds it."""
    storage = open_storage(backend.url)
    reader = storage if backend.url == MEMORY_URL else open_storage(backend.url)
    study = optuna.create_study(storage=storage, study_name="noted")
    trial = study.ask()
    body = "### Trial 0\n\n**gap** 0.1235\n" + "x" * 3000  # longer than one of the dashboard's chunks
    set_user_attrs(trial, ATTRS, study_system_attrs=note_attrs(trial_id(trial), body))
    again = optuna.load_study(study_name="noted", storage=reader)
    assert again.trials[0].user_attrs == ATTRS
    assert optuna_dashboard.get_note(optuna.Trial(again, trial_id(trial))) == body
