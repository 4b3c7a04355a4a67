"""The read side's fast path (plain SQL on RDB storages, ``tuner._optuna.rdb_trials``) gives what the
public API gives: the same trials, counts, best trial, Pareto front, top trials, exports and report
samples, on every backend (journal and Redis take the public path and must agree too).

Each study mixes every trial state, ties, an infinite value, constraints (the top value infeasible),
categorical parameters with None, NaN intermediate values and list-valued user attributes.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta

import optuna
import pytest
from backends import STORAGE_MODES, Backend, backend_params, supply
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from tuner import _optuna
from tuner.report import compare
from tuner.store import (
    StudySnapshot,
    best_trial,
    export_stream,
    export_trials,
    list_studies,
    load_stored,
    open_storage,
    pareto_front,
    read_study,
    read_summary,
    snapshot,
    top_trials,
)

DISTRIBUTIONS = {
    "C": FloatDistribution(1e-3, 10.0, log=True),
    "depth": IntDistribution(1, 12),
    "kind": CategoricalDistribution([None, "rbf", 3]),
}
T0 = datetime(2026, 1, 1, 12, 0, 0)


def _trials(n_objectives: int) -> list[optuna.trial.FrozenTrial]:
    """Trials of every state; ``n_objectives`` values each for the COMPLETE ones."""
    made = []
    for i in range(22):
        state = [TrialState.COMPLETE] * 6 + [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
        kind = state[i % len(state)]
        if i == 20:
            kind = TrialState.RUNNING
        if i == 21:
            kind = TrialState.WAITING
        first = [0.5, 0.7, 0.7, 0.9, 0.6, 0.8][i % 6] + (0.0 if i < 12 else 0.05)
        values = [first, 1.0 - first + 0.01 * (i % 3)][:n_objectives] if kind == TrialState.COMPLETE else None
        if i == 13 and values is not None:
            values[0] = math.inf  # an objective that returned infinity
        if i == 19 and values is not None:
            values[0] = 0.95  # the top value, but infeasible
        system: dict[str, object] = {}
        if i % 5 == 0 or i == 19:  # constraints, new and old format: trials 0 (the lowest) and 19 violate one
            system["constraints:memory"] = 1.0 if i in (0, 19) else -1.0
        if i == 10:
            system["constraints"] = [0.0, -0.5]
        trial = create_trial(
            state=kind,
            values=values,
            params={"C": 10 ** (i / 10 - 2), "depth": 1 + i % 12, "kind": [None, "rbf", 3][i % 3]},
            distributions=DISTRIBUTIONS,
            user_attrs={"val_scores": [first, first - 0.1], "gap": 0.01 * i, "flags": ["overfit"] if i % 4 else []}
            if kind != TrialState.WAITING
            else {},
            system_attrs={**system, "tuner:worker": {"host": "h", "pid": i}},
            intermediate_values={0: first, 1: math.nan} if kind in (TrialState.COMPLETE, TrialState.PRUNED) else {},
        )
        if kind in (TrialState.RUNNING, TrialState.WAITING):
            trial.datetime_complete = None
        trial.datetime_start = None if kind == TrialState.WAITING else T0 + timedelta(seconds=10 * i)
        if trial.datetime_complete is not None:
            trial.datetime_complete = T0 + timedelta(seconds=10 * i + 1 + i % 4)
        made.append(trial)
    return made


def assert_same(*trials: object) -> None:
    """The trials' fields (a list of them for a sequence), NaN made comparable: ``nan != nan``, so two
    reads of one trial with a NaN intermediate value never compare equal as they are."""

    def fields(trial: optuna.trial.FrozenTrial | None) -> dict | None:
        if trial is None:
            return None
        found = dict(vars(trial))
        found["intermediate_values"] = {k: "nan" if v != v else v for k, v in trial.intermediate_values.items()}
        return found

    def one(item: object) -> object:
        if isinstance(item, list | tuple):
            return [fields(t) for t in item]
        return fields(item)  # type: ignore[arg-type]

    first, *others = (one(t) for t in trials)
    assert all(other == first for other in others)


STUDIES = {
    "max": [StudyDirection.MAXIMIZE],
    "min": [StudyDirection.MINIMIZE],
    "multi": [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE],
}


@pytest.fixture(scope="module", params=backend_params(*STORAGE_MODES))
def stored(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """Three studies (maximize, minimize, two objectives) with tuner's study attributes, on each
    backend in turn; made once per backend, as every test here only reads them."""
    with supply(request.param, tmp_path_factory.mktemp("fast-reads")) as backend:
        storage = open_storage(backend.url)
        for name, directions in STUDIES.items():
            study = optuna.create_study(storage=storage, study_name=name, directions=directions)
            study.set_user_attr("tuner:metric", "accuracy")
            study.set_user_attr("tuner:model", "svc")
            study.add_trials(_trials(len(directions)))
        yield backend


def _public_summary(name: str, url: str):
    """The summary through Optuna's public API only (get_trials), for comparison."""
    stored = load_stored(name, url)
    return snapshot(stored.study, url).summary(), stored.study


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_summaries_on_the_fast_path_equal_the_public_apis(stored, name):
    url = stored.url
    fast = read_summary(name, url, top=6)
    slow, study = _public_summary(name, url)
    assert fast.counts == slow.counts == {"complete": 16, "pruned": 2, "fail": 2, "running": 1, "waiting": 1}
    assert_same(fast.best, slow.best)
    assert_same(fast.pareto, slow.pareto)
    assert_same(fast.top, top_trials(study, 6))
    assert (fast.started, fast.wall_seconds, fast.seconds_per_trial) == (
        slow.started,
        slow.wall_seconds,
        slow.seconds_per_trial,
    )
    if name == "multi":
        assert fast.best is None
        assert_same(fast.pareto, pareto_front(study))
        assert {t.number for t in fast.pareto} == {t.number for t in study.best_trials}
        return
    # The best: the feasible COMPLETE trial with the best finite value, the earlier one on a tie
    # (3 and 9 when maximizing, 12 and 18 when minimizing). Trial 13's value is infinite; trial 19
    # (the top value) and trial 0 (the lowest) are infeasible.
    assert fast.best is not None
    assert_same(fast.best, best_trial(study))
    assert fast.best.number == {"max": 3, "min": 12}[name]
    assert fast.best.params and fast.best.user_attrs["val_scores"], "the best trial is read in full"


