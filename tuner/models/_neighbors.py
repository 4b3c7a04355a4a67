"""k-nearest neighbours on standardised features.

Small ``n_neighbors`` overfits (memorises noise); large ``n_neighbors`` underfits.
"""

from __future__ import annotations

from typing import Any

from tuner.models._registry import Knob, ModelEntry, cat, integer


def _knn(kind: str) -> Any:
    def build(**params: Any) -> Any:
        from sklearn import neighbors  # start-up time: a study imports only its own model family

        return getattr(neighbors, f"KNeighbors{kind}")(**params)

    return build


_SPACE = {"n_neighbors": integer(1, 50, log=True), "weights": cat("uniform", "distance"), "p": cat(1, 2)}

ENTRIES = [
    ModelEntry(
        name="knn",
        description="k-nearest neighbours on standardised features",
        classifier=_knn("Classifier"),
        regressor=_knn("Regressor"),
        classifier_space=_SPACE,
        regressor_space=_SPACE,
        scale=True,
        knobs=(Knob("n_neighbors", "higher", "neighbours averaged"),),
    )
]
