"""The Optuna boundary (``tuner/_optuna.py``): every private name ``tuner._optuna`` relies on still exists, and no other
module of ``tuner`` uses one. An Optuna upgrade that moves a name fails here, not in a user's run."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import optuna
import pytest
import sqlalchemy

import tuner
from tuner import _optuna
from tuner.store import Heartbeat, open_storage

PACKAGE = Path(tuner.__file__).parent


@pytest.fixture
def sqlite_study(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'b.db'}", heartbeat=Heartbeat(interval=1, grace=5))
    return optuna.create_study(storage=storage), storage


def _owner(where: str, sqlite_study) -> object:
    study, storage = sqlite_study
    with _optuna.optimize_loop(study):  # Optuna warns about heartbeats outside an optimize loop
        trial = study.ask()
    owners = {
        "optuna.Trial": trial,
        "optuna.trial.FrozenTrial": study.trials[0],
        "optuna.Study": study,
        "optuna.storages._CachedStorage": study._storage,
        "optuna.storages.RDBStorage": storage,
    }
    return owners[where] if where in owners else importlib.import_module(where)


@pytest.mark.parametrize(("where", "name"), _optuna.PRIVATE_NAMES)
def test_every_private_name_the_boundary_uses_still_exists(where, name, sqlite_study):
    if where == "RDB schema":
        _, storage = sqlite_study
        inspector = sqlalchemy.inspect(storage.engine)
        wanted = {"trial_heartbeats": ("trial_id", "heartbeat"), **_optuna.RDB_COLUMNS}
        for table, names in wanted.items():
            columns = {c["name"] for c in inspector.get_columns(table)}
            assert set(names) <= columns, f"Optuna {optuna.__version__}'s table {table} lacks {set(names) - columns}"
        return
    if where == "module":
        importlib.import_module(name)  # raises when Optuna moved it
        return
    assert hasattr(_owner(where, sqlite_study), name), f"Optuna {optuna.__version__} has no {where}.{name}"


# The Optuna classes tuner's code handles; any of their private names used outside the boundary fails.
_OPTUNA_CLASSES = (
    optuna.Study,
    optuna.Trial,
    optuna.trial.FrozenTrial,
    optuna.storages.BaseStorage,
    optuna.storages.RDBStorage,
    optuna.storages.JournalStorage,
    optuna.storages.InMemoryStorage,
    optuna.storages._CachedStorage,
    optuna.samplers.BaseSampler,
    optuna.samplers.TPESampler,
    optuna.pruners.BasePruner,
    optuna.pruners.MedianPruner,
)
_PRIVATE_OPTUNA_NAMES = {
    name for cls in _OPTUNA_CLASSES for name in dir(cls) if name.startswith("_") and not name.startswith("__")
} | {name for _, name in _optuna.PRIVATE_NAMES if name.startswith("_")}


def _private_uses(path: Path) -> set[str]:
    """Private Optuna attribute names used on anything but ``self``/``cls``, and private Optuna
    module names written as strings (a fork server's preload list, say)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _PRIVATE_OPTUNA_NAMES:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.add(node.attr)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("optuna.")
            and any(part.startswith("_") for part in node.value.split("."))
        ):
            found.add(node.value)
    return found


def test_no_module_but_the_boundary_uses_a_private_optuna_name():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_private_uses(path))
        for path in PACKAGE.rglob("*.py")
        if path.name != "_optuna.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_would_see_a_private_name(tmp_path):
    offending = tmp_path / "bad.py"
    offending.write_text("def f(study):\n    return study._storage, 'optuna.storages._rdb.models'\n")
    assert _private_uses(offending) == {"_storage", "optuna.storages._rdb.models"}


def test_the_boundary_helpers_work_on_a_live_study(sqlite_study):
    study, storage = sqlite_study
    with _optuna.optimize_loop(study):
        trial = study.ask()
        assert _optuna.trial_id(trial) == storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(study.study_name), trial.number
        )
        _optuna.set_user_attrs(trial, {"a": 1, "b": [2, 3]})
        assert trial.user_attrs == {"a": 1, "b": [2, 3]}
        assert storage.get_trial(_optuna.trial_id(trial)).user_attrs == {"a": 1, "b": [2, 3]}
        study.stop()  # allowed only inside an optimize loop
        assert _optuna.stop_requested(study)
    assert _optuna.storage_of(study) is storage
    assert [t.number for t in _optuna.cached_trials(study)] == [0]


def test_storage_of_gives_the_storage_a_study_was_opened_on(tmp_path):
    journal = open_storage(f"journal:///{tmp_path / 'j.log'}")
    memory = open_storage("memory://")
    assert _optuna.storage_of(optuna.create_study(storage=journal)) is journal
    assert _optuna.storage_of(optuna.create_study(storage=memory)) is memory


def test_the_boundary_names_optunas_constraint_key():
    from optuna.study import _constrained_optimization

    assert _optuna._CONSTRAINTS_KEY == _constrained_optimization._CONSTRAINTS_KEY