def test_rdb_trials_equal_optunas_own_read_whole_and_in_batches(stored):
    if not stored.rdb:
        pytest.skip("journal and Redis storages are read through Optuna's public API")
    storage = open_storage(stored.url)
    study_id = storage.get_study_id_from_name("max")
    everything = optuna.storages.RDBStorage(stored.url).get_all_trials(study_id, deepcopy=False)  # Optuna's ORM
    assert_same(_optuna.rdb_trials(storage, study_id), everything)
    batched, after = [], -1
    while batch := _optuna.rdb_trials(storage, study_id, after=after, limit=5):
        batched += batch
        after = _optuna.trial_id(batch[-1])
    assert_same(batched, everything)
    pruned = _optuna.rdb_trials(storage, study_id, states=(TrialState.PRUNED,))
    assert_same(pruned, [t for t in everything if t.state == TrialState.PRUNED])
    light = _optuna.rdb_trials(
        storage, study_id, params=False, intermediate=False, user_attrs=("gap",), system_attrs="constraints"
    )
    assert [(t.number, t.values, t.constraints, set(t.user_attrs)) for t in light] == [
        (t.number, t.values, t.constraints, {"gap"} & set(t.user_attrs)) for t in everything
    ]


def test_the_trial_loops_reads_on_tuners_rdb_storages_equal_optunas_own(stored):
    """tuner's RDB storages answer ``get_trial`` and the reads of Optuna's cache (``_get_trials``:
    trials newer than the last one cached, or still running) with plain SQL; the trials are Optuna's."""
    if not stored.rdb:
        pytest.skip("journal and Redis storages are read through Optuna's public API")
    storage, optunas = open_storage(stored.url), optuna.storages.RDBStorage(stored.url)
    assert isinstance(storage, _optuna.LeanRDBStorage)
    for name in STUDIES:
        study_id = storage.get_study_id_from_name(name)
        everything = optunas.get_all_trials(study_id, deepcopy=False)
        ids = [_optuna.trial_id(t) for t in everything]
        assert_same(storage.get_all_trials(study_id, deepcopy=False), everything)
        for trial_id in ids[::5]:
            assert_same(storage.get_trial(trial_id), optunas.get_trial(trial_id))
        running = {_optuna.trial_id(t) for t in everything if t.state == TrialState.RUNNING} | {ids[2], ids[7]}
        for after in (-1, ids[9], ids[-1]):
            for states in (None, (TrialState.WAITING,), (TrialState.COMPLETE, TrialState.RUNNING)):
                assert_same(
                    storage._get_trials(study_id, states, running, after),
                    optunas._get_trials(study_id, states, running, after),
                )
    with pytest.raises(KeyError):
        storage.get_trial(10**9)


