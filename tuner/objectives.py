"""Objectives: what one trial computes.

The built-in :class:`CVObjective` suggests parameters, fits one fold at a time, reports after
each fold so the pruner can stop a bad trial early, and stores what it measured as trial user
attributes (so the dashboard, ``show`` and ``export`` see it). A custom objective is any
``fn(trial, context) -> float``; :class:`ObjectiveContext` gives it the data, folds and metric.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import optuna

from tuner.space import Space, suggest

if TYPE_CHECKING:
    from tuner.data import Dataset
    from tuner.metrics import Metric
    from tuner.models import ModelEntry
    from tuner.spec import StudySpec
    from tuner.splits import Split


class Objective(Protocol):
    """What Optuna optimizes: ``objective(trial) -> float``."""

    def __call__(self, trial: optuna.Trial) -> float: ...


@dataclass(frozen=True)
class ObjectiveContext:
    """Everything a trial needs, built once per run (data loaded, folds fixed, metric resolved)."""

    spec: StudySpec
    dataset: Dataset
    splits: list[Split]
    metric: Metric
    model: ModelEntry
    space: Space
    model_seed: int

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every active parameter of the study's search space."""
        return suggest(trial, self.space)

    def build_estimator(self, params: dict[str, Any]) -> Any:
        """An unfitted estimator (with preprocessing when the data needs it) for ``params``."""
        from tuner.data import make_preprocessor

        estimator = self.model.build(
            self.dataset.task, params, seed=self.model_seed, proba=_needs_proba(self.metric.name)
        )
        pre = make_preprocessor(self.dataset, handles_missing=self.model.handles_missing)
        if pre is None:
            return estimator
        from sklearn.pipeline import make_pipeline

        return make_pipeline(pre, estimator)

    def fold(self, index: int) -> tuple[Any, Any, Any, Any]:
        """``X_train, y_train, X_val, y_val`` of fold ``index``."""
        train, val = self.splits[index]
        X, y = self.dataset.X, self.dataset.y
        return X.iloc[train], y[train], X.iloc[val], y[val]


def _needs_proba(metric: str) -> bool:
    return metric in ("neg_log_loss", "neg_brier_score", "d2_log_loss_score", "d2_brier_score")


class CVObjective:
    """Cross-validated score of one parameter set, reported fold by fold for pruning."""

    def __init__(self, context: ObjectiveContext, *, report_fold_scores: bool = False) -> None:
        self.context = context
        # The Wilcoxon pruner compares per-fold values pairwise; the others compare running means.
        self.report_fold_scores = report_fold_scores

    def __call__(self, trial: optuna.Trial) -> float:
        from sklearn.base import clone

        ctx = self.context
        estimator = ctx.build_estimator(ctx.suggest(trial))
        scores: list[float] = []
        fit_seconds: list[float] = []
        messages: set[str] = set()
        n_folds = len(ctx.splits)
        for index in range(n_folds):
            X_train, y_train, X_val, y_val = ctx.fold(index)
            model = clone(estimator)
            # Model warnings (convergence, ...) would scroll the progress display away; they are
            # kept on the trial instead, where the dashboard and export show them.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                started = time.perf_counter()
                model.fit(X_train, y_train)
                fit_seconds.append(time.perf_counter() - started)
                scores.append(ctx.metric.score(model, X_val, y_val))
            messages.update(f"{w.category.__name__}: {w.message}"[:300] for w in caught)
            trial.report(scores[-1] if self.report_fold_scores else statistics.fmean(scores), index)
            if index < n_folds - 1 and trial.should_prune():
                _record(trial, scores, fit_seconds, messages)
                raise optuna.TrialPruned(f"pruned after fold {index + 1} of {n_folds}")
        _record(trial, scores, fit_seconds, messages)
        return statistics.fmean(scores)


