"""From the best trial to a model file: refit on all tuning rows, score the held-out test rows,
save with joblib plus a JSON model card, and predict from a saved model safely.

Everything is rebuilt from the storage alone: the study keeps its spec (``tuner:spec``) and the
spec's folder (``tuner:base_dir``), so data, folds, the held-out rows, metric and estimator come
back exactly as they were during tuning.

The model file is a plain scikit-learn estimator (a pipeline when the data needed preprocessing);
``model.card.json`` next to it records what it is and the file's SHA-256. :func:`load_model`
checks that hash and the input columns *before* unpickling, because unpickling runs code.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tuner.errors import DataError, StorageError, TunerError

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from tuner.objectives import ObjectiveContext
    from tuner.spec import StudySpec

CARD_FORMAT = "tuner-model-card/1"
ATTR_REFIT = "tuner:refit_model"
# Diagnostics a trial may carry (issue "training-data diagnostics"); copied to the card when present.
_DIAGNOSTICS = (
    "train_scores",
    "train_mean",
    "train_std",
    "gap",
    "group_scores",
    "worst_group_score",
    "worst_group_name",
    "group_gap",
    "flags",
)
_VERSIONED = ("tuner", "optuna", "scikit-learn", "numpy", "pandas", "joblib", "xgboost", "lightgbm")
_SPEC_SUFFIXES = (".yaml", ".yml")


class ModelFileError(TunerError):
    """A saved model or its card is missing, altered or does not fit the input."""


@dataclass(frozen=True)
class RefitResult:
    """What :func:`refit_best` produced: the fitted estimator, its files and its card."""

    estimator: Any
    model_path: Path
    card_path: Path
    card: dict[str, Any]

    @property
    def test_score(self) -> float | None:
        test = self.card.get("test")
        return None if not test else test.get("score")


def card_path_for(model_path: Path) -> Path:
    """``model.joblib`` → ``model.card.json``."""
    return model_path.with_suffix(".card.json")


def refit_best(
    study: str,
    *,
    out: str | Path,
    storage: str | None = None,
    trial: int | None = None,
    data: pd.DataFrame | None = None,
    force: bool = False,
    record: bool = True,
) -> RefitResult:
    """Refit a study's best configuration on all tuning rows and save it with a model card.

    Args:
        study: A spec file, ``"name@storage"`` or a study name on ``storage``.
        out: Model file to write (joblib); the card goes to ``<out stem>.card.json``.
        storage: Storage URL or path for a plain study name (or to override a spec's storage).
        trial: Trial number to refit instead of the best one (required for multi-objective
            studies: pick one of the Pareto trials).
        data: The DataFrame the study was tuned on, when it was passed from Python.
        force: Overwrite existing model and card files.
        record: Store the model's path and hash on the study (user attribute ``tuner:refit_model``),
            where ``tuner show``, reports and the dashboard see it.

    Returns:
        A :class:`RefitResult`; ``result.test_score`` is the held-out score when the spec has
        ``cv.holdout_test``.

    Raises:
        TunerError: for a missing study, a study not made by ``tuner run``, an unknown trial, a
            multi-objective study without ``trial``, or an output file that exists.

    Example:
        >>> result = refit_best("studies/quickstart.yaml", out="model.joblib")
        >>> result.test_score
    """
    from tuner.objectives import build_context
    from tuner.outputs import output_file
    from tuner.results import load_study, resolve_ref

    model_path = output_file(Path(out), force=force)
    card_path = output_file(card_path_for(model_path), force=force)
    name, url = resolve_ref(study, storage=storage)
    live = load_study(name, url)
    spec_file = Path(study) if Path(study).suffix in _SPEC_SUFFIXES else None
    spec = stored_spec(live.user_attrs, name=name, spec_file=spec_file)
    chosen = _choose_trial(live, trial)
    context = build_context(spec, data=data)
    params = _params(context, chosen)
    iterations = _iterations(context, params, chosen.user_attrs)
    if iterations is not None:
        params[iterations["param"]] = iterations["value"]
    estimator = context.build_estimator(params)
    if iterations is not None:
        _no_early_stopping(estimator)
    messages = _fit(estimator, context, params)
    test = _score_holdout(estimator, context)

    import joblib

    joblib.dump(estimator, model_path)
    digest = file_sha256(model_path)
    card = _card(spec, context, live, url, chosen, params, iterations, test, messages, model_path, digest)
    card_path.write_text(json.dumps(card, indent=2, default=str, allow_nan=False) + "\n", encoding="utf-8")
    if record:
        live.set_user_attr(
            ATTR_REFIT,
            {
                "path": str(model_path.resolve()),
                "card": str(card_path.resolve()),
                "sha256": digest,
                "trial": chosen.number,
                "test_score": None if test is None else test["score"],
                "created": card["created"],
            },
        )
    return RefitResult(estimator=estimator, model_path=model_path, card_path=card_path, card=card)


def stored_spec(attrs: dict[str, Any], *, name: str, spec_file: Path | None = None) -> StudySpec:
    """The spec a study was run with, rebuilt from its user attributes.

    Relative paths in it (data files, ``module:function`` imports) resolve against the spec's
    original folder, recorded by ``tuner run``; a spec file given by the user takes precedence.
    """
    from tuner.runner import ATTR_BASE_DIR, ATTR_SPEC, ATTR_SPEC_PATH
    from tuner.spec import load_spec

    if ATTR_SPEC not in attrs:
        raise StorageError(
            f"study {name!r} has no stored tuner spec (user attribute {ATTR_SPEC!r}), so it was not created by "
            "`tuner run`. Refit needs the spec: run the study with tuner, or refit in Python from its params."
        )
    spec = load_spec(json.loads(attrs[ATTR_SPEC]))
    if spec_file is not None:
        origin: Path | None = spec_file.resolve()
    elif attrs.get(ATTR_SPEC_PATH):
        origin = Path(attrs[ATTR_SPEC_PATH])
    elif attrs.get(ATTR_BASE_DIR):
        # A spec built in Python has no file; a placeholder name in its folder gives the base dir.
        origin = Path(attrs[ATTR_BASE_DIR]) / f"{name}.yaml"
    else:
        origin = None
    return spec if origin is None else spec.model_copy(update={"spec_path": origin})


def _choose_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    from optuna.trial import TrialState

    from tuner.results import best_trial

    complete = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    multi = len(study.directions) > 1
    if number is not None:
        if number not in complete:
            raise TunerError(
                f"study {study.study_name!r} has no complete trial #{number}. "
                f"Complete trials: {_numbers(complete)}. Pick one of them with --trial."
            )
        return complete[number]
    if multi:
        pareto = [t.number for t in study.best_trials]
        raise TunerError(
            f"study {study.study_name!r} has {len(study.directions)} objectives, so there is no single best trial. "
            f"Choose one of the Pareto-optimal trials with --trial N (trial=N): {_numbers(pareto)}."
        )
    best = best_trial(study)
    if best is None:
        raise TunerError(
            f"study {study.study_name!r} has no complete trial with a finite value yet; run it first (`tuner run`)."
        )
    return best


def _numbers(numbers: Any) -> str:
    listed = sorted(numbers)
    return ", ".join(f"#{n}" for n in listed[:30]) + (" …" if len(listed) > 30 else "") if listed else "none"


def _params(context: ObjectiveContext, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The trial's parameters with the space's fixed values, exactly as the objective built them."""
    import optuna

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-range values after a space change are still used
            # FixedTrial answers every suggest_* call like a live trial would.
            fixed = cast("optuna.Trial", optuna.trial.FixedTrial(dict(trial.params)))
            return context.suggest(fixed)
    except ValueError as exc:
        raise TunerError(
            f"{context.spec.label}: trial #{trial.number}'s parameters do not fit the study's search space ({exc}). "
            "The space changed after this trial, or a custom objective suggested other parameters; "
            "refit another trial with --trial N."
        ) from None


def _iterations(context: ObjectiveContext, params: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any] | None:
    """Boosting models stop early in each fold and record the best iteration counts (trial attribute
    ``best_iterations``); the refit on all rows uses their mean instead of the searched cap."""
    counts = attrs.get("best_iterations")
    if not isinstance(counts, list) or not counts:
        return None
    values = [c for c in counts if isinstance(c, int | float) and not isinstance(c, bool) and c > 0]
    if not values:
        return None
    # The catalog entry's fidelity hook names the iteration parameter; custom models are assumed
    # to follow scikit-learn's ensembles when they tune `n_estimators`.
    hook = getattr(context.model, "iterations", None)
    param = hook.param if hook is not None else ("n_estimators" if "n_estimators" in params else None)
    if param is None:
        return None
    value = max(1, round(sum(values) / len(values)))
    return {"param": param, "value": value, "per_fold": values, "searched": params.get(param)}


def _no_early_stopping(estimator: Any) -> None:
    # With the iteration count fixed from the folds there is no validation set left to stop on.
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if not hasattr(final, "get_params"):
        return
    current = final.get_params(deep=False)
    if current.get("early_stopping_rounds") is not None:  # XGBoost
        final.set_params(early_stopping_rounds=None)
    if "max_iter" in current and current.get("early_stopping", False) is not False:  # HistGradientBoosting
        final.set_params(early_stopping=False)


def _fit(estimator: Any, context: ObjectiveContext, params: dict[str, Any]) -> list[str]:
    """Fit on every tuning row through the trial's balancing and augmentation, as each fold was fitted."""
    from tuner import augment
    from tuner.seeds import seed_for

    plan = augment.plan_for(context.spec, params)
    dataset = context.dataset
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        augment.fit(estimator, plan, dataset.X, dataset.y, seed=seed_for(context.spec.seed, "augment", "refit"))
    return sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught})[:10]


