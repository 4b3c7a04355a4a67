"""What every trial measures besides its score, stored for people: train scores, the gap,
per-group scores and the overfit/underfit flags.

The CV objective adds one :class:`~tuner.cv.FoldScores` per fold to a :class:`~tuner.cv.FoldLog`;
:func:`record` stores the log as trial user attributes (names in :mod:`tuner.store.schema`), so
``show``, ``export`` and optuna-dashboard see it.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from tuner import _optuna
from tuner.cv import FoldLog
from tuner.diagnostics._dashboard import note, note_attrs
from tuner.store import best_val_mean, schema

# A trial is `overfit` when its gap is larger than OVERFIT_SE standard errors of the per-fold
# gaps (so fold-to-fold noise alone does not flag it) and larger than OVERFIT_SHARE of what the
# model gains over the constant baseline on its training rows (so a tiny but steady gap, such as
# a forest's 1.000 vs 0.995, does not flag it either).
OVERFIT_SE = 2.0
# Seconds to score each fold's validation rows (TunerSearchCV's `score_time`). It belongs with the
# other names in tuner.store.schema, which another branch is changing; move it there after both land.
SCORE_SECONDS = "score_seconds"
OVERFIT_SHARE = 0.05


def flags(log: FoldLog, *, baseline: float | None, best_so_far: float | None = None) -> list[str]:
    """``overfit`` and/or ``underfit`` for a trial's fold log (empty when neither applies).

    overfit: the train − validation gap exceeds ``OVERFIT_SE`` standard errors of the per-fold
    gaps and ``OVERFIT_SHARE`` of the train score's lift over the constant baseline.
    underfit: the train score is no better than the baseline, or lower than ``best_so_far`` (the
    validation score of the study's best trial so far), each by more than the trial's fold-to-fold
    spread: the model cannot even fit its training rows as well as the best configuration
    predicts unseen ones.
    """
    out = []
    lift = None if baseline is None else log.train_mean - baseline
    floor = 0.0 if lift is None else OVERFIT_SHARE * max(lift, 0.0)
    if log.gap > max(OVERFIT_SE * log.gap_se, floor):
        out.append("overfit")
    no_lift = lift is not None and lift <= log.val_std
    if no_lift or (best_so_far is not None and log.train_mean < best_so_far - log.val_std):
        out.append("underfit")
    return out


def record(
    trial: optuna.Trial,
    log: FoldLog,
    *,
    baseline: float | None,
    messages: set[str] | None = None,
    metric: str = "score",
) -> dict[str, Any]:
    """Store the fold log as user attributes of ``trial``, and the same as its optuna-dashboard note
    (one transaction on RDB storages); returns what was stored."""
    attrs: dict[str, Any] = {
        schema.VAL_SCORES: [_finite(s) for s in log.val_scores],
        schema.VAL_MEAN: _finite(log.val_mean),
        schema.VAL_STD: _finite(log.val_std),
        schema.TRAIN_SCORES: [_finite(s) for s in log.train_scores],
        schema.TRAIN_MEAN: _finite(log.train_mean),
        schema.TRAIN_STD: _finite(log.train_std),
        schema.GAP: _finite(log.gap),
        schema.FIT_SECONDS: [round(f.fit_seconds, 4) for f in log.folds],
        SCORE_SECONDS: [round(f.score_seconds, 4) for f in log.folds],
        schema.FLAGS: flags(log, baseline=baseline, best_so_far=best_val_mean(trial.study)),
    }
    if any(f.groups for f in log.folds):
        worst = log.worst_group
        attrs[schema.GROUP_SCORES] = {k: _finite(v) if v is not None else None for k, v in log.group_scores.items()}
        attrs[schema.WORST_GROUP_SCORE] = _finite(worst[1]) if worst else None
        attrs[schema.WORST_GROUP_NAME] = worst[0] if worst else None
        attrs[schema.GROUP_GAP] = _finite(log.group_gap) if log.group_gap is not None else None
    if messages:
        attrs[schema.WARNINGS] = sorted(messages)[:10]
    body = note(attrs, number=trial.number, metric=metric)
    _optuna.set_user_attrs(trial, attrs, study_system_attrs=note_attrs(_optuna.trial_id(trial), body))
    return attrs


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
