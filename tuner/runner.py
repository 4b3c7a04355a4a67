"""Create or resume a study and run it: budget, progress, failures and Ctrl-C.

``budget.n_trials`` is the study's total across reruns and workers: a rerun (after Ctrl-C, a crash
or a timeout) runs only the remainder, and parallel workers stop when finished plus running trials
reach it. Trials stopped by Ctrl-C (``interrupted: true``) or lost with their worker (``lost: true``,
retried once with the same parameters) are marked FAIL and do not count against the budget.

:func:`run_trials` is the one trial loop: the sequential run, local worker processes and remote
workers (:mod:`tuner.parallel`) all call it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from tuner import space as space_mod
from tuner import targets, warmstart
from tuner.doctor import ATTR_LOST, reap
from tuner.errors import SpecError, StorageError, TunerError
from tuner.objectives import ObjectiveContext, build_context, make_objective
from tuner.progress import StudyProgress
from tuner.samplers import build_pruner, build_sampler
from tuner.seeds import seed_for
from tuner.spec import StudySpec, load_spec
from tuner.storage import (
    DEFAULT_HEARTBEAT,
    Heartbeat,
    Pulse,
    is_server,
    is_transient,
    open_storage,
    redact,
    resolve_url,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import pandas as pd
    from rich.console import Console

_log = logging.getLogger("tuner")

# Study user attributes that let any command rebuild the study's setup from the storage alone.
ATTR_SPEC = "tuner:spec"
ATTR_SPEC_HASH = "tuner:spec_hash"
ATTR_SPACE = "tuner:space"
# The spec's folder (relative data paths and `module:function` imports resolve against it) and
# file, so `tuner refit` can rebuild the data from the storage alone.
ATTR_BASE_DIR = "tuner:base_dir"
ATTR_SPEC_PATH = "tuner:spec_path"
# Parts of the spec that change what trial values mean; resuming across a change mixes them.
_COMPARED = (
    "model",
    "metric",
    "data",
    "cv",
    "objective",
    "constraints",
    "fairness",
    "balance",
    "augment",
    "early_stopping",
)


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
        except (ValueError, RuntimeError):  # no feasible complete trial; several objectives
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
        objective: ``fn(trial, context) -> float`` replacing the built-in CV objective.
        n_trials: Overrides ``budget.n_trials`` (the study's total across reruns).
        timeout: Overrides ``budget.timeout`` (seconds for this run).
        seed: Overrides ``seed``.
        storage: Overrides ``storage`` (an Optuna URL or a path).
        study_name: Overrides ``name``.
        overrides: ``"key.path=value"`` strings applied to the spec.
        allow_space_change: Resume even if the stored search space differs.
        max_failures: Stop after this many failed trials in a row (overrides ``budget.max_failures``).
        n_jobs: Worker processes on this machine (overrides ``budget.n_jobs``); each runs its
            models single-threaded. More than 1 needs an objective that can be pickled.
        dask: ``"local"`` for a LocalCluster, or a scheduler address: run the workers as Dask
            tasks (``n_jobs`` of them; default: one per worker thread of the cluster).
        heartbeat: How workers prove they are alive, so a dead worker's trial is retried.
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
    jobs = n_jobs or spec.budget.n_jobs
    if dask is None and jobs > 1:
        from tuner.parallel import prestart

        prestart(spec)
    context = build_context(spec, data=data)
    fn = make_objective(context, objective)
    url = resolve_url(spec.storage, base_dir=spec.base_dir)
    study = open_study(spec, context, url, allow_space_change=allow_space_change, heartbeat=heartbeat)
    result = StudyResult(study=study, spec=spec, storage_url=url, context=context)
    # Trials left RUNNING by a crashed run would hold budget forever; repair them before counting.
    reap(study, heartbeat=heartbeat)
    warmstart.enqueue(study, context)  # a new study tries known-good and earlier best configurations first
    done = count_done(study)
    if spec.budget.n_trials - done <= 0:
        return result
    limit = max_failures if max_failures is not None else spec.budget.max_failures
    if dask is not None or jobs > 1:
        from tuner.parallel import WorkerJob, run_parallel

        # On Dask without a count, run one worker per thread of the cluster.
        workers = None if dask is not None and n_jobs is None and spec.budget.n_jobs == 1 else jobs
        job = WorkerJob(
            spec=spec,
            url=url,
            data=data,
            objective=objective,
            max_failures=limit,
            heartbeat=heartbeat,
            allow_space_change=allow_space_change,
            log_level=optuna.logging.get_verbosity(),
        )
        ran, guard = _watch(
            result,
            limit,
            done,
            progress,
            console,
            lambda bar, guard: run_parallel(
                study, job, n_jobs=workers, dask=dask, guard=guard, callbacks=[bar], objective=fn
            ),
        )
    else:
        # Seeding by the number of trials already run keeps a fresh run reproducible and keeps a
        # resumed run from proposing the first run's configurations again.
        # One process, but other machines may run `tuner worker` on a server storage meanwhile.
        study.sampler = build_sampler(
            spec.sampler, seed_for(spec.seed, "sampler", done), label=spec.label, shared=is_server(url)
        )
        ran, guard = _watch(
            result,
            limit,
            done,
            progress,
            console,
            lambda bar, guard: run_trials(
                study,
                fn,
                n_trials=spec.budget.n_trials,
                timeout=spec.budget.timeout,
                guard=guard,
                callbacks=[bar],
                heartbeat=heartbeat,
            ),
        )
    result.ran = ran
    if guard.tripped:
        raise too_many_failures(spec, guard)
    return result


def too_many_failures(spec: StudySpec, guard: _FailureGuard) -> TooManyFailures:
    return TooManyFailures(
        f"{spec.label}: {guard.limit} trials in a row failed, so the study stopped. The first error was: "
        f"{guard.first_error}. Completed trials are kept; fix the cause and rerun to finish the budget."
    )


def _watch(
    result: StudyResult,
    limit: int,
    done: int,
    progress: bool,
    console: Console | None,
    run: Callable[[StudyProgress, _FailureGuard], object],
) -> tuple[int, _FailureGuard]:
    """Run ``run(bar, guard)`` with progress display; Ctrl-C becomes :class:`StudyInterrupted`."""
    spec = result.spec
    guard = _FailureGuard(limit)
    with StudyProgress(
        total=spec.budget.n_trials, done=done, timeout=spec.budget.timeout, console=console, enabled=progress
    ) as bar:
        try:
            run(bar, guard)
        except KeyboardInterrupt:
            result.ran = bar.finished_here
            raise StudyInterrupted(result) from None
    return bar.finished_here, guard


def open_study(
    spec: StudySpec,
    context: ObjectiveContext,
    url: str,
    *,
    allow_space_change: bool,
    heartbeat: Heartbeat | None = None,
) -> optuna.Study:
    """Create the study, or load it and refuse a changed search space unless allowed.

    ``heartbeat`` is for processes that run trials (see :func:`tuner.storage.open_storage`).
    """
    try:
        storage = open_storage(url, heartbeat=heartbeat)
    except StorageError as exc:
        raise StorageError(f"{spec.label}, field 'storage': {exc}") from None
    study = optuna.create_study(
        storage=storage,
        study_name=spec.name,
        directions=targets.directions(spec.objective),
        load_if_exists=True,
        pruner=build_pruner(spec.pruner, label=spec.label),
    )
    targets.check_directions(study, spec.objective, where=f"{spec.label}: study {spec.name!r} in {redact(url)}")
    new_space = space_mod.to_json(context.space)
    attrs = study.user_attrs
    if ATTR_SPEC in attrs and not allow_space_change:
        _refuse_changes(spec, json.loads(attrs[ATTR_SPEC]), attrs.get(ATTR_SPACE, {}), new_space, url)
    # The stored spec is shown by export and the dashboard: never with the storage password.
    stored = spec.model_copy(update={"storage": redact(spec.storage)}) if spec.storage else spec
    if attrs.get(ATTR_SPEC_HASH) != stored.spec_hash():
        # The spec goes last: a worker starting meanwhile compares only once it is there, and
        # then finds the space and the rest already written.
        study.set_user_attr(ATTR_SPACE, new_space)
        study.set_user_attr("tuner:model", spec.model)
        study.set_user_attr("tuner:metric", context.metric.name)
        study.set_user_attr("tuner:task", context.dataset.task)
        study.set_user_attr("tuner:n_folds", len(context.splits))
        study.set_user_attr("tuner:objectives", targets.labels(spec.objective, context.metric.name))
        study.set_user_attr("tuner:baseline", context.baseline)
        study.set_user_attr(ATTR_SPEC_HASH, stored.spec_hash())
        study.set_user_attr(ATTR_SPEC, stored.to_json())
    if attrs.get(ATTR_BASE_DIR) != str(spec.base_dir):
        study.set_user_attr(ATTR_BASE_DIR, str(spec.base_dir))
        if spec.spec_path is not None:
            study.set_user_attr(ATTR_SPEC_PATH, str(spec.spec_path))
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
    old_spec = _normalized(old_spec)
    for key in _COMPARED:
        if old_spec.get(key) != new_spec.get(key):
            raise SpecError(
                f"{where} was run with a different `{key}` ({old_spec.get(key)!r} → {new_spec.get(key)!r}). {fix}"
            )


def _normalized(old_spec: dict[str, Any]) -> dict[str, Any]:
    """The stored spec re-validated by this version, so fields added since (with their defaults)
    do not read as changes; a spec this version cannot read is compared as stored."""
    try:
        return dict(json.loads(load_spec(old_spec).to_json()))
    except TunerError:
        return old_spec


def _describe_json(value: dict[str, Any] | None) -> str:
    from tuner.spec import ParamSpec

    return "absent" if value is None else space_mod.describe(ParamSpec.model_validate(value))


def count_done(study: optuna.Study) -> int:
    """Trials that count against the budget: finished ones, except those stopped by Ctrl-C or lost."""
    return _count(study, (TrialState.COMPLETE, TrialState.PRUNED))


def budget_used(study: optuna.Study) -> int:
    """Counted finished trials plus RUNNING ones: what workers compare with ``n_trials`` before asking."""
    return _count(study, (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))


_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    """Trials in ``states`` plus the FAIL trials that count (every trial loop calls this before asking).

    Only FAIL trials can be uncounted (Ctrl-C and lost workers mark theirs FAIL), so only their
    attributes are looked at: one storage read, and a cheap pass over the rest.
    """
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False, states=(*states, TrialState.FAIL))
    fail = TrialState.FAIL
    return len(trials) - sum(
        1 for t in trials if t.state is fail and (t.user_attrs.get("interrupted") or t.user_attrs.get(ATTR_LOST))
    )


class _TrackedObjective:
    """Wraps the objective: remembers the running trial, records errors and interruptions."""

    def __init__(self, fn: Callable[[optuna.Trial], float | tuple[float, ...]]) -> None:
        self.fn = fn
        self.current_trial_id: int | None = None

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        self.current_trial_id = trial._trial_id
        try:
            return self.fn(trial)
        except KeyboardInterrupt:
            _quietly(lambda: trial.set_user_attr("interrupted", True))
            raise
        except (optuna.TrialPruned, optuna.exceptions.UpdateFinishedTrialError):
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"[:2000]
            if not _quietly(lambda: trial.set_user_attr("error", message)):
                raise optuna.exceptions.UpdateFinishedTrialError(message) from exc
            raise


def _fail_if_running(study: optuna.Study, trial_id: int | None) -> None:
    if trial_id is None:
        return
    storage = study._storage
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_user_attr(trial_id, "interrupted", True)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)


class _FailureGuard:
    """Trips after ``limit`` failed trials in a row; trial loops stop when it has tripped.

    A parent process feeds it every worker's trials, in the order they finish, so "in a row" is
    across workers. Trials lost with a dead worker say nothing about the objective and are skipped.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.first_error: str | None = None
        self.tripped = False

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.user_attrs.get(ATTR_LOST) and trial.state == TrialState.FAIL:
            return
        if trial.state != TrialState.FAIL or trial.user_attrs.get("interrupted"):
            self.streak, self.first_error = 0, None
            return
        self.streak += 1
        if self.first_error is None:
            self.first_error = trial.user_attrs.get("error") or trial.system_attrs.get("fail_reason", "unknown")
        if self.streak >= self.limit:
            self.tripped = True


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    *,
    n_trials: int,
    timeout: float | None = None,
    guard: _FailureGuard | None = None,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    heartbeat: Heartbeat | None = None,
    gate: Callable[[], AbstractContextManager[Any]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Run trials until the study holds ``n_trials`` counted plus running ones; return how many ran here.

    Before each trial it repairs zombie trials (dead workers) and checks the global budget; ``gate``
    (a lock shared by local workers) makes that check and the ask atomic, so local workers never
    overshoot; without it concurrent workers overshoot by at most their number minus one. A trial
    that a peer already marked FAIL (its heartbeat looked stale) is logged as "result discarded".

    Args:
        study: The study, on a storage opened with ``heartbeat`` when given.
        objective: ``objective(trial) -> float`` (or a tuple for several objectives).
        n_trials: The study's total budget.
        timeout: Seconds after which no new trial starts.
        guard: Stops the loop after too many failures in a row.
        callbacks: Called as ``callback(study, frozen_trial)`` after each trial.
        heartbeat: Keep a heartbeat on the running trial.
        gate: A context manager factory held around "reap, check budget, ask".
        should_stop: Polled before each trial; ``True`` ends the loop.

    Raises:
        KeyboardInterrupt: after marking the running trial FAIL with ``interrupted: true``.
    """
    from tuner.doctor import reap, this_worker

    started = time.monotonic()
    after_trial: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [*callbacks]
    if guard is not None:
        after_trial.append(guard)
    tracked = _TrackedObjective(objective)
    pulse = Pulse(study._storage, heartbeat, this_worker())
    ran = 0
    next_reap = 0.0
    current: int | None = None
    try:
        # Samplers end a search by calling study.stop() (the grid sampler, once every point is
        # tried), which Optuna allows only inside its optimize loop; this loop is one and obeys.
        study._thread_local.in_optimize_loop = True
        exhausted = getattr(study.sampler, "is_exhausted", None)  # a grid tried in full by an earlier run
        study._stop_flag = bool(exhausted is not None and exhausted(study))
        with CtrlCLatch() as latch:
            while not (guard is not None and guard.tripped):
                # Queued trials (retries of lost ones, warm starts) still run after the sampler is done.
                if study._stop_flag and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                    _log.info("the sampler has no more configurations to propose; stopping")
                    break
                if should_stop is not None and should_stop():
                    break
                if timeout is not None and time.monotonic() - started >= timeout:
                    break
                with gate() if gate is not None else contextlib.nullcontext():
                    if time.monotonic() >= next_reap:
                        reap(study, heartbeat=heartbeat)
                        next_reap = time.monotonic() + _REAP_EVERY_S
                    # A dead worker's RUNNING trial must not end the study one trial short: repair, recount.
                    if budget_used(study) >= n_trials and (
                        not reap(study, heartbeat=heartbeat) or budget_used(study) >= n_trials
                    ):
                        break
                    with latch.held():  # a trial must never exist without this loop knowing it
                        trial = _ask(study)
                        current = trial._trial_id
                        pulse.start(current)
                try:
                    frozen = _run_trial(study, trial, tracked)
                finally:
                    pulse.stop()
                current = None
                if frozen is None:
                    continue
                if not frozen.user_attrs.get("interrupted"):
                    ran += 1
                for callback in after_trial:
                    callback(study, frozen)
    except KeyboardInterrupt:
        _fail_if_running(study, current)
        raise
    finally:
        study._thread_local.in_optimize_loop = False
        pulse.close()
        study._storage.remove_session()
    return ran


# Zombie trials are looked for at start, then this often (and whenever the budget looks spent).
_REAP_EVERY_S = 10.0


class CtrlCLatch:
    """While installed, a Ctrl-C that arrives inside a :meth:`held` block is delivered when the block ends.

    A trial loop installs one for its whole run: swapping the handler around every ask would cost
    more than the rest of the loop's own work on a fast objective.
    """

    def __init__(self) -> None:
        self.holding = False
        self.pending: tuple[int, Any] | None = None
        self.previous: Any = None

    def __enter__(self) -> CtrlCLatch:
        previous = signal.getsignal(signal.SIGINT)
        # Signal handlers belong to the main thread (a Dask task is not); an ignored Ctrl-C stays so.
        if threading.current_thread() is threading.main_thread() and callable(previous):
            self.previous = previous
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        # A handler that replaced this one meanwhile (a worker ignoring further Ctrl-C) stays.
        if self.previous is not None and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.holding:
            self.pending = (signum, frame)
        else:
            self.previous(signum, frame)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self.pending is not None and self.previous is not None:
                pending, self.pending = self.pending, None
                self.previous(*pending)


@contextlib.contextmanager
def hold_ctrl_c() -> Iterator[None]:
    """Deliver a Ctrl-C that arrives inside the block only when the block is done."""
    with CtrlCLatch() as latch, latch.held():
        yield


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        # Optuna expects heartbeats only inside Study.optimize; this loop runs them itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        return study.ask()


def _run_trial(study: optuna.Study, trial: optuna.Trial, tracked: _TrackedObjective) -> optuna.trial.FrozenTrial | None:
    """Evaluate one trial and record its outcome; None when a peer had already finished it."""
    state = TrialState.FAIL
    values: list[float] | None = None
    try:
        returned = tracked(trial)
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except optuna.exceptions.UpdateFinishedTrialError:
        _log_discarded(trial)
        return None
    except KeyboardInterrupt:
        _tell(study, trial, TrialState.FAIL, None)
        raise
    except Exception:
        pass  # _TrackedObjective stored the error on the trial
    else:
        values, problem = _check_values(returned, len(study.directions))
        if problem is None:
            state = TrialState.COMPLETE
        elif not _quietly(lambda: trial.set_user_attr("error", problem)):
            _log_discarded(trial)
            return None
    return _tell(study, trial, state, values)


def _check_values(returned: Any, n_objectives: int) -> tuple[list[float] | None, str | None]:
    items = list(returned) if isinstance(returned, Sequence) and not isinstance(returned, str) else [returned]
    if len(items) != n_objectives:
        return None, f"objective returned {returned!r}: {len(items)} value(s) for {n_objectives} objective(s)"
    try:
        values = [float(v) for v in items]
    except (TypeError, ValueError):
        return None, f"objective returned {returned!r}, not a number"
    if not all(math.isfinite(v) for v in values):
        return None, f"objective returned {returned!r}, not a finite number"
    return values, None


def _quietly(action: Callable[[], object]) -> bool:
    """Run a write to a trial; False when a peer had already finished the trial."""
    try:
        action()
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return True


_TELL_ATTEMPTS = 4


def _tell(
    study: optuna.Study, trial: optuna.Trial, state: TrialState, values: list[float] | None
) -> optuna.trial.FrozenTrial | None:
    """Store the outcome, retrying with backoff while the storage is unreachable."""
    for attempt in range(_TELL_ATTEMPTS):
        try:
            return study.tell(trial, values, state=state)
        except optuna.exceptions.UpdateFinishedTrialError:
            break
        except ValueError:  # tell refuses a trial that is no longer RUNNING
            stored = study._storage.get_trial(trial._trial_id)
            if not stored.state.is_finished():
                raise
            if attempt > 0 and stored.state == state:
                return stored  # the attempt that "failed" had gone through
            break
        except Exception as exc:
            if attempt == _TELL_ATTEMPTS - 1 or not is_transient(exc):
                raise
            _log.warning("trial %d: storing the result failed (%s); retrying", trial.number, type(exc).__name__)
            time.sleep(0.5 * 2**attempt)
    _log_discarded(trial)
    return None


def _log_discarded(trial: optuna.Trial) -> None:
    _log.warning(
        "trial %d: result discarded: another worker marked the trial FAIL (its heartbeat looked stale) and "
        "queued a retry; going on with the next trial",
        trial.number,
    )
