"""Class labels back from class codes.

Trials train classifiers on class codes 0..k-1 (:func:`tuner.data.load_dataset` encodes the
target once, so that every library, XGBoost included, takes it). A model handed to a user must
answer in the labels the data had ("yes"/"no", a pandas categorical's categories), so the refit
wraps the fitted model in :class:`OriginalLabels` whenever the codes are not the labels
themselves. The wrapper is a plain scikit-learn classifier: ``classes_`` are the labels,
``predict_proba`` columns follow them, and a saved model file decodes its own predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted


def _inner_has(name: str) -> Callable[[Any], bool]:
    def check(self: OriginalLabels) -> bool:
        inner = getattr(self, "estimator_", self.estimator)
        return hasattr(inner, name)

    return check


class OriginalLabels(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """A classifier trained on class codes whose predictions are the original labels.

    Args:
        estimator: The classifier (or pipeline) that sees codes 0..k-1.
        classes: The label of each code, in code order (``classes[code]``).

    ``fit(X, y)`` takes labels (each must be one of ``classes``) and fits a clone of ``estimator``
    on their codes; :meth:`of_fitted` wraps an estimator already fitted on codes.
    """

    def __init__(self, estimator: Any, classes: Sequence[Any]) -> None:
        self.estimator = estimator
        self.classes = classes

    @classmethod
    def of_fitted(cls, fitted: Any, classes: Sequence[Any]) -> OriginalLabels:
        """Wrap an estimator that was fitted on the codes of ``classes``; nothing is refitted."""
        wrapper = cls(fitted, list(classes))
        wrapper.estimator_ = fitted
        wrapper.classes_ = _labels(classes)
        return wrapper

    def fit(self, X: Any, y: Any, **fit_params: Any) -> OriginalLabels:
        labels = _labels(self.classes)
        codes = pd.Index(labels).get_indexer(np.asarray(y))
        if (codes < 0).any():
            unknown = np.asarray(y)[codes < 0][0]
            raise ValueError(f"y holds the label {unknown!r}, which is not one of classes {list(labels)}.")
        self.estimator_ = clone(self.estimator).fit(X, codes, **fit_params)
        self.classes_ = labels
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        codes = np.asarray(self.estimator_.predict(X)).astype(np.int64)
        result: np.ndarray = self.classes_[codes]
        return result

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_log_proba(X)

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(X)

    @property
    def n_features_in_(self) -> int:
        check_is_fitted(self, "estimator_")
        return int(self.estimator_.n_features_in_)

    @property
    def feature_names_in_(self) -> Any:
        check_is_fitted(self, "estimator_")
        return self.estimator_.feature_names_in_


def with_labels(fitted: Any, classes: Sequence[Any]) -> Any:
    """``fitted`` (trained on class codes) answering in ``classes``; as it is when there is nothing to
    decode: a regressor (no classes), or labels that are the codes 0..k-1 themselves."""
    if not classes or codes_are_labels(classes):
        return fitted
    return OriginalLabels.of_fitted(fitted, classes)


def codes_are_labels(classes: Sequence[Any]) -> bool:
    """True for labels 0..k-1 as plain ints (``True``/``False`` and ``0.0``/``1.0`` are not: they
    would come back as ints)."""
    return all(type(label) is int and label == code for code, label in enumerate(classes))


def _labels(classes: Sequence[Any]) -> np.ndarray:
    values = list(classes)
    array = np.asarray(values)
    if array.dtype.kind in "USO" and not all(isinstance(value, str) for value in values):
        # numpy would turn a mix such as 1 and "a" into the strings "1" and "a"; keep each label's type.
        array = np.empty(len(values), dtype=object)
        array[:] = values
    return array


__all__ = ["OriginalLabels", "codes_are_labels", "with_labels"]
