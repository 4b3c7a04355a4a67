"""Cross-validation: the CV plan (scheme, holdout, ordered folds), the one fit-and-score loop,
training-fold augmentation, early stopping, networks trained epoch by epoch, and the fold-score records."""

from __future__ import annotations

from tuner.cv._augment import BALANCERS, FitData, apply, fit_kwargs, is_step_param, model_params, plan_for
from tuner.cv._augment import Plan as AugmentPlan
from tuner.cv._augment import check as check_augment
from tuner.cv._early_stopping import (
    MIN_ROWS,
    StoppingPlan,
    fit_with_stopping,
    native_rows,
    stopping_plan,
    stopping_split,
)
from tuner.cv._epochs import EpochCurves, OnEpoch, fit_by_epoch
from tuner.cv._fit import FoldResult, fit_and_score, sample_rows, train_score_rows
from tuner.cv._plan import CVPlan, Split, make_plan, order_folds, resolve_scheme, resplit
from tuner.cv._records import FoldLog, FoldScores

__all__ = [
    "BALANCERS",
    "MIN_ROWS",
    "AugmentPlan",
    "CVPlan",
    "EpochCurves",
    "FitData",
    "FoldLog",
    "FoldResult",
    "FoldScores",
    "OnEpoch",
    "Split",
    "StoppingPlan",
    "apply",
    "check_augment",
    "fit_and_score",
    "fit_by_epoch",
    "fit_kwargs",
    "fit_with_stopping",
    "is_step_param",
    "make_plan",
    "model_params",
    "native_rows",
    "order_folds",
    "plan_for",
    "resolve_scheme",
    "resplit",
    "sample_rows",
    "stopping_plan",
    "stopping_split",
    "train_score_rows",
]
