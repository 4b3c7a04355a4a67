"""Load the data a spec names and shape it for tuning.

Sources: ``sklearn:<name>`` (sets bundled with scikit-learn, offline), CSV or Parquet files
(paths relative to the spec file), pandas DataFrames passed from Python, and ``X, y`` arrays
(numpy, pandas or polars) passed from Python as :class:`Arrays`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from tuner.errors import DataError, did_you_mean, sentence, shorten
from tuner.spec import Task
from tuner.usercode import import_object

if TYPE_CHECKING:
    from tuner.spec import DataSpec

_MAX_CLASSES_FOR_AUTO = 20


@dataclass(frozen=True)
class Dataset:
    """Features, target and optional groups, ready for cross-validation.

    ``y`` is label-encoded for classification (``classes`` holds the original labels), so every
    model, XGBoost included, sees classes 0..k-1.
    """

    X: pd.DataFrame
    y: np.ndarray
    task: Task
    groups: np.ndarray | None = None
    classes: tuple[Any, ...] = ()
    source: str = ""
    # `fairness.groups`: labels for per-group scores only (not a feature, not used for splitting).
    fairness_groups: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    # Cached: every trial builds its estimator from these, and the data never changes.
    @cached_property
    def has_missing(self) -> bool:
        return bool(self.X.isna().to_numpy().any())

    @cached_property
    def categorical_columns(self) -> list[str]:
        return [c for c in self.X.columns if not pd.api.types.is_numeric_dtype(self.X[c])]

    def take(self, rows: np.ndarray) -> Dataset:
        """The rows ``rows`` (re-indexed from 0), with everything else unchanged."""
        return dataclasses.replace(
            self,
            X=self.X.iloc[rows].reset_index(drop=True),
            y=self.y[rows],
            groups=None if self.groups is None else self.groups[rows],
            fairness_groups=None if self.fairness_groups is None else self.fairness_groups[rows],
        )


@dataclass(frozen=True)
class Arrays:
    """Features and target passed from Python instead of a data source (``run_study(spec, X=..., y=...)``).

    ``X`` is a pandas or polars DataFrame, a 2-D numpy array (or anything ``numpy.asarray`` turns
    into one); ``y`` and ``groups`` are 1-D arrays, lists or Series of the same length.
    """

    X: Any
    y: Any
    groups: Any = None


def load_dataset(
    spec: DataSpec,
    *,
    base_dir: Path,
    label: str,
    frame: pd.DataFrame | Arrays | None = None,
    fairness_groups: str | None = None,
) -> Dataset:
    """Load the table named by ``spec`` (or use ``frame``) and split it into X, y and groups.

    ``fairness_groups`` names a column (``fairness.groups``) kept aside for per-group scores.
    """
    if isinstance(frame, Arrays):
        return _from_arrays(spec, frame, label=label)
    table: pd.DataFrame
    if frame is not None:
        table, default_target, what = as_frame(frame, what="data", label=label), None, "the DataFrame"
    elif spec.source is None:
        raise DataError(
            f"{label}, field 'data.source': no data given. Set `data.source` to `sklearn:<name>` or a CSV/Parquet "
            "path, or pass a DataFrame from Python (`run_study(spec, data=df)`)."
        )
    elif spec.source.startswith("sklearn:"):
        table, default_target, what = _load_bundled(spec.source.removeprefix("sklearn:")), "target", spec.source
    elif spec.source.startswith("python:"):
        generator = spec.source.removeprefix("python:")
        table, default_target = _call_generator(generator, base_dir, label), None
        what = f"the DataFrame from {generator!r}"
    else:
        path = base_dir / spec.source
        table, default_target, what = _read_file(path, label), None, repr(str(path))
    _check_table(table, what, label)
    target = spec.target or default_target
    if target is None:
        raise DataError(
            f"{label}, field 'data.target': no target column given. Set `data.target` to one of: {_cols(table)}."
        )
    _require_columns(table, [target], "data.target", label)
    if spec.groups is not None:
        _require_columns(table, [spec.groups], "data.groups", label)
    if fairness_groups is not None:
        _require_columns(table, [fairness_groups], "fairness.groups", label)
    _require_columns(table, list(spec.drop), "data.drop", label)
    excluded = {target, *(spec.drop), *(c for c in (spec.groups, fairness_groups) if c)}
    if spec.features is not None:
        _require_columns(table, list(spec.features), "data.features", label)
        features = [c for c in spec.features if c not in excluded]
    else:
        features = [c for c in table.columns if c not in excluded]
    if not features:
        raise DataError(
            f"{label}, field 'data.features': no feature columns left after removing target, groups and drop."
        )
    y_raw = table[target]
    if y_raw.isna().any():
        raise DataError(
            f"{label}, field 'data.target': column {target!r} has {int(y_raw.isna().sum())} missing values. "
            "Drop those rows before tuning."
        )
    if spec.task != "classification":  # a float target with ±inf is a regression target that cannot be fitted
        _check_finite(table[[target]], "data.target", label)
    task = _infer_task(y_raw) if spec.task == "auto" else spec.task
    if task == "regression" and not pd.api.types.is_numeric_dtype(y_raw):
        raise DataError(
            f"{label}, field 'data.task': target {target!r} is not numeric, so it cannot be a regression target. "
            "Set `data.task: classification` or pick a numeric target."
        )
    y, classes = _encode(y_raw, task, f"{label}, field 'data.target': column {target!r}")
    groups = table[spec.groups].to_numpy() if spec.groups else None
    X = table[features].reset_index(drop=True)
    _check_finite(X, "data.features", label)
    fairness = table[fairness_groups].to_numpy() if fairness_groups else None
    return Dataset(
        X=X,
        y=y,
        task=task,
        groups=groups,
        classes=classes,
        source=spec.source or "DataFrame",
        fairness_groups=fairness,
    )


def _encode(y_raw: pd.Series, task: Task, what: str) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Classes as codes 0..k-1 (so every model, XGBoost included, takes them) and the labels; or floats."""
    if task != "classification":
        return y_raw.to_numpy(dtype=np.float64), ()
    codes, uniques = pd.factorize(y_raw, sort=True)
    classes = tuple(uniques.tolist())
    if len(classes) < 2:
        raise DataError(f"{what} has one class (a single class); nothing to learn.")
    return codes.astype(np.int64), classes


