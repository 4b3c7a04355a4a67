"""The model catalog (``tuner/models``): one contract every entry meets for every task, and user-added models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import optuna
import pytest
import xgboost
from optuna.trial import TrialState
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from support import sqlite_url

import tuner
from tuner.errors import CatalogError, SpecError
from tuner.models import all_entries, entry_for, get_model, iteration_hook
from tuner.search import merge, suggest
from tuner.spec import ParamSpec

SEED = 1234
# Keep fits fast: iteration counts are pinned by fixed overrides, as a spec would do.
CAPS = {name: ParamSpec(type="fixed", value=10) for name in ("n_estimators", "max_iter", "max_epochs")}


def _caps(entry, task):
    """The caps that apply to ``entry``: its searched iteration counts and a network's epoch cap."""
    epochs = entry.epochs.param if entry.epochs else None
    return {k: v for k, v in CAPS.items() if k in entry.space(task) or k == epochs}


CASES = [pytest.param(entry, task, id=f"{entry.name}-{task}") for entry in all_entries() for task in entry.tasks]


def _small_data(task):
    from sklearn import datasets

    loader = datasets.load_breast_cancer if task == "classification" else datasets.load_diabetes
    X, y = loader(return_X_y=True, as_frame=True)
    rows = np.random.default_rng(0).choice(len(y), size=150, replace=False)
    return X.iloc[rows].reset_index(drop=True), y.to_numpy()[rows]


def _suggested(space, n: int, seed: int = 0) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    seen: list[dict] = []
    study.optimize(lambda t: float(seen.append(suggest(t, space)) or 0.0), n_trials=n)
    return seen


def _final(estimator):
    """The model itself, behind the scaler of a pipeline."""
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def test_the_catalog_has_the_issue_models():
    names = {entry.name for entry in all_entries()}
    assert {"logistic", "ridge", "elastic_net", "random_forest", "extra_trees"} <= names
    assert {"hist_gradient_boosting", "xgboost", "svm", "knn"} <= names
    tasks = {task for entry in all_entries() for task in entry.tasks}
    assert tasks == {"classification", "regression"}


@pytest.mark.parametrize(("entry", "task"), CASES)
def test_default_space_names_are_estimator_params(entry, task):
    accepted = set(entry.factory(task)().get_params(deep=False))
    space = entry.space(task)
    assert space, f"{entry.name} has an empty default space for {task}"
    assert set(space) <= accepted, set(space) - accepted
    merge(space, {}, label="catalog")  # conditions refer to existing parents, no cycles


# A network capped at 10 epochs has not converged: the cap is there to keep the test fast.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("entry", "task"), CASES)
def test_suggested_configurations_fit_and_predict(entry, task):
    X, y = _small_data(task)
    space = merge(entry.space(task), _caps(entry, task), label="catalog")
    for params in _suggested(space, 2, seed=SEED):
        model = entry.build(task, params, seed=SEED).fit(X, y)
        predicted = model.predict(X)
        assert predicted.shape == (len(y),)
        if task == "classification":
            assert set(np.unique(predicted)) <= set(np.unique(y))
        else:
            assert np.isfinite(predicted).all()
        final = _final(model)
        given = final.get_params(deep=False)
        for name, value in params.items():
            assert given[name] == value, f"{name} was not passed to the estimator"
        if "random_state" in given:
            assert given["random_state"] == SEED, "the model seed must reach random_state"
        assert hasattr(model, "steps") == entry.scale


def test_an_explicit_random_state_is_not_overwritten():
    entry = get_model("random_forest")
    model = entry.build("classification", {"n_estimators": 5, "random_state": 3}, seed=SEED)
    assert model.get_params()["random_state"] == 3


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_probability_metrics_give_every_classifier_predict_proba():
    X, y = _small_data("classification")
    for entry in all_entries():
        if "classification" not in entry.tasks:
            continue
        params = {k: v.value for k, v in _caps(entry, "classification").items()}
        model = entry.build("classification", params, seed=0, proba=True).fit(X, y)
        proba = model.predict_proba(X)
        assert proba.shape == (len(y), 2), entry.name
        assert np.allclose(proba.sum(axis=1), 1.0)


def test_svm_runs_with_a_probability_metric(tmp_path):
    result = tuner.run_study(
        {
            "name": "svm-log-loss",
            "data": {"source": "sklearn:iris"},
            "model": "svm",
            "metric": "neg_log_loss",
            "cv": {"folds": 3},
            "sampler": "random",
            "budget": {"n_trials": 2},
            "storage": str(tmp_path / "t.db"),
        }
    )
    states = [t.state for t in result.study.get_trials()]
    assert states == [TrialState.COMPLETE] * 2, [t.user_attrs.get("error") for t in result.study.get_trials()]
    assert -1.2 < result.best_value < 0


def test_missing_variant_is_a_catalog_error():
    with pytest.raises(CatalogError, match="has no regression variant"):
        get_model("logistic").factory("regression")


def test_catalog_model_without_the_task_is_a_spec_error(tmp_path):
    spec = {
        "name": "ridge-on-iris",
        "data": {"source": "sklearn:iris"},
        "model": "ridge",
        "storage": str(tmp_path / "t.db"),
    }
    with pytest.raises(SpecError, match=r"field 'model'.*no classification variant"):
        tuner.run_study(spec)


# --- user models ------------------------------------------------------------------------------


