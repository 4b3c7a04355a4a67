"""The final choice (``tuner/racing.py``, ``tuner/store/_choice.py``): candidates re-scored on extra
CV repeats, the winner by the mean over every repeat, stored so that it is never computed twice,
resumed after Ctrl-C, switched off by ``final_choice: raw_max``, and the same trial everywhere."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

import tuner
import tuner.racing
from tuner.cv import resplit
from tuner.engine import StudyInterrupted
from tuner.estimator import TunerSearchCV
from tuner.store import final_choice, schema

# 12 trials: the race may cost a quarter of them, 3 candidates x 1 repeat.
SPEC = {"final_choice": "robust", "model": "knn", "budget": {"n_trials": 12}, "data": {"source": "sklearn:iris"}}
SPEC.update(metric="accuracy")


def _study(method: str = "robust", races: dict[int, dict[str, list[float]]] | None = None) -> optuna.Study:
    """Three trials: #0 the raw maximum on the study's folds, #1 close behind, #2 clearly worse; and
    13 pruned ones, so that a race of 2 candidates x 2 repeats is within a quarter of the study."""
    study = optuna.create_study(direction="maximize")
    folds = {
        0: [0.95, 0.85, 0.92, 0.88, 0.90],
        1: [0.87, 0.91, 0.86, 0.92, 0.89],
        2: [0.60, 0.61, 0.59, 0.60, 0.60],
    }
    for number, scores in folds.items():
        study.add_trial(
            optuna.trial.create_trial(
                value=float(np.mean(scores)),
                params={"x": float(number)},
                distributions={"x": optuna.distributions.FloatDistribution(0, 10)},
                user_attrs={schema.VAL_SCORES: scores},
            )
        )
    for _ in range(13):
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    spec = {"objective": {"custom": None, "targets": [{"name": "metric", "penalty": 0.0}]}, "cv": {"folds": 5}}
    spec["final_choice"] = {"method": method, "candidates": 5, "repeats": 2}
    study.set_user_attr(schema.SPEC, json.dumps(spec))
    for number, scores in (races or {}).items():
        study.set_user_attr(schema.race_key(number), scores)
    return study


RACES = {
    0: {"1": [0.80, 0.84, 0.82, 0.79, 0.81], "2": [0.83, 0.80, 0.78, 0.82, 0.80]},
    1: {"1": [0.88, 0.90, 0.87, 0.89, 0.91], "2": [0.90, 0.88, 0.89, 0.87, 0.90]},
}


def test_the_winner_is_the_best_mean_over_repeats_not_the_raw_maximum():
    choice = final_choice(_study(races=RACES))
    assert choice is not None
    assert (choice.trial.number, choice.status, choice.raw_best) == (1, "raced", 0)
    assert choice.repeats == 3 and choice.n_scores == 15
    every = [0.87, 0.91, 0.86, 0.92, 0.89, *RACES[1]["1"], *RACES[1]["2"]]
    assert choice.mean == pytest.approx(np.mean(every))
    assert choice.runner_up == 0 and choice.lead is not None and choice.lead > 0


def test_clearly_worse_trials_are_no_candidates_and_a_missing_repeat_leaves_the_raw_maximum():
    # Trial #2 is far behind on the study's folds: it needs no scores to let the choice be made.
    assert final_choice(_study(races=RACES)).status == "raced"
    partial = {0: RACES[0], 1: {"1": RACES[1]["1"]}}
    choice = final_choice(_study(races=partial))
    assert (choice.trial.number, choice.status) == (0, "pending")
    assert "not re-scored yet" in "\n".join(choice.lines("accuracy"))


def test_a_study_too_small_for_a_race_keeps_the_raw_maximum():
    study = _study(races=RACES)
    few = [t for t in study.get_trials() if t.state != optuna.trial.TrialState.PRUNED][:3]
    small = optuna.create_study(direction="maximize")
    small.add_trials(few)
    small.set_user_attr(schema.SPEC, study.user_attrs[schema.SPEC])
    choice = final_choice(small)
    assert (choice.trial.number, choice.status) == (0, "small")
    assert "too few trials" in "\n".join(choice.lines("accuracy"))


def test_raw_max_switches_the_choice_off():
    choice = final_choice(_study("raw_max", races=RACES))
    assert (choice.trial.number, choice.status) == (0, "off")
    assert "final_choice: raw_max" in "\n".join(choice.lines("accuracy"))


def test_the_uncertainty_text_gives_the_se_the_lead_and_whether_it_is_within_noise():
    text = "\n".join(final_choice(_study(races=RACES)).lines("accuracy"))
    assert "± " in text and "(SE) over 15 fold scores (3 CV repeats)" in text
    assert "lead over #0: 0.05, SE of the difference 0.03" in text
    assert "within noise" in text  # the study's own folds disagree, and folds overlap
    assert "the raw maximum was #0" in text
    far = {0: {k: [s - 0.2 for s in v] for k, v in RACES[0].items()}, 1: RACES[1]}
    assert "beyond noise" in "\n".join(final_choice(_study(races=far)).lines("accuracy"))


def test_new_folds_come_from_a_new_seed_and_not_from_time_series(write_spec):
    context = tuner.run_study(write_spec({"budget": {"n_trials": 1}, "final_choice": "raw_max"})).context
    again = resplit(context.spec.cv, context.cv, context.dataset, seed=1, label="x")
    assert again is not None and len(again) == len(context.cv.splits)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(again, context.cv.splits, strict=True))
    series = context.cv.__class__(scheme="timeseries", splits=context.cv.splits)
    assert resplit(context.spec.cv, series, context.dataset, seed=1, label="x") is None


def _count_scores(monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> list[int]:
    calls: list[int] = []
    real = tuner.racing.score

    def counted(context, trial, splits, repeat):
        calls.append(trial.number)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        return real(context, trial, splits, repeat)

    monkeypatch.setattr(tuner.racing, "score", counted)
    return calls


def _raced(study: optuna.Study) -> dict[int, dict[str, list[float]]]:
    return {
        int(k.removeprefix(schema.RACE_PREFIX)): v
        for k, v in study.user_attrs.items()
        if k.startswith(schema.RACE_PREFIX)
    }


def test_a_run_races_once_stores_the_scores_and_a_rerun_scores_nothing(write_spec, monkeypatch):
    spec = write_spec(SPEC)
    calls = _count_scores(monkeypatch)
    result = tuner.run_study(spec)
    choice = result.choice
    assert choice is not None and choice.status == "raced" and calls
    raced = _raced(result.study)
    assert set(raced) == set(calls) and len(calls) == len(raced) * (choice.repeats - 1)
    assert all(set(v) == {str(r) for r in range(1, choice.repeats)} for v in raced.values())
    assert result.best_trial.number == choice.trial.number
    assert result.best_params == choice.trial.params
    done = len(calls)
    again = tuner.run_study(spec)
    assert len(calls) == done and again.ran == 0
    assert again.best_trial.number == choice.trial.number


@pytest.mark.slow
def test_an_interrupted_race_resumes_where_it_stopped(write_spec, monkeypatch, tmp_path):
    whole = tuner.run_study(write_spec(SPEC, filename="whole.yaml"), storage=str(tmp_path / "whole.db"))
    calls = _count_scores(monkeypatch, fail_at=2)
    spec = write_spec(SPEC)
    with pytest.raises(StudyInterrupted):
        tuner.run_study(spec)
    stored = _raced(optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tuner.db'}"))
    assert sum(len(v) for v in stored.values()) == 1  # the one scored before Ctrl-C is kept
    monkeypatch.undo()
    calls = _count_scores(monkeypatch)
    resumed = tuner.run_study(spec)
    assert len(calls) == sum(len(v) for v in _raced(whole.study).values()) - 1 > 0
    assert _raced(resumed.study) == _raced(whole.study)
    assert resumed.best_trial.number == whole.best_trial.number


def test_raw_max_runs_no_race(write_spec, monkeypatch):
    calls = _count_scores(monkeypatch)
    result = tuner.run_study(write_spec({**SPEC, "final_choice": "raw_max"}))
    assert not calls and not _raced(result.study)
    assert result.choice.status == "off"
    assert result.best_value == max(t.value for t in result.study.get_trials() if t.value is not None)


def test_the_estimators_best_params_are_the_final_choice():
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_iris(return_X_y=True)
    search = TunerSearchCV(
        KNeighborsClassifier(), {"n_neighbors": (1, 40)}, n_trials=12, cv=3, random_state=3, refit=False
    ).fit(X, y)
    choice = final_choice(search.study_)
    assert choice is not None and choice.status in ("raced", "clear")
    assert search.best_params_ == {"n_neighbors": choice.trial.params["n_neighbors"]}
    assert search.cv_results_["params"][search.best_index_] == search.best_params_


def test_best_and_show_print_the_choice_and_its_uncertainty(write_spec, run_cli):
    spec = write_spec(SPEC)
    tuner.run_study(spec)
    best = run_cli("best", spec)
    assert best.code == 0 and "(SE) over" in best.out and "lead over #" in best.out and "chosen: " in best.out
    shown = run_cli("show", spec)
    assert "Final choice: trial #" in shown.out
    payload = json.loads(run_cli("best", spec, "--json").out)
    assert payload["choice"]["trial"] == payload["best_trial"]["number"]


def test_refit_races_a_study_whose_choice_is_pending(write_spec, monkeypatch):
    # As after trials run by `tuner worker` alone: nothing re-scored them.
    import tuner.engine._run

    monkeypatch.setattr(tuner.engine._run, "race", lambda *args, **kwargs: None)
    spec = write_spec(SPEC)
    result = tuner.run_study(spec)
    assert result.choice.status == "pending"
    monkeypatch.undo()
    refit = tuner.refit_best(spec, out=None)
    choice = final_choice(result.study)
    assert choice.status == "raced" and refit.card["study"]["trial"] == choice.trial.number
