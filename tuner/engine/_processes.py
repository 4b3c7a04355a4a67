"""Worker processes on this machine: the parent is worker 0, the others come from a fork server.

Processes, not threads: models hold the GIL. Workers come from a fork server (``spawn`` where
there is none), since forking a process that already opened database connections or started
OpenMP threads is unsafe, and each runs its models with its share of the cores (the run's
``threads``, :mod:`tuner.threads`). The job reaches a worker pickled through a pipe, never on a command line, so a
storage password stays out of ``ps``. The parent creates the study before any worker starts,
shows progress by polling the storage, feeds every finished trial to one failure guard (so "in a
row" spans workers), and on Ctrl-C or SIGTERM stops the workers and repairs what they left.

The parent owns its workers: one killed by a signal (kill -9, the OOM killer) has its trial
repaired and another worker takes its place while budget remains, and every worker stops itself
when the parent is gone, however it ended (:func:`tuner.engine._child._watch_parent`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from multiprocessing import forkserver
from multiprocessing.connection import wait
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner import _optuna
from tuner.engine._budget import Budget
from tuner.engine._child import EXIT_INTERRUPTED, locked, process_main
from tuner.engine._liveness import NAME_AFTER_S, reap, repair, running_trials
from tuner.engine._loop import FailureGuard, hold_ctrl_c
from tuner.engine._supervise import POLL_S, STOP_GRACE_S, Watcher, check_failures, job_bytes, repair_interrupted
from tuner.engine._worker import EXIT_TOO_MANY_FAILURES, Gate, WorkerJob, work
from tuner.errors import TunerError
from tuner.store import StoredStudy, kind_of

_log = logging.getLogger("tuner")
# What a worker imports before its first trial, imported once by the fork server instead of by
# every worker: the trial loop, data loading, the RDB storage with alembic (Optuna checks the
# schema version with it) and the scikit-learn modules the catalog builds on. The server skips
# modules that are not installed.
_PRELOAD = (
    "tuner.engine._worker",
    "tuner.data",
    "tuner.cv",
    *_optuna.PRELOAD,
    "alembic.command",
    "alembic.config",
    "alembic.migration",
    "alembic.script",
    "sklearn.datasets",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.model_selection",
    "sklearn.neighbors",
    "sklearn.pipeline",
    "sklearn.svm",
    "threadpoolctl",
)


def run_processes(
    stored: StoredStudy,
    job: WorkerJob,
    n: int,
    watcher: Watcher,
    guard: FailureGuard,
    objective: Callable[[optuna.Trial], Any] | None = None,
    *,
    preload: Sequence[str] = (),
) -> bool:
    """Run the rest of the budget on ``n`` workers: this process (with ``objective``) and ``n - 1`` others.

    Returns whether this process's own loop found the sampler exhausted (a finished grid).

    Raises:
        KeyboardInterrupt: on Ctrl-C, after the workers stopped and no trial of theirs is RUNNING.
        WorkerError: when workers failed and the budget was not reached.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A spawned worker re-imports the parent's main script; without a main guard the script's
        # run_study call would start workers of its own.
        raise TunerError(
            "run_study(..., n_jobs > 1) ran while a worker process was importing your script. Put the call "
            "under `if __name__ == '__main__':` (worker processes import the main script)."
        )
    payload = job_bytes(job)
    ctx = context(preload)
    # A run started with Ctrl-C ignored (nohup, a background job) keeps its workers deaf to it too.
    ignore_ctrl_c = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    stop = ctx.Event()
    gate = ctx.Lock()
    # The parent is worker 0 when it has the objective: its data and study are loaded already, so
    # it tunes while the other workers start (a fork server's imports take seconds).
    here = objective is not None

    def worker(index: int) -> Any:
        return ctx.Process(
            target=process_main, args=(payload, index, stop, gate, ignore_ctrl_c), name=f"tuner-worker-{index}"
        )

    procs = [worker(index) for index in range(1 if here else 0, n)]
    study = stored.study
    first = len(study.get_trials(deepcopy=False))  # trials numbered from here on are this run's
    supervisor = _Supervisor(
        stored,
        job,
        procs,
        watcher,
        guard,
        stop,
        first,
        replace=partial(_start_another, ctx, worker, n),
        gate=partial(locked, gate),
    )
    timeout = job.spec.budget.timeout
    deadline = time.monotonic() + timeout if timeout else math.inf
    exhausted = False

    def should_stop() -> bool:
        return stop.is_set() or guard.tripped or time.monotonic() > deadline

    try:
        if objective is None:
            _start(ctx, procs)
        else:
            # The other workers start from the supervisor's thread: a first start waits for the
            # fork server's imports, and the parent tunes meanwhile.
            with supervisor.in_background(before=partial(_start, ctx, procs, cancelled=stop.is_set)):
                exhausted = _run_here(stored, objective, job, partial(locked, gate), should_stop)
        supervisor.until_stopped()
        if objective is not None and not should_stop() and _retries_left(study, job):
            # A worker died near the end: its trial held a slot of the budget until it was
            # repaired, after every other worker had stopped, and its retry waits. Finish here.
            exhausted = _run_here(stored, objective, job, partial(locked, gate), should_stop) or exhausted
    except BaseException as exc:
        with _deaf_to_stop_signals():  # a second Ctrl-C or SIGTERM must not skip the cleanup
            _stop_processes(procs, stop)
            if isinstance(exc, KeyboardInterrupt):
                repair_interrupted(stored, {proc.pid for proc in procs if proc.pid}, first)
                watcher.poll()
        raise
    finally:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                proc.kill()
    failed = [
        proc
        for proc in procs
        if proc.pid is not None and proc.exitcode not in (0, EXIT_TOO_MANY_FAILURES, EXIT_INTERRUPTED)
    ]
    started = sum(proc.pid is not None for proc in procs) + (1 if here else 0)
    check_failures(stored, job, [f"exit code {proc.exitcode}" for proc in failed], started, guard)
    return exhausted


