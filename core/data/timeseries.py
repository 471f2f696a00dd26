"""Patient time series: parse time columns and put observations on a regular grid.

Rows of a long-format file (id, time, variable, value) or a wide-format file (id, time, one
column per variable) become a :class:`~core.data.dataset.Dataset` of shape
``(n_rows, n_steps, n_features)``, one row per patient:

* step ``k`` of a patient summarises the interval ``[origin + k*step, origin + (k+1)*step)``,
  where ``origin`` is the patient's first row (or 0 for data already counted from admission,
  such as PhysioNet 2012);
* several observations of one variable in one step are combined with ``"last"`` (latest
  time, then latest in the file) or ``"mean"``;
* patients are padded at the end; ``lengths`` holds the real steps, ``times`` is NaN on
  padding and ``mask`` is True only where a value was measured;
* a stay far longer than the rest is not cut, and nobody is padded to it: it fills several
  consecutive rows (parts, with its id on each and ``starts`` saying where each begins) as
  long as the longest other stay, so memory follows the observed steps.

Times may be numbers (kept in their own unit), clock times ``"HH:MM"`` (hours may exceed 24,
as in "47:30") or timestamps (converted to hours since the patient's first row).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from . import validation
from .dataset import Dataset

__all__ = [
    "TimeParser",
    "infer_time_step",
    "build_series",
    "SeriesParts",
    "time_unit_from_name",
    "AGGREGATIONS",
    "FAR_LONGER",
]

AGGREGATIONS = ("last", "mean")
_CLOCK = re.compile(r"^(\d{1,4}):([0-5]\d)(?::([0-5]\d(?:\.\d*)?))?$")
#: Refuse grids needing more memory than this (values float32 + mask bool).
_MAX_GRID_BYTES = 6 * 1024**3
#: Without max_steps, stays longer than this many times the 99th-percentile stay are kept in
#: parts when padding the others to them would make the grid more than this many times the
#: observed steps.
FAR_LONGER = 4
#: Grids of at most this many patient steps keep one row per patient: they cost little memory.
_PADDING_FLOOR = 100_000


def time_unit_from_name(name: str) -> str:
    """Guess the unit of a numeric time column from its name ("hours" -> "h"), or "".

    Parameters
    ----------
    name : str
        Column name.
    """
    low = str(name).lower()
    for unit, words in (("min", ("minute", "min", "offset")), ("h", ("hour", "hr")),
                        ("d", ("day",)), ("s", ("second", "sec"))):
        if any(w in low for w in words):
            return unit
    return ""


class TimeParser:
    """Turn chunks of a time column into float64 numbers, enforcing one kind per column.

    Parameters
    ----------
    column : str
        Column name, for messages.
    decimal : str
        Decimal separator of the file ("." or ",").
    path : str, optional
        File name, for messages.
    locate : callable, optional
        Maps a 0-based record index to a 1-based line number.

    Attributes
    ----------
    kind : {"number", "clock", "timestamp"} or None
        How the times are written; fixed by the first chunk holding a time.
    """

    def __init__(self, column: str, *, decimal: str = ".", path: str | None = None,
                 locate: Callable[[int], int | None] | None = None) -> None:
        self.column = column
        self.decimal = decimal
        self.path = path
        self.locate = locate or (lambda _r: None)
        self.kind: str | None = None

    def _fail(self, message: str, record: int) -> InputError:
        return InputError(message, path=self.path, row=self.locate(record), column=self.column)

    def _set_kind(self, kind: str, record: int, example: str) -> None:
        if self.kind is None:
            self.kind = kind
        elif self.kind != kind:
            raise self._fail(
                f"mixed time formats: {example!r} is a {kind} but earlier times are "
                f"{self.kind}s; write all times the same way", record)

    def parse(self, chunk: pd.Series, start: int) -> np.ndarray:
        """Parse one chunk.

        Parameters
        ----------
        chunk : pandas.Series
            Raw cells (strings, numbers or datetimes).
        start : int
            Record index of the chunk's first row.

        Returns
        -------
        ndarray of float64, shape (len(chunk),)
            Numbers as written, hours for clock times, hours since 1970 for timestamps;
            NaN where the cell is empty.
        """
        n = len(chunk)
        if pd.api.types.is_datetime64_any_dtype(chunk):
            out = self._timestamps_to_hours(chunk)
            if np.isfinite(out).any():
                self._set_kind("timestamp", start, str(chunk.dropna().iloc[0]))
            return out
        if pd.api.types.is_bool_dtype(chunk):
            raise self._fail("true/false values are not times", start)
        if pd.api.types.is_numeric_dtype(chunk):
            out = chunk.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isfinite(out).any() or np.isinf(out).any():
                self._set_kind("number", start, str(chunk.dropna().iloc[0]))
            return out
        text = chunk.astype("str").str.strip()
        # Empty cells: NaN from the reader, or whitespace only.
        empty = chunk.isna().to_numpy() | (text == "").to_numpy()
        out = np.full(n, np.nan)
        if empty.all():
            return out
        values = text.to_numpy(dtype=object)
        numeric_text = text.str.replace(",", ".", regex=False) if self.decimal == "," else text
        numbers = pd.to_numeric(numeric_text, errors="coerce").to_numpy(dtype=np.float64)
        is_num = ~np.isnan(numbers) & ~empty
        out[is_num] = numbers[is_num]
        rest = ~is_num & ~empty
        if is_num.any():
            first = int(np.flatnonzero(is_num)[0])
            self._set_kind("number", start + first, str(values[first]))
        if not rest.any():
            return out
        rest_idx = np.flatnonzero(rest)
        rest_text = pd.Series(values[rest_idx], dtype=object)
        clock = rest_text.str.extract(_CLOCK.pattern)
        is_clock = clock[0].notna().to_numpy()
        if is_clock.any():
            i = int(rest_idx[np.flatnonzero(is_clock)[0]])
            self._set_kind("clock", start + i, str(values[i]))
            c = clock[is_clock]
            hours = (c[0].astype(float) + c[1].astype(float) / 60.0
                     + c[2].fillna("0").astype(float) / 3600.0)
            out[rest_idx[is_clock]] = hours.to_numpy()
        left = rest_idx[~is_clock]
        if left.size == 0:
            return out
        stamps = self._parse_timestamps(pd.Series(values[left], dtype=object))
        ok = ~np.isnan(stamps)
        if not ok.all():
            i = int(left[np.flatnonzero(~ok)[0]])
            raise self._fail(
                f"time {values[i]!r} not understood; write numbers, HH:MM or dates such as "
                "2024-01-31 08:00", start + i)
        i = int(left[0])
        self._set_kind("timestamp", start + i, str(values[i]))
        out[left] = stamps
        return out

    @staticmethod
    def _timestamps_to_hours(ts: pd.Series) -> np.ndarray:
        if getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize("UTC")
        hours = (ts - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(hours=1)
        return hours.to_numpy(dtype=np.float64, na_value=np.nan)

    def _parse_timestamps(self, text: pd.Series) -> np.ndarray:
        import warnings

        with warnings.catch_warnings():
            # pandas warns when it falls back to per-element parsing; the result is what we want.
            warnings.simplefilter("ignore")
            try:
                ts = pd.to_datetime(text, errors="coerce", utc=True)
            except (ValueError, TypeError, OverflowError):
                ts = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
            hours = self._timestamps_to_hours(ts)
            missing = np.isnan(hours)
            if missing.any():
                try:
                    again = pd.to_datetime(text[missing], errors="coerce", utc=True, format="mixed")
                    hours[missing] = self._timestamps_to_hours(again)
                except (ValueError, TypeError, OverflowError):
                    pass
        return hours


def infer_time_step(patient: np.ndarray, times: np.ndarray,
                    order: np.ndarray | None = None) -> float | None:
    """Most common positive gap between consecutive distinct times of the same patient.

    Parameters
    ----------
    patient : ndarray of int, shape (n,)
        Patient code per row.
    times : ndarray of float64, shape (n,)
        Time per row (finite).
    order : ndarray of int, optional
        ``np.lexsort((times, patient))`` when already computed.

    Returns
    -------
    float or None
        The step, or None when no patient has two distinct times.
    """
    if patient.size < 2:
        return None
    if order is None:
        order = np.lexsort((times, patient))
    p, t = patient[order], times[order]
    gaps = np.diff(t)
    ok = (p[1:] == p[:-1]) & (gaps > 0)
    if not ok.any():
        return None
    # Round to 6 significant digits so that float noise (minutes as fractions of an hour,
    # differences of large timestamps) does not split the mode.
    g = gaps[ok]
    exponent = np.floor(np.log10(g))
    rounded = np.round(g / 10.0**exponent, 5) * 10.0**exponent
    values, counts = np.unique(rounded, return_counts=True)
    best = counts == counts.max()
    return float(values[best].min())


@dataclass
class SeriesParts:
    """Everything a reader extracted from the rows of a time-series file.

    Attributes
    ----------
    patient : ndarray of int32, shape (n_rows,)
        Patient code per row (index into ``patient_ids``).
    patient_ids : ndarray, shape (n_patients,)
        Id of each patient code, in order of first appearance.
    times : ndarray of float64, shape (n_rows,)
        Parsed time per row (see :class:`TimeParser`); finite.
    records : ndarray of int64, shape (n_rows,), or None
        Record index of each row in the file, for messages; None when row ``i`` is record
        ``i`` (nothing was left out).
    time_kind : str
        ``TimeParser.kind``.
    wide : list of (str, ndarray float32 (n_rows,))
        Per-row feature columns (wide format), NaN where empty.
    long_codes, long_values : ndarray or None
        Long format: variable code per row (-1: no variable) and value per row (NaN: empty).
    long_names : list of str
        Name of each variable code.
    row_labels : dict of str to ndarray (n_rows,)
        Labels given per row: float64 (NaN unknown) or str ("" unknown).
    static_labels : dict of str to ndarray (n_patients,)
        Labels given per patient (broadcast over steps).
    static_features : dict of str to ndarray float32 (n_patients,)
        Features given per patient (broadcast over real steps, observed where not NaN).
    units : dict of str to str
        Unit per feature name.
    """

    patient: np.ndarray
    patient_ids: np.ndarray
    times: np.ndarray
    records: np.ndarray | None
    time_kind: str = "number"
    wide: list = field(default_factory=list)
    long_codes: np.ndarray | None = None
    long_values: np.ndarray | None = None
    long_names: list = field(default_factory=list)
    row_labels: dict = field(default_factory=dict)
    static_labels: dict = field(default_factory=dict)
    static_features: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)


def _reduce(flat: np.ndarray, order_time: np.ndarray, values: np.ndarray,
            how: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Combine values sharing a flat cell index.

    Returns the distinct cells, their combined values and the number of exact repeats
    (same cell and same time as the previous observation).
    """
    if flat.size == 0:
        return flat, values, 0
    order = np.lexsort((order_time, flat))  # stable: file order breaks time ties
    f = flat[order]
    ts = order_time[order]
    v = values[order]
    new = np.ones(f.size, dtype=bool)
    new[1:] = f[1:] != f[:-1]
    repeats = int((~new[1:] & (ts[1:] == ts[:-1])).sum())
    starts = np.flatnonzero(new)
    if how == "last":
        last = np.empty_like(starts)
        last[:-1] = starts[1:] - 1
        last[-1] = f.size - 1
        return f[starts], v[last], repeats
    sums = np.add.reduceat(v.astype(np.float64), starts)
    counts = np.diff(np.append(starts, f.size))
    return f[starts], (sums / counts).astype(np.float32), repeats


