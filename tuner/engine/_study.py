"""Create or resume a study on its storage, refusing a resume that would mix incomparable trials.

The study stores its spec, the spec's hash and the resolved search space (names in
:mod:`tuner.store.schema`), so any command rebuilds the setup from the storage alone and a
resumed run can tell what changed.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import optuna

from tuner import targets
from tuner.errors import SpecError, StorageError, StorageUnavailable, TunerError
from tuner.search import build_pruner, describe, diff, to_json
from tuner.setup import StudyContext
from tuner.spec import ParamSpec, StudySpec, load_spec
from tuner.store import Heartbeat, StoredStudy, open_storage, redact, schema

# Parts of the spec that change what trial values mean; resuming across a change mixes them.
_COMPARED = (
    "model",
    "metric",
    "data",
    "cv",
    "objective",
    "constraints",
    "fairness",
    "balance",
    "augment",
    "early_stopping",
)


def open_study(
    spec: StudySpec,
    context: StudyContext,
    url: str,
    *,
    allow_space_change: bool,
    heartbeat: Heartbeat | None = None,
) -> StoredStudy:
    """Create the study, or load it and refuse a changed search space unless allowed.

    ``heartbeat`` is for processes that run trials (see :func:`tuner.store.open_storage`).
    """
    try:
        storage = open_storage(url, heartbeat=heartbeat)
    except StorageUnavailable:
        raise  # the field is fine, the file or server failed; the message names it
    except StorageError as exc:
        raise StorageError(f"{spec.label}, field 'storage': {exc}") from None
    study = optuna.create_study(
        storage=storage,
        study_name=spec.name,
        directions=targets.directions(spec.objective),
        load_if_exists=True,
        pruner=build_pruner(spec.pruner, label=spec.label),
    )
    targets.check_directions(study, spec.objective, where=f"{spec.label}: study {spec.name!r} in {redact(url)}")
    new_space = to_json(context.space)
    attrs = study.user_attrs
    if schema.SPEC in attrs and not allow_space_change:
        _refuse_changes(spec, json.loads(attrs[schema.SPEC]), attrs.get(schema.SPACE, {}), new_space, url)
    # The stored spec is shown by export and the dashboard: never with the storage password.
    stored = spec.model_copy(update={"storage": redact(spec.storage)}) if spec.storage else spec
    if attrs.get(schema.SPEC_HASH) != stored.spec_hash():
        # The spec goes last: a worker starting meanwhile compares only once it is there, and
        # then finds the space and the rest already written.
        study.set_user_attr(schema.SPACE, new_space)
        study.set_user_attr(schema.MODEL, spec.model)
        study.set_user_attr(schema.METRIC, context.metric.name)
        study.set_user_attr(schema.TASK, context.dataset.task)
        study.set_user_attr(schema.N_FOLDS, context.cv.n_splits)
        study.set_user_attr(schema.OBJECTIVES, targets.labels(spec.objective, context.metric.name))
        study.set_user_attr(schema.BASELINE, context.baseline)
        study.set_user_attr(schema.SPEC_HASH, stored.spec_hash())
        study.set_user_attr(schema.SPEC, stored.to_json())
    names = targets.labels(spec.objective, context.metric.name)
    if study.metric_names != names:  # optuna-dashboard names the objectives by these
        with warnings.catch_warnings():
            # Experimental since Optuna 3.2 and unchanged since; the warning would only puzzle users.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    if attrs.get(schema.BASE_DIR) != str(spec.base_dir):
        study.set_user_attr(schema.BASE_DIR, str(spec.base_dir))
        if spec.spec_path is not None:
            study.set_user_attr(schema.SPEC_PATH, str(spec.spec_path))
    return StoredStudy(study, storage, url, storage.get_study_id_from_name(spec.name))


def _refuse_changes(
    spec: StudySpec, old_spec: dict[str, Any], old_space: dict[str, Any], new_space: dict[str, Any], url: str
) -> None:
    fix = (
        f"Resuming would mix trials that are not comparable. Use a new study name "
        f"(`--study-name {spec.name}-2`), or pass `--allow-space-change` (allow_space_change=True) to continue anyway."
    )
    changed = diff(old_space, new_space)
    where = f"{spec.label}: study {spec.name!r} in {redact(url)}"
    if changed:
        details = "; ".join(
            f"{name}: {_describe_json(old_space.get(name))} → {_describe_json(new_space.get(name))}" for name in changed
        )
        raise SpecError(f"{where} was run with a different search space (changed parameter(s): {details}). {fix}")
    new_spec = json.loads(spec.to_json())
    old_spec = _normalized(old_spec)
    for key in _COMPARED:
        if old_spec.get(key) != new_spec.get(key):
            raise SpecError(
                f"{where} was run with a different `{key}` ({old_spec.get(key)!r} → {new_spec.get(key)!r}). {fix}"
            )


def _normalized(old_spec: dict[str, Any]) -> dict[str, Any]:
    """The stored spec re-validated by this version, so fields added since (with their defaults)
    do not read as changes; a spec this version cannot read is compared as stored."""
    try:
        return dict(json.loads(load_spec(old_spec).to_json()))
    except TunerError:
        return old_spec


def _describe_json(value: dict[str, Any] | None) -> str:
    return "absent" if value is None else describe(ParamSpec.model_validate(value))
