"""The spec a study was run with, rebuilt from the storage alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tuner.store.schema as schema
from tuner.errors import StorageError

if TYPE_CHECKING:
    from tuner.spec import StudySpec


def stored_spec(attrs: dict[str, Any], *, name: str, spec_file: Path | None = None) -> StudySpec:
    """The spec a study was run with, rebuilt from its user attributes.

    Relative paths in it (data files, ``module:function`` imports) resolve against the spec's
    original folder, recorded by ``tuner run``; a spec file given by the user takes precedence.

    Raises:
        StorageError: the study was not created by ``tuner run`` (it has no stored spec).
    """
    if schema.SPEC not in attrs:
        raise StorageError(
            f"study {name!r} has no stored tuner spec (user attribute {schema.SPEC!r}), so it was not created by "
            "`tuner run`. Refit needs the spec: run the study with tuner, or refit in Python from its params."
        )
    from tuner.spec import load_spec  # start-up time: `tuner list` and `show` parse no spec

    spec = load_spec(json.loads(attrs[schema.SPEC]))
    if spec_file is not None:
        origin: Path | None = spec_file.resolve()
    elif attrs.get(schema.SPEC_PATH):
        origin = Path(attrs[schema.SPEC_PATH])
    elif attrs.get(schema.BASE_DIR):
        # A spec built in Python has no file; a placeholder name in its folder gives the base dir.
        origin = Path(attrs[schema.BASE_DIR]) / f"{name}.yaml"
    else:
        origin = None
    return spec if origin is None else spec.model_copy(update={"spec_path": origin})


def spec_dict(attrs: dict[str, Any]) -> dict[str, Any]:
    """The stored spec as plain JSON data ({} when absent or unreadable), for displays."""
    try:
        value = json.loads(attrs[schema.SPEC]) if schema.SPEC in attrs else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
