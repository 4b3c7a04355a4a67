"""Trials to MLflow (``tuner/tracking.py``): ``tuner run --mlflow`` and ``run_study(mlflow=...)`` against a
real SQLite tracking store, read back with ``MlflowClient``."""

from __future__ import annotations

import sys

import optuna
import pytest
from frames import classification, study_spec, with_groups

import tuner
from tuner.errors import TrackingError
from tuner.store import final_choice, load_stored, resolve_url
from tuner.tracking import PARENT_TAG, _key, measures

mlflow_tracking = pytest.importorskip("mlflow.tracking")

TREE = "sklearn.tree:DecisionTreeClassifier"


def _runs(uri: str, experiment: str) -> tuple[object, list[object]]:
    """The study's parent run and its children (by trial number) in ``experiment``."""
    client = mlflow_tracking.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    assert len(parents) == 1, f"expected one parent run, got {len(parents)}"
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    assert {r.data.tags[PARENT_TAG] for r in children} == {parents[0].info.run_id}
    return parents[0], sorted(children, key=lambda r: int(r.data.tags["tuner.trial"]))


def _history(uri: str, run_id: str, key: str) -> list[float]:
    client = mlflow_tracking.MlflowClient(tracking_uri=uri)
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_cli_run_logs_each_trial_under_one_parent_and_a_rerun_resumes_it(write_spec, run_cli, tmp_path):
    spec = write_spec({"budget": {"n_trials": 3}})
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    result = run_cli("run", spec, "-q", "--mlflow", str(db))
    assert result.code == 0, result.err

    study = load_stored("tiny", resolve_url(None, base_dir=tmp_path)).study
    trials = study.get_trials(deepcopy=False)
    parent, children = _runs(uri, "tiny")
    assert [int(r.data.tags["tuner.trial"]) for r in children] == [t.number for t in trials] == [0, 1, 2]
    for trial, run in zip(trials, children, strict=True):
        data = run.data
        assert data.params == {k: str(v) for k, v in trial.params.items()}
        assert data.metrics["roc_auc"] == pytest.approx(trial.value)
        attrs = trial.user_attrs
        for name in ("val_mean", "val_std", "train_mean", "gap"):
            assert data.metrics[name] == pytest.approx(attrs[name]), name
        assert _history(uri, run.info.run_id, "val_scores") == pytest.approx(attrs["val_scores"])
        assert _history(uri, run.info.run_id, "train_scores") == pytest.approx(attrs["train_scores"])
        assert data.tags["flags"] == ", ".join(attrs["flags"])
        assert data.tags["tuner.state"] == "COMPLETE" and run.info.status == "FINISHED"
        assert run.info.start_time == int(trial.datetime_start.timestamp() * 1000)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tuner.study"] == "tiny"
    assert parent.data.tags["tuner.model"] == "logistic"
    assert parent.data.metrics["best_value"] == pytest.approx(study.best_value)
    assert parent.data.tags["tuner.best_trial"] == str(study.best_trial.number)
    # The final choice, tagged after the run has made it (it may differ from the raw maximum).
    choice = final_choice(study)
    assert parent.data.tags["tuner.chosen_trial"] == str(choice.trial.number)
    assert parent.data.metrics["chosen_mean"] == pytest.approx(
        choice.mean if choice.mean is not None else choice.trial.value
    )

    # A rerun with a larger budget resumes the study and adds its trials under the same parent.
    result = run_cli("run", spec, "-q", "--mlflow", uri, "--n-trials", "5")
    assert result.code == 0, result.err
    again, children = _runs(uri, "tiny")
    assert again.info.run_id == parent.info.run_id
    assert [int(r.data.tags["tuner.trial"]) for r in children] == [0, 1, 2, 3, 4]

    # The refit model and its card land on the same parent run.
    result = run_cli("refit", spec, "--out", tmp_path / "model.joblib", "--mlflow", uri)
    assert result.code == 0, result.err
    client = mlflow_tracking.MlflowClient(tracking_uri=uri)
    logged = {f.path for f in client.list_artifacts(parent.info.run_id, "model")}
    assert logged == {"model/model.joblib", "model/model.card.json"}
    # Next to the tracking file, not in an ./mlruns of whatever folder the command ran in.
    assert list((tmp_path / "mlartifacts").rglob("model.card.json"))
    assert _runs(uri, "tiny")[0].data.tags["tuner.refit_trial"] == str(study.best_trial.number)


