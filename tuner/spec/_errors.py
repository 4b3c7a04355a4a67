"""Pydantic validation errors → one paragraph naming the file, line, field and fix."""

from __future__ import annotations

import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tuner.errors import did_you_mean, shorten, shown
from tuner.spec._yaml import compose

# A paragraph lists this many problems and counts the rest: a list of thousands of bad values is
# one mistake repeated, and its message must stay readable.
_MAX_LISTED = 10


def format_errors(
    exc: ValidationError, label: str, text: str | None, *, root: type[BaseModel], prefix: tuple[str, ...] = ()
) -> str:
    """The message of a :class:`~tuner.errors.SpecError` for ``exc``.

    Args:
        exc: The validation error.
        label: How the spec is named (its file, or the study name).
        text: The YAML text, to find each field's line (None for specs not read from a file).
        root: The model the error locations start from (for "valid keys here").
        prefix: Where in the spec the validated value sits (``("budget",)`` for a budget field).
    """
    return paragraph(problems(exc, label, text, root=root, prefix=prefix))


def problems(
    exc: ValidationError, label: str, text: str | None, *, root: type[BaseModel], prefix: tuple[str, ...] = ()
) -> list[str]:
    """One ``"<file>, line N, field 'x': what is wrong"`` per error of ``exc`` (see :func:`format_errors`)."""
    tree = compose(text) if text else None  # once for all errors: composing is the slow part
    out = []
    for error in exc.errors(include_url=False):
        loc = prefix + _clean_loc(error["loc"])
        out.append(_problem(label, tree, loc, _describe(error, loc, root)))
    return out


def field_problem(label: str, text: str | None, loc: tuple[int | str, ...], message: str) -> str:
    """The message of a :class:`~tuner.errors.SpecError` for one field found wrong after validation."""
    return paragraph([_problem(label, compose(text) if text else None, loc, message)])


def _problem(label: str, tree: yaml.Node | None, loc: tuple[int | str, ...], message: str) -> str:
    field = ".".join(str(part) for part in loc) or "(top level)"
    line = _line_of(tree, loc) if tree else None
    where = f"{label}, line {line}" if line else label
    return f"{where}, field {shorten(repr(field))}: {message}"


def paragraph(messages: list[str]) -> str:
    """Problems as the one paragraph of a :class:`~tuner.errors.SpecError`."""
    plural = "s" if len(messages) > 1 else ""
    more = len(messages) - _MAX_LISTED
    listed = messages[:_MAX_LISTED] + ([f"… and {more} more"] if more > 0 else [])
    return (
        f"Invalid study spec ({len(messages)} problem{plural}): "
        + "; ".join(listed)
        + ". Fix the field(s) named above; `tuner schema` prints every field and its type."
    )


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # Pydantic adds union/validator tags such as "function-after[...]" to locations; users
    # only care about the path through their YAML.
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("ParamSpec",))))


def _describe(error: Any, loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1], root)
        hint = did_you_mean(str(loc[-1]), known) if known else ""
        return f"unknown key {shown(loc[-1])}.{hint} Valid keys here: {', '.join(sorted(known))}"
    if kind == "missing":
        return "this field is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("value_error", "assertion_error"):
        return message
    return f"{message} (got {shown(value)})"


def _known_keys(loc: tuple[int | str, ...], root: type[BaseModel]) -> list[str]:
    model: Any = root
    for part in loc:
        # Check for dict first: a `dict[str, X]` alias forwards attribute lookups to `dict`.
        if typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]
        elif isinstance(model, type) and issubclass(model, BaseModel) and part in model.model_fields:
            model = model.model_fields[str(part)].annotation
        else:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [k for k in model.model_fields if k != "spec_path"]
    return []


def _line_of(tree: yaml.Node, loc: tuple[int | str, ...]) -> int | None:
    node: Any = tree
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
