"""Setup (``tuner/setup.py``): spec and data become a study context with its CV plan, holdout and fold
order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tuner.setup import build as build_context
from tuner.spec import load_spec


def test_the_study_uses_the_reordered_folds(write_spec):
    spec = load_spec(write_spec({"cv": {"scheme": "timeseries", "folds": 3}, "data": {"task": "classification"}}))
    context = build_context(spec)
    ends = [int(train.max()) for train, _ in context.splits]
    assert ends == sorted(ends, reverse=True)


HOLDOUT = {"cv": {"holdout_test": 0.25}}


def test_holdout_rows_stay_out_of_tuning_and_are_recomputed_identically(write_spec):
    spec = load_spec(write_spec(HOLDOUT))
    first, second = build_context(spec), build_context(spec)
    assert first.holdout is not None and second.holdout is not None
    n_test, n_tune = len(first.holdout.y), len(first.dataset.y)
    assert n_test + n_tune == 569 and n_test == pytest.approx(569 * 0.25, abs=1)
    # Same rows every time (refit relies on it), and no test row is among the tuning rows.
    pd.testing.assert_frame_equal(first.holdout.X, second.holdout.X)
    tuning_rows = set(map(tuple, first.dataset.X.to_numpy()))
    assert not any(tuple(row) in tuning_rows for row in first.holdout.X.to_numpy())
    # Folds cover exactly the tuning rows.
    val = np.sort(np.concatenate([v for _, v in first.splits]))
    assert np.array_equal(val, np.arange(n_tune))
    # Stratified: class shares agree within a row.
    assert abs(first.holdout.y.mean() - first.dataset.y.mean()) < 0.02


def test_the_constant_baseline_lets_its_warnings_through(write_spec):
    from sklearn.exceptions import UndefinedMetricWarning

    spec = load_spec(write_spec({"data": {"source": "sklearn:iris"}, "metric": "precision_macro"}))
    # A prior-predicting constant model never predicts two of the three classes.
    with pytest.warns(UndefinedMetricWarning):
        context = build_context(spec)
    assert context.baseline is not None and 0 < context.baseline < 0.5


@pytest.mark.parametrize(
    ("fidelity", "pruner", "multi", "step", "titles"),
    [
        ("folds", "median", False, "fold", ("fold (step)", "running mean of auc")),
        ("folds", "wilcoxon", False, "fold", ("fold (step)", "auc of the fold")),
        ("folds", "median", True, "none", ("step", "auc")),
        ("rows", "hyperband", False, "rows", ("% of each training fold's rows (step)", "mean auc")),
        ("iterations", "hyperband", False, "iterations", ("% of the boosting iterations (step)", "mean auc")),
    ],
)
def test_the_pruning_plan_says_what_a_step_is(fidelity, pruner, multi, step, titles):
    from tuner.setup import PruningPlan

    plan = PruningPlan.of(fidelity, pruner, multi_objective=multi)
    assert plan.step == step
    assert plan.axis_titles("auc") == titles


def test_a_study_context_carries_the_pruning_plan_of_its_spec(write_spec):
    context = build_context(load_spec(write_spec({"pruner": {"name": "hyperband", "fidelity": "rows"}})))
    assert context.pruning.step == "rows" and context.pruning.levels == (11, 33)
    assert build_context(load_spec(write_spec({"pruner": "wilcoxon"}))).pruning.per_fold_values
