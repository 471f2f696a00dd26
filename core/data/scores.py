"""APACHE-II-style acute physiology points and the window-worst score used as a severity label.

The point tables are those of METHOD.md Appendix B: seven variables (temperature, mean
arterial pressure, respiratory rate, bicarbonate, sodium, potassium, creatinine), each worth
0 to 4 points, so a score runs from 0 to 28. Every interval is half-open, ``[low, high)``.

Creatinine is tabulated in µmol/L. Values come in mg/dL and are converted with
``creatinine_factor``: the clinically correct 88.4 by default, or 100 to reproduce the
rough conversion of the reference implementation.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["APACHE_VARIABLES", "APACHE_TABLE", "apache_points", "window_worst_score"]

#: Order of the last axis returned by :func:`apache_points`.
APACHE_VARIABLES = ("temperature", "map", "resp_rate", "hco3", "sodium", "potassium", "creatinine")

#: Per variable: ``(edges, points)``. ``points[i]`` applies to ``edges[i-1] <= x < edges[i]``,
#: with ``points[0]`` below the first edge and ``points[-1]`` at or above the last one.
APACHE_TABLE: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {
    "temperature": ((30, 32, 34, 36, 38.5, 39, 41), (4, 3, 2, 1, 0, 1, 3, 4)),
    "map": ((50, 70, 110, 130, 160), (4, 2, 0, 2, 3, 4)),
    "resp_rate": ((6, 10, 12, 25, 35, 50), (4, 2, 1, 0, 1, 3, 4)),
    "hco3": ((15, 18, 23, 32, 41, 52), (4, 3, 2, 0, 1, 3, 4)),
    "sodium": ((111, 120, 130, 150, 155, 160, 180), (4, 3, 2, 0, 1, 2, 3, 4)),
    "potassium": ((2.5, 3, 3.5, 5.5, 6, 7), (4, 2, 1, 0, 1, 3, 4)),
    # in µmol/L; the table gives 2 points below 60 as well
    "creatinine": ((60, 150, 200, 350), (2, 0, 2, 3, 4)),
}


def _points(values: np.ndarray, variable: str) -> np.ndarray:
    edges, points = APACHE_TABLE[variable]
    # digitize with right=False puts x into bin i when edges[i-1] <= x < edges[i]: exactly [low, high).
    idx = np.digitize(values, np.asarray(edges, dtype=np.float64), right=False)
    return np.where(np.isnan(values), 0, np.asarray(points, dtype=np.int64)[idx])


def apache_points(temp_c, map_mmhg, resp_rate, hco3, sodium, potassium, creatinine_mg_dl, *,
                  creatinine_factor: float = 88.4) -> np.ndarray:
    """Acute physiology points of each of the seven APACHE variables.

    All inputs are array-likes in clinical units that broadcast against each other (any
    shape, e.g. ``(n_patients, n_steps)``). A NaN (not measured) scores 0 for that variable.

    Parameters
    ----------
    temp_c : array_like of float
        Body temperature in °C.
    map_mmhg : array_like of float
        Mean arterial pressure in mmHg.
    resp_rate : array_like of float
        Respiratory rate in breaths per minute.
    hco3 : array_like of float
        Bicarbonate in mmol/L.
    sodium : array_like of float
        Sodium in mmol/L.
    potassium : array_like of float
        Potassium in mmol/L.
    creatinine_mg_dl : array_like of float
        Creatinine in mg/dL.
    creatinine_factor : float, default 88.4
        mg/dL → µmol/L conversion applied before the creatinine table. 88.4 is exact;
        100 reproduces the reference labels.

    Returns
    -------
    points : ndarray of int64, shape ``broadcast_shape + (7,)``
        Points 0..4 per variable, in the order of :data:`APACHE_VARIABLES`. Sum over the last
        axis for the score (0..28).

    Examples
    --------
    >>> apache_points(41.0, 85, 16, 24, 140, 4.0, 1.0).tolist()
    [4, 0, 0, 0, 0, 0, 0]
    """
    arrays = list(np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (
        temp_c, map_mmhg, resp_rate, hco3, sodium, potassium, creatinine_mg_dl))))
    arrays[6] = arrays[6] * float(creatinine_factor)
    return np.stack([_points(a, name) for a, name in zip(arrays, APACHE_VARIABLES)], axis=-1)


def window_worst_score(points_per_var, lengths, horizon_h: int) -> np.ndarray:
    """Sum over variables of the worst points reached in a look-ahead window.

    The score at step ``t`` is ``sum_v max_{t <= s < t + h, s < length} points[s, v]``: every
    variable contributes at most once, with its worst value in the window, and the window
    never reaches into padding.

    Parameters
    ----------
    points_per_var : array_like, shape ``(n_patients, n_steps, n_vars)``
        Non-negative points per hourly step and variable, e.g. from :func:`apache_points`.
    lengths : array_like of int, shape ``(n_patients,)``
        Real (unpadded) steps per patient.
    horizon_h : int
        Window length in steps (hours). 0 and 1 both mean "the current hour only".

    Returns
    -------
    score : ndarray of float32, shape ``(n_patients, n_steps)``
        The window-worst score; NaN on padded steps.
    """
    pts = np.asarray(points_per_var)
    if pts.ndim != 3:
        raise InputError(f"points_per_var must have shape (patients, steps, variables); got {pts.shape}")
    n, t_max, _ = pts.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (n,):
        raise InputError(f"lengths must have shape ({n},) to match points_per_var; got {lengths.shape}")
    if int(horizon_h) != horizon_h or horizon_h < 0:
        raise InputError(f"horizon_h must be a whole number of hours >= 0; got {horizon_h!r}")
    window = max(int(horizon_h), 1)

    real = np.arange(t_max)[None, :] < lengths[:, None]
    # Zero out padding so it can never be the worst value; points are >= 0.
    base = np.where(real[..., None], pts, 0)
    worst = base.copy()
    for k in range(1, min(window, t_max)):
        worst[:, :-k] = np.maximum(worst[:, :-k], base[:, k:])
    score = worst.sum(axis=-1).astype(np.float32)
    score[~real] = np.nan
    return score
