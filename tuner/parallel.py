"""Parallel and distributed runs: worker processes here, tasks on a Dask cluster, ``tuner worker`` anywhere.

Every worker is the same loop (:func:`tuner.runner.run_trials`) on its own connection to the
study's storage; the storage is all that workers share. The parent creates the study before any
worker starts, shows progress by polling the storage, feeds every finished trial to one failure
guard (so "in a row" spans workers), and on Ctrl-C stops the workers and repairs what they left.

Processes, not threads: models hold the GIL. Workers come from a fork server (``spawn`` where
there is none), since forking a process that already opened database connections or started
OpenMP threads is unsafe, and each runs its models single-threaded (BLAS/OpenMP pools limited to
one thread). The job reaches
a worker pickled through a pipe, never on a command line, so a storage password stays out of ``ps``.

This module stays light to import: a spawned worker imports it before it can handle Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from tuner.errors import TunerError
from tuner.storage import DEFAULT_HEARTBEAT, Heartbeat, redact

if TYPE_CHECKING:
    import optuna

    from tuner.runner import _FailureGuard
    from tuner.spec import StudySpec

_log = logging.getLogger("tuner")
_POLL_S = 0.5
# A worker killed while holding the gate would block the others; after this they go on without it.
_GATE_TIMEOUT_S = 30.0
# How long stopped workers get to mark their running trial and exit before they are terminated.
_STOP_GRACE_S = 15.0
# Exit code of a worker process stopped by its failure guard; the parent reports that itself.
_EXIT_TOO_MANY_FAILURES = 3
_EXIT_INTERRUPTED = 130

Callback = Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]


class WorkerError(TunerError):
    """Worker processes or Dask tasks failed before the budget was reached."""


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker needs to join a study; pickled to worker processes and Dask tasks."""

    spec: StudySpec
    url: str
    data: Any = None
    objective: Callable[..., Any] | None = None
    max_failures: int = 10
    heartbeat: Heartbeat | None = DEFAULT_HEARTBEAT
    allow_space_change: bool = False
    log_level: int = logging.ERROR


