"""``run_study`` (``tuner/engine/_run.py``): resume, budget, reproducibility, space-change refusal,
failures, Ctrl-C and grids.

What workers on one storage share (budget, crashes, heartbeats) is in tests/contract."""

from __future__ import annotations

import math
import signal
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from support import PATIENCE_S, sqlite_url, wait_for

import tuner
from tuner.errors import SpecError, TooManyFailures


def _trials(spec_path: Path, name: str = "tiny") -> list[optuna.trial.FrozenTrial]:
    storage = sqlite_url(spec_path.parent)
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def _fingerprint(trials: list[optuna.trial.FrozenTrial]) -> list[tuple]:
    return [(t.number, t.state.name, t.params, t.value) for t in trials]


def test_rerun_continues_the_study_up_to_the_total_budget(write_spec):
    spec = write_spec()
    first = tuner.run_study(spec, n_trials=3)
    assert first.ran == 3
    second = tuner.run_study(spec, n_trials=5)
    assert second.ran == 2
    trials = _trials(spec)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    third = tuner.run_study(spec, n_trials=5)
    assert third.ran == 0
    assert len(_trials(spec)) == 5


def test_result_exposes_best_params_value_and_trials(write_spec):
    result = tuner.run_study(write_spec())
    complete = [t for t in _trials(Path(result.spec.spec_path)) if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value)
    assert result.best_value == best.value
    assert result.best_params == best.params
    assert list(result.trials["number"]) == [t.number for t in complete]
    assert best.user_attrs["val_scores"] and len(best.user_attrs["val_scores"]) == 3
    assert math.isclose(sum(best.user_attrs["val_scores"]) / 3, best.value)


@pytest.mark.slow
def test_sequential_runs_with_the_same_seed_are_identical(tmp_path, write_spec):
    changes = {
        "model": "knn",
        "budget": {"n_trials": 12},
        "sampler": {"name": "tpe", "options": {"n_startup_trials": 4}},
    }
    a = write_spec(changes, filename="a.yaml")
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b = b_dir / "a.yaml"
    b.write_text(a.read_text())
    tuner.run_study(a)
    tuner.run_study(b)
    assert _fingerprint(_trials(a)) == _fingerprint(_trials(b))
    # and the seed matters: another seed proposes other parameters
    tuner.run_study(a, seed=8, study_name="other")
    other = _trials(a, "other")
    assert [t.params for t in other] != [t.params for t in _trials(a)]


def test_a_run_resumed_from_the_same_stored_state_repeats_its_trials(tmp_path, make_study):
    """One process alone on a study is reproducible, across a resume too: its sampler's seed derives from
    the study seed and the number of the first trial it runs."""
    runs = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        study = make_study("fast", n_trials=8, folder=folder)
        tuner.run_study(study.spec, n_trials=3)
        tuner.run_study(study.spec)
        runs.append([(t.number, t.params) for t in study.trials()])
    assert runs[0] == runs[1] and len(runs[0]) == 8
    xs = [params["x"] for _, params in runs[0]]
    assert len(set(xs)) == 8, "the resumed run drew the first run's values again"


@pytest.mark.slow
def test_two_runs_of_one_study_at_once_propose_different_trials(make_study, tuner_process):
    # `gathers` (with budget.n_jobs 2): a trial waits until both processes started one, so both runs
    # overlap however long each takes to start; `--jobs 1` keeps each run sequential.
    study = make_study("gathers", n_trials=12, budget={"n_jobs": 2})
    runs = [tuner_process("run", study.spec, "--jobs", "1", "-q") for _ in range(2)]
    for run in runs:
        _out, err = run.communicate(timeout=PATIENCE_S)
        assert run.returncode == 0, err
    trials = study.trials()
    assert {t.system_attrs["tuner:worker"]["pid"] for t in trials} == {run.pid for run in runs}
    xs = [t.params["x"] for t in trials]
    # x is drawn from a continuous range: two equal values mean two equally seeded samplers.
    assert len(set(xs)) == len(xs), "the two runs proposed the same configurations"


def test_resuming_with_a_changed_space_is_refused_naming_the_parameter(write_spec, run_cli):
    spec = write_spec()
    tuner.run_study(spec, n_trials=2)
    changed = write_spec({"space": {"C": {"type": "float", "low": 0.1, "high": 10, "log": True}}})
    with pytest.raises(SpecError) as error:
        tuner.run_study(changed, n_trials=3)
    assert "'C'" in str(error.value) or "C:" in str(error.value)
    assert "--allow-space-change" in str(error.value)
    result = run_cli("run", changed, "--n-trials", "3", "-q")
    assert result.code == 2
    assert "C: float [0.0001, 1000] log → float [0.1, 10] log" in result.err
    assert len(_trials(spec)) == 2  # nothing ran, nothing lost
    allowed = run_cli("run", changed, "--n-trials", "3", "-q", "--allow-space-change")
    assert allowed.code == 0, allowed.err
    assert len(_trials(spec)) == 3


