"""Networks (``tuner/models/_nets.py``, ``tuner/cv/_epochs.py``): depth × width spaces, training epoch by epoch
with the losses measured on a split of the training fold (never the validation fold), the ``epoch`` pruning
step (a trial pruned inside a fold), the stored epoch curves, early stopping and the refit, seeded runs.

``torch_mlp`` needs the ``torch`` extra: its tests skip without torch and skorch, unless
``TUNER_REQUIRE_TORCH=1`` (as in ``.ci/run``), where they fail instead."""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.base import clone

import tuner
from tuner.errors import CatalogError
from tuner.models import EpochHook, EpochModel, ModelEntry, all_entries, get_model
from tuner.models import _registry as registry
from tuner.models._nets import MLPNetClassifier
from tuner.objective import make_objective
from tuner.refit import refit_best
from tuner.setup import PruningPlan, build
from tuner.store import schema

# Small networks and few epochs: every fold trains in a fraction of a second.
_MLP = {"n_layers": 1, "n_units": 16, "batch_size": 64, "learning_rate_init": 0.01, "early_stopping": False}
_TORCH = {"n_layers": 1, "n_units": 16, "batch_size": 64, "lr": 0.01, "dropout": 0.1, "weight_decay": 1e-4}


@pytest.fixture
def torch_extra() -> None:
    """Skip a torch_mlp test without the extra, or fail it where the extra is required (CI)."""
    missing = [name for name in ("torch", "skorch") if importlib.util.find_spec(name) is None]
    if not missing:
        return
    why = f"torch_mlp needs {' and '.join(missing)} (pip install -e '.[torch]')"
    if os.environ.get("TUNER_REQUIRE_TORCH") == "1":
        pytest.fail(f"{why}, and TUNER_REQUIRE_TORCH=1 requires it here")
    pytest.skip(why)


def _final(estimator):
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return estimator


def test_depth_and_width_are_two_parameters_that_build_the_hidden_layers():
    model = get_model("mlp").build("classification", {"n_layers": 3, "n_units": 16}, seed=0)
    final = _final(model)
    assert isinstance(final, EpochModel)
    assert final.hidden_layer_sizes == (16, 16, 16)
    final.set_params(n_layers=2, n_units=40)
    assert clone(final).hidden_layer_sizes == (40, 40)
    assert {"n_layers", "n_units", "alpha", "learning_rate_init", "batch_size", "early_stopping"} <= set(
        final.get_params()
    )
    assert "hidden_layer_sizes" not in final.get_params()  # searched as depth and width, not as a tuple


def test_pruning_plan_steps_are_epochs_for_networks_and_monotone_across_folds():
    plan = PruningPlan.of("folds", "median", multi_objective=False, epochs_per_fold=30, maximize=True)
    assert plan.by_epoch and not plan.by_fold
    steps = [plan.epoch_step(fold, epoch) for fold in range(3) for epoch in range(30)]
    assert steps == sorted(steps) and len(set(steps)) == 90
    assert plan.epoch_value(0.25) == -0.25  # the study maximizes: a lower loss is a higher value
    assert PruningPlan.of("folds", "median", multi_objective=False, epochs_per_fold=30, maximize=False).epoch_value(
        0.25
    ) == pytest.approx(0.25)
    assert plan.axis_titles("accuracy") == (
        "fold × 30 + epoch (step)",
        "validation loss on the stopping rows (negated)",
    )
    # Wilcoxon compares fold values; several objectives cannot be pruned; other models step by fold.
    assert PruningPlan.of("folds", "wilcoxon", multi_objective=False, epochs_per_fold=30).step == "fold"
    assert PruningPlan.of("folds", "median", multi_objective=True, epochs_per_fold=30).step == "none"
    assert PruningPlan.of("folds", "median", multi_objective=False).step == "fold"


