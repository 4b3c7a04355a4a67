"""``diagnose``: the training-data questions for a whole study, answered from its storage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from tuner.diagnostics._curve import DEFAULT_SIZES, LearningCurve, check_sizes, learning_curve
from tuner.diagnostics._dashboard import publish
from tuner.diagnostics._remedies import Remedy, remedies
from tuner.diagnostics._summary import DataSummary, summarize
from tuner.setup import build
from tuner.store import StudyRef, best_trial, load_stored, pareto_front, resolve_ref, schema, stored_spec


@dataclass(frozen=True)
class StudyDiagnosis:
    """Data summary, flags across trials, and the learning curve of the best configuration."""

    study: str
    metric: str
    baseline: float | None
    summary: DataSummary
    n_complete: int
    flag_counts: dict[str, int]
    best: optuna.trial.FrozenTrial | None
    curve: LearningCurve | None
    # What to do about each flag of the best trial (see tuner.diagnostics._remedies).
    remedies: tuple[Remedy, ...] = ()


def diagnose(
    ref: str | StudyRef,
    *,
    storage: str | None = None,
    data: pd.DataFrame | None = None,
    sizes: Sequence[float] = DEFAULT_SIZES,
    curve: bool = True,
    store: bool = True,
) -> StudyDiagnosis:
    """Diagnose the study ``ref`` (its spec file, or its name on ``storage``).

    Args:
        ref: A spec file, a study name (``name@storage`` works too), or a resolved
            :class:`~tuner.store.StudyRef`.
        storage: The storage URL or path when ``ref`` is a name.
        data: The DataFrame the study was run on, when it was passed from Python.
        sizes: Training-size fractions for the learning curve.
        curve: Compute the learning curve (fits the best configuration ``len(sizes) × folds`` times).
        store: Keep the learning curve on the study (user attribute ``tuner:learning_curve``), where
            ``tuner report`` and the dashboard find it.

    Raises:
        TunerError: unknown study, unreadable spec or data, invalid sizes.

    Example:
        >>> report = diagnose("studies/fairness.yaml")
        >>> print(report.curve.verdict)
    """
    if curve:
        check_sizes(sizes)
    found = ref if isinstance(ref, StudyRef) else resolve_ref(ref, storage=storage)
    study = load_stored(found.name, found.url).study
    spec = stored_spec(study.user_attrs, name=found.name, spec_file=found.spec_file)
    context = build(spec, data=data)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    flag_counts = Counter(flag for t in complete for flag in t.user_attrs.get(schema.FLAGS, []))
    best = best_configuration(study)
    computed = learning_curve(context, context.params_of(best), sizes=sizes) if curve and best is not None else None
    if computed is not None and best is not None and store:
        study.set_user_attr(schema.LEARNING_CURVE, curve_attr(computed, best.number))
        publish(study)  # the learning curve joins the figures optuna-dashboard shows
    if computed is not None:
        more_data: bool | None = computed.more_data_helps
    else:
        stored = study.user_attrs.get(schema.LEARNING_CURVE)
        same = isinstance(stored, dict) and best is not None and stored.get(schema.CURVE_TRIAL) == best.number
        more_data = bool(stored.get(schema.CURVE_MORE_DATA_HELPS)) if same and isinstance(stored, dict) else None
    return StudyDiagnosis(
        study=found.name,
        metric=context.metric.name,
        baseline=context.baseline,
        summary=summarize(context.dataset, context.cv.splits, context.score_groups),
        n_complete=len(complete),
        flag_counts=dict(flag_counts),
        best=best,
        curve=computed,
        remedies=remedies(
            spec,
            best=best,
            knobs=context.model.knobs,
            space=context.space,
            task=context.dataset.task,
            more_data=more_data,
        ),
    )


def curve_attr(curve: LearningCurve, trial: int) -> dict[str, Any]:
    """The learning curve as a JSON-safe study attribute (the shape ``tuner report`` plots)."""
    return {
        schema.CURVE_TRIAL: trial,
        schema.CURVE_METRIC: curve.metric,
        schema.CURVE_SIZES: [p.rows for p in curve.points],
        schema.CURVE_TRAIN_SCORES: [p.train_mean for p in curve.points],
        schema.CURVE_VAL_SCORES: [list(p.val_scores) for p in curve.points],
        schema.CURVE_MORE_DATA_HELPS: curve.more_data_helps,
        schema.CURVE_VERDICT: curve.verdict,
    }


def best_configuration(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best feasible trial; for several objectives, the Pareto trial best on the first one."""
    if len(study.directions) == 1:
        return best_trial(study)
    front = pareto_front(study)
    return front[0] if front else None
