"""The model catalog: named entries with estimator factories and default search spaces."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tuner.errors import CatalogError, unknown_name
from tuner.spec import ParamSpec, Task, expand_shorthand
from tuner.usercode import import_object

Factory = Callable[..., Any]


def flt(low: float, high: float, *, log: bool = False, step: float | None = None) -> ParamSpec:
    return ParamSpec(type="float", low=low, high=high, log=log, step=step)


def integer(low: int, high: int, *, log: bool = False, step: int | None = None) -> ParamSpec:
    return ParamSpec(type="int", low=low, high=high, log=log, step=step)


def cat(*choices: Any, when: dict[str, Any] | None = None) -> ParamSpec:
    return ParamSpec(type="categorical", choices=choices, when=when)


@dataclass(frozen=True)
class IterationHook:
    """A catalog model's fidelity hook: the parameter that counts boosting iterations and how the
    library stops early (``"xgboost"``, ``"lightgbm"`` or ``"sklearn"`` for HistGradientBoosting)."""

    param: str
    library: Literal["xgboost", "lightgbm", "sklearn"]


@dataclass(frozen=True)
class EpochHook:
    """A catalog network's epoch hook: the parameter that caps its epochs (``max_iter``,
    ``max_epochs``). Its estimator trains one epoch at a time (:class:`tuner.models.EpochModel`), so
    :func:`tuner.cv.fit_and_score` measures the losses of every epoch, stops early, and lets the
    pruner stop the trial between epochs."""

    param: str


@dataclass(frozen=True)
class Knob:
    """A regularisation knob of a catalog model: moving ``param`` towards ``simpler`` ("higher" or
    "lower") makes the model simpler (fights overfitting); the other way adds capacity (fights
    underfitting). ``tuner diagnose`` and the report turn a flag into a step on these."""

    param: str
    simpler: Literal["higher", "lower"]
    what: str


@dataclass(frozen=True)
class ModelEntry:
    """One catalog model.

    Factories are called with the trial's parameters as keyword arguments and return an
    unfitted scikit-learn compatible estimator. ``random_state`` and ``n_jobs`` are filled in by
    :meth:`build` when the estimator has them, so factories stay one-liners.
    """

    name: str
    description: str
    classifier: Factory | None = None
    regressor: Factory | None = None
    classifier_space: Mapping[str, ParamSpec] = field(default_factory=dict)
    regressor_space: Mapping[str, ParamSpec] = field(default_factory=dict)
    scale: bool = False
    handles_missing: bool = False
    # The extra that installs the model (`pip install 'tuner[<requires>]'`), and the modules it
    # needs (default: the module of that name).
    requires: str | None = None
    modules: tuple[str, ...] = ()
    # Fidelity hook: the boosting-iteration parameter and how its library stops early.
    iterations: IterationHook | None = None
    # Put before the catalog's parameter names in a pipeline (``model__``): the start-up portfolio
    # (tuner.search.known_good) is keyed by the bare names.
    param_prefix: str = ""
    # Networks trained epoch by epoch (see EpochHook).
    epochs: EpochHook | None = None
    # The regularisation knobs, strongest first (see Knob).
    knobs: tuple[Knob, ...] = ()
    # An estimator handed in from Python (TunerSearchCV, `run_study(model=...)`): tuned exactly as
    # given, without the catalog's seeding, preprocessing, calibration or scaling (a boosting
    # estimator still gets its library's iteration hook, so the spec's `early_stopping` applies).
    as_given: bool = False

    @property
    def tasks(self) -> tuple[Task, ...]:
        tasks: list[Task] = []
        if self.classifier:
            tasks.append("classification")
        if self.regressor:
            tasks.append("regression")
        return tuple(tasks)

    @property
    def available(self) -> bool:
        if self.requires is None:
            return True
        return all(importlib.util.find_spec(module) is not None for module in self.modules or (self.requires,))

    def factory(self, task: Task) -> Factory:
        factory = self.classifier if task == "classification" else self.regressor
        if factory is None:
            raise CatalogError(
                f"model {self.name!r} has no {task} variant; pick a model listed for {task} by `tuner models`."
            )
        return factory

    def space(self, task: Task) -> Mapping[str, ParamSpec]:
        return self.classifier_space if task == "classification" else self.regressor_space

    def build(self, task: Task, params: Mapping[str, Any], *, seed: int, n_jobs: int = 1, proba: bool = False) -> Any:
        """An unfitted estimator for ``params`` (scaled first when the model needs it).

        ``step__param`` names (a factory that returns a Pipeline) are set with ``set_params``
        after the factory ran; the others are the factory's keyword arguments.
        """
        nested = {k: v for k, v in params.items() if "__" in k}
        estimator = self.factory(task)(**{k: v for k, v in params.items() if k not in nested})
        if nested:
            estimator.set_params(**nested)
        if self.as_given:
            return estimator
        _fill_defaults(estimator, seed=seed, n_jobs=n_jobs, proba=proba)
        if proba and not hasattr(estimator, "predict_proba"):
            # scikit-learn 1.9 deprecated SVC(probability=True) for this wrapper (same Platt
            # scaling on internal folds); it also gives probabilities to any other margin model.
            estimator = CalibratedClassifierCV(estimator, ensemble=False)
        if self.scale:
            estimator = make_pipeline(StandardScaler(), estimator)
        return estimator


class _Configured:
    """A factory of clones of one estimator with the trial's parameters set (picklable for workers)."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def __call__(self, **params: Any) -> Any:
        return clone(self.estimator).set_params(**params)


