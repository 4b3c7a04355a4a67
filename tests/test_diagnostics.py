"""Diagnostics (``tuner/diagnostics``): overfit and underfit flags, the train-validation gap, per-group
scores, the learning curve, the data summary, and ``tuner diagnose``."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from frames import classification, run, study_spec, with_groups
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from support import sqlite_url

from tuner.cv import FoldLog, FoldScores, train_score_rows
from tuner.diagnostics import flags, learning_curve, summarize
from tuner.errors import DataError, SpecError
from tuner.seeds import seed_for
from tuner.setup import build as build_context
from tuner.spec import load_spec

TREE = "sklearn.tree:DecisionTreeClassifier"
NAIVE_BAYES = "sklearn.naive_bayes:GaussianNB"


def _only_trial(result):
    (trial,) = result.study.trials
    return trial


def test_deep_tree_on_few_rows_is_flagged_overfit_and_a_constant_model_underfit(tmp_path):
    noisy = classification(60, flip=0.2)
    deep = _only_trial(run(study_spec("deep", TREE, space={"max_depth": None}), noisy, tmp_path))
    assert deep.user_attrs["train_mean"] == 1.0
    assert deep.user_attrs["flags"] == ["overfit"]
    # Same data, a model that cannot memorise it: no flag (so the flag is not always on).
    smooth = _only_trial(run(study_spec("smooth", NAIVE_BAYES), noisy, tmp_path))
    assert smooth.user_attrs["flags"] == []
    constant = _only_trial(
        run(study_spec("constant", "sklearn.dummy:DummyClassifier", space={"strategy": "prior"}), noisy, tmp_path)
    )
    assert constant.user_attrs["flags"] == ["underfit"]


def test_underfit_compares_the_train_score_with_the_best_validation_score_so_far():
    log = FoldLog(
        [FoldScores(val=0.80, train=0.82, fit_seconds=0.0), FoldScores(val=0.78, train=0.84, fit_seconds=0.0)]
    )
    assert flags(log, baseline=0.5) == []
    # train 0.83 is more than the validation spread (0.01) below the best trial's 0.85 ...
    assert flags(log, baseline=0.5, best_so_far=0.85) == ["underfit"]
    # ... but within it of 0.835, and the constant baseline is no longer beaten by 0.83 − 0.825.
    assert flags(log, baseline=0.5, best_so_far=0.835) == []
    assert flags(log, baseline=0.825) == ["underfit"]


def test_gap_and_train_scores_equal_a_direct_refit_on_the_same_folds(tmp_path):
    frame = classification(90, flip=0.1)
    spec = study_spec("gap", TREE, space={"max_depth": 3})
    trial = _only_trial(run(spec, frame, tmp_path))
    attrs = trial.user_attrs
    ctx = build_context(load_spec(spec), data=frame)
    train_scores, val_scores = [], []
    for fold, (train, val) in enumerate(ctx.splits):
        model = clone(ctx.build_estimator({"max_depth": 3})).fit(frame.iloc[train, :4], frame.y.iloc[train])
        # The train score is measured on a stratified sample of the training rows, as many as the fold validates.
        sample = train_score_rows(
            ctx.dataset.y[train], len(val), seed=seed_for(ctx.spec.seed, "augment", fold), task="classification"
        )
        assert sample is not None and len(sample) == len(val)
        rows = train[sample]
        train_scores.append(accuracy_score(frame.y.iloc[rows], model.predict(frame.iloc[rows, :4])))
        val_scores.append(accuracy_score(frame.y.iloc[val], model.predict(frame.iloc[val, :4])))
    assert attrs["train_scores"] == pytest.approx(train_scores)
    assert attrs["val_scores"] == pytest.approx(val_scores)
    assert attrs["gap"] == pytest.approx(np.mean(attrs["train_scores"]) - np.mean(attrs["val_scores"]))
    assert attrs["gap"] > 0.01  # a depth-3 tree on noisy rows: the check above compares real numbers
    assert attrs["train_std"] == pytest.approx(np.std(train_scores))


def test_a_folds_train_score_rows_are_drawn_once_and_handed_out_again_unchanged():
    """Every trial samples a fold's training rows with the same seed: the draw is kept, read-only."""
    from sklearn.model_selection import train_test_split

    y = np.repeat([0, 1, 2], [60, 30, 10])
    first = train_score_rows(y, 20, seed=7, task="classification")
    assert first is not None and not first.flags.writeable
    assert train_score_rows(y.copy(), 20, seed=7, task="classification") is first
    drawn, _ = train_test_split(np.arange(len(y)), train_size=20, random_state=7, stratify=y)
    assert first.tolist() == sorted(drawn.tolist())
    assert train_score_rows(y, 20, seed=8, task="classification").tolist() != first.tolist()
    assert train_score_rows(np.roll(y, 1), 20, seed=7, task="classification") is not first
    labels = np.array(["a", "b"] * 50, dtype=object)  # no bytes to key on: drawn again, the same rows
    assert train_score_rows(labels, 20, seed=7, task="classification").tolist() == (
        train_score_rows(labels.copy(), 20, seed=7, task="classification").tolist()
    )


