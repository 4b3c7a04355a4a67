"""The study file's typed form: frozen pydantic models, validated once.

Everything a study needs is parsed once; downstream code receives typed sub-specs, never raw
dicts. Every validation error comes out of :func:`~tuner.spec.load_spec` with the file, line,
field and a fix.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from tuner.errors import SpecError, did_you_mean, shorten, shown, unknown_text
from tuner.spec._errors import field_problem, paragraph, problems
from tuner.spec._names import (
    AUGMENT_PREFIX,
    BALANCE_KEY,
    BALANCE_MODES,
    CV_SCHEMES,
    FINAL_CHOICE_METHODS,
    IMPUTE_STRATEGIES,
    MULTI_FIDELITY_PRUNERS,
    PIPELINE_STEPS,
    PRUNER_NAMES,
    SAMPLER_NAMES,
    SAMPLER_REQUIRES,
    SCALE_KINDS,
    SEARCHABLE_AUGMENT,
    SINGLE_OBJECTIVE_SAMPLERS,
    SKLEARN_SETS,
    TARGET_NAMES,
    Fidelity,
    PipelineStepName,
    metric_names,
)

Scalar = str | int | float | bool | None


class _Frozen(BaseModel):
    # `.inf` and `.nan` are valid YAML floats; as a limit, share or timeout they fail every trial.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ParamSpec(_Frozen):
    """One hyperparameter: a range, a list of choices, or a fixed value.

    In YAML a scalar means a fixed value and a list means categorical choices, so
    ``max_depth: 6`` and ``criterion: [gini, entropy]`` are shorthands.
    """

    # A fixed value or a choice may be NaN (XGBoost's `missing`); the bounds are checked below.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=True)

    type: Literal["float", "int", "categorical", "fixed"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Scalar, ...] | None = None
    value: Scalar = None
    when: dict[str, Scalar | tuple[Scalar, ...]] | None = Field(
        default=None,
        description="Only suggest this parameter when another parameter has one of these values.",
    )

    @model_validator(mode="after")
    def _check(self) -> ParamSpec:
        if self.type in ("float", "int"):
            if self.low is None or self.high is None:
                raise ValueError(f"a {self.type} parameter needs both `low` and `high`")
            for key in ("low", "high", "step"):
                bound = getattr(self, key)
                if bound is not None and not math.isfinite(bound):
                    raise ValueError(
                        f"`{key}: {bound}` is not a finite number, and a sampler cannot draw from an unbounded or "
                        f"undefined range; give a number (`log: true` suits a range over many orders of magnitude)"
                    )
            if self.low > self.high:
                raise ValueError(f"`low <= high` must hold, but got low={self.low:g}, high={self.high:g}")
            if self.log and self.low <= 0:
                raise ValueError(f"`log: true` needs `low > 0`, but got low={self.low:g}; raise `low` or drop `log`")
            if self.log and self.step is not None:
                raise ValueError("`log: true` and `step` cannot be combined; drop one of them")
            if self.step is not None and self.step <= 0:
                raise ValueError(f"`step` must be > 0, got {self.step:g}")
            if self.type == "int" and not all(float(v).is_integer() for v in (self.low, self.high)):
                raise ValueError(f"an int parameter needs integer bounds, got low={self.low}, high={self.high}")
            if self.type == "int" and self.step is not None and not float(self.step).is_integer():
                raise ValueError(f"an int parameter needs an integer `step`, got {self.step:g}; use `type: float`")
            if self.choices is not None:
                raise ValueError(f"a {self.type} parameter takes `low`/`high`, not `choices`")
        elif self.type == "categorical":
            if not self.choices:
                raise ValueError("`choices` must list at least one value")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical parameter takes `choices`, not `low`/`high`")
        return self


def expand_shorthand(item: Any) -> Any:
    """A parameter as written in YAML: a list means categorical choices, a scalar a fixed value."""
    if isinstance(item, list | tuple):
        return {"type": "categorical", "choices": item}
    if isinstance(item, dict | ParamSpec):
        return item
    return {"type": "fixed", "value": item}


class DataSpec(_Frozen):
    source: str | None = Field(
        default=None,
        description="`sklearn:<name>` for a bundled set, a CSV/Parquet path relative to the spec file, or "
        "`python:module:function` returning a DataFrame (module next to the spec); "
        "may be left out when Python passes a DataFrame.",
    )
    target: str | None = Field(default=None, description="Target column (bundled sets default to `target`).")
    features: tuple[str, ...] | None = Field(
        default=None, description="Columns to use (default: all but target, groups, drop)."
    )
    drop: tuple[str, ...] = ()
    groups: str | None = Field(
        default=None, description="Column with group labels (for group CV and per-group scores)."
    )
    task: Literal["auto", "classification", "regression"] = "auto"

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("sklearn:") and value.removeprefix("sklearn:") not in SKLEARN_SETS:
            name = value.removeprefix("sklearn:")
            raise ValueError(
                f"unknown bundled data set {shown(name)}.{did_you_mean(name, SKLEARN_SETS)} "
                f"Expected sklearn:<{'|'.join(SKLEARN_SETS)}> or a CSV/Parquet path"
            )
        return value


class CVSpec(_Frozen):
    scheme: str = Field(default="auto", description=f"One of {', '.join(CV_SCHEMES)}.")
    folds: int = Field(default=5, ge=2, description="Number of folds (or splits for timeseries).")
    repeats: int = Field(default=1, ge=1, description="Repeats for repeated_* schemes.")
    shuffle: bool = True
    seed: int | None = Field(default=None, description="Defaults to a seed derived from the study seed.")
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Validation fraction for `holdout`.")
    holdout_test: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Fraction of rows kept out of tuning as a final test set; `tuner refit` scores on it.",
    )

    @field_validator("scheme")
    @classmethod
    def _check_scheme(cls, value: str) -> str:
        return _check_choice("CV scheme", value, CV_SCHEMES)


class SamplerSpec(_Frozen):
    name: str = "tpe"
    seed: int | None = Field(default=None, description="Defaults to a seed derived from the study seed.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the Optuna sampler.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        _check_choice("sampler", value, SAMPLER_NAMES)
        module, install = SAMPLER_REQUIRES.get(value, (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            raise ValueError(
                f"the {value!r} sampler needs the {module!r} package, which is not installed; "
                f"`pip install '{install}'` or use the default 'tpe' sampler"
            )
        return value


class PrunerSpec(_Frozen):
    # Pruning only the bottom quarter kept the winners median pruning lost and most of its savings
    # (docs/benchmarks.md, "Pruning that pays").
    name: str = "percentile"
    fidelity: Fidelity = Field(
        default="folds",
        description="What a pruning step measures: `folds` (CV folds, default), or for successive_halving/hyperband "
        "`rows` (share of each training fold) or `iterations` (share of a boosting model's iteration cap).",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the Optuna pruner.")

    @model_validator(mode="after")
    def _check_fidelity(self) -> PrunerSpec:
        if self.fidelity != "folds" and self.name not in MULTI_FIDELITY_PRUNERS:
            raise ValueError(
                f"`fidelity: {self.fidelity}` needs a multi-fidelity pruner ({', '.join(MULTI_FIDELITY_PRUNERS)}), "
                f"not {self.name!r}; set `pruner: {{name: hyperband, fidelity: {self.fidelity}}}` or drop `fidelity`"
            )
        return self

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _check_choice("pruner", value, PRUNER_NAMES)


class BudgetSpec(_Frozen):
    n_trials: int = Field(default=50, gt=0, description="Total trials of the study, across reruns.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds for this run (not the whole study).")
    n_jobs: int = Field(default=1, ge=1, description="Worker processes on this machine (`tuner run --jobs`).")
    max_failures: int = Field(default=10, ge=1, description="Stop after this many failed trials in a row.")
    threads: Literal["auto"] | int = Field(
        default="auto",
        description="Threads per model fit: `auto` shares the free cores among the workers; a number is used as it is.",
    )

    @field_validator("threads", mode="before")
    @classmethod
    def _check_threads(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"expected `auto` or a whole number of threads ≥ 1, got {shown(value)}")


class TargetSpec(_Frozen):
    """One quantity a trial optimizes (see :mod:`tuner.targets`); ``penalty`` is for ``penalized``."""

    name: str
    penalty: float = Field(default=0.0, ge=0)


class ObjectiveSpec(_Frozen):
    """What a trial returns: the built-in CV objective's targets, or custom code.

    YAML forms: ``objective: metric`` (default), ``worst_group``, ``gap``, ``fit_time``,
    ``group_gap``, ``{penalized: 0.5}`` (metric − 0.5 × gap), a list for several objectives
    (``[metric, gap]``), or ``pkg.module:function`` for a custom objective.
    """

    custom: str | None = Field(default=None, description="`pkg.module:function` replacing the built-in CV objective.")
    targets: tuple[TargetSpec, ...] = (TargetSpec(name="metric"),)

    @property
    def multi(self) -> bool:
        return len(self.targets) > 1

    @property
    def is_default(self) -> bool:
        return self.custom is None and self.targets == (TargetSpec(name="metric"),)


class ConstraintsSpec(_Frozen):
    """Limits a trial must meet to count as feasible (infeasible trials are never the best)."""

    max_gap: float | None = Field(default=None, description="Largest allowed train − validation gap.")
    min_group_score: float | None = Field(default=None, description="Lowest allowed worst-group score.")
    max_group_gap: float | None = Field(default=None, ge=0, description="Largest allowed gap between groups.")

    def items(self) -> list[tuple[str, float]]:
        """The constraints that are set, as ``(name, limit)``."""
        return [(k, v) for k, v in self.model_dump().items() if v is not None]


class FairnessSpec(_Frozen):
    groups: str | None = Field(
        default=None,
        description="Column whose groups get per-group validation scores (not used as a feature). "
        "Default: `data.groups` when it has at most 20 groups.",
    )


class AugmentSpec(_Frozen):
    """Augmentation of the training rows of each fold (never of validation rows)."""

    noise_std: float = Field(default=0.0, ge=0, description="Gaussian jitter, in units of each feature's std.")
    copies: int = Field(default=1, ge=1, le=20, description="Altered copies appended per training row.")
    image_shape: tuple[int, int] | None = Field(default=None, description="Rows are images of this shape, e.g. [8, 8].")
    shift: int = Field(default=0, ge=0, description="Random shifts of up to this many pixels.")
    rotate: float = Field(default=0.0, ge=0, le=180, description="Random rotations of up to this many degrees.")
    mirror: bool = Field(default=False, description="Mirror images left-right at random.")


class EarlyStoppingSpec(_Frozen):
    """Early stopping of boosting models and networks in each fold, on a split of the fold's training rows."""

    enabled: bool | Literal["auto"] = Field(
        default="auto",
        description="Stop boosting models and networks early (no effect on other models); `auto`: when the training folds "
        "have at least `min_rows` rows (on smaller data the held-out rows cost more than stopping saves).",
    )
    min_rows: int = Field(default=1000, ge=1, description="Training rows per fold from which `auto` stops early.")
    rounds: int = Field(default=25, ge=1, description="Stop after this many iterations without improvement.")
    epoch_rounds: int = Field(
        default=10, ge=1, description="Networks (mlp, torch_mlp): stop after this many epochs without improvement."
    )
    fraction: float = Field(
        default=0.1, gt=0, lt=0.5, description="Share of each training fold held out to decide when to stop."
    )
    min_delta: float = Field(
        default=1e-3,
        ge=0,
        description="Smallest drop of the stopping loss (log-loss, RMSE) that counts as an improvement.",
    )