def run_worker(
    job: WorkerJob,
    *,
    index: int | str | None = None,
    gate: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Join the study in ``job`` and run trials until its global budget is reached; return how many ran here.

    This is ``tuner worker``: start it on any machine that reaches the storage. It creates the
    study if it does not exist yet, repairs zombie trials, and seeds its sampler from the study
    seed, the trials already done and ``index`` (default: host and PID), so workers differ.

    Raises:
        TooManyFailures: after ``job.max_failures`` failed trials in a row (in this worker).
        TunerError: for an invalid spec, data or storage.
    """
    import socket

    from tuner.objectives import build_context, make_objective
    from tuner.runner import open_study, too_many_failures

    spec = job.spec
    context = build_context(spec, data=job.data)
    fn = make_objective(context, job.objective)
    study = open_study(spec, context, job.url, allow_space_change=job.allow_space_change, heartbeat=job.heartbeat)
    label = index if index is not None else f"{socket.gethostname()}:{os.getpid()}"
    ran, guard = _work(study, fn, job, label, gate, should_stop)
    if guard.tripped:
        raise too_many_failures(spec, guard)
    return ran


def _work(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    job: WorkerJob,
    label: int | str,
    gate: Callable[[], contextlib.AbstractContextManager[Any]] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[int, _FailureGuard]:
    """One worker's trial loop on an open study: its own sampler seed and its own failure streak."""
    from tuner.runner import _FailureGuard, count_done, run_trials
    from tuner.samplers import build_sampler
    from tuner.seeds import seed_for

    spec = job.spec
    study.sampler = build_sampler(
        spec.sampler, seed_for(spec.seed, "sampler", count_done(study), label), label=spec.label, shared=True
    )
    guard = _FailureGuard(job.max_failures)
    ran = run_trials(
        study,
        objective,
        n_trials=spec.budget.n_trials,
        timeout=spec.budget.timeout,
        guard=guard,
        heartbeat=job.heartbeat,
        gate=gate,
        should_stop=should_stop,
    )
    return ran, guard


def run_parallel(
    study: optuna.Study,
    job: WorkerJob,
    *,
    n_jobs: int | None,
    dask: str | None = None,
    guard: _FailureGuard,
    callbacks: Sequence[Callback] = (),
    objective: Callable[[optuna.Trial], Any] | None = None,
) -> None:
    """Run the rest of the study's budget on ``n_jobs`` worker processes, or as Dask tasks.

    The study must exist (the parent created it). With ``objective`` (the parent's own, built
    from the context it already loaded), the calling process is worker 0 of ``n_jobs`` local
    workers: it runs trials at once while the other processes start. Returns when every worker
    has stopped.

    Raises:
        KeyboardInterrupt: on Ctrl-C, after the workers stopped and no trial of theirs is RUNNING.
        WorkerError: when workers failed and the budget was not reached.
    """
    from tuner.runner import count_done

    remaining = job.spec.budget.n_trials - count_done(study)
    watcher = _Watcher(study, [*callbacks, guard])
    if dask is not None:
        _run_on_dask(study, job, n_jobs, dask, watcher, guard)
    else:
        _run_processes(study, job, max(1, min(n_jobs or 1, remaining)), watcher, guard, objective)


class _Watcher:
    """Feeds trials that finished since the last poll, in the order they finished, to callbacks."""

    def __init__(self, study: optuna.Study, callbacks: Sequence[Callback]) -> None:
        from tuner.runner import _FINISHED

        self.study = study
        self.callbacks = callbacks
        self.states = _FINISHED
        self.seen = {t.number for t in study.get_trials(deepcopy=False, states=_FINISHED)}

    def poll(self) -> None:
        new = [t for t in self.study.get_trials(deepcopy=False, states=self.states) if t.number not in self.seen]
        new.sort(key=lambda t: (t.datetime_complete.timestamp() if t.datetime_complete else 0.0, t.number))
        for trial in new:
            self.seen.add(trial.number)
            for callback in self.callbacks:
                callback(self.study, trial)


def _job_bytes(job: WorkerJob) -> bytes:
    try:
        return pickle.dumps(job)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise TunerError(
            f"{job.spec.label}: cannot send the study to worker processes ({exc}). With n_jobs > 1 the "
            "objective and data must be picklable: define the objective as a module-level function "
            "(or use `objective: module:function` in the spec), or run with n_jobs=1."
        ) from None


# --- local worker processes ------------------------------------------------------------------


def _run_processes(
    study: optuna.Study,
    job: WorkerJob,
    n: int,
    watcher: _Watcher,
    guard: _FailureGuard,
    objective: Callable[[optuna.Trial], Any] | None = None,
) -> None:
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A spawned worker re-imports the parent's main script; without a main guard the script's
        # run_study call would start workers of its own.
        raise TunerError(
            "run_study(..., n_jobs > 1) ran while a worker process was importing your script. Put the call "
            "under `if __name__ == '__main__':` (worker processes import the main script)."
        )
    payload = _job_bytes(job)
    ctx = _context(job.spec)
    # A run started with Ctrl-C ignored (nohup, a background job) keeps its workers deaf to it too.
    ignore_ctrl_c = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    stop = ctx.Event()
    gate = ctx.Lock()
    # The parent is worker 0 when it has the objective: its data and study are loaded already, so
    # it tunes while the other workers start (a fork server's imports take seconds).
    here = objective is not None
    procs = [
        ctx.Process(
            target=_process_main, args=(payload, index, stop, gate, ignore_ctrl_c), name=f"tuner-worker-{index}"
        )
        for index in range(1 if here else 0, n)
    ]
    first = len(study.get_trials(deepcopy=False))  # trials numbered from here on are this run's
    supervisor = _Supervisor(study, job, procs, watcher, guard, stop, first)
    timeout = job.spec.budget.timeout
    deadline = time.monotonic() + timeout if timeout else math.inf

    def should_stop() -> bool:
        return stop.is_set() or guard.tripped or time.monotonic() > deadline

    try:
        if objective is None:
            _start(ctx, procs)
        else:
            # The other workers start from the supervisor's thread: a first start waits for the
            # fork server's imports, and the parent tunes meanwhile.
            with supervisor.in_background(before=partial(_start, ctx, procs, cancelled=stop.is_set)):
                _run_here(study, objective, job, partial(_locked, gate), should_stop)
        supervisor.until_stopped()
        if objective is not None and not should_stop() and _retries_left(study, job):
            # A worker died near the end: its trial held a slot of the budget until it was
            # repaired, after every other worker had stopped, and its retry waits. Finish here.
            _run_here(study, objective, job, partial(_locked, gate), should_stop)
    except BaseException as exc:
        _stop_processes(procs, stop)
        if isinstance(exc, KeyboardInterrupt):
            _repair_interrupted(study, {proc.pid for proc in procs if proc.pid}, first)
            watcher.poll()
        raise
    finally:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                proc.kill()
    failed = [
        proc
        for proc in procs
        if proc.pid is not None and proc.exitcode not in (0, _EXIT_TOO_MANY_FAILURES, _EXIT_INTERRUPTED)
    ]
    _check_failures(study, job, [f"exit code {proc.exitcode}" for proc in failed], n, guard)


def _retries_left(study: optuna.Study, job: WorkerJob) -> bool:
    """Budget is left and a trial waits (the queued retry of a repaired one)."""
    from optuna.trial import TrialState

    from tuner.runner import budget_used

    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return bool(waiting) and budget_used(study) < job.spec.budget.n_trials


def _settle_s() -> float:
    """How long after a worker's death its unnamed journal-file trials are known to be its own."""
    from tuner.storage import NAME_AFTER_S

    return 2 * NAME_AFTER_S + 0.5


class _Supervisor:
    """The parent's watch over its worker processes: progress and the failure guard, dead workers.

    It polls from a thread while the parent runs trials itself, then from the calling thread
    until every worker has exited.
    """

    def __init__(
        self,
        study: optuna.Study,
        job: WorkerJob,
        procs: Sequence[Any],
        watcher: _Watcher,
        guard: _FailureGuard,
        stop: Any,
        first: int,
    ) -> None:
        self.study, self.job, self.procs = study, job, procs
        self.watcher, self.guard, self.stop, self.first = watcher, guard, stop, first
        self.handled: set[int] = set()
        self.deaths: list[float] = []  # when workers died, until their unnamed trials are repaired

    def tick(self) -> None:
        from tuner.doctor import reap

        self.watcher.poll()
        if self.guard.tripped:
            self.stop.set()
        for proc in self.procs:
            if proc.exitcode not in (None, 0, _EXIT_TOO_MANY_FAILURES) and proc.pid not in self.handled:
                self.handled.add(proc.pid or 0)
                # A killed worker's trial would hold budget until a peer notices; repair it now.
                reap(self.study, heartbeat=self.job.heartbeat, pids=[proc.pid or 0])
                self.deaths.append(time.time())
        if self.deaths:
            self._repair_unnamed()

    def _repair_unnamed(self) -> None:
        """Repair the trials of dead workers that had not named themselves yet (journal files name late).

        Live workers name theirs within ``2 × NAME_AFTER_S`` of the start, so a trial of this run
        that started before a death and is still unnamed that long after it was the dead worker's.
        """
        from tuner.doctor import repair, running_trials

        settled = [t for t in self.deaths if time.time() > t + _settle_s()]
        if not settled:
            return
        latest = max(settled)
        orphans = [
            t
            for t in running_trials(self.study, heartbeat=None)
            if t.host is None and t.number >= self.first and t.started and t.started.timestamp() < latest
        ]
        if orphans:
            repair(self.study, orphans)
        self.deaths = [t for t in self.deaths if t not in settled]

    def until_stopped(self) -> None:
        from multiprocessing.connection import wait

        from tuner.storage import is_journal_file

        while any(proc.is_alive() for proc in self.procs):
            self.tick()
            wait([proc.sentinel for proc in self.procs if proc.is_alive()], timeout=_POLL_S)
        self.tick()
        if self.deaths and is_journal_file(self.study._storage):
            # A worker died moments ago, maybe before naming itself on its trial (journal files
            # name late): that trial can be told apart once the death settles. Returning before
            # would leave it RUNNING, holding a slot of the budget.
            deadline = max(self.deaths) + _settle_s() + 1.0
            while self.deaths and time.time() < deadline:
                time.sleep(_POLL_S / 5)
                self.tick()

    @contextlib.contextmanager
    def in_background(self, before: Callable[[], None]) -> Iterator[None]:
        """Call ``before`` then poll, in a thread, while the block runs; re-raise what the thread raised."""
        import threading

        done = threading.Event()
        failure: list[BaseException] = []

        def loop() -> None:
            try:
                before()
                while not done.wait(_POLL_S):
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
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    job: WorkerJob,
    gate: Callable[[], contextlib.AbstractContextManager[Any]],
    should_stop: Callable[[], bool],
) -> None:
    """The parent's share of the trials, as worker 0: one-thread model pools, a sampler seed of its own.

    Like a worker process it stops at its own streak of failures (the shared guard only sees
    trials when it polls); the other workers go on until their own streak or the shared guard
    stops them.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        _work(study, objective, job, 0, gate, should_stop)


def prestart(spec: StudySpec) -> None:
    """Start the fork server now, so that its imports overlap the parent's loading of data and study."""
    _ensure_fork_server(_context(spec))


