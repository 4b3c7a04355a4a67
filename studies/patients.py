"""Generated data for studies/group_cv.yaml: several visits per patient.

Rows of one patient are correlated, so plain k-fold leaks a patient's other visits into
training and overestimates the score; group CV keeps each patient on one side of a split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def visits(n_patients: int = 120, visits_per_patient: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    patient_effect = rng.normal(0, 1.0, size=n_patients)
    rows = []
    for patient in range(n_patients):
        for visit in range(visits_per_patient):
            age = 30 + patient % 40 + visit
            dose = rng.uniform(0, 10)
            marker = rng.normal(patient_effect[patient], 0.3)
            risk = 0.08 * dose - 0.02 * (age - 50) + 1.5 * patient_effect[patient] + rng.normal(0, 0.8)
            rows.append(
                {
                    "patient": f"p{patient:03d}",
                    "age": age,
                    "dose": dose,
                    "marker": marker,
                    "site": f"s{patient % 4}",
                    "outcome": int(risk > 0.4),
                }
            )
    return pd.DataFrame(rows)
