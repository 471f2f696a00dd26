"""A table file read chunk by chunk into datasets with a given list of features.

Mapping new rows onto a trained map needs the model's features, in the model's order, and
nothing else; reading such a file whole would cost memory that grows with the rows. Here each
chunk of the file (about a million cells) becomes a small :class:`~core.data.dataset.Dataset`
and is dropped before the next one is parsed.

Every chunk is parsed by the same source as :func:`~.read.read_data` (same chunks, same
number and text rules), so a row gets the same values and id either way, and bad input is
refused with the same messages, naming the line.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..dataset import Dataset
from .columns import _DataColumn, _KeyColumn
from .infer import _split_unit
from .plan import _plan
from .read import FORMATS
from .sources import Progress, _check_path, _open_source, _Source, _TextSource
from .tables import _check_inf, _natural_ids, _raise_text_in_numeric


class TableChunks:
    """The chunks of one table file as datasets holding the requested features.

    Made by :func:`iter_table_chunks`; iterate over it to read the file (each pass reads the
    file again).

    Attributes
    ----------
    path : str
        The file.
    feature_names : list of str
        The features of every chunk, in this order.
    id_col : str or None
        The id column (given, or inferred from the names as :func:`read_data` does).
    notes : list of str
        How the file is read, in plain words (encoding, format, columns not used, ...); the
        same notes :func:`read_data` would put first in ``Dataset.warnings``.
    """

    def __init__(self, source: _Source, feature_names: list[str], id_col: str | None,
                 notes: list[str], chunk_rows: int | None, progress: Progress | None) -> None:
        self._source = source
        self.path = source.name
        self.feature_names = list(feature_names)
        self.id_col = id_col
        self.notes = notes
        self._chunk_rows = chunk_rows
        self._progress = progress
        self._columns = _FeatureColumns(source, self.feature_names)
        self._units = [_split_unit(f.split("=")[0]) for f in self.feature_names]

    def __iter__(self) -> Iterator[Dataset]:
        source = self._source
        start = 0
        # Ids are read as text (kept exactly as written); the rest as read_data reads features.
        frames = source.frames({self.id_col} if self.id_col else set(), self._progress)
        try:
            for frame in frames:
                for part in self._split(frame):
                    yield self._dataset(part, start)
                    start += len(part)
        except UnicodeDecodeError:
            # Only possible with cp1252, which leaves a few bytes undefined: UTF-8 was checked
            # before the first chunk.
            raise InputError("the text is not valid in any supported encoding; save it as UTF-8",
                             path=self.path) from None
        if start == 0:
            what = "has a header but no data rows" if source.has_header else "has no data rows"
            raise InputError(f"the file {what}; add at least one data row", path=self.path)

    def _split(self, frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
        # Cut after parsing, so that a cell is parsed exactly as read_data parses it.
        step = self._chunk_rows or max(1, len(frame))
        for i in range(0, len(frame), step):
            yield frame.iloc[i:i + step]

    def _dataset(self, frame: pd.DataFrame, start: int) -> Dataset:
        values = self._columns.values(frame, start)
        ids = None
        if self.id_col:
            key = _KeyColumn(self.id_col, exact=True)
            key.add(frame[self.id_col], start)
            ids = _natural_ids(key.finish(), key.codes.levels)
        return Dataset(values=values, mask=~np.isnan(values),
                       feature_names=list(self.feature_names), units=list(self._units), ids=ids,
                       id_col=self.id_col, source=self.path)


class _FeatureColumns:
    """The model's features in the columns of a file: numbers, or one-hot text levels.

    A feature is a column name, or ``"column=level"`` for the one-hot level of a text
    column, as :func:`read_data` names them; the values of a parsed chunk are read exactly
    as :func:`read_data` reads them.
    """

    def __init__(self, source: _Source, feature_names: list[str]) -> None:
        self._source = source
        self.feature_names = feature_names
        self._numeric: list[tuple[int, str]] = []
        self._onehot: list[tuple[int, str, str]] = []
        missing = []
        for j, f in enumerate(feature_names):
            if f in source.names:
                self._numeric.append((j, f))
            elif "=" in f and f.split("=", 1)[0] in source.names:
                column, level = f.split("=", 1)
                self._onehot.append((j, column, level))
            else:
                missing.append(f)
        if missing:
            raise InputError(f"the new data lacks the model's features {', '.join(missing[:6])}; "
                             "export them with the same column names", path=source.name)

    def values(self, frame: pd.DataFrame, start: int) -> np.ndarray:
        """``(len(frame), n_features)`` float32, NaN where empty; ``start``: first record."""
        source = self._source
        n = len(frame)
        values = np.empty((n, len(self.feature_names)), dtype=np.float32)  # (n, D)
        for j, f in self._numeric:
            col = _DataColumn(f, decimal=source.decimal, precise=False)
            col.add(frame[f], start)
            if col.first_text is not None:
                _raise_text_in_numeric(source, col)
            _check_inf(source, col)
            values[:, j] = col.values()
        for j, column, level in self._onehot:
            # The same codes read_data one-hot encodes (numbers in a text column as "1").
            col = _DataColumn(column, decimal=source.decimal, precise=False)
            col.add(frame[column], start)
            codes, levels = col.text_codes()
            x = (codes == levels.index(level)).astype(np.float32) if level in levels \
                else np.zeros(n, dtype=np.float32)
            x[codes < 0] = np.nan
            values[:, j] = x
        return values


def iter_table_chunks(path, feature_names: Sequence[str], *, format: str = "auto",
                      id_col: str | None = None, time_col: str | None = None,
                      var_col: str | None = None, value_col: str | None = None,
                      labels: Sequence[str] | None = None, chunk_rows: int | None = None,
                      progress: Progress | None = None) -> TableChunks | None:
    """Read a table file in chunks, each a :class:`Dataset` with the given features.

    Parameters
    ----------
    path : str or Path
        A text (.csv .tsv .txt ...), Excel (.xlsx, the first sheet) or Parquet file.
    feature_names : sequence of str
        The features every chunk holds, in this order: column names, or ``"column=level"``
        for the one-hot level of a text column (as :func:`read_data` names them). A level
        that never occurs is 0 in every row with a value.
    format, id_col, time_col, var_col, value_col, labels
        As for :func:`read_data`. They decide the id column and whether the file is a table;
        labels are not read.
    chunk_rows : int, optional
        At most this many rows per chunk. Default: the reader's own chunks (about a million
        cells).
    progress : callable, optional
        Called with the fraction of the file read.

    Returns
    -------
    TableChunks or None
        An iterable of datasets, ``values`` ``(n_chunk, len(feature_names))`` float32 with
        ``ids`` when there is an id column, in file order; None when the input cannot be read
        this way (a folder, or a file read as a time series): read it with
        :func:`read_data`. Within a chunk, ids are int64 when every id of the chunk is a whole
        number written plainly, else the text exactly as written.

    Raises
    ------
    InputError
        Before the first chunk: a missing file, an empty file, an unknown format, an unknown
        column, or a requested feature the file lacks. While iterating: text or an infinite
        value in a numeric feature (naming the line), a malformed line, or no data rows.

    Examples
    --------
    >>> chunks = iter_table_chunks("new.csv", ["hr", "sbp", "sex=F"])  # doctest: +SKIP
    >>> sum(ds.n_samples for ds in chunks)                             # doctest: +SKIP
    250000
    """
    if format not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    p = _check_path(path)
    if p.is_dir() or format not in ("auto", "table"):
        return None
    if p.stat().st_size == 0:
        raise InputError("the file is empty; export the table again with a header and data rows",
                         path=str(p))
    source = _open_source(p)
    if (isinstance(source, _TextSource) and _is_utf8(source.encoding)
            and not _decodes(p, source.encoding)):
        # read_data starts again as Windows text when a late line is not UTF-8; chunks already
        # handed on cannot be taken back, so decide before the first one.
        source.encoding = "cp1252"
        source.warnings.append("The file is not UTF-8 throughout; read it as cp1252 "
                               "(Windows Western European)")
    notes = list(source.warnings)
    plan = _plan(source, format, id_col=id_col, time_col=time_col, var_col=var_col,
                 value_col=value_col, features=None, labels=labels, warnings=notes)
    if plan.fmt != "table":
        return None
    return TableChunks(source, list(feature_names), plan.id_col, notes, chunk_rows, progress)


def _is_utf8(encoding: str | None) -> bool:
    return bool(encoding) and encoding.replace("-", "").replace("_", "").lower().startswith("utf8")


def _decodes(path: Path, encoding: str, block: int = 1 << 20) -> bool:
    """Whether the whole file decodes as ``encoding`` (read in blocks, nothing kept)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as fh:
            while data := fh.read(block):
                decoder.decode(data)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
