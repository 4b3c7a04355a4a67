"""Support vector machines (RBF or linear kernel) on standardised features.

``C`` is the inverse regularisation strength (large C overfits); a large RBF ``gamma`` overfits,
a small one underfits. ``gamma`` is only searched for the RBF kernel.
"""

from __future__ import annotations

from typing import Any

from tuner.models._registry import Knob, ModelEntry, cat, flt


def _svc(**params: Any) -> Any:
    from sklearn.svm import SVC  # start-up time: a study imports only its own model family

    return SVC(**params)


def _svr(**params: Any) -> Any:
    from sklearn.svm import SVR  # start-up time: a study imports only its own model family

    return SVR(**params)


_KERNEL = {
    "C": flt(1e-3, 1e3, log=True),
    "kernel": cat("rbf", "linear"),
    "gamma": flt(1e-4, 1.0, log=True).model_copy(update={"when": {"kernel": "rbf"}}),
}

ENTRIES = [
    ModelEntry(
        name="svm",
        description="Support vector machine (RBF/linear) on standardised features",
        classifier=_svc,
        regressor=_svr,
        classifier_space={**_KERNEL, "class_weight": cat(None, "balanced")},
        regressor_space={**_KERNEL, "epsilon": flt(1e-3, 1.0, log=True)},
        scale=True,
        knobs=(Knob("C", "lower", "inverse L2 strength"), Knob("gamma", "lower", "RBF kernel width (inverse)")),
    )
]
