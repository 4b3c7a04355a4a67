"""Reading a study file: bounded YAML in, a validated :class:`StudySpec` out."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tuner.errors import SpecError, shorten, shown
from tuner.spec._errors import format_errors
from tuner.spec._model import StudySpec
from tuner.spec._yaml import parse_yaml, read_yaml

# Fields that `load_spec(spec, **fields)` can set on an existing spec without re-reading it.
_TYPED_FIELDS = frozenset({"name", "seed", "storage"})


def load_spec(
    source: str | Path | dict[str, Any] | StudySpec,
    *,
    overrides: typing.Sequence[str] = (),
    **fields: Any,
) -> StudySpec:
    """Load and validate a study spec.

    Args:
        source: A YAML file path, a dict with the same structure, or an existing spec.
        overrides: ``"key.path=value"`` strings (values parsed as YAML), as ``tuner run --set``.
        **fields: Top-level fields to replace, e.g. ``name="other"`` or ``seed=3`` (None keeps
            the spec's value).

    Returns:
        The frozen :class:`StudySpec`.

    Raises:
        SpecError: with the file, line, field and a fix, for any invalid input.

    Example:
        >>> spec = load_spec("studies/quickstart.yaml", overrides=["budget.n_trials=5"])
    """
    fields = {key: value for key, value in fields.items() if value is not None}
    if isinstance(source, StudySpec) and not overrides and set(fields) <= _TYPED_FIELDS:
        return source.replace(**fields)  # already validated: only the new values are checked
    path: Path | None = None
    text: str | None = None
    if isinstance(source, StudySpec):
        raw = source.model_dump(mode="json")  # `--set` text applies to the spec's raw form
        path = source.spec_path
    elif isinstance(source, dict):
        raw = dict(source)
    else:
        path = Path(source)
        raw, text = _read_yaml(path)
    label = str(path) if path else "the study spec"
    for item in overrides:
        _apply_override(raw, item, label)
    raw.update(fields)
    try:
        spec = StudySpec.model_validate({**raw, "spec_path": path.resolve() if path else None})
    except ValidationError as exc:
        raise SpecError(format_errors(exc, label, text, root=StudySpec)) from None
    spec._given_as = label
    return spec


def _read_yaml(path: Path) -> tuple[dict[str, Any], str]:
    if not path.is_file():
        hint = " It is a directory; name the YAML file inside it." if path.is_dir() else ""
        raise SpecError(f"{path}: study file not found.{hint} Check the path (relative to {Path.cwd()}).")
    try:
        raw, text = read_yaml(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(
            f"{path}{where}: invalid YAML ({shorten(problem)}). Fix the syntax there; "
            "check indentation and that values containing ':' are quoted."
        ) from None
    if not isinstance(raw, dict):
        raise SpecError(
            f"{path}: a study file must be a YAML mapping with at least `name`, `data` and `model`, "
            f"but it holds a {type(raw).__name__}. See `tuner schema` or studies/quickstart.yaml."
        )
    return raw, text


def _apply_override(raw: dict[str, Any], item: str, label: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise SpecError(
            f"--set {shown(item)}: expected `key.path=value`, e.g. `--set budget.n_trials=20` (for {label})."
        )
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if isinstance(child, str) and part in ("sampler", "pruner"):
            child = {"name": child}
        if not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    try:
        node[parts[-1]] = parse_yaml(value, f"--set {shown(item)} (for {label})")
    except yaml.YAMLError:
        node[parts[-1]] = value
