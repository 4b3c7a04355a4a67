"""Multi-fidelity screening: cheap, low-fidelity cross-validation before the full one.

With ``pruner: {name: hyperband, fidelity: rows}`` (or ``successive_halving``) a trial is first
cross-validated on a share of each training fold's rows; with ``fidelity: iterations``, on a
share of its boosting model's iteration cap. After each level the mean validation score is
reported at step = the share in percent, and the pruner stops configurations that trail the
others at that fidelity. Survivors run the normal full cross-validation. Validation rows are
always the full folds, so scores at every level are comparable across trials.

The levels follow the pruner's geometry, ``min_resource × reduction_factor**k`` percent, keeping
those at most ``1 / reduction_factor`` of the full fidelity: 11 % and 33 % with the defaults
(``min_resource: 11``, ``reduction_factor: 3``), so Hyperband's rungs line up with the steps.
Screening ranks trials by the validation metric (the spec's first objective when it is the metric).
"""

from __future__ import annotations

import statistics
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner import augment
from tuner.errors import SpecError
from tuner.seeds import seed_for

if TYPE_CHECKING:
    import optuna

    from tuner.models import ModelEntry
    from tuner.objectives import ObjectiveContext
    from tuner.spec import PrunerSpec, StudySpec

MULTI_FIDELITY_PRUNERS = ("hyperband", "successive_halving")
FULL = 100
ATTR = "fidelity_scores"
_DEFAULTS: dict[str, dict[str, Any]] = {
    "hyperband": {"min_resource": 11, "max_resource": FULL, "reduction_factor": 3},
    "successive_halving": {"min_resource": 11, "reduction_factor": 3},
}


def pruner_defaults(spec: PrunerSpec) -> dict[str, Any]:
    """Pruner options that make the rungs match the screening levels (the spec's own options win)."""
    return dict(_DEFAULTS[spec.name]) if spec.fidelity != "folds" else {}


def levels(spec: PrunerSpec) -> list[int]:
    """Screening levels in percent of the full fidelity, lowest first."""
    options = {**pruner_defaults(spec), **spec.options}
    step, factor = int(options["min_resource"]), int(options["reduction_factor"])
    out = []
    while step * factor <= FULL:
        out.append(step)
        step *= factor
    return out


def check(spec: StudySpec, model: ModelEntry) -> None:
    """Refuse multi-fidelity settings that cannot work, before any trial runs."""
    fidelity = spec.pruner.fidelity
    if fidelity == "folds":
        return
    where = f"{spec.label}, field 'pruner.fidelity'"
    if spec.objective.custom:
        raise SpecError(f"{where}: `{fidelity}` screening needs the built-in CV objective; drop `fidelity`.")
    if spec.objective.multi:
        raise SpecError(f"{where}: Optuna cannot prune multi-objective studies; drop `fidelity` or use one objective.")
    if fidelity == "iterations" and getattr(model, "iterations", None) is None:
        raise SpecError(
            f"{where}: `iterations` needs a boosting model (xgboost, lightgbm, hist_gradient_boosting), but "
            f"{spec.model!r} has no iteration count; use `fidelity: rows`."
        )
    options = {**pruner_defaults(spec.pruner), **spec.pruner.options}
    if not levels(spec.pruner):
        raise SpecError(
            f"{spec.label}, field 'pruner.options': min_resource={options['min_resource']} with "
            f"reduction_factor={options['reduction_factor']} leaves no level below {FULL}%; "
            "lower `min_resource` (e.g. 11 with reduction_factor 3)."
        )


def screen(trial: optuna.Trial, context: ObjectiveContext, estimator: Any, plan: augment.Plan) -> dict[int, float]:
    """Cross-validate at each low fidelity, reporting as it goes.

    Returns:
        The mean validation score per level (also stored as the trial attribute ``fidelity_scores``).

    Raises:
        optuna.TrialPruned: when the pruner stops the trial at a level.
    """
    import optuna

    spec = context.spec.pruner
    scores: dict[int, float] = {}
    for level in levels(spec):
        scores[level] = _cross_validate(context, estimator, plan, level)
        trial.report(scores[level], level)
        if trial.should_prune():
            trial.set_user_attr(ATTR, {str(k): v for k, v in scores.items()})
            raise optuna.TrialPruned(f"pruned at {level}% of the {spec.fidelity}")
    trial.set_user_attr(ATTR, {str(k): v for k, v in scores.items()})
    return scores


def _cross_validate(context: ObjectiveContext, estimator: Any, plan: augment.Plan, level: int) -> float:
    from sklearn.base import clone

    fidelity = context.spec.pruner.fidelity
    values = []
    for index in range(len(context.splits)):
        X_train, y_train, X_val, y_val = context.fold(index)
        model = clone(estimator)
        if fidelity == "rows":
            rows = _subsample(y_train, level, seed_for(context.spec.seed, "fidelity", index, level), context)
            X_train, y_train = X_train.iloc[rows], y_train[rows]
        else:
            _scale_iterations(model, context, level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # warnings of the full-fidelity fits are the ones kept
            augment.fit(model, plan, X_train, y_train, seed=seed_for(context.spec.seed, "augment", index))
            values.append(context.metric.score(model, X_val, y_val))
    return statistics.fmean(values)


def _subsample(y: np.ndarray, level: int, seed: int, context: ObjectiveContext) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    size = max(2, round(len(y) * level / FULL))
    if size >= len(y):
        return index
    stratify = y if context.dataset.task == "classification" else None
    try:
        rows = train_test_split(index, train_size=size, random_state=seed, stratify=stratify)[0]
    except ValueError:  # too few rows to keep every class: plain random rows
        rows = train_test_split(index, train_size=size, random_state=seed)[0]
    return np.sort(rows)


def _scale_iterations(model: Any, context: ObjectiveContext, level: int) -> None:
    hook = context.model.iterations
    assert hook is not None  # check() refused models without one
    key = next(k for k in model.get_params() if k == hook.param or k.endswith(f"__{hook.param}"))
    cap = int(model.get_params()[key])
    model.set_params(**{key: max(1, round(cap * level / FULL))})
