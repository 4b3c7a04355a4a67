"""Search spaces: a model's defaults merged with the spec's overrides, and the trial suggestions.

A space maps parameter names to :class:`~tuner.spec.ParamSpec`. Conditional parameters
(``when: {kernel: rbf}``) are only suggested when their parent took one of the listed values, so
TPE and friends never waste trials on parameters that have no effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from tuner.errors import SpecError
from tuner.spec import ParamSpec

Space = dict[str, ParamSpec]


def merge(defaults: Mapping[str, ParamSpec], overrides: Mapping[str, ParamSpec], *, label: str) -> Space:
    """Apply the spec's ``space`` on top of a model's default space and order it for suggestion."""
    space = {**defaults, **overrides}
    _check_conditions(space, label)
    return _ordered(space, label)


def _check_conditions(space: Space, label: str) -> None:
    for name, param in space.items():
        for parent, wanted in (param.when or {}).items():
            where = f"{label}, field 'space.{name}.when'"
            if parent not in space:
                raise SpecError(
                    f"{where}: refers to {parent!r}, which is not in the search space. "
                    f"Parameters: {', '.join(sorted(space))}."
                )
            parent_spec = space[parent]
            allowed = _possible_values(parent_spec)
            if allowed is not None:
                values = wanted if isinstance(wanted, tuple) else (wanted,)
                bad = [v for v in values if v not in allowed]
                if bad:
                    raise SpecError(f"{where}: {parent!r} can never be {bad[0]!r}; its values are {list(allowed)!r}.")


def _possible_values(param: ParamSpec) -> tuple[Any, ...] | None:
    if param.type == "categorical":
        return param.choices
    if param.type == "fixed":
        return (param.value,)
    return None


def _ordered(space: Space, label: str) -> Space:
    """Parents before children, otherwise the given order; cycles are an error."""
    ordered: Space = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise SpecError(
                f"{label}, field 'space.{name}.when': its `when` conditions form a cycle; a parameter cannot "
                "depend on itself. Remove one of the conditions."
            )
        visiting.add(name)
        for parent in space[name].when or {}:
            visit(parent)
        visiting.discard(name)
        ordered[name] = space[name]

    for name in space:
        visit(name)
    return ordered


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Ask ``trial`` for every active parameter; fixed values are included as they are."""
    params: dict[str, Any] = {}
    for name, p in space.items():
        if not _active(p, params):
            continue
        if p.type == "fixed":
            params[name] = p.value
        elif p.type == "categorical":
            assert p.choices is not None
            params[name] = trial.suggest_categorical(name, list(p.choices))
        elif p.type == "int":
            assert p.low is not None and p.high is not None
            step = int(p.step) if p.step else 1
            params[name] = trial.suggest_int(name, int(p.low), int(p.high), step=step, log=p.log)
        else:
            assert p.low is not None and p.high is not None
            params[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
    return params


def _active(param: ParamSpec, chosen: Mapping[str, Any]) -> bool:
    for parent, wanted in (param.when or {}).items():
        values = wanted if isinstance(wanted, tuple) else (wanted,)
        if parent not in chosen or chosen[parent] not in values:
            return False
    return True


def describe(param: ParamSpec) -> str:
    """Short human form, e.g. ``float [0.01, 0.3] log`` or ``one of gini, entropy``."""
    if param.type == "fixed":
        text = f"= {param.value!r}"
    elif param.type == "categorical":
        text = "one of " + ", ".join(map(str, param.choices or ()))
    else:
        low = int(param.low) if param.type == "int" else param.low  # type: ignore[arg-type]
        high = int(param.high) if param.type == "int" else param.high  # type: ignore[arg-type]
        text = f"{param.type} [{low:g}, {high:g}]" + (" log" if param.log else "")
        text += f" step {param.step:g}" if param.step else ""
    if param.when:
        text += " when " + ", ".join(f"{k}={v}" for k, v in param.when.items())
    return text


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names of parameters added, removed or changed between two JSON-form spaces."""
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def to_json(space: Space) -> dict[str, Any]:
    return {name: p.model_dump(mode="json", exclude_defaults=True) for name, p in space.items()}
