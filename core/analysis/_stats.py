"""Special functions the analyses need, in numpy and the standard library only.

The engine does not depend on SciPy, so the log-factorial, the normal and Student-t
quantiles and the regularised incomplete beta function are implemented here.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_SMALL = 64
_LOG_FACT_TABLE = np.array([math.lgamma(i + 1.0) for i in range(_SMALL)])
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def log_factorial(n) -> np.ndarray:
    """``log(n!)`` for non-negative integers, vectorised.

    Small arguments come from a table; larger ones from Stirling's series with terms up to
    ``n**-5``, whose truncation error is below ``1e-16`` of the value for ``n >= 64``.
    """
    n = np.asarray(n, dtype=np.float64)
    out = np.empty_like(n)
    small = n < _SMALL
    if np.any(small):
        out[small] = _LOG_FACT_TABLE[n[small].astype(np.int64)]
    big = ~small
    if np.any(big):
        x = n[big]
        inv = 1.0 / x
        inv2 = inv * inv
        series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0))
        out[big] = x * np.log(x) - x + 0.5 * np.log(x) + _HALF_LOG_2PI + series
    return out


def norm_ppf(p: float) -> float:
    """Quantile of the standard normal distribution (bisection on ``math.erfc``)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must be in (0, 1); got {p}")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return 0.5 * (lo + hi)


def betainc(a, b, x) -> np.ndarray:
    """Regularised incomplete beta function ``I_x(a, b)``, vectorised over arrays.

    Evaluated with the continued fraction of the incomplete beta function (modified Lentz
    method), using ``I_x(a, b) = 1 - I_{1-x}(b, a)`` on the side where the fraction is slow.
    """
    a, b, x = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, x)))
    out = np.where(x <= 0, 0.0, 1.0)
    inner = (x > 0) & (x < 1)
    if not np.any(inner):
        return out
    a, b, x = a[inner], b[inner], x[inner]
    swap = x > (a + 1.0) / (a + b + 2.0)
    aa, bb, xx = np.where(swap, b, a), np.where(swap, a, b), np.where(swap, 1.0 - x, x)
    from_lgamma = np.vectorize(math.lgamma, otypes=[float])
    log_front = (aa * np.log(xx) + bb * np.log1p(-xx)
                 - (from_lgamma(aa) + from_lgamma(bb) - from_lgamma(aa + bb)) - np.log(aa))
    cf = _beta_cf(aa, bb, xx)
    val = np.exp(log_front) * cf
    out[inner] = np.where(swap, 1.0 - val, val)
    return out


def _beta_cf(a, b, x, max_iter: int = 5000, tol: float = 1e-15) -> np.ndarray:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < tiny, tiny, d)
    d = 1.0 / d
    h = d.copy()
    done = np.zeros(x.shape, dtype=bool)
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        h = np.where(done, h, h * d * c)
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        delta = d * c
        h = np.where(done, h, h * delta)
        done |= np.abs(delta - 1.0) < tol
        if done.all():
            break
    return h


def t_ppf(p: float, df) -> np.ndarray:
    """Upper quantile of Student's t: the value ``t`` with ``P(T <= t) = p`` for ``p > 0.5``.

    Parameters
    ----------
    p : float
        Probability in (0.5, 1), e.g. 0.975 for a two-sided 95 % interval.
    df : array-like of float
        Degrees of freedom (>= 1); NaN is returned for smaller values.

    Returns
    -------
    ndarray of float, shape of ``df``
    """
    if not 0.5 < p < 1.0:
        raise ValueError(f"p must be in (0.5, 1); got {p}")
    df = np.asarray(df, dtype=np.float64)
    out = np.full(df.shape, np.nan)
    ok = df >= 1
    if not np.any(ok):
        return out
    z = norm_ppf(p)
    uniq, inv = np.unique(df[ok], return_inverse=True)
    res = np.empty(uniq.shape)
    large = uniq >= 200
    if np.any(large):
        # Cornish-Fisher expansion in 1/df (Abramowitz & Stegun 26.7.5); error < 1e-12 here.
        v = uniq[large]
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
        g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
        res[large] = z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4
    small = ~large
    if np.any(small):
        v = uniq[small]
        whole = v == np.round(v)
        # Whole degrees of freedom (counts minus one) are looked up in a cached table.
        res_small = np.empty(v.shape)
        res_small[whole] = _t_table(float(p))[v[whole].astype(np.int64) - 1]
        if np.any(~whole):
            res_small[~whole] = _t_bisect(p, v[~whole])
        res[small] = res_small
    out[ok] = res[inv.ravel()]
    return out


def _t_bisect(p: float, v: np.ndarray) -> np.ndarray:
    # P(T > t) = I_x(v/2, 1/2) / 2 with x = v / (v + t^2); I_x grows with x, so bisect on x.
    target = 2.0 * (1.0 - p)
    lo, hi = np.zeros_like(v), np.ones_like(v)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = betainc(v / 2.0, 0.5, mid) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    x = 0.5 * (lo + hi)
    return np.sqrt(v * (1.0 - x) / x)


@lru_cache(maxsize=16)
def _t_table(p: float) -> np.ndarray:
    """Quantiles for 1..199 degrees of freedom (read-only)."""
    table = _t_bisect(p, np.arange(1.0, 200.0))
    table.setflags(write=False)
    return table
