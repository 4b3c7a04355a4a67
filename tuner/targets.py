"""What a trial optimizes, and the constraints it must meet.

A *target* turns the fold log of a trial (:class:`~tuner.cv.FoldLog`) into one number
with a direction: the validation metric (default), the metric penalised by the overfitting gap,
the gap itself, the fit time, the worst group's score or the largest gap between groups. One
target makes a single-objective study; several make a multi-objective one whose answer is a
Pareto front.

Constraints use Optuna's constraint support (``Trial.set_constraint``): a value above zero marks
the trial infeasible, so Optuna never reports it as the best trial (nor on the Pareto front), and
the TPE, GP and NSGA-II samplers steer away from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import optuna

from tuner.cv import FoldLog
from tuner.errors import SpecError
from tuner.spec import ConstraintsSpec, Direction, ObjectiveSpec, StudySpec, TargetSpec


@dataclass(frozen=True)
class Target:
    """One optimizable quantity of a trial."""

    direction: Direction
    value: Callable[[FoldLog, float], float]
    description: str
    needs_groups: bool = False


def _penalized(log: FoldLog, penalty: float) -> float:
    # Only a positive gap is penalised: validation beating training is noise, not merit.
    return log.val_mean - penalty * max(log.gap, 0.0)


def _worst_group(log: FoldLog, penalty: float) -> float:
    worst = log.worst_group
    return float("nan") if worst is None else worst[1]


def _group_gap(log: FoldLog, penalty: float) -> float:
    gap = log.group_gap
    return float("nan") if gap is None else gap


# Keys are exactly tuner.spec.TARGET_NAMES (tested).
TARGETS: dict[str, Target] = {
    "metric": Target("maximize", lambda log, p: log.val_mean, "mean validation score"),
    "penalized": Target("maximize", _penalized, "mean validation score − penalty × train/validation gap"),
    "gap": Target("minimize", lambda log, p: log.gap, "train − validation gap (overfitting)"),
    "fit_time": Target("minimize", lambda log, p: log.fit_time, "seconds to fit all folds"),
    "worst_group": Target("maximize", _worst_group, "validation score of the worst group", needs_groups=True),
    "group_gap": Target("minimize", _group_gap, "largest gap between group scores", needs_groups=True),
}

# Constraint name → violation (> 0 means infeasible) given the fold log and the limit.
CONSTRAINTS: dict[str, Callable[[FoldLog, float], float]] = {
    "max_gap": lambda log, limit: log.gap - limit,
    "min_group_score": lambda log, limit: limit - _worst_group(log, 0.0),
    "max_group_gap": lambda log, limit: _group_gap(log, 0.0) - limit,
}
GROUP_CONSTRAINTS = ("min_group_score", "max_group_gap")


def directions(objective: ObjectiveSpec) -> list[Direction]:
    """Optuna study directions, one per target (custom objectives maximize)."""
    if objective.custom:
        return ["maximize"]
    return [TARGETS[t.name].direction for t in objective.targets]


def labels(objective: ObjectiveSpec, metric: str) -> list[str]:
    """Human names of the targets, e.g. ``["roc_auc", "gap"]`` or ``["roc_auc − 0.5×gap"]``."""
    if objective.custom:
        return [objective.custom]
    return [_label(t, metric) for t in objective.targets]


def _label(target: TargetSpec, metric: str) -> str:
    if target.name == "metric":
        return metric
    if target.name == "penalized":
        return f"{metric} − {target.penalty:g}×gap"
    return target.name


def evaluate(targets: Sequence[TargetSpec], log: FoldLog) -> list[float]:
    """The value of every target for ``log``."""
    return [TARGETS[t.name].value(log, t.penalty) for t in targets]


def set_constraints(trial: optuna.Trial, constraints: ConstraintsSpec, log: FoldLog) -> bool:
    """Store the constraint values on ``trial``; returns whether the trial is feasible.

    An undefined value (no group could be scored) counts as violated, so a trial whose
    fairness cannot be measured is never reported as the best.
    """
    feasible = True
    for name, limit in constraints.items():
        violation = CONSTRAINTS[name](log, limit)
        if violation != violation:  # NaN
            violation = float("inf")
        trial.set_constraint(name, violation)
        feasible = feasible and violation <= 0
    return feasible


def check(spec: StudySpec, *, has_groups: bool, why_no_groups: str) -> None:
    """Refuse targets and constraints the study cannot compute, before any trial runs."""
    label = spec.label
    needs = [f"objective {t.name!r}" for t in spec.objective.targets if TARGETS[t.name].needs_groups]
    needs += [f"constraint {name!r}" for name, _ in spec.constraints.items() if name in GROUP_CONSTRAINTS]
    if needs and not has_groups:
        raise SpecError(
            f"{label}, field {'objective' if needs[0].startswith('objective') else 'constraints'!r}: "
            f"{' and '.join(needs)} need per-group validation scores, but {why_no_groups} "
            "Name the column holding the groups in `fairness.groups` (or `data.groups`)."
        )


def check_directions(study: optuna.Study, objective: ObjectiveSpec, *, where: str) -> None:
    """Refuse to resume a study whose objectives differ in number or direction from the spec's."""
    stored = [d.name.lower() for d in study.directions]
    wanted = directions(objective)
    if stored != wanted:
        raise SpecError(
            f"{where} was created for {len(stored)} objective(s) ({', '.join(stored)}), but the spec's `objective` "
            f"has {len(wanted)} ({', '.join(wanted)}). Trials of the two cannot share a study; use a new study name."
        )
