"""From the best trial to a model file: refit on all tuning rows, score the held-out test rows,
and save it with joblib plus a JSON model card (:mod:`tuner.modelfile`).

Everything is rebuilt from the storage alone: the study keeps its spec (``tuner:spec``) and the
spec's folder (``tuner:base_dir``), so data, folds, the held-out rows, metric and estimator come
back exactly as they were during tuning. A :class:`~tuner.engine.StudyResult` brings its own
study and data instead, which is how a ``memory://`` study or one tuned on Python data refits.
The fit itself is :func:`tuner.final.fit_final`, shared with ``StudyResult.best_estimator()``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import optuna
import pandas as pd

from tuner.engine import RaceProgress, StudyResult
from tuner.errors import TunerError
from tuner.final import FinalModel, fit_final
from tuner.modelfile import CARD_FORMAT, card_path_for, file_sha256, versions
from tuner.modelkey import SIGNATURE, sign, signing_key
from tuner.outputs import output_file
from tuner.racing import pending, race
from tuner.setup import StudyContext, build
from tuner.spec import StudySpec
from tuner.store import StudyRef, clean, kind_of, load_stored, redact, resolve_ref, schema, stored_spec
from tuner.tracking import MLflowTracker


@dataclass(frozen=True)
class RefitResult:
    """What :func:`refit_best` produced: the fitted estimator, its files (None when ``out=None``) and
    its card (unsigned, without the file's name and hash, when nothing was written)."""

    estimator: Any
    model_path: Path | None
    card_path: Path | None
    card: dict[str, Any]

    @property
    def test_score(self) -> float | None:
        test = self.card.get("test")
        return None if not test else test.get("score")


def refit_best(
    study: str | Path | StudyRef | StudyResult,
    *,
    out: str | Path | None,
    storage: str | None = None,
    trial: int | None = None,
    data: pd.DataFrame | None = None,
    force: bool = False,
    record: bool = True,
    mlflow: str | None = None,
    progress: bool = False,
) -> RefitResult:
    """Refit a study's best configuration on all tuning rows and save it with a model card.

    The estimator predicts the data's own labels ("yes"/"no" in, "yes"/"no" out; ``classes_`` and
    the ``predict_proba`` columns in the same order), though it was fitted on class codes as
    every trial was (see :mod:`tuner.labels`).

    Args:
        study: A spec file, ``"name@storage"``, a study name on ``storage``, a resolved
            :class:`~tuner.store.StudyRef`, or the :class:`~tuner.engine.StudyResult` of a run in
            this process (its study and data are used as they are: ``memory://`` studies and data
            passed from Python refit this way).
        out: Model file to write (joblib); the card goes to ``<out stem>.card.json``. ``None``
            writes nothing and returns the fitted estimator with an unsigned card.
        storage: Storage URL or path for a plain study name (or to override a spec's storage).
        trial: Trial number to refit instead of the best one (required for multi-objective
            studies: pick one of the Pareto trials).
        data: The DataFrame the study was tuned on, when it was passed from Python.
        force: Overwrite existing model and card files.
        record: Store the model's path and hash on the study (user attribute ``tuner:refit_model``),
            where ``tuner show``, reports and the dashboard see it (only when files are written).
        mlflow: An MLflow tracking URI or SQLite file: log the model file and its card as the
            ``model/`` artifacts of the study's parent run (the one ``run_study(mlflow=...)`` made;
            a new one otherwise). Needs the ``mlflow`` extra; nothing is logged when ``out`` is None.
        progress: Show progress on stderr when the final choice's candidates are re-scored first
            (a study whose trials only `tuner worker` processes ran; see :mod:`tuner.racing`).

    Returns:
        A :class:`RefitResult`; ``result.test_score`` is the held-out score when the spec has
        ``cv.holdout_test``.

    Raises:
        TunerError: for a missing study, a study not made by ``tuner run``, an unknown trial, a
            multi-objective study without ``trial``, an output file that exists, or a
            ``memory://`` study named by its URL (it lives only in the run's own result).

    Example:
        >>> result = refit_best("studies/quickstart.yaml", out="model.joblib")
        >>> result.test_score
    """
    model_path = output_file(Path(out), force=force) if out is not None else None
    card_path = output_file(card_path_for(model_path), force=force) if model_path is not None else None
    # Before the fit, so that a key that cannot be read or created costs no work.
    key = signing_key() if model_path is not None else None
    if isinstance(study, StudyResult):
        live, spec, url = study.study, study.spec, study.storage_url
        context = study.context if study.context is not None and data is None else build(spec, data=data)
    else:
        found = study if isinstance(study, StudyRef) else resolve_ref(study, storage=storage)
        if kind_of(found.url) == "memory":
            raise _memory_ref(found.name)
        live = load_stored(found.name, found.url).study
        spec = stored_spec(live.user_attrs, name=found.name, spec_file=found.spec_file)
        url = found.url
        context = build(spec, data=data)
    # Before the fit too: a tracking URI that does not work costs no work.
    tracker = MLflowTracker(mlflow, live, url) if mlflow is not None and model_path is not None else None
    if trial is None and pending(live):
        # Trials run by `tuner worker` alone: no run re-scored the top candidates yet.
        with RaceProgress(enabled=progress) as shown:
            race(context, live, builtin=spec.objective.custom is None, progress=shown)
    final = fit_final(context, live, trial)
    if model_path is None or card_path is None or key is None:
        card = _card(spec, context, live, url, final, None, None)
        return RefitResult(estimator=final.estimator, model_path=None, card_path=None, card=card)
    joblib.dump(final.estimator, model_path)
    digest = file_sha256(model_path)
    card = _card(spec, context, live, url, final, model_path, digest)
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
                schema.REFIT_TRIAL: final.trial.number,
                schema.REFIT_TEST_SCORE: None if final.test is None else final.test["score"],
                schema.REFIT_CREATED: card["created"],
            },
        )
    if tracker is not None:
        tracker.log_model(model_path, card_path, card)
    return RefitResult(estimator=final.estimator, model_path=model_path, card_path=card_path, card=card)


def _memory_ref(name: str) -> TunerError:
    return TunerError(
        f"study {name!r} is on a memory:// storage, which lives only inside the run that made it, so it cannot be "
        "found by name. Refit it from the run's result in the same process: `result = tuner.run_study(...)`, then "
        "`result.best_estimator()` or `tuner.refit_best(result, out=...)`; or tune on a file storage "
        "(`storage: tuner.db`) to refit later."
    )


def _card(
    spec: StudySpec,
    context: StudyContext,
    study: optuna.Study,
    url: str,
    final: FinalModel,
    model_path: Path | None,
    digest: str | None,
) -> dict[str, Any]:
    trial = final.trial
    attrs = trial.user_attrs
    return clean(
        {
            "format": CARD_FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_file": None if model_path is None else model_path.name,
            "model_sha256": digest,
            "study": {"name": study.study_name, "storage": redact(url), "trial": trial.number},
            "model": spec.model,
            "task": context.dataset.task,
            "params": final.params,
            "iterations": final.iterations,
            "cv": {
                "metric": context.metric.name,
                "mean": trial.values[0] if trial.values else None,
                "values": trial.values,
                "fold_scores": attrs.get(schema.VAL_SCORES),
                "std": attrs.get(schema.VAL_STD),
                "folds": context.cv.n_splits,
            },
            "diagnostics": {k: attrs[k] for k in schema.DIAGNOSTICS if k in attrs},
            "test": final.test,
            "data": fingerprint(context, spec),
            "fit_warnings": final.fit_warnings,
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
