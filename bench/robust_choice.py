"""The final choice on small data: raw maximum against the re-scored (robust) choice, held out.

For each small bundled data set x model family x seed, a 40-trial ``tuner`` study runs with the
defaults on 75 % of the rows (``cv.holdout_test: 0.25``) and ``final_choice: raw_max``; then
:func:`tuner.racing.race` re-scores its top candidates (the default ``final_choice: robust``:
up to 5 candidates, 2 extra CV repeats), timed apart from the trials. Every choice rule is then
read from the same stored scores (:func:`tuner.store._choice.choose`), so the rules differ only
in the trial they name:

- ``raw``: the raw maximum of the study's one 5-fold CV;
- ``robust``: the default, best mean over the study's CV and the extra repeats;
- ``fresh``: best mean over the extra repeats only;
- ``lcb``: best (mean - corrected SE);
- ``k3r1``, ``k5r1``: the default rule with 3 candidates or 1 extra repeat (fewer fits).

Each chosen configuration is scored twice, on data the choice never saw:

- ``held-out CV``: 3 repeats of the same 5-fold scheme with fresh seeds on the tuning rows (the
  issue's measure: another partition of the same data);
- ``test``: refitted on all tuning rows and scored on the 25 % held-out test rows.

It prints a row per study, then per rule the mean difference to ``raw`` (held-out CV and test)
with its standard error over studies, and the CPU seconds of racing against the study's trials.

Usage::

    python bench/robust_choice.py --quick                 # ~5 minutes
    python bench/robust_choice.py --out /tmp/robust.json  # full run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402

from tuner import run_study  # noqa: E402
from tuner.cv import resplit  # noqa: E402
from tuner.final import fit_final  # noqa: E402
from tuner.racing import race, score  # noqa: E402
from tuner.seeds import seed_for  # noqa: E402
from tuner.spec import FinalChoiceSpec  # noqa: E402
from tuner.store import schema  # noqa: E402
from tuner.store._choice import choose  # noqa: E402

# (data set, model, space overrides): small data, several families.
TASKS: list[tuple[str, str, dict[str, Any]]] = [
    ("breast_cancer", "logistic", {}),
    ("breast_cancer", "svm", {}),
    ("breast_cancer", "extra_trees", {"n_estimators": {"type": "int", "low": 20, "high": 100, "log": True}}),
    ("wine", "logistic", {}),
    ("wine", "knn", {}),
    ("wine", "svm", {}),
    ("iris", "knn", {}),
    ("iris", "svm", {}),
    ("digits600", "logistic", {}),
    ("digits600", "svm", {}),
    ("diabetes", "ridge", {}),
    ("diabetes", "svm", {}),
    ("diabetes", "knn", {}),
]
QUICK_TASKS = [TASKS[0], TASKS[4], TASKS[7], TASKS[10]]
RULES: dict[str, tuple[str, int, int]] = {  # name -> (rule, candidates, repeats)
    "robust": ("mean", 5, 2),
    "fresh": ("fresh", 5, 2),
    "lcb": ("lcb", 5, 2),
    "k3r1": ("mean", 3, 1),
    "k5r1": ("mean", 5, 1),
}
HELDOUT_REPEATS = 3


def frame(name: str) -> pd.DataFrame | None:
    """``digits600``: 600 rows of digits (stratified, fixed), as a frame; other sets load by name."""
    if name != "digits600":
        return None
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits(as_frame=True)
    data = digits.frame
    rows, _ = train_test_split(np.arange(len(data)), train_size=600, stratify=data["target"], random_state=0)
    return data.iloc[np.sort(rows)].reset_index(drop=True)


def spec_for(dataset: str, model: str, space: dict[str, Any], seed: int, n_trials: int, **extra: Any) -> dict[str, Any]:
    source = {"target": "target"} if dataset == "digits600" else {"source": f"sklearn:{dataset}"}
    return {
        "name": f"{dataset}-{model}-{seed}",
        "data": source,
        "model": model,
        "space": space,
        "cv": {"holdout_test": 0.25},
        "budget": {"n_trials": n_trials},
        "seed": seed,
        "storage": "memory://",
        **extra,
    }


def heldout(context: Any, trial: optuna.trial.FrozenTrial) -> float:
    """Mean score of ``trial`` over fresh 5-fold repeats of the tuning rows (seeds the study never used)."""
    spec = context.spec
    values: list[float] = []
    for repeat in range(1, HELDOUT_REPEATS + 1):
        splits = resplit(spec.cv, context.cv, context.dataset, seed=seed_for(spec.seed, "heldout", repeat), label="b")
        scores = score(context, trial, splits, 100 + repeat)
        values.extend(s for s in scores if s is not None)
    return statistics.fmean(values)


def test_score(context: Any, study: optuna.Study, number: int) -> float:
    final = fit_final(context, study, number)
    assert final.test is not None
    return float(final.test["score"])


def robust_attrs(attrs: dict[str, Any], candidates: int, repeats: int) -> dict[str, Any]:
    """The study's attributes as if it had been run with ``final_choice: robust`` (its rules read the stored spec)."""
    spec = json.loads(attrs[schema.SPEC])
    spec["final_choice"] = {"method": "robust", "candidates": candidates, "repeats": repeats}
    return {**attrs, schema.SPEC: json.dumps(spec)}


