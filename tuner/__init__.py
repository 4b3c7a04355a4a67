"""tuner: hyperparameter studies from a small YAML file, on Optuna.

The public API::

    import tuner
    result = tuner.run_study("studies/quickstart.yaml", n_trials=20)
    print(result.best_value, result.best_params)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from tuner._version import __version__
from tuner.errors import TunerError

if TYPE_CHECKING:
    from tuner.models import register_model
    from tuner.objectives import Objective, ObjectiveContext
    from tuner.refit import RefitResult, refit_best
    from tuner.report import compare
    from tuner.runner import StudyInterrupted, StudyResult, run_study
    from tuner.spec import StudySpec, load_spec

# Imported on first use, so that `tuner --version`, `--help` and worker start-up do not pay for
# scikit-learn, Optuna and pandas before they need them.
_LAZY = {
    "register_model": "tuner.models",
    "Objective": "tuner.objectives",
    "ObjectiveContext": "tuner.objectives",
    "RefitResult": "tuner.refit",
    "refit_best": "tuner.refit",
    "compare": "tuner.report",
    "StudyInterrupted": "tuner.runner",
    "StudyResult": "tuner.runner",
    "run_study": "tuner.runner",
    "StudySpec": "tuner.spec",
    "load_spec": "tuner.spec",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Objective",
    "ObjectiveContext",
    "RefitResult",
    "StudyInterrupted",
    "StudyResult",
    "StudySpec",
    "TunerError",
    "__version__",
    "compare",
    "load_spec",
    "refit_best",
    "register_model",
    "run_study",
]
