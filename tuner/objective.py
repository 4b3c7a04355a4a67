"""Objectives: what one trial computes.

The built-in :class:`CVObjective` suggests parameters and cross-validates them fold by fold with
:func:`tuner.cv.fit_and_score`, reporting as the study's :class:`~tuner.setup.PruningPlan` says so
the pruner can stop a bad trial early, and stores what it measured as trial user attributes (so
the dashboard, ``show`` and ``export`` see it): validation and train scores, the gap, per-group
scores and flags (:mod:`tuner.diagnostics`). It returns the spec's targets (:mod:`tuner.targets`).
A custom objective is ``fn(trial) -> float``, as Optuna users write it, or ``fn(trial, context)``,
whose :class:`~tuner.setup.StudyContext` gives it the data, folds and metric.
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import optuna
from sklearn.base import clone

from tuner import _optuna, targets
from tuner.cv import AugmentPlan, FoldLog, fit_and_score, native_rows, plan_for, sample_rows
from tuner.diagnostics import record
from tuner.errors import SpecError
from tuner.search import FULL, check_grid
from tuner.seeds import seed_for
from tuner.setup import PruningPlan, StudyContext
from tuner.store import schema
from tuner.usercode import import_object

# Reports made within this many seconds of a trial's last written one wait for its next write
# (tuner._optuna.report): a fast trial's folds or epochs cost one transaction, not one each, and
# a slow trial's curve still reaches the dashboard as it goes.
REPORT_HOLD_S = 1.0


class Objective(Protocol):
    """What Optuna optimizes: ``objective(trial) -> float`` (a tuple for several objectives)."""

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]: ...


class CVObjective:
    """Cross-validated targets of one parameter set, reported fold by fold (a network: epoch by epoch) for pruning."""

    def __init__(self, context: StudyContext) -> None:
        self.context = context

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        ctx = self.context
        with _optuna.params_in_one_write(trial):
            params = ctx.suggest(trial)
        estimator = ctx.build_estimator(params)
        augment = plan_for(ctx.spec, params)
        if ctx.pruning.screens:
            screen(trial, ctx, estimator, augment)  # cheap low-fidelity CV first; may prune
        rows = native_rows(ctx.model.iterations, estimator, augment)
        X, y = ctx.dataset.X, ctx.dataset.y
        log = FoldLog()
        messages: set[str] = set()
        best_iterations: list[int] = []
        epochs: list[_Epochs] = []
        n_folds = ctx.cv.n_splits
        for index, (train, val) in enumerate(ctx.cv.splits):
            epochs.append(_Epochs(trial, ctx.pruning, index, n_folds))
            # Resampling and augmentation touch the training rows only; scores use the originals.
            try:
                fold = fit_and_score(
                    clone(estimator),
                    X,
                    y,
                    train,
                    val,
                    seed=seed_for(ctx.spec.seed, "augment", index),
                    metric=ctx.metric,
                    augment=augment,
                    stopping=ctx.stopping,
                    groups=ctx.dataset.groups,
                    val_groups=ctx.val_groups(index),
                    rows=rows,
                    fit_params=ctx.fit_params,
                    on_epoch=epochs[-1],
                )
            except optuna.TrialPruned:  # between two epochs of this fold: keep what the trial measured
                if log.folds:
                    self._finish(trial, log, messages, best_iterations, epochs)
                else:
                    _store_epochs(trial, epochs)
                raise
            log.add(fold.scores())
            # Model warnings (convergence, ...) would scroll the progress display away; they are
            # kept on the trial instead, where the dashboard and export show them.
            messages.update(fold.warnings)
            if fold.best_iteration is not None:
                best_iterations.append(fold.best_iteration)
            if self._should_prune(trial, log, index, n_folds):
                self._finish(trial, log, messages, best_iterations, epochs)
                raise optuna.TrialPruned(f"pruned after fold {index + 1} of {n_folds}")
        return self._finish(trial, log, messages, best_iterations, epochs)

    def _should_prune(self, trial: optuna.Trial, log: FoldLog, index: int, n_folds: int) -> bool:
        plan = self.context.pruning
        if not plan.by_fold:
            return False  # screening levels were the steps, or several objectives (no pruning)
        objective = self.context.spec.objective
        value = targets.evaluate(objective.targets, log.last() if plan.per_fold_values else log)[0]
        _optuna.report(trial, value, index, hold_s=REPORT_HOLD_S)
        return index < n_folds - 1 and trial.should_prune()

    def _finish(
        self,
        trial: optuna.Trial,
        log: FoldLog,
        messages: set[str],
        best_iterations: list[int],
        epochs: list[_Epochs],
    ) -> float | tuple[float, ...]:
        spec = self.context.spec
        if best_iterations:  # one storage write for every fold fitted so far
            trial.set_user_attr(schema.BEST_ITERATIONS, list(best_iterations))
        _store_epochs(trial, epochs)
        record(trial, log, baseline=self.context.baseline, messages=messages, metric=self.context.metric.name)
        if spec.constraints.items():
            trial.set_user_attr(schema.FEASIBLE, targets.set_constraints(trial, spec.constraints, log))
        values = targets.evaluate(spec.objective.targets, log)
        return values[0] if len(values) == 1 else tuple(values)


class _Epochs:
    """One fold's epoch losses as a network trains; under an ``epoch`` pruning plan, each epoch is
    reported and the pruner may stop the trial there (``optuna.TrialPruned`` ends the fold's fit)."""

    def __init__(self, trial: optuna.Trial, plan: PruningPlan, fold: int, n_folds: int) -> None:
        self.trial = trial
        self.plan = plan
        self.fold = fold
        self.n_folds = n_folds
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []

    def __call__(self, epoch: int, train_loss: float, val_loss: float) -> None:
        self.train_loss.append(train_loss)
        self.val_loss.append(val_loss)
        if not self.plan.by_epoch:
            return
        step = self.plan.epoch_step(self.fold, epoch)
        _optuna.report(self.trial, self.plan.epoch_value(val_loss), step, hold_s=REPORT_HOLD_S)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch + 1} of fold {self.fold + 1} of {self.n_folds}")


