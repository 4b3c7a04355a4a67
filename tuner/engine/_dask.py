"""Workers as tasks on a Dask cluster: each task is one worker loop on the shared storage."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
import uuid
from functools import partial
from typing import Any

import optuna

from tuner.engine._child import locked
from tuner.engine._loop import FailureGuard
from tuner.engine._supervise import POLL_S, STOP_GRACE_S, Watcher, check_failures, job_bytes, repair_interrupted
from tuner.engine._worker import WorkerJob, run_worker
from tuner.errors import TooManyFailures, TunerError
from tuner.store import StoredStudy, kind_of, redact

_log = logging.getLogger("tuner")


def run_on_dask(
    stored: StoredStudy, job: WorkerJob, n_jobs: int | None, address: str, watcher: Watcher, guard: FailureGuard
) -> None:
    """Run ``n_jobs`` worker tasks (default: one per thread of the cluster) until the budget is reached.

    ``address`` is ``"local"`` for a LocalCluster of ``n_jobs`` processes here, or a scheduler address.

    Raises:
        KeyboardInterrupt: on Ctrl-C, after the tasks stopped and no trial of theirs is RUNNING.
        WorkerError: when tasks failed and the budget was not reached.
    """
    try:
        from distributed import Client, Event, LocalCluster, wait  # optional extra: tuner[dask]
    except ModuleNotFoundError:
        raise TunerError(
            "--dask needs dask.distributed, which is not installed. Install it with `pip install 'tuner[dask]'`."
        ) from None
    if kind_of(job.url) == "memory" or ":memory:" in job.url:
        raise TunerError(
            f"{job.spec.label}: an in-memory storage cannot be shared with Dask workers; use a SQLite file "
            "(one machine) or a PostgreSQL/MySQL/Redis URL."
        )
    if address != "local" and kind_of(job.url) in ("sqlite", "journal"):
        _log.warning("storage %s is a local file: every Dask worker must run on this machine", redact(job.url))
    job_bytes(job)  # the same picklability check, with the same message, as for processes
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
    study = stored.study
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
                time.sleep(POLL_S)
            watcher.poll()
        except KeyboardInterrupt:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                stop.set()
                wait(futures, timeout=STOP_GRACE_S)
            finally:
                signal.signal(signal.SIGINT, previous)
            repair_interrupted(stored, pids, first)
            watcher.poll()
            raise
        failures = [_dask_failure(future) for future in futures if future.status == "error"]
    check_failures(stored, job, [f for f in failures if f], n, guard)


def _dask_task(job: WorkerJob, index: int, token: str) -> int:
    """One worker loop as a Dask task; the gate and the stop flag live on the scheduler."""
    from distributed import Event, Lock  # optional extra: tuner[dask]

    stop = Event(f"tuner-stop-{token}")
    gate = Lock(f"tuner-gate-{token}")
    optuna.logging.set_verbosity(job.log_level)
    return run_worker(job, index=index, gate=partial(locked, gate), should_stop=stop.is_set)


def _dask_failure(future: Any) -> str | None:
    error = future.exception()
    if isinstance(error, TooManyFailures):
        return None
    message = f"task {future.key}: {type(error).__name__}: {error}"
    print(f"Error ({message})", file=sys.stderr, flush=True)
    return message
