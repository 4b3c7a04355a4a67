"""Networks on ``sklearn:digits``: what dropout and weight decay do to overfitting, and what
epoch-level pruning and early stopping save.

Every run tunes ``torch_mlp`` (the ``torch`` extra) with the same seed, budget and folds (TPE, 3
stratified folds, the epoch cap fixed so that every trial could run the same number of epochs):

- ``regularised`` vs ``unregularised``: dropout and weight decay searched (0–0.5; 1e-6–1e-2) or
  both fixed at 0, with neither pruning nor early stopping (so no other remedy hides their
  effect). Printed: the best trial's mean validation accuracy and its train − validation gap, the
  median gap over each run's trials, and, paired, the searched run's 3 best configurations
  cross-validated again with dropout and weight decay at 0 (the same network and learning rate);
- ``none`` (the regularised run above), ``early stopping``, ``pruning``, ``both``: the epochs each
  run trained (summed over the trials' stored ``epoch_curves``), as a share of what ``none``
  trained (every trial × fold × cap), the wall time as a share of ``none``'s, and the best score,
  with the best trial's fold standard deviation as the noise to compare it with.

Pruning is the median pruner at epoch steps (``n_startup_trials: 4``, ``n_warmup_steps: 5``);
early stopping is ``early_stopping: true`` (10 epochs without a 0.001 drop of the loss on 10 % of
each training fold).

Usage::

    nice -n 5 python bench/nets.py                  # 20 trials, 30 epochs per fold at most
    nice -n 5 python bench/nets.py --trials 8 --epochs 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import optuna

import tuner
from tuner.store import schema

SEED = 3


def _spec(*, regularised: bool, pruning: bool, stopping: bool, trials: int, epochs: int) -> dict[str, Any]:
    space: dict[str, Any] = {"max_epochs": epochs}
    if not regularised:
        space.update(dropout=0.0, weight_decay=0.0)
    pruner = {"name": "median", "options": {"n_startup_trials": 4, "n_warmup_steps": 5}} if pruning else "none"
    return {
        "name": "bench-nets",
        "data": {"source": "sklearn:digits"},
        "model": "torch_mlp",
        "space": space,
        "metric": "accuracy",
        "cv": {"scheme": "stratified", "folds": 3},
        "sampler": {"name": "tpe", "options": {"n_startup_trials": 8}},
        "pruner": pruner,
        "early_stopping": stopping,
        "budget": {"n_trials": trials},
        "seed": SEED,
    }


def _run(label: str, spec: dict[str, Any]) -> dict[str, Any]:
    print(f"running {label} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    study = tuner.run_study(spec, storage="memory://").study
    seconds = time.perf_counter() - started
    trials = study.trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    epochs = sum(len(fold[schema.EPOCH_VAL_LOSS]) for t in trials for fold in t.user_attrs.get(schema.EPOCH_CURVES, []))
    best = study.best_trial
    return {
        "label": label,
        "seconds": seconds,
        "epochs": epochs,
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "best": best.value,
        "std": best.user_attrs[schema.VAL_STD],
        "gap": best.user_attrs[schema.GAP],
        "params": best.params,
        "median_gap": statistics.median(t.user_attrs[schema.GAP] for t in complete),
        "top": sorted(complete, key=lambda t: -(t.value or 0.0))[:3],
    }


def _without_regularisation(trial: optuna.trial.FrozenTrial, *, epochs: int) -> dict[str, Any]:
    """One CV of ``trial``'s configuration with dropout and weight decay at 0 (the paired comparison)."""
    spec = _spec(regularised=False, pruning=False, stopping=False, trials=1, epochs=epochs)
    spec["space"] = {**trial.params, **spec["space"]}
    study = tuner.run_study(spec, storage="memory://").study
    attrs = study.trials[0].user_attrs
    return {"val": attrs[schema.VAL_MEAN], "gap": attrs[schema.GAP]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    size = {"trials": args.trials, "epochs": args.epochs}
    # Import PyTorch and train once before any timed run, so that no run pays for it.
    _run("warm-up", _spec(regularised=True, pruning=False, stopping=False, trials=1, epochs=1))
    none = _run("none", _spec(regularised=True, pruning=False, stopping=False, **size))
    fixed = _run("unregularised", _spec(regularised=False, pruning=False, stopping=False, **size))
    stopped = _run("early stopping", _spec(regularised=True, pruning=False, stopping=True, **size))
    pruned = _run("pruning", _spec(regularised=True, pruning=True, stopping=False, **size))
    both = _run("both", _spec(regularised=True, pruning=True, stopping=True, **size))

    print(f"\ntorch_mlp on sklearn:digits, {args.trials} trials × 3 folds, ≤ {args.epochs} epochs, seed {SEED}\n")
    print(
        "| dropout, weight decay | best val accuracy (± fold std) | best trial's train − val gap | its dropout, weight decay |"
    )
    print("|---|---|---|---|")
    for row, label in ((none, "searched"), (fixed, "fixed at 0")):
        p = row["params"]
        shown = f"{p.get('dropout', 0.0):.3f}, {p.get('weight_decay', 0.0):.2g}"
        print(f"| {label} | {row['best']:.4f} (± {row['std']:.4f}) | {row['gap']:.4f} | {shown} |")

    print("\n| run | median train − val gap over its complete trials |")
    print("|---|---|")
    print(f"| dropout, weight decay searched | {none['median_gap']:.4f} |")
    print(f"| both fixed at 0 | {fixed['median_gap']:.4f} |")

    print("\nPaired: the searched run's 3 best configurations, as found and with dropout and weight decay set to 0\n")
    print(
        "| n_layers × n_units, lr, batch | dropout, weight decay | val accuracy | gap | at 0, 0: val accuracy | gap |"
    )
    print("|---|---|---|---|---|---|")
    print("running the paired configurations …", file=sys.stderr, flush=True)
    for trial in none["top"]:
        p = trial.params
        off = _without_regularisation(trial, epochs=args.epochs)
        print(
            f"| {p['n_layers']} × {p['n_units']}, {p['lr']:.2g}, {p['batch_size']} |"
            f" {p['dropout']:.3f}, {p['weight_decay']:.2g} |"
            f" {trial.user_attrs[schema.VAL_MEAN]:.4f} | {trial.user_attrs[schema.GAP]:.4f} |"
            f" {off['val']:.4f} | {off['gap']:.4f} |"
        )

    cap = args.trials * 3 * args.epochs
    print(
        "\n| dropout and weight decay searched | epochs run | share of the unpruned run's | time vs unpruned |", end=""
    )
    print(" pruned trials | best val accuracy (± fold std) |")
    print("|---|---|---|---|---|---|")
    for row in (none, stopped, pruned, both):
        print(
            f"| {row['label']} | {row['epochs']} | {row['epochs'] / cap:.0%} | {row['seconds'] / none['seconds']:.2f}× |"
            f" {row['pruned']} | {row['best']:.4f} (± {row['std']:.4f}) |"
        )
    print(
        f"\n(the unpruned run trained {none['epochs']} epochs of the {cap} possible; its wall time {none['seconds']:.0f} s)"
    )


if __name__ == "__main__":
    main()
