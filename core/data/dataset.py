"""The one in-memory data type shared by tables and patient time series."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset"]


@dataclass
class Dataset:
    """Values, observation mask, identities and labels of a cohort.

    One type serves both shapes of clinical data:

    * a **table**: ``values`` is ``(n_rows, n_features)``, one sample per row;
    * a **time series**: ``values`` is ``(n_rows, n_steps, n_features)`` on a regular time
      grid, one row per patient padded at the end to the longest stay; a stay far longer than
      the others fills several consecutive rows (its parts, see ``starts``), so that nobody
      is padded to it.

    Attributes
    ----------
    values : ndarray of float32
        Raw values in the original (clinical) units; NaN where nothing was observed.
    mask : ndarray of bool, same shape as ``values``
        True where a value was actually measured (before any imputation).
    feature_names : list of str
        One name per feature column, in order.
    units : list of str
        Unit of each feature ("" when unknown).
    ids : ndarray or None
        Tables: optional row ids ``(n_rows,)``; series: patient ids ``(n_patients,)``.
    times : ndarray of float or None
        Series only: time of every step ``(n_patients, n_steps)``, NaN on padding.
    lengths : ndarray of int or None
        Series only: number of real steps per row ``(n_rows,)``.
    starts : ndarray of int64 or None
        Series only: the step of its patient's stay at which each row begins ``(n_rows,)``.
        0 for a whole stay or a stay's first part; a row with ``starts > 0`` continues the
        row before it (same patient, steps ``starts[i]:starts[i] + lengths[i]``). None when
        every row is one whole stay.
    labels : dict of str to ndarray
        Outcomes kept for overlays and evaluation, never trained on. Each array has shape
        ``values.shape[:-1]`` (per row, or per patient step); NaN or "" where unknown.
    id_col, time_col : str or None
        Names of the id and time columns in the source, for exports.
    time_unit : str
        Unit of ``times`` (e.g. "h").
    source : str
        Where the data came from (file name, "demo:icu", ...), for messages and the project.
    warnings : list of str
        Everything the reader changed or refused, in plain words; stored with the project.
    """

    values: np.ndarray
    mask: np.ndarray
    feature_names: list[str]
    units: list[str] = field(default_factory=list)
    ids: np.ndarray | None = None
    times: np.ndarray | None = None
    lengths: np.ndarray | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    id_col: str | None = None
    time_col: str | None = None
    time_unit: str = ""
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    starts: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.mask.shape != self.values.shape:
            raise ValueError(f"mask shape {self.mask.shape} differs from values shape {self.values.shape}")
        if self.values.ndim not in (2, 3):
            raise ValueError(f"values must be 2-D (table) or 3-D (series); got shape {self.values.shape}")
        if len(self.feature_names) != self.values.shape[-1]:
            raise ValueError(
                f"{len(self.feature_names)} feature names for {self.values.shape[-1]} feature columns"
            )
        if not self.units:
            self.units = [""] * self.n_features
        if self.is_series and self.lengths is None:
            self.lengths = np.full(self.values.shape[0], self.values.shape[1], dtype=np.int64)
        if self.starts is not None:
            if not self.is_series:
                raise ValueError("starts (parts of a stay) belong to time series only")
            self.starts = np.asarray(self.starts, dtype=np.int64)
            if self.starts.shape != (self.values.shape[0],) or (self.starts < 0).any():
                raise ValueError(f"starts must be {self.values.shape[0]} non-negative step numbers, "
                                 f"got shape {self.starts.shape}")

    @property
    def is_series(self) -> bool:
        """True for patient time series ``(patients, steps, features)``."""
        return self.values.ndim == 3

    @property
    def n_features(self) -> int:
        return int(self.values.shape[-1])

    @property
    def n_samples(self) -> int:
        """Rows of a table or of a series (one per patient, or per part of a stay kept in parts)."""
        return int(self.values.shape[0])

    @property
    def step_mask(self) -> np.ndarray:
        """Series: True for real (non-padding) steps ``(n_patients, n_steps)``; tables: all True ``(n,)``."""
        if not self.is_series:
            return np.ones(self.n_samples, dtype=bool)
        return np.arange(self.values.shape[1])[None, :] < self.lengths[:, None]

    @property
    def continues(self) -> np.ndarray:
        """Series: True where a row continues the stay of the row before it ``(n_rows,)``.

        A row continues its predecessor when it starts where that one ends and has the same
        patient id; a subset that leaves out a part therefore starts a new run, never a false
        join. Tables and series without parts: all False.
        """
        n = self.n_samples
        out = np.zeros(n, dtype=bool)
        if self.starts is None or n < 2:
            return out
        lengths = np.asarray(self.lengths, dtype=np.int64)
        out[1:] = (self.starts[1:] > 0) & (self.starts[1:] == self.starts[:-1] + lengths[:-1])
        if self.ids is not None:
            ids = np.asarray(self.ids)
            out[1:] &= ids[1:] == ids[:-1]
        return out

    @property
    def row_patient(self) -> np.ndarray:
        """Which patient (0-based, in order) every row belongs to ``(n_rows,)`` int64.

        The identity for tables and for series whose stays each fill one row.
        """
        return np.cumsum(~self.continues, dtype=np.int64) - 1

    @property
    def n_patients(self) -> int:
        """Patients of a series (a stay kept in several parts counts once); rows of a table."""
        return int(self.n_samples - self.continues.sum())

    def row_names(self) -> list[str]:
        """A name for every row: its id (or 1-based number), with "part k of n" for the parts
        of a stay kept in several rows, so that lists never show one id twice unexplained."""
        ids = self.ids if self.ids is not None else np.arange(1, self.n_samples + 1)
        names = [str(i) for i in ids]
        cont = self.continues
        if not cont.any():
            return names
        patient = np.cumsum(~cont) - 1
        first = np.flatnonzero(~cont)
        parts = np.bincount(patient)
        for row in np.flatnonzero(np.repeat(parts, parts) > 1):
            p = patient[row]
            names[row] = f"{names[row]} (part {row - first[p] + 1} of {parts[p]})"
        return names

    def row_name(self, row: int) -> str:
        """The name :meth:`row_names` gives one row, without naming all of them."""
        name = str(self.ids[row]) if self.ids is not None else str(row + 1)
        if self.starts is None:
            return name
        cont = self.continues
        first, last = row, row
        while first > 0 and cont[first]:
            first -= 1
        while last + 1 < cont.size and cont[last + 1]:
            last += 1
        return name if first == last else f"{name} (part {row - first + 1} of {last - first + 1})"

    @property
    def n_points(self) -> int:
        """Number of real rows: table rows, or real patient steps of a series."""
        return int(self.step_mask.sum())

    def subset(self, index) -> "Dataset":
        """Rows (tables) or patients (series) selected by an index array or boolean mask."""
        index = np.asarray(index)

        def take(a):
            return None if a is None else np.asarray(a)[index]

        return Dataset(
            values=self.values[index],
            mask=self.mask[index],
            feature_names=list(self.feature_names),
            units=list(self.units),
            ids=take(self.ids),
            times=take(self.times),
            lengths=take(self.lengths),
            labels={k: np.asarray(v)[index] for k, v in self.labels.items()},
            id_col=self.id_col,
            time_col=self.time_col,
            time_unit=self.time_unit,
            source=self.source,
            warnings=list(self.warnings),
            starts=take(self.starts),
        )