def as_frame(X: Any, *, what: str, label: str) -> pd.DataFrame:
    """``X`` as a pandas DataFrame: pandas as it is, polars (or any ``to_pandas()`` table) converted,
    a numpy array or nested list wrapped with integer column names (as scikit-learn sees them)."""
    if isinstance(X, pd.DataFrame):
        return X
    if type(X).__module__.split(".")[0] in ("polars", "pyarrow") and hasattr(X, "to_pandas"):
        converted = X.to_pandas()
        if isinstance(converted, pd.DataFrame):
            return converted
    if isinstance(X, np.ndarray | list | tuple) or hasattr(X, "__array__"):
        array = np.asarray(X)
        if np.iscomplexobj(array):
            raise DataError(f"{label}, argument {what!r}: Complex data not supported; pass real numbers.")
        if array.ndim == 2:
            return pd.DataFrame(array)
        raise DataError(
            f"{label}, argument {what!r}: a {array.ndim}-D array of shape {array.shape}; pass a 2-D array (rows × "
            "features), e.g. `X.reshape(-1, 1)` for a single feature."
        )
    raise DataError(
        f"{label}, argument {what!r}: {type(X).__module__}.{type(X).__qualname__} is not a supported table; pass a "
        "pandas or polars DataFrame or a 2-D numpy array."
    )


def _as_column(values: Any, *, what: str, label: str) -> pd.Series:
    if isinstance(values, pd.DataFrame) and values.shape[1] == 1:
        values = values.iloc[:, 0]
    if type(values).__module__.split(".")[0] in ("polars", "pyarrow") and hasattr(values, "to_pandas"):
        values = values.to_pandas()
    if isinstance(values, pd.Categorical):
        values = pd.Series(values)  # not through numpy, which drops the categories' order
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if isinstance(values, np.ndarray | list | tuple) or hasattr(values, "__array__"):
        array = np.asarray(values)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim == 1:
            return pd.Series(array)
        raise DataError(
            f"{label}, argument {what!r}: a {array.ndim}-D array of shape {array.shape}; pass one value per row "
            "(a 1-D array); several targets at once are not supported."
        )
    raise DataError(
        f"{label}, argument {what!r}: {type(values).__module__}.{type(values).__qualname__} is not supported; pass "
        "a 1-D numpy array, a list, or a pandas or polars Series."
    )


