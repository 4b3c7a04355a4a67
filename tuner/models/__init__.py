"""The model catalog. ``tuner models`` lists it; ``register_model`` extends it."""

from __future__ import annotations

from tuner.models import boosting, linear, neighbors, svm, trees
from tuner.models.registry import (
    ModelEntry,
    add_entry,
    all_entries,
    get_model,
    import_object,
    model_names,
    register_model,
)

for _module in (linear, trees, boosting, neighbors, svm):
    for _entry in _module.ENTRIES:
        add_entry(_entry)

__all__ = ["ModelEntry", "all_entries", "get_model", "import_object", "model_names", "register_model"]
