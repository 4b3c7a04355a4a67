"""The storage contract: each storage-facing behaviour is written once and runs over every backend.

The ``backend`` fixture yields each kind of ``backends.STORAGE_MODES`` in turn (SQLite file,
journal file, PostgreSQL, MariaDB, Redis), fresh for each test and removed afterwards, as Optuna
runs its ``StorageTestCase`` over ``STORAGE_MODES``. A test that also holds for the in-memory
storage says so with ``@pytest.mark.parametrize("backend", backend_params("memory", *STORAGE_MODES),
indirect=True)``. Where a backend cannot do what the test checks, the test says why with
``pytest.skip`` or ``pytest.xfail``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import STORAGE_MODES, Backend, backend_params, supply
from support import Study


@pytest.fixture(params=backend_params(*STORAGE_MODES))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn, empty."""
    with supply(request.param, tmp_path) as supplied:
        yield supplied


@pytest.fixture
def study_on(backend: Backend, make_study: Callable[..., Study]) -> Callable[..., Study]:
    """``study_on(objective, n_trials=…, budget=…)``: ``make_study`` with the study stored on ``backend``."""

    def make(objective: str, *, n_trials: int, **options: Any) -> Study:
        return make_study(objective, n_trials=n_trials, storage=backend.storage, **options)

    return make
