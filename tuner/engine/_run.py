"""``run_study``: create or resume a study and run the rest of its budget, here or on workers.

The CLI's ``tuner run`` and Python callers share this one code path; the CLI adds only parsing
and printing. One process runs the trial loop itself; ``n_jobs > 1`` adds local worker processes
(:mod:`tuner.engine._processes`) and ``dask`` runs the workers as Dask tasks
(:mod:`tuner.engine._dask`). Every worker runs the same loop (:func:`tuner.engine._loop.run_trials`).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState
from rich.console import Console

from tuner.data import Arrays
from tuner.diagnostics import publish
from tuner.engine._budget import Budget, counted
from tuner.engine._dask import run_on_dask
from tuner.engine._liveness import reap
from tuner.engine._loop import Callback, FailureGuard, LoopResult, Terminated, run_trials, sigterm_as_ctrl_c
from tuner.engine._processes import prestart, run_processes
from tuner.engine._progress import RaceProgress, StudyProgress
from tuner.engine._study import open_study
from tuner.engine._supervise import Watcher
from tuner.engine._worker import WorkerJob, seed_sampler, too_many_failures
from tuner.errors import SpecError, TooManyFailures, TunerError, sentence
from tuner.final import fit_final
from tuner.models import get_model
from tuner.objective import CVObjective, Objective, make_objective
from tuner.racing import race
from tuner.search import enqueue
from tuner.setup import PythonData, StudyContext, build
from tuner.spec import StudySpec, load_spec
from tuner.store import DEFAULT_HEARTBEAT, MEMORY_URL, Choice, Heartbeat, counts, final_choice, is_server, resolve_url
from tuner.threads import limited, model_threads
from tuner.tracking import MLflowTracker, require_mlflow


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped the run; completed trials are stored and ``result`` describes them.

    ``signum`` is the signal that stopped it: ``signal.SIGINT`` for Ctrl-C, ``signal.SIGTERM``.
    """

    def __init__(self, result: StudyResult, signum: int = signal.SIGINT) -> None:
        super().__init__("study interrupted")
        self.result = result
        self.signum = signum


@dataclass
class StudyResult:
    """What a run leaves behind. ``study`` is the live Optuna study on the storage."""

    study: optuna.Study
    spec: StudySpec
    storage_url: str
    context: StudyContext | None = None
    ran: int = 0
    # The sampler had no more configurations to propose (a grid tried in full).
    exhausted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_trial(self) -> optuna.trial.FrozenTrial | None:
        """The final choice (``final_choice``: the best mean over the re-scored candidates' CV
        repeats, or the raw maximum); None before a feasible complete trial, or with several objectives."""
        choice = self.choice
        return None if choice is None else choice.trial

    @property
    def choice(self) -> Choice | None:
        """The final choice with its uncertainty: mean ± standard error over every fold and repeat,
        the runner-up, the lead and whether it is within noise (``choice.lines(metric)`` in words)."""
        return final_choice(self.study)

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
        return counts(self.study.get_trials(deepcopy=False))

    def done(self) -> int:
        """Trials that count against ``budget.n_trials`` now (see :class:`~tuner.engine.Budget`)."""
        return counted(self.study.get_trials(deepcopy=False))

    def best_estimator(self, trial: int | None = None) -> Any:
        """The best trial (or trial number ``trial``) refitted on all tuning rows, in memory.

        Nothing is written, so it works for every storage, ``memory://`` included, and for data
        passed from Python. The estimator predicts the data's own labels ("yes"/"no" in,
        "yes"/"no" out; ``classes_`` and ``predict_proba`` columns in that order). For a model
        file and its card, use ``tuner.refit_best(result, out=...)``.

        Raises:
            TunerError: no complete trial yet, an unknown ``trial``, or a multi-objective study
                without ``trial``.
        """
        if self.context is None:
            raise TunerError(
                f"{self.spec.label}: this result carries no study context to refit with; refit the study from its "
                "storage instead (`tuner.refit_best(NAME_OR_SPEC, out=None)`)."
            )
        return fit_final(self.context, self.study, trial).estimator


