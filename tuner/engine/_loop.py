"""The one trial loop: the sequential run, local worker processes, Dask tasks and ``tuner worker``
all run :func:`run_trials`.

Before each trial it repairs zombie trials (dead workers) and asks the :class:`Budget` whether a
trial may start; it keeps a heartbeat on the running trial, stores the outcome (retrying while the
storage is unreachable), feeds the failure guard, and turns Ctrl-C into an interrupted trial that
does not count against the budget.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner import _optuna
from tuner.engine._budget import Budget
from tuner.engine._liveness import Pulse, reap, this_worker
from tuner.errors import StorageUnavailable
from tuner.store import Heartbeat, StoredStudy, schema

_log = logging.getLogger("tuner")

Callback = Callable[[optuna.Study, FrozenTrial], None]
# Zombie trials are looked for at start, then this often (and whenever the budget looks spent).
_REAP_EVERY_S = 10.0


class FailureGuard:
    """Trips after ``limit`` failed trials in a row; trial loops stop when it has tripped.

    A parent process feeds it every worker's trials, in the order they finish, so "in a row" is
    across workers. Trials lost with a dead worker say nothing about the objective and are skipped.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.first_error: str | None = None
        self.tripped = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get(schema.LOST) and trial.state == TrialState.FAIL:
            return
        if trial.state != TrialState.FAIL or trial.user_attrs.get(schema.INTERRUPTED):
            self.streak, self.first_error = 0, None
            return
        self.streak += 1
        if self.first_error is None:
            self.first_error = trial.user_attrs.get(schema.ERROR) or trial.system_attrs.get(
                schema.OPTUNA_FAIL_REASON, "unknown"
            )
        if self.streak >= self.limit:
            self.tripped = True


@dataclass(frozen=True)
class LoopResult:
    """What one trial loop did: trials run here (interrupted ones not counted), and whether the
    sampler ran out of configurations (a finished grid)."""

    ran: int
    exhausted: bool


def run_trials(
    stored: StoredStudy,
    objective: Callable[[optuna.Trial], Any],
    *,
    budget: Budget,
    timeout: float | None = None,
    guard: FailureGuard | None = None,
    callbacks: Sequence[Callback] = (),
    heartbeat: Heartbeat | None = None,
    gate: Callable[[], AbstractContextManager[Any]] | None = None,
    should_stop: Callable[[], bool] | None = None,
    first_trial: Callable[[int], None] | None = None,
) -> LoopResult:
    """Run trials until the study's counted plus running trials reach the budget.

    ``gate`` (a lock shared by local workers) makes "check the budget, ask" atomic, so local
    workers never overshoot; without it concurrent workers overshoot by at most their number minus
    one. A trial that a peer already marked FAIL (its heartbeat looked stale) is logged as "result
    discarded".

    Args:
        stored: The study, on a storage opened with ``heartbeat`` when given.
        objective: ``objective(trial) -> float`` (or a tuple for several objectives).
        budget: The study's budget.
        timeout: Seconds after which no new trial starts.
        guard: Stops the loop after too many failures in a row.
        callbacks: Called as ``callback(study, frozen_trial)`` after each trial.
        heartbeat: Keep a heartbeat on the running trial.
        gate: A context manager factory held around "reap, check budget, ask".
        should_stop: Polled before each trial; ``True`` ends the loop.
        first_trial: Called with the number of the first trial this loop runs, once it exists and
            before anything is sampled for it (it seeds the sampler: :func:`tuner.engine._worker.seed_sampler`).

    Raises:
        KeyboardInterrupt: after marking the running trial FAIL with ``interrupted: true``.
    """
    study = stored.study
    started = time.monotonic()
    after_trial: list[Callback] = [*callbacks]
    if guard is not None:
        after_trial.append(guard)
    tracked = _TrackedObjective(objective)
    pulse = Pulse(stored.storage, stored.url, heartbeat, this_worker())
    ran = 0
    next_reap = 0.0
    current: int | None = None
    exhausted = getattr(study.sampler, "is_exhausted", None)  # a grid tried in full by an earlier run
    stopped = False
    try:
        with (
            _optuna.optimize_loop(study, exhausted=bool(exhausted is not None and exhausted(study))),
            CtrlCLatch() as latch,
        ):
            while not (guard is not None and guard.tripped):
                # Queued trials (retries of lost ones, warm starts) still run after the sampler is done.
                if _optuna.stop_requested(study) and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                    _log.info("the sampler has no more configurations to propose; stopping")
                    break
                if should_stop is not None and should_stop():
                    break
                if timeout is not None and time.monotonic() - started >= timeout:
                    break
                with gate() if gate is not None else contextlib.nullcontext():
                    if time.monotonic() >= next_reap:
                        reap(stored, heartbeat=heartbeat)
                        next_reap = time.monotonic() + _REAP_EVERY_S
                    # A dead worker's RUNNING trial must not end the study one trial short: repair, recount.
                    if budget.spent(study) and (not reap(stored, heartbeat=heartbeat) or budget.spent(study)):
                        break
                    with latch.held():  # a trial must never exist without this loop knowing it
                        with _optuna.asking():
                            trial = study.ask()
                        current = _optuna.trial_id(trial)
                        claimed = pulse.start(current)
                if not claimed:
                    _log.warning("trial %d: another process took it and finished it first; skipping it", trial.number)
                    current = None
                    continue
                if first_trial is not None:
                    first_trial(trial.number)
                    first_trial = None
                try:
                    frozen = _run_trial(stored, trial, tracked)
                finally:
                    pulse.stop()
                current = None
                if frozen is None:
                    continue
                if not frozen.user_attrs.get(schema.INTERRUPTED):
                    ran += 1
                for callback in after_trial:
                    callback(study, frozen)
            stopped = _optuna.stop_requested(study)
    except KeyboardInterrupt:
        _fail_if_running(stored.storage, current)
        raise
    finally:
        pulse.close()
        stored.storage.remove_session()
    return LoopResult(ran=ran, exhausted=stopped)


