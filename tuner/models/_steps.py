"""A spec's declared ``pipeline:``: its steps as scikit-learn transformers, then the model.

``STEPS`` implements exactly the names of :data:`tuner.spec.PIPELINE_STEPS` (a test checks it).
The pipeline names each step after its spec name and the model ``model``, so ``space`` says
``pca__n_components`` and ``model__C``; a catalog model's default space and start-up portfolio
get the ``model__`` prefix too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler

from tuner.models._registry import Factory, ModelEntry
from tuner.spec import MODEL_STEP, ParamSpec, StepSpec, Task

_SCALERS: dict[str, Callable[..., Any]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
    "maxabs": MaxAbsScaler,
}


def _onehot(task: Task, options: Mapping[str, Any]) -> Any:
    # Only the non-numeric columns are encoded; numbers pass through. Its options reach the encoder
    # (`onehot__encode__min_frequency` in `space`).
    encoder = OneHotEncoder(**{"handle_unknown": "ignore", "sparse_output": False, **options})
    return ColumnTransformer(
        [("encode", encoder, make_column_selector(dtype_exclude="number"))],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )


def _impute(task: Task, options: Mapping[str, Any]) -> Any:
    return SimpleImputer(**{"strategy": "median", **options})


def _scale(task: Task, options: Mapping[str, Any]) -> Any:
    settings = dict(options)
    return _SCALERS[settings.pop("kind", "standard")](**settings)


def _pca(task: Task, options: Mapping[str, Any]) -> Any:
    return PCA(**options)


def _select(task: Task, options: Mapping[str, Any]) -> Any:
    score = f_classif if task == "classification" else f_regression
    return SelectKBest(**{"score_func": score, **options})


STEPS: dict[str, Callable[[Task, Mapping[str, Any]], Any]] = {
    "onehot": _onehot,
    "impute": _impute,
    "scale": _scale,
    "pca": _pca,
    "select": _select,
}


def make_step(step: StepSpec, task: Task) -> Any:
    """The transformer of one declared step (a ``TypeError`` for an option it does not take)."""
    return STEPS[step.name](task, step.options)


class _Declared:
    """A factory of the declared pipeline around a catalog factory (picklable for workers)."""

    def __init__(self, steps: Sequence[StepSpec], task: Task, model: Factory) -> None:
        self.steps = tuple(steps)
        self.task = task
        self.model = model

    def __call__(self, **params: Any) -> Any:
        # ModelEntry.build sets every `step__param` (`model__C` too) on the result with set_params.
        transformers = [(step.name, make_step(step, self.task)) for step in self.steps]
        return Pipeline([*transformers, (MODEL_STEP, self.model(**params))])


def in_pipeline(entry: ModelEntry, steps: Sequence[StepSpec]) -> ModelEntry:
    """``entry`` as the last step of the declared pipeline ``steps``, which replace its preprocessing.

    The entry's scaler is dropped (a ``scale`` step is the user's to list), its space is renamed
    ``model__…`` (and so are its start-up configurations, by ``param_prefix``), and its iteration
    and epoch hooks are dropped: early stopping, the ``iterations`` fidelity and epoch-by-epoch
    training need the bare model (a network in a declared pipeline trains to its epoch cap,
    without epoch curves).
    """

    def prefixed(values: Mapping[str, Any]) -> dict[str, Any]:
        return {f"{MODEL_STEP}__{name}": value for name, value in values.items()}

    def prefixed_space(space: Mapping[str, ParamSpec]) -> dict[str, ParamSpec]:
        # A condition names its parent parameter, which is renamed too.
        return {
            name: param if param.when is None else param.model_copy(update={"when": prefixed(param.when)})
            for name, param in prefixed(space).items()
        }

    return dataclasses.replace(
        entry,
        classifier=None if entry.classifier is None else _Declared(steps, "classification", entry.classifier),
        regressor=None if entry.regressor is None else _Declared(steps, "regression", entry.regressor),
        classifier_space=prefixed_space(entry.classifier_space),
        regressor_space=prefixed_space(entry.regressor_space),
        param_prefix=f"{MODEL_STEP}__",
        scale=False,
        iterations=None,
        epochs=None,
    )


__all__ = ["STEPS", "in_pipeline", "make_step"]
