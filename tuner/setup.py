"""Spec + data → :class:`StudyContext`: everything a trial needs, decided once per run.

:func:`build` loads the data, resolves the model, metric and search space, makes the CV plan
(scheme, held-out rows, ordered folds), the pruning plan (what one pruning step is) and the early
stopping plan, and runs every check that can fail before a trial: a bad spec, data or model never
reaches the storage.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import optuna
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import make_pipeline

from tuner.cv import (
    CVPlan,
    Split,
    StoppingPlan,
    check_augment,
    fit_and_score,
    is_step_param,
    make_plan,
    model_params,
    resolve_scheme,
    stopping_plan,
)
from tuner.data import Arrays, Dataset, check_groups, load_dataset, make_preprocessor, scoring_groups
from tuner.errors import CatalogError, SpecError, did_you_mean, unknown_text
from tuner.metrics import Metric, check_metric, default_metric, get_metric
from tuner.models import ModelEntry, entry_for, get_model, in_pipeline, is_registered, make_step, model_names
from tuner.search import FULL, Space, levels, merge, pruner_defaults, suggest
from tuner.seeds import seed_for
from tuner.spec import ParamSpec, StudySpec, expand_shorthand
from tuner.targets import check as check_targets
from tuner.targets import directions

Step = Literal["fold", "epoch", "rows", "iterations", "none"]


@dataclass(frozen=True)
class PruningPlan:
    """What one pruning step of a trial is: the only place that decides it.

    - ``fold``: after each CV fold the trial reports its running mean (or, for the Wilcoxon pruner,
      ``per_fold_values``: that fold's own value) at step = the fold's index, and may be pruned
      before its last fold;
    - ``epoch``: a network (a model with an epoch hook) reports after every epoch of every fold
      its validation loss on the fold's stopping rows (a split of the training rows, never the
      validation fold), negated when the study maximizes so that higher is better as for the
      pruner, at step = fold index × ``epochs_per_fold`` + epoch (0-based). ``epochs_per_fold``
      is the largest epoch cap the space allows, so a step means the same fold and epoch in every
      trial and steps grow across folds; a fold that stopped early leaves the rest of its steps
      out. The pruner may stop the trial after any epoch, inside a fold. It applies to networks
      with ``fidelity: folds`` and one objective, except for the Wilcoxon pruner (which compares
      fold values, so it keeps ``fold``);
    - ``rows`` / ``iterations``: multi-fidelity screening first cross-validates the trial on a
      share of each training fold's rows (or of its boosting iterations) at each of ``levels``
      percent, reported at step = the level; survivors run the full CV, which is not pruned;
    - ``none``: nothing is reported (Optuna cannot prune multi-objective studies).
    """

    step: Step
    levels: tuple[int, ...] = ()
    per_fold_values: bool = False
    epochs_per_fold: int = 0
    maximize: bool = True

    @property
    def by_fold(self) -> bool:
        return self.step == "fold"

    @property
    def by_epoch(self) -> bool:
        return self.step == "epoch"

    def epoch_step(self, fold: int, epoch: int) -> int:
        """The step of ``epoch`` (0-based) of fold ``fold``: monotone across folds."""
        return fold * self.epochs_per_fold + epoch

    def epoch_value(self, val_loss: float) -> float:
        """The value reported for an epoch's validation loss (negated when the study maximizes)."""
        return -val_loss if self.maximize else val_loss

    @property
    def screens(self) -> bool:
        return self.step in ("rows", "iterations")

    @classmethod
    def of(
        cls,
        fidelity: str,
        pruner: str,
        *,
        multi_objective: bool,
        levels: tuple[int, ...] = (),
        epochs_per_fold: int = 0,
        maximize: bool = True,
    ) -> PruningPlan:
        """The plan for these settings, unchecked: :func:`pruning_plan` checks a spec's first; a
        report reads a stored study's plan with it. ``epochs_per_fold`` > 0: a network's epoch cap."""
        if fidelity in ("rows", "iterations"):
            return cls(fidelity, levels=levels)  # type: ignore[arg-type]
        if multi_objective:
            return cls("none")
        if epochs_per_fold > 0 and pruner != "wilcoxon":
            return cls("epoch", epochs_per_fold=epochs_per_fold, maximize=maximize)
        return cls("fold", per_fold_values=pruner == "wilcoxon")

    def axis_titles(self, metric: str) -> tuple[str, str]:
        """How a chart of a trial's intermediate values names its axes (step, value)."""
        if self.step == "fold":
            return "fold (step)", f"{metric} of the fold" if self.per_fold_values else f"running mean of {metric}"
        if self.step == "epoch":
            loss = "validation loss on the stopping rows" + (" (negated)" if self.maximize else "")
            return f"fold × {self.epochs_per_fold} + epoch (step)", loss
        if self.screens:
            share = "each training fold's rows" if self.step == "rows" else "the boosting iterations"
            return f"% of {share} (step)", f"mean {metric}"
        return "step", metric


