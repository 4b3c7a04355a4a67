"""Every attribute ``tuner`` stores on a study or a trial, by name, and the fields of the
structured ones: the storage's schema.

Optuna stores what ``tuner`` measured as user attributes, where optuna-dashboard, ``tuner show``,
``export``, ``compare``, ``report`` and ``refit`` all read it. No other module spells these
names; they are part of the stored format, so renaming one needs a migration.
"""

from __future__ import annotations

# --- study user attributes: enough to rebuild the study's setup from the storage alone -------
SPEC = "tuner:spec"  # the spec as canonical JSON (storage password redacted)
SPEC_HASH = "tuner:spec_hash"
SPACE = "tuner:space"  # the resolved search space, JSON form, compared on resume
# The spec's folder (relative data paths and `module:function` imports resolve against it) and
# file, so `tuner refit` can rebuild the data from the storage alone.
BASE_DIR = "tuner:base_dir"
SPEC_PATH = "tuner:spec_path"
MODEL = "tuner:model"
METRIC = "tuner:metric"
TASK = "tuner:task"
N_FOLDS = "tuner:n_folds"
OBJECTIVES = "tuner:objectives"  # human names of the objectives, e.g. ["roc_auc", "gap"]
BASELINE = "tuner:baseline"  # validation score of a constant model on the same folds
LEARNING_CURVE = "tuner:learning_curve"  # written by `tuner diagnose`
REFIT_MODEL = "tuner:refit_model"  # written by `tuner refit`
# The final choice (tuner.racing): a candidate's scores on extra CV repeats, one key per trial,
# {"<repeat>": [validation score per fold]} with repeats 1, 2, ... (repeat 0 is the trial's own
# `val_scores`). On the study, not the trial: Optuna refuses to change a finished trial.
RACE_PREFIX = "tuner:race:"
# Why the candidates cannot be re-scored (custom objective, time series, ...): the raw maximum stands.
RACE_SKIPPED = "tuner:race_skipped"


def race_key(number: int) -> str:
    """The study attribute holding trial ``number``'s extra CV repeats."""
    return f"{RACE_PREFIX}{number}"


# Fields of a learning curve (LEARNING_CURVE, or a trial's own LEARNING_CURVE_OF_TRIAL): the best
# trial's number, the metric, the training sizes and per size the mean train score and the fold
# validation scores, whether more data is likely to help and the verdict in words.
CURVE_TRIAL = "trial"
CURVE_METRIC = "metric"
CURVE_SIZES = "train_sizes"
CURVE_TRAIN_SCORES = "train_scores"
CURVE_VAL_SCORES = "val_scores"
CURVE_MORE_DATA_HELPS = "more_data_helps"
CURVE_VERDICT = "verdict"

# Fields of REFIT_MODEL: where the model and its card are, the model file's SHA-256, the trial
# refitted, the held-out test score and when.
REFIT_PATH = "path"
REFIT_CARD = "card"
REFIT_SHA256 = "sha256"
REFIT_TRIAL = "trial"
REFIT_TEST_SCORE = "test_score"
REFIT_CREATED = "created"

# --- trial system attribute -----------------------------------------------------------------
# The worker process running the trial ({"host", "pid", "beat"}); on journal storages its
# "beat" (unix time) is the trial's heartbeat.
WORKER = "tuner:worker"
WORKER_HOST = "host"
WORKER_PID = "pid"
WORKER_BEAT = "beat"
# True on the worker attribute of a worker that beats in Optuna's RDB table only one second into a
# trial (SQLite): its trial without a heartbeat row is stale a grace period after the naming.
WORKER_BEATS_LATE = "beats_late"
# Optuna's own system attribute on a trial it failed (an objective that raised inside Optuna).
OPTUNA_FAIL_REASON = "fail_reason"

# --- trial user attributes: what the built-in objective measured ----------------------------
VAL_SCORES = "val_scores"
VAL_MEAN = "val_mean"
VAL_STD = "val_std"
TRAIN_SCORES = "train_scores"
TRAIN_MEAN = "train_mean"
TRAIN_STD = "train_std"
GAP = "gap"
FIT_SECONDS = "fit_seconds"
FLAGS = "flags"
GROUP_SCORES = "group_scores"
WORST_GROUP_SCORE = "worst_group_score"
WORST_GROUP_NAME = "worst_group_name"
GROUP_GAP = "group_gap"
WARNINGS = "warnings"
FEASIBLE = "feasible"  # only in studies with constraints
BEST_ITERATIONS = "best_iterations"  # per fold, when boosting stopped early
FIDELITY_SCORES = "fidelity_scores"  # {level percent: mean score}, multi-fidelity screening
LEARNING_CURVE_OF_TRIAL = "learning_curve"  # a trial's own curve, when a user stored one
# Per-epoch losses of a network, per fold: [{"train_loss": [...], "val_loss": [...]}, ...]. The
# validation loss is on the early-stopping split of the training fold, never the CV fold.
EPOCH_CURVES = "epoch_curves"
EPOCH_TRAIN_LOSS = "train_loss"
EPOCH_VAL_LOSS = "val_loss"

# --- trial user attributes: what happened to the trial --------------------------------------
ERROR = "error"  # why it failed
INTERRUPTED = "interrupted"  # stopped by Ctrl-C: FAIL, not counted against the budget, not retried
LOST = "lost"  # its worker died: FAIL, not counted, retried once

# Attributes a repair writes; a retry of the trial starts without them.
REPAIR_ATTRS = (ERROR, LOST, INTERRUPTED)
# Diagnostics a trial may carry; the model card copies those present.
DIAGNOSTICS = (
    TRAIN_SCORES,
    TRAIN_MEAN,
    TRAIN_STD,
    GAP,
    GROUP_SCORES,
    WORST_GROUP_SCORE,
    WORST_GROUP_NAME,
    GROUP_GAP,
    FLAGS,
)

# --- optuna-dashboard's study system attributes, in its own format --------------------------
# A trial's markdown note: its version and its text in chunks of DASHBOARD_NOTE_CHUNK characters
# (optuna_dashboard._note; tests/test_diagnostics_dashboard.py checks that optuna_dashboard.get_note
# reads back what tuner writes). `trial_id` is the storage's id of the trial, not its number.
DASHBOARD_NOTE_VERSION = "dashboard:{trial_id}:note_ver"
DASHBOARD_NOTE_TEXT = "dashboard:{trial_id}:note_str:{index}"
DASHBOARD_NOTE_CHUNK = 2045
# Ids of the study-level figures tuner saves with optuna_dashboard.save_plotly_graph_object.
DASHBOARD_FIGURES = ("tuner-gap-vs-validation", "tuner-group-scores", "tuner-learning-curve", "tuner-epoch-curves")
