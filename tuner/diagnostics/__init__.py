"""Training-data diagnostics: overfitting, underfitting, insufficient data, biased data.

- :mod:`~tuner.diagnostics._trial`: per-trial train/validation scores, gap, per-group scores, flags.
- :mod:`~tuner.diagnostics._curve`: scores at growing training sizes and a verdict.
- :mod:`~tuner.diagnostics._summary`: class and group counts, under-represented ones, thin folds.
- :mod:`~tuner.diagnostics._remedies`: what to change in the spec for each flag (knobs, augmentation, fairness).
- :mod:`~tuner.diagnostics._dashboard`: the same for optuna-dashboard: a note per trial, figures per study.
- :mod:`~tuner.diagnostics._study`: :func:`diagnose`, all of the above for a stored study.
"""

from __future__ import annotations

from tuner.diagnostics._curve import DEFAULT_SIZES, CurvePoint, LearningCurve, check_sizes, judge, learning_curve
from tuner.diagnostics._dashboard import epoch_figure, figures, note, publish
from tuner.diagnostics._remedies import Remedy, Step, answers, remedies, space_of, study_remedies
from tuner.diagnostics._study import StudyDiagnosis, best_configuration, curve_attr, diagnose
from tuner.diagnostics._summary import DataSummary, summarize
from tuner.diagnostics._trial import SCORE_SECONDS, flags, record

__all__ = [
    "DEFAULT_SIZES",
    "SCORE_SECONDS",
    "CurvePoint",
    "DataSummary",
    "LearningCurve",
    "Remedy",
    "Step",
    "StudyDiagnosis",
    "answers",
    "best_configuration",
    "check_sizes",
    "curve_attr",
    "diagnose",
    "epoch_figure",
    "figures",
    "flags",
    "judge",
    "learning_curve",
    "note",
    "publish",
    "record",
    "remedies",
    "space_of",
    "study_remedies",
    "summarize",
]