def _ensure_fork_server(ctx: Any) -> bool:
    """Start the fork server (deaf to Ctrl-C, which would hit it mid-import) if ``ctx`` forks; True if it does."""
    if ctx.get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    with _deaf_to_ctrl_c():
        forkserver.ensure_running()
    return True


def _start(ctx: Any, procs: Sequence[Any], cancelled: Callable[[], bool] = lambda: False) -> None:
    """Start the workers so that a Ctrl-C meanwhile never hits one (or the fork server) mid-import.

    Workers not started yet when ``cancelled()`` turns true are never started.
    """
    from tuner.runner import hold_ctrl_c

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
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers, and only it receives Ctrl-C
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# What a worker imports before its first trial, imported once by the fork server instead of by
# every worker: the trial loop, data loading, the RDB storage with alembic (Optuna checks the
# schema version with it) and the scikit-learn modules the catalog builds on. The server skips
# modules that are not installed.
_PRELOAD = (
    "tuner.runner",
    "tuner.data",
    "tuner.splits",
    "tuner.fold_order",
    "optuna.storages._rdb.storage",
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


def _context(spec: StudySpec | None = None) -> Any:
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    # The fork server is a fresh interpreter that imports tuner once (no connection, no thread
    # yet) and forks each worker from that clean state: as safe as spawn, without paying the
    # imports per worker, and reused by later runs in the same process (with the modules of the
    # first run that started it).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([*_PRELOAD, *_model_library(spec)])
    return ctx


def _model_library(spec: StudySpec | None) -> list[str]:
    """The model's own library (xgboost, lightgbm), which takes a second to import."""
    from tuner.models import get_model

    if spec is None:
        return []
    try:
        requires = get_model(spec.model, label=spec.label, base_dir=spec.base_dir).requires
    except TunerError:
        return []  # build_context reports a bad model name; the fork server need not know it
    return [requires] if requires else []


def _process_main(payload: bytes, index: int, stop: Any, gate: Any, ignore_ctrl_c: bool = False) -> None:
    """Entry point of a worker process; runs nothing that the parent did not pickle into ``payload``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_ctrl_c else _interrupt_once)
    code = 0
    try:
        job: WorkerJob = pickle.loads(payload)
        code = _run_single_threaded(job, index, partial(_locked, gate), stop.is_set)
    except KeyboardInterrupt:
        code = _EXIT_INTERRUPTED
    sys.exit(code)


def _run_single_threaded(
    job: WorkerJob,
    index: int | str,
    gate: Callable[[], contextlib.AbstractContextManager[Any]] | None,
    should_stop: Callable[[], bool],
) -> int:
    """Run a worker with one-thread BLAS/OpenMP pools; return its exit code (0, or why it stopped)."""
    import optuna
    from threadpoolctl import threadpool_limits

    from tuner.runner import TooManyFailures

    optuna.logging.set_verbosity(job.log_level)
    try:
        with threadpool_limits(limits=1):
            run_worker(job, index=index, gate=gate, should_stop=should_stop)
    except TooManyFailures:
        return _EXIT_TOO_MANY_FAILURES
    except TunerError as exc:
        print(f"Error (worker {index}): {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


def _interrupt_once(signum: int, frame: Any) -> None:
    # The first Ctrl-C stops the trial; later ones must not break the worker while it marks it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _locked(lock: Any, timeout: float = _GATE_TIMEOUT_S) -> Iterator[None]:
    acquired = lock.acquire(timeout=timeout)
    if not acquired:
        _log.warning("worker gate busy for %.0f s (a worker died holding it?); going on without it", timeout)
    try:
        yield
    finally:
        if acquired:
            lock.release()


def _stop_processes(procs: Sequence[Any], stop: Any) -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
    try:
        stop.set()
        # Ctrl-C in a terminal reached the workers too (same process group); `kill -INT <parent>` did not.
        deadline = time.monotonic() + 1.0
        for proc in procs:
            if proc.pid is not None:
                proc.join(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs:
            if proc.is_alive() and proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + _STOP_GRACE_S
        for proc in procs:
            if proc.pid is None:
                continue  # never started
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    finally:
        signal.signal(signal.SIGINT, previous)


def _repair_interrupted(study: optuna.Study, pids: set[int], first: int) -> None:
    """Mark what the stopped workers left RUNNING as interrupted (no retry: Ctrl-C is no crash)."""
    from tuner.doctor import repair, running_trials

    # A worker stopped right after creating a trial may not have named itself on it yet.
    leftovers = [
        t for t in running_trials(study, heartbeat=None) if t.pid in pids or (t.host is None and t.number >= first)
    ]
    if leftovers:
        repair(study, leftovers, interrupted=True)


def _check_failures(study: optuna.Study, job: WorkerJob, failures: list[str], n: int, guard: _FailureGuard) -> None:
    from tuner.runner import budget_used

    if not failures or guard.tripped or budget_used(study) >= job.spec.budget.n_trials:
        return
    raise WorkerError(
        f"{job.spec.label}: {len(failures)} of {n} workers failed ({'; '.join(failures)}) before the budget of "
        f"{job.spec.budget.n_trials} trials was reached; their errors are printed above. Completed trials are "
        "kept in the storage; fix the cause and rerun to finish the budget."
    )


# --- Dask ------------------------------------------------------------------------------------


def _run_on_dask(
    study: optuna.Study, job: WorkerJob, n_jobs: int | None, address: str, watcher: _Watcher, guard: _FailureGuard
) -> None:
    try:
        from distributed import Client, Event, LocalCluster, wait
    except ModuleNotFoundError:
        raise TunerError(
            "--dask needs dask.distributed, which is not installed. Install it with `pip install 'tuner[dask]'`."
        ) from None
    if ":memory:" in job.url:
        raise TunerError(
            f"{job.spec.label}: an in-memory storage cannot be shared with Dask workers; use a SQLite file "
            "(one machine) or a PostgreSQL/MySQL/Redis URL."
        )
    if address != "local" and job.url.startswith(("sqlite:", "journal:")):
        _log.warning("storage %s is a local file: every Dask worker must run on this machine", redact(job.url))
    _job_bytes(job)  # the same picklability check, with the same message, as for processes
    cluster = None
    try:
        if address == "local":
            cluster = LocalCluster(
                n_workers=n_jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        client = Client(cluster if cluster is not None else address, timeout=30)
    except OSError as exc:
        raise TunerError(
            f"cannot reach the Dask scheduler at {address!r}: {exc}. Check the address (tcp://host:8786) and that "
            "the scheduler runs, or use `--dask local`."
        ) from None
    token = uuid.uuid4().hex[:12]
    with contextlib.ExitStack() as stack:
        if cluster is not None:
            stack.enter_context(cluster)
        stack.enter_context(client)
        n = n_jobs or sum(client.nthreads().values())
        pids = set(client.run(os.getpid).values()) if cluster is not None else set()
        first = len(study.get_trials(deepcopy=False))
        stop = Event(f"tuner-stop-{token}", client=client)
        futures = [
            client.submit(_dask_task, job, index, token, key=f"tuner-{job.spec.name}-{token}-{index}", pure=False)
            for index in range(n)
        ]
        try:
            while not all(future.done() for future in futures):
                watcher.poll()
                if guard.tripped:
                    stop.set()
                time.sleep(_POLL_S)
            watcher.poll()
        except KeyboardInterrupt:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                stop.set()
                wait(futures, timeout=_STOP_GRACE_S)
            finally:
                signal.signal(signal.SIGINT, previous)
            _repair_interrupted(study, pids, first)
            watcher.poll()
            raise
        failures = [_dask_failure(future) for future in futures if future.status == "error"]
    _check_failures(study, job, [f for f in failures if f], n, guard)


def _dask_task(job: WorkerJob, index: int, token: str) -> int:
    """One worker loop as a Dask task; the gate and the stop flag live on the scheduler."""
    import optuna
    from distributed import Event, Lock
    from threadpoolctl import threadpool_limits

    stop = Event(f"tuner-stop-{token}")
    gate = Lock(f"tuner-gate-{token}")
    optuna.logging.set_verbosity(job.log_level)
    with threadpool_limits(limits=1):
        return run_worker(job, index=index, gate=partial(_locked, gate), should_stop=stop.is_set)


def _dask_failure(future: Any) -> str | None:
    from tuner.runner import TooManyFailures

    error = future.exception()
    if isinstance(error, TooManyFailures):
        return None
    message = f"task {future.key}: {type(error).__name__}: {error}"
    print(f"Error ({message})", file=sys.stderr, flush=True)
    return message