@dataclass(frozen=True)
class StudyContext:
    """Everything a trial needs, built once per run (data loaded, folds fixed, metric resolved).

    Custom objectives (``fn(trial, ctx)``) receive it: ``ctx.suggest(trial)``,
    ``ctx.build_estimator(params)``, ``ctx.fold(i)`` and ``ctx.metric`` cover most of them.
    """

    spec: StudySpec
    dataset: Dataset
    cv: CVPlan
    metric: Metric
    model: ModelEntry
    space: Space
    model_seed: int
    pruning: PruningPlan
    # Early stopping of boosting models in each fold, or None (see tuner.cv.stopping_plan).
    stopping: StoppingPlan | None = None
    # Rows set aside by `cv.holdout_test`: never tuned on, scored once by `tuner refit`.
    holdout: Dataset | None = None
    # Validation score of a constant model on the same folds (what `underfit` compares with).
    baseline: float | None = None
    # Labels of the groups that get per-group scores (`fairness.groups` or `data.groups`), or None.
    score_groups: np.ndarray | None = None
    # Keyword arguments of every fit (TunerSearchCV.fit(X, y, **fit_params)); per-row values are
    # cut to each fold's training rows.
    fit_params: Mapping[str, Any] = field(default_factory=dict)
    # Threads per model fit in this process (tuner.threads.model_threads): the catalog passes it as
    # `n_jobs`; the engine caps OpenMP and BLAS pools at it around the trial loop.
    threads: int = 1

    @property
    def splits(self) -> tuple[Split, ...]:
        """The folds, ``(train positions, validation positions)``, in the order trials run them."""
        return self.cv.splits

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every active parameter of the study's search space."""
        return suggest(trial, self.space)

    def params_of(self, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        """A finished trial's parameters with the space's fixed values, as the objective built them."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # values outside a since-changed space are still used
            # FixedTrial answers every suggest_* call like the live trial did.
            return self.suggest(cast("optuna.Trial", optuna.trial.FixedTrial(dict(trial.params))))

    def build_estimator(self, params: dict[str, Any]) -> Any:
        """An unfitted estimator (with preprocessing when the data needs it) for ``params``."""
        estimator = self.model.build(
            self.dataset.task,
            model_params(params),
            seed=self.model_seed,
            n_jobs=self.threads,
            proba=self.metric.needs_proba,
        )
        if self.model.as_given or self.spec.pipeline is not None:
            return estimator  # a user's estimator, or the declared pipeline, does its own preprocessing
        pre = make_preprocessor(self.dataset, handles_missing=self.model.handles_missing)
        return estimator if pre is None else make_pipeline(pre, estimator)

    def fold(self, index: int) -> tuple[Any, Any, Any, Any]:
        """``X_train, y_train, X_val, y_val`` of fold ``index``."""
        train, val = self.cv.splits[index]
        X, y = self.dataset.X, self.dataset.y
        return X.iloc[train], y[train], X.iloc[val], y[val]

    def val_groups(self, index: int) -> np.ndarray | None:
        """Group labels of the validation rows of fold ``index`` (None without per-group scores)."""
        return None if self.score_groups is None else self.score_groups[self.cv.splits[index][1]]


# The name custom objectives have always used for their second argument.
ObjectiveContext = StudyContext


@dataclass(frozen=True)
class PythonData:
    """What Python hands in instead of the spec's data source and catalog model: a DataFrame or
    ``X, y`` arrays, an estimator or pipeline to tune as it is, the folds of a CV splitter, and
    keyword arguments of every fit. Carried as one value, so that worker processes get it whole."""

    data: pd.DataFrame | Arrays | None = None
    estimator: Any = None
    folds: Sequence[Split] | None = None
    fit_params: Mapping[str, Any] = field(default_factory=dict)


def build(spec: StudySpec, *, data: pd.DataFrame | Arrays | PythonData | None = None, threads: int = 1) -> StudyContext:
    """Load data, fix the folds, resolve metric, model and space; every check runs here, before any trial.

    Args:
        spec: The validated study spec.
        data: A pandas DataFrame or :class:`~tuner.data.Arrays` replacing ``spec.data.source``, or a
            :class:`PythonData` that also brings an estimator, folds or fit parameters.
        threads: Threads per model fit (see :func:`tuner.threads.model_threads`).

    Raises:
        TunerError: a :class:`~tuner.errors.SpecError`, :class:`~tuner.errors.DataError` or
            :class:`~tuner.errors.CatalogError` naming the field to fix.
    """
    label = spec.label
    given = data if isinstance(data, PythonData) else PythonData(data=data)
    if given.estimator is None:
        _check_model_name(spec)
    dataset = load_dataset(
        spec.data, base_dir=spec.base_dir, label=label, frame=given.data, fairness_groups=spec.fairness.groups
    )
    metric_name = spec.metric or default_metric(dataset.task, dataset.n_classes)
    problem = check_metric(metric_name, dataset.task, dataset.n_classes)
    if problem:
        raise SpecError(f"{label}, field 'metric': {problem}.")
    model = (
        get_model(spec.model, label=label, base_dir=spec.base_dir)
        if given.estimator is None
        else entry_for(given.estimator, name=spec.model)
    )
    if spec.pipeline is not None:
        model = _declared_pipeline(spec, model, dataset, given.estimator is not None)
    if given.estimator is not None:
        _check_stopping(spec, model, given.estimator)
    if dataset.task not in model.tasks:
        raise SpecError(
            f"{label}, field 'model': {spec.model!r} has no {dataset.task} variant (it supports "
            f"{', '.join(model.tasks)}); pick another model from `tuner models` or set `data.task`."
        )
    space = merge(model.space(dataset.task), spec.space, label=label)
    example = given.estimator if given.estimator is not None else _example_estimator(model, dataset.task)
    _check_space_names(spec, space, example)
    if given.folds is not None:
        cv, holdout = given_plan(spec, dataset, given.folds), None
    else:
        cv_seed = spec.cv.seed if spec.cv.seed is not None else seed_for(spec.seed, "cv")
        cv, dataset, holdout = make_plan(spec.cv, dataset, seed=cv_seed, label=label)
    pruning = pruning_plan(spec, model, space=space, example=example)
    score_groups = _score_groups(spec, dataset)
    check_augment(spec, dataset, example)
    metric = get_metric(metric_name, dataset.task)
    return StudyContext(
        spec=spec,
        dataset=dataset,
        cv=cv,
        metric=metric,
        model=model,
        space=space,
        model_seed=seed_for(spec.seed, "model"),
        pruning=pruning,
        stopping=stopping_plan(
            spec.early_stopping,
            model.iterations,
            min_train_rows=cv.min_train_rows,
            ordered=cv.time_ordered,
            stratify=dataset.task == "classification",
            epochs=model.epochs,
        ),
        holdout=holdout,
        baseline=baseline_score(dataset, cv, metric),
        score_groups=score_groups,
        fit_params=dict(given.fit_params),
        threads=threads,
    )


def _check_space_names(spec: StudySpec, space: Mapping[str, Any], example: Any) -> None:
    """Every searched name is a parameter of the estimator (``step__param`` of a pipeline too), before any trial."""
    if example is None or not hasattr(example, "get_params"):
        return
    accepted = set(example.get_params(deep=True))
    owner = f"model {spec.model!r}" if spec.pipeline is None else f"the pipeline of model {spec.model!r}"
    for name in space:
        if name not in accepted and not is_step_param(name):
            shown_names = sorted(accepted)
            listed = ", ".join(shown_names[:40]) + (
                f", … ({len(shown_names) - 40} more)" if len(shown_names) > 40 else ""
            )
            raise SpecError(
                f"{spec.label}, field 'space.{name}': {owner} has no parameter {name!r}."
                f"{did_you_mean(name, accepted)} Parameters: {listed}."
            )


def _declared_pipeline(spec: StudySpec, model: ModelEntry, dataset: Dataset, from_python: bool) -> ModelEntry:
    """The catalog model behind the spec's ``pipeline:`` steps, each step checked before any trial."""
    steps = spec.pipeline or ()
    if from_python:
        raise spec.field_error(
            "pipeline",
            "a declared `pipeline` wraps the spec's catalog model, but an estimator was passed from Python "
            "(`model=`); put the steps in that estimator (a scikit-learn Pipeline) and drop `pipeline`",
        )
    for index, step in enumerate(steps):
        try:
            make_step(step, dataset.task)
        except TypeError as exc:
            raise spec.field_error(
                f"pipeline.{index}",
                f"step {step.name!r} does not take these options ({exc}); give the keyword arguments of its "
                "scikit-learn transformer, as in `pca: {n_components: 0.95}`",
            ) from None
    names = [step.name for step in steps]
    categorical = dataset.categorical_columns
    if categorical and "onehot" not in names:
        shown_columns = ", ".join(map(str, categorical[:5])) + (" …" if len(categorical) > 5 else "")
        raise spec.field_error(
            "pipeline",
            f"the data has non-numeric columns ({shown_columns}), which no step encodes, so every trial would fail; "
            "add `- onehot` as the first step",
        )
    if dataset.has_missing and not model.handles_missing and "impute" not in names:
        raise spec.field_error(
            "pipeline",
            f"the data has missing values and model {spec.model!r} does not take them, so every trial would fail; "
            "add `- impute: median` (after `onehot`, before the other steps)",
        )
    return in_pipeline(model, steps)


def _check_stopping(spec: StudySpec, model: ModelEntry, estimator: Any) -> None:
    """``early_stopping: true`` for an estimator from Python that cannot stop early is refused.

    A catalog model without an iteration hook ignores the setting (its default, ``auto``, is
    meant for every spec), but ``true`` next to an estimator from Python is an explicit request
    (``TunerSearchCV(early_stopping=True)``), and tuning without it would hide the mistake.
    """
    if spec.early_stopping.enabled is not True or model.iterations is not None:
        return
    raise spec.field_error(
        "early_stopping",
        f"early stopping needs a boosting estimator that counts its iterations (XGBClassifier, XGBRegressor, "
        f"LGBMClassifier, LGBMRegressor, HistGradientBoostingClassifier or HistGradientBoostingRegressor, passed "
        f"itself rather than inside a Pipeline), but the estimator is a {type(estimator).__name__}; "
        "leave early stopping off (false)",
    )


def given_plan(spec: StudySpec, dataset: Dataset, folds: Sequence[Split]) -> CVPlan:
    """A CV plan of folds a splitter made in Python, in the splitter's order (their split numbers)."""
    n_rows = len(dataset.y)
    splits = []
    for index, (train, val) in enumerate(folds):
        train_rows, val_rows = np.asarray(train, dtype=np.int64), np.asarray(val, dtype=np.int64)
        if len(train_rows) == 0 or len(val_rows) == 0 or max(train_rows.max(), val_rows.max()) >= n_rows:
            raise SpecError(
                f"{spec.label}, argument 'cv': split {index} has {len(train_rows)} training and {len(val_rows)} "
                f"validation rows of {n_rows}; a splitter must give both, as positions of rows of X."
            )
        splits.append((train_rows, val_rows))
    if not splits:
        raise SpecError(f"{spec.label}, argument 'cv': the splitter gave no splits; give one with at least 2.")
    return CVPlan(scheme=resolve_scheme(spec.cv, dataset), splits=tuple(splits), given=True)


def _check_model_name(spec: StudySpec) -> None:
    """An unknown catalog name is a spec error (its file, line and field), found before the data loads."""
    name = spec.model
    if ":" in name or is_registered(name):
        return  # `pkg.module:factory` imports, and known entries, are resolved by get_model
    raise spec.field_error("model", unknown_text("model", name, model_names()))


def pruning_plan(
    spec: StudySpec, model: ModelEntry, *, space: Mapping[str, Any] | None = None, example: Any = None
) -> PruningPlan:
    """What a pruning step is for this study; refuses settings that cannot work, before any trial.

    ``space`` and ``example`` (the model's estimator with default parameters) give a network's
    largest epoch cap, the number of epoch steps per fold.
    """
    fidelity = spec.pruner.fidelity
    if fidelity == "folds":
        epochs = 0 if spec.objective.custom else epoch_cap(model, space or {}, example)
        maximize = spec.objective.multi or directions(spec.objective)[0] == "maximize"
        return PruningPlan.of(
            fidelity, spec.pruner.name, multi_objective=spec.objective.multi, epochs_per_fold=epochs, maximize=maximize
        )
    where = f"{spec.label}, field 'pruner.fidelity'"
    if spec.objective.custom:
        raise SpecError(f"{where}: `{fidelity}` screening needs the built-in CV objective; drop `fidelity`.")
    if spec.objective.multi:
        raise SpecError(f"{where}: Optuna cannot prune multi-objective studies; drop `fidelity` or use one objective.")
    if fidelity == "iterations" and model.iterations is None:
        raise SpecError(
            f"{where}: `iterations` needs a boosting model (xgboost, lightgbm, hist_gradient_boosting), but "
            f"{spec.model!r} has no iteration count; use `fidelity: rows`."
        )
    found = levels(spec.pruner)
    if not found:
        options = {**pruner_defaults(spec.pruner), **spec.pruner.options}
        raise SpecError(
            f"{spec.label}, field 'pruner.options': min_resource={options['min_resource']} with "
            f"reduction_factor={options['reduction_factor']} leaves no level below {FULL}%; "
            "lower `min_resource` (e.g. 11 with reduction_factor 3)."
        )
    return PruningPlan.of(fidelity, spec.pruner.name, multi_objective=False, levels=tuple(found))


def epoch_cap(model: ModelEntry, space: Mapping[str, Any], example: Any) -> int:
    """The most epochs one fold of ``model`` can train (0: the model does not train by epoch).

    The largest value the space allows for the epoch hook's parameter, else the estimator's default.
    """
    hook = model.epochs
    if hook is None:
        return 0
    param = space.get(hook.param)
    if param is not None:
        if param.type == "fixed":
            return int(param.value)
        if param.type == "categorical":
            return int(max(param.choices))
        return int(param.high)
    if example is not None and hasattr(example, "get_params"):
        return int(example.get_params().get(hook.param, 0))
    return 0


def stored_epoch_cap(spec: Mapping[str, Any]) -> int:
    """:func:`epoch_cap` of a stored spec (a dict, as a report reads it): 0 for a model that does not
    train by epoch, is not installed, or whose space no longer parses."""
    name = str(spec.get("model", ""))
    if not is_registered(name):
        return 0
    try:
        model = get_model(name)
        raw = (spec.get("space") or {}).get(model.epochs.param) if model.epochs else None
        space = (
            {}
            if raw is None or model.epochs is None
            else {model.epochs.param: ParamSpec.model_validate(expand_shorthand(raw))}
        )
        return epoch_cap(model, space, _example_estimator(model, model.tasks[0]))
    except (CatalogError, ValueError):
        return 0


def _score_groups(spec: StudySpec, dataset: Dataset) -> np.ndarray | None:
    """The labels per-group scores use, checked before any trial runs (None when there are none).

    Raises:
        DataError: a group with one row, or missing labels.
        SpecError: a group objective or constraint while no groups are scored.
    """
    explicit = spec.fairness.groups is not None
    groups, why = scoring_groups(dataset, explicit=explicit)
    if groups is not None:
        check_groups(groups, field_name="fairness.groups" if explicit else "data.groups", label=spec.label)
    check_targets(spec, has_groups=groups is not None, why_no_groups=why)
    return groups


def baseline_score(dataset: Dataset, cv: CVPlan, metric: Metric) -> float:
    """Mean validation score of a constant model (class priors, or the mean target) on the folds."""
    scores = []
    for train, val in cv.splits:
        dummy = DummyClassifier(strategy="prior") if dataset.task == "classification" else DummyRegressor()
        # The constant model's warnings (an ill-defined precision, say) reach the user as they always did.
        fold = fit_and_score(
            dummy, dataset.X, dataset.y, train, val, seed=0, metric=metric, score_train=False, capture_warnings=False
        )
        assert fold.val is not None
        scores.append(fold.val)
    return statistics.fmean(scores)


def _example_estimator(model: ModelEntry, task: Any) -> Any | None:
    """The model's estimator with default parameters, or None when it cannot be built without them."""
    try:
        return model.factory(task)()
    except Exception:  # a custom factory may need arguments; then we cannot check names up front
        return None


__all__ = [
    "ObjectiveContext",
    "PruningPlan",
    "PythonData",
    "StudyContext",
    "build",
    "epoch_cap",
    "given_plan",
    "pruning_plan",
    "stored_epoch_cap",
]