def _start_another(
    ctx: Any, worker: Callable[[int], Any], n: int, procs: list[Any], cancelled: Callable[[], bool]
) -> Any:
    """Start a worker in a dead one's place, with an index (and so a sampler seed) no worker had."""
    proc = worker(n + len(procs))
    procs.append(proc)
    _start(ctx, [proc], cancelled=cancelled)
    return proc


def _retries_left(study: optuna.Study, job: WorkerJob) -> bool:
    """Budget is left and a trial waits (the queued retry of a repaired one)."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return bool(waiting) and not Budget(job.spec.budget.n_trials).spent(study)


def _settle_s() -> float:
    """How long after a worker's death its unnamed journal-file trials are known to be its own."""
    return 2 * NAME_AFTER_S + 0.5


class _Supervisor:
    """The parent's watch over its worker processes: progress and the failure guard, dead workers.

    It polls from a thread while the parent runs trials itself, then from the calling thread
    until every worker has exited.
    """

    def __init__(
        self,
        stored: StoredStudy,
        job: WorkerJob,
        procs: list[Any],
        watcher: Watcher,
        guard: FailureGuard,
        stop: Any,
        first: int,
        replace: Callable[[list[Any], Callable[[], bool]], Any],
        gate: Gate,
    ) -> None:
        self.stored, self.job, self.procs = stored, job, procs
        self.watcher, self.guard, self.stop, self.first = watcher, guard, stop, first
        self.replace = replace
        # Repairs hold the workers' gate: a repair marks the trial FAIL, then queues its retry, and a
        # worker asking in between would start a new trial, which could spend the budget and leave
        # the retry WAITING for ever.
        self.gate = gate
        self.handled: set[int] = set()
        self.deaths: list[float] = []  # when workers died, until their unnamed trials are repaired
        # Workers killed since a trial last counted, and the count then: a worker that dies on every
        # trial (a crashing objective) is not replaced for ever.
        self.killed_in_a_row = 0
        self.counted_at_death = -1

    def tick(self) -> None:
        self.watcher.poll()
        if self.guard.tripped:
            self.stop.set()
        for proc in list(self.procs):
            if proc.exitcode not in (None, 0, EXIT_TOO_MANY_FAILURES) and proc.pid not in self.handled:
                self.handled.add(proc.pid or 0)
                # A killed worker's trial would hold budget until a peer notices; repair it now.
                with self.gate():
                    reap(self.stored, heartbeat=self.job.heartbeat, pids=[proc.pid or 0])
                self.deaths.append(time.time())
                if proc.exitcode < 0:  # killed by a signal: kill -9, the OOM killer, a crash in native code
                    self._replace(proc)
        if self.deaths:
            self._repair_unnamed()

    def _replace(self, dead: Any) -> None:
        """Start a worker in the place of ``dead`` while budget remains, so parallelism does not drop.

        The count of trials is the watcher's from before the death was handled: a trial counted
        since then did not run between this death and the one before.
        """
        if self.stop.is_set() or self.guard.tripped or Budget(self.job.spec.budget.n_trials).spent(self.stored.study):
            return
        self.killed_in_a_row = self.killed_in_a_row + 1 if self.watcher.counted == self.counted_at_death else 1
        self.counted_at_death = self.watcher.counted
        signal_name = _signal_name(-dead.exitcode)
        if self.killed_in_a_row > self.job.max_failures:
            _log.warning(
                "worker process %d was killed (%s): %d workers were killed with no trial counted in between, "
                "so no other takes its place",
                dead.pid,
                signal_name,
                self.killed_in_a_row,
            )
            return
        proc = self.replace(self.procs, self.stop.is_set)
        if proc.pid is not None:
            _log.warning(
                "worker process %d was killed (%s); worker process %d takes its place", dead.pid, signal_name, proc.pid
            )

    def _repair_unnamed(self) -> None:
        """Repair the trials of dead workers that had not named themselves yet (journal files name late).

        Live workers name theirs within ``2 × NAME_AFTER_S`` of the start, so a trial of this run
        that started before a death and is still unnamed that long after it was the dead worker's.
        """
        settled = [t for t in self.deaths if time.time() > t + _settle_s()]
        if not settled:
            return
        latest = max(settled)
        orphans = [
            t
            for t in running_trials(self.stored, heartbeat=None)
            if t.host is None and t.number >= self.first and t.started and t.started.timestamp() < latest
        ]
        if orphans:
            with self.gate():
                repair(self.stored, orphans)
        self.deaths = [t for t in self.deaths if t not in settled]

    def until_stopped(self) -> None:
        while any(proc.is_alive() for proc in self.procs):
            self.tick()
            wait([proc.sentinel for proc in self.procs if proc.is_alive()], timeout=POLL_S)
        self.tick()
        if self.deaths and kind_of(self.stored.url) == "journal":
            # A worker died moments ago, maybe before naming itself on its trial (journal files
            # name late): that trial can be told apart once the death settles. Returning before
            # would leave it RUNNING, holding a slot of the budget.
            deadline = max(self.deaths) + _settle_s() + 1.0
            while self.deaths and time.time() < deadline:
                time.sleep(POLL_S / 5)
                self.tick()

    @contextlib.contextmanager
    def in_background(self, before: Callable[[], None]) -> Iterator[None]:
        """Call ``before`` then poll, in a thread, while the block runs; re-raise what the thread raised."""
        done = threading.Event()
        failure: list[BaseException] = []

        def loop() -> None:
            try:
                before()
                while not done.wait(POLL_S):
                    self.tick()
            except BaseException as exc:  # a storage error here must stop the run, not die silently
                failure.append(exc)
                self.stop.set()

        thread = threading.Thread(target=loop, name="tuner-supervisor", daemon=True)
        thread.start()
        raised = True
        try:
            yield
            raised = False
        except BaseException:
            self.stop.set()  # workers not started yet stay unstarted (Ctrl-C, an error here)
            raise
        finally:
            done.set()
            thread.join()
            if failure and raised:
                _log.error("the worker supervisor failed too: %s: %s", type(failure[0]).__name__, failure[0])
        if failure:
            raise failure[0]


