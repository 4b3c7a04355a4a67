"""Networks trained epoch by epoch inside one CV fold: the loss curves, early stopping, pruning.

A catalog network (an :class:`~tuner.models.EpochHook`, an :class:`~tuner.models.EpochModel`)
trains one epoch at a time on the fit rows of the fold's training rows. After each epoch its loss
is measured on those rows (the train loss, on the rows as they were before augmentation) and on
the stopping rows, the split of the training rows that boosting stops on (the validation loss).
The CV validation fold is never seen: it scores the fold afterwards, as for every other model.

After each epoch the caller's ``on_epoch(epoch, train_loss, val_loss)`` runs; the objective
reports there and raises ``optuna.TrialPruned`` when the pruner says so, which stops the fit
between two epochs. With a patience (``early_stopping.epoch_rounds``, or the model's own early
stopping), training stops after that many epochs without improvement and the weights of the
best epoch are put back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.cv._augment import Plan, apply
from tuner.models import EpochHook, EpochModel

# epoch (0-based), train loss, validation loss; may raise to stop the trial.
OnEpoch = Callable[[int, float, float], None]


@dataclass(frozen=True)
class EpochCurves:
    """What one fold's epochs measured."""

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    # Epochs whose weights the model kept (1-based), when it stopped on a patience; else None.
    best_epoch: int | None


def fit_by_epoch(
    model: Any,
    hook: EpochHook,
    plan: Plan,
    X_fit: Any,
    y_fit: np.ndarray,
    X_stop: Any,
    y_stop: np.ndarray,
    *,
    rounds: int | None,
    min_delta: float,
    seed: int,
    on_epoch: OnEpoch | None = None,
) -> EpochCurves:
    """Fit ``model`` (a network, or a pipeline ending in one) epoch by epoch on the fit rows,
    measuring the loss on the fit rows and the stopping rows after each epoch.

    Args:
        rounds: Stop after this many epochs without an improvement of the stopping loss by more
            than ``min_delta`` (None: the model's own early stopping, if it has it on, else none).
        on_epoch: Called after every epoch; an exception it raises ends the fit.
    """
    data = apply(plan, X_fit, y_fit, seed=seed)
    final, transformers = _unwrap(model)
    # The pipeline's transformers are fitted in place, as its own fit would fit them, so the
    # pipeline is the fitted model afterwards; the network sees the rows they make.
    X_train, X_seen = data.X, X_stop
    for step in transformers:
        X_train = step.fit_transform(X_train, data.y)
        X_seen = step.transform(X_seen)
    X_orig = X_fit
    if plan.active:  # the train loss is measured on the fit rows, not on resampled or augmented copies
        for step in transformers:
            X_orig = step.transform(X_orig)
    else:
        X_orig, y_fit = X_train, data.y
    network: EpochModel = final
    network.start_epochs(X_train, data.y)
    cap = int(final.get_params()[hook.param])
    own = network.own_stopping()
    patience, delta = (rounds, min_delta) if rounds is not None else own if own is not None else (None, 0.0)
    train_curve: list[float] = []
    val_curve: list[float] = []
    best_loss, best_epoch, best_weights, waited = math.inf, 0, None, 0
    for epoch in range(cap):
        network.fit_epoch(X_train, data.y, data.sample_weight)
        train_loss = network.epoch_loss(X_orig, y_fit)
        val_loss = network.epoch_loss(X_seen, y_stop)
        train_curve.append(train_loss)
        val_curve.append(val_loss)
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss)
        if not math.isfinite(train_loss):
            break  # diverged: more epochs will not bring it back
        if val_loss < best_loss - delta:
            best_loss, best_epoch, waited = val_loss, epoch + 1, 0
            if patience is not None:
                best_weights = network.epoch_weights()
        else:
            waited += 1
        if patience is not None and waited >= patience:
            break
        if network.converged():
            break
    if patience is None:
        return EpochCurves(tuple(train_curve), tuple(val_curve), None)
    if best_weights is not None and best_epoch < len(val_curve):
        network.set_epoch_weights(best_weights)
    return EpochCurves(tuple(train_curve), tuple(val_curve), max(1, best_epoch))


def _unwrap(model: Any) -> tuple[Any, list[Any]]:
    """The final estimator and the transformers before it, through nested pipelines."""
    transformers: list[Any] = []
    while hasattr(model, "steps"):
        transformers.extend(step for _, step in model.steps[:-1] if step not in (None, "passthrough"))
        model = model.steps[-1][1]
    return model, transformers
