"""What the data looks like before tuning: class counts, rows per group, and what is too thin.

Warnings name the class, group or fold concerned and the numbers, so a user can decide whether to
collect more rows, merge rare classes or groups, or use fewer folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tuner.cv import Split
from tuner.data import Dataset

# A class or group with less than this share of the rows is called under-represented.
UNDER_REPRESENTED = 0.05
# A validation fold with fewer rows of a class (or group) than this gives a noisy score for it.
MIN_FOLD_ROWS = 5


@dataclass(frozen=True)
class DataSummary:
    """Counts and warnings about the tuning data."""

    rows: int
    features: int
    task: str
    class_counts: dict[str, int]
    group_counts: dict[str, int]
    warnings: tuple[str, ...]


def summarize(dataset: Dataset, splits: Sequence[Split], groups: np.ndarray | None = None) -> DataSummary:
    """Count classes and groups, and warn about under-represented ones and thin folds.

    Args:
        dataset: The tuning data.
        splits: The study's folds.
        groups: Labels of the groups that get per-group scores (None when there are none).
    """
    notes: list[str] = []
    class_counts: dict[str, int] = {}
    if dataset.task == "classification":
        labels = np.asarray([str(c) for c in dataset.classes])[dataset.y]
        class_counts = _counts(labels)
        notes += _under_represented("class", class_counts)
        notes += _thin_folds("class", labels, splits)
    group_counts: dict[str, int] = {}
    if groups is not None:
        names = np.asarray(groups).astype(str)
        group_counts = _counts(names)
        notes += _under_represented("group", group_counts)
        # Group CV puts each group in one validation fold by design; only folds holding it count.
        notes += _thin_folds("group", names, splits, skip_absent=True)
    return DataSummary(
        rows=len(dataset.y),
        features=dataset.X.shape[1],
        task=dataset.task,
        class_counts=class_counts,
        group_counts=group_counts,
        warnings=tuple(notes),
    )


def _counts(labels: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {str(names[i]): int(counts[i]) for i in order}


def _under_represented(kind: str, counts: dict[str, int]) -> list[str]:
    total = sum(counts.values())
    return [
        f"{kind} {name!r} is under-represented: {n} of {total} rows ({n / total:.1%}); its scores are noisy and "
        f"models may neglect it (consider `balance`, more rows of it, or a worst-group objective)."
        for name, n in counts.items()
        if n / total < UNDER_REPRESENTED
    ]


def _thin_folds(kind: str, labels: np.ndarray, splits: Sequence[Split], *, skip_absent: bool = False) -> list[str]:
    """One warning per label: the fewest validation rows it has in any fold, when below the minimum."""
    notes = []
    for name in np.unique(labels):
        per_fold = [int((labels[val] == name).sum()) for _, val in splits]
        fewest = min((n for n in per_fold if n or not skip_absent), default=0)
        if fewest < MIN_FOLD_ROWS:
            fold = per_fold.index(fewest) + 1
            notes.append(
                f"fold {fold} has only {fewest} validation row(s) of {kind} {str(name)!r} (fewer than "
                f"{MIN_FOLD_ROWS}); its score there is noisy. Use fewer folds or a stratified scheme."
            )
    return notes
