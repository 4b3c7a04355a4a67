"""tuner: hyperparameter studies from a small YAML file, on Optuna.

The public API::

    import tuner
    result = tuner.run_study("studies/quickstart.yaml", n_trials=20)
    print(result.best_value, result.best_params)
"""

from __future__ import annotations

from tuner._version import __version__
from tuner.errors import TunerError
from tuner.models import register_model
from tuner.objectives import Objective, ObjectiveContext
from tuner.refit import RefitResult, refit_best
from tuner.report import compare
from tuner.runner import StudyInterrupted, StudyResult, run_study
from tuner.spec import StudySpec, load_spec

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