# A step's shorthand value is its main setting: `impute: median`, `scale: robust`, `pca: 0.95`, `select: 10`.
_STEP_SETTING = {"impute": "strategy", "scale": "kind", "pca": "n_components", "select": "k"}


class StepSpec(_Frozen):
    """One step of a declared ``pipeline``, before the model: a scikit-learn transformer.

    ``options`` are the transformer's keyword arguments (``scale`` also takes ``kind``).
    """

    name: PipelineStepName
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_setting(self) -> StepSpec:
        for name, key, choices in (("impute", "strategy", IMPUTE_STRATEGIES), ("scale", "kind", SCALE_KINDS)):
            if self.name == name and key in self.options and self.options[key] not in choices:
                raise ValueError(unknown_text(f"{name} {key}", str(self.options[key]), choices))
        return self


_STEP_INPUT = list[PipelineStepName | dict[PipelineStepName, Scalar | dict[str, Any]]] | None


def _parse_steps(value: Any) -> Any:
    """The YAML forms of ``pipeline:`` → :class:`StepSpec` fields, step names checked with a hint."""
    if value is None or not isinstance(value, list | tuple):
        return value
    steps: list[Any] = []
    for item in value:
        if isinstance(item, StepSpec):
            steps.append(item)
            continue
        if isinstance(item, dict) and set(item) <= {"name", "options"} and "name" in item:
            name, options = item["name"], item.get("options") or {}
        elif isinstance(item, dict) and len(item) == 1:
            name, setting = next(iter(item.items()))
            _check_choice("pipeline step", str(name), PIPELINE_STEPS)
            if isinstance(setting, dict):
                options = setting
            elif setting is None:
                options = {}
            elif name in _STEP_SETTING:
                options = {_STEP_SETTING[name]: setting}
            else:
                raise ValueError(
                    f"step {shown(name)} takes a mapping of options, e.g. `- {name}: {{}}`; got {shown(item)}"
                )
        elif isinstance(item, str):
            name, options = item, {}
        else:
            raise ValueError(
                f"expected a step such as `scale`, `impute: median` or `pca: {{n_components: 0.95}}`, got {shown(item)}"
            )
        _check_choice("pipeline step", str(name), PIPELINE_STEPS)
        steps.append({"name": name, "options": options})
    names = [s.name if isinstance(s, StepSpec) else s["name"] for s in steps]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"step {repeated[0]!r} is listed twice; list each step once (its name is its `space` prefix)")
    return steps