def _record(trial: optuna.Trial, scores: list[float], fit_seconds: list[float], messages: set[str]) -> None:
    trial.set_user_attr("val_scores", [_finite(s) for s in scores])
    trial.set_user_attr("val_std", _finite(statistics.pstdev(scores)) if len(scores) > 1 else 0.0)
    trial.set_user_attr("fit_seconds", [round(s, 4) for s in fit_seconds])
    if messages:
        trial.set_user_attr("warnings", sorted(messages)[:10])


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class CustomObjective:
    """Adapts ``fn(trial, context) -> float`` to the :class:`Objective` protocol."""

    def __init__(self, fn: Callable[[optuna.Trial, ObjectiveContext], float], context: ObjectiveContext) -> None:
        self.fn = fn
        self.context = context

    def __call__(self, trial: optuna.Trial) -> float:
        return self.fn(trial, self.context)


def build_context(spec: StudySpec, *, data: Any = None) -> ObjectiveContext:
    """Load data, fix the folds, resolve metric, model and space; every check runs here, before any trial.

    Args:
        spec: The validated study spec.
        data: Optional pandas DataFrame replacing ``spec.data.source``.

    Raises:
        TunerError: a :class:`~tuner.errors.SpecError`, :class:`~tuner.errors.DataError` or
            :class:`~tuner.errors.CatalogError` naming the field to fix.
    """
    from tuner.data import load_dataset
    from tuner.errors import SpecError, did_you_mean
    from tuner.metrics import check_metric, default_metric, get_metric
    from tuner.models import get_model
    from tuner.seeds import seed_for
    from tuner.space import merge
    from tuner.splits import make_splits

    label = spec.label
    dataset = load_dataset(spec.data, base_dir=spec.base_dir, label=label, frame=data)
    metric_name = spec.metric or default_metric(dataset.task, dataset.n_classes)
    problem = check_metric(metric_name, dataset.task, dataset.n_classes)
    if problem:
        raise SpecError(f"{label}, field 'metric': {problem}.")
    model = get_model(spec.model, label=label, base_dir=spec.base_dir)
    if dataset.task not in model.tasks:
        raise SpecError(
            f"{label}, field 'model': {spec.model!r} has no {dataset.task} variant (it supports "
            f"{', '.join(model.tasks)}); pick another model from `tuner models` or set `data.task`."
        )
    space = merge(model.space(dataset.task), spec.space, label=label)
    accepted = _accepted_params(model, dataset.task)
    for name in space:
        if accepted is not None and name not in accepted:
            raise SpecError(
                f"{label}, field 'space.{name}': model {spec.model!r} has no parameter {name!r}."
                f"{did_you_mean(name, accepted)} Parameters: {', '.join(sorted(accepted))}."
            )
    cv_seed = spec.cv.seed if spec.cv.seed is not None else seed_for(spec.seed, "cv")
    splits = make_splits(spec.cv, dataset, seed=cv_seed, label=label)
    return ObjectiveContext(
        spec=spec,
        dataset=dataset,
        splits=splits,
        metric=get_metric(metric_name, dataset.task),
        model=model,
        space=space,
        model_seed=seed_for(spec.seed, "model"),
    )


def _accepted_params(model: ModelEntry, task: Any) -> set[str] | None:
    """Parameter names the model's estimator takes, or None when it cannot tell (custom factories)."""
    try:
        estimator = model.factory(task)()
    except Exception:  # a custom factory may need arguments; then we cannot check names up front
        return None
    if not hasattr(estimator, "get_params"):
        return None
    return set(estimator.get_params(deep=False))


def make_objective(
    context: ObjectiveContext,
    objective: Callable[[optuna.Trial, ObjectiveContext], float] | None = None,
) -> Objective:
    """The objective for a run: a Python callable, the spec's ``objective:`` import, or CV."""
    from tuner.models import import_object

    spec = context.spec
    if objective is None and spec.objective:
        objective = import_object(spec.objective, field="objective", label=spec.label, base_dir=spec.base_dir)
    if objective is not None:
        return CustomObjective(objective, context)
    return CVObjective(context, report_fold_scores=spec.pruner.name == "wilcoxon")
