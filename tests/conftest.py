"""Shared fixtures: tiny specs written to a temp folder, and the CLI run in-process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tuner.cli import main

# A small, fast study: logistic regression on breast_cancer, 3 folds.
BASE_SPEC: dict[str, Any] = {
    "name": "tiny",
    "data": {"source": "sklearn:breast_cancer"},
    "model": "logistic",
    "metric": "roc_auc",
    "cv": {"scheme": "stratified", "folds": 3},
    "sampler": {"name": "tpe"},
    "pruner": "none",
    "budget": {"n_trials": 4},
    "seed": 7,
}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """``write_spec(changes, filename)`` writes BASE_SPEC updated with ``changes`` (None deletes a key)."""

    def write(changes: dict[str, Any] | None = None, filename: str = "study.yaml") -> Path:
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(_merge(BASE_SPEC, changes or {}), sort_keys=False))
        return path

    return write


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
