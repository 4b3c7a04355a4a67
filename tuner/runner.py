"""Create or resume a study and run it: budget, progress, failures and Ctrl-C.

``budget.n_trials`` is the study's total: a rerun (after Ctrl-C, a crash or a timeout) runs
only the remainder. Trials stopped by Ctrl-C are marked FAIL with ``interrupted: true`` and do
not count against the budget.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from tuner import space as space_mod
from tuner.errors import SpecError, TunerError
from tuner.objectives import ObjectiveContext, build_context, make_objective
from tuner.progress import StudyProgress
from tuner.samplers import build_pruner, build_sampler
from tuner.seeds import seed_for
from tuner.spec import StudySpec, load_spec
from tuner.storage import open_storage, redact, resolve_url

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

DEFAULT_MAX_FAILURES = 10
# Study user attributes that let any command rebuild the study's setup from the storage alone.
ATTR_SPEC = "tuner:spec"
ATTR_SPEC_HASH = "tuner:spec_hash"
ATTR_SPACE = "tuner:space"
# Parts of the spec that change what trial values mean; resuming across a change mixes them.
_COMPARED = ("model", "metric", "data", "cv")


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run; completed trials are stored and ``result`` describes them."""

    def __init__(self, result: StudyResult) -> None:
        super().__init__("study interrupted")
        self.result = result


class TooManyFailures(TunerError):
    """``max_failures`` trials in a row failed; the message shows the first error."""


@dataclass
class StudyResult:
    """What a run leaves behind. ``study`` is the live Optuna study on the storage."""

    study: optuna.Study
    spec: StudySpec
    storage_url: str
    context: ObjectiveContext | None = None
    ran: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_trial(self) -> optuna.trial.FrozenTrial | None:
        try:
            return self.study.best_trial
        except ValueError:
            return None

    @property
    def best_value(self) -> float | None:
        trial = self.best_trial
        return None if trial is None else trial.value

    @property
    def best_params(self) -> dict[str, Any]:
        trial = self.best_trial
        return {} if trial is None else dict(trial.params)

    @property
    def trials(self) -> pd.DataFrame:
        """Every trial as a DataFrame (Optuna's ``trials_dataframe``)."""
        return self.study.trials_dataframe()

    def counts(self) -> dict[str, int]:
        trials = self.study.get_trials(deepcopy=False)
        return {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}


def run_study(
    spec: str | Any,
    *,
    data: pd.DataFrame | None = None,
    objective: Callable[[optuna.Trial, ObjectiveContext], float] | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    overrides: Sequence[str] = (),
    allow_space_change: bool = False,
    max_failures: int = DEFAULT_MAX_FAILURES,
    progress: bool = False,
    console: Console | None = None,
) -> StudyResult:
    """Run (or resume) the study a spec describes and return its result.

    Args:
        spec: A YAML path, a dict, or a :class:`~tuner.spec.StudySpec`.
        data: A DataFrame to use instead of ``data.source``.
        objective: ``fn(trial, context) -> float`` replacing the built-in CV objective.
        n_trials: Overrides ``budget.n_trials`` (the study's total across reruns).
        timeout: Overrides ``budget.timeout`` (seconds for this run).
        seed: Overrides ``seed``.
        storage: Overrides ``storage`` (an Optuna URL or a path).
        study_name: Overrides ``name``.
        overrides: ``"key.path=value"`` strings applied to the spec.
        allow_space_change: Resume even if the stored search space differs.
        max_failures: Stop after this many failed trials in a row.
        progress: Show progress on stderr.
        console: Where progress goes (default: stderr).

    Returns:
        A :class:`StudyResult` with the study, best params/value and the trials.

    Raises:
        TunerError: for invalid specs, data or storages (nothing is written then).
        StudyInterrupted: on Ctrl-C, after marking the running trial; ``.result`` holds the state.

    Example:
        >>> result = run_study("studies/quickstart.yaml", n_trials=10)
        >>> result.best_value, result.best_params
    """
    budget = [f"budget.n_trials={n_trials}"] if n_trials is not None else []
    budget += [f"budget.timeout={timeout}"] if timeout is not None else []
    spec = load_spec(spec, overrides=[*overrides, *budget], name=study_name, seed=seed, storage=storage)
    context = build_context(spec, data=data)
    fn = make_objective(context, objective)
    url = resolve_url(spec.storage, base_dir=spec.base_dir)
    study = open_study(spec, context, url, allow_space_change=allow_space_change)
    result = StudyResult(study=study, spec=spec, storage_url=url, context=context)
    done = count_done(study)
    remaining = spec.budget.n_trials - done
    if remaining <= 0:
        return result
    # Seeding by the number of trials already run keeps a fresh run reproducible and keeps a
    # resumed run from proposing the first run's configurations again.
    study.sampler = build_sampler(spec.sampler, seed_for(spec.seed, "sampler", done), label=spec.label)
    guard = _FailureGuard(max_failures)
    runner = _TrackedObjective(fn)
    with StudyProgress(
        total=spec.budget.n_trials, done=done, timeout=spec.budget.timeout, console=console, enabled=progress
    ) as bar:
        try:
            study.optimize(
                runner,
                n_trials=remaining,
                timeout=spec.budget.timeout,
                catch=(Exception,),
                callbacks=[bar, guard],
            )
        except KeyboardInterrupt:
            _fail_if_running(study, runner.current_trial_id)
            result.ran = bar.finished_here
            raise StudyInterrupted(result) from None
    result.ran = bar.finished_here
    if guard.tripped:
        raise TooManyFailures(
            f"{spec.label}: {guard.limit} trials in a row failed, so the study stopped. The first error was: "
            f"{guard.first_error}. Completed trials are kept; fix the cause and rerun to finish the budget."
        )
    return result


