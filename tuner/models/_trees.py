"""Bagged tree ensembles: random forest and extra trees.

Against overfitting: lower ``max_depth``, raise ``min_samples_leaf``, lower ``max_features``.
Against underfitting: the opposite, and more ``n_estimators`` only reduces variance.
"""

from __future__ import annotations

from typing import Any

from tuner.models._registry import Knob, ModelEntry, cat, flt, integer

_COMMON = {
    "n_estimators": integer(50, 400, log=True),
    "max_depth": integer(2, 32, log=True),
    "min_samples_leaf": integer(1, 20, log=True),
    "max_features": flt(0.1, 1.0),
}


_KNOBS = (
    Knob("max_depth", "lower", "tree depth"),
    Knob("min_samples_leaf", "higher", "rows a leaf needs"),
    Knob("max_features", "lower", "share of features per split"),
)


def _factory(name: str) -> Any:
    def build(**params: Any) -> Any:
        from sklearn import ensemble  # start-up time: a study imports only its own model family

        return getattr(ensemble, name)(**params)

    build.__name__ = name
    return build


ENTRIES = [
    ModelEntry(
        name=f"{key}",
        description=text,
        classifier=_factory(f"{cls}Classifier"),
        regressor=_factory(f"{cls}Regressor"),
        classifier_space={**_COMMON, "class_weight": cat(None, "balanced", "balanced_subsample")},
        regressor_space=_COMMON,
        knobs=_KNOBS,
    )
    for key, cls, text in (
        ("random_forest", "RandomForest", "Random forest (bagged deep trees)"),
        ("extra_trees", "ExtraTrees", "Extremely randomised trees"),
    )
]