def one_study(
    dataset: str, model: str, space: dict[str, Any], seed: int, n_trials: int, **extra: Any
) -> dict[str, Any]:
    spec = spec_for(dataset, model, space, seed, n_trials, final_choice="raw_max", **extra)
    cpu = time.process_time()
    result = run_study(spec, data=frame(dataset))
    trials_cpu = time.process_time() - cpu
    context = result.context
    assert context is not None
    racing = dataclasses.replace(context, spec=context.spec.model_copy(update={"final_choice": FinalChoiceSpec()}))
    cpu = time.process_time()
    race(racing, result.study)
    race_cpu = time.process_time() - cpu
    trials = result.study.get_trials(deepcopy=False)
    attrs = result.study.user_attrs
    raw = choose(trials, attrs, maximize=True)
    assert raw is not None
    chosen = {"raw": raw.trial}
    fits = {"raw": 0}
    for name, (rule, k, r) in RULES.items():
        choice = choose(trials, robust_attrs(attrs, k, r), maximize=True, rule=rule)
        assert choice is not None and choice.status in ("raced", "clear"), choice
        chosen[name] = choice.trial
        fits[name] = 0 if choice.status == "clear" else _pool(trials, attrs, k) * r * context.cv.n_splits
    cv_scores: dict[int, float] = {}
    tests: dict[int, float] = {}
    for trial in chosen.values():
        if trial.number not in cv_scores:
            cv_scores[trial.number] = heldout(context, trial)
            tests[trial.number] = test_score(context, result.study, trial.number)
    return {
        "task": f"{dataset}/{model}",
        "seed": seed,
        "metric": context.metric.name,
        "trials_cpu": trials_cpu,
        "race_cpu": race_cpu,
        "chosen": {k: t.number for k, t in chosen.items()},
        "cv_value": {k: t.value for k, t in chosen.items()},
        "heldout": {k: cv_scores[t.number] for k, t in chosen.items()},
        "test": {k: tests[t.number] for k, t in chosen.items()},
        "fits": fits,
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
    }


def _pool(trials: list[optuna.trial.FrozenTrial], attrs: dict[str, Any], k: int) -> int:
    from tuner.store._choice import candidates, ranked, study_folds

    return len(candidates(ranked(trials, True), k, study_folds(attrs)))


def mean_se(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:+.4f}" if values else "-"
    return f"{statistics.fmean(values):+.4f} ± {statistics.stdev(values) / math.sqrt(len(values)):.4f}"