def _run_here(
    stored: StoredStudy,
    objective: Callable[[optuna.Trial], Any],
    job: WorkerJob,
    gate: Gate,
    should_stop: Callable[[], bool],
) -> bool:
    """The parent's share of the trials, as worker 0: the same thread share, a sampler seed of its own.

    Like a worker process it stops at its own streak of failures (the shared guard only sees
    trials when it polls); the other workers go on until their own streak or the shared guard
    stops them. Returns whether the sampler ran out of configurations.
    """
    outcome, _ = work(stored, objective, job, 0, gate, should_stop)
    return outcome.exhausted


def prestart(preload: Sequence[str] = ()) -> None:
    """Start the fork server now, so that its imports overlap the parent's loading of data and study."""
    _ensure_fork_server(context(preload))


def _ensure_fork_server(ctx: Any) -> bool:
    """Start the fork server (deaf to Ctrl-C, which would hit it mid-import) if ``ctx`` forks; True if it does."""
    if ctx.get_start_method() != "forkserver":
        return False
    with _deaf_to_ctrl_c():
        forkserver.ensure_running()
    return True


def _start(ctx: Any, procs: Sequence[Any], cancelled: Callable[[], bool] = lambda: False) -> None:
    """Start the workers so that a Ctrl-C meanwhile never hits one (or the fork server) mid-import.

    Workers not started yet when ``cancelled()`` turns true are never started.
    """
    forked = _ensure_fork_server(ctx)
    # Spawned workers inherit this process's ignored SIGINT. Forked ones come from the deaf fork
    # server, and the first start waits for its imports: a Ctrl-C meanwhile counts once they started.
    with hold_ctrl_c() if forked else _deaf_to_ctrl_c():
        for proc in procs:
            if cancelled():
                return
            proc.start()


@contextlib.contextmanager
def _deaf_to_ctrl_c() -> Iterator[None]:
    """Processes started inside inherit an ignored SIGINT: deaf until they install their own handler."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers, and only it receives Ctrl-C
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def context(preload: Sequence[str] = ()) -> Any:
    """The multiprocessing context workers start from: a fork server preloading ``preload`` too."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    # The fork server is a fresh interpreter that imports tuner once (no connection, no thread
    # yet) and forks each worker from that clean state: as safe as spawn, without paying the
    # imports per worker, and reused by later runs in the same process (with the modules of the
    # first run that started it).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([*_PRELOAD, *preload])
    return ctx


def _stop_processes(procs: Sequence[Any], stop: Any) -> None:
    """Stop the workers: between trials if they get there within a second, else mid-trial (the trial is
    marked interrupted); kill those that did not stop within ``STOP_GRACE_S``."""
    stop.set()
    # Ctrl-C in a terminal reached the workers too (same process group); SIGTERM or `kill -INT` to
    # the parent did not. SIGTERM stops a worker like Ctrl-C, even one started with Ctrl-C ignored.
    deadline = time.monotonic() + 1.0
    for proc in procs:
        if proc.pid is not None:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive() and proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        if proc.pid is None:
            continue  # never started
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)


@contextlib.contextmanager
def _deaf_to_stop_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored inside the block (in the main thread; elsewhere they never arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
