"""Gradient boosting: scikit-learn's histogram GBM, XGBoost, and LightGBM when installed.

Ranges follow the libraries' tuning guides (XGBoost "Notes on Parameter Tuning", LightGBM
"Parameters Tuning", scikit-learn's HistGradientBoosting user guide). Against overfitting: lower
``learning_rate`` / depth / leaves, raise ``min_child_weight`` / ``min_samples_leaf``, raise the L1/L2
terms, and subsample rows and columns.
"""

from __future__ import annotations

from typing import Any

from tuner.models._registry import IterationHook, Knob, ModelEntry, flt, integer


def _hgb(kind: str) -> Any:
    def build(**params: Any) -> Any:
        from sklearn import ensemble  # start-up time: a study imports only its own model family

        return getattr(ensemble, f"HistGradientBoosting{kind}")(**params)

    return build


def _xgb(kind: str) -> Any:
    def build(**params: Any) -> Any:
        import xgboost  # start-up time: xgboost takes a second to import; only this model needs it

        # hist is XGBoost's fastest CPU method; verbosity 0 keeps trial logs clean; one thread
        # unless the thread policy gives more (build() sets n_jobs; XGBoost would take every core).
        return getattr(xgboost, f"XGB{kind}")(**{"tree_method": "hist", "verbosity": 0, "n_jobs": 1, **params})

    return build


def _lgbm(kind: str) -> Any:
    def build(**params: Any) -> Any:
        import lightgbm  # optional extra: tuner[lightgbm]

        return getattr(lightgbm, f"LGBM{kind}")(**{"verbosity": -1, "subsample_freq": 1, "n_jobs": 1, **params})

    return build


_HGB_SPACE = {
    "learning_rate": flt(0.01, 0.3, log=True),
    "max_iter": integer(50, 500, log=True),
    "max_leaf_nodes": integer(8, 128, log=True),
    "min_samples_leaf": integer(5, 100, log=True),
    "l2_regularization": flt(1e-6, 10.0, log=True),
    "max_features": flt(0.5, 1.0),
}
_XGB_SPACE = {
    "n_estimators": integer(50, 500, log=True),
    "learning_rate": flt(0.01, 0.3, log=True),
    "max_depth": integer(2, 10),
    "min_child_weight": flt(0.5, 20.0, log=True),
    "subsample": flt(0.5, 1.0),
    "colsample_bytree": flt(0.5, 1.0),
    "reg_lambda": flt(1e-3, 10.0, log=True),
    "reg_alpha": flt(1e-3, 10.0, log=True),
}
_LGBM_SPACE = {
    "n_estimators": integer(50, 500, log=True),
    "learning_rate": flt(0.01, 0.3, log=True),
    "num_leaves": integer(8, 256, log=True),
    "min_child_samples": integer(5, 100, log=True),
    "subsample": flt(0.5, 1.0),
    "colsample_bytree": flt(0.5, 1.0),
    "reg_lambda": flt(1e-8, 10.0, log=True),
    "reg_alpha": flt(1e-8, 10.0, log=True),
}

_LEARNING_RATE = Knob("learning_rate", "lower", "smaller steps per tree")
_HGB_KNOBS = (
    Knob("l2_regularization", "higher", "L2 penalty on leaf values"),
    Knob("min_samples_leaf", "higher", "rows a leaf needs"),
    Knob("max_leaf_nodes", "lower", "leaves per tree"),
    _LEARNING_RATE,
)
_XGB_KNOBS = (
    Knob("max_depth", "lower", "tree depth"),
    Knob("min_child_weight", "higher", "weight a leaf needs"),
    Knob("reg_lambda", "higher", "L2 penalty on leaf weights"),
    Knob("reg_alpha", "higher", "L1 penalty on leaf weights"),
    Knob("subsample", "lower", "share of rows per tree"),
    Knob("colsample_bytree", "lower", "share of columns per tree"),
    _LEARNING_RATE,
)
_LGBM_KNOBS = (
    Knob("num_leaves", "lower", "leaves per tree"),
    Knob("min_child_samples", "higher", "rows a leaf needs"),
    Knob("reg_lambda", "higher", "L2 penalty on leaf weights"),
    Knob("reg_alpha", "higher", "L1 penalty on leaf weights"),
    Knob("subsample", "lower", "share of rows per tree"),
    Knob("colsample_bytree", "lower", "share of columns per tree"),
    _LEARNING_RATE,
)

ENTRIES = [
    ModelEntry(
        name="hist_gradient_boosting",
        description="scikit-learn histogram gradient boosting (handles NaN)",
        classifier=_hgb("Classifier"),
        regressor=_hgb("Regressor"),
        classifier_space=_HGB_SPACE,
        regressor_space=_HGB_SPACE,
        handles_missing=True,
        iterations=IterationHook("max_iter", "sklearn"),
        knobs=_HGB_KNOBS,
    ),
    ModelEntry(
        name="xgboost",
        description="XGBoost gradient-boosted trees, hist method (handles NaN)",
        classifier=_xgb("Classifier"),
        regressor=_xgb("Regressor"),
        classifier_space=_XGB_SPACE,
        regressor_space=_XGB_SPACE,
        handles_missing=True,
        iterations=IterationHook("n_estimators", "xgboost"),
        knobs=_XGB_KNOBS,
    ),
    ModelEntry(
        name="lightgbm",
        description="LightGBM gradient-boosted trees (pip install 'tuner[lightgbm]')",
        classifier=_lgbm("Classifier"),
        regressor=_lgbm("Regressor"),
        classifier_space=_LGBM_SPACE,
        regressor_space=_LGBM_SPACE,
        handles_missing=True,
        requires="lightgbm",
        iterations=IterationHook("n_estimators", "lightgbm"),
        knobs=_LGBM_KNOBS,
    ),
]
