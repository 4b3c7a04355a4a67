"""Optuna samplers by name, with seeds and options from the spec."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import optuna

from tuner.errors import SpecError
from tuner.spec import SamplerSpec

# Every TPE setting Optuna still takes as an argument is pinned here, so a study does not change
# behaviour when Optuna changes a default (constant_liar went from False in 4.x to True in 5.0;
# multivariate's default is None there). TPE models each parameter on its own: on
# bench/efficiency.py (4 tasks x 5 seeds) it reached random search's final score in a median 20 %
# of random's time, multivariate TPE in 36 %; multivariate settled on one region of the space and
# never reached it on one task in 5 seeds, and its better final scores on the other two were within
# seed noise. `sampler: {options: {multivariate: true}}` turns it on.
# The remaining knobs (gamma, weights, prior, endpoints) are deprecated in Optuna 5 and frozen there.
# Start-up trials: 10 random draws, as Optuna's default. A study that starts from its catalog model's
# start-up portfolio (tuner.search._portfolio) hands over to TPE right after it and any other warm
# starts (6 trials for the portfolio alone): on
# bench/portfolio.py (12 tasks x 3 seeds, portfolios learned leave-one-data-set-out) that chose
# configurations holding up better on fresh splits (held-out score 31 against 16 with 4 random
# draws after the portfolio) and found higher CV scores at 32 trials (33 against 27), at the same
# level after 8 (docs/benchmarks.md, "Start-up portfolio").
TPE_DEFAULTS: dict[str, Any] = {
    "multivariate": False,
    "n_startup_trials": 10,
    "n_ei_candidates": 24,
    "group": False,
    # `constant_liar` is pinned too, per run: see build_sampler.
}


def _tpe(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, **{**TPE_DEFAULTS, **options})


def _random(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed, **options)


def _cmaes(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.CmaEsSampler(seed=seed, **{"warn_independent_sampling": False, **options})


def _gp(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=seed, **options)


def _qmc(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.QMCSampler(seed=seed, **{"warn_independent_sampling": False, **options})


def _nsga2(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed, **options)


def _grid(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    if "search_space" not in options:
        raise TypeError("the grid sampler needs `sampler.options.search_space: {param: [values, ...]}`")
    return optuna.samplers.GridSampler(seed=seed, **options)


# Keys are exactly tuner.spec.SAMPLER_NAMES (tested).
SAMPLERS: dict[str, Callable[[int | None, dict[str, Any]], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
    "cmaes": _cmaes,
    "gp": _gp,
    "qmc": _qmc,
    "nsga2": _nsga2,
    "grid": _grid,
}


def build_sampler(
    spec: SamplerSpec, seed: int | None, *, label: str, shared: bool = False, warm_starts: int = 0
) -> optuna.samplers.BaseSampler:
    """Build the sampler named by ``spec``; ``seed`` is used unless the spec pins its own.

    ``shared`` says that other workers may run trials of the study at the same time: parallel
    runs, and any run on a server storage, which ``tuner worker`` processes elsewhere may join.
    ``warm_starts`` is how many enqueued trials (start-up portfolio, earlier studies' best) the study
    starts from; TPE takes over right after them, unless the spec sets ``n_startup_trials``.
    """
    options = dict(spec.options)
    if spec.name == "tpe":
        if warm_starts:
            options.setdefault("n_startup_trials", warm_starts)
        # With constant_liar, TPE treats the other workers' running trials as bad results, so
        # parallel workers do not all sample the same point. A lone worker has no running trial
        # but its own, which TPE leaves out anyway: the samples are the same without it, and TPE
        # then reads the study once per trial instead of once per parameter (its cache is off
        # with constant_liar), a few ms per read on SQLite.
        options.setdefault("constant_liar", shared)
    try:
        return SAMPLERS[spec.name](spec.seed if spec.seed is not None else seed, options)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{label}, field 'sampler.options': the {spec.name!r} sampler rejected its options ({exc}). "
            "Use the keyword arguments of the matching optuna.samplers class."
        ) from None


def check_grid(spec: SamplerSpec, searched: Iterable[str], *, label: str) -> None:
    """The grid sampler must have values for every searched parameter; say which are missing before any trial."""
    if spec.name != "grid" or not isinstance(spec.options.get("search_space"), Mapping):
        return
    missing = [name for name in searched if name not in spec.options["search_space"]]
    if missing:
        raise SpecError(
            f"{label}, field 'sampler.options.search_space': the grid has no values for {', '.join(missing)}, "
            "which the search space also tunes. Add a list of values for each, or fix them in `space` "
            f"(e.g. `space: {{{missing[0]}: <value>}}`)."
        )
