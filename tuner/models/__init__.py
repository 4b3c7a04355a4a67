"""The model catalog. ``tuner models`` lists it; ``register_model`` extends it.

One module per family (``_linear``, ``_trees``, ``_boosting``, ``_neighbors``, ``_svm``, ``_nets``) lists
its entries; :mod:`tuner.models._registry` holds them.
"""

from __future__ import annotations

from tuner.models import _boosting, _linear, _neighbors, _nets, _svm, _trees
from tuner.models._nets import EpochModel
from tuner.models._registry import (
    EpochHook,
    IterationHook,
    Knob,
    ModelEntry,
    add_entry,
    all_entries,
    cat,
    entry_for,
    flt,
    get_model,
    integer,
    is_registered,
    iteration_hook,
    model_names,
    register_model,
)
from tuner.models._steps import STEPS, in_pipeline, make_step

for _module in (_linear, _trees, _boosting, _neighbors, _svm, _nets):
    for _entry in _module.ENTRIES:
        add_entry(_entry)

__all__ = [
    "STEPS",
    "EpochHook",
    "EpochModel",
    "IterationHook",
    "Knob",
    "ModelEntry",
    "all_entries",
    "cat",
    "entry_for",
    "flt",
    "get_model",
    "in_pipeline",
    "integer",
    "is_registered",
    "iteration_hook",
    "make_step",
    "model_names",
    "register_model",
]