def test_worker_processes_log_per_group_scores_of_every_trial_from_the_parent(tmp_path):
    """With n_jobs=2 the trials run in other processes; the parent logs each as it reaches the storage."""
    frame = with_groups(classification(90, flip=0.15), {"a": 50, "b": 30, "c": 10})
    spec = study_spec(
        "groups",
        TREE,
        space={"max_depth": {"type": "int", "low": 1, "high": 4}},
        fairness={"groups": "g"},
        budget={"n_trials": 4},
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = tuner.run_study(spec, data=frame, storage=str(tmp_path / "tuner.db"), mlflow=uri, n_jobs=2)
    trials = {t.number: t for t in result.study.get_trials(deepcopy=False)}
    _, children = _runs(uri, "groups")
    assert sorted(int(r.data.tags["tuner.trial"]) for r in children) == sorted(trials) == [0, 1, 2, 3]
    for run in children:
        attrs = trials[int(run.data.tags["tuner.trial"])].user_attrs
        for group, score in attrs["group_scores"].items():
            assert run.data.metrics[f"group_scores/{group}"] == pytest.approx(score)
        assert run.data.metrics["worst_group_score"] == pytest.approx(attrs["worst_group_score"])
        assert run.data.tags["worst_group_name"] == attrs["worst_group_name"]


def test_a_memory_study_gets_a_new_parent_each_run_and_pruned_trials_keep_their_fold_values(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = classification(60)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.report(x, 0)
        trial.report(x / 2, 1)
        if trial.number == 1:
            raise optuna.TrialPruned
        return x

    spec = study_spec("mem", TREE, storage="memory://", budget={"n_trials": 2})
    for _ in range(2):
        tuner.run_study(spec, data=frame, objective=objective, mlflow=uri)
    client = mlflow_tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("mem").experiment_id
    runs = client.search_runs([experiment])
    assert len([r for r in runs if PARENT_TAG not in r.data.tags]) == 2
    pruned = [r for r in runs if r.data.tags.get("tuner.state") == "PRUNED"]
    assert len(pruned) == 2 and all(r.info.status == "KILLED" for r in pruned)
    history = _history(uri, pruned[0].info.run_id, "intermediate_value")
    assert history == pytest.approx([float(pruned[0].data.params["x"]), float(pruned[0].data.params["x"]) / 2])


def test_objective_labels_and_group_names_become_valid_mlflow_keys():
    assert _key("roc_auc − 0.5×gap") == "roc_auc - 0.5xgap"
    trial = optuna.trial.create_trial(
        params={},
        distributions={},
        value=0.5,
        user_attrs={"group_scores": {"../a/b": 0.25, "ok": None}, "flags": [], "lost": True, "note": "x"},
    )
    numbers, tags = measures(trial, ["value"])
    assert numbers == {("value", 0): 0.5, ("group_scores/a_b", 0): 0.25}
    assert tags == {"flags": "", "lost": "true", "note": "x"}


def test_missing_extra_and_a_refused_store_are_one_paragraph_errors_before_any_trial(tmp_path, monkeypatch):
    frame = classification(60)
    spec = study_spec("bad", TREE, storage=str(tmp_path / "tuner.db"))
    # MLflow 3 refuses its old file store: the error says so, and no trial has run.
    with pytest.raises(TrackingError, match=r"`mlflow` = file:///.*could not open the tracking store.*sqlite:///"):
        tuner.run_study(spec, data=frame, mlflow=f"file://{tmp_path / 'mlruns'}")
    assert not load_stored("bad", resolve_url(str(tmp_path / "tuner.db"), base_dir=tmp_path)).study.trials
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(TrackingError, match=r"needs the mlflow extra: pip install 'tuner\[mlflow\]'"):
        tuner.run_study(spec, data=frame, mlflow=str(tmp_path / "mlflow.db"))