def test_resuming_with_another_metric_is_refused(write_spec):
    spec = write_spec()
    tuner.run_study(spec, n_trials=1)
    with pytest.raises(SpecError, match="different `metric`"):
        tuner.run_study(write_spec({"metric": "accuracy"}), n_trials=2)


def _objective_module(tmp_path: Path, body: str) -> None:
    (tmp_path / "objmod.py").write_text(textwrap.dedent(body))


def test_a_failing_trial_is_marked_fail_with_its_error_and_the_study_goes_on(tmp_path, write_spec):
    _objective_module(
        tmp_path,
        """
        def objective(trial, ctx):
            x = trial.suggest_float("x", 0, 1)
            if trial.number % 2:
                raise ValueError(f"odd trial {trial.number}")
            return x
        """,
    )
    spec = write_spec({"objective": "objmod:objective", "budget": {"n_trials": 6}})
    tuner.run_study(spec)
    trials = _trials(spec)
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"] * 3
    assert trials[1].user_attrs["error"] == "ValueError: odd trial 1"


def test_nan_and_none_mark_fail(tmp_path, write_spec):
    _objective_module(
        tmp_path,
        """
        def objective(trial, ctx):
            trial.suggest_float("x", 0, 1)
            return [float("nan"), None, 0.5][trial.number % 3]
        """,
    )
    spec = write_spec({"objective": "objmod:objective", "budget": {"n_trials": 3}})
    tuner.run_study(spec)
    assert [t.state.name for t in _trials(spec)] == ["FAIL", "FAIL", "COMPLETE"]


def test_too_many_failures_in_a_row_stop_the_study_with_the_first_error(tmp_path, write_spec, run_cli):
    _objective_module(
        tmp_path,
        """
        def objective(trial, ctx):
            raise RuntimeError(f"broken {trial.number}")
        """,
    )
    spec = write_spec({"objective": "objmod:objective", "budget": {"n_trials": 50}})
    with pytest.raises(TooManyFailures, match="RuntimeError: broken 0"):
        tuner.run_study(spec, max_failures=3)
    assert len(_trials(spec)) == 3
    result = run_cli("run", spec, "-q")
    assert result.code == 2
    assert "in a row failed" in result.err and "Traceback" not in result.err


def test_a_first_error_that_ends_a_sentence_is_quoted_with_one_full_stop(tmp_path, write_spec):
    _objective_module(
        tmp_path,
        """
        def objective(trial, ctx):
            raise ValueError("Input X contains infinity.")
        """,
    )
    spec = write_spec({"objective": "objmod:objective", "budget": {"n_trials": 50}})
    with pytest.raises(TooManyFailures) as info:
        tuner.run_study(spec, max_failures=2)
    assert "The first error was: ValueError: Input X contains infinity. Completed trials" in str(info.value)


def test_a_run_in_which_every_trial_fails_ends_with_the_first_error(tmp_path, write_spec, run_cli):
    _objective_module(
        tmp_path,
        """
        def objective(trial, ctx):
            trial.suggest_float("x", 0, 1)
            raise ValueError(f"bad value in trial {trial.number}.")
        """,
    )
    spec = write_spec({"objective": "objmod:objective", "budget": {"n_trials": 3}})  # fewer than max_failures
    with pytest.raises(TooManyFailures) as info:
        tuner.run_study(spec)
    message = str(info.value)
    assert message.startswith(f"{spec}: no trial of the study has completed; the last 3 trial(s) failed.")
    assert "The first error was: ValueError: bad value in trial 0. Fix the cause" in message
    assert [t.state.name for t in _trials(spec)] == ["FAIL"] * 3
    result = run_cli("run", spec, "-q", "--n-trials", "5")
    assert result.code == 2
    assert "ValueError: bad value in trial 3." in result.err and "Traceback" not in result.err


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_marks_the_running_trial_and_a_rerun_finishes_the_budget(make_study, tuner_process, signum):
    study = make_study("held", n_trials=8)
    study.hold(from_number=2)  # trials 0 and 1 complete, trial 2 runs until Ctrl-C
    proc = tuner_process("run", study.spec)
    wait_for(lambda: study.states() == {"COMPLETE": 2, "RUNNING": 1}, what="two trials complete, the third running")
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=PATIENCE_S)
    assert proc.returncode == 128 + signum, err
    assert "Resume with: tuner run" in err
    assert "Traceback" not in err
    after_stop = study.trials()
    assert not [t for t in after_stop if t.state == TrialState.RUNNING]
    stopped = [t for t in after_stop if t.state == TrialState.FAIL]
    assert [t.number for t in stopped] == [2] and all(t.user_attrs.get("interrupted") for t in stopped)
    kept = {t.number: t.value for t in after_stop if t.state == TrialState.COMPLETE}
    assert len(kept) >= 2

    study.release()
    tuner.run_study(study.spec)
    final = study.trials()
    complete = [t for t in final if t.state == TrialState.COMPLETE]
    assert len(complete) == 8
    assert {n: v for n, v in ((t.number, t.value) for t in complete) if n in kept} == kept


