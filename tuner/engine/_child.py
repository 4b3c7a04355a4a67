"""The entry point of a local worker process, kept light to import.

A spawned worker imports this module before it can handle Ctrl-C, so it imports only the
standard library here; the trial loop (and scikit-learn with it) comes once the handler is set.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from multiprocessing.connection import wait
from typing import Any

_log = logging.getLogger("tuner")
# A worker killed while holding the gate would block the others; after this they go on without it.
GATE_TIMEOUT_S = 30.0
EXIT_INTERRUPTED = 130
# How long a worker whose parent is gone gets to mark its running trial before it exits regardless.
ORPHAN_GRACE_S = 30.0


def process_main(payload: bytes, index: int, stop: Any, gate: Any, ignore_ctrl_c: bool = False) -> None:
    """Entry point of a worker process; runs nothing that the parent did not pickle into ``payload``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_ctrl_c else _interrupt_once)
    # The parent stops its workers with SIGTERM, which reaches them even when Ctrl-C is ignored
    # (nohup, a background job); so may a user or a service manager. Either way the running trial
    # is marked interrupted, as on Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt_once)
    _watch_parent()
    code = 0
    try:
        # Start-up time: the worker handles Ctrl-C before it imports the trial loop and scikit-learn.
        from tuner.engine._worker import run_process

        job = pickle.loads(payload)
        code = run_process(job, index, partial(locked, gate), stop.is_set)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)


def _interrupt_once(signum: int, frame: Any) -> None:
    # The first Ctrl-C or SIGTERM stops the trial; later ones must not break the worker while it marks it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _watch_parent() -> None:
    """Stop this worker when the run's parent process ends, however it ends (kill -9 included).

    The process to watch is the parent that started the run, not this process's own parent: a
    worker comes from the fork server, which outlives the run's parent as long as any worker runs
    (each worker holds the server's "alive" pipe). So ``prctl(PR_SET_PDEATHSIG)`` would never fire
    here. multiprocessing hands every child the read end of a pipe whose write end only the real
    parent holds (``parent_process().sentinel``, for fork-server and spawned workers alike): it
    reads end-of-file the moment that parent is gone.
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    threading.Thread(target=_stop_when_gone, args=(parent,), name="tuner-parent-watch", daemon=True).start()


def _stop_when_gone(parent: Any) -> None:
    wait([parent.sentinel])
    with contextlib.suppress(OSError):  # the parent's terminal or pipe may be gone too
        print(
            f"tuner worker process {os.getpid()}: its parent process {parent.pid} is gone; stopping, and marking "
            "its running trial as interrupted",
            file=sys.stderr,
            flush=True,
        )
    # Handled like Ctrl-C in the main thread: the trial is marked and the worker exits.
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_GRACE_S)
    os._exit(EXIT_INTERRUPTED)  # stuck while marking (an unreachable storage): no orphan runs on


@contextlib.contextmanager
def locked(lock: Any, timeout: float = GATE_TIMEOUT_S) -> Iterator[None]:
    """Hold ``lock`` (the workers' shared gate), or go on without it after ``timeout`` seconds."""
    acquired = lock.acquire(timeout=timeout)
    if not acquired:
        _log.warning("worker gate busy for %.0f s (a worker died holding it?); going on without it", timeout)
    try:
        yield
    finally:
        if acquired:
            lock.release()
