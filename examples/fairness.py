"""Biased data: tune for the worst-served group, and see what it costs overall.

Group B is 10% of the rows of studies/fairness_data.py and has a higher base rate. The same
study is tuned three ways, each on the same folds:

1. overall accuracy alone (`objective: metric`);
2. the worst group's accuracy (`objective: worst_group`, as in studies/fairness.yaml);
3. overall accuracy subject to a floor on the worst group (`constraints: {min_group_score: ...}`).

It prints overall and worst-group accuracy of each study's best trial, and the trade-off.

    python examples/fairness.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import optuna

import tuner

SPEC = Path(__file__).resolve().parent.parent / "studies" / "fairness.yaml"
RUNS = (
    ("overall accuracy", "fairness-overall", ["objective=metric"]),
    ("worst-group accuracy", "fairness-worst-group", []),
    ("overall, worst group ≥ 0.84", "fairness-constrained", ["objective=metric", "constraints.min_group_score=0.84"]),
)


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = str(Path(tempfile.mkdtemp()) / "fairness.db")
    rows = []
    for label, name, overrides in RUNS:
        result = tuner.run_study(SPEC, study_name=name, storage=storage, overrides=overrides)
        best = result.best_trial
        assert best is not None, f"{name}: no feasible trial"
        attrs = best.user_attrs
        rows.append((label, attrs["val_mean"], attrs["worst_group_score"], attrs["worst_group_name"], best.params))
    print(f"{'tuned for':<30} {'overall acc.':>12} {'worst group acc.':>17}  best parameters")
    for label, overall, worst, group, params in rows:
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        print(f"{label:<30} {overall:>12.3f} {worst:>12.3f} ({group})  {shown}")
    (_, base_overall, base_worst, *_), (_, fair_overall, fair_worst, *_) = rows[0], rows[1]
    print(
        f"\nTuning for the worst group raised its accuracy by {fair_worst - base_worst:+.3f} "
        f"({base_worst:.3f} → {fair_worst:.3f}) at a cost of {fair_overall - base_overall:+.3f} overall accuracy "
        f"({base_overall:.3f} → {fair_overall:.3f})."
    )


if __name__ == "__main__":
    main()
