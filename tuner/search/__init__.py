"""How the space is searched: the space itself, samplers, pruners, fidelity levels, warm starts."""

from __future__ import annotations

from tuner.search._fidelity import FULL, levels, pruner_defaults
from tuner.search._pruners import PRUNERS, OncePerTrial, build_pruner
from tuner.search._samplers import SAMPLERS, TPE_DEFAULTS, build_sampler, check_grid
from tuner.search._space import Space, describe, diff, merge, suggest, to_json
from tuner.search._warmstart import best_configs, enqueue, fit_to_space, known_good

__all__ = [
    "FULL",
    "PRUNERS",
    "SAMPLERS",
    "TPE_DEFAULTS",
    "OncePerTrial",
    "Space",
    "best_configs",
    "build_pruner",
    "build_sampler",
    "check_grid",
    "describe",
    "diff",
    "enqueue",
    "fit_to_space",
    "known_good",
    "levels",
    "merge",
    "pruner_defaults",
    "suggest",
    "to_json",
]
