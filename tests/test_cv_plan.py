"""The CV plan (``tuner/cv/_plan.py``): each scheme's coverage, group integrity, stratification and seeds,
the holdout, the fold order, and the checks before any trial."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from tuner.cv import make_plan, order_folds, resolve_scheme
from tuner.data import Dataset
from tuner.errors import SpecError
from tuner.spec import CVSpec

LABEL = "study.yaml"
N_ROWS = 90
KFOLD_LIKE = ("kfold", "stratified", "group", "stratified_group")
SHUFFLED = ("kfold", "stratified", "group", "stratified_group", "repeated_kfold", "repeated_stratified", "holdout")


def _dataset(*, task="classification", groups=True, n=N_ROWS, y=None) -> Dataset:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    if y is None:
        # imbalanced 3 classes (1/2, 1/3, 1/6) so stratification has something to keep
        y = np.array([0, 0, 0, 1, 1, 2] * (n // 6)) if task == "classification" else rng.normal(size=n)
    g = np.repeat(np.arange(n // 5), 5) if groups else None
    classes = tuple(range(int(y.max()) + 1)) if task == "classification" else ()
    return Dataset(X=X, y=y, task=task, groups=g, classes=classes)


def _splits(scheme, dataset=None, *, seed=0, **cv):
    spec = CVSpec(scheme=scheme, **{"folds": 3, **cv})
    return list(make_plan(spec, dataset or _dataset(), seed=seed, label=LABEL)[0].splits)


def check_valid_split(train, val, n_rows):
    """Indices in range, no row on both sides."""
    assert len(train) and len(val)
    assert not set(train) & set(val)
    assert set(train) | set(val) <= set(range(n_rows))


def check_cv_coverage(splits, n_rows, n_folds):
    """k-fold: every row in exactly one validation set, and train is the complement."""
    assert len(splits) == n_folds
    seen = np.concatenate([val for _, val in splits])
    assert sorted(seen) == list(range(n_rows))
    for train, val in splits:
        check_valid_split(train, val, n_rows)
        assert len(train) + len(val) == n_rows


@pytest.mark.parametrize("scheme", KFOLD_LIKE)
@pytest.mark.parametrize("shuffle", [True, False])
def test_kfold_like_schemes_cover_every_row_once(scheme, shuffle):
    check_cv_coverage(_splits(scheme, shuffle=shuffle), N_ROWS, 3)


@pytest.mark.parametrize("scheme", ["repeated_kfold", "repeated_stratified"])
def test_each_repeat_covers_every_row_once(scheme):
    splits = _splits(scheme, repeats=3)
    assert len(splits) == 9
    for r in range(3):
        check_cv_coverage(splits[3 * r : 3 * r + 3], N_ROWS, 3)
    firsts = [tuple(splits[3 * r][1]) for r in range(3)]
    assert len(set(firsts)) == 3, "repeats reshuffle"


def test_timeseries_trains_on_the_past_only():
    splits = _splits("timeseries", folds=4)
    assert len(splits) == 4
    vals = [val for _, val in splits]
    for train, val in splits:
        check_valid_split(train, val, N_ROWS)
        assert train.max() < val.min()
        assert list(val) == list(range(val.min(), val.max() + 1)), "validation is a contiguous block"
    # The plan runs the latest split first (pruning decides on the most history), then earlier ones.
    assert vals[0].max() == N_ROWS - 1
    assert all(a.min() > b.max() for a, b in itertools.pairwise(vals))


def test_holdout_is_one_split_of_the_requested_size():
    splits = _splits("holdout", test_size=0.25)
    assert len(splits) == 1
    train, val = splits[0]
    check_valid_split(train, val, N_ROWS)
    assert len(train) + len(val) == N_ROWS
    assert len(val) == int(np.ceil(0.25 * N_ROWS))


@pytest.mark.parametrize("scheme", ["group", "stratified_group"])
def test_group_schemes_never_split_a_group(scheme):
    dataset = _dataset()
    for train, val in _splits(scheme, dataset):
        assert not set(dataset.groups[train]) & set(dataset.groups[val])


@pytest.mark.parametrize("scheme", ["stratified", "repeated_stratified"])
def test_stratified_schemes_keep_class_ratios(scheme):
    dataset = _dataset()
    overall = np.bincount(dataset.y) / len(dataset.y)
    for _, val in _splits(scheme, dataset):
        ratio = np.bincount(dataset.y[val], minlength=3) / len(val)
        assert np.allclose(ratio, overall, atol=0.02), (ratio, overall)


def test_plain_kfold_does_not_stratify_a_sorted_target():
    # Contrast for the test above: unshuffled KFold on a sorted target puts one class per fold.
    y = np.repeat([0, 1, 2], 30)
    dataset = _dataset(y=y)
    assert [set(y[val]) for _, val in _splits("kfold", dataset, shuffle=False)] == [{0}, {1}, {2}]
    assert all(set(y[val]) == {0, 1, 2} for _, val in _splits("stratified", dataset, shuffle=False))


def _fingerprint(splits):
    return [(tuple(train), tuple(val)) for train, val in splits]


@pytest.mark.parametrize("scheme", SHUFFLED)
def test_same_seed_same_splits_different_seed_different_splits(scheme):
    dataset = _dataset()
    first = _fingerprint(_splits(scheme, dataset, seed=1))
    assert first == _fingerprint(_splits(scheme, dataset, seed=1))
    assert first != _fingerprint(_splits(scheme, dataset, seed=2))


def test_classification_holdout_keeps_class_ratios():
    _train, val = _splits("holdout", test_size=0.3)[0]
    y = _dataset().y
    for cls in (0, 1, 2):
        assert abs(np.mean(y[val] == cls) - np.mean(y == cls)) < 0.05


def test_unshuffled_holdout_validates_on_the_last_rows():
    train, val = _splits("holdout", test_size=0.2, shuffle=False)[0]
    assert list(train) == list(range(72))
    assert list(val) == list(range(72, N_ROWS))


@pytest.mark.parametrize("scheme", ["kfold", "stratified", "group", "timeseries", "holdout"])
def test_without_shuffle_the_seed_does_not_matter(scheme):
    dataset = _dataset()
    first = _fingerprint(_splits(scheme, dataset, seed=1, shuffle=False))
    assert first == _fingerprint(_splits(scheme, dataset, seed=2, shuffle=False))


@pytest.mark.parametrize(
    ("task", "groups", "expected"),
    [
        ("classification", False, "stratified"),
        ("regression", False, "kfold"),
        ("classification", True, "stratified_group"),
        ("regression", True, "group"),
    ],
)
def test_auto_picks_a_scheme_from_task_and_groups(task, groups, expected):
    dataset = _dataset(task=task, groups=groups)
    assert resolve_scheme(CVSpec(), dataset) == expected
    auto = _fingerprint(_splits("auto", dataset, seed=4))
    assert auto == _fingerprint(_splits(expected, dataset, seed=4))


def test_explicit_scheme_is_kept():
    assert resolve_scheme(CVSpec(scheme="kfold"), _dataset()) == "kfold"


@pytest.mark.parametrize(
    ("scheme", "dataset", "cv", "fragments"),
    [
        ("group", _dataset(groups=False), {}, ("'cv.scheme'", "needs group labels", "data.groups")),
        ("stratified_group", _dataset(groups=False), {}, ("'cv.scheme'", "needs group labels")),
        ("stratified", _dataset(task="regression"), {}, ("'cv.scheme'", "classification target", "kfold")),
        ("repeated_stratified", _dataset(task="regression"), {}, ("classification target",)),
        ("kfold", _dataset(n=12), {"folds": 13}, ("'cv.folds'", "13 folds but only 12 rows")),
        (
            "stratified",
            _dataset(y=np.array([0] * 28 + [1] * 2), n=30),
            {"folds": 3},
            ("'cv.folds'", "class 1 has only 2 rows", "at most 2"),
        ),
        ("group", _dataset(n=20), {"folds": 5}, ("'cv.folds'", "only 4 groups", "at most 4")),
        ("kfold", _dataset(), {"repeats": 2}, ("'cv.repeats'", "repeated_kfold")),
    ],
)
def test_schemes_that_cannot_work_are_spec_errors(scheme, dataset, cv, fragments):
    with pytest.raises(SpecError) as info:
        _splits(scheme, dataset, **cv)
    message = str(info.value)
    assert message.startswith(LABEL)
    for fragment in fragments:
        assert fragment in message, message


def test_folds_below_two_are_rejected_by_the_spec():
    with pytest.raises(ValueError, match="greater than or equal to 2"):
        CVSpec(folds=1)


def _split(train: range, val: range) -> tuple[np.ndarray, np.ndarray]:
    return np.array(train), np.array(val)


def test_time_series_folds_run_latest_first():
    splits = [
        _split(range(0, 10), range(10, 20)),
        _split(range(0, 20), range(20, 30)),
        _split(range(0, 30), range(30, 40)),
    ]
    ordered = order_folds(splits, "timeseries")
    assert [int(v[0]) for _, v in ordered] == [30, 20, 10]


def test_uneven_folds_run_largest_validation_first_and_equal_folds_keep_their_order():
    uneven = [_split(range(0, 5), range(5, 8)), _split(range(0, 3), range(3, 8)), _split(range(0, 4), range(4, 8))]
    assert [len(v) for _, v in order_folds(uneven, "group")] == [5, 4, 3]
    equal = [_split(range(i, i + 2), range(10 + i, 12 + i)) for i in range(3)]
    assert [int(t[0]) for t, _ in order_folds(equal, "kfold")] == [0, 1, 2]


@pytest.mark.parametrize("scheme", ["timeseries", "group"])
def test_holdout_keeps_the_future_or_whole_groups_out(scheme):
    from tuner.cv import make_plan
    from tuner.data import Dataset
    from tuner.spec import CVSpec

    rows = 40
    data = Dataset(
        X=pd.DataFrame({"a": np.arange(rows, dtype=float)}),
        y=np.arange(rows, dtype=float),
        task="regression",
        groups=np.repeat(np.arange(8), 5) if scheme == "group" else None,
    )
    _, tuning, test = make_plan(CVSpec(scheme=scheme, folds=3, holdout_test=0.25), data, seed=1, label="s")
    assert test is not None and len(tuning.y) + len(test.y) == rows
    if scheme == "timeseries":
        assert list(test.X["a"]) == list(range(30, 40))  # the last quarter: the future
    else:
        assert not set(tuning.groups) & set(test.groups)  # no group on both sides
        assert len(test.groups) % 5 == 0
