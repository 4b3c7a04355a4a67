"""Opening a fresh storage: a run, the dashboard, readers and workers may all create the same new schema at
once, each from its own process; none may fail."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_processes_opening_one_fresh_storage_at_once_all_succeed(backend):
    code = f"from tuner.store import open_storage; open_storage({backend.url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