class WarmStartSpec(_Frozen):
    """Configurations a new study tries first."""

    studies: tuple[str, ...] = Field(
        default=(), description="Earlier studies of the same model (same storage) whose best configurations go first."
    )
    top: int = Field(default=3, ge=1, description="How many of each study's best configurations to take.")
    known_good: bool = Field(
        default=True,
        description="Start with the catalog model's start-up portfolio (configurations learned across many data sets).",
    )


class FinalChoiceSpec(_Frozen):
    """How the study's final trial is chosen once its budget is spent (see :mod:`tuner.racing`)."""

    method: str = Field(
        default="robust",
        description="`robust`: re-score the top candidates on extra CV repeats (new shuffles) and choose by the "
        "mean over every repeat; `raw_max`: the trial with the best score on the study's one CV.",
    )
    candidates: int = Field(default=5, ge=2, description="How many of the top trials are re-scored (at most).")
    repeats: int = Field(default=2, ge=1, description="Extra CV repeats each candidate is re-scored on.")

    @field_validator("method")
    @classmethod
    def _check_method(cls, value: str) -> str:
        return _check_choice("final choice", value, FINAL_CHOICE_METHODS)


_TargetInput = str | dict[str, float | dict[str, float]]
_OBJECTIVE_INPUT = _TargetInput | list[_TargetInput] | None


