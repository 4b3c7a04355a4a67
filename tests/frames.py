"""Small generated data sets and a study runner for the diagnostics, targets and augmentation tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def classification(
    n: int = 120, *, features: int = 4, informative: int = 2, flip: float = 0.0, sep: float = 1.0, seed: int = 0
) -> pd.DataFrame:
    """``x0..x{features-1}`` and a binary target ``y``."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n,
        n_features=features,
        n_informative=informative,
        n_redundant=0,
        flip_y=flip,
        class_sep=sep,
        random_state=seed,
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(features)])
    frame["y"] = y
    return frame


def with_groups(frame: pd.DataFrame, sizes: dict[str, int], *, column: str = "g", seed: int = 0) -> pd.DataFrame:
    """``frame`` with a group column holding ``sizes[name]`` rows of each group, in random order."""
    labels = np.concatenate([[name] * count for name, count in sizes.items()])
    assert len(labels) == len(frame), "group sizes must add up to the number of rows"
    out = frame.copy()
    out[column] = np.random.default_rng(seed).permutation(labels)
    return out


def study_spec(name: str, model: str, **fields: Any) -> dict[str, Any]:
    """A fast study on a DataFrame target ``y``: accuracy, 3 stratified folds, no pruning, 1 trial."""
    spec: dict[str, Any] = {
        "name": name,
        "data": {"target": "y"},
        "model": model,
        "metric": "accuracy",
        "cv": {"scheme": "stratified", "folds": 3},
        "pruner": "none",
        "budget": {"n_trials": 1},
        "seed": 1,
    }
    spec.update(fields)
    return spec


def run(spec: dict[str, Any], frame: pd.DataFrame, tmp_path: Path) -> Any:
    """``run_study`` on ``frame`` with a SQLite file in ``tmp_path``."""
    from tuner import run_study

    return run_study(spec, data=frame, storage=str(tmp_path / "tuner.db"))
