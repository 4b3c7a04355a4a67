"""One worker: join a study and run the trial loop until its budget is reached.

``tuner worker``, each local worker process and each Dask task is one of these, on its own
connection to the study's storage; the storage is all that workers share.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from tuner import _optuna
from tuner.engine._budget import Budget, counted
from tuner.engine._loop import FailureGuard, LoopResult, run_trials
from tuner.engine._study import open_study
from tuner.errors import TooManyFailures, TunerError, sentence
from tuner.objective import make_objective
from tuner.search import build_sampler
from tuner.seeds import seed_for
from tuner.setup import build
from tuner.spec import StudySpec, load_spec
from tuner.store import DEFAULT_HEARTBEAT, Heartbeat, StoredStudy, load_stored, resolve_url, storage_url
from tuner.threads import limited, model_threads

Gate = Callable[[], AbstractContextManager[Any]]
# Exit code of a worker process stopped by its failure guard; the parent reports that itself.
EXIT_TOO_MANY_FAILURES = 3


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
    # Threads per model fit, decided by the run for its local workers; None: the worker decides
    # (`tuner worker` and Dask tasks do not know how many workers share their machine).
    threads: int | None = None

    def model_threads(self) -> int:
        """This worker's threads per model fit (see :mod:`tuner.threads`)."""
        return self.threads if self.threads is not None else model_threads(self.spec.budget.threads, None)


@dataclass(frozen=True)
class WorkerSummary:
    """What ``tuner worker`` reports when it stops: its trials, and the study's."""

    study: str
    url: str
    ran: int
    done: int
    running: int
    n_trials: int


def join_study(
    spec: str | Path,
    *,
    storage: str | None = None,
    overrides: Sequence[str] = (),
    study_name: str | None = None,
    timeout: float | None = None,
    heartbeat: Heartbeat | None = DEFAULT_HEARTBEAT,
    allow_space_change: bool = False,
) -> WorkerSummary:
    """``tuner worker``: join the study a spec file describes, run trials until its budget is reached.

    Args:
        spec: The study file.
        storage: A storage value (URL, file, spec file or folder) replacing the spec's storage.
        overrides: ``"key.path=value"`` strings applied to the spec.
        study_name: Replaces the spec's ``name``.
        timeout: Seconds after which this worker starts no trial.
        heartbeat: How this worker proves it is alive.
        allow_space_change: Join even though the stored search space differs.

    Returns:
        What this worker ran, and how far the whole study is.
    """
    loaded = load_spec(spec, overrides=overrides).replace(
        name=study_name, storage=storage_url(storage) if storage else None, timeout=timeout
    )
    url = resolve_url(loaded.storage, base_dir=loaded.base_dir)
    job = WorkerJob(
        spec=loaded,
        url=url,
        max_failures=loaded.budget.max_failures,
        heartbeat=heartbeat,
        allow_space_change=allow_space_change,
        log_level=optuna.logging.get_verbosity(),
    )
    ran = run_worker(job)
    trials = load_stored(loaded.name, url).study.get_trials(deepcopy=False)
    done = counted(trials)
    return WorkerSummary(loaded.name, url, ran, done, counted(trials, running=True) - done, loaded.budget.n_trials)


def run_worker(
    job: WorkerJob,
    *,
    index: int | str | None = None,
    gate: Gate | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Join the study in ``job`` and run trials until its global budget is reached; return how many ran here.

    Every worker runs this: ``tuner worker`` (through :func:`join_study`), local worker processes
    and Dask tasks. It creates the study if it does not exist yet, repairs zombie trials, and seeds
    its sampler from the study seed, ``index`` (default: host and PID) and its first trial (see
    :func:`seed_sampler`), so workers differ.

    Raises:
        TooManyFailures: after ``job.max_failures`` failed trials in a row (in this worker).
        TunerError: for an invalid spec, data or storage.
    """
    spec = job.spec
    context = build(spec, data=job.data, threads=job.model_threads())
    objective = make_objective(context, job.objective)
    stored = open_study(spec, context, job.url, allow_space_change=job.allow_space_change, heartbeat=job.heartbeat)
    label = index if index is not None else f"{socket.gethostname()}:{os.getpid()}"
    outcome, guard = work(stored, objective, job, label, gate, should_stop)
    if guard.tripped:
        raise too_many_failures(spec, guard)
    return outcome.ran


def work(
    stored: StoredStudy,
    objective: Callable[[optuna.Trial], Any],
    job: WorkerJob,
    label: int | str,
    gate: Gate | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[LoopResult, FailureGuard]:
    """One worker's trial loop on an open study: its own sampler seed and its own failure streak, its
    models' OpenMP and BLAS pools capped at its share of the cores."""
    spec = job.spec
    guard = FailureGuard(job.max_failures)
    with limited(job.model_threads()):
        outcome = run_trials(
            stored,
            objective,
            budget=Budget(spec.budget.n_trials),
            timeout=spec.budget.timeout,
            guard=guard,
            heartbeat=job.heartbeat,
            gate=gate,
            should_stop=should_stop,
            first_trial=seed_sampler(stored, spec, label, shared=True),
        )
    return outcome, guard


def seed_sampler(
    stored: StoredStudy, spec: StudySpec, label: int | str | None, *, shared: bool
) -> Callable[[int], None]:
    """Give the study its sampler; return the hook that seeds it once the loop's first trial exists.

    The seed derives from the study seed, the number of the first trial the loop runs and the
    worker's ``label`` (None for a sequential run). The storage hands each trial number to one
    process only, so processes on one study sample differently, even two sequential runs started
    at the same instant. A process alone on a study draws the same trials from the same stored
    state: a run from scratch repeats, and a resumed run starts at another number, so it does not
    propose the first run's configurations again. Until the first trial exists, the sampler is
    seeded from the number a new trial would get (only a grid past its first pass draws then).
    """

    trials = stored.study.get_trials(deepcopy=False)
    # What the study was actually given, not what its spec would give a new study: a study made by
    # `tuner worker` has no warm starts, and a narrowed space can merge portfolio configurations.
    warm_starts = sum(_optuna.ENQUEUED in t.system_attrs for t in trials)

    def build(number: int) -> optuna.samplers.BaseSampler:
        parts = ("sampler", number) if label is None else ("sampler", number, label)
        return build_sampler(
            spec.sampler, seed_for(spec.seed, *parts), label=spec.label, shared=shared, warm_starts=warm_starts
        )

    expected = len(trials)
    stored.study.sampler = build(expected)

    def first_trial(number: int) -> None:
        if number != expected:
            stored.study.sampler = build(number)

    return first_trial


def too_many_failures(spec: StudySpec, guard: FailureGuard) -> TooManyFailures:
    return TooManyFailures(
        f"{spec.label}: {guard.limit} trials in a row failed, so the study stopped. The first error was: "
        f"{sentence(guard.first_error or 'unknown')} Completed trials are kept; fix the cause and rerun to finish "
        "the budget."
    )


def run_process(job: WorkerJob, index: int | str, gate: Gate | None, should_stop: Callable[[], bool]) -> int:
    """Run a local worker process's loop; return its exit code (0, or why it stopped)."""
    optuna.logging.set_verbosity(job.log_level)
    try:
        run_worker(job, index=index, gate=gate, should_stop=should_stop)
    except TooManyFailures:
        return EXIT_TOO_MANY_FAILURES
    except TunerError as exc:
        print(f"Error (worker {index}): {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0