def _score_holdout(estimator: Any, context: ObjectiveContext) -> dict[str, Any] | None:
    holdout = context.holdout
    if holdout is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = context.metric.score(estimator, holdout.X, holdout.y)
    return {"metric": context.metric.name, "score": score, "rows": len(holdout.y)}


def _card(
    spec: StudySpec,
    context: ObjectiveContext,
    study: optuna.Study,
    url: str,
    trial: optuna.trial.FrozenTrial,
    params: dict[str, Any],
    iterations: dict[str, Any] | None,
    test: dict[str, Any] | None,
    messages: list[str],
    model_path: Path,
    digest: str,
) -> dict[str, Any]:
    from tuner.results import _clean
    from tuner.storage import redact

    attrs = trial.user_attrs
    return _clean(
        {
            "format": CARD_FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_file": model_path.name,
            "model_sha256": digest,
            "study": {"name": study.study_name, "storage": redact(url), "trial": trial.number},
            "model": spec.model,
            "task": context.dataset.task,
            "params": params,
            "iterations": iterations,
            "cv": {
                "metric": context.metric.name,
                "mean": trial.values[0] if trial.values else None,
                "values": trial.values,
                "fold_scores": attrs.get("val_scores"),
                "std": attrs.get("val_std"),
                "folds": len(context.splits),
            },
            "diagnostics": {k: attrs[k] for k in _DIAGNOSTICS if k in attrs},
            "test": test,
            "data": fingerprint(context, spec),
            "fit_warnings": messages,
            "versions": versions(),
            "spec": json.loads(spec.to_json()),
        }
    )


