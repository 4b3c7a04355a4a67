"""Pruners that read the study's trials once per trial instead of at every fold.

Optuna's median and percentile pruners read every completed trial at each ``should_prune()``:
with one check per fold, that is k full reads of the storage per trial (a few ms each on SQLite,
more on a server). :class:`OncePerTrial` hands the pruner the trials as the sampler read them
when the trial started (or as read at the trial's first check, when the sampler kept no read).
Within a sequential run nothing else finishes meanwhile, so the decisions are the same; with
parallel workers, trials that finish during this one count from the next trial on (or from this
trial's first check, when its sampler kept no read).
"""

from __future__ import annotations

import copy
from collections.abc import Container
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


class OncePerTrial(optuna.pruners.BasePruner):
    """Wraps a pruner that only reads ``study.get_trials`` (median, percentile)."""

    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner
        self._trial_id: int | None = None
        self._view: _Snapshot | None = None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if self._view is None or self._trial_id != trial._trial_id or self._view.study is not study:
            self._trial_id = trial._trial_id
            self._view = _Snapshot(study, _trials(study))
        return self.pruner.prune(self._view, trial)  # type: ignore[arg-type]


def _trials(study: optuna.Study) -> list[FrozenTrial]:
    # The trials as the sampler read them when this trial was asked for (Optuna keeps that read
    # per trial, and drops it at ask and tell), or a fresh read when the sampler did not keep one.
    cached = getattr(study, "_get_trials", None)
    if cached is None:
        return study.get_trials(deepcopy=False)
    return cached(deepcopy=False, use_cache=True)


class _Snapshot:
    """The study, except that ``get_trials`` answers from a list read once."""

    def __init__(self, study: optuna.Study, trials: list[FrozenTrial]) -> None:
        self.study = study
        self._trials = trials

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = self._trials if states is None else [t for t in self._trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else list(trials)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.study, name)
