"""The order in which a trial's folds run, chosen so that pruning after the first folds is informed.

A pruner decides after fold 1 or 2 by comparing the trial's running score with other trials'
scores on the same folds. That decision is only as good as those first folds are representative:

- time series: the latest split first. Its model is trained on the most history and scored on the
  most recent rows, which is what the final model will face; the earliest splits train on a small
  prefix and favour overly simple models, so pruning on them would discard good configurations.
- grouped and other uneven folds: the largest validation folds first, since their scores are the
  least noisy. Equal-size folds (k-fold, stratified) keep their order.

The order is a pure function of the folds, so every trial (and ``tuner refit``) sees the same one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuner.splits import Split


def order_folds(splits: list[Split], scheme: str) -> list[Split]:
    """``splits`` reordered for pruning (see the module docstring)."""
    if scheme == "timeseries":
        return sorted(splits, key=lambda split: -int(split[0].max(initial=-1)))
    # sorted() is stable: folds of equal size keep their original order.
    return sorted(splits, key=lambda split: -len(split[1]))
