"""From a verdict to a next step: what to change in the spec when a study overfits, underfits, would
gain from more data or treats a group worse than the others.

Each :class:`Remedy` answers one training-data question for the best trial and lists concrete
steps; a step's ``snippet`` is a YAML fragment of a study file (``space:``, ``objective:``,
``constraints:``, ``balance:``) that can be pasted over the spec. Knobs come from the catalog
(:class:`tuner.models.Knob`: the parameter and the direction that makes the model simpler), their
current values from the best trial and their ranges from the study's resolved search space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from optuna.trial import FrozenTrial

from tuner.errors import TunerError
from tuner.models import Knob, get_model, is_registered
from tuner.spec import MODEL_STEP, ParamSpec, StudySpec, load_spec
from tuner.store import StudySnapshot, schema

Question = Literal["overfitting", "underfitting", "more data", "group gap"]
# Knobs a remedy names at most (the catalog lists them strongest first).
MAX_KNOBS = 3
# A gap between groups is worth acting on when it exceeds this many times the fold-to-fold spread
# of the overall validation score, and this much in absolute terms.
GROUP_GAP_SPREAD = 2.0
GROUP_GAP_MIN = 0.01


@dataclass(frozen=True)
class Step:
    """One thing to try; ``snippet`` is a YAML fragment of a study file ("" when it is not a spec change)."""

    text: str
    snippet: str = ""


@dataclass(frozen=True)
class Remedy:
    """The answer to one training-data question and what to do about it."""

    question: Question
    finding: str
    steps: tuple[Step, ...]

    def lines(self) -> list[str]:
        """The remedy as plain text lines: the finding, each step, its snippet indented."""
        out = [f"{self.question.capitalize()}: {self.finding}"]
        for step in self.steps:
            out.append(f"  - {step.text}")
            out += [f"      {line}" for line in step.snippet.rstrip().splitlines()]
        return out


def remedies(
    spec: StudySpec,
    *,
    best: FrozenTrial | None,
    knobs: Sequence[Knob],
    space: Mapping[str, ParamSpec],
    task: str,
    more_data: bool | None = None,
) -> tuple[Remedy, ...]:
    """The remedies that apply to the best trial (empty when no flag is raised).

    Args:
        spec: The study's spec (what it already optimises, balances and augments).
        best: The best trial (its parameters, flags, gap and group scores).
        knobs: The model's regularisation knobs, strongest first.
        space: The study's resolved search space (the model's defaults merged with the spec's).
        task: ``classification`` or ``regression``.
        more_data: The learning curve's verdict (None when no curve was computed).
    """
    if best is None:
        return ()
    attrs = best.user_attrs
    flags = attrs.get(schema.FLAGS) or []
    found: list[Remedy] = []
    if "overfit" in flags:
        found.append(_overfitting(spec, best, knobs, space))
    if "underfit" in flags:
        found.append(_underfitting(best, knobs, space))
    if more_data:
        found.append(_more_data(spec))
    if _group_gap_matters(attrs):
        found.append(_group_gap(spec, attrs, task))
    return tuple(found)


def answers(
    best: FrozenTrial | None, *, metric: str, curve: Mapping[str, Any] | None, remedies: Sequence[Remedy]
) -> dict[Question, str]:
    """One sentence per training-data question for the best trial, remedies included (the report's summary)."""
    if best is None:
        return {}
    attrs = best.user_attrs
    flags = attrs.get(schema.FLAGS) or []
    by_question = {r.question: r for r in remedies}
    scores = (
        f"trial #{best.number}: train {_num(attrs.get(schema.TRAIN_MEAN))}, validation "
        f"{_num(attrs.get(schema.VAL_MEAN))}, gap {_num(attrs.get(schema.GAP))}"
    )
    out: dict[Question, str] = {}
    out["overfitting"] = (
        f"Yes, the best {scores}.{_steps_text(by_question.get('overfitting'))}"
        if "overfit" in flags
        else f"No flag on the best {scores}."
    )
    out["underfitting"] = (
        f"Yes: the best trial's training {metric} ({_num(attrs.get(schema.TRAIN_MEAN))}) is low."
        f"{_steps_text(by_question.get('underfitting'))}"
        if "underfit" in flags
        else "No flag: the best trial fits its training rows."
    )
    if curve is None:
        out["more data"] = "Not measured: `tuner diagnose` draws the learning curve and answers it."
    elif "more data" in by_question:
        out["more data"] = f"{curve.get(schema.CURVE_VERDICT, 'Likely.')}{_steps_text(by_question.get('more data'))}"
    else:
        out["more data"] = str(curve.get(schema.CURVE_VERDICT, "Unlikely to help much."))
    if attrs.get(schema.GROUP_SCORES) is None:
        out["group gap"] = "Not measured: no groups are scored (set `fairness.groups`)."
    elif "group gap" in by_question:
        out["group gap"] = f"{by_question['group gap'].finding}{_steps_text(by_question['group gap'])}"
    else:
        out["group gap"] = (
            f"No: the groups' scores differ by {_num(attrs.get(schema.GROUP_GAP))}, within the folds' spread."
        )
    return out


def _steps_text(remedy: Remedy | None) -> str:
    if remedy is None or not remedy.steps:
        return ""
    texts = [s.text.rstrip(".").removeprefix("Or ").removeprefix("And ") for s in remedy.steps]
    return " Try: " + "; or ".join([texts[0], *(t[:1].lower() + t[1:] for t in texts[1:])]) + "."


def space_of(attrs: Mapping[str, Any]) -> dict[str, ParamSpec]:
    """The resolved search space a study stored (``tuner:space``), {} when absent or unreadable."""
    raw = attrs.get(schema.SPACE)
    if not isinstance(raw, dict):
        return {}
    try:
        return {str(k): ParamSpec.model_validate(v) for k, v in raw.items()}
    except ValueError:
        return {}


# --- overfitting and underfitting: move the knobs ---------------------------------------------


def _overfitting(spec: StudySpec, best: FrozenTrial, knobs: Sequence[Knob], space: Mapping[str, ParamSpec]) -> Remedy:
    attrs = best.user_attrs
    finding = (
        f"the best trial #{best.number} scores {_num(attrs.get(schema.TRAIN_MEAN))} on its training rows and "
        f"{_num(attrs.get(schema.VAL_MEAN))} on validation (gap {_num(attrs.get(schema.GAP))}, beyond fold noise)."
    )
    steps = [_knob_step(best, knobs, space, simpler=True)]
    gap = attrs.get(schema.GAP)
    if isinstance(gap, float) and gap > 0 and not spec.objective.custom:
        steps.append(
            Step(
                "Make the gap a limit, so that no overfitting trial can be the best",
                _yaml({"constraints": {"max_gap": _round(gap / 2)}}),
            )
        )
        if spec.objective.is_default:
            steps.append(Step("Or penalise the gap in the objective", _yaml({"objective": {"penalized": 0.5}})))
    return Remedy("overfitting", finding, tuple(s for s in steps if s.text))


def _underfitting(best: FrozenTrial, knobs: Sequence[Knob], space: Mapping[str, ParamSpec]) -> Remedy:
    attrs = best.user_attrs
    finding = (
        f"the best trial #{best.number} scores only {_num(attrs.get(schema.TRAIN_MEAN))} on its own training rows: "
        "the model lacks capacity (or the features lack signal)."
    )
    step = _knob_step(best, knobs, space, simpler=False)
    steps = [step] if step.text else []
    steps.append(Step("Or try a more flexible model family (`tuner models` lists them), or add features"))
    return Remedy("underfitting", finding, tuple(steps))


def _knob_step(best: FrozenTrial, knobs: Sequence[Knob], space: Mapping[str, ParamSpec], *, simpler: bool) -> Step:
    """Move each knob towards a simpler (or a more flexible) model, as text and a ``space:`` snippet."""
    moves: list[str] = []
    changes: dict[str, dict[str, Any]] = {}
    for knob in knobs:
        name = _space_name(knob.param, space)
        if name is None:
            continue
        up = (knob.simpler == "higher") == simpler
        verb = "raise" if up else "lower"
        param = space[name]
        value = best.params.get(name, param.value if param.type == "fixed" else None)
        moves.append(f"{verb} {name} ({knob.what}{'' if value is None else f', now {_num(value)}'})")
        narrowed = _towards(param, value, up=up) if isinstance(value, int | float) else None
        if narrowed is not None:
            changes[name] = narrowed
        if len(moves) == MAX_KNOBS:
            break
    if not moves:
        return Step("")
    what = "Regularise more" if simpler else "Regularise less (add capacity)"
    text = f"{what}: {', '.join(moves)}"
    if not changes:
        return Step(text)
    direction = "simpler" if simpler else "more flexible"
    return Step(f"{text}. Search towards {direction} models", _yaml({"space": changes}))


def _space_name(param: str, space: Mapping[str, ParamSpec]) -> str | None:
    """The knob's name in the space (``model__C`` when the spec declares a pipeline)."""
    for name in (param, f"{MODEL_STEP}__{param}"):
        if name in space:
            return name
    return None


def _towards(param: ParamSpec, value: float, *, up: bool) -> dict[str, Any] | None:
    """The range from ``value`` towards ``up`` (higher) or lower values, extended past the bound
    when the best value sits at it; None when nothing can move (categorical, or at a hard limit)."""
    if param.type == "fixed" and not isinstance(value, bool) and value > 0:
        # A fixed knob becomes a range: up to twice or down to half its value.
        kind = "int" if isinstance(value, int) else "float"
        low, high = (value, value * 2) if up else ((max(1, value // 2) if kind == "int" else value / 2), value)
        return _range(kind, low, high, log=False, step=None) if low < high else None
    if param.type not in ("int", "float") or param.low is None or param.high is None:
        return None
    span = param.high - param.low
    edge = 0.02 * span
    if up:
        high = _extend(param.high, span, up=True, log=param.log) if value >= param.high - edge else param.high
        low = value
    else:
        low = _extend(param.low, span, up=False, log=param.log) if value <= param.low + edge else param.low
        high = value
    if param.type == "int":
        low, high = math.floor(low), math.ceil(high)
        if param.low >= 1:
            low = max(1, low)  # counts (depth, leaves, neighbours) stay positive
    if not low < high or (low, high) == (param.low, param.high):
        return None  # nothing to move: at a hard limit, or the range stays as it is
    return _range(param.type, low, high, log=param.log, step=param.step)


def _extend(bound: float, span: float, *, up: bool, log: bool) -> float:
    """One step past ``bound``: ×10 or ÷10 on a log scale, else half the range, keeping a share in
    [0, 1] and a positive lower bound positive."""
    if log:
        return bound * 10 if up else bound / 10
    if up:
        return bound if 0 < bound <= 1 and isinstance(bound, float) and span <= 1 else bound + max(span / 2, 1)
    if bound <= 0:
        return bound
    return max(bound / 2, bound - span / 2)


def _range(kind: str, low: float, high: float, *, log: bool, step: float | None) -> dict[str, Any]:
    cast = int if kind == "int" else _round
    out: dict[str, Any] = {"type": kind, "low": cast(low), "high": cast(high)}
    if log:
        out["log"] = True
    if step is not None:
        out["step"] = cast(step)
    return out


# --- more data, and groups ------------------------------------------------------------------


def _more_data(spec: StudySpec) -> Remedy:
    finding = "the learning curve still rises at the full training size."
    steps = [Step("Collect more labelled rows: that is what the curve measures")]
    if spec.augment.image_shape is not None:
        steps.append(
            Step(
                "Augment the training folds with moved images (shifts, small rotations), searched",
                _yaml(
                    {"space": {"augment.shift": [0, 1], "augment.rotate": {"type": "float", "low": 0.0, "high": 15.0}}}
                ),
            )
        )
    else:
        steps.append(
            Step(
                "Augment the training folds with jittered copies of each row (image rows: set `augment.image_shape` "
                "for shifts and rotations)",
                _yaml(
                    {
                        "space": {
                            "augment.noise_std": {"type": "float", "low": 0.0, "high": 0.1},
                            "augment.copies": [1, 2],
                        }
                    }
                ),
            )
        )
    return Remedy("more data", finding, tuple(steps))


def _group_gap_matters(attrs: Mapping[str, Any]) -> bool:
    gap, spread = attrs.get(schema.GROUP_GAP), attrs.get(schema.VAL_STD)
    if not isinstance(gap, int | float):
        return False
    return gap > max(GROUP_GAP_SPREAD * (spread if isinstance(spread, int | float) else 0.0), GROUP_GAP_MIN)


def _group_gap(spec: StudySpec, attrs: Mapping[str, Any], task: str) -> Remedy:
    gap = float(attrs[schema.GROUP_GAP])
    finding = (
        f"group {attrs.get(schema.WORST_GROUP_NAME)!r} scores {_num(attrs.get(schema.WORST_GROUP_SCORE))} against "
        f"{_num(attrs.get(schema.VAL_MEAN))} overall; the groups differ by up to {_num(gap)}."
    )
    steps: list[Step] = []
    targets = [t.name for t in spec.objective.targets]
    if spec.objective.custom is None and "worst_group" not in targets:
        steps.append(Step("Optimise the worst group's score instead of the mean", _yaml({"objective": "worst_group"})))
        steps.append(Step("Or trade the two off (a Pareto front)", _yaml({"objective": ["metric", "worst_group"]})))
    if spec.objective.custom is None:
        steps.append(
            Step(
                "Or require a smaller gap between groups (a fairness constraint)",
                _yaml({"constraints": {"max_group_gap": _round(gap / 2)}}),
            )
        )
    if task == "classification" and spec.balance == "none" and spec.objective.custom is None:
        steps.append(
            Step(
                "Or balance the classes of the training folds (helps when the worst group is mostly a rare class)",
                _yaml({"balance": "oversample"}),
            )
        )
    steps.append(Step("And collect more rows of that group"))
    return Remedy("group gap", finding, tuple(steps))


def _yaml(fragment: dict[str, Any]) -> str:
    """A spec fragment as people write it: top-level keys in block style, their settings inline."""
    lines = []
    for key, value in fragment.items():
        if isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
            lines.append(f"{key}:")
            lines += [f"  {name}: {_flow(setting)}" for name, setting in value.items()]
        else:
            lines.append(f"{key}: {_flow(value)}")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()
    return text.removesuffix("...").strip()


def _round(value: float) -> float:
    """4 significant digits."""
    return float(f"{value:.4g}")


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.4g}"


def study_remedies(snap: StudySnapshot) -> tuple[Remedy, ...]:
    """The remedies for a stored study, from its snapshot alone (no data loaded, no user code imported)."""
    try:
        spec = load_spec(snap.spec)
    except TunerError:
        return ()  # not a tuner study, or a spec this version cannot read
    try:
        # Only catalog entries have knobs; a custom `module:factory` is not imported for a report.
        knobs = get_model(spec.model).knobs if is_registered(spec.model) else ()
    except TunerError:
        knobs = ()  # a catalog model whose library is not installed here
    curve = snap.learning_curve
    more_data = bool(curve.get(schema.CURVE_MORE_DATA_HELPS)) if curve else None
    task = str(snap.user_attrs.get(schema.TASK, "classification"))
    best = snap.best_trial
    if best is None and snap.pareto_numbers:
        best = snap.trial(snap.pareto_numbers[0])
    return remedies(spec, best=best, knobs=knobs, space=space_of(snap.user_attrs), task=task, more_data=more_data)
