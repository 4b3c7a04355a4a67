"""Errors (``tuner/errors.py``) as users meet them: every bad input of issue 3, through the CLI in-process.

Each case must end with exit code 2 and one paragraph on stderr that starts with ``Error:``,
names the spec file and the field, says how to fix it (or lists the valid names), shows no
traceback, and leaves no storage behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("fresh_imports")

# 30 rows; class 1 has only 2 of them, so 3 stratified folds cannot all hold it.
RARE_CSV = "a,b,y\n" + "".join(f"{i},{i % 7},{int(i >= 28)}\n" for i in range(30))
# Float target with decimals: inferred as regression.
REGRESSION_CSV = "a,b,y\n" + "".join(f"{i},{i % 5},{i * 0.37 + 0.11:.3f}\n" for i in range(30))
PLAIN_CSV = "a,b,y\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(30))


@dataclass(frozen=True)
class Case:
    """One bad input: spec changes (or the raw file text), extra files, and what the error must say."""

    changes: dict[str, Any] | None = None
    text: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    field: str | None = None
    expect: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    validate: bool = True  # `tuner validate` must reject it too (it never opens the storage)
    missing_file: bool = False


CASES = {
    "missing file": Case(missing_file=True, expect=("study file not found", "check the path")),
    "invalid yaml": Case(
        text="name: tiny\ndata: {source: sklearn:iris\nmodel: logistic\n",
        expect=("invalid yaml", "line 3", "fix the syntax"),
    ),
    "not a mapping": Case(text="- just\n- a list\n", expect=("must be a yaml mapping", "tuner schema")),
    "unknown top-level key": Case(
        changes={"bugdet": {"n_trials": 3}},
        field="bugdet",
        expect=("unknown key 'bugdet'", "did you mean 'budget'", "valid keys here"),
    ),
    "unknown nested key": Case(
        changes={"cv": {"fold": 3}}, field="cv.fold", expect=("unknown key 'fold'", "did you mean 'folds'")
    ),
    "unknown key in a parameter": Case(
        changes={"space": {"C": {"type": "float", "low": 0.1, "hihg": 2}}},
        field="space.C.hihg",
        expect=("did you mean 'high'",),
    ),
    "wrong type int": Case(
        changes={"budget": {"n_trials": "many"}}, field="budget.n_trials", expect=("valid integer", "'many'")
    ),
    "wrong type bool": Case(
        changes={"cv": {"shuffle": "sometimes"}}, field="cv.shuffle", expect=("valid boolean", "'sometimes'")
    ),
    "wrong type section": Case(changes={"budget": 5}, field="budget", expect=("valid dictionary",)),
    "low > high": Case(
        changes={"space": {"C": {"type": "float", "low": 10, "high": 1}}},
        field="space.C",
        expect=("`low <= high` must hold", "low=10", "high=1"),
    ),
    "int low > high": Case(
        changes={"model": "knn", "space": {"n_neighbors": {"type": "int", "low": 9, "high": 3}}},
        field="space.n_neighbors",
        expect=("`low <= high` must hold",),
    ),
    "log with low = 0": Case(
        changes={"space": {"C": {"type": "float", "low": 0, "high": 1, "log": True}}},
        field="space.C",
        expect=("`log: true` needs `low > 0`", "low=0", "raise `low` or drop `log`"),
    ),
    "log with low < 0": Case(
        changes={"space": {"C": {"type": "float", "low": -1, "high": 1, "log": True}}},
        field="space.C",
        expect=("needs `low > 0`", "low=-1"),
    ),
    "empty choices": Case(
        changes={"space": {"class_weight": {"type": "categorical", "choices": []}}},
        field="space.class_weight",
        expect=("`choices` must list at least one value",),
    ),
    "empty list shorthand": Case(
        changes={"space": {"class_weight": []}},
        field="space.class_weight",
        expect=("`choices` must list at least one value",),
    ),
    "n_trials 0": Case(changes={"budget": {"n_trials": 0}}, field="budget.n_trials", expect=("greater than 0",)),
    "n_trials negative": Case(
        changes={"budget": {"n_trials": -3}}, field="budget.n_trials", expect=("greater than 0", "-3")
    ),
    "unknown model": Case(
        changes={"model": "logistik"},
        field="model",
        expect=("unknown model 'logistik'", "did you mean 'logistic'", "random_forest", "knn", "xgboost"),
    ),
    "unknown metric": Case(
        changes={"metric": "roc-auc"},
        field="metric",
        expect=("unknown metric 'roc-auc'", "did you mean 'roc_auc'", "balanced_accuracy", "r2"),
    ),
    "unknown sampler": Case(
        changes={"sampler": "tpee"},
        field="sampler.name",
        expect=("unknown sampler 'tpee'", "did you mean 'tpe'", "random", "cmaes", "qmc"),
    ),
    "unknown pruner": Case(
        changes={"pruner": {"name": "medain"}},
        field="pruner.name",
        expect=("unknown pruner 'medain'", "did you mean 'median'", "hyperband", "none"),
    ),
    "unknown cv scheme": Case(
        changes={"cv": {"scheme": "kfolds"}},
        field="cv.scheme",
        expect=("unknown cv scheme 'kfolds'", "did you mean 'kfold'", "stratified_group", "timeseries"),
    ),
    "unknown bundled data set": Case(
        changes={"data": {"source": "sklearn:irsi"}},
        field="data.source",
        expect=("did you mean 'iris'", "csv/parquet path"),
    ),
    "data file missing": Case(
        changes={"data": {"source": "nowhere.csv", "target": "y"}},
        field="data.source",
        expect=("not found", "relative to the spec file"),
    ),
    "target column missing": Case(
        changes={"data": {"source": "data.csv", "target": "label"}},
        files={"data.csv": PLAIN_CSV},
        field="data.target",
        expect=("column 'label' is not in the data", "columns: a, b, y"),
    ),
    "target column typo": Case(
        changes={"data": {"source": "data.csv", "target": "yy"}},
        files={"data.csv": PLAIN_CSV},
        field="data.target",
        expect=("did you mean 'y'",),
    ),
    "classification metric on a regression target": Case(
        changes={"data": {"source": "reg.csv", "target": "y"}, "model": "ridge", "metric": "accuracy"},
        files={"reg.csv": REGRESSION_CSV},
        field="metric",
        expect=("'accuracy' is a classification metric", "regression target", "r2"),
    ),
    "group cv without groups": Case(
        changes={"cv": {"scheme": "group"}},
        field="cv.scheme",
        expect=("needs group labels", "`data.groups`"),
    ),
    "stratified_group cv without groups": Case(
        changes={"cv": {"scheme": "stratified_group"}},
        field="cv.scheme",
        expect=("needs group labels", "`data.groups`"),
    ),
    "folds larger than the smallest class": Case(
        changes={"data": {"source": "rare.csv", "target": "y"}, "cv": {"scheme": "stratified", "folds": 3}},
        files={"rare.csv": RARE_CSV},
        field="cv.folds",
        expect=("class 1 has only 2 rows", "at most 2"),
    ),
    "objective malformed": Case(
        changes={"objective": "objmod.objective"},
        field="objective",
        expect=("'objmod.objective'", "metric"),
    ),
    "objective module missing": Case(
        changes={"objective": "no_such_objective_mod:objective"},
        field="objective",
        expect=("cannot import module 'no_such_objective_mod'", "modulenotfounderror", "spec's folder"),
    ),
    "objective module fails to import": Case(
        changes={"objective": "brokenobj:objective"},
        files={"brokenobj.py": "import no_such_dependency_xyz\n\ndef objective(trial, ctx):\n    return 1.0\n"},
        field="objective",
        expect=("cannot import module 'brokenobj'", "no_such_dependency_xyz"),
    ),
    "objective module has a syntax error": Case(
        changes={"objective": "syntaxobj:objective"},
        files={"syntaxobj.py": "def objective(trial, ctx:\n    return 1.0\n"},
        field="objective",
        expect=("cannot import module 'syntaxobj'", "syntaxerror"),
    ),
    "objective attribute missing": Case(
        changes={"objective": "objmod:objectiv"},
        files={"objmod.py": "def objective(trial, ctx):\n    return 1.0\n"},
        field="objective",
        expect=("has no attribute 'objectiv'", "name after the colon"),
    ),
    "objective not callable": Case(
        changes={"objective": "constmod:objective"},
        files={"constmod.py": "objective = 3\n"},
        field="objective",
        expect=("'constmod:objective' is a int, not a callable",),
    ),
    "custom model module missing": Case(
        changes={"model": "no_such_pkg_xyz.models:factory"},
        field="model",
        expect=("cannot import module 'no_such_pkg_xyz.models'", "spec's folder"),
    ),
    "custom model not callable": Case(
        changes={"model": "modelmod:FACTORY"},
        files={"modelmod.py": "FACTORY = 'not a factory'\n"},
        field="model",
        expect=("not a callable",),
    ),
    "unreachable postgresql": Case(
        changes={"storage": "postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/test"},
        field="storage",
        expect=("cannot open storage", "127.0.0.1:1", "connection refused", "server is running and reachable"),
        absent=("hunter2",),
        validate=False,
    ),
    "postgresql with the default driver": Case(
        # SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3: either its driver is missing or the port is closed
        changes={"storage": "postgresql://postgres:hunter2@127.0.0.1:1/test"},
        field="storage",
        expect=("cannot open storage", "postgresql://postgres:***@127.0.0.1:1/test"),
        absent=("hunter2",),
        validate=False,
    ),
    "unreachable postgresql from --storage": Case(
        args=("--storage", "postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/test"),
        field="storage",
        expect=("cannot open storage", "server is running and reachable"),
        absent=("hunter2",),
        validate=False,
    ),
    "sqlite in a missing folder": Case(
        changes={"storage": "missing/sub/studies.db"},
        field="storage",
        expect=("does not exist", "missing/sub", "existing folder"),
        validate=False,
    ),
    "journal file in a missing folder": Case(
        changes={"storage": "missing/journal.log"},
        field="storage",
        expect=("does not exist", "missing"),
        validate=False,
    ),
}

PARAMS = [
    pytest.param(case, command, id=f"{name}-{command}")
    for name, case in CASES.items()
    for command in ("run", "validate")
    if command == "run" or case.validate
]


def _files(folder: Path) -> set[Path]:
    """Everything under ``folder`` except bytecode caches of imported user modules."""
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.parametrize(("case", "command"), PARAMS)
def test_bad_input_is_one_clear_paragraph_with_exit_code_2(case, command, tmp_path, write_spec, run_cli):
    for name, content in case.files.items():
        (tmp_path / name).write_text(content)
    if case.missing_file:
        spec = tmp_path / "study.yaml"
    elif case.text is not None:
        spec = tmp_path / "study.yaml"
        spec.write_text(case.text)
    else:
        spec = write_spec(case.changes)
    before = _files(tmp_path)

    args = ("run", spec, "-q", *case.args) if command == "run" else ("validate", spec)
    result = run_cli(*args)

    err = result.err
    assert result.code == 2, (result.code, err, result.out)
    assert err.startswith("Error: "), err
    assert "\n" not in err.strip(), f"not one paragraph: {err!r}"
    assert "Traceback" not in err + result.out
    assert "study.yaml" in err, "the error must name the spec file"
    if case.field is not None:
        assert f"field '{case.field}'" in err, err
    for fragment in case.expect:
        assert fragment.lower() in err.lower(), f"{fragment!r} missing from: {err}"
    for fragment in case.absent:
        assert fragment not in err + result.out
    assert _files(tmp_path) == before, "a failed command must not write a storage (or anything else)"
    assert not (tmp_path / "tuner.db").exists()