def _long_stay_cap(length: np.ndarray) -> int | None:
    """Steps beyond which a stay is far longer than the rest, or None when the grid is not mostly
    the padding of such stays.

    Every patient is padded to the longest stay, so one stay of 10,000 hours among a thousand
    of 12 would multiply the grid (and everything built from it: preprocessing, batches) by
    about 800. A stay counts as far longer than the rest beyond :data:`FAR_LONGER` times the
    length that 99% of the patients do not exceed; such stays are set apart only when padding
    to the longest one would need more than :data:`FAR_LONGER` times the observed steps and
    more than ``_PADDING_FLOOR`` patient steps, so a small or evenly spread cohort keeps one
    row per patient.

    Parameters
    ----------
    length : ndarray of int, shape (n_patients,)
        Grid steps of each patient.
    """
    n = int(length.size)
    if n < 2:
        return None
    longest = int(length.max())
    typical = max(1, int(np.quantile(length, 0.99, method="lower")))
    cap = FAR_LONGER * typical
    padded = n * longest
    if longest <= cap or padded <= _PADDING_FLOOR or padded <= FAR_LONGER * int(length.sum()):
        return None
    return cap


def _long_stay_note(length: np.ndarray, cap: int, n_steps: int, n_rows: int, ids: np.ndarray) -> str:
    """The warning about stays kept in parts: who, how long, what was done, how to cut instead."""
    long = np.flatnonzero(length > cap)
    longest = int(np.argmax(length))
    typical = cap // FAR_LONGER
    n_typical = int((length <= typical).sum())
    steps = int(length[longest])
    extra = n_rows - length.size + long.size
    ratio = length.size * steps / max(1, int(length.sum()))
    if long.size == 1:
        who = f"Patient {str(ids[longest])!r} has {steps:,} steps, far more than the rest"
        kept = f"Its stay is kept whole, as {extra:,} consecutive parts"
    else:
        who = (f"{long.size} patients are far longer than the rest; the longest, {str(ids[longest])!r}, "
               f"has {steps:,} steps")
        kept = f"Their stays are kept whole, as {extra:,} consecutive parts"
    return (f"{who} ({n_typical:,} of {length.size:,} patients have at most {typical:,}). "
            f"Padding every patient to {steps:,} steps would make the grid {ratio:.0f} times the "
            f"observed steps. {kept} of up to {n_steps:,} steps (rows with the same id; exports "
            f"list every step once, with its time). To cut long stays instead, pass "
            f"--max-time-steps N (max_steps), e.g. --max-time-steps {n_steps} keeps the first "
            f"{n_steps} steps of each stay")