# SIGTERM stops a run like Ctrl-C, from the moment it starts until it returns.
@sigterm_as_ctrl_c()
def run_study(
    spec: str | Path | dict[str, Any] | StudySpec,
    *,
    data: pd.DataFrame | PythonData | None = None,
    X: Any = None,
    y: Any = None,
    groups: Any = None,
    model: Any = None,
    objective: Callable[..., Any] | None = None,
    callbacks: Sequence[Callback] = (),
    mlflow: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    overrides: Sequence[str] = (),
    allow_space_change: bool = False,
    max_failures: int | None = None,
    n_jobs: int | None = None,
    dask: str | None = None,
    heartbeat: Heartbeat | None = DEFAULT_HEARTBEAT,
    progress: bool = False,
    console: Console | None = None,
) -> StudyResult:
    """Run (or resume) the study a spec describes and return its result.

    Args:
        spec: A YAML path, a dict, or a :class:`~tuner.spec.StudySpec`.
        data: A DataFrame to use instead of ``data.source``.
        X: Features to use instead of ``data.source`` (with ``y``): a pandas or polars DataFrame
            or a 2-D numpy array.
        y: The target of each row of ``X`` (numpy, list, pandas or polars Series); string or
            categorical labels are fine.
        groups: Group labels of each row of ``X`` (group CV, per-group scores), optional.
        model: A scikit-learn estimator or ``Pipeline`` to tune as it is (``space`` names its
            parameters, ``step__param`` for a pipeline), instead of the spec's ``model``.
        objective: ``fn(trial) -> float`` (Optuna's form) or ``fn(trial, context) -> float`` replacing
            the built-in CV objective.
        callbacks: Called as ``callback(study, frozen_trial)`` after each trial, as Optuna's
            ``study.optimize(callbacks=...)`` does (e.g. optuna-integration's ``MLflowCallback``);
            with worker processes, in this process as their trials finish.
        mlflow: An MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``) or an SQLite
            file: log each trial as an MLflow run (params, objective values, fold scores, gap,
            flags, per-group scores) under one parent run per study, found again on resume.
            Needs the ``mlflow`` extra.
        n_trials: Overrides ``budget.n_trials`` (the study's total across reruns).
        timeout: Overrides ``budget.timeout`` (seconds for this run).
        seed: Overrides ``seed``.
        storage: Overrides ``storage`` (an Optuna URL or a path).
        study_name: Overrides ``name``.
        overrides: ``"key.path=value"`` strings applied to the spec.
        allow_space_change: Resume even if the stored search space differs.
        max_failures: Stop after this many failed trials in a row (overrides ``budget.max_failures``).
        n_jobs: Worker processes on this machine (overrides ``budget.n_jobs``); each fits its
            models with its share of the cores (``budget.threads``, see :mod:`tuner.threads`).
            More than 1 needs an objective that can be pickled.
        dask: ``"local"`` for a LocalCluster, or a scheduler address: run the workers as Dask
            tasks (``n_jobs`` of them; default: one per worker thread of the cluster).
        heartbeat: How workers prove they are alive, so a dead worker's trial is retried.
        progress: Show progress on stderr.
        console: Where progress goes (default: stderr).

    Returns:
        A :class:`StudyResult` with the study, best params/value and the trials.

    Raises:
        TunerError: for invalid specs, data or storages (nothing is written then).
        TooManyFailures: after ``max_failures`` failed trials in a row, or when the run ends with
            failed trials and no trial of the study has completed.
        StudyInterrupted: on Ctrl-C, or SIGTERM when nothing else handles it, after marking the running
            trials (and stopping the workers); ``.result`` holds the state.

    Example:
        >>> result = run_study("studies/quickstart.yaml", n_trials=10)
        >>> result.best_value, result.best_params
    """
    spec = load_spec(spec, overrides=overrides).replace(
        name=study_name, seed=seed, storage=storage, n_trials=n_trials, timeout=timeout
    )
    data = _python_data(spec, data, X, y, groups, model)
    if mlflow is not None:
        require_mlflow()
    jobs = n_jobs or spec.budget.n_jobs
    processes = dask is None and jobs > 1
    preload = _model_library(spec) if processes else []
    if processes:
        prestart(preload)
    # Dask workers decide their own share where they run; this process then runs no trial.
    threads = model_threads(spec.budget.threads, None if dask is not None else jobs)
    context = build(spec, data=data, threads=threads)
    fn = make_objective(context, objective)
    url = resolve_url(spec.storage, base_dir=spec.base_dir)
    stored = open_study(spec, context, url, allow_space_change=allow_space_change, heartbeat=heartbeat)
    study = stored.study
    result = StudyResult(study=study, spec=spec, storage_url=url, context=context)
    # Trials left RUNNING by a crashed run would hold budget forever; repair them before counting.
    reap(stored, heartbeat=heartbeat)
    # A new study tries the model's start-up portfolio and earlier best configurations first.
    enqueue(
        study,
        stored.storage,
        spec,
        context.space,
        context.model,
        task=context.dataset.task,
        stops_early=context.stopping is not None,
    )
    budget = Budget(spec.budget.n_trials)
    done = budget.done(study)
    if done >= budget.n_trials:
        # Nothing left to try; the final choice may still miss re-scored candidates (a run stopped
        # while racing, or trials run by `tuner worker`).
        _choose(result, fn, progress=progress, console=console)
        return result
    limit = max_failures if max_failures is not None else spec.budget.max_failures
    guard = FailureGuard(limit)
    # Made before the first trial, so a tracking URI that does not work costs no trial.
    tracker = MLflowTracker(mlflow, study, url) if mlflow is not None else None
    if tracker is not None:
        callbacks = [*callbacks, tracker]
    with (
        StudyProgress(
            total=budget.n_trials, done=done, timeout=spec.budget.timeout, console=console, enabled=progress
        ) as bar,
        tracker if tracker is not None else contextlib.nullcontext(),
    ):
        try:
            if dask is not None or jobs > 1:
                job = WorkerJob(
                    spec=spec,
                    url=url,
                    data=data,
                    objective=objective,
                    max_failures=limit,
                    heartbeat=heartbeat,
                    allow_space_change=allow_space_change,
                    log_level=optuna.logging.get_verbosity(),
                    threads=None if dask is not None else threads,
                )
                watcher = Watcher(study, [bar, guard, *callbacks])
                if dask is not None:
                    # Without a count, Dask runs one worker per thread of the cluster.
                    workers = None if n_jobs is None and spec.budget.n_jobs == 1 else jobs
                    run_on_dask(stored, job, workers, dask, watcher, guard)
                else:
                    n = max(1, min(jobs, budget.n_trials - done))
                    result.exhausted = run_processes(stored, job, n, watcher, guard, fn, preload=preload)
            else:
                with limited(threads):
                    outcome: LoopResult = run_trials(
                        stored,
                        fn,
                        budget=budget,
                        timeout=spec.budget.timeout,
                        guard=guard,
                        callbacks=[bar, *callbacks],
                        heartbeat=heartbeat,
                        # One process, but other machines may run `tuner worker` on a server storage meanwhile.
                        first_trial=seed_sampler(stored, spec, None, shared=is_server(url)),
                    )
                result.exhausted = outcome.exhausted
        except KeyboardInterrupt as stop:
            result.ran = bar.finished_here
            raise StudyInterrupted(result, signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT) from None
    result.ran = bar.finished_here
    if guard.tripped:
        raise too_many_failures(spec, guard)
    # A budget under `max_failures` never trips the guard: a run whose trials all failed would end
    # as a success, with nothing learned and the error hidden in the storage.
    if guard.first_error is not None and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise _nothing_completed(spec, guard)
    _choose(result, fn, progress=progress, console=console)
    if tracker is not None:
        tracker.log_choice(study)
    if url != MEMORY_URL:  # no dashboard can open a study held in this process's memory
        publish(study)  # the diagnostics figures on the study page of optuna-dashboard
    return result


