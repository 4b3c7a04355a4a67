"""Data (``tuner/data.py``), sources and shaping: bundled sets, CSV, Parquet, DataFrames, column selection, encoding."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState
from support import sqlite_url

import tuner
from tuner.data import load_dataset, make_preprocessor
from tuner.errors import DataError
from tuner.spec import DataSpec

LABEL = "study.yaml"


def _load(tmp_path, frame=None, **data):
    return load_dataset(DataSpec(**data), base_dir=tmp_path, label=LABEL, frame=frame)


def _messy_frame(n: int = 120) -> pd.DataFrame:
    """Numeric and categorical features with NaN in both, a group column, and string labels."""
    rng = np.random.default_rng(3)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    label = np.where(x1 + (color == "red") + 0.3 * rng.normal(size=n) > 0.5, "yes", "no")
    x1[::9] = np.nan
    color[::11] = None
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "color": color,
            "site": np.repeat(np.arange(n // 10), 10),
            "row_id": np.arange(n),
            "label": label,
        }
    )


def _run_dict(tmp_path, data, **changes):
    spec = {
        "name": "data-run",
        "data": data,
        "model": "logistic",
        "metric": "roc_auc",
        "cv": {"scheme": "stratified", "folds": 3},
        "sampler": "random",
        "pruner": "none",
        "budget": {"n_trials": 2},
        "storage": str(tmp_path / "tuner.db"),
        **changes,
    }
    return spec


def _assert_complete(result, n: int = 2):
    trials = result.study.get_trials()
    assert len(trials) == n
    for trial in trials:
        assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("error")
        assert math.isfinite(trial.value)
        assert 0.5 < trial.value <= 1.0, "the signal in x1 and color must be learnable"


# --- bundled sets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "task", "n_classes", "n_features"),
    [
        ("breast_cancer", "classification", 2, 30),
        ("iris", "classification", 3, 4),
        ("wine", "classification", 3, 13),
        ("digits", "classification", 10, 64),
        ("diabetes", "regression", 0, 10),
    ],
)
def test_bundled_sets_load_with_the_task_inferred(tmp_path, name, task, n_classes, n_features):
    data = _load(tmp_path, source=f"sklearn:{name}")
    assert data.task == task
    assert data.n_classes == n_classes
    assert data.X.shape[1] == n_features
    assert "target" not in data.X.columns
    assert len(data.y) == len(data.X)
    if task == "classification":
        assert data.y.dtype == np.int64 and set(np.unique(data.y)) == set(range(n_classes))
    else:
        assert data.y.dtype == np.float64


def test_task_override_beats_inference(tmp_path):
    frame = pd.DataFrame({"a": range(40), "y": [0, 1, 2, 3] * 10})
    assert _load(tmp_path, frame=frame, target="y").task == "classification"
    assert _load(tmp_path, frame=frame, target="y", task="regression").task == "regression"
    floats = pd.DataFrame({"a": range(40), "y": np.linspace(0, 1, 40)})
    assert _load(tmp_path, frame=floats, target="y").task == "regression"


# --- column selection and encoding -----------------------------------------------------------


def test_features_drop_and_groups_selection(tmp_path):
    frame = _messy_frame()
    data = _load(tmp_path, frame=frame, target="label", groups="site", drop=("row_id",))
    assert list(data.X.columns) == ["x1", "x2", "color"]
    assert list(data.groups) == list(frame["site"])
    only = _load(tmp_path, frame=frame, target="label", features=("x2", "color"))
    assert list(only.X.columns) == ["x2", "color"]
    assert only.groups is None
    with pytest.raises(DataError, match=r"field 'data.drop': column 'rowid'.*Did you mean 'row_id'"):
        _load(tmp_path, frame=frame, target="label", drop=("rowid",))
    with pytest.raises(DataError, match=r"field 'data.features': no feature columns left"):
        _load(tmp_path, frame=frame, target="label", features=("label",))


def test_string_labels_are_encoded_and_kept(tmp_path):
    frame = _messy_frame()
    data = _load(tmp_path, frame=frame, target="label")
    assert data.task == "classification"
    assert data.classes == ("no", "yes")
    assert data.y.dtype == np.int64
    assert list(data.y) == [data.classes.index(v) for v in frame["label"]]


def test_categorical_and_missing_columns_get_a_preprocessor(tmp_path):
    data = _load(tmp_path, frame=_messy_frame(), target="label")
    assert data.categorical_columns == ["color"]
    assert data.has_missing
    pre = make_preprocessor(data, handles_missing=False)
    out = pre.fit_transform(data.X)
    assert not np.isnan(out).any()
    names = list(pre.get_feature_names_out())
    assert {"color_red", "color_green", "color_blue"} <= set(names)
    assert "x1" in names and "x2" in names
    clean = _load(tmp_path, frame=_messy_frame().drop(columns=["color"]).fillna(0.0), target="label")
    assert make_preprocessor(clean, handles_missing=False) is None


def test_target_with_missing_values_is_rejected(tmp_path):
    frame = _messy_frame()
    frame.loc[3, "label"] = None
    with pytest.raises(DataError, match=r"field 'data.target'.*1 missing values"):
        _load(tmp_path, frame=frame, target="label")


def test_string_target_cannot_be_a_regression_target(tmp_path):
    with pytest.raises(DataError, match=r"field 'data.task'.*not numeric"):
        _load(tmp_path, frame=_messy_frame(), target="label", task="regression")


def test_unknown_file_type_is_rejected(tmp_path):
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"neither .csv nor .parquet"):
        _load(tmp_path, source="data.xlsx", target="y")


# --- end to end: files and DataFrames through a 2-trial run ------------------------------------


def test_csv_with_categories_and_nan_runs_end_to_end(tmp_path):
    _messy_frame().to_csv(tmp_path / "messy.csv", index=False)
    spec = _run_dict(tmp_path, {"source": "messy.csv", "target": "label", "drop": ["row_id", "site"]})
    # The spec lives next to the CSV: relative data paths resolve against the spec's folder.
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = tuner.run_study(path)
    _assert_complete(result)
    assert result.context is not None
    assert result.context.dataset.categorical_columns == ["color"]


def test_parquet_with_categories_and_nan_runs_end_to_end(tmp_path):
    pytest.importorskip("pyarrow")
    frame = _messy_frame()
    frame["color"] = frame["color"].astype("category")
    frame.to_parquet(tmp_path / "messy.parquet")
    spec = _run_dict(tmp_path, {"source": "messy.parquet", "target": "label", "groups": "site", "drop": ["row_id"]})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = tuner.run_study(path)
    _assert_complete(result)
    assert result.context.dataset.groups is not None, "groups are loaded even when the CV does not use them"


def test_dataframe_passed_from_python(tmp_path):
    spec = _run_dict(tmp_path, {"target": "label", "drop": ["row_id"], "groups": "site"}, cv={"folds": 3})
    result = tuner.run_study(spec, data=_messy_frame())
    _assert_complete(result)
    assert result.context.dataset.source == "DataFrame"
    # `auto` CV with groups on a classification target keeps whole sites on one side
    groups = result.context.dataset.groups
    for train, val in result.context.splits:
        assert not set(groups[train]) & set(groups[val])
    stored = optuna.load_study(study_name="data-run", storage=sqlite_url(tmp_path))
    assert len(stored.trials) == 2


def test_dict_spec_without_source_or_frame_is_a_data_error(tmp_path):
    spec = _run_dict(tmp_path, {"target": "label"})
    with pytest.raises(DataError, match=r"field 'data.source': no data given"):
        tuner.run_study(spec)
    assert not (tmp_path / "tuner.db").exists()


# --- data that would fail every trial: refused before the first one -----------------------------


def test_inf_in_a_feature_is_a_data_error_naming_the_columns(tmp_path):
    frame = _messy_frame()
    frame.loc[[4, 7], "x2"] = [np.inf, -np.inf]
    with pytest.raises(DataError) as info:
        _load(tmp_path, frame=frame, target="label")
    message = str(info.value)
    assert message.startswith(f"{LABEL}, field 'data.features': column 'x2' holds ±inf in 2 rows")
    assert "NaN" in message, "the fix: missing values are handled, infinite ones are not"


def test_inf_in_a_regression_target_is_a_data_error(tmp_path):
    frame = _messy_frame()
    frame["amount"] = np.arange(len(frame), dtype=float) + 0.5
    frame.loc[3, "amount"] = np.inf
    with pytest.raises(DataError, match=r"field 'data.target': column 'amount' holds ±inf in 1 row\b"):
        _load(tmp_path, frame=frame, target="amount", drop=["label"])


def test_nan_in_features_still_loads_and_is_imputed_for_models_that_need_it(tmp_path):
    dataset = _load(tmp_path, frame=_messy_frame(), target="label")
    assert dataset.has_missing
    assert make_preprocessor(dataset, handles_missing=False) is not None


def test_a_header_only_csv_has_no_rows(tmp_path):
    (tmp_path / "empty.csv").write_text("a,b,y\n")
    with pytest.raises(DataError, match=r"field 'data.source': '.*empty.csv' has no rows \(only a header\)"):
        _load(tmp_path, source="empty.csv", target="y")


def test_duplicate_column_names_in_a_csv_are_a_data_error(tmp_path):
    (tmp_path / "dup.csv").write_text("a,b,a,b,y\n1,2,3,4,0\n5,6,7,8,1\n")
    with pytest.raises(DataError, match=r"dup.csv' has duplicate column names: 'a', 'b'\. Rename"):
        _load(tmp_path, source="dup.csv", target="y")


def test_a_column_named_like_a_renamed_duplicate_is_fine(tmp_path):
    (tmp_path / "dots.csv").write_text("a,a.1,y\n1,2,0\n3,4,1\n")
    assert list(_load(tmp_path, source="dots.csv", target="y").X.columns) == ["a", "a.1"]


def test_duplicate_column_names_in_a_dataframe_are_a_data_error(tmp_path):
    frame = _messy_frame()
    frame.columns = ["x1", "x1", *frame.columns[2:]]
    with pytest.raises(DataError, match=r"field 'data.source': the DataFrame has duplicate column names: 'x1'"):
        _load(tmp_path, frame=frame, target="label")


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (
            "def make(n_rows):\n    return None\n",
            ("'gen:make' takes arguments (n_rows)", "called with none", "give them defaults"),
        ),
        (
            "def make():\n    raise RuntimeError('database is down.')\n",
            ("'gen:make' raised RuntimeError: database is down. Run it", "to see the traceback"),
        ),
    ],
)
def test_a_python_data_function_that_fails_is_a_data_error(tmp_path, fresh_imports, body, fragments):
    (tmp_path / "gen.py").write_text(body)
    with pytest.raises(DataError) as info:
        _load(tmp_path, source="python:gen:make", target="y")
    message = str(info.value)
    assert message.startswith(f"{LABEL}, field 'data.source': ")
    for fragment in fragments:
        assert fragment in message
    assert ".." not in message


@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_data_exits_2_before_anything_is_written(tmp_path, run_cli, fresh_imports, command):
    frame = _messy_frame()
    frame.loc[5, "x1"] = np.inf
    frame.to_csv(tmp_path / "inf.csv", index=False)
    (tmp_path / "gen.py").write_text("def make():\n    raise KeyError('table')\n")
    for source in ("inf.csv", "python:gen:make"):
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(_run_dict(tmp_path, {"source": source, "target": "label", "drop": ["color"]})))
        result = run_cli(command, path)
        assert result.code == 2, result.err
        assert result.err.startswith(f"Error: {path}, field 'data.") and "Traceback" not in result.err
        assert not (tmp_path / "tuner.db").exists()
