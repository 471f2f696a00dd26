"""Per-variable summary of a dataset for display (missing share, range, histogram).

Pure numpy so it can be computed off the GUI thread and tested without Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["VariableSummary", "summarise_variables"]


@dataclass(frozen=True)
class VariableSummary:
    """What the data view shows about one variable.

    Attributes
    ----------
    name, unit : str
    n_observed : int
        Measured values (real rows or real patient steps only, never padding).
    missing_share : float
        Share of real rows/steps without a measurement, in [0, 1].
    minimum, median, maximum : float
        Over measured values; NaN when nothing was measured.
    counts : ndarray of int, shape (bins,)
        Histogram of the measured values between ``minimum`` and ``maximum``.
    """

    name: str
    unit: str
    n_observed: int
    missing_share: float
    minimum: float
    median: float
    maximum: float
    counts: np.ndarray


def summarise_variables(dataset, bins: int = 20) -> list[VariableSummary]:
    """One :class:`VariableSummary` per feature of a :class:`core.data.Dataset`.

    Padding steps of a time series are excluded from every figure.
    """
    values = dataset.values
    mask = dataset.mask
    if dataset.is_series:
        real = dataset.step_mask
        values, mask = values[real], mask[real]  # (n_points, F)
    n_rows = values.shape[0]
    out = []
    for j, name in enumerate(dataset.feature_names):
        observed = mask[:, j] & np.isfinite(values[:, j])
        column = values[observed, j].astype(float)
        if column.size:
            lo, med, hi = float(column.min()), float(np.median(column)), float(column.max())
            counts, _ = np.histogram(column, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))
        else:
            lo = med = hi = float("nan")
            counts = np.zeros(bins, dtype=np.int64)
        unit = dataset.units[j] if j < len(dataset.units) else ""
        out.append(VariableSummary(
            name=str(name), unit=str(unit), n_observed=int(column.size),
            missing_share=1.0 - column.size / n_rows if n_rows else 1.0,
            minimum=lo, median=med, maximum=hi, counts=counts.astype(np.int64)))
    return out
