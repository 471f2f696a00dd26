"""A signed logarithmic scale for curves that span decades and may cross zero.

Loss terms of a model with a Gaussian likelihood (reconstruction with learned variances, the
forecaster's negative log-likelihood) become negative once the model fits well, while other
terms start in the thousands. A plain logarithmic axis cannot draw the negative part at all.
The signed logarithm ``t = sign(y) log10(1 + |y| / c)`` is logarithmic far from zero, linear
within about ``c`` of it, and keeps the sign, so one axis shows both.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

__all__ = ["signed_log", "signed_exp", "linear_width", "SignedLogAxis"]

# Tick levels told apart in tickStrings by the spacing they are reported with.
_MAJOR, _MINOR = 1.0, 0.5


def signed_log(y: np.ndarray, c: float) -> np.ndarray:
    """``sign(y) * log10(1 + |y| / c)``: the plotted position of the values ``y``."""
    y = np.asarray(y, dtype=float)
    return np.sign(y) * np.log10(1.0 + np.abs(y) / c)


def signed_exp(t: np.ndarray, c: float) -> np.ndarray:
    """The inverse of :func:`signed_log`: the value drawn at position ``t``."""
    t = np.asarray(t, dtype=float)
    return np.sign(t) * c * (10.0 ** np.abs(t) - 1.0)


def linear_width(samples: list[np.ndarray]) -> float:
    """The width ``c`` of the linear band around zero, a power of ten, for these values.

    A decade below the small end of the magnitudes (their 5th percentile, zeros and NaN
    ignored), so nearly every value lies where the scale is logarithmic, while the few that
    pass close to zero on their way to the other sign do not stretch the axis over empty
    decades. 1 when there is nothing to go by.
    """
    mags = [np.abs(s[np.isfinite(s) & (s != 0)]) for s in samples if len(s)]
    mags = np.concatenate(mags) if mags else np.empty(0)
    if mags.size == 0:
        return 1.0
    low = float(np.percentile(mags, 5))
    return 10.0 ** (math.floor(math.log10(low)) - 1)


def _label(y: float) -> str:
    y = float(f"{y:.6g}")  # six digits absorb the round trip through the scale: 1e5, not 99999.99
    if y == 0:
        return "0"
    if 1e-3 <= abs(y) < 1e5:
        return f"{y:g}"
    mantissa, exponent = f"{y:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


class SignedLogAxis(pg.AxisItem):
    """An axis that labels positions on the :func:`signed_log` scale with the values they show.

    Major ticks sit at zero and at plus and minus whole powers of ten from ``10 c`` on,
    thinned to fit the axis; unlabelled minor ticks at 2-9 times those when few decades are in view. Zoomed in
    to less than a decade, the ticks are the ordinary evenly spaced ones of the values. With
    the scale off (``set_linear_width(None)``) it is a plain axis.
    """

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self._c: float | None = None
        self._decades = False  # whether the last ticks were powers of ten (minor ones unlabelled)

    @property
    def linear_width(self) -> float | None:
        """``c`` of the scale, or None when the axis is linear."""
        return self._c

    def set_linear_width(self, c: float | None) -> None:
        self._c = c
        self.picture = None  # pyqtgraph redraws the ticks when its cached picture is gone
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 - pyqtgraph's name
        self._decades = False
        if self._c is None:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = sorted((float(minVal), float(maxVal)))
        y_lo, y_hi = (float(v) for v in signed_exp(np.array([lo, hi]), self._c))
        biggest = max(abs(y_lo), abs(y_hi))
        if biggest <= 0:
            return []
        # The first decade at least ten times the band: 10^k close to c would sit less than a
        # unit from zero and its label would collide with zero's.
        k_lo = math.ceil(math.log10(self._c)) + 1
        k_hi = math.floor(math.log10(biggest))
        decades = [10.0 ** k for k in range(k_lo, k_hi + 1)]
        candidates = [0.0] + decades + [-d for d in decades]
        majors = sorted(v for v in candidates if y_lo <= v <= y_hi)
        if len(majors) < 2:
            # Zoomed in to less than a decade: evenly spaced values, placed on the scale.
            levels = super().tickValues(y_lo, y_hi, size)
            return [(spacing, list(signed_log(np.asarray(values), self._c))) for spacing, values in levels]
        self._decades = True
        room = max(2, int(size // 28))  # about one label per 28 pixels
        step = 1
        while len(majors[::step]) > room:
            step += 1
        if step > 1:
            # Thin by decade, keeping zero and the same decades on both sides of it.
            keep = {0.0} | {s * d for i, d in enumerate(decades) if i % step == 0 for s in (1.0, -1.0)}
            majors = [v for v in majors if v in keep]
        levels = [(_MAJOR, list(signed_log(np.asarray(majors), self._c)))]
        if step == 1 and len(majors) <= 8:
            minors = [s * m * d for d in decades for m in range(2, 10) for s in (1.0, -1.0)]
            minors = [v for v in minors if y_lo <= v <= y_hi]
            levels.append((_MINOR, list(signed_log(np.asarray(minors), self._c))))
        return levels

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        if self._c is None:
            return super().tickStrings(values, scale, spacing)
        if self._decades and spacing == _MINOR:
            return ["" for _ in values]
        return [_label(float(y)) for y in signed_exp(np.asarray(values, dtype=float), self._c)]
