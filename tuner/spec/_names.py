"""Every closed set of names a study file may use, as ``Literal`` types.

These are the only definitions: the registries that implement them (samplers, pruners, CV
schemes, balancing modes, objective targets) are tested to list exactly these names.
"""

from __future__ import annotations

import functools
from typing import Literal, get_args

Task = Literal["classification", "regression"]
Direction = Literal["maximize", "minimize"]

SamplerName = Literal["tpe", "random", "cmaes", "gp", "qmc", "nsga2", "grid"]
PrunerName = Literal["median", "percentile", "successive_halving", "hyperband", "wilcoxon", "none"]
# A scheme as the CV plan uses it; a spec may also say `auto` (resolved once, by tuner.cv.make_plan).
ResolvedCVScheme = Literal[
    "kfold",
    "stratified",
    "group",
    "stratified_group",
    "timeseries",
    "repeated_kfold",
    "repeated_stratified",
    "holdout",
]
CVScheme = Literal["auto", ResolvedCVScheme]
# What one pruning step measures: a CV fold, or a share of the training rows / boosting iterations.
Fidelity = Literal["folds", "rows", "iterations"]
MultiFidelityPruner = Literal["hyperband", "successive_halving"]
BalanceMode = Literal["none", "class_weight", "oversample", "undersample"]
# `augment.<name>` space entries that may be searched; image_shape describes the data, so it is fixed.
SearchableAugment = Literal["noise_std", "copies", "shift", "rotate", "mirror"]
TargetName = Literal["metric", "penalized", "gap", "fit_time", "worst_group", "group_gap"]
# The steps a spec's declarative `pipeline:` may list (tuner.models.STEPS builds them), and the
# closed settings of the two whose shorthand names one (`impute: median`, `scale: robust`).
PipelineStepName = Literal["onehot", "impute", "scale", "pca", "select"]
ImputeStrategy = Literal["median", "mean", "most_frequent", "constant"]
ScaleKind = Literal["standard", "minmax", "robust", "maxabs"]
# How the final trial is chosen: re-scored on extra CV repeats (`robust`), or the raw maximum.
FinalChoiceMethod = Literal["robust", "raw_max"]
SklearnSet = Literal["breast_cancer", "digits", "wine", "iris", "diabetes"]

SAMPLER_NAMES: tuple[str, ...] = get_args(SamplerName)
PRUNER_NAMES: tuple[str, ...] = get_args(PrunerName)
CV_SCHEMES: tuple[str, ...] = get_args(CVScheme)
MULTI_FIDELITY_PRUNERS: tuple[str, ...] = get_args(MultiFidelityPruner)
BALANCE_MODES: tuple[str, ...] = get_args(BalanceMode)
SEARCHABLE_AUGMENT: tuple[str, ...] = get_args(SearchableAugment)
TARGET_NAMES: tuple[str, ...] = get_args(TargetName)
SKLEARN_SETS: tuple[str, ...] = get_args(SklearnSet)
FINAL_CHOICE_METHODS: tuple[str, ...] = get_args(FinalChoiceMethod)
PIPELINE_STEPS: tuple[str, ...] = get_args(PipelineStepName)
IMPUTE_STRATEGIES: tuple[str, ...] = get_args(ImputeStrategy)
SCALE_KINDS: tuple[str, ...] = get_args(ScaleKind)
# The name of the model's step in a declared pipeline: `space` says `model__C`.
MODEL_STEP = "model"
# Samplers that cannot handle more than one objective (Optuna raises at the first trial).
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)
# Samplers whose Optuna implementation imports an optional package: (module, what to install).
SAMPLER_REQUIRES = {"cmaes": ("cmaes", "cmaes"), "gp": ("torch", "tuner[gp]")}

# Space entries that configure the training-fold steps, not the estimator.
BALANCE_KEY = "balance"
AUGMENT_PREFIX = "augment."

# scikit-learn scorer names by the task they fit (every scorer is greater-is-better).
REGRESSION_PREFIXES = (
    "r2",
    "explained_variance",
    "neg_max_error",
    "neg_mean_",
    "neg_median_",
    "neg_root_mean_",
    "d2_absolute_error",
)
CLASSIFICATION_PREFIXES = (
    "accuracy",
    "balanced_accuracy",
    "top_k_accuracy",
    "average_precision",
    "neg_brier_score",
    "neg_log_loss",
    "f1",
    "precision",
    "recall",
    "jaccard",
    "roc_auc",
    "matthews_corrcoef",
    "d2_brier_score",
    "d2_log_loss_score",
    "positive_likelihood_ratio",
    "neg_negative_likelihood_ratio",
)


@functools.cache
def metric_names() -> tuple[str, ...]:
    """The supervised scikit-learn scorer names a study may use as ``metric``."""
    # Imported here for start-up time: sklearn.metrics takes about a second, and commands that
    # only read a stored study (show, list) parse specs without ever naming a metric.
    from sklearn.metrics import get_scorer_names

    return tuple(
        n
        for n in get_scorer_names()
        if n.startswith(REGRESSION_PREFIXES + CLASSIFICATION_PREFIXES) and not n.endswith("_samples")
    )
