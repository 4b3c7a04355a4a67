"""Warm starts: the configurations a new study tries before its sampler takes over.

A new (empty) study enqueues, in this order:

1. the best configurations of the earlier studies named in ``warm_start`` (``top`` of each, best
   first), which must tune the same model and live in the same storage;
2. the catalog model's start-up portfolio for the task (:mod:`tuner.search._portfolio`: configurations
   learned offline across many data sets; see :func:`known_good` for their iteration counts), unless
   ``warm_start.known_good`` is false.

Values are fitted to this study's space: parameters it does not search are dropped, numbers are
clipped into range (and onto the step grid), categorical values it does not offer are dropped (the
sampler picks them). At most ``budget.n_trials`` are enqueued, and a resumed study enqueues nothing,
so reruns never repeat the warm start. A grid sampler gets no portfolio: it runs exactly its grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner.errors import SpecError
from tuner.models import ModelEntry
from tuner.search._portfolio import portfolio
from tuner.spec import ParamSpec, StudySpec, Task
from tuner.store import schema, study_names


def enqueue(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    spec: StudySpec,
    space: Mapping[str, ParamSpec],
    model: ModelEntry,
    *,
    task: Task,
    stops_early: bool,
) -> int:
    """Enqueue the warm-start configurations into ``study`` when it has no trials yet.

    Args:
        study: The new study, on ``storage``.
        storage: Where earlier studies named in ``warm_start`` are looked up.
        spec: The study's spec.
        space: The study's resolved search space.
        model: The catalog entry (its name selects the portfolio; its iteration hook).
        task: The data's task (the portfolio differs for classification and regression).
        stops_early: Whether the study's boosting folds stop early (see :func:`known_good`).

    Returns:
        How many configurations were enqueued.

    Raises:
        SpecError: a ``warm_start`` study is missing from the storage or tunes another model.
    """
    if study.get_trials(deepcopy=False):
        return 0
    configs: list[Mapping[str, Any]] = []
    for name in spec.warm_start.studies:
        configs.extend(best_configs(storage, name, spec))
    # A grid sampler runs exactly its grid (and refuses a trial that does not set every parameter).
    if spec.warm_start.known_good and not spec.objective.custom and spec.sampler.name != "grid":
        configs.extend(known_good(model, task, stops_early=stops_early))
    seen: list[dict[str, Any]] = []
    for config in configs:
        params = fit_to_space(config, space)
        if params and params not in seen:
            seen.append(params)
    # No more than the budget: configurations left waiting would never run (a resumed study
    # enqueues nothing), yet show in the study as trials.
    for params in seen[: spec.budget.n_trials]:
        study.enqueue_trial(params, skip_if_exists=True)
    return min(len(seen), spec.budget.n_trials)


def known_good(model: ModelEntry, task: Task, *, stops_early: bool) -> list[Mapping[str, Any]]:
    """The catalog model's start-up portfolio for ``task``, named as ``model``'s space names them.

    The portfolio's boosting iteration counts were learned without early stopping. When the study's
    folds stop early, the count is only a cap, so it goes to the top of the range (the clip into the
    space puts it there) and early stopping picks the count.
    """
    configs = portfolio(model.name, task)
    hook = model.iterations
    if hook is not None and stops_early:
        configs = [{**c, hook.param: math.inf} if hook.param in c else c for c in configs]
    return [{model.param_prefix + name: value for name, value in c.items()} for c in configs]


def best_configs(storage: optuna.storages.BaseStorage, name: str, spec: StudySpec) -> list[dict[str, Any]]:
    """The ``warm_start.top`` best configurations of study ``name`` in ``storage``, best first."""
    where = f"{spec.label}, field 'warm_start'"
    try:
        earlier = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = sorted(study_names(storage))
        raise SpecError(
            f"{where}: there is no study {name!r} in this storage (studies there: {', '.join(names) or 'none'}). "
            "Name an earlier study of the same model stored in the same storage."
        ) from None
    model = earlier.user_attrs.get(schema.MODEL)
    if model is not None and model != spec.model:
        raise SpecError(
            f"{where}: study {name!r} tuned model {model!r}, not {spec.model!r}; its configurations do not "
            "apply here. Warm-start from a study of the same model."
        )
    complete = [
        t
        for t in earlier.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values is not None and all(math.isfinite(v) for v in t.values) and t.user_attrs.get(schema.FEASIBLE, True)
    ]
    if len(earlier.directions) > 1:
        front = {t.number for t in earlier.best_trials}
        ranked = [t for t in complete if t.number in front]
    else:
        ranked = sorted(complete, key=lambda t: t.values[0], reverse=earlier.direction.name == "MAXIMIZE")
    return [dict(t.params) for t in ranked[: spec.warm_start.top]]


def fit_to_space(config: Mapping[str, Any], space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """``config`` restricted to the parameters ``space`` searches, with values made valid there."""
    out: dict[str, Any] = {}
    for name, value in config.items():
        param = space.get(name)
        if param is None or param.type == "fixed":
            continue
        if param.type == "categorical":
            if value in (param.choices or ()):
                out[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            continue
        out[name] = _clip(float(value), param)
    return out


def _clip(value: float, param: ParamSpec) -> float | int:
    assert param.low is not None and param.high is not None
    value = min(max(value, param.low), param.high)
    if param.step:
        # Half-up onto the grid (round() would send halves to the even step).
        value = min(param.low + math.floor((value - param.low) / param.step + 0.5) * param.step, param.high)
    return math.floor(value + 0.5) if param.type == "int" else value