def _store_epochs(trial: optuna.Trial, epochs: list[_Epochs]) -> None:
    """The epoch curves of the folds run so far (the last one cut short when pruned), if the model has any."""
    if not any(e.val_loss for e in epochs):
        return
    trial.set_user_attr(
        schema.EPOCH_CURVES,
        [{schema.EPOCH_TRAIN_LOSS: _finite(e.train_loss), schema.EPOCH_VAL_LOSS: _finite(e.val_loss)} for e in epochs],
    )


def _finite(values: list[float]) -> list[float | None]:
    # JSON has no NaN or infinity: a diverged epoch is stored as null.
    return [v if math.isfinite(v) else None for v in values]


def screen(trial: optuna.Trial, context: StudyContext, estimator: Any, augment: AugmentPlan) -> dict[int, float]:
    """Multi-fidelity screening: cross-validate at each low fidelity level, reporting as it goes.

    At each of the pruning plan's levels, a trial is cross-validated on that share of each training
    fold's rows (``fidelity: rows``) or of its boosting model's iteration cap (``iterations``).
    Validation rows are always the full folds, so scores at every level are comparable across
    trials. The mean validation score is reported at step = the level.

    Returns:
        The mean validation score per level (also stored as the trial attribute ``fidelity_scores``).

    Raises:
        optuna.TrialPruned: when the pruner stops the trial at a level.
    """
    plan = context.pruning
    scores: dict[int, float] = {}
    for level in plan.levels:
        scores[level] = _cross_validate(context, estimator, augment, level)
        _optuna.report(trial, scores[level], level, hold_s=REPORT_HOLD_S)
        if trial.should_prune():
            trial.set_user_attr(schema.FIDELITY_SCORES, {str(k): v for k, v in scores.items()})
            raise optuna.TrialPruned(f"pruned at {level}% of the {context.spec.pruner.fidelity}")
    trial.set_user_attr(schema.FIDELITY_SCORES, {str(k): v for k, v in scores.items()})
    return scores


