"""Generated data for studies/fairness.yaml: a screening test with an under-represented group.

Group B is 10% of the rows and has a much higher base rate than group A (the same features
predict the outcome, but B's cut-off is lower). The group is not a feature; `x3` is only a weak
proxy of it. A model tuned for overall accuracy learns A's cut-off, because A is 90% of the
rows, and misses many of B's positives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def screening(n: int = 3000, share_b: float = 0.1, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < share_b, "B", "A")
    in_b = group == "B"
    x1, x2, x4, x5 = rng.normal(size=(4, n))
    x3 = rng.normal(size=n) + 1.0 * in_b
    risk = 1.5 * x1 + 1.0 * x2 + 0.5 * x4 + rng.normal(scale=0.8, size=n)
    outcome = (risk > np.where(in_b, 0.5, 1.5)).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "x4": x4, "x5": x5, "group": group, "outcome": outcome})
