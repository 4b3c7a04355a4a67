"""``tuner.TunerSearchCV`` (``tuner/estimator.py``): scikit-learn's estimator checks, its
``cv_results_`` format, delegation, string labels, pipelines, nested CV and a stored study."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from support import sqlite_url

import tuner
from tuner import TunerSearchCV
from tuner.store import schema

C_RANGE = {"type": "float", "low": 0.01, "high": 10.0, "log": True}

# Checks scikit-learn's suite runs that TunerSearchCV fails on purpose, and why.
EXPECTED_FAILED_CHECKS = {
    # The estimator's own TypeError fails every trial, and a search whose trials all failed ends with
    # a SearchFitError (a ValueError, as GridSearchCV's "All the fits failed") quoting it.
    "check_dtype_object": "a TypeError of every trial ends the search as a ValueError that quotes it",
}


def _small_search(estimator, space):
    return TunerSearchCV(estimator, space, cv=2, n_trials=2, random_state=0, pruner="none")


@parametrize_with_checks(
    [
        _small_search(LogisticRegression(), {"C": C_RANGE}),
        _small_search(Ridge(), {"alpha": C_RANGE}),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(autouse=True)
def _quiet_optuna():
    """Optuna logs each new study at INFO; a search fits many."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(level)


def _cancer(labels=("no", "yes")):
    X, y = load_breast_cancer(return_X_y=True)
    return X, np.where(y == 1, labels[1], labels[0])


def test_string_labels_round_trip_and_cv_results_follow_scikit_learn():
    X, y = _cancer()
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    search = TunerSearchCV(pipe, {"logisticregression__C": C_RANGE}, cv=3, n_trials=4, random_state=0).fit(X, y)
    assert list(search.classes_) == ["no", "yes"]
    assert set(search.predict(X[:20])) <= {"no", "yes"}
    assert search.predict_proba(X[:5]).shape == (5, 2)
    results = search.cv_results_
    assert results["params"][search.best_index_] == search.best_params_
    assert results["rank_test_score"][search.best_index_] == 1
    assert np.isclose(results["mean_test_score"][search.best_index_], search.best_score_)
    for key in ("mean_fit_time", "std_fit_time", "mean_score_time", "split2_test_score", "split0_train_score"):
        assert len(results[key]) == 4 and np.all(np.isfinite(results[key])), key
    assert np.ma.isMaskedArray(results["param_logisticregression__C"])
    assert search.n_splits_ == 3 and len(search.trials_) == 4
    assert 0.9 < search.score(X, y) <= 1.0


def test_a_categorical_target_round_trips_with_probabilities_in_classes_order():
    X, y = _cancer()
    y = pd.Series(pd.Categorical(y, categories=["yes", "no"]))
    search = TunerSearchCV(LogisticRegression(max_iter=3000), {"C": C_RANGE}, cv=3, n_trials=2, random_state=0)
    search.fit(X, y)
    predicted = search.predict(X)
    assert set(predicted) == {"no", "yes"}
    assert np.array_equal(search.classes_[search.predict_proba(X).argmax(axis=1)], predicted)


def test_a_bad_step_parameter_is_refused_before_any_trial():
    X, y = _cancer()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    with pytest.raises(tuner.TunerError, match=r"space.clf__c'.*Did you mean 'clf__C'\?"):
        TunerSearchCV(pipe, {"clf__c": C_RANGE}, n_trials=2).fit(X, y)


def test_nested_cv_clone_and_optuna_distributions():
    X, y = load_diabetes(return_X_y=True)
    search = TunerSearchCV(
        Ridge(), {"alpha": FloatDistribution(1e-3, 10.0, log=True)}, cv=KFold(3), n_trials=3, random_state=1
    )
    assert clone(search).get_params()["space"] == search.get_params()["space"]
    scores = cross_val_score(search, X, y, cv=2)
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


def test_pandas_and_polars_frames_and_a_stored_study(tmp_path):
    pl = pytest.importorskip("polars")
    X, y = _cancer()
    frame = pl.DataFrame({f"f{i}": X[:, i] for i in range(5)})
    url = sqlite_url(tmp_path)
    space = {"max_depth": IntDistribution(1, 4), "criterion": ["gini", "entropy"]}
    search = TunerSearchCV(
        DecisionTreeClassifier(random_state=0), space, n_trials=3, storage=url, study_name="trees", random_state=0
    )
    search.fit(frame, pl.Series(y))
    assert set(search.predict(frame.to_pandas())) <= {"no", "yes"}
    stored = optuna.load_study(study_name="trees", storage=url)
    assert len(stored.trials) == 3 and "tuner:spec" in stored.user_attrs
    assert tuner.read_study("trees", url) is not None