def test_sigterm_while_a_trial_is_being_created_stops_the_run_once_it_exists():
    from tuner.engine._loop import CtrlCLatch, Terminated, sigterm_as_ctrl_c

    with sigterm_as_ctrl_c(), CtrlCLatch() as latch:
        with pytest.raises(Terminated), latch.held():
            signal.raise_signal(signal.SIGTERM)
            created = True  # the latch held the signal back until the block ended
        assert created
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_study_stored_before_new_spec_fields_existed_still_resumes(write_spec):
    import json

    spec = write_spec()
    tuner.run_study(spec, n_trials=1)
    study = optuna.load_study(study_name="tiny", storage=sqlite_url(spec.parent))
    old = json.loads(study.user_attrs["tuner:spec"])
    # as if written by a version that did not have these fields yet (they hold their defaults)
    old["cv"].pop("holdout_test")
    old["data"].pop("drop")
    study.set_user_attr("tuner:spec", json.dumps(old))
    study.set_user_attr("tuner:spec_hash", "from-an-older-version")
    assert tuner.run_study(spec, n_trials=2).ran == 1


def test_grid_sampler_runs_each_point_once_then_stops_and_a_rerun_adds_nothing(write_spec, run_cli):
    grid = {"name": "grid", "options": {"search_space": {"C": [0.1, 1.0, 10.0]}}}
    spec = write_spec({"sampler": grid, "space": {"class_weight": None}, "budget": {"n_trials": 5}})
    first = run_cli("run", spec, "-q")
    assert first.code == 0 and "Traceback" not in first.err
    assert "the grid is done" in first.out
    trials = _trials(spec)
    assert sorted(t.params["C"] for t in trials) == [0.1, 1.0, 10.0]
    assert all(t.state == TrialState.COMPLETE for t in trials)

    again = run_cli("run", spec, "-q")
    assert again.code == 0 and "ran 0 trial(s) now" in again.out and "the grid is done" in again.out
    assert len(_trials(spec)) == 3


def test_grid_without_values_for_a_searched_parameter_is_refused_before_any_trial(write_spec, run_cli):
    grid = {"name": "grid", "options": {"search_space": {"C": [0.1, 1.0]}}}
    spec = write_spec({"sampler": grid})
    result = run_cli("run", spec, "-q")
    assert result.code == 2
    assert "sampler.options.search_space" in result.err and "class_weight" in result.err
    assert not (spec.parent / "tuner.db").exists()


def test_a_queued_trial_still_runs_after_the_grid_is_done(write_spec):
    grid = {"name": "grid", "options": {"search_space": {"C": [0.1, 1.0]}}}
    spec = write_spec({"sampler": grid, "space": {"class_weight": None}, "budget": {"n_trials": 5}})
    first = tuner.run_study(spec)
    assert first.ran == 2
    first.study.enqueue_trial({"C": 1.0})  # e.g. the retry of a trial whose worker was lost
    again = tuner.run_study(spec)
    assert again.ran == 1 and len(_trials(spec)) == 3


def test_a_python_objective_may_run_on_a_grid_of_its_own_parameters(write_spec):
    grid = {"name": "grid", "options": {"search_space": {"x": [0.0, 1.0]}}}
    spec = write_spec({"sampler": grid, "budget": {"n_trials": 2}})
    result = tuner.run_study(spec, objective=lambda trial, ctx: trial.suggest_float("x", 0, 1))
    assert sorted(t.params["x"] for t in result.study.trials) == [0.0, 1.0]


def test_numpy_arrays_with_string_labels_and_a_pipeline_from_python():
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    labels = np.where(y == 1, "yes", "no")
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    spec = {
        "name": "arrays",
        "data": {},
        "model": "my-pipeline",
        "storage": "memory://",
        "cv": {"folds": 3},
        "budget": {"n_trials": 3},
        "space": {"clf__C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
    }
    seen = []
    result = tuner.run_study(spec, X=X, y=labels, model=pipe, callbacks=[lambda study, trial: seen.append(trial)])
    assert result.context.dataset.classes == ("no", "yes")
    assert list(result.best_params) == ["clf__C"] and len(seen) == 3
    with pytest.raises(tuner.TunerError, match=r"'space\.clf__c'.*Did you mean 'clf__C'"):
        tuner.run_study({**spec, "space": {"clf__c": spec["space"]["clf__C"]}}, X=X, y=labels, model=pipe)


def test_an_unsupported_array_type_is_one_line_naming_it():
    with pytest.raises(tuner.TunerError, match=r"argument 'X': builtins\.set is not a supported table") as caught:
        tuner.run_study({"name": "bad", "data": {}, "model": "logistic", "storage": "memory://"}, X={1}, y=[1])
    assert "\n" not in str(caught.value)
