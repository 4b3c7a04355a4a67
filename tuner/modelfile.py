"""Model files: the model card, its checks, loading a saved model and predicting with it.

The model file is a plain scikit-learn estimator saved with joblib (a pipeline when the data
needed preprocessing, wrapped in :class:`tuner.labels.OriginalLabels` when it was trained on the
codes of labels such as "yes"/"no", so that it predicts the labels); ``model.card.json`` next to it records what it is and the file's SHA-256,
and is signed with this machine's model key (:mod:`tuner.modelkey`). Unpickling runs code, so
:func:`load_model` checks, *before* unpickling, that the file's hash matches the card and that the
card's signature verifies (or that the file has the SHA-256 the caller pinned), and unpickles the
very bytes it checked. :func:`tuner.refit.refit_best` writes both files.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import re
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
from tuner.labels import OriginalLabels
from tuner.modelkey import KEY_ENV, SIGNATURE, key_file_text, signature_matches, verifying_key
from tuner.outputs import output_file

CARD_FORMAT = "tuner-model-card/1"
_VERSIONED = ("tuner", "optuna", "scikit-learn", "numpy", "pandas", "joblib", "xgboost", "lightgbm")


def card_path_for(model_path: Path) -> Path:
    """``model.joblib`` → ``model.card.json``."""
    return model_path.with_suffix(".card.json")


@dataclass(frozen=True)
class LoadedModel:
    """A model file that passed its checks (signed card, or pinned SHA-256), with its card."""

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
                # Decoded exactly once: by the model itself (OriginalLabels), or here for a model that
                # answers in codes (files refitted before it existed; labels that are the codes 0..k-1).
                decoded = isinstance(self.estimator, OriginalLabels)
                out["prediction"] = list(raw) if decoded else [classes[int(code)] for code in raw]
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


def load_model(
    model_path: str | Path, *, card_path: str | Path | None = None, sha256: str | None = None
) -> LoadedModel:
    """Load a model saved by :func:`refit_best` once its file and card check out.

    Before anything is unpickled, the file's SHA-256 must match the card and the card's signature
    must verify with this machine's model key (``$TUNER_MODEL_KEY`` or the key file). With
    ``sha256`` (a model made elsewhere, whose hash reached you through a trusted channel) the file
    must have that SHA-256 instead, and the signature is not checked.

    Raises:
        ModelFileError: the model or card is missing; the file's hash differs from the card's or
            from ``sha256``; the card is unsigned, signed with another key or altered; or the file
            does not hold an estimator with ``predict``. Nothing is unpickled in the first cases.
    """
    model_path = Path(model_path)
    card = read_card(model_path, Path(card_path) if card_path else None)
    data = verified_bytes(model_path, card, sha256=sha256)
    return LoadedModel(estimator=unpickle(model_path, data), card=card)


def verified_bytes(model_path: Path, card: dict[str, Any], *, sha256: str | None = None) -> bytes:
    """The model file's bytes, once they are shown to be the ones ``tuner refit`` wrote (or pinned).

    The caller unpickles these bytes, never the path again: a file swapped between the check and
    the load would otherwise be loaded unchecked.
    """
    pinned = _pinned(sha256) if sha256 is not None else None
    try:
        data = model_path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {str(model_path)!r}: {exc.strerror or exc}.") from None
    actual = hashlib.sha256(data).hexdigest()
    if pinned is not None:
        if actual != pinned:
            raise ModelFileError(
                f"model file {str(model_path)!r} has SHA-256 {actual[:16]}…, not the {pinned[:16]}… given with "
                "--sha256. It is not the file you were sent, so it is not loaded (unpickling runs code). Get the "
                "file again from its source, and compare the hash you were given with the one `tuner refit` printed."
            )
        verify_sha256(model_path, card, actual=actual)
        return data
    verify_sha256(model_path, card, actual=actual)
    verify_signature(model_path, card)
    return data


def verify_sha256(model_path: Path, card: dict[str, Any], *, actual: str | None = None) -> None:
    actual = actual if actual is not None else file_sha256(model_path)
    if actual != card["model_sha256"]:
        raise ModelFileError(
            f"model file {str(model_path)!r} does not match its card: SHA-256 {actual[:16]}… but the card says "
            f"{str(card['model_sha256'])[:16]}…. The file was changed or replaced after `tuner refit`, so it is "
            "not loaded (unpickling runs code). Refit the model, or restore the original file."
        )


def verify_signature(model_path: Path, card: dict[str, Any]) -> None:
    """The card (which holds the model's SHA-256) must be signed with this machine's model key."""
    where = f"model file {str(model_path)!r}"
    protects = (
        "The signature stops a model or card replaced by someone who can write the model's folder but cannot "
        "read your key; unpickling runs code, so the file is not loaded."
    )
    elsewhere = (
        "If you made the model yourself with another key, set "
        f"{KEY_ENV} to that key. If you received it from someone else, ask them for its SHA-256 through a channel "
        "you trust (not the card) and pass `--sha256 <hex>` (sha256= in Python). Otherwise refit it here."
    )
    signature = card.get(SIGNATURE)
    if not isinstance(signature, dict):
        raise ModelFileError(
            f"{where}: its card has no signature (it was written before tuner signed model cards, or the "
            f"signature was removed). {protects} Refit the model with this version of tuner, or, if you know the "
            "file is the one you saved, pin its SHA-256 from a source you trust with `--sha256 <hex>`."
        )
    key = verifying_key()
    if key is None:
        raise ModelFileError(
            f"{where}: this machine has no model key to check its card's signature with (no ${KEY_ENV}, no "
            f"{key_file_text()}). {protects} {elsewhere}"
        )
    if not signature_matches(key, card):
        signed_with = signature.get("key_id")
        which = (
            f"The card names key {signed_with}, but the key in {key.source} is {key.key_id}. "
            if isinstance(signed_with, str) and signed_with != key.key_id
            else f"The card or the file was changed after `tuner refit` signed it (key {key.key_id} in {key.source}). "
        )
        raise ModelFileError(
            f"{where}: its card's signature does not verify with this machine's model key. {which}{protects} "
            f"{elsewhere}"
        )


def unpickle(model_path: Path, data: bytes) -> Any:
    """The estimator in verified bytes; anything without ``predict`` and ``get_params`` is refused."""
    try:
        estimator = joblib.load(io.BytesIO(data))
    except Exception as exc:  # a pinned file need not be a joblib file at all
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelFileError(
            f"model file {str(model_path)!r} cannot be loaded ({type(exc).__name__}: {first}). "
            "Load it with the library versions the card lists, or refit it."
        ) from None
    if not (callable(getattr(estimator, "predict", None)) and callable(getattr(estimator, "get_params", None))):
        raise ModelFileError(
            f"model file {str(model_path)!r} holds a {type(estimator).__module__}.{type(estimator).__qualname__}, "
            "not a scikit-learn estimator with predict(). Point tuner predict at a file written by `tuner refit`."
        )
    return estimator


def _pinned(value: str) -> str:
    digest = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ModelFileError(
            f"--sha256 {value[:80]!r} is not a SHA-256: it needs 64 hexadecimal characters, as `tuner refit` or "
            "`sha256sum MODEL` print them."
        )
    return digest


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
    sha256: str | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Predict for the rows of a CSV/Parquet file; write them to ``out`` (CSV) when given.

    The model file is checked as :func:`load_model` does (hash and signature, or the pinned
    ``sha256``), and the input's columns against the card, before the model is unpickled.
    """
    model_path, data_path = Path(model_path), Path(data_path)
    target = output_file(Path(out), force=force) if out is not None else None
    card = read_card(model_path, Path(card_path) if card_path else None)
    data = verified_bytes(model_path, card, sha256=sha256)
    frame = read_table(data_path, where="input data")
    check_columns(card, frame, label=str(data_path))
    predictions = LoadedModel(estimator=unpickle(model_path, data), card=card).predict(frame)
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