def fingerprint(context: ObjectiveContext, spec: StudySpec) -> dict[str, Any]:
    """Columns, dtypes, row counts and a SHA-256 of the rows used (tuning rows, then test rows)."""
    import pandas as pd

    parts = [context.dataset] + ([context.holdout] if context.holdout is not None else [])
    digest = hashlib.sha256()
    for part in parts:
        digest.update(pd.util.hash_pandas_object(part.X, index=False).to_numpy().tobytes())
        digest.update(part.y.tobytes())
    X = context.dataset.X
    info: dict[str, Any] = {
        "source": context.dataset.source,
        "target": spec.data.target or ("target" if (spec.data.source or "").startswith("sklearn:") else None),
        "columns": [str(c) for c in X.columns],
        "dtypes": {str(c): str(t) for c, t in X.dtypes.items()},
        "rows": sum(len(p.y) for p in parts),
        "tuning_rows": len(context.dataset.y),
        "test_rows": len(context.holdout.y) if context.holdout is not None else 0,
        "classes": list(context.dataset.classes),
        "sha256": digest.hexdigest(),
    }
    source = spec.data.source
    if source and ":" not in source:
        path = spec.base_dir / source
        if path.is_file():
            info["file_sha256"] = file_sha256(path)
    return info


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


# --------------------------------------------------------------------------------------------
# Predict
# --------------------------------------------------------------------------------------------


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
        import pandas as pd

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
    import joblib

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
    import pandas as pd

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
    from tuner.outputs import output_file

    model_path, data_path = Path(model_path), Path(data_path)
    target = output_file(Path(out), force=force) if out is not None else None
    card = read_card(model_path, Path(card_path) if card_path else None)
    verify_sha256(model_path, card)
    from tuner.data import read_table

    frame = read_table(data_path, where="input data")
    check_columns(card, frame, label=str(data_path))
    import joblib

    predictions = LoadedModel(estimator=joblib.load(model_path), card=card).predict(frame)
    if target is not None:
        predictions.to_csv(target, index=False)
    return predictions
