"""Optuna samplers and pruners by name, with seeds and options from the spec."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tuner.errors import SpecError

if TYPE_CHECKING:
    import optuna

    from tuner.spec import PrunerSpec, SamplerSpec


# Every TPE setting Optuna still takes as an argument is pinned here, so a study does not change
# behaviour when Optuna changes a default (constant_liar went from False in 4.x to True in 5.0;
# multivariate's default is None there). TPE models each parameter on its own: on
# bench/efficiency.py (4 tasks x 5 seeds) it reached random search's final score in a median 20 %
# of random's time, multivariate TPE in 36 %; multivariate settled on one region of the space and
# never reached it on one task in 5 seeds, and its better final scores on the other two were within
# seed noise. `sampler: {options: {multivariate: true}}` turns it on.
# The remaining knobs (gamma, weights, prior, endpoints) are deprecated in Optuna 5 and frozen there.
TPE_DEFAULTS: dict[str, Any] = {
    "multivariate": False,
    "n_startup_trials": 10,
    "n_ei_candidates": 24,
    "group": False,
    # `constant_liar` is pinned too, per run: see build_sampler.
}


def _tpe(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, **{**TPE_DEFAULTS, **options})


def _random(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed, **options)


def _cmaes(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed, **{"warn_independent_sampling": False, **options})


def _gp(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.GPSampler(seed=seed, **options)


def _qmc(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.QMCSampler(seed=seed, **{"warn_independent_sampling": False, **options})


def _nsga2(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, **options)


def _grid(seed: int | None, options: dict[str, Any]) -> optuna.samplers.BaseSampler:
    import optuna

    if "search_space" not in options:
        raise TypeError("the grid sampler needs `sampler.options.search_space: {param: [values, ...]}`")
    return optuna.samplers.GridSampler(seed=seed, **options)


_SAMPLERS: dict[str, Callable[[int | None, dict[str, Any]], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
    "cmaes": _cmaes,
    "gp": _gp,
    "qmc": _qmc,
    "nsga2": _nsga2,
    "grid": _grid,
}


def _median(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    import optuna

    # Steps are folds: prune from the first fold on, once 5 trials have finished (settings pinned,
    # like the sampler's, so a study behaves the same on every Optuna version).
    from tuner.pruning import OncePerTrial

    defaults = {"n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1}
    return OncePerTrial(optuna.pruners.MedianPruner(**{**defaults, **options}))


def _percentile(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    import optuna

    from tuner.pruning import OncePerTrial

    defaults = {"percentile": 25.0, "n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1}
    return OncePerTrial(optuna.pruners.PercentilePruner(**{**defaults, **options}))


def _successive_halving(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(**options)


def _hyperband(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.HyperbandPruner(**options)


def _wilcoxon(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.WilcoxonPruner(**{"p_threshold": 0.1, "n_startup_steps": 2, **options})


def _none(options: dict[str, Any]) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.NopPruner()


_PRUNERS: dict[str, Callable[[dict[str, Any]], optuna.pruners.BasePruner]] = {
    "median": _median,
    "percentile": _percentile,
    "successive_halving": _successive_halving,
    "hyperband": _hyperband,
    "wilcoxon": _wilcoxon,
    "none": _none,
}

SAMPLER_NAMES = tuple(_SAMPLERS)
# Samplers whose Optuna implementation imports an optional package.
_SAMPLER_NEEDS = {"cmaes": ("cmaes", "cmaes"), "gp": ("torch", "tuner[gp]")}


def missing_requirement(sampler: str) -> str | None:
    """Why ``sampler`` cannot run here (a package is missing), or None."""
    import importlib.util

    module, install = _SAMPLER_NEEDS.get(sampler, (None, None))
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return (
        f"the {sampler!r} sampler needs the {module!r} package, which is not installed; "
        f"`pip install '{install}'` or use the default 'tpe' sampler"
    )


PRUNER_NAMES = tuple(_PRUNERS)


def build_sampler(
    spec: SamplerSpec, seed: int | None, *, label: str, shared: bool = False
) -> optuna.samplers.BaseSampler:
    """Build the sampler named by ``spec``; ``seed`` is used unless the spec pins its own.

    ``shared`` says that other workers may run trials of the study at the same time: parallel
    runs, and any run on a server storage, which ``tuner worker`` processes elsewhere may join.
    """
    options = dict(spec.options)
    if spec.name == "tpe":
        # With constant_liar, TPE treats the other workers' running trials as bad results, so
        # parallel workers do not all sample the same point. A lone worker has no running trial
        # but its own, which TPE leaves out anyway: the samples are the same without it, and TPE
        # then reads the study once per trial instead of once per parameter (its cache is off
        # with constant_liar), a few ms per read on SQLite.
        options.setdefault("constant_liar", shared)
    try:
        return _SAMPLERS[spec.name](spec.seed if spec.seed is not None else seed, options)
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


def build_pruner(spec: PrunerSpec, *, label: str) -> optuna.pruners.BasePruner:
    """Build the pruner named by ``spec``."""
    from tuner.fidelity import pruner_defaults

    try:
        return _PRUNERS[spec.name]({**pruner_defaults(spec), **spec.options})
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"{label}, field 'pruner.options': the {spec.name!r} pruner rejected its options ({exc}). "
            "Use the keyword arguments of the matching optuna.pruners class."
        ) from None