def _choose(result: StudyResult, fn: Objective, *, progress: bool, console: Console | None) -> None:
    """Re-score the top candidates for the final choice (:func:`tuner.racing.race`), in this one
    process once every worker has ended. Ctrl-C stops it like a trial: what was scored is kept."""
    assert result.context is not None
    with RaceProgress(console=console, enabled=progress) as shown:
        try:
            with limited(result.context.threads):  # the trials' share: OpenMP and BLAS as they ran
                race(result.context, result.study, builtin=isinstance(fn, CVObjective), progress=shown)
        except KeyboardInterrupt as stop:
            raise StudyInterrupted(result, signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT) from None


def _python_data(
    spec: StudySpec, data: pd.DataFrame | PythonData | None, X: Any, y: Any, groups: Any, model: Any
) -> pd.DataFrame | PythonData | None:
    """``data``, or the arrays and estimator passed from Python as one value (see :class:`PythonData`)."""
    if X is None and y is None and groups is None and model is None:
        return data
    if (X is None) != (y is None) or (groups is not None and X is None):
        raise SpecError(f"{spec.label}, argument 'X': pass `X` and `y` together (and `groups` only with them).")
    if X is not None and data is not None:
        raise SpecError(f"{spec.label}, argument 'data': pass either `data` (a DataFrame) or `X` and `y`, not both.")
    if model is not None and not hasattr(model, "get_params"):
        raise SpecError(
            f"{spec.label}, argument 'model': a {type(model).__name__} is not a scikit-learn estimator (it has no "
            "`get_params`); pass an estimator or Pipeline, or name a catalog model in the spec's `model`."
        )
    if isinstance(data, PythonData):
        return data
    return PythonData(data=Arrays(X, y, groups) if X is not None else data, estimator=model)


def _nothing_completed(spec: StudySpec, guard: FailureGuard) -> TooManyFailures:
    return TooManyFailures(
        f"{spec.label}: no trial of the study has completed; the last {guard.streak} trial(s) failed. The first "
        f"error was: {sentence(guard.first_error or 'unknown')} Fix the cause, then rerun with a higher "
        "--n-trials (failed trials count against the budget) or under a new study name."
    )


def _model_library(spec: StudySpec) -> list[str]:
    """The model's own library (xgboost, lightgbm), which takes a second to import: the fork server preloads it."""
    try:
        requires = get_model(spec.model, label=spec.label, base_dir=spec.base_dir).requires
    except TunerError:
        return []  # build() reports a bad model name; the fork server need not know it
    return [requires] if requires else []
