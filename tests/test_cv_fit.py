"""The fold fit (``tuner/cv/_fit.py``): the train score of the gap is measured on a sample of the
training rows as large as the validation fold, stratified, and the same sample for the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from tuner.cv import fit_and_score
from tuner.metrics import get_metric


class _Spy(ClassifierMixin, BaseEstimator):
    """Predicts each row's true label from a lookup, recording which rows it was asked about."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.asked_: list[np.ndarray] = []
        return self

    def predict(self, X):
        ids = X["id"].to_numpy()
        self.asked_.append(ids)
        return ids % 3  # the label of row i is i % 3 (see _data)


def _data(n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    return pd.DataFrame({"id": np.arange(n)}), np.arange(n) % 3


def test_the_train_score_is_measured_on_a_stratified_sample_as_large_as_the_validation_fold():
    X, y = _data()
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(y))
    train, val = rows[:240], rows[240:]
    fold = fit_and_score(_Spy(), X, y, train, val, seed=7, metric=get_metric("accuracy", "classification"))
    val_rows, train_rows = fold.estimator.asked_
    assert sorted(val_rows) == sorted(val)
    assert len(train_rows) == len(val) == 60
    assert set(train_rows) <= set(train), "the sample holds training rows only"
    shares = np.bincount(train % 3) * len(val) / len(train)
    assert np.abs(np.bincount(train_rows % 3) - shares).max() <= 1, "the sample keeps the classes' shares"
    assert fold.train == 1.0

    again = fit_and_score(_Spy(), X, y, train, val, seed=7, metric=get_metric("accuracy", "classification"))
    assert again.estimator.asked_[1].tolist() == train_rows.tolist(), "the same seed takes the same sample"
    other = fit_and_score(_Spy(), X, y, train, val, seed=8, metric=get_metric("accuracy", "classification"))
    assert other.estimator.asked_[1].tolist() != train_rows.tolist()


def test_a_training_set_no_larger_than_the_validation_fold_is_scored_whole():
    X, y = _data(120)
    train, val = np.arange(60), np.arange(60, 120)
    fold = fit_and_score(_Spy(), X, y, train, val, seed=0, metric=get_metric("accuracy", "classification"))
    assert sorted(fold.estimator.asked_[1]) == list(range(60))