def open_study(spec: StudySpec, context: ObjectiveContext, url: str, *, allow_space_change: bool) -> optuna.Study:
    """Create the study, or load it and refuse a changed search space unless allowed."""
    storage = open_storage(url)
    study = optuna.create_study(
        storage=storage,
        study_name=spec.name,
        direction="maximize",
        load_if_exists=True,
        pruner=build_pruner(spec.pruner, label=spec.label),
    )
    new_space = space_mod.to_json(context.space)
    attrs = study.user_attrs
    if ATTR_SPEC in attrs and not allow_space_change:
        _refuse_changes(spec, json.loads(attrs[ATTR_SPEC]), attrs.get(ATTR_SPACE, {}), new_space, url)
    if attrs.get(ATTR_SPEC_HASH) != spec.spec_hash():
        study.set_user_attr(ATTR_SPEC, spec.to_json())
        study.set_user_attr(ATTR_SPEC_HASH, spec.spec_hash())
        study.set_user_attr(ATTR_SPACE, new_space)
        study.set_user_attr("tuner:model", spec.model)
        study.set_user_attr("tuner:metric", context.metric.name)
        study.set_user_attr("tuner:task", context.dataset.task)
        study.set_user_attr("tuner:n_folds", len(context.splits))
    return study


def _refuse_changes(
    spec: StudySpec, old_spec: dict[str, Any], old_space: dict[str, Any], new_space: dict[str, Any], url: str
) -> None:
    fix = (
        f"Resuming would mix trials that are not comparable. Use a new study name "
        f"(`--study-name {spec.name}-2`), or pass `--allow-space-change` (allow_space_change=True) to continue anyway."
    )
    changed = space_mod.diff(old_space, new_space)
    where = f"{spec.label}: study {spec.name!r} in {redact(url)}"
    if changed:
        details = "; ".join(
            f"{name}: {_describe_json(old_space.get(name))} → {_describe_json(new_space.get(name))}" for name in changed
        )
        raise SpecError(f"{where} was run with a different search space (changed parameter(s): {details}). {fix}")
    new_spec = json.loads(spec.to_json())
    for key in _COMPARED:
        if old_spec.get(key) != new_spec.get(key):
            raise SpecError(
                f"{where} was run with a different `{key}` ({old_spec.get(key)!r} → {new_spec.get(key)!r}). {fix}"
            )


def _describe_json(value: dict[str, Any] | None) -> str:
    from tuner.spec import ParamSpec

    return "absent" if value is None else space_mod.describe(ParamSpec.model_validate(value))


def count_done(study: optuna.Study) -> int:
    """Trials that count against the budget: finished ones, except those stopped by Ctrl-C."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return sum(1 for t in trials if not t.user_attrs.get("interrupted"))


class _TrackedObjective:
    """Wraps the objective: remembers the running trial, records errors and interruptions."""

    def __init__(self, fn: Callable[[optuna.Trial], float]) -> None:
        self.fn = fn
        self.current_trial_id: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self.current_trial_id = trial._trial_id
        try:
            value = self.fn(trial)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            trial.set_user_attr("error", f"objective returned {value!r}, not a finite number")
        return value


def _fail_if_running(study: optuna.Study, trial_id: int | None) -> None:
    if trial_id is None:
        return
    storage = study._storage
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)


class _FailureGuard:
    """Stops the study after ``limit`` failed trials in a row."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.first_error: str | None = None
        self.tripped = False

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != TrialState.FAIL or trial.user_attrs.get("interrupted"):
            self.streak, self.first_error = 0, None
            return
        self.streak += 1
        if self.first_error is None:
            self.first_error = trial.user_attrs.get("error") or trial.system_attrs.get("fail_reason", "unknown")
        if self.streak >= self.limit:
            self.tripped = True
            study.stop()