class _TrackedObjective:
    """Wraps the objective: records errors and interruptions on the trial."""

    def __init__(self, fn: Callable[[optuna.Trial], float | tuple[float, ...]]) -> None:
        self.fn = fn

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        try:
            return self.fn(trial)
        except KeyboardInterrupt:
            _quietly(lambda: trial.set_user_attr(schema.INTERRUPTED, True))
            raise
        except (optuna.TrialPruned, optuna.exceptions.UpdateFinishedTrialError, StorageUnavailable):
            raise  # a storage that stopped answering ends the worker, not the trial (see store/_retry.py)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"[:2000]
            if not _quietly(lambda: trial.set_user_attr(schema.ERROR, message)):
                raise optuna.exceptions.UpdateFinishedTrialError(message) from exc
            raise


def _fail_if_running(storage: optuna.storages.BaseStorage, trial_id: int | None) -> None:
    if trial_id is None:
        return
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_user_attr(trial_id, schema.INTERRUPTED, True)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)


# The signals that stop a trial loop, each with its Python handler (Ctrl-C; SIGTERM under sigterm_as_ctrl_c).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises :class:`KeyboardInterrupt`, so that it stops a run the same way."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Inside the block SIGTERM stops the run like Ctrl-C: trials marked interrupted, workers stopped.

    A service manager, a batch system or ``kill PID`` sends SIGTERM; its default action would end the
    process at once, leaving its trial RUNNING and its worker processes without a parent. Only the
    main thread can set handlers, and a handler the caller installed stays.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class CtrlCLatch:
    """While installed, a Ctrl-C (or a SIGTERM handled like it) that arrives inside a :meth:`held` block is
    delivered when the block ends.

    A trial loop installs one for its whole run: swapping the handler around every ask would cost
    more than the rest of the loop's own work on a fast objective.
    """

    def __init__(self) -> None:
        self.holding = False
        self.pending: tuple[int, Any] | None = None
        self.previous: dict[int, Callable[[int, Any], Any]] = {}

    def __enter__(self) -> CtrlCLatch:
        # Signal handlers belong to the main thread (a Dask task is not); an ignored signal stays so.
        if threading.current_thread() is threading.main_thread():
            for signum in _STOP_SIGNALS:
                previous = signal.getsignal(signum)
                if callable(previous):
                    self.previous[signum] = previous
                    signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        # A handler that replaced this one meanwhile (a worker ignoring further Ctrl-C) stays.
        for signum, previous in self.previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.holding:
            self.pending = self.pending or (signum, frame)
        else:
            self.previous[signum](signum, frame)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self.pending is not None:
                pending, self.pending = self.pending, None
                self.previous[pending[0]](*pending)


@contextlib.contextmanager
def hold_ctrl_c() -> Iterator[None]:
    """Deliver a Ctrl-C (or a SIGTERM handled like it) that arrives inside the block only when the block is done."""
    with CtrlCLatch() as latch, latch.held():
        yield


def _run_trial(stored: StoredStudy, trial: optuna.Trial, tracked: _TrackedObjective) -> FrozenTrial | None:
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
        _tell(stored, trial, TrialState.FAIL, None)
        raise
    except StorageUnavailable:
        raise
    except Exception:
        pass  # _TrackedObjective stored the error on the trial
    else:
        values, problem = _check_values(returned, len(stored.study.directions))
        if problem is None:
            state = TrialState.COMPLETE
        elif not _quietly(lambda: trial.set_user_attr(schema.ERROR, problem)):
            _log_discarded(trial)
            return None
    return _tell(stored, trial, state, values)


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


def _tell(
    stored: StoredStudy, trial: optuna.Trial, state: TrialState, values: list[float] | None
) -> FrozenTrial | None:
    """Store the outcome (the storage retries a dropped connection); None when a peer finished the trial.

    A retried write whose first attempt went through finds the trial finished already: that is
    this worker's own outcome when the state matches, since peers only ever mark trials FAIL as lost.
    """
    try:
        _optuna.write_reports(trial)  # a pruned trial's value is its last report, read back from the storage
        with _optuna.telling():
            return stored.study.tell(trial, values, state=state)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):  # tell refuses a finished trial
        finished = stored.storage.get_trial(_optuna.trial_id(trial))
        if not finished.state.is_finished():
            raise
        if finished.state == state and not finished.user_attrs.get(schema.LOST):
            return finished
    _log_discarded(trial)
    return None


def _log_discarded(trial: optuna.Trial) -> None:
    _log.warning(
        "trial %d: result discarded: another worker marked the trial FAIL (its heartbeat looked stale) and "
        "queued a retry; going on with the next trial",
        trial.number,
    )
