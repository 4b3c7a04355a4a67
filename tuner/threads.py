"""How many threads a model may use: the one thread policy, for every path that fits models.

Trials run in parallel as processes (models hold the GIL), and inside a fit OpenMP
(HistGradientBoosting, XGBoost, LightGBM) and BLAS start threads of their own. Threads × workers
beyond the cores costs far more than it gains: OpenMP threads wait for each other at every
parallel step, so on busy cores a fit with one thread too many runs several times slower (see
docs/benchmarks.md). So each worker gets its share of the cores that are free when the run
starts, decided once here and carried as a number:

- ``auto``: ``(usable cores − busy cores) // workers``, at least 1. Usable cores are those this
  process may run on (CPU affinity, a container's CPU quota); busy cores are the one-minute load
  average, rounded, taken when the run starts. A worker that does not know how many others share
  its machine (``tuner worker``, a Dask task) takes 1.
- an int: that many threads per worker, whatever the machine (the spec's ``budget.threads``).

The number reaches a fit two ways: :func:`limited` caps OpenMP and BLAS pools around the trial
loop or the refit (threadpoolctl), and the catalog passes it as ``n_jobs`` to the libraries that
take one (XGBoost, LightGBM, scikit-learn's forests and neighbours). Results do not depend on it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

Threads = Literal["auto"] | int
_OMP_ENV = "OMP_NUM_THREADS"

# cgroup v2, then v1: a container's CPU quota, which affinity does not show.
_QUOTA_FILES = (
    (Path("/sys/fs/cgroup/cpu.max"), None),
    (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")),
)


def usable_cores() -> int:
    """The CPUs this process may run on: its affinity mask, capped by a container's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    quota = _cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def _cpu_quota() -> float | None:
    """CPUs' worth of time the cgroup may use per period, or None without a limit."""
    for quota_file, period_file in _QUOTA_FILES:
        try:
            text = quota_file.read_text().split()
            if period_file is not None:
                text.append(period_file.read_text().strip())
        except OSError:
            continue
        if len(text) < 2 or text[0] == "max" or int(text[0]) <= 0:
            return None
        return int(text[0]) / int(text[1])
    return None


def busy_cores() -> int:
    """Cores that other work keeps busy: the one-minute load average, rounded (0 where unknown)."""
    try:
        return round(os.getloadavg()[0])
    except (AttributeError, OSError):  # Windows
        return 0


def model_threads(setting: Threads, workers: int | None, *, cores: int | None = None, busy: int | None = None) -> int:
    """Threads per model fit for ``workers`` worker processes on this machine (None: unknown).

    Args:
        setting: ``"auto"`` or a thread count (the spec's ``budget.threads``).
        workers: Worker processes of this run on this machine; None when this worker cannot know
            how many others share the machine (``tuner worker``, Dask tasks).
        cores: Usable cores (default: :func:`usable_cores`).
        busy: Cores busy with other work (default: :func:`busy_cores`).

    Example:
        >>> model_threads("auto", 2, cores=8, busy=0)
        4
        >>> model_threads("auto", 1, cores=8, busy=6)
        2
    """
    if setting != "auto":
        return int(setting)
    if workers is None:
        return 1
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(1, (cores - max(0, busy)) // max(1, workers))


@contextlib.contextmanager
def limited(threads: int) -> Iterator[None]:
    """Cap OpenMP and BLAS thread pools at ``threads`` inside the block (this thread's OpenMP, all BLAS).

    threadpoolctl caps the libraries loaded already. A model's library is often loaded only by the
    first trial (scikit-learn's OpenMP runtime with HistGradientBoosting, XGBoost's own): the
    environment variable covers those, since an OpenMP runtime reads it when it loads.
    """
    # start-up time: threadpoolctl is imported by the processes that fit models, not by `tuner --help`.
    from threadpoolctl import threadpool_limits

    previous = os.environ.get(_OMP_ENV)
    os.environ[_OMP_ENV] = str(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if previous is None:
            os.environ.pop(_OMP_ENV, None)
        else:
            os.environ[_OMP_ENV] = previous