def _ffill_within(grid: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along the rows of a (R, T) array, across row ends within a group.

    ``group_start`` ``(R,)`` is the flat index (row * T) of the first cell of each row's group:
    a patient's parts are consecutive rows, and a value carries over from one part to the next
    but never into another patient.
    """
    flat = grid.ravel()
    idx = np.where(np.isnan(flat), -1, np.arange(flat.size))
    np.maximum.accumulate(idx, out=idx)
    out = flat[np.maximum(idx, 0)].reshape(grid.shape)
    out[idx.reshape(grid.shape) < group_start[:, None]] = np.nan
    return out


def _names(items: Sequence, limit: int = 8) -> str:
    return validation._list_names([str(i) for i in items], limit)


def grid_step(time_step: float | None, inferred: float | None, time_unit: str, notes: list[str]) -> float:
    """The time grid's step: ``time_step`` checked, or else ``inferred`` from the data (1 when no
    patient has two distinct times: ``inferred`` None), with a note in ``notes`` saying which. A
    reader that sees the file in groups infers from all of it and must say the same as one that
    reads it whole."""
    if time_step is not None:
        step = float(time_step)
        if not np.isfinite(step) or step <= 0:
            raise InputError(f"time step must be a positive number, got {time_step!r}")
        return step
    step = inferred
    if step is None:
        notes.append("No patient has two distinct times; using a time step of 1")
        return 1.0
    unit = f" {time_unit}" if time_unit else ""
    notes.append(f"Time step inferred as {step:g}{unit} (the most common gap between consecutive times of a "
                 "patient); pass time_step to change it")
    return float(step)


def build_series(parts: SeriesParts, *, time_step: float | None = None, aggregate: str = "last",
                 max_steps: int | None = None, origin: str = "first", id_col: str | None = None,
                 time_col: str | None = None, time_unit: str = "", source: str = "",
                 path: str | None = None, locate: Callable[[int], int | None] | None = None,
                 warnings: list[str] | None = None, part_steps: int | None = None) -> Dataset:
    """Put parsed rows on a regular time grid and return the series :class:`Dataset`.

    Parameters
    ----------
    parts : SeriesParts
        Rows as parsed by a reader.
    time_step : float, optional
        Grid step in time units (hours for clock times and timestamps). Default: the most
        common positive gap between consecutive times within patients.
    aggregate : {"last", "mean"}
        How several observations of a variable within one step are combined.
    max_steps : int, optional
        Keep only the first ``max_steps`` grid steps of each patient. Default: every step. When
        a few patients are far longer than the rest and padding everyone to them would fill
        the grid mostly with padding (see :data:`FAR_LONGER`), each of their stays is kept
        whole in several consecutive rows (parts) as long as the longest other stay, so that
        memory follows the observed steps; a warning names them.
    origin : {"first", "zero"}
        Step 0 starts at each patient's first row, or at time 0 (times since admission).
    id_col, time_col, time_unit, source : str
        Copied into the Dataset.
    path : str, optional
        File name for messages.
    locate : callable, optional
        Record index -> line number, for messages.
    warnings : list of str, optional
        Earlier warnings; the grid's own are appended.
    part_steps : int, optional
        Without ``max_steps``: keep stays longer than this in parts of this many steps, instead
        of deciding from these rows alone which stays are far longer than the rest. A file read
        in groups of patients passes the whole file's decision, so every group splits a stay
        where reading the whole file would.

    Returns
    -------
    Dataset
        ``values`` (n_rows, n_steps, n_features) float32, ``mask``, ``times``
        (n_rows, n_steps) with NaN on padding, ``lengths``, per-step ``labels``; ``ids``
        per row. ``n_rows`` is the number of patients plus the extra parts of stays kept in
        parts, whose rows have ``starts`` (see :class:`Dataset`).

    Raises
    ------
    InputError
        Bad times, an absurd or oversized grid, or no usable observation.
    """
    warnings = list(warnings or [])
    locate = locate or (lambda _r: None)
    if aggregate not in AGGREGATIONS:
        raise InputError(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {aggregate!r}")
    if max_steps is not None and int(max_steps) < 1:
        raise InputError(f"max_steps must be at least 1, got {max_steps}")
    # int32 codes and in-place arithmetic below keep peak memory low on large files.
    pc = np.asarray(parts.patient, dtype=np.int32)
    t = np.asarray(parts.times, dtype=np.float64)
    n_pat = len(parts.patient_ids)
    if pc.size == 0 or n_pat == 0:
        raise InputError("no rows with both a patient id and a time", path=path)
    tcol = time_col or "time"
    validation.check_times(t, kind=parts.time_kind, column=tcol, path=path, locate=locate)

    # File order vs time order, per patient.
    n_back, n_back_pat = validation.count_backwards(pc, t)
    if n_back:
        warnings.append(f"{n_back} row(s) of {n_back_pat} patient(s) had a time earlier than the "
                        "row before them; rows were sorted by time within each patient")

    first_t = np.full(n_pat, np.inf)
    np.minimum.at(first_t, pc, t)
    last_t = np.full(n_pat, -np.inf)
    np.maximum.at(last_t, pc, t)
    if origin == "first":
        origin_t = first_t
    else:
        origin_t = np.zeros(n_pat)

    order_t = np.lexsort((t, pc))
    inferred = infer_time_step(pc, t, order_t) if time_step is None else None
    step = grid_step(time_step, inferred, time_unit, warnings)

    span = (last_t - origin_t) / step
    latest = np.full(n_pat, -1, dtype=np.int64)
    # record of each patient's latest row, for the message about absurd spans
    latest[pc[order_t]] = order_t if parts.records is None else parts.records[order_t]
    del order_t
    validation.check_time_span(span, latest, step=step, column=tcol, path=path, locate=locate)

    # grid step of every row: floor((t - origin) / step), with a little slack for float noise
    rel = origin_t[pc]
    np.subtract(t, rel, out=rel)
    rel /= step
    rel += 1e-9
    np.floor(rel, out=rel)
    k = rel.astype(np.int32)
    del rel
    length = np.zeros(n_pat, dtype=np.int64)
    np.maximum.at(length, pc, k.astype(np.int64) + 1)
    far_cap = None
    if max_steps is None and part_steps is not None:
        n_steps = int(min(int(length.max()), int(part_steps)))
    elif max_steps is None:
        far_cap = _long_stay_cap(length)
        # Stays far longer than the rest fill several rows, each as long as the longest other
        # stay: the grid is what it would be without them, plus their own steps.
        n_steps = int(length.max()) if far_cap is None else int(length[length <= far_cap].max())
    else:
        cut = length > int(max_steps)
        if cut.any():
            warnings.append(f"{int(cut.sum())} patient(s) were longer than {int(max_steps)} steps "
                            f"and were cut to their first {int(max_steps)} steps")
        length = np.minimum(length, int(max_steps))
        n_steps = int(length.max())
    n_parts = -(-length // n_steps)  # ceil: rows of each patient
    n_rows = int(n_parts.sum())
    row_first = np.zeros(n_pat, dtype=np.int64)  # first row of each patient
    np.cumsum(n_parts[:-1], out=row_first[1:])
    row_patient = np.repeat(np.arange(n_pat), n_parts)
    starts = (np.arange(n_rows) - row_first[row_patient]) * n_steps
    row_length = np.minimum(n_steps, length[row_patient] - starts)
    if far_cap is not None:
        warnings.append(_long_stay_note(length, far_cap, n_steps, n_rows, parts.patient_ids))

    # Feature list: wide columns, long variables, static features.
    names: list[str] = [name for name, _ in parts.wide]
    long_names = list(parts.long_names)
    names += long_names
    names += list(parts.static_features)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"feature name(s) {_names(dup)} appear twice; rename one of them",
                         path=path)
    n_var = len(names)
    if n_var == 0:
        raise InputError("no feature to put on the time grid; choose features with --features",
                         path=path)
    grid_bytes = n_rows * n_steps * n_var * 5
    if grid_bytes > _MAX_GRID_BYTES:
        rows = f"{n_pat} patients" if n_rows == n_pat else f"{n_rows} rows (parts of {n_pat} patients)"
        raise InputError(
            f"the time grid would hold {rows} x {n_steps} steps x {n_var} variables "
            f"({grid_bytes / 1024**3:.1f} GiB); pass a larger time step or max_steps", path=path)

    values = np.full(n_rows * n_steps * n_var, np.nan, dtype=np.float32)
    inside = k < length[pc]
    n_outside = n_combined = n_repeats = 0

    def place(rows: np.ndarray, var, x: np.ndarray) -> None:
        nonlocal n_outside, n_combined, n_repeats
        keep = inside[rows]
        n_outside += int((~keep).sum())
        rows, x = rows[keep], x[keep]
        if not np.isscalar(var):
            var = var[keep]
        # a patient's parts are consecutive rows of n_steps, so step k of a patient whose
        # first row is r lies at cell r * n_steps + k
        flat = row_first[pc[rows]]
        flat *= n_steps
        flat += k[rows]
        flat *= n_var
        flat += var
        cells, combined, repeats = _reduce(flat, t[rows], x, aggregate)
        n_combined += int(flat.size - cells.size)
        n_repeats += repeats
        values[cells] = combined

    for j, (_, col) in enumerate(parts.wide):
        col = np.asarray(col, dtype=np.float32)
        rows = np.flatnonzero(~np.isnan(col))
        place(rows, j, col[rows])
    if parts.long_codes is not None and long_names:
        codes = np.asarray(parts.long_codes)
        x = np.asarray(parts.long_values, dtype=np.float32)
        # Variables in blocks of about 2 million observations bound the sorting memory.
        counts = np.bincount(codes[codes >= 0], minlength=len(long_names))
        start = 0
        while start < len(long_names):
            stop = start + 1
            while stop < len(long_names) and counts[start:stop + 1].sum() <= 2_000_000:
                stop += 1
            rows = np.flatnonzero((codes >= start) & (codes < stop) & ~np.isnan(x))
            place(rows, codes[rows].astype(np.int64) + len(parts.wide), x[rows])
            start = stop
    values = values.reshape(n_rows, n_steps, n_var)
    real = np.arange(n_steps)[None, :] < row_length[:, None]
    for j, (name, per_patient) in enumerate(parts.static_features.items()):
        col = len(parts.wide) + len(long_names) + j
        v = np.asarray(per_patient, dtype=np.float32)
        values[:, :, col] = np.where(real, v[row_patient][:, None], np.nan)

    unit = f" {time_unit}" if time_unit else ""
    per = "patient" if n_rows == n_pat else "row (longer stays in consecutive parts)"
    warnings.append(f"Time grid: step {step:g}{unit}, aggregation {aggregate}, up to {n_steps} "
                    f"steps per {per}")
    if n_outside:
        warnings.append(f"{n_outside} observation(s) after step {int(max_steps)} of their patient "
                        "were left out (max_steps)")
    if n_repeats:
        warnings.append(f"{n_repeats} observation(s) repeat the patient, time and variable of "
                        f"another row (duplicates); they were combined ({aggregate})")
    if n_combined > n_repeats:
        warnings.append(f"{n_combined - n_repeats} observation(s) fell in a grid step that already "
                        f"had a value of the same variable and were combined ({aggregate})")
    mask = ~np.isnan(values)

    unused = validation.never_measured(mask)
    if unused.size:
        warnings.append(f"Dropped {unused.size} variable(s) never measured: "
                        f"{_names([names[i] for i in unused])}")
        keep = np.setdiff1d(np.arange(n_var), unused)
        values, mask = values[:, :, keep], mask[:, :, keep]
        names = [names[i] for i in keep]
    if not names:
        raise InputError("no variable has a single measured value", path=path)

    const = validation.constant_columns(values, mask, names)
    if const:
        warnings.append(f"Constant variable(s) (one value throughout): {_names(const)}")
    per_patient = np.bincount(row_patient, weights=mask.reshape(n_rows, -1).sum(axis=1),
                              minlength=n_pat).astype(np.int64)
    single = validation.single_observation_patients(per_patient)
    if single.size:
        warnings.append(f"{single.size} patient(s) have a single observation, e.g. "
                        f"{_names([parts.patient_ids[i] for i in single[:5]], 5)}")
    empty = np.flatnonzero(per_patient == 0)
    if empty.size:
        warnings.append(f"{empty.size} patient(s) have no measured value at all, e.g. "
                        f"{_names([parts.patient_ids[i] for i in empty[:5]], 5)}")

    # Timestamps are reported relative to each patient's first row; numbers as written.
    shown_origin = np.zeros(n_pat) if parts.time_kind == "timestamp" else origin_t
    times = np.where(real, shown_origin[row_patient, None]
                     + (starts[:, None] + np.arange(n_steps)[None, :]) * step, np.nan)
    labels = {}
    for name, per_row in parts.row_labels.items():
        labels[name] = _grid_label(per_row, pc, k, t, inside, row_first, n_parts, n_steps, real)
    for name, per_pat in parts.static_labels.items():
        per_pat = np.asarray(per_pat)[row_patient]
        if per_pat.dtype.kind in "OUS":
            labels[name] = np.where(real, per_pat.astype(str)[:, None], "")
        else:
            labels[name] = np.where(real, per_pat.astype(np.float64)[:, None], np.nan)

    units = [parts.units.get(n, "") for n in names]
    return Dataset(values=values, mask=mask, feature_names=names, units=units,
                   ids=np.asarray(parts.patient_ids)[row_patient], times=times, lengths=row_length,
                   labels=labels, id_col=id_col, time_col=time_col, time_unit=time_unit,
                   source=source, warnings=warnings, starts=starts if n_rows > n_pat else None)


def _grid_label(per_row: np.ndarray, pc: np.ndarray, k: np.ndarray, t: np.ndarray,
                inside: np.ndarray, row_first: np.ndarray, n_parts: np.ndarray, n_steps: int,
                real: np.ndarray) -> np.ndarray:
    """Per-step label: last value in each step, carried forward through the stay (across its
    parts); static labels fill the stay."""
    per_row = np.asarray(per_row)
    text = per_row.dtype.kind in "OUS"
    if text:
        codes, levels = pd.factorize(pd.Series(per_row.astype(str)).replace("", np.nan))
        x = codes.astype(np.float64)
        x[codes < 0] = np.nan
    else:
        x = per_row.astype(np.float64)
    rows = np.flatnonzero(inside & ~np.isnan(x))
    n_rows = int(n_parts.sum())
    grid = np.full(n_rows * n_steps, np.nan)
    flat = row_first[pc[rows]] * n_steps + k[rows]
    cells, combined, _ = _reduce(flat, t[rows], x[rows], "last")
    grid[cells] = combined
    grid = grid.reshape(n_rows, n_steps)
    lo = np.minimum.reduceat(np.nanmin(np.where(np.isnan(grid), np.inf, grid), axis=1), row_first)
    hi = np.maximum.reduceat(np.nanmax(np.where(np.isnan(grid), -np.inf, grid), axis=1), row_first)
    static = bool(np.all((lo == hi) | ~np.isfinite(lo)))
    row_patient = np.repeat(np.arange(n_parts.size), n_parts)
    grid = _ffill_within(grid, (row_first * n_steps)[row_patient])
    if static:
        # backwards is forwards on the reversed grid, where a patient's group starts at its end
        group_end = (row_first + n_parts) * n_steps - 1
        grid = _ffill_within(grid[::-1, ::-1], (grid.size - 1 - group_end)[row_patient][::-1])[::-1, ::-1]
    grid[~real] = np.nan
    if not text:
        return grid
    out = np.full(grid.shape, "", dtype=object)
    ok = ~np.isnan(grid)
    out[ok] = np.asarray(levels, dtype=object)[grid[ok].astype(np.int64)]
    return out.astype(str)
