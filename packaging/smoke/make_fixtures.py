"""Write the two small input files the installer smoke test feeds to the frozen ``dpsom``.

``ward.parquet`` and ``ward.xlsx`` hold the same 60 synthetic ward observations (four vital
signs and a binary outcome). They exist to prove that the bundle can read Parquet (pyarrow)
and Excel (openpyxl), whose import paths a frozen build is most likely to miss. Run from the
repository root with the development environment: ``python packaging/smoke/make_fixtures.py``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def ward(n: int = 60, seed: int = 7) -> pd.DataFrame:
    """Two overlapping groups of patients: stable, and deteriorating (higher HR and lactate)."""
    rng = np.random.default_rng(seed)
    sick = rng.random(n) < 0.3
    return pd.DataFrame({
        "HR": np.round(np.where(sick, 112, 78) + rng.normal(0, 9, n), 1),
        "MAP": np.round(np.where(sick, 64, 86) + rng.normal(0, 7, n), 1),
        "RespRate": np.round(np.where(sick, 26, 16) + rng.normal(0, 3, n), 1),
        "Lactate": np.round(np.where(sick, 3.8, 1.2) + np.abs(rng.normal(0, 0.5, n)), 2),
        "outcome": sick.astype(int),
    })


if __name__ == "__main__":
    table = ward()
    table.to_parquet(HERE / "ward.parquet", index=False)
    table.to_excel(HERE / "ward.xlsx", index=False, sheet_name="ward")
    print(f"wrote {len(table)} rows to ward.parquet and ward.xlsx")