def entry_for(estimator: Any, *, name: str) -> ModelEntry:
    """A catalog entry for an estimator or pipeline handed in from Python, tuned as it is given.

    A boosting estimator itself (see :func:`iteration_hook`) gets its catalog entry's iteration
    hook, so it stops early and is refitted with the folds' iteration count as a catalog model is.
    """
    factory = _Configured(estimator)
    return ModelEntry(
        name=name,
        description="estimator from Python",
        classifier=factory,
        regressor=factory,
        iterations=iteration_hook(estimator),
        as_given=True,
    )


# The boosting classes whose library tuner.cv stops early, by their package and class name: names,
# because importing xgboost or lightgbm to test isinstance would cost every study their import time.
_BOOSTING_CLASSES: dict[tuple[str, str], str] = {
    ("xgboost", "XGBClassifier"): "xgboost",
    ("xgboost", "XGBRegressor"): "xgboost",
    ("lightgbm", "LGBMClassifier"): "lightgbm",
    ("lightgbm", "LGBMRegressor"): "lightgbm",
    ("sklearn", "HistGradientBoostingClassifier"): "sklearn",
    ("sklearn", "HistGradientBoostingRegressor"): "sklearn",
}
_BOOSTING_PACKAGES = {package for package, _ in _BOOSTING_CLASSES}


def iteration_hook(estimator: Any) -> IterationHook | None:
    """The iteration hook of the catalog entry for ``estimator``'s boosting library, or None.

    The nearest class of the estimator's that one of those libraries defines decides, so a user's
    subclass of ``XGBClassifier`` stops early, while ``XGBRFClassifier`` (a random forest that
    subclasses it) and a ``Pipeline`` do not: a pipeline runs without early stopping, as a spec's
    declared ``pipeline:`` does.
    """
    for cls in type(estimator).__mro__:
        package = cls.__module__.partition(".")[0]
        if package in _BOOSTING_PACKAGES:
            library = _BOOSTING_CLASSES.get((package, cls.__name__))
            if library is None:
                return None
            # One hook per library, the catalog's own (tuner.models._boosting).
            return next(
                (e.iterations for e in _REGISTRY.values() if e.iterations and e.iterations.library == library), None
            )
    return None


def _fill_defaults(estimator: Any, *, seed: int, n_jobs: int, proba: bool) -> None:
    # In a pipeline (a declared `pipeline:`, or a factory that returns one) the model is the last step.
    while hasattr(estimator, "steps") and estimator.steps:
        estimator = estimator.steps[-1][1]
    if not hasattr(estimator, "get_params"):
        return
    current = estimator.get_params(deep=False)
    updates: dict[str, Any] = {}
    if "random_state" in current and current["random_state"] is None:
        updates["random_state"] = seed
    # sklearn treats n_jobs=None as 1 already (and deprecates it on some estimators), so only
    # more threads than 1 (the thread policy's share, tuner.threads) is passed on; threaded
    # libraries default to 1 in their factories.
    if "n_jobs" in current and n_jobs != 1 and not _ignores_n_jobs(estimator):
        updates["n_jobs"] = n_jobs
    if proba and current.get("probability") is False:
        updates["probability"] = True
    if updates:
        estimator.set_params(**updates)


