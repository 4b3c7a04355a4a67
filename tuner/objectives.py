"""Objectives: what one trial computes.

The built-in :class:`CVObjective` suggests parameters, fits one fold at a time, reports after
each fold so the pruner can stop a bad trial early, and stores what it measured as trial user
attributes (so the dashboard, ``show`` and ``export`` see it): validation and train scores, the
gap, per-group scores and flags (:mod:`tuner.diagnostics`). It returns the spec's targets
(:mod:`tuner.targets`). A custom objective is any ``fn(trial, context) -> float``;
:class:`ObjectiveContext` gives it the data, folds and metric.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import optuna

from tuner import augment, fidelity, targets
from tuner.diagnostics.trial import FoldLog, record, score_fold
from tuner.early_stopping import FoldFitter
from tuner.seeds import seed_for
from tuner.space import Space, suggest

if TYPE_CHECKING:
    import numpy as np

    from tuner.data import Dataset
    from tuner.metrics import Metric
    from tuner.models import ModelEntry
    from tuner.spec import StudySpec
    from tuner.splits import Split


class Objective(Protocol):
    """What Optuna optimizes: ``objective(trial) -> float`` (a tuple for several objectives)."""

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]: ...


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
    # Rows set aside by `cv.holdout_test`: never tuned on, scored once by `tuner refit`.
    holdout: Dataset | None = None
    # Validation score of a constant model on the same folds (what `underfit` compares with).
    baseline: float | None = None
    # Labels of the groups that get per-group scores (`fairness.groups` or `data.groups`), or None.
    score_groups: np.ndarray | None = None

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every active parameter of the study's search space."""
        return suggest(trial, self.space)

    def params_of(self, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        """A finished trial's parameters with the space's fixed values, as the objective built them."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # values outside a since-changed space are still used
            # FixedTrial answers every suggest_* call like the live trial did.
            return self.suggest(cast("optuna.Trial", optuna.trial.FixedTrial(dict(trial.params))))

    def build_estimator(self, params: dict[str, Any]) -> Any:
        """An unfitted estimator (with preprocessing when the data needs it) for ``params``."""
        from tuner.data import make_preprocessor

        estimator = self.model.build(
            self.dataset.task, augment.model_params(params), seed=self.model_seed, proba=_needs_proba(self.metric.name)
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

    def val_groups(self, index: int) -> np.ndarray | None:
        """Group labels of the validation rows of fold ``index`` (None without per-group scores)."""
        return None if self.score_groups is None else self.score_groups[self.splits[index][1]]


def _needs_proba(metric: str) -> bool:
    return metric in ("neg_log_loss", "neg_brier_score", "d2_log_loss_score", "d2_brier_score")


class CVObjective:
    """Cross-validated targets of one parameter set, reported fold by fold for pruning."""

    def __init__(self, context: ObjectiveContext, *, report_fold_scores: bool = False) -> None:
        self.context = context
        # The Wilcoxon pruner compares per-fold values pairwise; the others compare running means.
        self.report_fold_scores = report_fold_scores

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        from sklearn.base import clone

        ctx = self.context
        params = ctx.suggest(trial)
        estimator = ctx.build_estimator(params)
        plan = augment.plan_for(ctx.spec, params)
        if ctx.spec.pruner.fidelity != "folds":
            fidelity.screen(trial, ctx, estimator, plan)  # cheap low-fidelity CV first; may prune
        # Boosting models stop early on a split of each training fold and record their best iterations.
        fitter = FoldFitter.for_context(ctx)
        rows = fitter.rows_for(estimator, plan)
        log = FoldLog()
        messages: set[str] = set()
        n_folds = len(ctx.splits)
        for index in range(n_folds):
            X_train, y_train, X_val, y_val = ctx.fold(index)
            X_train, X_val = rows(X_train), rows(X_val)
            model = clone(estimator)
            # Model warnings (convergence, ...) would scroll the progress display away; they are
            # kept on the trial instead, where the dashboard and export show them.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # Resampling and augmentation touch the training rows only; scores use the originals.
                seconds = fitter.fit(
                    model, plan, index, X_train, y_train, seed=seed_for(ctx.spec.seed, "augment", index)
                )
                groups = ctx.val_groups(index)
                fold = score_fold(
                    ctx.metric, model, X_train, y_train, X_val, y_val, fit_seconds=seconds, val_groups=groups
                )
            log.add(fold)
            messages.update(f"{w.category.__name__}: {w.message}"[:300] for w in caught)
            if self._should_prune(trial, log, index, n_folds):
                fitter.record(trial)
                self._finish(trial, log, messages)
                raise optuna.TrialPruned(f"pruned after fold {index + 1} of {n_folds}")
        fitter.record(trial)
        return self._finish(trial, log, messages)

    def _should_prune(self, trial: optuna.Trial, log: FoldLog, index: int, n_folds: int) -> bool:
        objective = self.context.spec.objective
        if objective.multi:
            return False  # Optuna cannot report or prune trials of multi-objective studies
        if self.context.spec.pruner.fidelity != "folds":
            return False  # steps are fidelity levels, and the full CV is the last level
        value = targets.evaluate(objective.targets, log.last() if self.report_fold_scores else log)[0]
        trial.report(value, index)
        return index < n_folds - 1 and trial.should_prune()

    def _finish(self, trial: optuna.Trial, log: FoldLog, messages: set[str]) -> float | tuple[float, ...]:
        spec = self.context.spec
        record(trial, log, baseline=self.context.baseline, messages=messages)
        if spec.constraints.items():
            trial.set_user_attr("feasible", targets.set_constraints(trial, spec.constraints, log))
        values = targets.evaluate(spec.objective.targets, log)
        return values[0] if len(values) == 1 else tuple(values)


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
    from tuner.diagnostics.trial import baseline_score, prepare_groups
    from tuner.errors import SpecError, did_you_mean
    from tuner.fold_order import order_folds
    from tuner.metrics import check_metric, default_metric, get_metric
    from tuner.models import get_model
    from tuner.space import merge
    from tuner.splits import make_splits, resolve_scheme, split_holdout

    label = spec.label
    dataset = load_dataset(
        spec.data, base_dir=spec.base_dir, label=label, frame=data, fairness_groups=spec.fairness.groups
    )
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
    example = _example_estimator(model, dataset.task)
    accepted = set(example.get_params(deep=False)) if example is not None and hasattr(example, "get_params") else None
    for name in space:
        if accepted is not None and name not in accepted and not augment.is_step_param(name):
            raise SpecError(
                f"{label}, field 'space.{name}': model {spec.model!r} has no parameter {name!r}."
                f"{did_you_mean(name, accepted)} Parameters: {', '.join(sorted(accepted))}."
            )
    cv_seed = spec.cv.seed if spec.cv.seed is not None else seed_for(spec.seed, "cv")
    dataset, holdout = split_holdout(spec.cv, dataset, seed=seed_for(cv_seed, "holdout"), label=label)
    splits = order_folds(make_splits(spec.cv, dataset, seed=cv_seed, label=label), resolve_scheme(spec.cv, dataset))
    fidelity.check(spec, model)
    score_groups = prepare_groups(spec, dataset)
    augment.check(spec, dataset, example)
    metric = get_metric(metric_name, dataset.task)
    return ObjectiveContext(
        spec=spec,
        dataset=dataset,
        splits=splits,
        metric=metric,
        model=model,
        space=space,
        model_seed=seed_for(spec.seed, "model"),
        holdout=holdout,
        baseline=baseline_score(dataset, splits, metric),
        score_groups=score_groups,
    )


def _example_estimator(model: ModelEntry, task: Any) -> Any | None:
    """The model's estimator with default parameters, or None when it cannot be built without them."""
    try:
        return model.factory(task)()
    except Exception:  # a custom factory may need arguments; then we cannot check names up front
        return None


def make_objective(
    context: ObjectiveContext,
    objective: Callable[[optuna.Trial, ObjectiveContext], float] | None = None,
) -> Objective:
    """The objective for a run: a Python callable, the spec's ``objective:`` import, or CV."""
    from tuner.models import import_object

    spec = context.spec
    if objective is None and spec.objective.custom:
        objective = import_object(spec.objective.custom, field="objective", label=spec.label, base_dir=spec.base_dir)
    if objective is not None:
        return CustomObjective(objective, context)  # it suggests parameters of its own
    from tuner.samplers import check_grid

    # Conditional parameters are left out: the grid may never meet their condition.
    check_grid(
        spec.sampler, [n for n, p in context.space.items() if p.type != "fixed" and not p.when], label=spec.label
    )
    return CVObjective(context, report_fold_scores=spec.pruner.name == "wilcoxon")