def test_the_trial_ask_creates_is_the_trial_stored_and_later_reads_go_to_the_storage(backend):
    """Within ``_optuna.asking()`` the trial ``ask`` creates is not read back: it must equal the
    stored one (MySQL, which keeps whole seconds of the start, reads it back), and only that read."""
    import warnings

    if not backend.rdb:
        pytest.skip("only tuner's RDB storages skip the read")
    storage, optunas = open_storage(backend.url), optuna.storages.RDBStorage(backend.url)
    study = optuna.create_study(storage=storage, study_name="asked")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna: "Heartbeat of storage is supposed to be used with Study.optimize"
        with _optuna.asking():
            trial = study.ask()
    assert_same(trial._cached_frozen_trial, optunas.get_trial(_optuna.trial_id(trial)))
    trial.suggest_float("x", 0, 1)
    assert storage.get_trial(_optuna.trial_id(trial)).params == trial.params, "read from the storage"


class _MarkingSampler(optuna.samplers.RandomSampler):
    """A sampler that writes to the trial in ``after_trial``, as NSGA-II writes its constraints."""

    def after_trial(self, study, trial, state, values):
        study._storage.set_trial_system_attr(trial._trial_id, "marked", [state.name, values])


def test_the_trial_tell_finishes_is_the_trial_stored_and_read_once(backend, monkeypatch):
    """Within ``_optuna.telling()`` the trial ``tell`` has finished is the trial it read first, with
    the state, values and end time written: it must equal the stored one, however it ended (MySQL,
    which keeps whole seconds of the end, reads it back), and a sampler's write in between makes
    ``tell`` read the trial again."""
    import warnings

    if not backend.rdb:
        pytest.skip("only tuner's RDB storages skip the read")
    storage, optunas = open_storage(backend.url), optuna.storages.RDBStorage(backend.url)
    reads = []
    real = _optuna._rdb_trials
    monkeypatch.setattr(_optuna, "_rdb_trials", lambda *a, **k: reads.append(k.get("ids")) or real(*a, **k))
    whole_seconds = backend.kind in ("mysql", "mariadb")
    for sampler, directions, outcomes in (
        (None, ["maximize"], [(TrialState.COMPLETE, [0.25]), (TrialState.PRUNED, None), (TrialState.FAIL, None)]),
        (None, ["minimize", "maximize"], [(TrialState.COMPLETE, [math.inf, -1.5])]),
        (_MarkingSampler(seed=0), ["maximize"], [(TrialState.COMPLETE, [1.0])]),
    ):
        study = optuna.create_study(storage=storage, directions=directions, sampler=sampler)
        for state, values in outcomes:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # Optuna: "Heartbeat of storage is supposed to be used with Study.optimize"
                trial = study.ask()
            trial.suggest_float("x", 0, 1)
            if len(directions) == 1:
                trial.report(0.5, 3)
            del reads[:]
            with _optuna.telling():
                told = study.tell(trial, values, state=state)
            stored = optunas.get_trial(_optuna.trial_id(trial))
            assert_same(told, stored)
            assert stored.state == state and stored.datetime_complete is not None
            assert stored.values == (values or ([0.5] if state == TrialState.PRUNED else None))
            own_reads = [ids for ids in reads if ids == [_optuna.trial_id(trial)]]
            assert len(own_reads) == (2 if sampler or whole_seconds else 1), reads
        if sampler:
            assert told.system_attrs["marked"] == ["COMPLETE", [1.0]]
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(_optuna.trial_id(trial), TrialState.FAIL)
    assert optunas.get_trial(_optuna.trial_id(trial)).state == TrialState.COMPLETE
    with pytest.raises(KeyError):
        storage.set_trial_state_values(10**9, TrialState.COMPLETE, [1.0])


