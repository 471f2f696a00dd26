"""Figures over groups of time points that count patients, not hours, as the evidence.

A cell of a trained map holds time points, but consecutive hours of one patient are not
independent observations: 172 hours of 10 patients carry far less information than 172
patients. The functions here summarise a label over groups of points (map cells, a
selection of cells) with intervals that treat each patient as one cluster, and describe
categorical labels by their categories rather than by a meaningless mean. They also turn
sampled forecasts into the bands a plot draws. Everything is numpy in, numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import check_nodes
from .maps import wilson_interval

__all__ = ["ClusteredSummary", "clustered_summary", "CategoryShares", "category_shares", "forecast_band"]


def _t_quantile(p: float, df) -> np.ndarray:
    try:
        from scipy.stats import t
    except ImportError:  # SciPy is optional at run time; the numpy quantile agrees to 1e-10
        from ._stats import t_ppf

        return t_ppf(p, np.asarray(df, dtype=np.float64))
    return t.ppf(p, np.asarray(df, dtype=np.float64))


@dataclass(frozen=True)
class ClusteredSummary:
    """A label summarised over groups of points, with intervals that count patients.

    Attributes
    ----------
    mean : ndarray of float64, shape ``(G,)``
        Mean over the group's time points (the event rate for a 0/1 label); NaN when empty.
    lower, upper : ndarray of float64, shape ``(G,)``
        Confidence interval of ``mean`` with patients as the independent units (see
        :func:`clustered_summary`); NaN when it cannot be given.
    n_points : ndarray of int64, shape ``(G,)``
        Time points with a known label in the group.
    n_patients : ndarray of int64, shape ``(G,)``
        Distinct patients behind those points.
    n_effective : ndarray of float64, shape ``(G,)``
        How many independent observations the interval is worth (between about the number
        of patients and the number of points).
    kind : str
        "binary" or "continuous".
    confidence : float
    global_mean : float
        Mean over every known point, for comparison.
    n_missing : int
        Points left out because their label was unknown.
    """

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_points: np.ndarray
    n_patients: np.ndarray
    n_effective: np.ndarray
    kind: str
    confidence: float
    global_mean: float
    n_missing: int


def clustered_summary(groups, values, patients, n_groups: int, kind: str = "auto",
                      confidence: float = 0.95) -> ClusteredSummary:
    """Mean of a label in every group with a patient-clustered confidence interval.

    Parameters
    ----------
    groups : array-like of int, shape ``(M,)``
        Group of every point (a map cell, or 0 for "selected" and 1 for "the rest").
    values : array-like of float, shape ``(M,)``
        The label at every point; NaN where unknown.
    patients : array-like of int, shape ``(M,)``
        The patient every point belongs to (for tables, the row: every point its own patient).
    n_groups : int
    kind : {"auto", "binary", "continuous"}
        "auto" is "binary" when every known value is 0 or 1.
    confidence : float
        Interval coverage, default 0.95.

    Returns
    -------
    ClusteredSummary

    Notes
    -----
    The mean is the ratio ``sum(y) / n_points``. Its variance is the cluster-robust
    (sandwich) variance of a ratio with each patient as one cluster,
    ``V = C / (C - 1) * sum_i (y_i - mean * m_i)^2 / n_points^2`` over the ``C`` patients,
    where ``y_i`` and ``m_i`` are patient ``i``'s sum and number of points in the group.

    * Continuous labels: ``mean +- t_{C-1} * sqrt(V)``, so few patients give wide intervals
      however many hours they stayed.
    * 0/1 labels: Wilson's score interval (which behaves near 0 and 1) on the effective
      number of observations ``p (1 - p) / V``, kept between 1 and the number of points.
      When no point has the outcome (or every point has it), the data cannot tell how alike
      a patient's hours are, so the interval assumes they are alike: the effective number
      is Kish's ``(sum m_i)^2 / sum m_i^2``, which is the number of patients when they
      contributed equally. 0 events in 10 patients then gives 0-28 %, not 0-2 %.

    A group with one patient has no interval for a continuous label.

    Examples
    --------
    >>> groups = np.zeros(40, int); patients = np.repeat(np.arange(4), 10)
    >>> s = clustered_summary(groups, np.zeros(40), patients, 1)
    >>> int(s.n_patients[0]), round(float(s.upper[0]), 2)
    (4, 0.49)
    """
    g = np.asarray(groups).astype(np.int64).ravel()
    y = np.asarray(values, dtype=np.float64).ravel()
    pid = np.asarray(patients).ravel()
    if not (g.shape == y.shape == pid.shape):
        raise ValueError(f"groups, values and patients need one entry per point; got shapes {g.shape}, "
                         f"{y.shape} and {pid.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1; got {confidence}")
    known = np.isfinite(y)
    n_missing = int((~known).sum())
    g = check_nodes(g, n_groups, "groups", where=known)[known]
    y = y[known]
    _, pid = np.unique(pid[known], return_inverse=True)
    if kind == "auto":
        kind = "binary" if y.size and np.all((y == 0) | (y == 1)) else "continuous"
    if kind not in ("binary", "continuous"):
        raise ValueError(f"kind must be 'auto', 'binary' or 'continuous'; got {kind!r}")
    if kind == "binary" and not np.all((y == 0) | (y == 1)):
        raise ValueError("kind='binary' needs a 0/1 label; found other values")

    n_points = np.bincount(g, minlength=n_groups).astype(np.int64)
    sums = np.bincount(g, weights=y, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_points > 0, sums / n_points, np.nan)
    # One cluster per (group, patient) pair: its sum y_i and size m_i.
    n_pat = int(pid.max()) + 1 if pid.size else 1
    pair, inverse = np.unique(g * n_pat + pid, return_inverse=True)
    pair_group = pair // n_pat
    m = np.bincount(inverse).astype(np.float64)
    s = np.bincount(inverse, weights=y)
    n_patients = np.bincount(pair_group, minlength=n_groups).astype(np.int64)
    resid2 = (s - np.nan_to_num(mean[pair_group]) * m) ** 2
    c = n_patients.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(c > 1, c / (c - 1) * np.bincount(pair_group, weights=resid2, minlength=n_groups)
                       / n_points.astype(np.float64) ** 2, np.nan)
        kish = n_points.astype(np.float64) ** 2 / np.bincount(pair_group, weights=m * m, minlength=n_groups)

    if kind == "binary":
        with np.errstate(invalid="ignore", divide="ignore"):
            from_data = mean * (1.0 - mean) / var
        inside = (mean > 0) & (mean < 1) & np.isfinite(from_data) & (var > 0)
        n_eff = np.where(inside, np.clip(from_data, 1.0, n_points), np.where(n_points > 0, kish, np.nan))
        lower, upper = wilson_interval(np.nan_to_num(mean) * np.nan_to_num(n_eff), np.nan_to_num(n_eff), confidence)
    else:
        tq = _t_quantile(0.5 + confidence / 2.0, np.maximum(c - 1.0, 1.0))
        half = tq * np.sqrt(var)
        ok = (c > 1) & np.isfinite(half)
        lower = np.where(ok, mean - half, np.nan)
        upper = np.where(ok, mean + half, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            sd2 = np.bincount(g, weights=(y - np.nan_to_num(mean[g])) ** 2, minlength=n_groups) / np.maximum(
                n_points - 1, 1)
            n_eff = np.where(ok & (var > 0), np.clip(sd2 / var, 1.0, n_points), np.where(n_points > 0, kish, np.nan))
    gm = float(y.mean()) if y.size else float("nan")
    return ClusteredSummary(mean, np.asarray(lower, float), np.asarray(upper, float), n_points, n_patients,
                            np.asarray(n_eff, float), kind, float(confidence), gm, n_missing)


@dataclass(frozen=True)
class CategoryShares:
    """A categorical label in every group: the share of each category, counted two ways.

    Attributes
    ----------
    categories : ndarray of float64, shape ``(C,)``
        The distinct values, sorted.
    shares : ndarray of float64, shape ``(G, C)``
        Share of the group's time points in each category (rows sum to 1; NaN when empty).
    patient_shares : ndarray of float64, shape ``(G, C)``
        Share of the group's patients who had each category at some point in the group
        (rows may sum to more than 1: a patient can pass through several).
    top : ndarray of int64, shape ``(G,)``
        Index of the most frequent category (ties: the smaller value); -1 when empty.
    n_points, n_patients : ndarray of int64, shape ``(G,)``
    """

    categories: np.ndarray
    shares: np.ndarray
    patient_shares: np.ndarray
    top: np.ndarray
    n_points: np.ndarray
    n_patients: np.ndarray

    def top_share(self) -> np.ndarray:
        """Share of the most frequent category in every group ``(G,)`` (NaN when empty)."""
        rows = np.arange(self.top.size)
        return np.where(self.top >= 0, self.shares[rows, np.maximum(self.top, 0)], np.nan)


def category_shares(groups, values, patients, n_groups: int) -> CategoryShares:
    """How often each category of a label occurs in every group of points.

    Parameters
    ----------
    groups : array-like of int, shape ``(M,)``
    values : array-like of float, shape ``(M,)``
        Category codes (any numbers); NaN where unknown.
    patients : array-like of int, shape ``(M,)``
    n_groups : int

    Returns
    -------
    CategoryShares
    """
    g = np.asarray(groups).astype(np.int64).ravel()
    y = np.asarray(values, dtype=np.float64).ravel()
    pid = np.asarray(patients).ravel()
    if not (g.shape == y.shape == pid.shape):
        raise ValueError("groups, values and patients need one entry per point")
    known = np.isfinite(y)
    g = check_nodes(g, n_groups, "groups", where=known)[known]
    cats, code = np.unique(y[known], return_inverse=True)
    _, pid = np.unique(pid[known], return_inverse=True)
    n_cat = max(cats.size, 1)
    table = np.bincount(g * n_cat + code, minlength=n_groups * n_cat).reshape(n_groups, n_cat).astype(float)
    n_points = table.sum(axis=1).astype(np.int64)
    n_pat = int(pid.max()) + 1 if pid.size else 1
    pairs = np.unique(g * n_pat + pid)
    n_patients = np.bincount(pairs // n_pat, minlength=n_groups).astype(np.int64)
    triples = np.unique((g * n_pat + pid) * n_cat + code)
    had = np.bincount((triples // n_cat // n_pat) * n_cat + triples % n_cat,
                      minlength=n_groups * n_cat).reshape(n_groups, n_cat).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = table / n_points[:, None]
        patient_shares = had / n_patients[:, None]
    top = np.where(n_points > 0, table.argmax(axis=1), -1).astype(np.int64)
    return CategoryShares(cats.astype(np.float64), shares[:, : cats.size], patient_shares[:, : cats.size], top,
                          n_points, n_patients)


def forecast_band(last_value: float, sample_values, quantiles=(0.1, 0.9)) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge of a forecast band, starting at the last measured value.

    Parameters
    ----------
    last_value : float
        The patient's last measurement before the forecast (NaN when none): the band starts
        there, so it joins the measured line.
    sample_values : array-like of float, shape ``(S, H)``
        One variable in ``S`` sampled futures over ``H`` steps.
    quantiles : (float, float)
        The band's edges, default the 10th and 90th percentiles.

    Returns
    -------
    lower, upper : ndarray of float64, shape ``(H + 1,)``
    """
    x = np.asarray(sample_values, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"sample_values must be (n_samples, n_steps); got shape {x.shape}")
    lo, hi = np.nanquantile(x, [quantiles[0], quantiles[1]], axis=0)
    start = np.array([float(last_value)])
    return np.concatenate([start, lo]), np.concatenate([start, hi])
