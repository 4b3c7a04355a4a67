"""``TunerSearchCV``: a scikit-learn search estimator on tuner's study machinery.

It follows ``RandomizedSearchCV``'s conventions (``fit``, ``best_params_``, ``cv_results_``,
delegated ``predict``) but runs its trials through the same path as ``tuner run``: the spec it
builds is stored with the study, trials are cross-validated by the built-in objective (the one fit
loop ``tuner.cv.fit_and_score``, fold-level pruning, train/validation gap and flags, per-group
scores), run by the engine's one trial loop (worker processes with ``n_jobs``), and kept in the
storage, so ``tuner show``, ``compare``, ``report`` and the dashboard read a study stored with
``storage=``.
"""

from __future__ import annotations

import math
import numbers
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, is_classifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import check_cv
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, check_random_state, column_or_1d

from tuner.cv import fit_and_score
from tuner.data import Arrays
from tuner.diagnostics import SCORE_SECONDS
from tuner.engine import run_study
from tuner.errors import DataError, SearchFitError, SpecError, TooManyFailures
from tuner.final import final_estimator, refit_threads
from tuner.setup import PythonData
from tuner.store import final_choice, schema
from tuner.threads import limited

# What `fit` names a study when no `study_name` is given; a fresh name for every fit.
_NAME_PREFIX = "tuner-search"


def _check_refit(search: TunerSearchCV, attr: str) -> None:
    if not search.refit:
        raise AttributeError(
            f"This TunerSearchCV was made with `refit=False`, so {attr} is only available after refitting; "
            "refit an estimator yourself with `best_params_`."
        )


def _estimator_has(attr: str) -> Callable[[TunerSearchCV], bool]:
    """Delegate ``attr`` when the best estimator (or, before fit, the estimator) has it (as BaseSearchCV)."""

    def check(self: TunerSearchCV) -> bool:
        _check_refit(self, attr)
        getattr(self.best_estimator_ if hasattr(self, "best_estimator_") else self.estimator, attr)
        return True

    return check


class TunerSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Hyperparameter search with cross-validation, pruning and diagnostics, the scikit-learn way.

    Args:
        estimator: A scikit-learn estimator or ``Pipeline``, tuned as it is given.
        space: Parameter name → range: the mappings a spec's ``space`` takes
            (``{"type": "float", "low": 1e-3, "high": 10, "log": True}``), a list of choices, a fixed
            value, or an Optuna distribution. ``step__param`` names reach into a pipeline.
        cv: Number of folds (tuner's plan: stratified and shuffled for classifiers, grouped with
            ``groups``, seeded by ``random_state``), or a scikit-learn splitter or iterable of
            ``(train, test)`` positions, used in its order.
        scoring: A scikit-learn scorer name (greater is better); default ``accuracy`` for
            classifiers and ``r2`` for regressors (what ``estimator.score`` returns).
        n_trials: Trials of the study in total (a resumed study runs the rest).
        timeout: Seconds after which no new trial starts.
        sampler: An Optuna sampler name (``tpe``, ``random``, ``cmaes``, ``gp``, ``qmc``, ``grid``)
            or a spec's ``sampler`` mapping (``{"name": "tpe", "options": {...}}``).
        pruner: A pruner name (``percentile``, the default: the bottom quarter; ``median``,
            ``successive_halving``, ``hyperband``, ``wilcoxon``, ``none``) or a spec's ``pruner``
            mapping; trials are pruned between folds.
        storage: An Optuna storage URL or path that keeps the study (``tuner show``, ``compare``,
            ``report`` and the dashboard read it); default: in memory.
        study_name: The stored study's name; with a storage, a second ``fit`` resumes it. Default:
            a fresh name per fit.
        n_jobs: Worker processes, each fitting with its share of the cores (``tuner.threads``).
            Without a storage they share a temporary SQLite file, removed after ``fit``.
        early_stopping: ``False`` (default): the estimator is fitted as given. ``True``: an
            XGBoost, LightGBM or HistGradientBoosting classifier or regressor (itself, not in a
            ``Pipeline``) stops early in every fold on a share of the fold's training rows, its
            ``n_estimators``/``max_iter`` being the cap, and ``best_estimator_`` is refitted with
            the best trial's mean stopped iteration count; any other estimator is refused.
            ``"auto"`` or a spec's ``early_stopping`` mapping (``{"enabled": True, "rounds": 25,
            "fraction": 0.1}``) follow the spec's rules (``auto``: folds of 1000 training rows or more).
        refit: Refit the best configuration on all rows (``best_estimator_``, ``predict``).
        random_state: Seeds the sampler, the folds and the trials; None draws one.
        callbacks: Called as ``callback(study, frozen_trial)`` after each trial (Optuna's form).
        max_failures: Stop after this many failed trials in a row.
        final_choice: ``"robust"`` (default): ``best_params_`` is the best of the top trials
            re-scored on extra CV repeats (an int ``cv`` only); ``"raw_max"``: the best single CV
            score. A spec's ``final_choice`` mapping works too (see the README's "The final choice").
        threads: Threads per model fit, as the spec's ``budget.threads``: ``"auto"`` (default) gives
            each worker its share of the idle cores; a number overrides it (``tuner.threads``).

    Example:
        >>> search = TunerSearchCV(LogisticRegression(), {"C": {"type": "float", "low": 1e-3, "high": 10, "log": True}})
        >>> search.fit(X, y).best_params_
    """

    def __init__(
        self,
        estimator: Any,
        space: Mapping[str, Any],
        *,
        cv: int | Any = 5,
        scoring: str | None = None,
        n_trials: int = 50,
        timeout: float | None = None,
        sampler: str | Mapping[str, Any] = "tpe",
        pruner: str | Mapping[str, Any] = "percentile",
        storage: str | None = None,
        study_name: str | None = None,
        n_jobs: int = 1,
        early_stopping: bool | str | Mapping[str, Any] = False,
        refit: bool = True,
        random_state: int | None = None,
        callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
        max_failures: int = 10,
        final_choice: str | Mapping[str, Any] = "robust",
        threads: int | str = "auto",
    ) -> None:
        self.estimator = estimator
        self.space = space
        self.cv = cv
        self.scoring = scoring
        self.n_trials = n_trials
        self.timeout = timeout
        self.sampler = sampler
        self.pruner = pruner
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.early_stopping = early_stopping
        self.refit = refit
        self.random_state = random_state
        self.callbacks = callbacks
        self.max_failures = max_failures
        self.final_choice = final_choice
        self.threads = threads

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = deepcopy(inner.classifier_tags)
        tags.regressor_tags = deepcopy(inner.regressor_tags)
        tags.input_tags.pairwise = inner.input_tags.pairwise
        tags.input_tags.sparse = False  # trials see the rows as a DataFrame
        return tags

    @property
    def _metric(self) -> str:
        if self.scoring is not None:
            return self.scoring
        return "accuracy" if is_classifier(self.estimator) else "r2"

    def _spec(self) -> dict[str, Any]:
        if not isinstance(self.scoring, str | None):
            raise SpecError(
                f"TunerSearchCV, argument 'scoring': {type(self.scoring).__name__} is not supported; give a "
                "scikit-learn scorer name such as 'roc_auc' or 'neg_root_mean_squared_error'."
            )
        seed = self.random_state if self.random_state is not None else int(check_random_state(None).randint(2**31))
        return {
            "name": self.study_name or f"{_NAME_PREFIX}-{uuid.uuid4().hex[:12]}",
            "data": {"task": "classification" if is_classifier(self.estimator) else "regression"},
            "model": f"{type(self.estimator).__module__}:{type(self.estimator).__qualname__}",
            "space": {name: _param(name, value) for name, value in self.space.items()},
            "cv": {"folds": self.cv} if isinstance(self.cv, numbers.Integral) else {},
            "metric": self._metric,
            "sampler": dict(self.sampler) if isinstance(self.sampler, Mapping) else self.sampler,
            "pruner": dict(self.pruner) if isinstance(self.pruner, Mapping) else self.pruner,
            "budget": {
                "n_trials": self.n_trials,
                "timeout": self.timeout,
                "n_jobs": self.n_jobs,
                "max_failures": self.max_failures,
                "threads": self.threads,
            },
            "seed": seed,
            "final_choice": dict(self.final_choice) if isinstance(self.final_choice, Mapping) else self.final_choice,
            # A user's estimator has no catalog starts; its own defaults are not a known-good point.
            "warm_start": {"known_good": False},
            "early_stopping": (
                dict(self.early_stopping) if isinstance(self.early_stopping, Mapping) else self.early_stopping
            ),
        }

    def fit(self, X: Any, y: Any = None, groups: Any = None, **fit_params: Any) -> TunerSearchCV:
        """Run the study on ``X, y``, then refit the best configuration on all rows.

        Args:
            X: A pandas or polars DataFrame or a 2-D array.
            y: The target (labels of any type for classifiers).
            groups: Group labels: grouped folds (with an int ``cv``) and per-group scores.
            **fit_params: Passed to every fit; per-row values are cut to each fold's training rows.

        Raises:
            TunerError: for a bad space, scoring, data or storage, before any trial; when every
                trial failed, with the first error.
        """
        if y is None:
            raise SpecError("TunerSearchCV, argument 'y': a target is required; unsupervised search is not supported.")
        if not hasattr(y, "iloc"):
            y = np.asarray(y)  # any array-like (polars and pandas keep their own type)
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)  # scikit-learn's warning and shape for a column vector
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise SearchFitError(
                "TunerSearchCV, argument 'y': Input y contains NaN or infinity; drop those rows or fill them in."
            )
        # scikit-learn's own messages for targets no trial could fit ("Unknown label type: ...").
        if is_classifier(self.estimator):
            check_classification_targets(y)
        elif not hasattr(y, "dtype") or y.dtype == object:
            type_of_target(y, raise_unknown=True)
        spec = self._spec()
        folds = None
        if not isinstance(self.cv, numbers.Integral):
            splitter = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
            folds = list(splitter.split(X, y, groups))
        data = PythonData(data=Arrays(X, y, groups), estimator=self.estimator, folds=folds, fit_params=dict(fit_params))
        scratch = None
        storage = self.storage
        if storage is None and self.n_jobs > 1:
            # Worker processes share a study through a storage; memory is private to one process.
            scratch = Path(tempfile.mkdtemp(prefix="tuner-search-"))
            storage = f"sqlite:///{scratch / 'tuner.db'}"
        try:
            try:
                result = run_study(spec, data=data, storage=storage or "memory://", callbacks=self.callbacks or ())
            except (DataError, TooManyFailures) as exc:
                raise SearchFitError(str(exc)) from None
            self.study_ = result.study if scratch is None else _in_memory(result.study)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        context = result.context
        assert context is not None
        self.storage_url_ = None if scratch is not None or self.storage is None else result.storage_url
        self.trials_ = self.study_.get_trials(deepcopy=False)
        self.n_splits_ = context.cv.n_splits
        self.scorer_ = get_scorer(self._metric)
        self.multimetric_ = False
        shown = [t for t in self.trials_ if t.user_attrs.get(schema.VAL_SCORES) is not None]
        self.cv_results_ = _cv_results(shown, self.n_splits_, context.params_of)
        # The study's final choice (see tuner.racing), read from the copy that outlives a parallel fit's storage.
        choice = final_choice(self.study_)
        best = None if choice is None else choice.trial
        if best is None:
            raise SpecError(f"{spec['name']}: no trial completed with a finite score; see `study_.trials`.")
        self.best_index_ = next(i for i, t in enumerate(shown) if t.number == best.number)
        self.best_params_ = context.params_of(best)
        self.best_score_ = float(best.value) if best.value is not None else math.nan
        if self.refit:
            # fit_final's estimator (the folds' stopped iteration count included), fitted below on
            # X and y as given rather than on the study's frame and class codes.
            self.best_estimator_, _, _ = final_estimator(context, best)
            started = time.perf_counter()
            # The original X and y (labels as given), through the one fit loop.
            with limited(refit_threads(context)):
                fit_and_score(
                    self.best_estimator_,
                    X,
                    y,
                    None,
                    seed=0,
                    capture_warnings=False,
                    fit_params=fit_params,
                )
            self.refit_time_ = time.perf_counter() - started
        return self

    @property
    def classes_(self) -> Any:
        _check_refit(self, "classes_")
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self) -> int:
        check_is_fitted(self, "best_estimator_")
        return int(self.best_estimator_.n_features_in_)

    @property
    def feature_names_in_(self) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.feature_names_in_

    @available_if(_estimator_has("predict"))
    def predict(self, X: Any) -> Any:
        """``best_estimator_.predict``: labels as they were given to ``fit``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    @available_if(_estimator_has("score_samples"))
    def score_samples(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.score_samples(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.transform(X)

    @available_if(_estimator_has("inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.inverse_transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The ``scoring`` metric of ``best_estimator_`` on ``X, y`` (greater is better)."""
        _check_refit(self, "score")
        check_is_fitted(self, "best_estimator_")
        return float(self.scorer_(self.best_estimator_, X, y))


def _param(name: str, value: Any) -> Any:
    """A ``space`` entry as a spec takes it: Optuna distributions become the mapping form."""
    if isinstance(value, FloatDistribution):
        out: dict[str, Any] = {"type": "float", "low": value.low, "high": value.high, "log": value.log}
        return out | ({"step": value.step} if value.step is not None else {})
    if isinstance(value, IntDistribution):
        out = {"type": "int", "low": value.low, "high": value.high, "log": value.log}
        return out | ({"step": value.step} if value.step != 1 else {})
    if isinstance(value, CategoricalDistribution):
        return {"type": "categorical", "choices": list(value.choices)}
    if isinstance(value, BaseDistribution):
        raise SpecError(
            f"TunerSearchCV, argument 'space.{name}': {type(value).__name__} is not supported; use a "
            "FloatDistribution, IntDistribution or CategoricalDistribution, or the mapping a spec takes."
        )
    if hasattr(value, "rvs"):
        raise SpecError(
            f"TunerSearchCV, argument 'space.{name}': a scipy.stats distribution is RandomizedSearchCV's form; give a "
            "range such as {'type': 'float', 'low': 0.001, 'high': 10, 'log': True}, or an Optuna distribution."
        )
    return list(value) if isinstance(value, tuple) else value


def _in_memory(study: optuna.Study) -> optuna.Study:
    """A copy of a study in memory, so that ``study_`` outlives the temporary storage of a parallel fit."""
    copy = optuna.create_study(directions=study.directions, study_name=study.study_name)
    for key, value in study.user_attrs.items():
        copy.set_user_attr(key, value)
    copy.add_trials(study.get_trials(deepcopy=False))
    return copy


def _cv_results(
    trials: list[FrozenTrial], n_splits: int, params_of: Callable[[FrozenTrial], dict[str, Any]]
) -> dict[str, Any]:
    """scikit-learn's ``cv_results_`` of the trials that ran at least one fold (pruned ones too)."""
    params = [params_of(t) for t in trials]

    def per_split(key: str) -> np.ndarray:
        table = np.full((len(trials), n_splits), np.nan)
        for row, trial in enumerate(trials):
            values = trial.user_attrs.get(key) or []
            for column, value in enumerate(values[:n_splits]):
                table[row, column] = np.nan if value is None else value
        return table

    results: dict[str, Any] = {}
    for name, key in (("fit_time", schema.FIT_SECONDS), ("score_time", SCORE_SECONDS)):
        times = per_split(key)
        results[f"mean_{name}"] = _nan_stat(np.nanmean, times)
        results[f"std_{name}"] = _nan_stat(np.nanstd, times)
    names = sorted({name for p in params for name in p})
    for name in names:
        column = np.ma.MaskedArray(np.empty(len(trials), dtype=object), mask=True)
        for row, p in enumerate(params):
            if name in p:
                column[row] = p[name]
        results[f"param_{name}"] = column
    results["params"] = params
    complete = np.array([t.state == TrialState.COMPLETE for t in trials], dtype=bool)
    for which, key in (("test", schema.VAL_SCORES), ("train", schema.TRAIN_SCORES)):
        scores = per_split(key)
        for split in range(n_splits):
            results[f"split{split}_{which}_score"] = scores[:, split]
        # A pruned trial's mean over its first folds is not comparable with full CV: NaN, ranked last.
        mean = np.where(complete, _nan_stat(np.nanmean, scores), np.nan)
        results[f"mean_{which}_score"] = mean
        results[f"std_{which}_score"] = np.where(complete, _nan_stat(np.nanstd, scores), np.nan)
        if which == "test":
            filled = np.where(np.isnan(mean), -np.inf, mean)
            results["rank_test_score"] = rankdata(-filled, method="min").astype(np.int32)
    results["trial_number"] = np.array([t.number for t in trials])
    results["state"] = np.array([t.state.name for t in trials], dtype=object)
    results["gap"] = np.array([_float(t.user_attrs.get(schema.GAP)) for t in trials])
    results["flags"] = [list(t.user_attrs.get(schema.FLAGS) or []) for t in trials]
    return results


def _nan_stat(fn: Callable[..., Any], table: np.ndarray) -> np.ndarray:
    out = np.full(table.shape[0], np.nan)
    rows = ~np.all(np.isnan(table), axis=1)
    if rows.any():
        out[rows] = fn(table[rows], axis=1)
    return out


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


__all__ = ["TunerSearchCV"]