def test_the_end_time_tell_stores_is_optunas_away_from_utc(tmp_path, monkeypatch):
    """Optuna stores naive UTC and hands out local time: a trial finished in Tokyo reads the same
    through Optuna, through tuner's reads and as ``tell`` returned it, and ends about now."""
    import time
    import warnings

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    monkeypatch.setattr(_optuna, "_LOCAL_IS_UTC", False)
    try:
        url = f"sqlite:///{tmp_path / 'tokyo.db'}"
        storage, optunas = open_storage(url), optuna.storages.RDBStorage(url)
        study = optuna.create_study(storage=storage)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna: "Heartbeat of storage is supposed to be used with Study.optimize"
            trial = study.ask()
        with _optuna.telling():
            told = study.tell(trial, 1.0)
        stored = optunas.get_trial(_optuna.trial_id(trial))
        assert_same(told, stored)
        assert_same(storage.get_trial(_optuna.trial_id(trial)), stored)
        assert abs(stored.datetime_complete - datetime.now()) < timedelta(minutes=5)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_streamed_exports_equal_the_whole_study_rendered_at_once(stored, fmt):
    study = load_stored("max", stored.url)
    streamed = "".join(export_stream(study, fmt))
    whole = export_trials(study.study, fmt)
    if fmt == "json":
        assert json.loads(streamed) == json.loads(whole)
    else:
        fast, slow = csv.DictReader(io.StringIO(streamed)), csv.DictReader(io.StringIO(whole))
        assert list(fast) == list(slow)
        assert set(fast.fieldnames or ()) == set(slow.fieldnames or ())
    if stored.kind == "sqlite":  # Optuna's ORM gives the attributes in key order there, as the fast path does
        assert streamed == whole


def test_a_full_read_and_a_sampled_read_of_a_study(stored):
    every = read_study("max", stored.url)
    assert_same(every.trials, snapshot(load_stored("max", stored.url).study, stored.url).trials)
    whole = read_summary("max", stored.url)
    assert_same(every.summary().best, whole.best)
    assert every.summary().counts == whole.counts
    sample = read_study("max", stored.url, max_trials=8)
    assert sample.sampled and len(sample.trials) <= 8
    assert sample.best_trial is not None
    assert_same(sample.best_trial, every.best_trial)
    assert sample.counts() == every.counts() and sample.summary().wall_seconds == every.summary().wall_seconds
    assert {t.number for t in sample.trials} <= {t.number for t in every.trials}
    assert_same([t for t in every.trials if t.number in {s.number for s in sample.trials}], sample.trials)


def test_list_and_compare_agree_with_the_public_api(stored):
    studies = stored.url
    rows = {row.name: row for row in list_studies(studies)}
    assert sorted(rows) == sorted(STUDIES)
    for name in STUDIES:
        slow, study = _public_summary(name, studies)
        trials = study.get_trials(deepcopy=False)
        assert rows[name].n_trials == len(trials)
        assert rows[name].n_complete == sum(t.state == TrialState.COMPLETE for t in trials)
        assert rows[name].best_value == (slow.best.value if slow.best else None)
        assert rows[name].started == min(t.datetime_start for t in trials if t.datetime_start)
    by_ref = compare([f"{name}@{studies}" for name in STUDIES])
    by_snapshot = compare([StudySnapshot(**vars(read_study(name, studies))) for name in STUDIES])
    assert by_ref == by_snapshot
