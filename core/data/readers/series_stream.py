"""A time-series file read in groups of whole patients, each group a small dataset.

Mapping new patients onto a trained T-DPSOM needs each patient's series on the model's
features, and nothing across patients; reading the file whole would cost memory that grows
with the rows. The file is read twice, chunk by chunk:

1. the id and time columns only: the time step (when not given, the most common gap between
   consecutive times of a patient, as :func:`~core.data.timeseries.infer_time_step` takes
   it), every patient's first and last time, hence the steps to cut far-too-long stays to,
   and whether the ids are plain numbers. It also checks that each patient's rows come
   together (the usual export, sorted by patient);
2. everything: rows are gathered until a group of whole patients reaches the wanted size,
   then put on the time grid by :func:`~core.data.timeseries.build_series` with the step and
   the cut of the whole file, so that every patient gets the steps and values that reading
   the whole file gives it.

A file whose patients' rows are scattered is not read this way (:func:`iter_series_chunks`
returns None and says why): a patient could not be finished before the end of the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from ...errors import InputError
from .. import validation
from ..dataset import Dataset
from ..timeseries import (SeriesParts, TimeParser, _long_stay_cap, _long_stay_note, build_series, grid_step,
                          time_unit_from_name)
from .columns import _as_text, _DataColumn
from .infer import _split_unit
from .plan import _plan
from .read import FORMATS
from .sources import Progress, _check_path, _open_source, _Source
from .stream import _FeatureColumns, _decodes, _is_utf8
from .tables import _check_inf, _raise_text_in_numeric

#: Rows of whole patients gathered before they are put on the grid and handed on.
_BATCH_ROWS = 100_000
_NATURAL = re.compile(r"-?(0|[1-9]\d{0,17})")


class ScatteredPatients(InputError):
    """A patient's rows reappear after another patient's: the file cannot be read in groups."""


class _Scan:
    """What the first pass learns: per patient, in order of appearance, and over the file."""

    def __init__(self) -> None:
        self.first: list[np.ndarray] = []
        self.last: list[np.ndarray] = []
        self.latest: list[np.ndarray] = []
        self.gap_values = np.zeros(0)
        self.gap_counts = np.zeros(0, dtype=np.int64)
        self.natural = True
        self.n_records = 0
        self.n_dropped = 0
        self.first_dropped: int | None = None
        self.seen: set[str] = set()
        self.pids: list[np.ndarray] = []

    def add_gaps(self, gaps: np.ndarray) -> None:
        if gaps.size == 0:
            return
        # Rounded to 6 significant digits, exactly as infer_time_step does.
        exponent = np.floor(np.log10(gaps))
        rounded = np.round(gaps / 10.0**exponent, 5) * 10.0**exponent
        values, inverse = np.unique(np.concatenate([self.gap_values, rounded]), return_inverse=True)
        weights = np.concatenate([self.gap_counts, np.ones(rounded.size, dtype=np.int64)])
        self.gap_values = values
        self.gap_counts = np.bincount(inverse.ravel(), weights=weights, minlength=values.size).astype(np.int64)

    def step(self) -> float | None:
        if self.gap_counts.size == 0:
            return None
        best = self.gap_counts == self.gap_counts.max()
        return float(self.gap_values[best].min())


def _runs(ids: np.ndarray) -> np.ndarray:
    """Start of every run of equal ids (the first row included)."""
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.ones(ids.size, dtype=bool)
    change[1:] = ids[1:] != ids[:-1]
    return np.flatnonzero(change)


class SeriesChunks:
    """The patients of one time-series file as datasets holding the requested features.

    Made by :func:`iter_series_chunks`; iterate over it to read the file (each pass reads the
    file again). Every dataset holds whole patients, in file order, on the time grid of the
    whole file.

    Attributes
    ----------
    path : str
    feature_names : list of str
        The features of every dataset, in this order.
    id_col, time_col : str
    notes : list of str
        How the file is read, in plain words (format, time step, cut stays, rows left out).
    n_patients : int
    step : float
        The grid step, in the time unit.
    max_steps : int
        Steps kept per patient.
    """

    def __init__(self, source: _Source, plan, feature_names: list[str], notes: list[str], *,
                 time_step: float | None, aggregate: str, max_steps: int | None,
                 batch_rows: int | None, progress: Progress | None) -> None:
        self._source = source
        self._plan = plan
        self.path = source.name
        self.feature_names = list(feature_names)
        self.id_col, self.time_col = plan.id_col, plan.time_col
        self.notes = notes
        self._aggregate = aggregate
        self._batch_rows = batch_rows or _BATCH_ROWS
        self._progress = progress
        self._long = plan.fmt == "long"
        if not self._long:
            self._columns = _FeatureColumns(source, self.feature_names)
        scan = self._scan()
        if scan.n_records < 2:
            raise InputError("only one data row; a time series needs more rows", path=self.path)
        first = np.concatenate(scan.first) if scan.first else np.zeros(0)
        if first.size == 0:
            raise InputError("no row has both a patient id and a time", path=self.path)
        last = np.concatenate(scan.last)
        latest = np.concatenate(scan.latest)
        if scan.n_dropped:
            notes.append(f"{scan.n_dropped} row(s) without a patient id or a time were left out "
                         f"(first at line {source.locate(scan.first_dropped)})")
        self.n_patients = int(first.size)
        self._natural = scan.natural
        unit = {"clock": "h", "timestamp": "h"}.get(self._time_kind or "number", time_unit_from_name(self.time_col))
        self._unit = unit
        shown = f" {unit}" if unit else ""
        step = grid_step(time_step, scan.step() if time_step is None else None, unit, notes)
        self.step = step
        # The grid arithmetic of build_series, on each patient's last row.
        span = (last - first) / step
        validation.check_time_span(span, latest, step=step, column=self.time_col, path=self.path,
                                   locate=source.locate)
        rel = last - first
        rel /= step
        rel += 1e-9
        length = np.floor(rel).astype(np.int64) + 1
        # Stays far longer than the rest are kept in parts as long as the longest other stay,
        # decided on the whole file (see build_series), never on one group's rows.
        self.part_steps: int | None = None
        if max_steps is None:
            cap = _long_stay_cap(length)
            if cap is not None:
                self.part_steps = int(length[length <= cap].max())
                n_rows = int((-(-length // self.part_steps)).sum())
                pids = np.concatenate(scan.pids)
                notes.append(_long_stay_note(length, cap, self.part_steps, n_rows, self._patient_ids(pids)))
        elif (length > int(max_steps)).any():
            cut = int((length > int(max_steps)).sum())
            notes.append(f"{cut} patient(s) were longer than {int(max_steps)} steps and were cut to their "
                         f"first {int(max_steps)} steps")
        # Every group is cut where the whole file is (never by its own, smaller, statistics).
        self.max_steps = int(max_steps) if max_steps is not None else int(length.max())
        notes.append(f"Time grid: step {step:g}{shown}, aggregation {aggregate}, up to "
                     f"{int(min(length.max(), self.max_steps))} steps per patient")

    # ------------------------------------------------------------------ pass 1
    def _kept(self, frame: pd.DataFrame, start: int, parser: TimeParser
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Ids (text as written), times and records of the rows that have both; and all ids."""
        text, nonempty = _as_text(frame[self.id_col], strip=False)
        times = parser.parse(frame[self.time_col], start)
        ok = nonempty & ~np.isnan(times)
        rows = np.flatnonzero(ok)
        return text[rows], times[rows], rows + start, text[nonempty]

    def _scan(self) -> _Scan:
        source, plan = self._source, self._plan
        scan = _Scan()
        parser = TimeParser(plan.time_col, decimal=source.decimal, path=self.path, locate=source.locate)
        str_cols = {plan.id_col, plan.time_col}
        carry_ids = np.zeros(0, dtype=object)
        carry_t = np.zeros(0)
        carry_r = np.zeros(0, dtype=np.int64)
        start = 0
        for frame in source.frames(str_cols, None, columns=[plan.id_col, plan.time_col]):
            ids, times, records, all_ids = self._kept(frame, start, parser)
            if scan.natural and all_ids.size:
                levels = pd.unique(all_ids)
                scan.natural = bool(pd.Series(levels, dtype=object).str.fullmatch(_NATURAL.pattern).all())
            validation.check_times(times, kind=parser.kind or "number", column=plan.time_col, path=self.path,
                                   locate=lambda r, rec=records: source.locate(int(rec[r])))
            n = len(frame)
            dropped = n - ids.size
            if dropped and scan.first_dropped is None:
                kept = np.zeros(n, dtype=bool)
                kept[records - start] = True
                scan.first_dropped = start + int(np.flatnonzero(~kept)[0])
            scan.n_dropped += dropped
            start += n
            ids = np.concatenate([carry_ids, ids])
            times = np.concatenate([carry_t, times])
            records = np.concatenate([carry_r, records])
            heads = _runs(ids)
            if heads.size == 0:
                continue
            # Every patient but the last is complete: its rows cannot continue in the next chunk.
            cut = int(heads[-1])
            self._finish(scan, ids[:cut], times[:cut], records[:cut], heads[:-1])
            carry_ids, carry_t, carry_r = ids[cut:], times[cut:], records[cut:]
        self._finish(scan, carry_ids, carry_t, carry_r, _runs(carry_ids))
        scan.n_records = start
        self._time_kind = parser.kind
        return scan

    def _finish(self, scan: _Scan, ids, times, records, heads) -> None:
        """Record complete patients: ``heads`` are the starts of their runs of rows."""
        if heads.size == 0:
            return
        for pid in ids[heads]:
            if pid in scan.seen:
                raise ScatteredPatients(
                    f"the rows of patient {str(pid)!r} are not together (they reappear after other "
                    "patients' rows)", path=self.path)
            scan.seen.add(pid)
        scan.pids.append(ids[heads])
        code = np.repeat(np.arange(heads.size), np.diff(np.append(heads, ids.size)))
        order = np.lexsort((times, code))  # stable: file order breaks time ties
        t, c = times[order], code[order]
        ends = np.append(heads[1:], ids.size) - 1
        scan.first.append(t[heads])
        scan.last.append(t[ends])
        scan.latest.append(records[order][ends])
        gaps = np.diff(t)
        scan.add_gaps(gaps[(c[1:] == c[:-1]) & (gaps > 0)])

    # ------------------------------------------------------------------ pass 2
    def __iter__(self) -> Iterator[Dataset]:
        source, plan = self._source, self._plan
        parser = TimeParser(plan.time_col, decimal=source.decimal, path=self.path, locate=source.locate)
        str_cols = {plan.id_col, plan.time_col} | ({plan.var_col} if self._long else set())
        pending: list[tuple] = []
        n_pending = 0
        self.measured = np.zeros(len(self.feature_names), dtype=bool)
        start = 0
        for frame in source.frames(str_cols, self._progress):
            ids, times, records, _ = self._kept(frame, start, parser)
            local = records - start
            if self._long:
                part = self._long_values(frame, start, local)
            else:
                part = (self._columns.values(frame, start)[local],)
            start += len(frame)
            pending.append((ids, times, records) + part)
            n_pending += ids.size
            if n_pending < self._batch_rows:
                continue
            rows = _concat(pending)
            # Groups of about batch_rows rows, cut between patients; the last patient may go
            # on in the next chunk, so it waits.
            bounds = _runs(rows[0])[1:]  # where a patient ends and the next begins
            done = 0
            while rows[0].size - done >= self._batch_rows:
                later = bounds[bounds > done]
                if later.size == 0:
                    break
                big = later[later - done >= self._batch_rows]
                cut = int(big[0]) if big.size else int(later[-1])
                yield self._group(tuple(a[done:cut] for a in rows))
                done = cut
            rest = tuple(a[done:] for a in rows)
            pending, n_pending = [rest], rest[0].size
        if n_pending:
            rows = _concat(pending)
            if rows[0].size:
                yield self._group(rows)
        missing = [f for f, seen in zip(self.feature_names, self.measured) if not seen]
        if missing:
            raise InputError(f"the new data lacks the model's features {', '.join(missing[:6])}; "
                             "export them with the same column names", path=self.path)

    def _long_values(self, frame: pd.DataFrame, start: int, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Long format: the model-feature index (-1 for other variables) and value per kept row."""
        source, plan = self._source, self._plan
        val = _DataColumn(plan.value_col, decimal=source.decimal, precise=False)
        val.add(frame[plan.value_col], start)
        if val.first_text is not None:
            _raise_text_in_numeric(source, val)
        _check_inf(source, val)
        names, nonempty = _as_text(frame[plan.var_col])  # variable names stripped, as read_data does
        index = {name: j for j, name in enumerate(self.feature_names)}
        codes = np.fromiter((index.get(v, -1) if ok else -1 for v, ok in zip(names[local], nonempty[local])),
                            dtype=np.int32, count=local.size)
        return codes, val.values()[local]

    def _group(self, rows: tuple) -> Dataset:
        """Whole patients' rows on the grid of the whole file, with the model's features."""
        ids, times, records = rows[:3]
        heads = _runs(ids)
        code = np.repeat(np.arange(heads.size, dtype=np.int32), np.diff(np.append(heads, ids.size)))
        parts = SeriesParts(patient=code, patient_ids=self._patient_ids(ids[heads]), times=times, records=records,
                            time_kind=self._time_kind or "number")
        if self._long:
            parts.long_codes, parts.long_values = rows[3], rows[4]
            parts.long_names = list(self.feature_names)
        else:
            parts.wide = [(name, rows[3][:, j]) for j, name in enumerate(self.feature_names)]
        parts.units = {name: _split_unit(name.split("=")[0]) for name in self.feature_names}
        ds = build_series(parts, time_step=self.step, aggregate=self._aggregate,
                          max_steps=None if self.part_steps else self.max_steps, part_steps=self.part_steps,
                          origin="first", id_col=self.id_col, time_col=self.time_col, time_unit=self._unit,
                          source=self.path, path=self.path, locate=self._source.locate)
        # A feature that none of these patients has is dropped by the grid: put it back, empty.
        present = [self.feature_names.index(f) for f in ds.feature_names]
        self.measured[present] = True
        if len(present) != len(self.feature_names):
            values = np.full(ds.values.shape[:2] + (len(self.feature_names),), np.nan, dtype=np.float32)
            values[..., present] = ds.values
            ds.values, ds.mask = values, ~np.isnan(values)
            ds.feature_names = list(self.feature_names)
            ds.units = [parts.units[f] for f in self.feature_names]
        ds.warnings = []
        return ds


    def _patient_ids(self, pids: np.ndarray) -> np.ndarray:
        """Ids as read_data gives them: int64 when every id of the file is a plain whole number."""
        if self._natural:
            return np.asarray([int(v) for v in pids], dtype=np.int64)
        return np.asarray(pids, dtype=object).astype(str)


def _concat(pending: list[tuple]) -> tuple:
    return tuple(np.concatenate([p[i] for p in pending]) for i in range(len(pending[0])))


def iter_series_chunks(path, feature_names: Sequence[str], *, format: str = "auto",
                       id_col: str | None = None, time_col: str | None = None,
                       var_col: str | None = None, value_col: str | None = None,
                       labels: Sequence[str] | None = None, time_step: float | None = None,
                       aggregate: str = "last", max_steps: int | None = None,
                       batch_rows: int | None = None, progress: Progress | None = None,
                       ) -> SeriesChunks | None:
    """Read a long- or wide-format time-series file in groups of whole patients.

    Reads the id and time columns once (see the module notes) before returning.

    Parameters
    ----------
    path : str or Path
        A text (.csv .tsv .txt ...), Excel (.xlsx) or Parquet file.
    feature_names : sequence of str
        The features every dataset holds, in this order: variable names (long format),
        column names or ``"column=level"`` one-hot levels (wide format).
    format, id_col, time_col, var_col, value_col, labels, time_step, aggregate, max_steps
        As for :func:`read_data`; labels are not read.
    batch_rows : int, optional
        Rows gathered (whole patients, so a little more) before a dataset is built.
    progress : callable, optional
        Called with the fraction of the file read in the second pass.

    Returns
    -------
    SeriesChunks or None
        Datasets ``values`` ``(n_patients, n_steps, len(feature_names))`` with ``ids``,
        ``times`` and ``lengths``, in file order; None when the input is not a long- or
        wide-format series file (a table, a folder, PhysioNet 2012): read it with
        :func:`read_data`.

    Raises
    ------
    ScatteredPatients
        A patient's rows are not together in the file; read it with :func:`read_data`.
    InputError
        What :func:`read_data` refuses, naming the line; a requested feature that the file
        lacks (wide format before the first dataset, long format after the last).
    """
    if format not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    p = _check_path(path)
    if p.is_dir() or format in ("table", "physionet2012"):
        return None
    if p.stat().st_size == 0:
        raise InputError("the file is empty; export the table again with a header and data rows", path=str(p))
    source = _open_source(p)
    if [c.replace(" ", "") for c in source.names] == ["Time", "Parameter", "Value"]:
        return None
    if source.kind == "text" and _is_utf8(source.encoding) and not _decodes(p, source.encoding):
        source.encoding = "cp1252"
        source.warnings.append("The file is not UTF-8 throughout; read it as cp1252 (Windows Western European)")
    notes = list(source.warnings)
    plan = _plan(source, format, id_col=id_col, time_col=time_col, var_col=var_col, value_col=value_col,
                 features=None, labels=labels, warnings=notes)
    if plan.fmt not in ("long", "wide"):
        return None
    return SeriesChunks(source, plan, list(feature_names), notes, time_step=time_step, aggregate=aggregate,
                        max_steps=max_steps, batch_rows=batch_rows, progress=progress)
