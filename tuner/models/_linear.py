"""Linear models: logistic regression (classification), ridge and elastic net (regression).

Regularisation knobs: ``C`` (logistic, smaller = stronger), ``alpha`` (ridge / elastic net, larger =
stronger), ``l1_ratio`` (elastic net: 1 = lasso, sparse; 0 = ridge).
"""

from __future__ import annotations

from typing import Any

from tuner.models._registry import Knob, ModelEntry, cat, flt


def _logistic(**params: Any) -> Any:
    from sklearn.linear_model import LogisticRegression  # start-up time: a study imports only its own model family

    return LogisticRegression(**{"max_iter": 2000, **params})


def _ridge(**params: Any) -> Any:
    from sklearn.linear_model import Ridge  # start-up time: a study imports only its own model family

    return Ridge(**params)


def _elastic_net(**params: Any) -> Any:
    from sklearn.linear_model import ElasticNet  # start-up time: a study imports only its own model family

    return ElasticNet(**{"max_iter": 5000, **params})


ENTRIES = [
    ModelEntry(
        name="logistic",
        description="Logistic regression on standardised features",
        classifier=_logistic,
        classifier_space={"C": flt(1e-4, 1e3, log=True), "class_weight": cat(None, "balanced")},
        scale=True,
        knobs=(Knob("C", "lower", "inverse L2 strength"),),
    ),
    ModelEntry(
        name="ridge",
        description="Ridge regression (L2) on standardised features",
        regressor=_ridge,
        regressor_space={"alpha": flt(1e-4, 1e3, log=True)},
        scale=True,
        knobs=(Knob("alpha", "higher", "L2 penalty"),),
    ),
    ModelEntry(
        name="elastic_net",
        description="Elastic net (L1 + L2) regression on standardised features",
        regressor=_elastic_net,
        regressor_space={"alpha": flt(1e-4, 10.0, log=True), "l1_ratio": flt(0.0, 1.0)},
        scale=True,
        knobs=(Knob("alpha", "higher", "L1 + L2 penalty"),),
    ),
]
