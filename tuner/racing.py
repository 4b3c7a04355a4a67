"""Racing: the top candidates of a finished run re-scored on extra CV repeats before the winner is named.

On data sets of a few hundred or thousand rows, the gaps between the best configurations are
smaller than the split-to-split noise of one k-fold CV, so the raw maximum is partly the luckiest
trial. After the trials, :func:`race` takes the leader and the next trials (up to
``final_choice.candidates``) that it does not clearly beat on the study's own folds, and scores
each on ``final_choice.repeats`` new shuffles of the same CV scheme, all within a quarter of the
cost of the study's trials (fewer candidates first, then fewer repeats; see
:func:`tuner.store._choice.race_plan`) (seeds
``seed_for(seed, "race", repeat)``), through the one fit loop (:func:`tuner.cv.fit_and_score`).
Every (candidate, repeat) is stored as soon as it is scored (study attribute
``schema.race_key(number)``), so an interrupted race resumes where it stopped and a finished one
is never repeated. The winner is read back from those attributes by
:func:`tuner.store.final_choice`, which ``tuner best``, ``show``, refit, ``StudyResult`` and
``TunerSearchCV`` share.

Who races: ``run_study`` (``tuner run``, ``TunerSearchCV.fit``) once its trials end, in the
parent after any workers; ``tuner refit`` when the race is missing (a study run by ``tuner
worker`` processes only). ``tuner best`` and ``show`` never fit: they show the raw maximum as
"not re-scored yet" until then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from sklearn.base import clone

from tuner.cv import fit_and_score, native_rows, plan_for, resplit
from tuner.errors import TunerError
from tuner.seeds import seed_for
from tuner.setup import StudyContext
from tuner.store import Choice, final_choice, schema
from tuner.store._choice import Settings, fold_scores, race_plan, ran, ranked

# progress(done, total, trial number, repeat, seconds of the last step)
Progress = Callable[[int, int, int, int, float], None]


def race(
    context: StudyContext, study: optuna.Study, *, builtin: bool = True, progress: Progress | None = None
) -> Choice | None:
    """Re-score the candidates that still miss a repeat, then return the study's final choice.

    Args:
        context: The study's context (data, folds, model), as its trials used it.
        study: The study; single-objective (a Pareto front has no racing: returns None).
        builtin: The trials ran the built-in CV objective (not a Python ``objective``).
        progress: Called after each (candidate, repeat) is scored and stored.

    Raises:
        KeyboardInterrupt: Ctrl-C; what was scored is stored, a rerun resumes.
    """
    if len(study.directions) > 1:
        return None
    spec = context.spec
    config = spec.final_choice
    if config.method == "raw_max":
        return final_choice(study)
    attrs = study.user_attrs
    folds = _folds(context, builtin)
    if folds is None:
        reason = _why_not(context, builtin)
        if attrs.get(schema.RACE_SKIPPED) != reason:
            study.set_user_attr(schema.RACE_SKIPPED, reason)
        return final_choice(study)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    order = ranked(trials, study.direction == optuna.study.StudyDirection.MAXIMIZE)
    pool, repeats = race_plan(
        order, ran(trials), Settings(config.method, config.candidates, config.repeats), spec.cv.folds
    )
    if not pool:
        return final_choice(study)
    if any(fold_scores(t) is None for t in pool):  # trials of an objective given in Python
        study.set_user_attr(schema.RACE_SKIPPED, _why_not(context, builtin=False))
        return final_choice(study)
    todo = [
        (trial, repeat)
        for repeat in range(1, repeats + 1)
        for trial in pool
        if str(repeat) not in _stored(attrs, trial.number)
    ]
    for done, (trial, repeat) in enumerate(todo, start=1):
        started = time.perf_counter()
        scores = score(context, trial, folds(repeat), repeat)
        # Re-read: another process may have raced the same study meanwhile; keys are per trial.
        stored = {**_stored(study.user_attrs, trial.number), str(repeat): scores}
        study.set_user_attr(schema.race_key(trial.number), stored)
        if progress is not None:
            progress(done, len(todo), trial.number, repeat, time.perf_counter() - started)
    return final_choice(study)


def pending(study: optuna.Study) -> bool:
    """The study's final choice waits for a race (see :class:`tuner.store.Choice` ``status``)."""
    choice = final_choice(study)
    return choice is not None and choice.status == "pending"


def score(context: StudyContext, trial: FrozenTrial, splits: Any, repeat: int) -> list[float | None]:
    """``trial``'s validation score on each fold of ``splits``, fitted as its own folds were
    (balancing, augmentation, early stopping); None for a fold whose fit failed."""
    try:
        params = context.params_of(trial)
    except ValueError as exc:
        raise TunerError(
            f"{context.spec.label}: trial #{trial.number}'s parameters do not fit the study's search space ({exc}); "
            "the space changed after it ran. Set `final_choice: raw_max`, or rerun under a new study name."
        ) from None
    estimator = context.build_estimator(params)
    augment = plan_for(context.spec, params)
    rows = native_rows(context.model.iterations, estimator, augment)
    X, y = context.dataset.X, context.dataset.y
    scores: list[float | None] = []
    for index, (train, val) in enumerate(splits):
        try:
            fold = fit_and_score(
                clone(estimator),
                X,
                y,
                train,
                val,
                seed=seed_for(context.spec.seed, "augment", "race", repeat, index),
                metric=context.metric,
                augment=augment,
                stopping=context.stopping,
                score_train=False,
                rows=rows,
                fit_params=context.fit_params,
            )
        except Exception:  # a candidate that fails on a new split loses the race
            scores.append(None)
            continue
        scores.append(fold.val if fold.val is not None and math.isfinite(fold.val) else None)
    return scores


def _stored(attrs: dict[str, Any], number: int) -> dict[str, Any]:
    stored = attrs.get(schema.race_key(number))
    if not isinstance(stored, dict):
        return {}
    # A repeat counts once race_scores can read it.
    return {k: v for k, v in stored.items() if isinstance(v, list) and v}


def _folds(context: StudyContext, builtin: bool) -> Callable[[int], Any] | None:
    """The folds of extra repeat ``r`` (drawn once per repeat), or None when there can be none."""
    spec = context.spec
    if not builtin or spec.objective.custom is not None or [t.name for t in spec.objective.targets] != ["metric"]:
        return None
    first = resplit(spec.cv, context.cv, context.dataset, seed=seed_for(spec.seed, "race", 1), label=spec.label)
    if first is None:
        return None
    drawn: dict[int, Any] = {1: first}

    def folds(repeat: int) -> Any:
        if repeat not in drawn:
            drawn[repeat] = resplit(
                spec.cv, context.cv, context.dataset, seed=seed_for(spec.seed, "race", repeat), label=spec.label
            )
        return drawn[repeat]

    return folds


def _why_not(context: StudyContext, builtin: bool) -> str:
    spec = context.spec
    if not builtin or spec.objective.custom is not None:
        return "a custom objective (tuner cannot score it on other folds)"
    if [t.name for t in spec.objective.targets] != ["metric"]:
        return "the objective is not the metric alone"
    if context.cv.given:
        return "the folds come from a splitter given in Python"
    if context.cv.scheme == "timeseries":
        return "time-series folds cannot be shuffled again"
    return "the CV does not shuffle (`cv.shuffle: false`), so a new seed gives the same folds"


__all__ = ["Progress", "pending", "race", "score"]
