"""Model files: the model card, its checks, loading a saved model and predicting with it.

The model file is a plain scikit-learn estimator saved with joblib (a pipeline when the data
needed preprocessing); ``model.card.json`` next to it records what it is and the file's SHA-256.
:func:`load_model` checks that hash and the input columns *before* unpickling, because
unpickling runs code. :func:`tuner.refit.refit_best` writes both files.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from tuner.data import read_table
from tuner.errors import DataError, ModelFileError
from tuner.outputs import output_file

CARD_FORMAT = "tuner-model-card/1"
_VERSIONED = ("tuner", "optuna", "scikit-learn", "numpy", "pandas", "joblib", "xgboost", "lightgbm")


def card_path_for(model_path: Path) -> Path:
    """``model.joblib`` → ``model.card.json``."""
    return model_path.with_suffix(".card.json")


@dataclass(frozen=True)
class LoadedModel:
    """A model file whose hash matched its card, with the card."""

    estimator: Any
    card: dict[str, Any]

    @property
    def columns(self) -> list[str]:
        return list(self.card["data"]["columns"])

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions (original class labels) and, for classifiers, one probability column per class."""
        check_columns(self.card, frame, label="the input")
        X = frame[self.columns]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                raw = self.estimator.predict(X)
            except ValueError as exc:  # NaN for a model without imputation, unseen shapes, ...
                raise DataError(
                    f"the model cannot predict these rows: {str(exc).splitlines()[0]} "
                    "Clean the input (fill or drop missing values) the way the training data was."
                ) from None
            classes = self.card["data"].get("classes") or []
            out = pd.DataFrame(index=frame.index)
            if classes:
                out["prediction"] = [classes[int(code)] for code in raw]
                if hasattr(self.estimator, "predict_proba"):
                    proba = self.estimator.predict_proba(X)
                    for index, name in enumerate(classes):
                        out[f"proba_{name}"] = proba[:, index]
            else:
                out["prediction"] = raw
        return out


def read_card(model_path: Path, card_path: Path | None = None) -> dict[str, Any]:
    card_path = card_path or card_path_for(model_path)
    if not model_path.is_file():
        raise ModelFileError(
            f"model file {str(model_path)!r} not found. Create it with `tuner refit STUDY --out FILE`."
        )
    if not card_path.is_file():
        raise ModelFileError(
            f"model card {str(card_path)!r} not found next to {str(model_path)!r}. tuner only loads models whose "
            "card it can check; keep the .card.json that `tuner refit` wrote beside the model (or pass --card)."
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"model card {str(card_path)!r} is not valid JSON ({exc}).") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or "model_sha256" not in card:
        raise ModelFileError(f"{str(card_path)!r} is not a tuner model card (expected format {CARD_FORMAT!r}).")
    return card


def load_model(model_path: str | Path, *, card_path: str | Path | None = None) -> LoadedModel:
    """Load a model saved by :func:`refit_best` after checking its SHA-256 against the card.

    Raises:
        ModelFileError: the model or card is missing, or the file's hash differs from the card's
            (the file was changed or replaced; it is not unpickled then).
    """
    model_path = Path(model_path)
    card = read_card(model_path, Path(card_path) if card_path else None)
    verify_sha256(model_path, card)
    return LoadedModel(estimator=joblib.load(model_path), card=card)


def verify_sha256(model_path: Path, card: dict[str, Any]) -> None:
    actual = file_sha256(model_path)
    if actual != card["model_sha256"]:
        raise ModelFileError(
            f"model file {str(model_path)!r} does not match its card: SHA-256 {actual[:16]}… but the card says "
            f"{str(card['model_sha256'])[:16]}…. The file was changed or replaced after `tuner refit`, so it is "
            "not loaded (unpickling runs code). Refit the model, or restore the original file."
        )


def check_columns(card: dict[str, Any], frame: pd.DataFrame, *, label: str) -> None:
    """Every feature the model was trained on must be present, with the same kind (numeric or not)."""
    expected: list[str] = list(card["data"]["columns"])
    present = {str(c) for c in frame.columns}
    missing = [c for c in expected if c not in present]
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise DataError(
            f"{label}: missing {len(missing)} column(s) the model was trained on: {shown}. "
            f"The model needs: {', '.join(expected[:20])}{' …' if len(expected) > 20 else ''}. "
            "Add them (same names as in the training data); extra columns are ignored."
        )
    dtypes = card["data"].get("dtypes", {})
    for column in expected:
        if column not in dtypes:
            continue
        was_numeric = _numeric_dtype(dtypes[column])
        is_numeric = pd.api.types.is_numeric_dtype(frame[column])
        if was_numeric != is_numeric:
            raise DataError(
                f"{label}, column {column!r}: trained on {dtypes[column]} values but got {frame[column].dtype}. "
                "Convert the column to the training type (check for text such as 'n/a' in a numeric column)."
            )


def _numeric_dtype(name: str) -> bool:
    return name.startswith(("int", "uint", "float", "bool", "Int", "UInt", "Float", "boolean"))


def predict_file(
    model_path: str | Path,
    data_path: str | Path,
    *,
    out: str | Path | None = None,
    card_path: str | Path | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Predict for the rows of a CSV/Parquet file; write them to ``out`` (CSV) when given.

    The card's hash and the input's columns are checked before the model is unpickled.
    """
    model_path, data_path = Path(model_path), Path(data_path)
    target = output_file(Path(out), force=force) if out is not None else None
    card = read_card(model_path, Path(card_path) if card_path else None)
    verify_sha256(model_path, card)
    frame = read_table(data_path, where="input data")
    check_columns(card, frame, label=str(data_path))
    predictions = LoadedModel(estimator=joblib.load(model_path), card=card).predict(frame)
    if target is not None:
        predictions.to_csv(target, index=False)
    return predictions


def versions() -> dict[str, str]:
    """Python and the versions of the libraries a saved model depends on (those installed)."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if "xgboost" not in found and "xgboost" in sys.modules:
        found["xgboost"] = str(getattr(sys.modules["xgboost"], "__version__", "?"))
    return found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
