"""The final model: a study's chosen trial refitted on all tuning rows, in memory.

One path for every caller: ``StudyResult.best_estimator()`` (any storage, ``memory://`` too, and
data passed from Python), and :func:`tuner.refit.refit_best`, which adds the model file and its
card. The estimator is fitted through the one fit loop (:func:`tuner.cv.fit_and_score`) with the
trial's balancing and augmentation, on class codes as every trial was, and then answers in the
data's own labels (:func:`tuner.labels.with_labels`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.cv import fit_and_score, plan_for
from tuner.errors import TunerError
from tuner.labels import with_labels
from tuner.seeds import seed_for
from tuner.setup import StudyContext
from tuner.store import best_trial, schema
from tuner.threads import limited, model_threads


@dataclass(frozen=True)
class FinalModel:
    """A refitted trial: the estimator (predicting the data's labels) and what went into it."""

    estimator: Any
    trial: FrozenTrial
    params: dict[str, Any]
    # The iteration count taken from the folds' early stopping (see `_iterations`), or None.
    iterations: dict[str, Any] | None
    # The held-out rows' score ({metric, score, rows}), or None without `cv.holdout_test`.
    test: dict[str, Any] | None
    fit_warnings: list[str]


def fit_final(context: StudyContext, study: optuna.Study, number: int | None = None) -> FinalModel:
    """Refit trial ``number`` (default: the best) of ``study`` on all tuning rows of ``context``.

    Raises:
        TunerError: an unknown trial, no complete trial yet, a multi-objective study without
            ``number``, or a trial whose parameters no longer fit the space.
    """
    chosen = choose_trial(study, number)
    estimator, params, iterations = final_estimator(context, chosen)
    with limited(refit_threads(context)):
        messages = _fit(estimator, context, params)
        # Scored on codes, as the trials were, before the labels go back on.
        test = _score_holdout(estimator, context)
    return FinalModel(
        estimator=with_labels(estimator, context.dataset.classes),
        trial=chosen,
        params=params,
        iterations=iterations,
        test=test,
        fit_warnings=messages,
    )


def final_estimator(context: StudyContext, trial: FrozenTrial) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """The unfitted estimator that refits ``trial``, its parameters, and the iteration count they
    took from the folds' early stopping (None when the trial did not stop early).

    Shared with ``TunerSearchCV``, which fits it on the rows as they were given to ``fit``.
    """
    params = _params(context, trial)
    iterations = _iterations(context, params, trial.user_attrs)
    if iterations is not None:
        params[iterations["param"]] = iterations["value"]
    # The refit runs alone: the run's workers have stopped, so it takes the share of one worker.
    estimator = replace(context, threads=refit_threads(context)).build_estimator(params)
    if iterations is not None:
        _no_early_stopping(estimator)
    return estimator, params, iterations


def refit_threads(context: StudyContext) -> int:
    """Threads for a refit: one worker's share of the cores (see :mod:`tuner.threads`)."""
    return model_threads(context.spec.budget.threads, 1)


def choose_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """Trial ``number`` if it completed, else the best trial of a single-objective study."""
    complete = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    multi = len(study.directions) > 1
    if number is not None:
        if number not in complete:
            raise TunerError(
                f"study {study.study_name!r} has no complete trial #{number}. "
                f"Complete trials: {_numbers(complete)}. Pick one of them with --trial."
            )
        return complete[number]
    if multi:
        pareto = [t.number for t in study.best_trials]
        raise TunerError(
            f"study {study.study_name!r} has {len(study.directions)} objectives, so there is no single best trial. "
            f"Choose one of the Pareto-optimal trials with --trial N (trial=N): {_numbers(pareto)}."
        )
    best = best_trial(study)
    if best is None:
        raise TunerError(
            f"study {study.study_name!r} has no complete trial with a finite value yet; run it first (`tuner run`)."
        )
    return best


def _numbers(numbers: Any) -> str:
    listed = sorted(numbers)
    return ", ".join(f"#{n}" for n in listed[:30]) + (" …" if len(listed) > 30 else "") if listed else "none"


def _params(context: StudyContext, trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters with the space's fixed values, exactly as the objective built them."""
    try:
        return context.params_of(trial)
    except ValueError as exc:
        raise TunerError(
            f"{context.spec.label}: trial #{trial.number}'s parameters do not fit the study's search space ({exc}). "
            "The space changed after this trial, or a custom objective suggested other parameters; "
            "refit another trial with --trial N."
        ) from None


def _iterations(context: StudyContext, params: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any] | None:
    """Boosting models and networks stop early in each fold and record the best iteration (epoch)
    counts (trial attribute ``best_iterations``); the refit on all rows uses their mean instead of
    the searched cap."""
    counts = attrs.get(schema.BEST_ITERATIONS)
    if not isinstance(counts, list) or not counts:
        return None
    values = [c for c in counts if isinstance(c, int | float) and not isinstance(c, bool) and c > 0]
    if not values:
        return None
    # The catalog entry's fidelity (or epoch) hook names the iteration parameter; custom models are
    # assumed to follow scikit-learn's ensembles when they tune `n_estimators`.
    hook = context.model.iterations or context.model.epochs
    param = hook.param if hook is not None else ("n_estimators" if "n_estimators" in params else None)
    if param is None:
        return None
    value = max(1, round(sum(values) / len(values)))
    return {"param": param, "value": value, "per_fold": values, "searched": params.get(param)}


def _no_early_stopping(estimator: Any) -> None:
    # With the iteration count fixed from the folds there is no validation set left to stop on.
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if not hasattr(final, "get_params"):
        return
    current = final.get_params(deep=False)
    if current.get("early_stopping_rounds") is not None:  # XGBoost
        final.set_params(early_stopping_rounds=None)
    # HistGradientBoosting, and scikit-learn's perceptron (the `mlp` catalog model)
    if "max_iter" in current and current.get("early_stopping", False) is not False:
        final.set_params(early_stopping=False)


def _fit(estimator: Any, context: StudyContext, params: dict[str, Any]) -> list[str]:
    """Fit on every tuning row through the trial's balancing and augmentation, as each fold was fitted."""
    fitted = fit_and_score(
        estimator,
        context.dataset.X,
        context.dataset.y,
        None,
        seed=seed_for(context.spec.seed, "augment", "refit"),
        augment=plan_for(context.spec, params),
        fit_params=context.fit_params,
    )
    return sorted(set(fitted.warnings))[:10]


def _score_holdout(estimator: Any, context: StudyContext) -> dict[str, Any] | None:
    holdout = context.holdout
    if holdout is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = context.metric.score(estimator, holdout.X, holdout.y)
    return {"metric": context.metric.name, "score": score, "rows": len(holdout.y)}


__all__ = ["FinalModel", "choose_trial", "final_estimator", "fit_final", "refit_threads"]
