"""The start-up portfolio: per catalog model and task, the configurations a new study tries first.

They are data (``portfolio.json`` next to this module), learned offline across many data sets by
``bench/build_portfolio.py``: a greedy pick of configurations that together score best over all of
them, best first (the zero-shot portfolios of FLAML and auto-sklearn 2.0 are built the same way).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from tuner.spec import Task

FILE = "portfolio.json"


@cache
def _models() -> dict[str, dict[str, list[dict[str, Any]]]]:
    text = resources.files("tuner.search").joinpath(FILE).read_text(encoding="utf-8")
    models: dict[str, dict[str, list[dict[str, Any]]]] = json.loads(text)["models"]
    return models


def portfolio(model: str, task: Task) -> list[dict[str, Any]]:
    """The portfolio of catalog model ``model`` for ``task``, best first (empty for a model it does not know)."""
    return [dict(config) for config in _models().get(model, {}).get(task, [])]


def portfolio_models() -> list[str]:
    """The catalog models the portfolio has configurations for."""
    return sorted(_models())