class _PruneFrom(optuna.pruners.BasePruner):
    """Prunes as soon as a trial reports ``step`` (deterministic, unlike the median rule)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


def _run_with_pruner(write_spec, pruner: optuna.pruners.BasePruner, changes: dict) -> optuna.trial.FrozenTrial:
    context = build(tuner.load_spec(write_spec(changes)))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.optimize(make_objective(context), n_trials=1)
    return study.trials[0]


@pytest.mark.parametrize(("prune_at", "folds_seen"), [(3, 1), (12 + 2, 2)])
def test_a_trial_is_pruned_between_two_epochs_inside_a_fold(write_spec, prune_at, folds_seen):
    space = {**_MLP, "max_iter": 12}
    trial = _run_with_pruner(write_spec, _PruneFrom(prune_at), {"model": "mlp", "space": space, "pruner": "median"})
    assert trial.state == TrialState.PRUNED
    steps = sorted(trial.intermediate_values)
    assert steps[-1] == prune_at  # pruned right after that epoch, inside fold `folds_seen - 1`
    assert steps == list(range(prune_at + 1))  # one step per epoch, fold 1 from step 12 on
    curves = trial.user_attrs[schema.EPOCH_CURVES]
    assert len(curves) == folds_seen  # the pruned fold's epochs are kept too
    assert [len(c[schema.EPOCH_VAL_LOSS]) for c in curves] == [12] * (folds_seen - 1) + [prune_at % 12 + 1]
    # The reported value is the negated validation loss (the study maximizes ROC AUC).
    last = curves[-1][schema.EPOCH_VAL_LOSS][-1]
    assert trial.intermediate_values[prune_at] == pytest.approx(-last)
    # Folds that finished before the pruned one keep their scores.
    assert len(trial.user_attrs.get(schema.VAL_SCORES, [])) == folds_seen - 1


def test_epoch_curves_are_stored_per_fold_and_early_stopping_records_the_best_epochs(write_spec):
    space = {**_MLP, "max_iter": 40, "learning_rate_init": 0.05}
    stopping = {"enabled": True, "epoch_rounds": 2, "min_delta": 0.0}
    spec = write_spec({"model": "mlp", "space": space, "budget": {"n_trials": 1}, "early_stopping": stopping})
    trial = tuner.run_study(spec).study.trials[0]
    assert trial.state == TrialState.COMPLETE
    curves = trial.user_attrs[schema.EPOCH_CURVES]
    assert len(curves) == 3
    for fold, curve in enumerate(curves):
        assert set(curve) == {schema.EPOCH_TRAIN_LOSS, schema.EPOCH_VAL_LOSS}
        n_epochs = len(curve[schema.EPOCH_VAL_LOSS])
        assert len(curve[schema.EPOCH_TRAIN_LOSS]) == n_epochs and 1 <= n_epochs <= 40
        assert all(isinstance(v, float) and v >= 0 for v in curve[schema.EPOCH_TRAIN_LOSS])
        # The fold's epochs were reported at steps fold × 40 + epoch.
        assert [s for s in trial.intermediate_values if fold * 40 <= s < (fold + 1) * 40] == list(
            range(fold * 40, fold * 40 + n_epochs)
        )
    best = trial.user_attrs[schema.BEST_ITERATIONS]
    lengths = [len(c[schema.EPOCH_VAL_LOSS]) for c in curves]
    assert all(1 <= b <= n for b, n in zip(best, lengths, strict=True))
    assert any(n < 40 for n in lengths)  # a learning rate of 0.05 on 380 rows stops well before 40 epochs


_SEEN: list[tuple[str, set[tuple]]] = []


def _rows(X: object) -> set[tuple]:
    return set(map(tuple, np.round(np.asarray(X, dtype=float), 6)))


class _SpyNet(MLPNetClassifier):
    """Remembers the rows it trained on and the rows its losses were measured on (rows are distinct)."""

    def fit_epoch(self, X, y, sample_weight=None):  # type: ignore[no-untyped-def]
        _SEEN.append(("fit", _rows(X)))
        super().fit_epoch(X, y, sample_weight)

    def epoch_loss(self, X, y):  # type: ignore[no-untyped-def]
        _SEEN.append(("loss", _rows(X)))
        return super().epoch_loss(X, y)


def _spy(**params: object) -> object:
    return _SpyNet(**{**_MLP, "max_iter": 2, **params})


def test_the_epoch_losses_never_see_the_validation_fold(write_spec, monkeypatch):
    # No scaler (scale=False), so a row's values identify it.
    entry = ModelEntry(name="spy_net", description="test", classifier=_spy, epochs=EpochHook("max_iter"))
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)  # for this test only
    _SEEN.clear()
    spec = write_spec({"model": "spy_net", "space": {}, "budget": {"n_trials": 1}, "early_stopping": {"fraction": 0.2}})
    result = tuner.run_study(spec)
    splits, X = result.context.splits, result.context.dataset.X
    per_fold = len(_SEEN) // len(splits)  # 2 epochs: fit, loss(fit rows), loss(stop rows), twice
    assert per_fold == 6
    for index, (train, val) in enumerate(splits):
        seen = _SEEN[index * per_fold : (index + 1) * per_fold]
        fit_rows = seen[0][1]
        stop_rows = next(rows for kind, rows in seen if kind == "loss" and rows != fit_rows)
        assert all(rows in (fit_rows, stop_rows) for _, rows in seen)
        assert fit_rows.isdisjoint(stop_rows)
        assert fit_rows | stop_rows == _rows(X.iloc[train])  # all of the training fold, nothing else
        assert stop_rows.isdisjoint(_rows(X.iloc[val]))
        assert abs(len(stop_rows) - 0.2 * len(train)) <= 1


def test_mlp_refits_with_the_folds_best_epochs_and_predicts_from_its_file(write_spec, tmp_path, run_cli):
    space = {**_MLP, "max_iter": 30, "learning_rate_init": 0.05}
    stopping = {"enabled": True, "epoch_rounds": 2, "min_delta": 0.0}
    spec = write_spec({"model": "mlp", "space": space, "budget": {"n_trials": 1}, "early_stopping": stopping})
    result = tuner.run_study(spec)
    best = result.study.best_trial.user_attrs[schema.BEST_ITERATIONS]
    refit = refit_best(str(spec), out=tmp_path / "mlp.joblib")
    assert refit.card["iterations"]["param"] == "max_iter"
    assert _final(refit.estimator).max_iter == max(1, round(sum(best) / len(best)))
    assert _final(refit.estimator).early_stopping is False  # the epoch count is fixed; nothing left to stop on
    X = result.context.dataset.X.head(30)
    X.to_csv(tmp_path / "new.csv", index=False)
    out = run_cli("predict", tmp_path / "mlp.joblib", tmp_path / "new.csv", "--out", tmp_path / "pred.csv")
    assert out.code == 0, out.err


def test_torch_mlp_is_in_the_catalog_only_with_its_extra(monkeypatch):
    entry = registry._REGISTRY["torch_mlp"]
    assert entry.requires == "torch" and "pip install 'tuner[torch]'" in entry.description
    monkeypatch.setitem(registry._REGISTRY, "torch_mlp", ModelEntry(**{**entry.__dict__, "modules": ("no_such_mod",)}))
    with pytest.raises(
        CatalogError, match=r"needs the 'torch' package; install it with `pip install 'tuner\[torch\]'`"
    ):
        get_model("torch_mlp")


@pytest.mark.slow  # importing torch alone takes seconds
@pytest.mark.usefixtures("torch_extra")
def test_torch_mlp_tunes_refits_and_predicts(write_spec, tmp_path, run_cli):
    assert "torch_mlp" in {e.name for e in all_entries()}
    space = {**_TORCH, "max_epochs": 6}
    stopping = {"enabled": True, "epoch_rounds": 2}
    spec = write_spec({"model": "torch_mlp", "space": space, "budget": {"n_trials": 2}, "early_stopping": stopping})
    result = tuner.run_study(spec)
    trials = result.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, [t.user_attrs.get("error") for t in trials]
    assert result.best_value > 0.9  # ROC AUC on breast cancer after a few epochs
    curves = trials[0].user_attrs[schema.EPOCH_CURVES]
    assert len(curves) == 3 and all(1 <= len(c[schema.EPOCH_VAL_LOSS]) <= 6 for c in curves)
    assert result.context.pruning.by_epoch and result.context.pruning.epochs_per_fold == 6

    cli = run_cli("refit", spec, "--out", tmp_path / "net.joblib")
    assert cli.code == 0, cli.err
    model = tuner.load_model(tmp_path / "net.joblib").estimator
    best = result.study.best_trial.user_attrs[schema.BEST_ITERATIONS]
    assert _final(model).max_epochs == max(1, round(sum(best) / len(best)))
    X = result.context.dataset.X.head(30)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X))
    X.to_csv(tmp_path / "new.csv", index=False)
    out = run_cli("predict", tmp_path / "net.joblib", tmp_path / "new.csv", "--out", tmp_path / "pred.csv")
    assert out.code == 0, out.err


@pytest.mark.usefixtures("torch_extra")
def test_torch_mlp_regression_standardises_the_target():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    model = get_model("torch_mlp").build("regression", {**_TORCH, "max_epochs": 30}, seed=0).fit(X, y)
    predicted = model.predict(X)
    assert abs(predicted.mean() - y.mean()) < 0.2 * y.std()  # in the target's own units
    assert np.corrcoef(predicted, y)[0, 1] > 0.5


@pytest.mark.parametrize(
    ("model", "space"), [("mlp", {**_MLP, "max_iter": 5}), ("torch_mlp", {**_TORCH, "max_epochs": 4})]
)
def test_the_same_seed_gives_the_same_trials(write_spec, model, space, request):
    if model == "torch_mlp":
        request.getfixturevalue("torch_extra")
    spec = {"model": model, "space": space, "budget": {"n_trials": 2}, "early_stopping": {"enabled": True}}
    runs = [tuner.run_study(write_spec(spec, f"{name}.yaml"), storage="memory://") for name in ("a", "b")]
    first, second = ([(t.value, t.user_attrs[schema.EPOCH_CURVES]) for t in r.study.trials] for r in runs)
    assert first == second


@pytest.mark.parametrize("name", ["mlp_digits", "nets_digits"])
def test_the_example_specs_validate_with_epoch_pruning(name, run_cli, request):
    if name == "nets_digits":
        request.getfixturevalue("torch_extra")
    path = Path(__file__).resolve().parents[1] / "studies" / f"{name}.yaml"
    result = run_cli("validate", path)
    assert result.code == 0, result.err
    context = build(tuner.load_spec(path))
    assert context.pruning.by_epoch and context.pruning.epochs_per_fold in (30, 40)
    assert context.stopping is not None and context.stopping.rounds == 10  # 1198 training rows: auto is on


def test_a_report_names_the_epoch_steps_of_a_stored_network_study(write_spec, tmp_path):
    from tuner.report._html import _intermediate
    from tuner.setup import stored_epoch_cap
    from tuner.store import read_study

    spec = write_spec({"model": "mlp", "space": {**_MLP, "max_iter": 3}, "budget": {"n_trials": 1}, "pruner": "median"})
    result = tuner.run_study(spec)
    snap = read_study("tiny", f"sqlite:///{tmp_path / 'tuner.db'}")
    assert stored_epoch_cap(snap.spec) == 3
    assert stored_epoch_cap({**snap.spec, "model": "logistic"}) == 0
    figure = _intermediate(result.study, snap)
    assert figure.layout.xaxis.title.text == "fold × 3 + epoch (step)"
    assert figure.layout.yaxis.title.text == "validation loss on the stopping rows (negated)"
