"""Early stopping of boosting models inside one CV fold, and the best iteration count it finds.

A boosting model trains up to its iteration cap (``n_estimators`` / ``max_iter``) but stops once
its loss on a *split of the fold's training rows* has not improved for ``early_stopping.rounds``
iterations. The fold's validation rows are never used for stopping: stopping on them would pick
the iteration count that scores best on the very rows the trial is scored on, and the CV score
would be optimistic. The stopping rows are left out of the fit (and out of resampling and
augmentation); grouped data keeps whole groups on one side, time series stop on the latest rows.

Each library stops in its own way (the catalog entry's :class:`~tuner.models.IterationHook`
names which): XGBoost's ``EarlyStopping`` callback with an ``eval_set``, LightGBM's
``early_stopping`` callback, scikit-learn's HistGradientBoosting with ``X_val``/``y_val``.

Networks (an :class:`~tuner.models.EpochHook`) use the same split, always: ``tuner.cv._epochs``
trains them epoch by epoch, measuring the loss on the stopping rows after each epoch (the epoch
curves, and what the pruner sees) and stopping after ``early_stopping.epoch_rounds`` epochs
without improvement when early stopping is on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import model_selection as ms
from sklearn.base import clone

from tuner.cv._augment import Plan, apply, fit_kwargs
from tuner.models import EpochHook, IterationHook
from tuner.spec import EarlyStoppingSpec

# Below this many training rows a split for stopping leaves too little to fit or to stop on.
MIN_ROWS = 20


@dataclass(frozen=True)
class StoppingPlan:
    """How the folds of a study stop early: decided once per study (see :func:`stopping_plan`).

    A network's plan (an :class:`~tuner.models.EpochHook`) exists even with early stopping off:
    its folds still train epoch by epoch on the fit rows and measure the loss on the stopping rows,
    with ``rounds`` None (never stopped by the plan).
    """

    hook: IterationHook | EpochHook
    rounds: int | None
    fraction: float
    min_delta: float
    ordered: bool  # time series: stop on the latest rows
    stratify: bool  # classification: keep class shares on both sides


def stopping_plan(
    settings: EarlyStoppingSpec,
    hook: IterationHook | None,
    *,
    min_train_rows: int,
    ordered: bool,
    stratify: bool,
    epochs: EpochHook | None = None,
) -> StoppingPlan | None:
    """The study's early stopping, or None: the model needs an iteration hook and the setting on
    (a network, with its ``epochs`` hook, always gets a plan; see :class:`StoppingPlan`).

    ``auto`` means on when every training fold has ``early_stopping.min_rows`` rows. On small data
    the rows held out for stopping cost the model more than stopping saves, and a stopping set of
    a few dozen rows gives a noisy stop (bench/efficiency.py: on the bundled data sets, folds of
    140-460 rows, tuning without early stopping found better models at equal time).
    scikit-learn's HistGradientBoosting makes the same call with its own ``early_stopping="auto"``.
    """
    enabled = min_train_rows >= settings.min_rows if settings.enabled == "auto" else bool(settings.enabled)
    if epochs is not None:
        rounds = settings.epoch_rounds if enabled else None
        return StoppingPlan(epochs, rounds, settings.fraction, settings.min_delta, ordered, stratify)
    if hook is None or not enabled:
        return None
    return StoppingPlan(hook, settings.rounds, settings.fraction, settings.min_delta, ordered, stratify)


def _unchanged(X: Any) -> Any:
    return X


@dataclass(frozen=True)
class _Library:
    # Prepare the final estimator (rounds, min_delta) and return its fit keyword arguments for the
    # stopping rows.
    prepare: Callable[[Any, int, float, Any, np.ndarray], dict[str, Any]]
    # The best iteration count (1-based) of a fitted estimator.
    best: Callable[[Any], int]
    # Rows as the library takes them fastest (applied when they reach it as a DataFrame), and
    # whether a final estimator can take them so (a wrapper may pick columns by name).
    rows: Callable[[Any], Any] = _unchanged
    takes_rows: Callable[[Any], bool] = lambda estimator: False

    def rows_for(self, estimator: Any) -> Callable[[Any], Any]:
        """``rows`` when ``estimator`` takes them so, else rows unchanged."""
        return self.rows if self.takes_rows(estimator) else _unchanged


def _xgb_prepare(estimator: Any, rounds: int, min_delta: float, X_stop: Any, y_stop: np.ndarray) -> dict[str, Any]:
    import xgboost  # start-up time: xgboost takes a second to import; only its models get here

    # The callback (unlike `early_stopping_rounds`) takes min_delta; it keeps every tree but sets
    # best_iteration, which predict() then uses.
    stop = xgboost.callback.EarlyStopping(rounds=rounds, min_delta=min_delta, save_best=False)
    estimator.set_params(callbacks=[stop])
    return {"eval_set": [(X_stop, y_stop)], "verbose": False}


def _lgbm_prepare(estimator: Any, rounds: int, min_delta: float, X_stop: Any, y_stop: np.ndarray) -> dict[str, Any]:
    import lightgbm  # optional extra: tuner[lightgbm]

    stop = lightgbm.early_stopping(rounds, min_delta=min_delta, verbose=False)
    return {"eval_set": [(X_stop, y_stop)], "callbacks": [stop]}


def _hgb_prepare(estimator: Any, rounds: int, min_delta: float, X_stop: Any, y_stop: np.ndarray) -> dict[str, Any]:
    # scoring="loss" stops on the training loss measured on the stopping rows (cheap, and what
    # the other two libraries do); X_val/y_val replace HGB's own validation_fraction split.
    estimator.set_params(early_stopping=True, n_iter_no_change=rounds, scoring="loss", tol=min_delta)
    return {"X_val": X_stop, "y_val": y_stop}


def _hgb_best(estimator: Any) -> int:
    # validation_score_[i] is the score after i iterations (index 0: before the first tree), and
    # HGB keeps the trees it built past the best one, so the best count is the argmax.
    scores = getattr(estimator, "validation_score_", None)
    if scores is None or len(scores) < 2:
        return int(estimator.n_iter_)
    return max(1, int(np.argmax(scores)))


def _numeric_array(X: Any) -> Any:
    # XGBoost re-reads the feature names of a DataFrame (training rows and eval set) on every
    # boosting round, which costs a fifth of a fit on small data, and its predict() builds a
    # DMatrix with names too; an all-numeric frame goes in as an array instead. Frames with
    # category columns stay frames.
    if isinstance(X, pd.DataFrame) and all(pd.api.types.is_numeric_dtype(t) for t in X.dtypes):
        return X.to_numpy(dtype=np.float64, na_value=np.nan)
    return X


def _plain_xgb(estimator: Any) -> bool:
    # An XGBoost estimator itself (not a wrapper), without constraints keyed by feature name.
    import xgboost  # start-up time: xgboost takes a second to import; only its models get here

    if not isinstance(estimator, xgboost.XGBModel):
        return False
    params = estimator.get_params(deep=False)
    monotone, interaction = params.get("monotone_constraints"), params.get("interaction_constraints")
    if isinstance(monotone, dict) or isinstance(interaction, str):
        return False
    return not any(isinstance(name, str) for group in interaction or () for name in group)


_LIBRARIES: dict[str, _Library] = {
    "xgboost": _Library(_xgb_prepare, lambda est: int(est.best_iteration) + 1, _numeric_array, _plain_xgb),
    "lightgbm": _Library(_lgbm_prepare, lambda est: int(est.best_iteration_ or est.n_estimators)),
    "sklearn": _Library(_hgb_prepare, _hgb_best),
}


def native_rows(hook: IterationHook | None, estimator: Any, augment: Plan) -> Callable[[Any], Any]:
    """How a trial's fold rows (training and validation alike) are best handed to ``estimator``.

    Rows go in the form the boosting library takes fastest (see ``_Library.rows``) when nothing
    between them and the library needs the frame: the estimator is the library's own (not a
    pipeline or wrapper, which may select columns by name; no constraints keyed by feature name)
    and there is no balancing or augmentation (which work on frames). Otherwise, unchanged.
    """
    if hook is None or augment.active:
        return _unchanged
    return _LIBRARIES[hook.library].rows_for(estimator)


def stopping_split(
    y: np.ndarray,
    fraction: float,
    *,
    seed: int,
    stratify: bool,
    groups: np.ndarray | None = None,
    ordered: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows to fit on and of the rows to stop on, within one fold's training rows."""
    n_rows = len(y)
    index = np.arange(n_rows)
    n_stop = max(1, round(n_rows * fraction))
    if ordered:
        return index[: n_rows - n_stop], index[n_rows - n_stop :]
    if groups is not None and len(np.unique(groups)) > 1:
        splitter = ms.GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        fit_rows, stop_rows = next(splitter.split(index, y, groups))
        return np.sort(fit_rows), np.sort(stop_rows)
    try:
        fit_rows, stop_rows = ms.train_test_split(
            index, test_size=n_stop, random_state=seed, stratify=y if stratify else None
        )
    except ValueError:  # a class too rare to appear on both sides: split without stratifying
        fit_rows, stop_rows = ms.train_test_split(index, test_size=n_stop, random_state=seed)
    return np.sort(fit_rows), np.sort(stop_rows)


