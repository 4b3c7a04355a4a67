"""tuner: hyperparameter studies from a small YAML file, on Optuna.

The public API::

    import tuner
    result = tuner.run_study("studies/quickstart.yaml", n_trials=20)
    print(result.best_value, result.best_params)

Everything else in the package is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports
from tuner._version import __version__
from tuner.errors import TunerError

if TYPE_CHECKING:
    from tuner.engine import StudyInterrupted, StudyResult, run_study
    from tuner.errors import TooManyFailures
    from tuner.estimator import TunerSearchCV
    from tuner.modelfile import LoadedModel, load_model
    from tuner.models import register_model
    from tuner.objective import Objective
    from tuner.refit import RefitResult, refit_best
    from tuner.report import compare
    from tuner.setup import ObjectiveContext, StudyContext
    from tuner.spec import StudySpec, load_spec
    from tuner.store import StudySnapshot, read_study

# Imported on first use, so that `tuner --version`, `--help` and worker start-up do not pay for
# scikit-learn, Optuna and pandas before they need them.
_LAZY = {
    "StudyInterrupted": "tuner.engine",
    "StudyResult": "tuner.engine",
    "run_study": "tuner.engine",
    "LoadedModel": "tuner.modelfile",
    "load_model": "tuner.modelfile",
    "register_model": "tuner.models",
    "Objective": "tuner.objective",
    "RefitResult": "tuner.refit",
    "refit_best": "tuner.refit",
    "compare": "tuner.report",
    "ObjectiveContext": "tuner.setup",
    "StudyContext": "tuner.setup",
    "StudySpec": "tuner.spec",
    "load_spec": "tuner.spec",
    "StudySnapshot": "tuner.store",
    "read_study": "tuner.store",
    "TunerSearchCV": "tuner.estimator",
    "TooManyFailures": "tuner.errors",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "LoadedModel",
    "Objective",
    "ObjectiveContext",
    "RefitResult",
    "StudyContext",
    "StudyInterrupted",
    "StudyResult",
    "StudySnapshot",
    "StudySpec",
    "TooManyFailures",
    "TunerError",
    "TunerSearchCV",
    "__version__",
    "compare",
    "load_model",
    "load_spec",
    "read_study",
    "refit_best",
    "register_model",
    "run_study",
]
