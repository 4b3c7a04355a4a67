"""Trials to MLflow (the ``mlflow`` extra): one MLflow run per trial, nested under one parent run per study.

``run_study(..., mlflow=URI)`` (``tuner run --mlflow URI``) logs each trial as it finishes, in the
process that runs the study; with worker processes that is the parent, as their trials reach the
storage. A trial's run holds its parameters, its objective value(s) and every number the
objective stored on it (the user attributes of :mod:`tuner.store.schema`: fold scores as steps,
gap, per-group scores), with flags, errors and other text as tags. The parent run is found again
by a tag that names the study and its storage, so a resumed study adds its trials under the same
parent. ``refit_best(..., mlflow=URI)`` logs the model file and its card on the parent.

Everything goes through ``MlflowClient``, never MLflow's fluent API, so a caller's own active run
and tracking URI are left as they were.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.errors import TrackingError, sentence, shorten
from tuner.store import MEMORY_URL, final_choice, objective_names, redact, schema

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

_log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'tuner[mlflow]'"
# The parent run is found by STUDY_KEY_TAG (a hash of the study's name and redacted storage URL,
# so the filter needs no quoting); STUDY_TAG and STORAGE_TAG show the same in words.
STUDY_KEY_TAG = "tuner.study_key"
STUDY_TAG = "tuner.study"
STORAGE_TAG = "tuner.storage"
TRIAL_TAG = "tuner.trial"
STATE_TAG = "tuner.state"
BEST_TRIAL_TAG = "tuner.best_trial"
REFIT_TRIAL_TAG = "tuner.refit_trial"
# The final choice (the trial `tuner best` and a refit hand over), tagged once the run has made it;
# `tuner.best_trial` follows the raw maximum while trials run.
CHOSEN_TRIAL_TAG = "tuner.chosen_trial"
# How MLflow itself records nesting (what `mlflow.start_run(nested=True)` writes).
PARENT_TAG = "mlflow.parentRunId"
# The folder of the parent run's artifacts that holds the refit model file and its card.
MODEL_ARTIFACTS = "model"
# A trial's fold-by-fold pruning values (steps), which a pruned trial has even without fold scores.
INTERMEDIATE = "intermediate_value"
_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
# MLflow's limits (mlflow.utils.validation): entries per log_batch call, lengths of keys and values.
_BATCH_METRICS = 1000
_BATCH_TAGS = 100
_KEY_LIMIT = 250
_PARAM_LIMIT = 6000
_TAG_LIMIT = 8000
# MLflow accepts letters, digits, `_ . - / :` and spaces in a key; the objective labels use − and ×.
_NOT_A_KEY = re.compile(r"[^A-Za-z0-9_.\- /]")
_READABLE = str.maketrans({"−": "-", "×": "x"})


def tracking_uri(value: str) -> str:
    """The tracking URI as given (``sqlite:///…``, ``http://…``, ``databricks``), or a path as an SQLite file.

    A folder means ``mlflow.db`` in it. MLflow 3 refuses its old file store (``./mlruns``) unless
    ``MLFLOW_ALLOW_FILE_STORE=true``, so a plain path is never taken as one.
    """
    if "://" in value or value.startswith("databricks"):
        return value
    path = Path(value).expanduser().resolve()
    if path.is_dir():
        path = path / "mlflow.db"
    return f"sqlite:///{path}"


def study_key(name: str, storage_url: str) -> str:
    return hashlib.sha256(f"{name}\n{redact(storage_url)}".encode()).hexdigest()[:32]


class MLflowTracker:
    """Logs a study's finished trials to MLflow; an Optuna callback ``(study, frozen_trial)``.

    Made before the first trial, so a tracking URI that does not work fails the run before it
    starts. Used as a context manager around the run, it marks the parent run RUNNING, then
    FINISHED, KILLED (Ctrl-C) or FAILED (an error).

    Args:
        uri: MLflow tracking URI, or a path (an SQLite file; a folder means its ``mlflow.db``).
        study: The study whose trials are logged.
        storage_url: The study's storage URL; with the name, it tells this study from others.
        experiment: MLflow experiment (made if missing); default: the study's name.

    Raises:
        TrackingError: MLflow is not installed, or the tracking store cannot be opened.
    """

    def __init__(self, uri: str, study: optuna.Study, storage_url: str, *, experiment: str | None = None) -> None:
        self.uri = tracking_uri(uri)
        self._lock = threading.Lock()
        with _errors(self.uri, "open the tracking store"):
            self.client = _client(self.uri)
            self.experiment_id = _experiment(self.client, experiment or study.study_name)
            self.parent_id = _parent(self.client, self.experiment_id, study, storage_url)
        self.objectives = [_key(name) for name in objective_names(study.user_attrs, len(study.directions))]

    def __enter__(self) -> MLflowTracker:
        with _errors(self.uri, "mark the study's parent run as running"):
            self.client.update_run(self.parent_id, status="RUNNING")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        status = "FINISHED" if kind is None else "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED"
        self._quietly(lambda: self.client.set_terminated(self.parent_id, status=status), "end the parent run")

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # Called from the supervisor's thread too, when worker processes run the trials.
        with self._lock:
            self._quietly(lambda: self.log_trial(study, trial), f"log trial {trial.number}")

    def log_trial(self, study: optuna.Study, trial: FrozenTrial) -> str:
        """Log ``trial`` as a child run of the study's parent run; returns the child's run id."""
        from mlflow.entities import Metric, Param  # optional extra: mlflow

        tags = {
            PARENT_TAG: self.parent_id,
            TRIAL_TAG: str(trial.number),
            STATE_TAG: trial.state.name,
        }
        start = _ms(trial.datetime_start)
        end = _ms(trial.datetime_complete) or start
        run = self.client.create_run(
            self.experiment_id, start_time=start, tags=tags, run_name=f"trial {trial.number}"
        ).info.run_id
        numbers, text = measures(trial, self.objectives)
        metrics = [Metric(key, value, end or 0, step) for (key, step), value in numbers.items()]
        params = [Param(_key(k), shorten(str(v), _PARAM_LIMIT)) for k, v in trial.params.items()]
        _log_batch(self.client, run, metrics=metrics, params=params, tags=text)
        self.client.set_terminated(run, status=_STATUS.get(trial.state, "FINISHED"), end_time=end)
        self._log_best(study, trial)
        return run

    def log_model(self, model_path: Path, card_path: Path, card: dict[str, Any]) -> None:
        """Log a refit model file and its card as the parent run's ``model/`` artifacts."""
        from mlflow.entities import Metric  # optional extra: mlflow

        with _errors(self.uri, "log the refit model"):
            for path in (model_path, card_path):
                self.client.log_artifact(self.parent_id, str(path), artifact_path=MODEL_ARTIFACTS)
            test = card.get("test") or {}
            score = test.get("score")
            metrics = [] if score is None else [Metric("test_score", float(score), _ms(datetime.now(UTC)) or 0, 0)]
            trial = str(card.get("study", {}).get("trial", ""))
            _log_batch(self.client, self.parent_id, metrics=metrics, params=[], tags={REFIT_TRIAL_TAG: trial})

    def log_choice(self, study: optuna.Study) -> None:
        """Tag the parent run with the study's final choice and log its mean over the CV repeats."""
        self._quietly(lambda: self._log_choice(study), "log the final choice")

    def _log_choice(self, study: optuna.Study) -> None:
        from mlflow.entities import Metric  # optional extra: mlflow

        choice = final_choice(study)
        if choice is None:
            return
        now = _ms(datetime.now(UTC)) or 0
        mean = choice.mean if choice.mean is not None else choice.trial.value
        metrics = [] if mean is None or not math.isfinite(mean) else [Metric("chosen_mean", mean, now, 0)]
        tags = {CHOSEN_TRIAL_TAG: str(choice.trial.number), "tuner.choice": f"{choice.method} ({choice.status})"}
        _log_batch(self.client, self.parent_id, metrics=metrics, params=[], tags=tags)

    def _log_best(self, study: optuna.Study, trial: FrozenTrial) -> None:
        from mlflow.entities import Metric  # optional extra: mlflow

        if len(study.directions) != 1:
            return
        try:
            best = study.best_trial
        except ValueError:  # no complete (feasible) trial yet
            return
        if best.value is None or not math.isfinite(best.value):
            return
        metric = Metric("best_value", best.value, _ms(trial.datetime_complete) or 0, trial.number)
        _log_batch(self.client, self.parent_id, metrics=[metric], params=[], tags={BEST_TRIAL_TAG: str(best.number)})

    def _quietly(self, action: Any, what: str) -> None:
        # The trials are in the study's storage whatever happens here; an MLflow server that stops
        # answering mid-study must not stop the study, only say what is missing from MLflow.
        try:
            action()
        except Exception as exc:
            _log.warning("MLflow (%s): could not %s: %s", redact(self.uri), what, shorten(str(exc), 300))


def measures(trial: FrozenTrial, objectives: Sequence[str]) -> tuple[dict[tuple[str, int], float], dict[str, str]]:
    """A trial's metrics (``{(key, step): value}``) and tags: objective values, then its user
    attributes: numbers as metrics, lists of numbers as steps, dicts of numbers as ``attr/key``,
    text and flags as tags."""
    metrics: dict[tuple[str, int], float] = {}
    tags: dict[str, str] = {}
    for name, value in zip(objectives, trial.values or (), strict=False):
        _add(metrics, name, 0, value)
    for step, value in trial.intermediate_values.items():
        _add(metrics, INTERMEDIATE, step, value)
    for attr, value in trial.user_attrs.items():
        key = _key(attr)
        if key.startswith("mlflow."):  # MLflow's own tags
            continue
        for entry in _flatten(key, value):
            if isinstance(entry[1], str):
                tags.setdefault(entry[0], shorten(entry[1], _TAG_LIMIT))
            else:
                _add(metrics, entry[0], entry[2], entry[1])
    return metrics, tags


def _flatten(key: str, value: Any) -> Iterator[tuple[str, float | str, int]]:
    if value is None:
        return
    if isinstance(value, bool | str):
        yield key, str(value).lower() if isinstance(value, bool) else value, 0
    elif isinstance(value, int | float):
        yield key, float(value), 0
    elif isinstance(value, list) and value and all(_number(v) or v is None for v in value):
        yield from ((key, float(v), step) for step, v in enumerate(value) if v is not None)
    elif isinstance(value, list):  # flags, warnings; an empty list says "none"
        yield key, ", ".join(str(v) for v in value), 0
    elif isinstance(value, dict):
        for name, item in value.items():
            if _number(item):
                yield f"{key}/{_key(str(name)).replace('/', '_')}", float(item), 0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _add(metrics: dict[tuple[str, int], float], key: str, step: int, value: float) -> None:
    if math.isfinite(value):
        metrics.setdefault((key[:_KEY_LIMIT], step), float(value))


def _key(name: str) -> str:
    """``name`` as an MLflow key: allowed characters only, no empty, ``.`` or ``..`` path parts."""
    cleaned = _NOT_A_KEY.sub("_", name.translate(_READABLE))
    parts = [p for p in cleaned.split("/") if p.strip() not in ("", ".", "..")]
    return "/".join(parts)[:_KEY_LIMIT] or "_"


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def require_mlflow() -> None:
    """Raise :class:`TrackingError` with the install command when MLflow is not installed."""
    try:
        import mlflow.tracking  # noqa: F401  optional extra: mlflow, checked before a study is opened
    except ImportError:
        raise TrackingError(
            f"`mlflow` (`--mlflow` on the command line) needs the mlflow extra: {INSTALL_HINT}."
        ) from None


def _client(uri: str) -> MlflowClient:
    require_mlflow()
    from mlflow.tracking import MlflowClient  # optional extra: mlflow

    return MlflowClient(tracking_uri=uri)


@contextmanager
def _errors(uri: str, what: str) -> Iterator[None]:
    """Turns MLflow's exceptions into a :class:`TrackingError` that names the URI and what failed."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:  # MlflowException, and the SQL or HTTP errors under it
        raise TrackingError(
            f"`mlflow` = {redact(uri)}: could not {what}: {sentence(shorten(str(exc), 600))} Check the tracking "
            "URI (for example sqlite:///mlflow.db, a .db file, or http://HOST:5000 for a tracking server)."
        ) from exc


def _experiment(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return str(client.create_experiment(name, artifact_location=_artifact_location(client.tracking_uri)))
    if found.lifecycle_stage == "deleted":
        raise TrackingError(
            f"`mlflow`: the MLflow experiment {name!r} was deleted. Restore it (`mlflow experiments restore "
            f"--experiment-id {found.experiment_id}`), or remove it for good (`mlflow gc`) to start it anew."
        )
    return str(found.experiment_id)


def _artifact_location(uri: str) -> str | None:
    """Beside an SQLite tracking file, its artifacts go to ``mlartifacts`` next to it; MLflow's own
    default, ``./mlruns`` under whatever folder the command ran in, scatters them. A server keeps its own."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()


def _parent(client: MlflowClient, experiment_id: str, study: optuna.Study, storage_url: str) -> str:
    """The study's parent run: the one tagged with its key, else a new one (always new for ``memory://``,
    whose studies do not outlive their process)."""
    key = study_key(study.study_name, storage_url)
    if storage_url != MEMORY_URL:
        found = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{STUDY_KEY_TAG}` = '{key}'",
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        if found:
            return str(found[0].info.run_id)
    attrs = study.user_attrs
    tags = {
        STUDY_KEY_TAG: key,
        STUDY_TAG: study.study_name,
        STORAGE_TAG: redact(storage_url),
        "tuner.model": str(attrs.get(schema.MODEL, "")),
        "tuner.metric": str(attrs.get(schema.METRIC, "")),
        "tuner.task": str(attrs.get(schema.TASK, "")),
        "tuner.objectives": ", ".join(objective_names(attrs, len(study.directions))),
        "tuner.directions": ", ".join(d.name.lower() for d in study.directions),
    }
    return str(client.create_run(experiment_id, run_name=study.study_name, tags=tags).info.run_id)


def _log_batch(client: MlflowClient, run: str, *, metrics: list[Any], params: list[Any], tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag  # optional extra: mlflow

    tag_list = [RunTag(k, v) for k, v in tags.items()]
    for i in range(0, len(metrics), _BATCH_METRICS):
        client.log_batch(run, metrics=metrics[i : i + _BATCH_METRICS])
    # Params and tags share MLflow's per-batch limit.
    both = [*params, *tag_list]
    for i in range(0, len(both), _BATCH_TAGS):
        chunk = both[i : i + _BATCH_TAGS]
        client.log_batch(
            run,
            params=[p for p in chunk if not isinstance(p, RunTag)],
            tags=[t for t in chunk if isinstance(t, RunTag)],
        )