def test_register_model_then_use_it_from_python(tmp_path, scratch_registry):
    from sklearn.tree import DecisionTreeClassifier

    built: list[dict] = []

    def factory(**params):
        built.append(params)
        return DecisionTreeClassifier(**params)

    tuner.register_model(
        "my_tree",
        classifier=factory,
        # the spec file's shorthands work here too: a list is categorical, a scalar is fixed
        space={
            "max_depth": {"type": "int", "low": 1, "high": 4},
            "criterion": ["gini", "entropy"],
            "min_samples_leaf": 2,
        },
        description="a test tree",
    )
    assert "my_tree" in tuner.models.model_names()
    result = tuner.run_study(
        {
            "name": "custom-python",
            "data": {"source": "sklearn:iris"},
            "model": "my_tree",
            "metric": "accuracy",
            "cv": {"folds": 3},
            "sampler": "random",
            "budget": {"n_trials": 3},
            "storage": str(tmp_path / "t.db"),
        }
    )
    trials = result.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        assert 1 <= trial.params["max_depth"] <= 4
        assert trial.params["criterion"] in ("gini", "entropy")
        assert "min_samples_leaf" not in trial.params, "fixed values are not searched"
        assert {**trial.params, "min_samples_leaf": 2} in built, "each trial's params reached the factory"
        assert trial.value > 0.6, "a depth >= 1 tree beats chance (1/3) on iris"


def test_register_model_checks_its_arguments(scratch_registry):
    from sklearn.tree import DecisionTreeClassifier

    with pytest.raises(CatalogError, match="give a `classifier` or a `regressor`"):
        tuner.register_model("nothing")
    with pytest.raises(CatalogError, match=r"register_model\('bad'\): space parameter 'depth'.*low <= high"):
        tuner.register_model(
            "bad", classifier=DecisionTreeClassifier, space={"depth": {"type": "int", "low": 5, "high": 1}}
        )
    assert "bad" not in tuner.models.model_names()


FACTORY_MODULE = """\
from sklearn.tree import DecisionTreeClassifier

CALLS = []


def factory(**params):
    CALLS.append(params)
    return DecisionTreeClassifier(**params)
"""


@pytest.mark.usefixtures("fresh_imports")
def test_custom_model_import_path_from_the_cli(tmp_path, write_spec, run_cli):
    package = tmp_path / "somepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(FACTORY_MODULE)
    spec = write_spec(
        {
            "data": {"source": "sklearn:iris"},
            "model": "somepkg.mod:factory",
            "metric": "accuracy",
            "space": {"max_depth": {"type": "int", "low": 1, "high": 4}, "criterion": ["gini", "entropy"]},
            "budget": {"n_trials": 3},
        }
    )
    validated = run_cli("validate", spec)
    assert validated.code == 0, validated.err
    assert "max_depth: int [1, 4]" in validated.out

    result = run_cli("run", spec, "-q")
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="tiny", storage=sqlite_url(tmp_path))
    assert study.user_attrs["tuner:model"] == "somepkg.mod:factory"
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    import somepkg.mod  # the module the run imported, found through the spec's folder

    for trial in trials:
        assert trial.params in somepkg.mod.CALLS
        assert trial.params["criterion"] in ("gini", "entropy")


@pytest.mark.usefixtures("fresh_imports")
def test_custom_model_space_names_are_checked(tmp_path, write_spec, run_cli):
    (tmp_path / "treemod.py").write_text(FACTORY_MODULE)
    spec = write_spec({"model": "treemod:factory", "space": {"max_dept": [2, 3]}})
    result = run_cli("validate", spec)
    assert result.code == 2
    assert "field 'space.max_dept'" in result.err and "Did you mean 'max_depth'" in result.err


def test_an_estimator_from_python_gets_its_boosting_librarys_catalog_hook():
    class Mine(HistGradientBoostingRegressor):
        pass

    assert (
        entry_for(HistGradientBoostingRegressor(), name="m").iterations
        is get_model("hist_gradient_boosting").iterations
    )
    assert iteration_hook(Mine()) is get_model("hist_gradient_boosting").iterations
    assert iteration_hook(xgboost.XGBRegressor()) is get_model("xgboost").iterations
    # XGBoost's random forest subclasses XGBClassifier but does not boost; pipelines run without stopping.
    assert iteration_hook(xgboost.XGBRFClassifier()) is None
    assert iteration_hook(make_pipeline(HistGradientBoostingRegressor())) is None
    assert iteration_hook(LogisticRegression()) is None


def test_detecting_a_boosting_estimator_imports_no_boosting_library():
    # Every study from Python asks, so the check must not cost xgboost's or lightgbm's import time.
    code = (
        "import sys; from sklearn.linear_model import Ridge; from tuner.models import iteration_hook; "
        "assert iteration_hook(Ridge()) is None; "
        "assert not {'xgboost', 'lightgbm'} & set(sys.modules), sorted({'xgboost', 'lightgbm'} & set(sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("entry", [e for e in all_entries() if e.knobs], ids=lambda e: e.name)
def test_every_regularisation_knob_is_a_parameter_of_the_models_default_space(entry) -> None:
    params = set(entry.classifier_space) | set(entry.regressor_space)
    missing = [k.param for k in entry.knobs if k.param not in params]
    assert not missing, f"{entry.name}: knobs {missing} are not in its default space"


def test_every_catalog_model_knows_its_regularisation_knobs() -> None:
    assert [e.name for e in all_entries() if not e.knobs and not e.as_given] == []


def test_the_thread_policys_n_jobs_reaches_models_that_use_it_and_not_logistic_regression():
    """scikit-learn ≥ 1.8 ignores LogisticRegression's n_jobs and warns on every fit where it is set
    (an error under this suite's warning filter): an idle machine's 2 threads must not set it."""
    X, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    logistic = get_model("logistic").build("classification", {}, seed=0, n_jobs=2)
    assert logistic.get_params()["logisticregression__n_jobs"] is None
    logistic.fit(X, y)  # no FutureWarning about n_jobs
    forest = get_model("random_forest").build("classification", {}, seed=0, n_jobs=2)
    assert forest.get_params()["n_jobs"] == 2
