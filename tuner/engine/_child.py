"""The entry point of a local worker process, kept light to import.

A spawned worker imports this module before it can handle Ctrl-C, so it imports only the
standard library here; the trial loop (and scikit-learn with it) comes once the handler is set.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import signal
import sys
from collections.abc import Iterator
from functools import partial
from typing import Any

_log = logging.getLogger("tuner")
# A worker killed while holding the gate would block the others; after this they go on without it.
GATE_TIMEOUT_S = 30.0
EXIT_INTERRUPTED = 130


def process_main(payload: bytes, index: int, stop: Any, gate: Any, ignore_ctrl_c: bool = False) -> None:
    """Entry point of a worker process; runs nothing that the parent did not pickle into ``payload``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_ctrl_c else _interrupt_once)
    code = 0
    try:
        # Start-up time: the worker handles Ctrl-C before it imports the trial loop and scikit-learn.
        from tuner.engine._worker import run_single_threaded

        job = pickle.loads(payload)
        code = run_single_threaded(job, index, partial(locked, gate), stop.is_set)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)


def _interrupt_once(signum: int, frame: Any) -> None:
    # The first Ctrl-C stops the trial; later ones must not break the worker while it marks it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


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
