"""The one retry policy of every storage call (store/_retry.py), with injected faults: what is retried,
what is raised at once, what is raised when the cap is reached, and that only the outermost call retries."""

from __future__ import annotations

import sqlite3

import optuna
import pytest
from sqlalchemy.exc import OperationalError

from tuner import _optuna
from tuner.errors import StorageUnavailable
from tuner.store import _retry, is_transient, open_storage


def _dropped() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.setattr(_retry, "POLICY", _retry.RetryPolicy(attempts=4, first_delay=0.0, max_delay=0.0))
    storage = open_storage(f"sqlite:///{tmp_path / 'tuner.db'}")
    optuna.create_study(storage=storage, study_name="s")
    return storage


def _fail_first(monkeypatch, storage, name, errors):
    """Make ``storage.name`` raise each of ``errors`` in turn, then work; returns the call count."""
    calls = []
    original = getattr(type(storage).__mro__[1], name)

    def flaky(self, *args, **kwargs):
        calls.append(name)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(storage).__mro__[1], name, flaky)
    # The retrying class wrapped the method when it was defined; wrap the fault-injected one the same way.
    monkeypatch.setattr(type(storage), name, _retry._retrying(flaky))
    return calls


def test_a_dropped_connection_is_retried_until_the_call_goes_through(storage, monkeypatch, caplog):
    calls = _fail_first(monkeypatch, storage, "get_all_studies", [_dropped(), _dropped()])
    assert [s.study_name for s in storage.get_all_studies()] == ["s"]
    assert len(calls) == 3
    assert caplog.text.count("retrying") == 2


def test_the_cap_ends_in_storage_unavailable_with_exit_code_1(storage, monkeypatch):
    calls = _fail_first(monkeypatch, storage, "get_all_studies", [_dropped()] * 10)
    with pytest.raises(StorageUnavailable, match="stopped answering") as caught:
        storage.get_all_studies()
    assert len(calls) == 4, "the policy's attempts, no more"
    assert caught.value.exit_code == 1
    assert "Completed trials are kept" in str(caught.value)


@pytest.mark.parametrize(
    "error",
    [
        optuna.exceptions.UpdateFinishedTrialError("finished"),
        sqlite3.OperationalError("database disk image is malformed"),
        sqlite3.OperationalError("database or disk is full"),
        ValueError("a bug"),
    ],
    ids=["finished", "malformed", "disk-full", "bug"],
)
def test_errors_a_retry_cannot_cure_are_raised_at_once(storage, monkeypatch, error):
    calls = _fail_first(monkeypatch, storage, "get_all_studies", [error])
    with pytest.raises(type(error)):
        storage.get_all_studies()
    assert len(calls) == 1


def test_only_the_outermost_call_retries(storage, monkeypatch):
    # get_trial calls no other public method, but a storage method that calls another must not
    # multiply the attempts: the inner call raises, the outer one retries the whole.
    inner = _fail_first(monkeypatch, storage, "get_study_id_from_name", [_dropped()] * 10)

    def outer(self):
        return self.get_study_id_from_name("s")

    monkeypatch.setattr(type(storage), "outer", _retry._retrying(outer), raising=False)
    with pytest.raises(StorageUnavailable):
        storage.outer()
    assert len(inner) == 4


def test_the_driver_error_is_found_inside_optunas_wrapper():
    try:
        try:
            raise _dropped()
        except OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("commit failed") from exc
    except optuna.exceptions.StorageInternalError as wrapped:
        assert is_transient(wrapped)
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert not is_transient(sqlite3.OperationalError("database disk image is malformed"))


@pytest.mark.parametrize("name", _optuna.STORAGE_CALLS)
def test_every_retried_call_exists_on_optunas_storages(name):
    assert callable(getattr(optuna.storages.RDBStorage, name, None)) or callable(
        getattr(optuna.storages.JournalStorage, name, None)
    )


def test_the_read_of_heartbeat_rows_that_finds_lost_trials_is_retried(storage, monkeypatch):
    calls = []
    real = _optuna.beaten

    def flaky(store, trial_ids):
        calls.append(trial_ids)
        if len(calls) <= 2:
            raise _dropped()
        return real(store, trial_ids)

    monkeypatch.setattr(_optuna, "beaten", flaky)
    study = optuna.load_study(study_name="s", storage=storage)
    trial_id = _optuna.trial_id(study.ask())
    storage.record_heartbeat(trial_id)
    assert storage.beaten([trial_id, trial_id + 1]) == {trial_id}
    assert len(calls) == 3
