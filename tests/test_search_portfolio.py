"""The start-up portfolio (``tuner/search/_portfolio.py`` and its ``portfolio.json``): it loads, covers every
catalog model and task, holds only configurations valid in the model's default space, and a declared
pipeline gets them under its ``model__`` names."""

from __future__ import annotations

from typing import cast

import optuna
import pytest

from tuner.models import all_entries, get_model, model_names
from tuner.models._steps import in_pipeline
from tuner.search import fit_to_space, known_good, suggest
from tuner.search._portfolio import portfolio, portfolio_models
from tuner.spec import StepSpec, Task


def _tasks(name: str) -> list[Task]:
    entry = get_model(name)
    tasks: list[Task] = []
    if entry.classifier is not None:
        tasks.append("classification")
    if entry.regressor is not None:
        tasks.append("regression")
    return tasks


def test_the_portfolio_covers_every_catalog_model_and_task_and_nothing_else():
    assert set(portfolio_models()) <= set(model_names())
    for entry in all_entries():
        for task in _tasks(entry.name):
            assert portfolio(entry.name, task), (entry.name, task)
    assert portfolio("no-such-model", "classification") == []


@pytest.mark.parametrize("name", sorted(portfolio_models()))
def test_every_portfolio_configuration_is_valid_in_its_models_default_space(name):
    for task in _tasks(name):
        space = get_model(name).space(task)
        configs = portfolio(name, task)
        assert len({str(sorted(c.items())) for c in configs}) == len(configs)  # no repeats
        for config in configs:
            # nothing clipped or dropped, and exactly the parameters the space makes active
            assert fit_to_space(config, space) == config
            assert suggest(cast("optuna.Trial", optuna.trial.FixedTrial(config)), space) == config


def test_the_portfolio_is_a_copy_callers_may_change():
    first = portfolio("xgboost", "regression")
    first[0]["learning_rate"] = -1.0
    assert portfolio("xgboost", "regression")[0]["learning_rate"] != -1.0


def test_a_declared_pipeline_gets_the_portfolio_under_its_model_names():
    entry = get_model("logistic")
    piped = in_pipeline(entry, [StepSpec(name="scale")])
    plain = known_good(entry, "classification", stops_early=False)
    assert known_good(piped, "classification", stops_early=False) == [
        {f"model__{k}": v for k, v in c.items()} for c in plain
    ]


def test_boosting_iterations_go_to_the_top_of_the_range_when_folds_stop_early():
    entry = get_model("lightgbm")
    learned = portfolio("lightgbm", "classification")
    stopped = known_good(entry, "classification", stops_early=True)
    assert [c["n_estimators"] for c in stopped] == [float("inf")] * len(learned)
    assert known_good(entry, "classification", stops_early=False) == learned