def test_per_group_scores_equal_a_direct_computation_on_the_fold_predictions(tmp_path):
    frame = with_groups(classification(90, flip=0.15), {"a": 50, "b": 30, "c": 10})
    spec = study_spec("groups", TREE, space={"max_depth": 2}, fairness={"groups": "g"})
    attrs = _only_trial(run(spec, frame, tmp_path)).user_attrs
    ctx = build_context(load_spec(spec), data=frame)
    assert "g" not in ctx.dataset.X.columns  # the fairness column is not a feature
    per_group: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    for train, val in ctx.splits:
        model = clone(ctx.build_estimator({"max_depth": 2})).fit(ctx.dataset.X.iloc[train], ctx.dataset.y[train])
        predicted = model.predict(ctx.dataset.X.iloc[val])
        for name, scores in per_group.items():
            mask = frame.g.to_numpy()[val] == name
            scores.append(accuracy_score(ctx.dataset.y[val][mask], predicted[mask]))
    expected = {name: np.mean(scores) for name, scores in per_group.items()}
    assert attrs["group_scores"] == pytest.approx(expected)
    worst = min(expected, key=expected.get)
    assert attrs["worst_group_name"] == worst
    assert attrs["worst_group_score"] == pytest.approx(expected[worst])
    assert attrs["group_gap"] == pytest.approx(max(expected.values()) - min(expected.values()))
    assert len(set(np.round(list(expected.values()), 6))) > 1  # the groups really differ


def test_learning_curve_verdict_flips_between_saturating_and_growing_data():
    easy = classification(300, features=4, informative=2, sep=2.0)
    hard = classification(600, features=40, informative=30, sep=0.8)
    spec = load_spec(study_spec("curve", NAIVE_BAYES, cv={"scheme": "stratified", "folds": 4}))
    sizes = (0.1, 0.25, 0.5, 1.0)
    flat = learning_curve(build_context(spec, data=easy), {}, sizes=sizes)
    rising = learning_curve(build_context(spec, data=hard), {}, sizes=sizes)
    assert not flat.more_data_helps
    assert rising.more_data_helps
    assert [p.fraction for p in rising.points] == list(sizes)
    assert rising.points[-1].rows > rising.points[0].rows
    half, full = rising.points[2], rising.points[3]
    assert rising.gain == pytest.approx(full.val_mean - half.val_mean)
    assert rising.verdict.startswith("More data is likely to help")
    assert flat.verdict.startswith("More data is unlikely to help")
    assert f"{half.rows} → {full.rows}" in rising.verdict


def test_learning_curve_refuses_sizes_that_cannot_be_compared():
    spec = load_spec(study_spec("sizes", NAIVE_BAYES))
    ctx = build_context(spec, data=classification(60))
    with pytest.raises(Exception, match=r"ending at 1\.0"):
        learning_curve(ctx, {}, sizes=(0.5, 0.75))


def test_data_summary_counts_and_warns_about_rare_classes_groups_and_thin_folds():
    frame = classification(200, seed=3)
    frame.loc[frame.index[:190], "y"] = 0
    frame.loc[frame.index[190:], "y"] = 1  # class 1: 10 of 200 rows (5%: not below the 5% line)
    frame.loc[frame.index[195:], "y"] = 2  # class 2: 5 rows → 2.5%, and 1 per validation fold
    frame = with_groups(frame, {"big": 192, "small": 8})
    spec = load_spec(study_spec("summary", NAIVE_BAYES, cv={"scheme": "stratified", "folds": 5}))
    ctx = build_context(spec, data=frame.drop(columns="g"))
    summary = summarize(ctx.dataset, ctx.splits, frame.g.to_numpy())
    assert summary.class_counts == {"0": 190, "1": 5, "2": 5}
    assert summary.group_counts == {"big": 192, "small": 8}
    text = "\n".join(summary.warnings)
    assert "class '2' is under-represented: 5 of 200 rows (2.5%)" in text
    assert "group 'small' is under-represented: 8 of 200 rows (4.0%)" in text
    assert "validation row(s) of class '2'" in text
    assert "class '0'" not in text


