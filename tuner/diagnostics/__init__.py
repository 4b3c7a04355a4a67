"""Training-data diagnostics: overfitting, underfitting, insufficient data, biased data.

- :mod:`~tuner.diagnostics.trial`: per-trial train/validation scores, gap, per-group scores, flags.
- :mod:`~tuner.diagnostics.learning_curve`: scores at growing training sizes and a verdict.
- :mod:`~tuner.diagnostics.data_summary`: class and group counts, under-represented ones, thin folds.
- :mod:`~tuner.diagnostics.study`: :func:`diagnose`, all of the above for a stored study.
"""

from __future__ import annotations

from tuner.diagnostics.data_summary import DataSummary, summarize
from tuner.diagnostics.learning_curve import DEFAULT_SIZES, CurvePoint, LearningCurve, learning_curve
from tuner.diagnostics.study import StudyDiagnosis, diagnose
from tuner.diagnostics.trial import FoldLog, FoldScores, baseline_score, flags, record, score_fold

__all__ = [
    "DEFAULT_SIZES",
    "CurvePoint",
    "DataSummary",
    "FoldLog",
    "FoldScores",
    "LearningCurve",
    "StudyDiagnosis",
    "baseline_score",
    "diagnose",
    "flags",
    "learning_curve",
    "record",
    "score_fold",
    "summarize",
]