def report(rows: list[dict[str, Any]]) -> None:
    print(f"\n{len(rows)} studies. Per study: held-out CV score (3 fresh 5-fold repeats) of each choice, raw vs robust")
    print(
        f"{'task':26} {'seed':>4} {'raw #':>5} {'rob #':>5} {'raw CV':>8} {'heldout raw':>11} {'heldout rob':>11} "
        f"{'test raw':>8} {'test rob':>8} {'race/trials CPU':>15}"
    )
    for r in rows:
        print(
            f"{r['task']:26} {r['seed']:>4} {r['chosen']['raw']:>5} {r['chosen']['robust']:>5} "
            f"{r['cv_value']['raw']:8.4f} {r['heldout']['raw']:11.4f} {r['heldout']['robust']:11.4f} "
            f"{r['test']['raw']:8.4f} {r['test']['robust']:8.4f} {r['race_cpu'] / r['trials_cpu']:15.2f}"
        )
    groups = {
        "classification": [r for r in rows if not r["metric"].startswith("neg_")],
        "regression (-RMSE)": [r for r in rows if r["metric"].startswith("neg_")],
    }
    print("\nChoice rule vs raw maximum: mean difference over studies ± SE (positive = better than raw),")
    print("wins/ties/losses against raw on the held-out CV score, studies whose choice changed, extra fits:")
    print(
        f"{'rule':8} {'studies':20} {'held-out CV diff':>20} {'test diff':>20} {'W/T/L':>9} {'changed':>8} {'fits':>6}"
    )
    for name in ["raw", *RULES]:
        for group, members in groups.items():
            if not members:
                continue
            cv = [r["heldout"][name] - r["heldout"]["raw"] for r in members]
            test = [r["test"][name] - r["test"]["raw"] for r in members]
            wtl = f"{sum(d > 0 for d in cv)}/{sum(d == 0 for d in cv)}/{sum(d < 0 for d in cv)}"
            changed = sum(r["chosen"][name] != r["chosen"]["raw"] for r in members)
            fits = statistics.fmean(r["fits"][name] for r in members)
            print(f"{name:8} {group:20} {mean_se(cv):>20} {mean_se(test):>20} {wtl:>9} {changed:>8} {fits:6.1f}")
    ratio = [r["race_cpu"] / r["trials_cpu"] for r in rows]
    total_race = sum(r["race_cpu"] for r in rows)
    total_trials = sum(r["trials_cpu"] for r in rows)
    print(
        f"\nCPU: racing {total_race:.0f} s against the studies' {total_trials:.0f} s "
        f"({total_race / total_trials:.1%}); per study median {statistics.median(ratio):.1%}, max {max(ratio):.1%}"
    )
    for group, members in groups.items():
        if members:
            optimism = [r["cv_value"]["raw"] - r["heldout"]["raw"] for r in members]
            print(
                f"Winner's curse, {group}: the raw maximum's CV score minus its held-out CV score {mean_se(optimism)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 tasks, 2 seeds, 20 trials")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--out", type=Path, help="write the per-study rows as JSON")
    parser.add_argument("--from", dest="source", type=Path, help="re-print rows written by --out")
    args = parser.parse_args()
    if args.source:
        report(json.loads(args.source.read_text()))
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    tasks, seeds, n_trials = (QUICK_TASKS, 2, 20) if args.quick else (TASKS, args.seeds, args.trials)
    rows = []
    started = time.monotonic()
    for dataset, model, space in tasks:
        for seed in range(seeds):
            row = one_study(dataset, model, space, seed, n_trials)
            rows.append(row)
            print(
                f"[{time.monotonic() - started:6.0f} s] {row['task']} seed {seed}: raw #{row['chosen']['raw']} "
                f"robust #{row['chosen']['robust']} held-out {row['heldout']['raw']:.4f} -> "
                f"{row['heldout']['robust']:.4f}",
                file=sys.stderr,
                flush=True,
            )
            if args.out:
                args.out.write_text(json.dumps(rows, indent=1))
    report(rows)


if __name__ == "__main__":
    main()