def _from_arrays(spec: DataSpec, arrays: Arrays, *, label: str) -> Dataset:
    X = as_frame(arrays.X, what="X", label=label).reset_index(drop=True)
    y_raw = _as_column(arrays.y, what="y", label=label)
    groups = None if arrays.groups is None else _as_column(arrays.groups, what="groups", label=label).to_numpy()
    for name, values in (("y", y_raw), ("groups", groups)):
        if values is not None and len(values) != len(X):
            raise DataError(
                f"{label}, argument {name!r}: {len(values)} values for {len(X)} rows of X; pass one per row of X."
            )
    if X.shape[1] == 0:
        raise DataError(
            f"{label}, argument 'X': 0 feature(s) (shape={X.shape}) while a minimum of 1 is required; pass features."
        )
    if len(X) < 2:
        raise DataError(
            f"{label}, argument 'X': {len(X)} sample(s) (shape={X.shape}) while a minimum of 2 is required to "
            "cross-validate; pass more rows."
        )
    if y_raw.isna().any():
        raise DataError(f"{label}, argument 'y': {int(y_raw.isna().sum())} missing values; drop those rows first.")
    if pd.api.types.is_float_dtype(y_raw):
        _check_finite(pd.DataFrame({"y": y_raw}), "y", label)
    task = _infer_task(y_raw) if spec.task == "auto" else spec.task
    if task == "regression" and not pd.api.types.is_numeric_dtype(y_raw):
        raise DataError(
            f"{label}, argument 'y': values such as {shorten(str(y_raw.iloc[0]))!r} are not numeric, so they cannot "
            "be a regression target; use a classifier, or pass numbers."
        )
    _check_finite(X, "X", label)
    y, classes = _encode(y_raw, task, f"{label}, argument 'y'")
    return Dataset(X=X, y=y, task=task, groups=groups, classes=classes, source="arrays")


def _load_bundled(name: str) -> pd.DataFrame:
    loader = getattr(datasets, f"load_{name}")
    bunch = loader(as_frame=True)
    table: pd.DataFrame = bunch.frame
    return table


def _check_table(table: pd.DataFrame, what: str, label: str) -> None:
    """A table every later step can use: rows, and one column per name."""
    duplicated = table.columns[table.columns.duplicated()].unique()
    if len(duplicated):
        raise DataError(
            f"{label}, field 'data.source': {what} has duplicate column names: {_names(duplicated)}. "
            "Rename them so that every column has its own name."
        )
    if len(table) == 0:
        header = " (only a header)" if len(table.columns) else ""
        raise DataError(
            f"{label}, field 'data.source': {what} has no rows{header}; there is nothing to tune on. "
            "Check that `data.source` names the file or function that holds the data."
        )


def _check_finite(table: pd.DataFrame, field: str, label: str) -> None:
    """±inf in a column every model rejects, so every trial would fail: refused before the first one.

    NaN is different: it is a missing value, imputed for models that need it and passed to those
    that handle it (``make_preprocessor``).
    """
    infinite = {}
    for name in table.columns:
        column = table[name]
        if pd.api.types.is_float_dtype(column):
            count = int(np.isinf(column.to_numpy(dtype=np.float64, na_value=np.nan)).sum())
            if count:
                infinite[name] = count
    if not infinite:
        return
    (first, count), *others = infinite.items()
    also = f" (and {len(others)} other column(s): {_names([name for name, _ in others])})" if others else ""
    raise DataError(
        f"{label}, field {field!r}: column {shorten(str(first))!r} holds ±inf in {count} row{'s' if count > 1 else ''}"
        f"{also}, which no model can fit, so every trial would fail. Replace ±inf with NaN (a missing value, "
        "imputed for models that need it), with a finite value, or drop those rows."
    )


def _names(names: Any, limit: int = 10) -> str:
    listed = [repr(shorten(str(name))) for name in names]
    return ", ".join(listed[:limit]) + (f", … ({len(listed) - limit} more)" if len(listed) > limit else "")


def _call_generator(target: str, base_dir: Path, label: str) -> pd.DataFrame:
    """``python:module:function``: a function (next to the spec) that returns a DataFrame."""
    fn = import_object(target, field="data.source", label=label, base_dir=base_dir)
    where = f"{label}, field 'data.source'"
    required = _required_arguments(fn)
    if required:
        raise DataError(
            f"{where}: {target!r} takes arguments ({', '.join(required)}), but a `python:` data source is called "
            "with none: give them defaults, or name a function without arguments that calls it."
        )
    module, _, name = target.partition(":")
    try:
        table = fn()
    except Exception as exc:  # any error of user code is the user's to fix
        raise DataError(
            f"{where}: {target!r} raised {type(exc).__name__}: {sentence(shorten(str(exc), 300))} "
            f"Run it in Python (`python -c 'import {module}; {module}.{name}()'` in the spec's folder) to see the "
            "traceback, fix it, then run again."
        ) from None
    if not isinstance(table, pd.DataFrame):
        raise DataError(
            f"{label}, field 'data.source': {target!r} returned a {type(table).__name__}, not a pandas DataFrame."
        )
    return table