class StudySpec(_Frozen):
    """A validated, immutable study: what to tune, on which data, how to score and search."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=120)
    data: DataSpec
    model: str = Field(description="A catalog name (see `tuner models`) or `pkg.module:factory`.")
    pipeline: tuple[StepSpec, ...] | None = Field(
        default=None,
        description="Steps before the model, in order: `onehot` (non-numeric columns), `impute` (`median`, `mean`, "
        "`most_frequent`, `constant`), `scale` (`standard`, `minmax`, `robust`, `maxabs`), `pca` "
        "(`n_components`), `select` (SelectKBest, `k`); e.g. `[onehot, {impute: median}, {scale: standard}, "
        "{pca: 0.95}]`. They replace the model's automatic preprocessing; `space` names their parameters "
        "`step__param` and the model's `model__param`.",
    )
    space: dict[str, ParamSpec] = Field(
        default_factory=dict,
        description="Overrides and additions to the model's default space (`step__param` with a `pipeline`).",
    )
    cv: CVSpec = CVSpec()
    metric: str | None = Field(default=None, description="A scikit-learn scorer name; default depends on the task.")
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    budget: BudgetSpec = BudgetSpec()
    storage: str | None = Field(
        default=None, description="Optuna storage URL or a path; default `tuner.db` next to the spec."
    )
    seed: int = Field(default=0, description="The one seed that sampler, CV and model seeds derive from.")
    objective: ObjectiveSpec = Field(
        default=ObjectiveSpec(),
        description="`metric` (default), `worst_group`, `{penalized: 0.5}`, a list such as `[metric, gap]`, "
        "or `pkg.module:function` for a custom objective.",
    )
    constraints: ConstraintsSpec = ConstraintsSpec()
    fairness: FairnessSpec = FairnessSpec()
    balance: str = Field(default="none", description=f"Class balancing of training folds: {', '.join(BALANCE_MODES)}.")
    augment: AugmentSpec = AugmentSpec()
    early_stopping: EarlyStoppingSpec = Field(
        default=EarlyStoppingSpec(), description="`false`, or `{rounds: 25, fraction: 0.1}` (boosting models)."
    )
    warm_start: WarmStartSpec = Field(
        default=WarmStartSpec(), description="A list of earlier study names, or `{studies: [...], top: 3}`."
    )
    final_choice: FinalChoiceSpec = Field(
        default=FinalChoiceSpec(),
        description="`robust` (default) or `raw_max`, or `{method: robust, candidates: 5, repeats: 2}`.",
    )
    spec_path: SkipJsonSchema[Path | None] = Field(default=None, exclude=True)
    # How load_spec named the source in its errors (the path as given); kept for later errors.
    _given_as: str | None = PrivateAttr(default=None)

    @field_validator("space", mode="before")
    @classmethod
    def _expand_shorthands(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {key: expand_shorthand(item) for key, item in value.items()}

    @field_validator("space")
    @classmethod
    def _check_step_params(cls, value: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        # `balance` and `augment.*` entries configure training-fold steps, not the estimator.
        for name, param in value.items():
            if name == BALANCE_KEY:
                bad = [v for v in (param.choices or (param.value,)) if v not in BALANCE_MODES]
                if bad:
                    raise ValueError(
                        f"space.balance: unknown balance mode {shown(bad[0])}; expected one of: {', '.join(BALANCE_MODES)}"
                    )
            elif name.startswith(AUGMENT_PREFIX) and name.removeprefix(AUGMENT_PREFIX) not in SEARCHABLE_AUGMENT:
                key = name.removeprefix(AUGMENT_PREFIX)
                raise ValueError(
                    f"space.{shorten(name)}: {shown(key)} cannot be searched.{did_you_mean(key, SEARCHABLE_AUGMENT)} "
                    f"Searchable augmentation settings: {', '.join(AUGMENT_PREFIX + k for k in SEARCHABLE_AUGMENT)}"
                )
        return value

    # The JSON Schema (editors, `tuner schema`) shows the forms people write, not the parsed model.
    @field_validator("pipeline", mode="before", json_schema_input_type=_STEP_INPUT)
    @classmethod
    def _parse_pipeline(cls, value: Any) -> Any:
        return _parse_steps(value)

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _early_stopping_shorthand(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) or value == "auto" else value

    @field_validator("warm_start", mode="before")
    @classmethod
    def _warm_start_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"studies": [value]}
        return {"studies": value} if isinstance(value, list | tuple) else value

    @field_validator("final_choice", mode="before")
    @classmethod
    def _final_choice_shorthand(cls, value: Any) -> Any:
        return {"method": value} if isinstance(value, str) else value

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _name_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, value: str | None) -> str | None:
        return None if value is None else _check_choice("metric", value, metric_names())

    # The JSON Schema (editors, `tuner schema`) shows the forms people write, not the parsed model.
    @field_validator("objective", mode="before", json_schema_input_type=_OBJECTIVE_INPUT)
    @classmethod
    def _parse_objective(cls, value: Any) -> Any:
        return _parse_objective(value)

    @field_validator("balance")
    @classmethod
    def _check_balance(cls, value: str) -> str:
        return _check_choice("balance mode", value, BALANCE_MODES)

    @model_validator(mode="after")
    def _check_diagnostics(self) -> StudySpec:
        if self.objective.custom and (self.constraints.items() or self.balance != "none"):
            raise ValueError(
                "`constraints` and `balance` need the built-in CV objective, but `objective` is custom code "
                f"({self.objective.custom}); drop them or compute them in your objective"
            )
        if self.objective.multi and self.sampler.name in SINGLE_OBJECTIVE_SAMPLERS:
            raise ValueError(
                f"sampler {self.sampler.name!r} cannot optimize {len(self.objective.targets)} objectives; "
                "use tpe (default), nsga2, random or qmc"
            )
        return self

    @model_validator(mode="after")
    def _check_conditions(self) -> StudySpec:
        for name, param in self.space.items():
            for parent in param.when or {}:
                if parent == name:
                    raise ValueError(f"space.{shorten(name)}: `when` cannot refer to the parameter itself")
        return self

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the spec are resolved against."""
        return self.spec_path.parent if self.spec_path else Path.cwd()

    @property
    def label(self) -> str:
        """How errors name this spec: its file, or the study name for specs built in Python."""
        return str(self.spec_path) if self.spec_path else f"study {self.name!r}"

    def replace(
        self,
        *,
        name: str | None = None,
        seed: int | None = None,
        storage: str | None = None,
        n_trials: int | None = None,
        timeout: float | None = None,
    ) -> StudySpec:
        """A copy with these values (None keeps the spec's own), each validated as the field is.

        This is how typed overrides (``run_study(n_trials=20)``, ``tuner run --n-trials 20``)
        reach the spec: as values, checked against the field's own constraints.

        Raises:
            SpecError: naming the field, for a value the field does not accept.
        """
        top = {k: v for k, v in (("name", name), ("seed", seed), ("storage", storage)) if v is not None}
        budget = {k: v for k, v in (("n_trials", n_trials), ("timeout", timeout)) if v is not None}
        if not top and not budget:
            return self
        update: dict[str, Any] = {}
        found: list[str] = []
        for key, value in top.items():
            try:
                update[key] = _field_adapter(key).validate_python(value)
            except ValidationError as exc:
                found += problems(exc, self._source_label, self._source_text(), root=StudySpec, prefix=(key,))
        if budget:
            try:
                update["budget"] = BudgetSpec.model_validate({**self.budget.model_dump(), **budget})
            except ValidationError as exc:
                found += problems(exc, self._source_label, self._source_text(), root=StudySpec, prefix=("budget",))
        if found:
            raise SpecError(paragraph(found))
        return self.model_copy(update=update)

    def field_error(self, field: str, message: str) -> SpecError:
        """A :class:`SpecError` for ``field`` (dotted) found wrong after validation, naming its file and line.

        For checks that need more than the spec (the model catalog, the data), made by later layers.
        """
        loc = tuple(int(part) if part.isdigit() else part for part in field.split("."))
        return SpecError(field_problem(self._source_label, self._source_text(), loc, message))

    @property
    def _source_label(self) -> str:
        """The spec as ``load_spec`` named it in its errors: the path as given, or "the study spec"."""
        return self._given_as or self.label

    def _source_text(self) -> str | None:
        """The spec file's text, to find a field's line (None when there is no readable file)."""
        if self.spec_path is None or not self.spec_path.is_file():
            return None
        try:
            return self.spec_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def to_json(self) -> str:
        """Canonical JSON of the spec (stable key order, so its hash is stable)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


@functools.cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    """Validates one top-level field's value with that field's own type and constraints."""
    info = StudySpec.model_fields[name]
    annotated: Any = Annotated[info.annotation, info]
    return TypeAdapter(annotated)


def _parse_objective(value: Any) -> Any:
    """The YAML forms of `objective:` → the fields of :class:`ObjectiveSpec`."""
    if value is None or isinstance(value, ObjectiveSpec):
        return {} if value is None else value
    if isinstance(value, str) and ":" in value:
        if not re.fullmatch(r"[\w.]+:[\w.]+", value):
            raise ValueError(f"expected `pkg.module:function` for a custom objective, got {shown(value)}")
        return {"custom": value}
    if isinstance(value, dict) and value and set(value) <= {"custom", "targets"}:
        return value  # the canonical form, as `model_dump` writes it
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError(
            f"an objective list needs at least one entry, e.g. [metric, gap]; names: {', '.join(TARGET_NAMES)}"
        )
    targets = [_parse_target(item) for item in items]
    names = [t["name"] for t in targets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"objective {repeated[0]!r} is listed twice; list each objective once")
    return {"targets": targets}


def _parse_target(item: Any) -> dict[str, Any]:
    if isinstance(item, TargetSpec):
        return item.model_dump()
    if isinstance(item, dict) and "name" in item:
        name, options = item["name"], {k: v for k, v in item.items() if k != "name"}
    elif isinstance(item, dict) and len(item) == 1:
        name, options = next(iter(item.items()))
        options = options if isinstance(options, dict) else {"penalty": options}
    elif isinstance(item, str):
        name, options = item, {}
    else:
        raise ValueError(
            f"expected an objective name ({', '.join(TARGET_NAMES)}), `{{penalized: 0.5}}` or a list of them, got {shown(item)}"
        )
    _check_choice("objective", str(name), TARGET_NAMES)
    if name == "penalized" and not isinstance(options.get("penalty"), int | float):
        raise ValueError(
            f"`penalized` needs a numeric penalty, e.g. `objective: {{penalized: 0.5}}`; got {shown(item)}"
        )
    if name != "penalized" and options:
        raise ValueError(f"objective {name!r} takes no options (only `penalized` takes a penalty); got {shown(item)}")
    return {"name": name, **options}


def _check_choice(kind: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    if value not in choices:
        raise ValueError(unknown_text(kind, value, choices))
    return value