def test_diagnose_cli_prints_flags_groups_and_the_learning_curve(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that rich does not fold the column titles
    frame = with_groups(classification(150, flip=0.1), {"a": 100, "b": 50})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    spec_path = tmp_path / "study.yaml"
    space = {"max_depth": [2, 8], "min_samples_leaf": 5}
    spec = study_spec("cli", TREE, space=space, fairness={"groups": "g"}, budget={"n_trials": 3})
    spec["data"]["source"] = "rows.csv"
    spec_path.write_text(json.dumps(spec))
    assert run_cli("run", spec_path, "-q").code == 0
    text = run_cli("diagnose", spec_path, "--sizes", "0.25,0.5,1")
    assert text.code == 0, text.err
    assert "Data: 150 rows × 4 features, classification" in text.out
    assert "groups a: 100, b: 50" in text.out
    assert "Learning curve of trial #" in text.out
    assert "More data is" in text.out
    report = json.loads(run_cli("diagnose", spec_path, "--sizes", "0.25,0.5,1", "--json").out)
    assert [p["fraction"] for p in report["curve"]["points"]] == [0.25, 0.5, 1.0]
    # At the full size the curve refits the best trial itself (fixed `min_samples_leaf` included).
    assert report["curve"]["points"][-1]["val_scores"] == pytest.approx(report["best"]["user_attrs"]["val_scores"])
    assert report["n_complete"] == 3
    assert set(report["best"]["user_attrs"]["group_scores"]) == {"a", "b"}
    stored = optuna.load_study(study_name="cli", storage=sqlite_url(tmp_path)).user_attrs
    curve = stored["tuner:learning_curve"]  # kept on the study for `tuner report`
    assert curve["train_sizes"] == [p["rows"] for p in report["curve"]["points"]]
    assert curve["trial"] == report["best"]["number"]
    shown = run_cli("show", spec_path)
    assert shown.code == 0 and "gap" in shown.out and "worst group" in shown.out and "flags" in shown.out


@pytest.mark.parametrize(
    ("fairness", "groups", "error", "message"),
    [
        ({"groups": "grp"}, {"a": 59, "b": 1}, DataError, "column 'grp' is not in the data. Did you mean 'group'?"),
        ({"groups": "group"}, {"a": 59, "b": 1}, DataError, "1 group(s) have a single row ('b')"),
        (None, None, SpecError, "constraint 'min_group_score' need per-group validation scores"),
    ],
)
def test_bad_group_input_is_refused_before_any_trial(tmp_path, fairness, groups, error, message):
    frame = classification(60) if groups is None else with_groups(classification(60), groups, column="group")
    spec = study_spec("bad", NAIVE_BAYES, constraints={"min_group_score": 0.7})
    if fairness:
        spec["fairness"] = fairness
    with pytest.raises(error) as caught:
        run(spec, frame, tmp_path)
    assert message in str(caught.value)
    assert not (tmp_path / "tuner.db").exists()  # refused before the storage was opened


def test_many_cv_groups_are_not_scored_unless_named_in_fairness(tmp_path):
    frame = classification(120)
    frame["patient"] = np.repeat([f"p{i}" for i in range(40)], 3)
    grouped = study_spec("cv-groups", NAIVE_BAYES, cv={"scheme": "stratified_group", "folds": 3})
    grouped["data"]["groups"] = "patient"
    attrs = _only_trial(run(grouped, frame, tmp_path)).user_attrs
    assert "group_scores" not in attrs
    with pytest.raises(SpecError, match=r"`data\.groups` has 40 groups, more than the 20 scored automatically"):
        run({**grouped, "name": "cv-groups-2", "objective": "worst_group"}, frame, tmp_path)
    named = {**grouped, "name": "named", "fairness": {"groups": "patient"}}
    assert len(_only_trial(run(named, frame, tmp_path)).user_attrs["group_scores"]) == 40


@pytest.mark.parametrize("fairness", [True, False])
def test_stratified_folds_keep_every_fairness_group_represented(fairness):
    frame = with_groups(classification(200), {"a": 170, "b": 30})
    spec = study_spec("strata", NAIVE_BAYES, cv={"scheme": "stratified", "folds": 5})
    if fairness:
        spec["fairness"] = {"groups": "g"}
    ctx = build_context(load_spec(spec), data=frame if fairness else frame.drop(columns="g"))
    y, g = ctx.dataset.y, frame.g.to_numpy()
    spreads = [
        np.ptp([((y[val] == cls) & (g[val] == group)).sum() for _, val in ctx.splits])
        for cls in (0, 1)
        for group in ("a", "b")
    ]
    # Stratifying on class × group gives every fold its share of each cell (±1 row); on the class
    # alone (no `fairness.groups`), the 30 rows of group b scatter unevenly.
    assert bool(max(spreads) <= 1) == fairness