def test_callbacks_see_every_trial():
    X, y = load_diabetes(return_X_y=True)
    seen = []
    TunerSearchCV(Ridge(), {"alpha": C_RANGE}, cv=2, n_trials=3, callbacks=[lambda s, t: seen.append(t.number)]).fit(
        X, y
    )
    assert seen == [0, 1, 2]


def test_an_unsupported_input_type_is_one_line_naming_it():
    with pytest.raises(tuner.TunerError, match=r"builtins\.dict is not a supported table") as caught:
        TunerSearchCV(Ridge(), {"alpha": C_RANGE}, n_trials=2).fit({"a": [1, 2]}, [1.0, 2.0])
    assert "\n" not in str(caught.value)


def _mean_count(trial):
    """The iteration count a refit takes from a trial: the mean of its folds' stopped counts."""
    counts = trial.user_attrs[schema.BEST_ITERATIONS]
    return max(1, round(sum(counts) / len(counts)))


def _best_trial(search):
    return next(t for t in search.trials_ if t.number == search.cv_results_["trial_number"][search.best_index_])


def test_early_stopping_stops_a_histgradientboosting_in_each_fold_and_refits_with_the_mean_count():
    X, y = _cancer()
    space = {"learning_rate": {"type": "float", "low": 0.1, "high": 0.3}}
    search = TunerSearchCV(
        HistGradientBoostingClassifier(max_iter=300), space, cv=3, n_trials=3, random_state=0, early_stopping=True
    ).fit(X, y)
    for trial in search.trials_:
        counts = trial.user_attrs[schema.BEST_ITERATIONS]
        assert len(counts) == 3 and all(0 < c < 300 for c in counts), counts
    assert search.best_estimator_.max_iter == _mean_count(_best_trial(search)) < 300
    assert search.best_estimator_.early_stopping is False  # the count is fixed; no rows left to stop on
    assert search.best_estimator_.n_iter_ == search.best_estimator_.max_iter
    assert set(search.predict(X[:20])) <= {"no", "yes"}


def test_early_stopping_stops_an_xgboost_classifier_and_refits_with_the_mean_count():
    xgboost = pytest.importorskip("xgboost")
    X, y = load_breast_cancer(return_X_y=True)
    estimator = xgboost.XGBClassifier(n_estimators=300, learning_rate=0.3, n_jobs=1)
    search = TunerSearchCV(
        estimator, {"max_depth": IntDistribution(2, 4)}, cv=3, n_trials=3, random_state=0, early_stopping=True
    ).fit(X, y)
    for trial in search.trials_:
        assert all(0 < c < 300 for c in trial.user_attrs[schema.BEST_ITERATIONS])
    assert search.best_estimator_.n_estimators == _mean_count(_best_trial(search)) < 300
    assert estimator.n_estimators == 300  # the estimator handed in is left alone


def test_early_stopping_for_an_estimator_that_cannot_stop_is_refused_before_any_trial():
    X, y = _cancer()
    seen = []
    search = TunerSearchCV(
        LogisticRegression(), {"C": C_RANGE}, n_trials=2, early_stopping=True, callbacks=[lambda s, t: seen.append(t)]
    )
    with pytest.raises(tuner.TunerError, match=r"field 'early_stopping'.*the estimator is a LogisticRegression"):
        search.fit(X, y)
    assert seen == []
    # A boosting model inside a Pipeline runs without early stopping, as a declared `pipeline:` does.
    pipe = make_pipeline(StandardScaler(), HistGradientBoostingClassifier())
    with pytest.raises(tuner.TunerError, match=r"is a Pipeline"):
        TunerSearchCV(pipe, {}, n_trials=2, early_stopping=True).fit(X, y)


def test_without_early_stopping_the_estimator_is_fitted_as_given():
    X, y = _cancer()
    search = TunerSearchCV(
        HistGradientBoostingClassifier(max_iter=7),
        {"learning_rate": {"type": "float", "low": 0.1, "high": 0.3}},
        cv=3,
        n_trials=2,
        random_state=0,
    ).fit(X, y)
    assert all(schema.BEST_ITERATIONS not in t.user_attrs for t in search.trials_)
    assert search.best_estimator_.max_iter == 7 and search.best_estimator_.n_iter_ == 7


def test_early_stopping_is_a_parameter_that_clones():
    search = TunerSearchCV(Ridge(), {"alpha": C_RANGE}, early_stopping={"enabled": True, "rounds": 10})
    assert search.get_params()["early_stopping"] == {"enabled": True, "rounds": 10}
    assert clone(search).get_params()["early_stopping"] == {"enabled": True, "rounds": 10}
    assert TunerSearchCV(Ridge(), {}).get_params()["early_stopping"] is False
