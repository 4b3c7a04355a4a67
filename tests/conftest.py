"""Shared fixtures: tiny specs written to a temp folder, the CLI run in-process, studies with fast
custom objectives, and ``python -m tuner`` processes that never outlive their test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import PATIENCE_S, Study, start_tuner, write_spec_file
from support import make_study as _make_study

from tuner import run_study
from tuner.cli import main


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """``write_spec(changes, filename)`` writes BASE_SPEC updated with ``changes`` (None deletes a key)."""

    def write(changes: dict[str, Any] | None = None, filename: str = "study.yaml") -> Path:
        return write_spec_file(tmp_path, changes, filename)

    return write


@pytest.fixture(scope="session", autouse=True)
def _own_model_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Refit and predict sign and check with one key of the test session (like one machine's), never the
    user's own; session-wide, so module fixtures that refit before any test runs use it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        patch.delenv("TUNER_MODEL_KEY", raising=False)
        yield


@pytest.fixture(scope="session")
def holdout_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tuned study of the tiny spec with a quarter of the rows held out, shared by the refit, model-file
    and stored-spec tests (each writes its own files)."""
    spec = write_spec_file(tmp_path_factory.mktemp("refit"), {"cv": {"holdout_test": 0.25}, "sampler": None})
    run_study(spec)
    return spec


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``tuner ARGS`` in-process; returns exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def fresh_imports(tmp_path: Path) -> Iterator[None]:
    """Forget modules imported from ``tmp_path`` (custom objectives/models), so the next test's
    module of the same name is imported from its own folder, not served from ``sys.modules``."""
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """register_model writes to a copy of the model catalog, dropped after the test."""
    from tuner.models import _registry as registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture
def make_study(tmp_path: Path) -> Callable[..., Study]:
    """``make_study(objective, n_trials=…, storage=…, budget=…)``: a spec in ``tmp_path`` whose objective is
    one of ``support.OBJECTIVES`` (iris data, a random sampler; each trial takes milliseconds)."""

    def make(objective: str, *, n_trials: int, folder: Path | None = None, **options: Any) -> Study:
        return _make_study(folder or tmp_path, objective, n_trials=n_trials, **options)

    return make


@pytest.fixture
def tuner_process() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``tuner_process(*args, env=…)`` starts ``python -m tuner ARGS`` in a session (and process group) of its
    own, like a command typed in a terminal; whatever of it still runs when the test ends is killed, its
    workers too (they hold its output pipes), even when the parent is gone already."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: Any, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = start_tuner(*map(str, args), env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=PATIENCE_S)
