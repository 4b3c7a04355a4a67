"""Attribute writes: ``tuner._optuna.set_user_attrs`` stores several user attributes of a trial at once,
all-or-nothing in one transaction on RDB storages, one key after another elsewhere."""

from __future__ import annotations

import optuna
import optuna_dashboard
import pytest
from backends import STORAGE_MODES, backend_params
from optuna.trial import TrialState

from tuner._optuna import params_in_one_write, report, set_user_attrs, trial_id, write_reports
from tuner.diagnostics._dashboard import note_attrs
from tuner.store import MEMORY_URL, open_storage

ATTRS = {"val_scores": [0.5, 0.75], "gap": 0.125, "flags": ["overfit"], "note": None}


def _reader(backend, storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """What another process reads: a second opening of the storage (in memory there is no other
    process: the same object)."""
    return storage if backend.url == MEMORY_URL else open_storage(backend.url)


@pytest.mark.parametrize("backend", backend_params("memory", *STORAGE_MODES), indirect=True)
def test_set_user_attrs_stores_every_attribute_and_none_on_a_finished_trial(backend):
    """All attributes land, over earlier values of the same keys (and show on the live trial); a trial a
    peer finished gets none of them."""
    storage = open_storage(backend.url)
    reader = _reader(backend, storage)
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
    reader = _reader(backend, storage)
    study = optuna.create_study(storage=storage, study_name="noted")
    trial = study.ask()
    body = "### Trial 0\n\n**gap** 0.1235\n" + "x" * 3000  # longer than one of the dashboard's chunks
    set_user_attrs(trial, ATTRS, study_system_attrs=note_attrs(trial_id(trial), body))
    again = optuna.load_study(study_name="noted", storage=reader)
    assert again.trials[0].user_attrs == ATTRS
    assert optuna_dashboard.get_note(optuna.Trial(again, trial_id(trial))) == body


@pytest.mark.parametrize("backend", backend_params("memory", *STORAGE_MODES), indirect=True)
def test_reports_within_the_hold_wait_for_the_trials_next_write_and_the_pruner_sees_them_at_once(backend):
    """On RDB storages a report made within ``hold_s`` of the trial's last written one is kept in this
    process (the trial, its pruner) until the trial's next write: its attributes, a report after the
    hold, or ``write_reports`` before it is told. Other storages write each report at once."""
    storage = open_storage(backend.url)
    reader = _reader(backend, storage)
    study = optuna.create_study(storage=storage, study_name="reports")
    trial = study.ask()

    def stored() -> dict[int, float]:
        return optuna.load_study(study_name="reports", storage=reader).trials[0].intermediate_values

    report(trial, 0.5, 0, hold_s=3600)
    report(trial, 0.25, 1, hold_s=3600)
    assert trial._get_latest_trial().intermediate_values == {0: 0.5, 1: 0.25}, "what should_prune() reads"
    assert stored() == ({} if backend.rdb else {0: 0.5, 1: 0.25})
    set_user_attrs(trial, {"gap": 0.1})
    assert stored() == {0: 0.5, 1: 0.25}
    report(trial, 0.75, 2, hold_s=3600)
    report(trial, 1.0, 3, hold_s=0)  # the hold is over: this one and the held one are written now
    assert stored() == {0: 0.5, 1: 0.25, 2: 0.75, 3: 1.0}
    report(trial, 0.0, 4, hold_s=3600)
    write_reports(trial)
    study.tell(trial, state=TrialState.PRUNED)
    done = optuna.load_study(study_name="reports", storage=reader).trials[0]
    assert done.intermediate_values[4] == 0.0 and done.value == 0.0, "a pruned trial's value is its last report"


@pytest.mark.parametrize("backend", backend_params("memory", *STORAGE_MODES), indirect=True)
def test_parameters_suggested_in_one_write_reach_the_storage_together_at_the_end_of_the_block(backend):
    storage = open_storage(backend.url)
    reader = _reader(backend, storage)
    study = optuna.create_study(storage=storage, study_name="params")
    first = study.ask()
    with params_in_one_write(first):  # the study's first trial: Optuna looks each distribution up
        first.suggest_float("x", 0, 1)
        first.suggest_int("n", 1, 9)
    study.tell(first, 1.0)
    trial = study.ask()
    commits = _commits(storage) if backend.rdb else []
    with params_in_one_write(trial):
        x = trial.suggest_float("x", 0, 1)
        n = trial.suggest_int("n", 1, 9)
        c = trial.suggest_categorical("c", ["a", "b"])
        assert trial.params == {"x": x, "n": n, "c": c}, "the trial sees each parameter at once"
        inside = optuna.load_study(study_name="params", storage=reader).trials[1].params
        before_the_end = len(commits)  # the sampler's reads commit too
    assert inside == ({} if backend.rdb else {"x": x, "n": n, "c": c})
    assert optuna.load_study(study_name="params", storage=reader).trials[1].params == {"x": x, "n": n, "c": c}
    if backend.rdb:
        assert len(commits) == before_the_end + 1, "three parameters, one transaction"
    clash = study.ask()
    with pytest.raises(ValueError, match="different distribution kind"), params_in_one_write(clash):
        clash.suggest_float("y", 0, 1)
        clash.suggest_categorical("x", ["a", "b"])  # raised here, by the suggest that clashes
    assert optuna.load_study(study_name="params", storage=reader).trials[2].params == {"y": clash.params["y"]}


@pytest.mark.parametrize("backend", backend_params("memory", *STORAGE_MODES), indirect=True)
def test_held_parameters_keep_their_order_and_a_clash_with_another_process_is_raised_every_time(backend):
    """A name new to this process is checked against the study's stored distribution when it is
    suggested, so a clash never enters Optuna's cache; the stored order is the order suggested."""
    storage = open_storage(backend.url)
    elsewhere = storage if backend.url == MEMORY_URL else open_storage(backend.url)  # another process
    other = optuna.create_study(storage=elsewhere, study_name="order")
    done = other.ask()
    done.suggest_float("b", 0, 1)
    done.suggest_categorical("k", ["u", "v"])
    other.tell(done, 1.0)
    study = optuna.load_study(study_name="order", storage=storage)
    for _ in range(2):
        clash = study.ask()
        with pytest.raises(ValueError, match="different distribution kind"), params_in_one_write(clash):
            clash.suggest_float("k", 0, 1)
        study.tell(clash, state=TrialState.FAIL)
    trial = study.ask()
    with params_in_one_write(trial):
        trial.suggest_float("a", 0, 1)  # new to the study
        trial.suggest_float("b", 0, 1)
        trial.suggest_float("c", 0, 1)
    reader = _reader(backend, storage)
    stored = optuna.load_study(study_name="order", storage=reader).trials[-1]
    assert list(stored.params) == ["a", "b", "c"]
    kinds = {
        type(t.distributions["k"]).__name__
        for t in optuna.load_study(study_name="order", storage=reader).trials
        if "k" in t.distributions
    }
    assert kinds == {"CategoricalDistribution"}


def _commits(storage: optuna.storages.BaseStorage) -> list[int]:
    """A list that grows by one at each transaction the storage commits from now on."""
    from sqlalchemy import event

    commits: list[int] = []
    event.listen(storage.engine, "commit", lambda conn: commits.append(1))  # type: ignore[attr-defined]
    return commits