def _required_arguments(fn: Any) -> list[str]:
    """The arguments ``fn()`` would be missing (none when Python cannot tell, as for some builtins)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in kinds and p.default is inspect.Parameter.empty]


def _read_file(path: Path, label: str) -> pd.DataFrame:
    return read_table(
        path,
        where=f"{label}, field 'data.source'",
        hint=" Paths are relative to the spec file; use `sklearn:<name>` for a bundled set.",
    )


def read_table(path: Path, *, where: str, hint: str = "") -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; a :class:`DataError` starting with ``where`` otherwise."""
    if not path.is_file():
        raise DataError(f"{where}: data file {str(path)!r} not found.{hint}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            table = pd.read_csv(path)
            _check_header(path, table, where)
            return table
    except (ValueError, ImportError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{where}: cannot read {str(path)!r}: {exc}") from None
    raise DataError(f"{where}: {str(path)!r} is neither .csv nor .parquet; convert it to one of them.")


def _check_header(path: Path, table: pd.DataFrame, where: str) -> None:
    """pandas reads a repeated column name ``a`` as ``a`` and ``a.1``; the header as written says which are repeats."""
    if not any(re.fullmatch(r".+\.\d+", str(name)) for name in table.columns):
        return
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0].tolist()
    repeated = [name for index, name in enumerate(header) if name in header[:index]]
    if repeated:
        raise DataError(
            f"{where}: {str(path)!r} has duplicate column names: {_names(dict.fromkeys(repeated))}. Rename them in "
            "the file's header so that every column has its own name (pandas would read them as 'name.1')."
        )


def _require_columns(table: pd.DataFrame, names: list[str], field: str, label: str) -> None:
    missing = [n for n in names if n not in table.columns]
    if missing:
        name = missing[0]
        raise DataError(
            f"{label}, field {field!r}: column {name!r} is not in the data.{did_you_mean(name, map(str, table.columns))} "
            f"Columns: {_cols(table)}."
        )


def _cols(table: pd.DataFrame, limit: int = 15) -> str:
    cols = [str(c) for c in table.columns]
    more = f", … ({len(cols) - limit} more)" if len(cols) > limit else ""
    return ", ".join(cols[:limit]) + more


def _infer_task(y: pd.Series) -> Task:
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.to_numpy()
    is_integral = np.all(np.equal(np.mod(values, 1), 0))
    return "classification" if is_integral and y.nunique() <= _MAX_CLASSES_FOR_AUTO else "regression"


def make_preprocessor(dataset: Dataset, *, handles_missing: bool) -> Any | None:
    """A ColumnTransformer for categorical columns and missing values, or None when none is needed."""
    categorical = dataset.categorical_columns
    needs_impute = dataset.has_missing and not handles_missing
    if not categorical and not needs_impute:
        return None

    numeric = [c for c in dataset.X.columns if c not in categorical]
    steps = []
    if numeric:
        steps.append(("num", SimpleImputer(strategy="median") if needs_impute else "passthrough", numeric))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        steps.append(("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), encoder), categorical))
    return ColumnTransformer(steps, verbose_feature_names_out=False)


# `data.groups` usually names CV groups (patients, sessions); per-group scores of hundreds of
# them are noise, so they are only computed automatically for this many groups or fewer.
MAX_AUTO_GROUPS = 20


def scoring_groups(dataset: Dataset, *, explicit: bool) -> tuple[np.ndarray | None, str]:
    """The labels per-group scores use, and why there are none when there are none.

    ``explicit``: the groups come from ``fairness.groups`` (always scored); otherwise from
    ``data.groups``, scored only when there are at most ``MAX_AUTO_GROUPS`` of them.
    """
    groups = dataset.fairness_groups if explicit else dataset.groups
    if groups is None:
        return None, "neither `fairness.groups` nor `data.groups` is set."
    n_groups = len(np.unique(groups.astype(str)))
    if not explicit and n_groups > MAX_AUTO_GROUPS:
        return None, (
            f"`data.groups` has {n_groups} groups, more than the {MAX_AUTO_GROUPS} scored automatically "
            "(CV groups such as patient ids are usually many and small)."
        )
    return groups, ""


def check_groups(groups: np.ndarray, *, field_name: str, label: str) -> None:
    """Per-group scores need every group to have at least two rows and no missing labels."""
    missing = int(pd.isna(groups).sum())
    if missing:
        raise DataError(
            f"{label}, field {field_name!r}: the group column has {missing} missing values, so those rows "
            "belong to no group. Fill them (e.g. with 'unknown') or drop those rows."
        )
    names, counts = np.unique(groups.astype(str), return_counts=True)
    single = names[counts < 2]
    if len(single):
        shown = ", ".join(repr(str(n)) for n in single[:5]) + (" …" if len(single) > 5 else "")
        raise DataError(
            f"{label}, field {field_name!r}: {len(single)} group(s) have a single row ({shown}); a group of "
            "one row cannot be scored across folds. Merge small groups into an 'other' group or drop those rows."
        )
