"""Labels (``tuner/labels.py``): a classifier trained on class codes answers in the original labels, and is
wrapped only when the codes are not the labels themselves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tuner.labels import OriginalLabels, codes_are_labels, with_labels


def _iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


def test_a_model_fitted_on_codes_predicts_the_labels_with_probabilities_in_their_order():
    X, codes = _iris()
    inner = LogisticRegression(max_iter=500).fit(X, codes)
    model = with_labels(inner, ("setosa", "versicolor", "virginica"))
    assert isinstance(model, OriginalLabels)
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    predicted = model.predict(X)
    assert list(predicted[:3]) == ["setosa"] * 3
    assert np.array_equal(predicted, model.classes_[inner.predict(X)])
    assert np.array_equal(model.classes_[model.predict_proba(X).argmax(axis=1)], predicted)
    assert model.score(X, model.classes_[codes]) == pytest.approx(inner.score(X, codes))


def test_fit_takes_labels_and_a_clone_refits_on_their_codes():
    X, codes = _iris()
    labels = np.array(["a", "b", "c"], dtype=object)[codes]
    model = clone(OriginalLabels(LogisticRegression(max_iter=500), ["a", "b", "c"])).fit(X, labels)
    assert set(model.estimator_.classes_) == {0, 1, 2}
    assert set(model.predict(X)) == {"a", "b", "c"}
    with pytest.raises(ValueError, match="label 'zebra', which is not one of classes"):
        OriginalLabels(LogisticRegression(), ["a", "b", "c"]).fit(X, np.where(codes == 0, "zebra", labels))


@pytest.mark.parametrize(
    ("classes", "plain"),
    [
        ((0, 1), True),
        ((0, 1, 2), True),
        ((1, 2), False),  # 0/1 would come back
        ((False, True), False),  # bools are ints to Python, but must come back as bools
        ((0.0, 1.0), False),
        (("no", "yes"), False),
        ((), True),  # a regressor
    ],
)
def test_only_labels_that_are_not_the_codes_are_wrapped(classes, plain):
    assert codes_are_labels(classes) == plain
    X, codes = _iris()
    inner = LogisticRegression(max_iter=500).fit(X[codes < 2], codes[codes < 2])
    assert (with_labels(inner, classes) is inner) == plain


def test_mixed_and_bool_labels_keep_their_types():
    X, codes = _iris()
    inner = LogisticRegression(max_iter=500).fit(X[codes < 2], codes[codes < 2])
    assert with_labels(inner, (False, True)).predict(X[:1])[0] is np.False_
    mixed = with_labels(inner, (1, "b")).predict(X[codes < 2])
    assert set(mixed.tolist()) == {1, "b"}
