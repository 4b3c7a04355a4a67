"""Run a study from Python on a DataFrame you already have, then use the result.

python examples/embed_basic.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sklearn.datasets import load_wine

import tuner


def main() -> None:
    frame = load_wine(as_frame=True).frame  # any DataFrame works: features plus a target column
    storage = Path(tempfile.mkdtemp()) / "embed.db"
    spec = {
        "name": "embed-wine",
        "data": {"target": "target"},  # no `source`: the DataFrame below is the data
        "model": "random_forest",
        "space": {"n_estimators": {"type": "int", "low": 20, "high": 120, "log": True}},
        "metric": "f1_macro",
        "cv": {"folds": 4},
        "budget": {"n_trials": 12},
        "storage": str(storage),
        "seed": 0,
    }
    result = tuner.run_study(spec, data=frame)
    print(f"best f1_macro {result.best_value:.4f} with {result.best_params}")
    print(result.trials[["number", "value", "state"]].sort_values("value", ascending=False).head(5))

    # Running again with a larger budget resumes the same study: only the new trials run.
    again = tuner.run_study(spec, data=frame, n_trials=16)
    print(f"resumed: ran {again.ran} more trials; best now {again.best_value:.4f}")


if __name__ == "__main__":
    main()
