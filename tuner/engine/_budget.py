"""The budget: which trials count against ``budget.n_trials``. Every check of it comes here.

``budget.n_trials`` is the study's total across reruns and workers: a rerun (after Ctrl-C, a crash
or a timeout) runs only the remainder, and workers stop when counted plus running trials reach
it. Trials stopped by Ctrl-C (``interrupted: true``) or lost with their worker (``lost: true``,
retried once with the same parameters) are marked FAIL and do not count.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

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

    def remaining(self, study: optuna.Study) -> int:
        """``n_trials`` minus the counted trials: what is left to run, RUNNING trials included."""
        return max(0, self.n_trials - self.done(study))

    def spent(self, study: optuna.Study) -> bool:
        """No trial may start: counted plus running trials reach ``n_trials``."""
        return self.used(study) >= self.n_trials


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    """Trials in ``states`` plus the FAIL trials that count (every trial loop calls this before asking).

    Only FAIL trials can be uncounted (Ctrl-C and lost workers mark theirs FAIL), so only their
    attributes are looked at: one storage read, and a cheap pass over the rest.
    """
    trials = study.get_trials(deepcopy=False, states=(*states, TrialState.FAIL))
    fail = TrialState.FAIL
    return len(trials) - sum(
        1 for t in trials if t.state is fail and (t.user_attrs.get(schema.INTERRUPTED) or t.user_attrs.get(schema.LOST))
    )
