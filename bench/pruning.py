"""Pruning that pays: pruners at equal trials and at equal CPU time, scored on held-out data.

For each task x seed, one 40-trial ``tuner`` study per pruner setting (same sampler seed, same
folds, ``cv.holdout_test: 0.25``), with the CPU time of this process recorded after each trial:

- ``none``: no pruning;
- ``median``: the default before this measurement (median pruner, 5 start-up trials, pruning from
  the first fold);
- ``median-s10w1``: 10 start-up trials, no pruning before the second fold has been scored;
- ``pct75``: percentile pruner keeping the top 75 % (prunes only clearly bad trials);
- ``wilcoxon``: Wilcoxon signed-rank pruner (p 0.1) against the best trial, fold by fold.

Columns, as differences to ``none`` (mean over task x seed ± SE; positive = better):

- ``fits``: fold fits the study ran, relative to ``none``;
- ``CV@40``, ``held@40``: at equal trials, the raw maximum's CV score and its held-out score
  (3 fresh 5-fold repeats of the tuning rows), and ``robust@40`` the held-out score of the final
  choice after re-scoring the candidates (``final_choice: robust``, the new default);
- ``CV@cpu``, ``held@cpu``: at equal CPU time, the best trial among those finished within the
  CPU the cheapest setting needed for its 40 trials (so ``none`` gets fewer trials there).

Usage::

    python bench/pruning.py --quick                 # ~5 minutes
    python bench/pruning.py --out /tmp/pruning.json # full run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from robust_choice import TASKS, frame, heldout, robust_attrs, spec_for

from tuner import run_study
from tuner.racing import race
from tuner.spec import FinalChoiceSpec
from tuner.store import schema
from tuner.store._choice import choose

PRUNERS: dict[str, dict[str, Any]] = {
    "none": {"name": "none"},
    "median": {"name": "median"},
    "median-s10w1": {"name": "median", "options": {"n_startup_trials": 10, "n_warmup_steps": 1}},
    "pct75": {"name": "percentile", "options": {"percentile": 75.0}},
    "wilcoxon": {"name": "wilcoxon"},
}
# Fits slow enough for pruning to matter, fast enough for 5 settings x 40 trials x seeds.
PRUNING_TASKS = [TASKS[1], TASKS[5], TASKS[9], TASKS[12], TASKS[11]]


def run(dataset: str, model: str, space: dict[str, Any], seed: int, n_trials: int, pruner: dict[str, Any]) -> Any:
    cpu: dict[int, float] = {}
    start = time.process_time()

    def clock(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        cpu[trial.number] = time.process_time() - start

    spec = spec_for(dataset, model, space, seed, n_trials, final_choice="raw_max", pruner=pruner)
    spec["name"] += f"-{pruner['name']}"
    result = run_study(spec, data=frame(dataset), callbacks=[clock])
    return result, cpu


def measure(task: tuple[str, str, dict[str, Any]], seed: int, n_trials: int) -> dict[str, Any]:
    runs = {name: run(*task, seed, n_trials, pruner) for name, pruner in PRUNERS.items()}
    budget = min(max(cpu.values()) for _, cpu in runs.values())
    out: dict[str, Any] = {"task": f"{task[0]}/{task[1]}", "seed": seed, "budget_cpu": budget, "by": {}}
    for name, (result, cpu) in runs.items():
        context = result.context
        trials = result.study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        raw = max(complete, key=lambda t: (t.value, -t.number))
        within = [t for t in complete if cpu.get(t.number, math.inf) <= budget]
        at_cpu = max(within, key=lambda t: (t.value, -t.number)) if within else raw
        racing = dataclasses.replace(context, spec=context.spec.model_copy(update={"final_choice": FinalChoiceSpec()}))
        started = time.process_time()
        race(racing, result.study)
        race_cpu = time.process_time() - started
        choice = choose(
            result.study.get_trials(deepcopy=False), robust_attrs(result.study.user_attrs, 5, 2), maximize=True
        )
        assert choice is not None
        held: dict[int, float] = {}
        for trial in (raw, at_cpu, choice.trial):
            if trial.number not in held:
                held[trial.number] = heldout(context, trial)
        out["by"][name] = {
            "fits": sum(len(t.user_attrs.get(schema.VAL_SCORES) or []) for t in trials),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "cpu": max(cpu.values()),
            "race_cpu": race_cpu,
            "trials_at_cpu": len([t for t in trials if cpu.get(t.number, math.inf) <= budget]),
            "cv40": raw.value,
            "held40": held[raw.number],
            "robust40": held[choice.trial.number],
            "cvcpu": at_cpu.value,
            "heldcpu": held[at_cpu.number],
        }
    return out


def mean_se(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:+.4f}" if values else "-"
    return f"{statistics.fmean(values):+.4f}±{statistics.stdev(values) / math.sqrt(len(values)):.4f}"


def report(rows: list[dict[str, Any]]) -> None:
    groups = {
        "classification": [r for r in rows if not r["task"].startswith("diabetes")],
        "regression (-RMSE)": [r for r in rows if r["task"].startswith("diabetes")],
    }
    print(f"\n{len(rows)} task x seed pairs; differences to `none` (mean ± SE), positive = better;")
    print("W/T/L: studies whose held-out score at equal trials (raw maximum) is above/equal/below `none`'s")
    head = ["pruner", "studies", "fits", "pruned", "trials@cpu", "CV@40", "held@40", "W/T/L", "robust@40", "CV@cpu"]
    head.append("held@cpu")
    print(" | ".join(f"{h:>15}" for h in head))
    for name in PRUNERS:
        for group, members in groups.items():
            if not members:
                continue
            by = [r["by"][name] for r in members]
            base = [r["by"]["none"] for r in members]
            held = [b["held40"] - n["held40"] for b, n in zip(by, base, strict=True)]
            cells = [
                name,
                group,
                f"{statistics.fmean(b['fits'] / n['fits'] for b, n in zip(by, base, strict=True)):.2f}",
                f"{statistics.fmean(b['pruned'] for b in by):.1f}",
                f"{statistics.fmean(b['trials_at_cpu'] for b in by):.1f}",
                mean_se([b["cv40"] - n["cv40"] for b, n in zip(by, base, strict=True)]),
                mean_se(held),
                f"{sum(d > 0 for d in held)}/{sum(d == 0 for d in held)}/{sum(d < 0 for d in held)}",
            ]
            for key in ("robust40", "cvcpu", "heldcpu"):
                cells.append(mean_se([b[key] - n[key] for b, n in zip(by, base, strict=True)]))
            print(" | ".join(f"{c:>15}" for c in cells))
    cpu = {name: sum(r["by"][name]["cpu"] for r in rows) for name in PRUNERS}
    print("\nCPU of the 40 trials against `none`: " + ", ".join(f"{n} {c / cpu['none']:.2f}" for n, c in cpu.items()))
    print("\nPer task (held-out at equal trials, raw maximum / robust choice; at equal CPU):")
    for r in rows:
        cells = [f"{n}: {b['held40']:.4f}/{b['robust40']:.4f}/{b['heldcpu']:.4f}" for n, b in r["by"].items()]
        print(f"{r['task']:24} {r['seed']}  " + "  ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 tasks, 1 seed, 20 trials")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--from", dest="source", type=Path)
    args = parser.parse_args()
    if args.source:
        report(json.loads(args.source.read_text()))
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    tasks, seeds, n_trials = (PRUNING_TASKS[:2], 1, 20) if args.quick else (PRUNING_TASKS, args.seeds, args.trials)
    rows = []
    started = time.monotonic()
    for task in tasks:
        for seed in range(seeds):
            rows.append(measure(task, seed, n_trials))
            print(f"[{time.monotonic() - started:6.0f} s] {task[0]}/{task[1]} seed {seed}", file=sys.stderr, flush=True)
            if args.out:
                args.out.write_text(json.dumps(rows, indent=1))
    report(rows)


if __name__ == "__main__":
    main()
