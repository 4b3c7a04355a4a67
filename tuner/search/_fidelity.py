"""Fidelity levels of multi-fidelity pruning: the shares of the full fidelity a trial is screened at.

With ``pruner: {name: hyperband, fidelity: rows}`` (or ``successive_halving``) a trial is first
cross-validated on a share of each training fold's rows, or with ``fidelity: iterations`` on a
share of its boosting model's iteration cap. The levels follow the pruner's geometry,
``min_resource × reduction_factor**k`` percent, keeping those at most ``1 / reduction_factor`` of
the full fidelity: 11 % and 33 % with the defaults (``min_resource: 11``, ``reduction_factor:
3``), so Hyperband's rungs line up with the steps.
"""

from __future__ import annotations

from typing import Any

from tuner.spec import PrunerSpec

FULL = 100
_DEFAULTS: dict[str, dict[str, Any]] = {
    "hyperband": {"min_resource": 11, "max_resource": FULL, "reduction_factor": 3},
    "successive_halving": {"min_resource": 11, "reduction_factor": 3},
}


def pruner_defaults(spec: PrunerSpec) -> dict[str, Any]:
    """Pruner options that make the rungs match the screening levels (the spec's own options win)."""
    return dict(_DEFAULTS[spec.name]) if spec.fidelity != "folds" else {}


def levels(spec: PrunerSpec) -> list[int]:
    """Screening levels in percent of the full fidelity, lowest first (none for fold pruning)."""
    if spec.fidelity == "folds":
        return []
    options = {**pruner_defaults(spec), **spec.options}
    step, factor = int(options["min_resource"]), int(options["reduction_factor"])
    out = []
    while step * factor <= FULL:
        out.append(step)
        step *= factor
    return out
