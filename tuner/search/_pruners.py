"""Optuna pruners by name, and a wrapper that reads the study once per trial instead of per fold.

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
from collections.abc import Callable, Container
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner import _optuna
from tuner.errors import SpecError
from tuner.search._fidelity import pruner_defaults
from tuner.spec import PrunerSpec


class OncePerTrial(optuna.pruners.BasePruner):
    """Wraps a pruner that only reads ``study.get_trials`` (median, percentile)."""

    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner
        self._key: tuple[int, int] | None = None
        self._view: _Snapshot | None = None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        key = (id(study), trial.number)
        if self._view is None or self._key != key or self._view.study is not study:
            self._key = key
            self._view = _Snapshot(study, _optuna.cached_trials(study))
        return self.pruner.prune(self._view, trial)  # type: ignore[arg-type]


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


def _median(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    # Steps are folds: prune from the first fold on, once 5 trials have finished (settings pinned,
    # like the sampler's, so a study behaves the same on every Optuna version).
    defaults = {"n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1}
    return OncePerTrial(optuna.pruners.MedianPruner(**{**defaults, **options}))


def _percentile(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    # The default pruner: stop a trial whose running mean is in the bottom quarter of earlier trials
    # at that fold. Median pruning (bottom half) saved 32 % of the CPU but pruned the eventual
    # winner in 4 of 6 regression studies; this saves 23 % and lost none (bench/pruning.py).
    defaults = {"percentile": 75.0, "n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1}
    return OncePerTrial(optuna.pruners.PercentilePruner(**{**defaults, **options}))


def _successive_halving(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(**options)


def _hyperband(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(**options)


def _wilcoxon(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    return optuna.pruners.WilcoxonPruner(**{"p_threshold": 0.1, "n_startup_steps": 2, **options})


def _none(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


# Keys are exactly tuner.spec.PRUNER_NAMES (tested).
PRUNERS: dict[str, Callable[[dict[str, Any]], optuna.pruners.BasePruner]] = {
    "median": _median,
    "percentile": _percentile,
    "successive_halving": _successive_halving,
    "hyperband": _hyperband,
    "wilcoxon": _wilcoxon,
    "none": _none,
}


def build_pruner(spec: PrunerSpec, *, label: str) -> optuna.pruners.BasePruner:
    """Build the pruner named by ``spec``."""
    try:
        return PRUNERS[spec.name]({**pruner_defaults(spec), **spec.options})
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{label}, field 'pruner.options': the {spec.name!r} pruner rejected its options ({exc}). "
            "Use the keyword arguments of the matching optuna.pruners class."
        ) from None
