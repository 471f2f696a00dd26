"""Invertible preprocessing: clipping, forward filling, imputation and scaling.

The fitted parameters are part of the model: prototypes and forecasts are shown in clinical
units through :meth:`Preprocessor.inverse_transform`, and :meth:`Preprocessor.to_dict` stores
the parameters as plain JSON (numbers and strings) in the project file.

Order of operations in :meth:`Preprocessor.transform`:

1. clip observed values to the fitted quantile bounds (optional);
2. series only: carry each variable's last observed value forward within a patient, for at
   most ``ffill_limit`` steps;
3. fill what is still missing with the population median;
4. scale: ``(x - center) / scale``;
5. set padding steps to 0.

All statistics use observed values on real steps only: padding and unobserved cells never
enter them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import InputError, NotFittedError
from .dataset import Dataset

__all__ = ["Preprocessor", "SCALINGS"]

SCALINGS = ("zscore", "minmax", "robust", "none")
_IMPUTE = ("median",)
_FORMAT_VERSION = 1


def _observed(dataset: Dataset) -> np.ndarray:
    """Cells that were measured on real (non-padding) steps, with a finite value."""
    obs = np.asarray(dataset.mask, dtype=bool) & np.isfinite(dataset.values)
    if dataset.is_series:
        obs &= dataset.step_mask[:, :, None]
    return obs


def _json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _from_json_float(x, default: float) -> float:
    return default if x is None else float(x)


class Preprocessor:
    """Clip, forward-fill, impute and scale a :class:`Dataset`; invert the scaling later.

    Parameters
    ----------
    scaling : {"zscore", "minmax", "robust", "none"}
        ``zscore``: mean 0, standard deviation 1. ``minmax``: [0, 1] over the fitted range.
        ``robust``: median 0, interquartile range 1. ``none``: values unchanged.
    clip_quantiles : tuple of float (lo, hi) or None
        Clip observed values to these fitted quantiles (e.g. ``(0.01, 0.99)``) before anything
        else; None keeps values as they are. Clipping is not undone by ``inverse_transform``.
    ffill_limit : int or None
        Series: carry a value forward for at most this many steps (None: no limit, 0: never).
    impute : {"median"}
        What fills cells still missing after forward filling: the population median.

    Attributes
    ----------
    feature_names_ : list of str
    units_ : list of str
    center_, scale_ : ndarray of float64, shape (n_features,)
        ``scaled = (x - center_) / scale_``; ``scale_`` is never 0 (constant features get 1).
    median_ : ndarray of float64, shape (n_features,)
        Imputation value in original units (after clipping).
    clip_low_, clip_high_ : ndarray of float64, shape (n_features,)
        Clipping bounds; -inf/inf when not clipping.
    n_features_in_ : int

    Examples
    --------
    >>> pre = Preprocessor(scaling="zscore", ffill_limit=6).fit(train)   # doctest: +SKIP
    >>> X, mask = pre.transform(train)                                    # doctest: +SKIP
    >>> original = pre.inverse_transform(prototypes)                      # doctest: +SKIP
    """

    def __init__(self, scaling: str = "zscore", clip_quantiles: tuple[float, float] | None = None,
                 ffill_limit: int | None = None, impute: str = "median") -> None:
        self.scaling = scaling
        self.clip_quantiles = clip_quantiles
        self.ffill_limit = ffill_limit
        self.impute = impute

    # ---------------------------------------------------------------------------- checks
    def _validate_params(self) -> None:
        if self.scaling not in SCALINGS:
            raise InputError(f"scaling must be one of {', '.join(SCALINGS)}, got {self.scaling!r}")
        if self.impute not in _IMPUTE:
            raise InputError(f"impute must be 'median', got {self.impute!r}")
        if self.clip_quantiles is not None:
            try:
                lo, hi = (float(q) for q in self.clip_quantiles)
            except (TypeError, ValueError):
                raise InputError("clip_quantiles must be a pair (lo, hi) such as (0.01, 0.99)") from None
            if not 0.0 <= lo < hi <= 1.0:
                raise InputError(f"clip_quantiles must satisfy 0 <= lo < hi <= 1, got ({lo}, {hi})")
        if self.ffill_limit is not None and (int(self.ffill_limit) != self.ffill_limit
                                             or self.ffill_limit < 0):
            raise InputError(f"ffill_limit must be a whole number >= 0 or None, got {self.ffill_limit!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "center_"):
            raise NotFittedError("this Preprocessor is not fitted yet; call fit(dataset) first")

    def _columns(self, dataset: Dataset) -> np.ndarray:
        """Index of each dataset feature in the fitted parameters."""
        names = list(dataset.feature_names)
        if names == self.feature_names_:
            return np.arange(len(names))
        missing = [n for n in self.feature_names_ if n not in names]
        extra = [n for n in names if n not in self.feature_names_]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(map(repr, missing[:8]))}")
            if extra:
                parts.append(f"unexpected {', '.join(map(repr, extra[:8]))}")
            raise InputError(f"the data's features differ from the fitted ones ({'; '.join(parts)});"
                             " use data with the same columns", path=dataset.source or None)
        where = {n: i for i, n in enumerate(self.feature_names_)}
        return np.array([where[n] for n in names])

    # ---------------------------------------------------------------------------- fitting
    def fit(self, dataset: Dataset) -> "Preprocessor":
        """Learn clipping bounds, medians and scaling from observed values.

        Parameters
        ----------
        dataset : Dataset
            Table ``(n, D)`` or series ``(P, T, D)``; only cells with ``mask`` True on real
            steps are used.

        Returns
        -------
        self
        """
        self._validate_params()
        obs = _observed(dataset)
        d = dataset.n_features
        flat = dataset.values.reshape(-1, d)
        fobs = obs.reshape(-1, d)
        low = np.full(d, -np.inf)
        high = np.full(d, np.inf)
        center = np.zeros(d)
        scale = np.ones(d)
        median = np.zeros(d)
        for j in range(d):
            v = flat[fobs[:, j], j].astype(np.float64)
            if v.size == 0:
                continue
            if self.clip_quantiles is not None:
                low[j], high[j] = np.quantile(v, [float(q) for q in self.clip_quantiles])
                v = np.clip(v, low[j], high[j])
            median[j] = float(np.median(v))
            if self.scaling == "zscore":
                c, s = v.mean(), v.std()
            elif self.scaling == "minmax":
                c, s = v.min(), v.max() - v.min()
            elif self.scaling == "robust":
                q25, q75 = np.quantile(v, [0.25, 0.75])
                c, s = median[j], q75 - q25
            else:
                c, s = 0.0, 1.0
            center[j] = c
            # Constant (or nearly) features: keep them finite instead of dividing by zero.
            scale[j] = s if np.isfinite(s) and s > 1e-12 * max(1.0, abs(c)) else 1.0
        self.feature_names_ = list(dataset.feature_names)
        self.units_ = list(dataset.units) if dataset.units else [""] * d
        self.center_, self.scale_, self.median_ = center, scale, median
        self.clip_low_, self.clip_high_ = low, high
        self.n_features_in_ = d
        return self

    def _fill(self, dataset: Dataset, cols: np.ndarray):
        """Clipped values with gaps filled, in original units; plus bookkeeping masks."""
        obs = _observed(dataset)
        x = np.where(obs, dataset.values, np.nan).astype(np.float32)
        low, high = self.clip_low_[cols], self.clip_high_[cols]
        clipped = obs & ((x < low) | (x > high))
        x = np.clip(x, low.astype(np.float32), high.astype(np.float32))
        ffilled = np.zeros_like(obs)
        if dataset.is_series and self.ffill_limit != 0:
            n_steps = x.shape[1]
            t_idx = np.arange(n_steps, dtype=np.int32)[None, :, None]
            last = np.where(obs, t_idx, np.int32(-1))
            np.maximum.accumulate(last, axis=1, out=last)
            ffilled = (last >= 0) & ~obs
            if self.ffill_limit is not None:
                ffilled &= (t_idx - last) <= int(self.ffill_limit)
            carried = np.take_along_axis(x, np.maximum(last, 0), axis=1)
            x = np.where(ffilled, carried, x)
        real = (dataset.step_mask[:, :, None] if dataset.is_series
                else np.ones((x.shape[0], 1), dtype=bool))
        ffilled &= real
        imputed = ~obs & ~ffilled & real
        x = np.where(imputed, self.median_[cols].astype(np.float32), x)
        return x, obs, ffilled, imputed, clipped, real

    def transform(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Model-ready values and the observation mask.

        Parameters
        ----------
        dataset : Dataset
            Same features as at fit time (order may differ).

        Returns
        -------
        X : ndarray of float32, same shape as ``dataset.values``
            Scaled values without NaN; 0 on padding steps.
        mask : ndarray of bool, same shape
            True where the value was measured (False on imputed cells and padding).
        """
        self._check_fitted()
        cols = self._columns(dataset)
        x, obs, _, _, _, real = self._fill(dataset, cols)
        x = (x - self.center_[cols].astype(np.float32)) / self.scale_[cols].astype(np.float32)
        x = np.where(real, x, np.float32(0.0)).astype(np.float32)
        return x, obs

    def fit_transform(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """``fit(dataset)`` then ``transform(dataset)``."""
        return self.fit(dataset).transform(dataset)

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """Scaled values back in original units.

        Parameters
        ----------
        values : array_like, shape (..., n_features)
            Scaled values, e.g. decoded prototypes ``(n_nodes, D)``.

        Returns
        -------
        ndarray of float64, same shape
            ``values * scale_ + center_``. Clipping is not undone.
        """
        self._check_fitted()
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 0 or v.shape[-1] != self.n_features_in_:
            raise InputError(f"expected {self.n_features_in_} features in the last axis, got "
                             f"shape {v.shape}")
        return v * self.scale_ + self.center_

    # ---------------------------------------------------------------------------- storage
    def to_dict(self) -> dict:
        """Parameters as JSON-compatible data (lists of floats and strings; None for infinity).

        Returns
        -------
        dict
        """
        d = {
            "format": "dpsom-preprocessor",
            "version": _FORMAT_VERSION,
            "scaling": self.scaling,
            "clip_quantiles": (None if self.clip_quantiles is None
                               else [float(q) for q in self.clip_quantiles]),
            "ffill_limit": None if self.ffill_limit is None else int(self.ffill_limit),
            "impute": self.impute,
        }
        if hasattr(self, "center_"):
            d.update(
                feature_names=[str(n) for n in self.feature_names_],
                units=[str(u) for u in self.units_],
                center=[float(x) for x in self.center_],
                scale=[float(x) for x in self.scale_],
                median=[float(x) for x in self.median_],
                clip_low=[_json_float(x) for x in self.clip_low_],
                clip_high=[_json_float(x) for x in self.clip_high_],
            )
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessor":
        """Rebuild a Preprocessor saved with :meth:`to_dict`.

        Parameters
        ----------
        d : dict

        Returns
        -------
        Preprocessor
            Fitted when ``d`` holds fitted parameters.
        """
        if not isinstance(d, dict) or d.get("format") != "dpsom-preprocessor":
            raise InputError("not a saved Preprocessor (missing format 'dpsom-preprocessor')")
        if int(d.get("version", 0)) > _FORMAT_VERSION:
            raise InputError(f"Preprocessor saved by a newer version (format {d['version']}); "
                             "update the application")
        cq = d.get("clip_quantiles")
        pre = cls(scaling=d.get("scaling", "zscore"),
                  clip_quantiles=None if cq is None else (float(cq[0]), float(cq[1])),
                  ffill_limit=d.get("ffill_limit"), impute=d.get("impute", "median"))
        pre._validate_params()
        if "center" in d:
            names = [str(n) for n in d["feature_names"]]
            n = len(names)
            arrays = {k: np.asarray(d[k], dtype=np.float64) for k in ("center", "scale", "median")}
            if any(a.shape != (n,) for a in arrays.values()):
                raise InputError("saved Preprocessor is inconsistent: parameter lengths differ "
                                 "from the number of features")
            pre.feature_names_ = names
            pre.units_ = [str(u) for u in d.get("units", [""] * n)]
            pre.center_, pre.scale_, pre.median_ = arrays["center"], arrays["scale"], arrays["median"]
            pre.clip_low_ = np.array([_from_json_float(x, -np.inf) for x in d["clip_low"]])
            pre.clip_high_ = np.array([_from_json_float(x, np.inf) for x in d["clip_high"]])
            pre.n_features_in_ = n
        return pre

    # ---------------------------------------------------------------------------- report
    def report(self, dataset: Dataset) -> pd.DataFrame:
        """Per-variable summary of the data and of what transform changes.

        Parameters
        ----------
        dataset : Dataset

        Returns
        -------
        pandas.DataFrame
            One row per feature with columns ``name``, ``unit``, ``missing_share`` (share of
            real cells not measured), ``min``, ``max``, ``mean`` (of measured values, original
            units), ``ffill_share`` (cells filled by carrying forward), ``imputed_share``
            (cells filled with the median) and ``clipped`` (measured values clipped).
        """
        self._check_fitted()
        cols = self._columns(dataset)
        _, obs, ffilled, imputed, clipped, real = self._fill(dataset, cols)
        d = dataset.n_features
        flat = dataset.values.reshape(-1, d)
        fobs = obs.reshape(-1, d)
        n_real = max(1, int(np.broadcast_to(real, obs.shape).reshape(-1, d)[:, 0].sum()))
        rows = []
        for j, name in enumerate(dataset.feature_names):
            v = flat[fobs[:, j], j].astype(np.float64)
            rows.append({
                "name": name,
                "unit": dataset.units[j] if j < len(dataset.units) else "",
                "missing_share": 1.0 - v.size / n_real,
                "min": float(v.min()) if v.size else np.nan,
                "max": float(v.max()) if v.size else np.nan,
                "mean": float(v.mean()) if v.size else np.nan,
                "ffill_share": float(ffilled[..., j].sum()) / n_real,
                "imputed_share": float(imputed[..., j].sum()) / n_real,
                "clipped": int(clipped[..., j].sum()),
            })
        return pd.DataFrame(rows, columns=["name", "unit", "missing_share", "min", "max", "mean",
                                           "ffill_share", "imputed_share", "clipped"])

    def __repr__(self) -> str:
        return (f"Preprocessor(scaling={self.scaling!r}, clip_quantiles={self.clip_quantiles!r}, "
                f"ffill_limit={self.ffill_limit!r}, impute={self.impute!r})")
