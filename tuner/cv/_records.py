"""What the folds of one trial measured: one :class:`FoldScores` per fold in a :class:`FoldLog`.

Every scikit-learn scorer is greater-is-better, so ``gap = mean(train) − mean(validation)`` is
positive when the model does better on the rows it was fitted on.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FoldScores:
    """Scores of one fold: validation, train (original training rows), fit time, per group."""

    val: float
    train: float
    fit_seconds: float
    # group label → (validation score or None when undefined on that fold, validation rows)
    groups: dict[str, tuple[float | None, int]] = field(default_factory=dict)
    score_seconds: float = 0.0


class FoldLog:
    """The folds a trial has finished so far, with the statistics derived from them."""

    def __init__(self, folds: list[FoldScores] | None = None) -> None:
        self.folds: list[FoldScores] = list(folds or [])

    def add(self, fold: FoldScores) -> None:
        self.folds.append(fold)

    def last(self) -> FoldLog:
        """A log of the latest fold alone (per-fold values for the Wilcoxon pruner)."""
        return FoldLog(self.folds[-1:])

    @property
    def val_scores(self) -> list[float]:
        return [f.val for f in self.folds]

    @property
    def train_scores(self) -> list[float]:
        return [f.train for f in self.folds]

    @property
    def val_mean(self) -> float:
        return statistics.fmean(self.val_scores)

    @property
    def train_mean(self) -> float:
        return statistics.fmean(self.train_scores)

    @property
    def val_std(self) -> float:
        return _spread(self.val_scores)

    @property
    def train_std(self) -> float:
        return _spread(self.train_scores)

    @property
    def gap(self) -> float:
        return self.train_mean - self.val_mean

    @property
    def gap_se(self) -> float:
        """Standard error of the mean gap, from the per-fold gaps (0 with one fold)."""
        gaps = [f.train - f.val for f in self.folds]
        return statistics.stdev(gaps) / math.sqrt(len(gaps)) if len(gaps) > 1 else 0.0

    @property
    def fit_time(self) -> float:
        return sum(f.fit_seconds for f in self.folds)

    @property
    def group_scores(self) -> dict[str, float | None]:
        """Mean validation score of each group over the folds where it could be scored."""
        per_group: dict[str, list[float]] = {}
        for fold in self.folds:
            for name, (score, _) in fold.groups.items():
                per_group.setdefault(name, [])
                if score is not None:
                    per_group[name].append(score)
        return {name: statistics.fmean(s) if s else None for name, s in per_group.items()}

    @property
    def worst_group(self) -> tuple[str, float] | None:
        scored = [(name, s) for name, s in self.group_scores.items() if s is not None]
        return min(scored, key=lambda item: item[1]) if scored else None

    @property
    def group_gap(self) -> float | None:
        scored = [s for s in self.group_scores.values() if s is not None]
        return max(scored) - min(scored) if scored else None


def _spread(values: list[float]) -> float:
    return statistics.pstdev(values) if len(values) > 1 else 0.0
