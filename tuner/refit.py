"""From the best trial to a model file: refit on all tuning rows, score the held-out test rows,
and save it with joblib plus a JSON model card (:mod:`tuner.modelfile`).

Everything is rebuilt from the storage alone: the study keeps its spec (``tuner:spec``) and the
spec's folder (``tuner:base_dir``), so data, folds, the held-out rows, metric and estimator come
back exactly as they were during tuning.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import optuna
import pandas as pd
from optuna.trial import TrialState

from tuner.cv import fit_and_score, plan_for
from tuner.errors import TunerError
from tuner.modelfile import CARD_FORMAT, card_path_for, file_sha256, versions
from tuner.modelkey import SIGNATURE, sign, signing_key
from tuner.outputs import output_file
from tuner.seeds import seed_for
from tuner.setup import StudyContext, build
from tuner.spec import StudySpec
from tuner.store import StudyRef, best_trial, clean, load_stored, redact, resolve_ref, schema, stored_spec
from tuner.tracking import MLflowTracker


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


def refit_best(
    study: str | Path | StudyRef,
    *,
    out: str | Path,
    storage: str | None = None,
    trial: int | None = None,
    data: pd.DataFrame | None = None,
    force: bool = False,
    record: bool = True,
    mlflow: str | None = None,
) -> RefitResult:
    """Refit a study's best configuration on all tuning rows and save it with a model card.

    Args:
        study: A spec file, ``"name@storage"``, a study name on ``storage``, or a resolved
            :class:`~tuner.store.StudyRef`.
        out: Model file to write (joblib); the card goes to ``<out stem>.card.json``.
        storage: Storage URL or path for a plain study name (or to override a spec's storage).
        trial: Trial number to refit instead of the best one (required for multi-objective
            studies: pick one of the Pareto trials).
        data: The DataFrame the study was tuned on, when it was passed from Python.
        force: Overwrite existing model and card files.
        record: Store the model's path and hash on the study (user attribute ``tuner:refit_model``),
            where ``tuner show``, reports and the dashboard see it.
        mlflow: An MLflow tracking URI or SQLite file: log the model file and its card as the
            ``model/`` artifacts of the study's parent run (the one ``run_study(mlflow=...)`` made;
            a new one otherwise). Needs the ``mlflow`` extra.

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
    model_path = output_file(Path(out), force=force)
    card_path = output_file(card_path_for(model_path), force=force)
    # Before the fit, so that a key that cannot be read or created costs no work.
    key = signing_key()
    found = study if isinstance(study, StudyRef) else resolve_ref(study, storage=storage)
    live = load_stored(found.name, found.url).study
    spec = stored_spec(live.user_attrs, name=found.name, spec_file=found.spec_file)
    chosen = _choose_trial(live, trial)
    # Before the fit too: a tracking URI that does not work costs no work.
    tracker = MLflowTracker(mlflow, live, found.url) if mlflow is not None else None
    context = build(spec, data=data)
    params = _params(context, chosen)
    iterations = _iterations(context, params, chosen.user_attrs)
    if iterations is not None:
        params[iterations["param"]] = iterations["value"]
    estimator = context.build_estimator(params)
    if iterations is not None:
        _no_early_stopping(estimator)
    messages = _fit(estimator, context, params)
    test = _score_holdout(estimator, context)
    joblib.dump(estimator, model_path)
    digest = file_sha256(model_path)
    card = _card(spec, context, live, found.url, chosen, params, iterations, test, messages, model_path, digest)
    # Signed as it will read back from disk (values `default=str` turned into text included).
    card = json.loads(json.dumps(card, default=str, allow_nan=False))
    card[SIGNATURE] = sign(key, card)
    card_path.write_text(json.dumps(card, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if record:
        live.set_user_attr(
            schema.REFIT_MODEL,
            {
                schema.REFIT_PATH: str(model_path.resolve()),
                schema.REFIT_CARD: str(card_path.resolve()),
                schema.REFIT_SHA256: digest,
                schema.REFIT_TRIAL: chosen.number,
                schema.REFIT_TEST_SCORE: None if test is None else test["score"],
                schema.REFIT_CREATED: card["created"],
            },
        )
    if tracker is not None:
        tracker.log_model(model_path, card_path, card)
    return RefitResult(estimator=estimator, model_path=model_path, card_path=card_path, card=card)


def _choose_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
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


def _params(context: StudyContext, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The trial's parameters with the space's fixed values, exactly as the objective built them."""
    try:
        return context.params_of(trial)
    except ValueError as exc:
        raise TunerError(
            f"{context.spec.label}: trial #{trial.number}'s parameters do not fit the study's search space ({exc}). "
            "The space changed after this trial, or a custom objective suggested other parameters; "
            "refit another trial with --trial N."
        ) from None


def _iterations(context: StudyContext, params: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any] | None:
    """Boosting models stop early in each fold and record the best iteration counts (trial attribute
    ``best_iterations``); the refit on all rows uses their mean instead of the searched cap."""
    counts = attrs.get(schema.BEST_ITERATIONS)
    if not isinstance(counts, list) or not counts:
        return None
    values = [c for c in counts if isinstance(c, int | float) and not isinstance(c, bool) and c > 0]
    if not values:
        return None
    # The catalog entry's fidelity hook names the iteration parameter; custom models are assumed
    # to follow scikit-learn's ensembles when they tune `n_estimators`.
    hook = context.model.iterations
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


def _fit(estimator: Any, context: StudyContext, params: dict[str, Any]) -> list[str]:
    """Fit on every tuning row through the trial's balancing and augmentation, as each fold was fitted."""
    fitted = fit_and_score(
        estimator,
        context.dataset.X,
        context.dataset.y,
        None,
        seed=seed_for(context.spec.seed, "augment", "refit"),
        augment=plan_for(context.spec, params),
    )
    return sorted(set(fitted.warnings))[:10]


def _score_holdout(estimator: Any, context: StudyContext) -> dict[str, Any] | None:
    holdout = context.holdout
    if holdout is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = context.metric.score(estimator, holdout.X, holdout.y)
    return {"metric": context.metric.name, "score": score, "rows": len(holdout.y)}


def _card(
    spec: StudySpec,
    context: StudyContext,
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
    attrs = trial.user_attrs
    return clean(
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
                "fold_scores": attrs.get(schema.VAL_SCORES),
                "std": attrs.get(schema.VAL_STD),
                "folds": context.cv.n_splits,
            },
            "diagnostics": {k: attrs[k] for k in schema.DIAGNOSTICS if k in attrs},
            "test": test,
            "data": fingerprint(context, spec),
            "fit_warnings": messages,
            "versions": versions(),
            "spec": json.loads(spec.to_json()),
        }
    )


def fingerprint(context: StudyContext, spec: StudySpec) -> dict[str, Any]:
    """Columns, dtypes, row counts and a SHA-256 of the rows used (tuning rows, then test rows)."""
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
