"""User code named in a spec: ``pkg.module:attr`` imported from the spec's folder first.

Specs name custom models (``model:``), objectives (``objective:``) and data generators
(``data.source: python:…``) this way; all three resolve here, with the same errors.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from tuner.errors import CatalogError


def import_object(path: str, *, field: str, label: str, base_dir: Path | str | None = None) -> Any:
    """Import ``pkg.module:attr``; the spec's folder is searched first, then the usual path."""
    module_name, _, attr = path.partition(":")
    extra = [str(base_dir)] if base_dir is not None else []
    if base_dir is not None:
        _forget_if_shadowed(module_name, Path(base_dir))
    sys.path[:0] = extra
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time error of user code is the user's to fix
        raise CatalogError(
            f"{label}, field {field!r}: cannot import module {module_name!r} ({type(exc).__name__}: {exc}). "
            "Check the module name and that it is importable from the spec's folder or the Python path."
        ) from None
    finally:
        for item in extra:
            sys.path.remove(item)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise CatalogError(
                f"{label}, field {field!r}: module {module_name!r} has no attribute {attr!r}. "
                "Check the name after the colon."
            )
    if not callable(obj):
        raise CatalogError(f"{label}, field {field!r}: {path!r} is a {type(obj).__name__}, not a callable.")
    return obj


def _forget_if_shadowed(module_name: str, base_dir: Path) -> None:
    """Drop a cached module when the spec's folder holds a different file of that name.

    Two specs in one process (a notebook, the tests) may each ship an ``objective.py``; without
    this the second spec would silently run the first one's code.
    """
    top = module_name.split(".")[0]
    local = base_dir / f"{top}.py" if (base_dir / f"{top}.py").is_file() else base_dir / top / "__init__.py"
    cached = sys.modules.get(top)
    if cached is None or not local.is_file():
        return
    origin = getattr(cached, "__file__", None)
    if origin is None or Path(origin).resolve() != local.resolve():
        for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
            del sys.modules[name]
