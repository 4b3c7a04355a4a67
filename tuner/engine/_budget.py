"""The budget: which trials count against ``budget.n_trials``. Every check of it comes here.

``budget.n_trials`` is the study's total across reruns and workers: a rerun (after Ctrl-C, a crash
or a timeout) runs only the remainder, and workers stop when counted plus running trials reach
it. Trials stopped by Ctrl-C (``interrupted: true``) or lost with their worker (``lost: true``,
retried once with the same parameters) are marked FAIL and do not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.store import schema

_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Budget:
    """``n_trials`` of one study, and what its trials use of it."""

    n_trials: int

    def done(self, study: optuna.Study) -> int:
        """Trials that count: finished ones, except those stopped by Ctrl-C or lost with their worker."""
        return _count(study, _COUNTED)

    def used(self, study: optuna.Study) -> int:
        """Counted trials plus RUNNING ones: what a worker compares with ``n_trials`` before asking."""
        return _count(study, (*_COUNTED, TrialState.RUNNING))

    def spent(self, study: optuna.Study) -> bool:
        """No trial may start: counted plus running trials reach ``n_trials``."""
        return self.used(study) >= self.n_trials


def is_counted(trial: FrozenTrial) -> bool:
    """Whether a finished trial counts against the budget (progress shows only those as done)."""
    return trial.state in _COUNTED or (trial.state is TrialState.FAIL and not _stopped_or_lost(trial))


def counted(trials: Iterable[FrozenTrial], *, running: bool = False) -> int:
    """How many of ``trials`` count against the budget (RUNNING ones too, with ``running``), for a
    caller that has read the study's trials already."""
    states = (*_COUNTED, TrialState.RUNNING) if running else _COUNTED
    fail = TrialState.FAIL
    return sum(1 for t in trials if t.state in states or (t.state is fail and not _stopped_or_lost(t)))


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    """Trials in ``states`` plus the FAIL trials that count (every trial loop calls this before asking).

    Only FAIL trials can be uncounted (Ctrl-C and lost workers mark theirs FAIL), so only their
    attributes are looked at: one storage read, and a cheap pass over the rest.
    """
    trials = study.get_trials(deepcopy=False, states=(*states, TrialState.FAIL))
    fail = TrialState.FAIL
    return len(trials) - sum(1 for t in trials if t.state is fail and _stopped_or_lost(t))


def _stopped_or_lost(trial: FrozenTrial) -> bool:
    """A FAIL trial that does not count: Ctrl-C stopped it, or its worker was lost."""
    return bool(trial.user_attrs.get(schema.INTERRUPTED) or trial.user_attrs.get(schema.LOST))