def fit_with_stopping(
    model: Any,
    hook: IterationHook,
    plan: Plan,
    X_fit: pd.DataFrame | np.ndarray,
    y_fit: np.ndarray,
    X_stop: pd.DataFrame | np.ndarray,
    y_stop: np.ndarray,
    *,
    rounds: int,
    min_delta: float = 0.0,
    seed: int,
) -> int:
    """Fit ``model`` (an estimator or a pipeline ending in one) on the fit rows, stopping on the
    stop rows; returns the best iteration count."""
    data = apply(plan, X_fit, y_fit, seed=seed)
    final, prefix, transformers = _unwrap(model)
    # Stopping rows must look like what the final step sees: run them through the pipeline's
    # transformers, fitted on the fit rows exactly as the pipeline's own fit will fit them.
    X_seen: Any = X_stop
    X_prefit: Any = data.X
    for step in transformers:
        fitted = clone(step).fit(X_prefit, data.y)
        X_prefit, X_seen = fitted.transform(X_prefit), fitted.transform(X_seen)
    library = _LIBRARIES[hook.library]
    if transformers:  # the pipeline takes the frame; its final step sees the transformed rows
        X_fit_seen, X_stop_seen = data.X, library.rows(X_seen)
    else:
        rows = library.rows_for(model)
        X_fit_seen, X_stop_seen = rows(data.X), rows(X_seen)
    stop_kwargs = library.prepare(final, rounds, min_delta, X_stop_seen, y_stop)
    kwargs = {prefix + key: value for key, value in stop_kwargs.items()}
    kwargs.update(fit_kwargs(model, data.sample_weight))
    model.fit(X_fit_seen, data.y, **kwargs)
    return library.best(final)


def _unwrap(model: Any) -> tuple[Any, str, list[Any]]:
    """The final estimator, the fit-parameter prefix that reaches it, and the transformers before it."""
    path: list[str] = []
    transformers: list[Any] = []
    while hasattr(model, "steps"):
        transformers.extend(step for _, step in model.steps[:-1] if step not in (None, "passthrough"))
        name, model = model.steps[-1]
        path.append(name)
    return model, "".join(f"{name}__" for name in path), transformers
