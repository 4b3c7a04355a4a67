"""What the gap's train score costs: one fold's CPU time with it, divided by the fold without it.

``fit_and_score`` measures the train score on a sample of the fold's training rows as large as its
validation fold (``tuner.cv.train_score_rows``). Before, it predicted every training row: four times
the validation fold's rows in a 5-fold CV, which costs most for models whose prediction is the
expensive part (kNN, SVMs). Run it on another checkout with ``PYTHONPATH=/path/to/checkout`` to
compare.

Usage::

    python bench/train_score.py            # 20,000 rows, one 80/20 fold, median of 3
    python bench/train_score.py --rows 5000
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from tuner.cv import fit_and_score
from tuner.metrics import get_metric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    X, y = make_classification(args.rows, 20, random_state=0)
    frame = pd.DataFrame(X)
    rows = np.random.default_rng(0).permutation(args.rows)
    cut = args.rows * 4 // 5
    train, val = rows[:cut], rows[cut:]
    metric = get_metric("roc_auc", "classification")
    models = {
        "random_forest (100 trees)": lambda: RandomForestClassifier(100, n_jobs=1, random_state=0),
        "hist_gradient_boosting (100)": lambda: HistGradientBoostingClassifier(max_iter=100, random_state=0),
        "knn": KNeighborsClassifier,
    }
    print(f"one fold, {len(train)} training and {len(val)} validation rows, CPU seconds, median of {args.repeats}")
    print(f"{'model':<30} {'without train score s':>22} {'with it s':>10} {'ratio':>7}")
    with threadpool_limits(limits=1):
        for name, make in models.items():
            cpu: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.repeats):
                for score_train in (False, True):
                    started = time.process_time()
                    fit_and_score(make(), frame, y, train, val, seed=0, metric=metric, score_train=score_train)
                    cpu[score_train].append(time.process_time() - started)
            without, with_ = statistics.median(cpu[False]), statistics.median(cpu[True])
            print(f"{name:<30} {without:>22.2f} {with_:>10.2f} {with_ / without:>6.2f}×", flush=True)


if __name__ == "__main__":
    main()