def _ignores_n_jobs(estimator: Any) -> bool:
    """scikit-learn's LogisticRegression has ignored ``n_jobs`` since 1.8 (before, only a one-vs-rest
    fit used it) and warns on every fit where it is set; threads reach its BLAS through the pools."""
    kind = type(estimator)
    return kind.__name__ == "LogisticRegression" and kind.__module__.startswith("sklearn.")


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    classifier: Factory | None = None,
    regressor: Factory | None = None,
    space: Mapping[str, Any] | None = None,
    regressor_space: Mapping[str, Any] | None = None,
    description: str = "",
    scale: bool = False,
    handles_missing: bool = False,
) -> ModelEntry:
    """Add a model to the catalog so specs can say ``model: <name>``.

    Args:
        name: Catalog name.
        classifier: Factory for classification, called with the trial's params as keywords.
        regressor: Factory for regression.
        space: Default search space (used for both tasks unless ``regressor_space`` is given).
            Values are :class:`~tuner.spec.ParamSpec` or what a spec file takes (mappings, a
            list for categorical choices, a scalar for a fixed value).
        regressor_space: Default space for the regressor when it differs.
        description: One line shown by ``tuner models``.
        scale: Put a StandardScaler in front of the model.
        handles_missing: The model accepts NaN, so no imputer is added.

    Example:
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> register_model("tree", classifier=DecisionTreeClassifier,
        ...                space={"max_depth": {"type": "int", "low": 1, "high": 12}})
    """
    if classifier is None and regressor is None:
        raise CatalogError(f"register_model({name!r}): give a `classifier` or a `regressor` factory (or both).")
    cls_space = _as_space(name, space or {})
    entry = ModelEntry(
        name=name,
        description=description,
        classifier=classifier,
        regressor=regressor,
        classifier_space=cls_space,
        regressor_space=_as_space(name, regressor_space) if regressor_space is not None else cls_space,
        scale=scale,
        handles_missing=handles_missing,
    )
    _REGISTRY[name] = entry
    return entry


def _as_space(name: str, space: Mapping[str, Any]) -> dict[str, ParamSpec]:
    out: dict[str, ParamSpec] = {}
    for key, value in space.items():
        try:
            out[key] = ParamSpec.model_validate(expand_shorthand(value))
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            raise CatalogError(
                f"register_model({name!r}): space parameter {key!r} is invalid ({problems}). Use a ParamSpec or "
                "the mapping a spec file uses, e.g. {'type': 'float', 'low': 0.1, 'high': 1}."
            ) from None
    return out


def add_entry(entry: ModelEntry) -> None:
    _REGISTRY[entry.name] = entry


def is_registered(name: str) -> bool:
    """Whether the catalog has an entry of this name (installed or not)."""
    return name in _REGISTRY


def model_names() -> list[str]:
    return sorted(name for name, entry in _REGISTRY.items() if entry.available)


def all_entries() -> list[ModelEntry]:
    return [_REGISTRY[name] for name in model_names()]


def get_model(name: str, *, label: str = "", base_dir: Any = None) -> ModelEntry:
    """Look up a catalog name, or import ``pkg.module:factory`` for a custom model."""
    if ":" in name:
        factory = import_object(name, field="model", label=label, base_dir=base_dir)
        return ModelEntry(name=name, description="custom model", classifier=factory, regressor=factory)
    entry = _REGISTRY.get(name)
    if entry is None or not entry.available:
        if entry is not None:
            raise CatalogError(
                f"{label}, field 'model': {name!r} needs the {entry.requires!r} package; "
                f"install it with `pip install 'tuner[{entry.requires}]'`."
            )
        raise unknown_name("model", name, model_names(), where=f"{label}, field 'model'")
    return entry