def _cross_validate(context: StudyContext, estimator: Any, augment: AugmentPlan, level: int) -> float:
    values = []
    for index, (train, val) in enumerate(context.cv.splits):
        model = clone(estimator)
        rows = train
        if context.pruning.step == "rows":
            rows = train[
                _subsample(
                    context.dataset.y[train], level, seed_for(context.spec.seed, "fidelity", index, level), context
                )
            ]
        else:
            _scale_iterations(model, context, level)
        # Warnings of the full-fidelity fits are the ones kept; these are dropped.
        fold = fit_and_score(
            model,
            context.dataset.X,
            context.dataset.y,
            rows,
            val,
            seed=seed_for(context.spec.seed, "augment", index),
            metric=context.metric,
            augment=augment,
            score_train=False,
        )
        assert fold.val is not None
        values.append(fold.val)
    return statistics.fmean(values)


def _subsample(y: np.ndarray, level: int, seed: int, context: StudyContext) -> np.ndarray:
    size = max(2, round(len(y) * level / FULL))
    if size >= len(y):
        return np.arange(len(y))
    try:
        return sample_rows(y, size, seed=seed, stratify=context.dataset.task == "classification")
    except ValueError:  # too few rows to keep every class: plain random rows
        return sample_rows(y, size, seed=seed, stratify=False)


def _scale_iterations(model: Any, context: StudyContext, level: int) -> None:
    hook = context.model.iterations
    assert hook is not None  # the pruning plan refused models without one
    key = next(k for k in model.get_params() if k == hook.param or k.endswith(f"__{hook.param}"))
    cap = int(model.get_params()[key])
    model.set_params(**{key: max(1, round(cap * level / FULL))})


class CustomObjective:
    """Adapts ``fn(trial)`` or ``fn(trial, context)`` to the :class:`Objective` protocol."""

    def __init__(self, fn: Callable[..., Any], context: StudyContext, *, takes_context: bool = True) -> None:
        self.fn = fn
        self.context = context
        self.takes_context = takes_context

    def __call__(self, trial: optuna.Trial) -> Any:
        return self.fn(trial, self.context) if self.takes_context else self.fn(trial)


def takes_context(fn: Callable[..., Any], *, where: str) -> bool:
    """Whether ``fn`` is ``fn(trial, context)`` (True) or ``fn(trial)`` (False), read once from its signature.

    Raises:
        SpecError: for anything else, before a trial runs (every trial would fail with a TypeError).
    """
    if not callable(fn):
        raise SpecError(f"{where}: {type(fn).__name__} {fn!r} is not callable; give a function `fn(trial) -> float`.")
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # some builtins and C callables have no signature: Optuna's form
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    given = [p for p in parameters if p.kind in positional]
    required = [p for p in given if p.default is inspect.Parameter.empty]
    keyword_only = [
        p.name for p in parameters if p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    star = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters)
    if not keyword_only and len(required) <= 2:
        if len(given) >= 2 or star:
            return True
        if given:
            return False
    shown_args = ", ".join(p.name for p in parameters) or "no arguments"
    raise SpecError(
        f"{where}: the objective takes ({shown_args}), but it is called as `fn(trial)` (Optuna's form) or "
        "`fn(trial, ctx)` (with the study context: data, folds, metric); change its arguments to one of these."
    )


def make_objective(
    context: StudyContext,
    objective: Callable[..., Any] | None = None,
) -> Objective:
    """The objective for a run: a Python callable, the spec's ``objective:`` import, or CV.

    A callable is ``fn(trial)`` or ``fn(trial, context)``; its signature is read once, here.
    """
    spec = context.spec
    where = f"{spec.label}, argument 'objective'"
    if objective is None and spec.objective.custom:
        objective = import_object(spec.objective.custom, field="objective", label=spec.label, base_dir=spec.base_dir)
        where = f"{spec.label}, field 'objective'"
    if objective is not None:
        # It suggests parameters of its own.
        return CustomObjective(objective, context, takes_context=takes_context(objective, where=where))
    # Conditional parameters are left out: the grid may never meet their condition.
    check_grid(
        spec.sampler, [n for n, p in context.space.items() if p.type != "fixed" and not p.when], label=spec.label
    )
    return CVObjective(context)
