"""Sources: one object per input file (text, Excel, Parquet) yielding pandas chunks in order."""

from __future__ import annotations

import csv
import os
import re
import warnings as _warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from ...errors import InputError
from .sniff import _clean_names, _has_header, _sniff_text

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".dat")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
_EXTRA_NA = ["?", "na", "none", "missing", "-", "--"]
_CHUNK_CELLS = 1_000_000

Progress = Callable[[float], object]


class _Source:
    """A tabular file opened for chunked reading."""

    kind = "text"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self.warnings: list[str] = []
        self.names: list[str] = []
        self.encoding: str | None = None
        self.delimiter: str | None = None
        self.decimal = "."
        self.has_header = True
        self.trailing_names: list[str] = []

    def frames(self, str_columns: set[str], progress: Progress | None,
               columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The data rows in chunks, in file order; ``columns``: parse at least these (a
        source may hand on more), default all."""
        raise NotImplementedError

    def preview(self, nrows: int) -> pd.DataFrame:
        raise NotImplementedError

    def locate(self, record: int) -> int | None:
        """1-based line (or sheet row) of a 0-based data record."""
        return record + (2 if self.has_header else 1)

    def estimate_rows(self) -> int:
        raise NotImplementedError


class _TextSource(_Source):
    kind = "text"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        fmt = _sniff_text(path)
        self.fmt = fmt
        self.encoding, self.delimiter, self.decimal = fmt.encoding, fmt.delimiter, fmt.decimal
        self.has_header, self.names = fmt.has_header, fmt.names
        self.warnings = list(fmt.warnings)
        # Header ending with a delimiter: the last (unnamed) column is expected to be empty.
        if fmt.trailing_delimiter and fmt.has_header and not fmt.sample_rows[0][-1].strip():
            self.trailing_names = [self.names[-1]]
        elif fmt.trailing_delimiter:
            # pandas drops empty fields beyond the header silently; say so.
            self.warnings.append("Lines end with a delimiter (an extra empty field); it was "
                                 "ignored")

    def _kwargs(self, str_columns: set[str]) -> dict:
        return dict(sep=self.delimiter, decimal=self.decimal, encoding=self.encoding,
                    header=0 if self.has_header else None, names=self.names, index_col=False,
                    dtype={c: "str" for c in str_columns}, na_values=_EXTRA_NA,
                    keep_default_na=True, skip_blank_lines=True, quotechar='"',
                    encoding_errors="strict", engine="c", on_bad_lines="error")

    def preview(self, nrows: int) -> pd.DataFrame:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            try:
                return pd.read_csv(self.path, nrows=nrows, **self._kwargs(set()))
            except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
                raise self._map_error(exc) from None

    def frames(self, str_columns, progress, columns=None):
        size = max(1, self.path.stat().st_size)
        rows = max(1000, _CHUNK_CELLS // max(1, len(self.names)))
        extra_fields = False
        kwargs = self._kwargs(str_columns)
        if columns is not None:
            kwargs["usecols"] = list(columns)
        with open(self.path, "rb") as fh:
            try:
                reader = pd.read_csv(fh, chunksize=rows, **kwargs)
                while True:
                    # pandas only warns when a line has more fields than the header; catch
                    # that around the parsing itself, not across the yield.
                    with _warnings.catch_warnings(record=True) as caught:
                        _warnings.simplefilter("always", pd.errors.ParserWarning)
                        chunk = next(reader, None)
                    extra_fields |= any(issubclass(w.category, pd.errors.ParserWarning)
                                        for w in caught)
                    if chunk is None:
                        break
                    if progress is not None:
                        progress(min(fh.tell() / size, 1.0))
                    yield chunk
            except pd.errors.EmptyDataError:
                return
            except (pd.errors.ParserError, ValueError) as exc:
                if isinstance(exc, UnicodeDecodeError):
                    raise
                raise self._map_error(exc) from None
        if extra_fields:
            self._check_extra_fields()

    def _map_error(self, exc: Exception) -> InputError:
        msg = str(exc)
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if m:
            return InputError(f"this line has {m.group(3)} fields but earlier lines have "
                              f"{m.group(1)}; check the delimiter, or quote fields that contain it",
                              path=self.name, row=int(m.group(2)))
        m = re.search(r"EOF inside string starting at row (\d+)", msg)
        if m:
            return InputError("a quote (\") opened here is never closed; fix the quoting",
                              path=self.name, row=int(m.group(1)) + 1)
        if isinstance(exc, UnicodeDecodeError):
            return InputError(f"cannot decode the text as {self.encoding}; save it as UTF-8",
                              path=self.name)
        first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
        return InputError(f"cannot parse the file ({first}); save it again as a plain CSV",
                          path=self.name)

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (first line, fields) of every non-blank record, the header included."""
        with open(self.path, encoding=self.encoding, errors="replace", newline="") as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            prev = 0
            try:
                for row in reader:
                    start, prev = prev + 1, reader.line_num
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue
                    yield start, row
            except csv.Error:
                return

    def locate(self, record: int) -> int | None:
        skip = 1 if self.has_header else 0
        for i, (line, _) in enumerate(self._records()):
            if i - skip == record:
                return line
        return None

    def _check_extra_fields(self) -> None:
        width = len(self.names)
        for line, row in self._records():
            if len(row) > width and any(c.strip() for c in row[width:]):
                raise InputError(
                    f"this line has {len(row)} fields but the header has {width}; check the "
                    "delimiter, or quote fields that contain it", path=self.name, row=line)
        self.warnings.append("Lines end with a delimiter (an extra empty field); it was ignored")

    def estimate_rows(self) -> int:
        size = self.path.stat().st_size
        return max(0, int(round(size / self.fmt.avg_line_bytes)) - (1 if self.has_header else 0))


class _ExcelSource(_Source):
    kind = "excel"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            book = pd.ExcelFile(path, engine="openpyxl")
            sheets = book.sheet_names
            head = pd.read_excel(book, sheet_name=sheets[0], header=None, nrows=50, dtype=object)
        except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
            raise InputError(f"cannot open the workbook ({type(exc).__name__}); save it again "
                             "as .xlsx or CSV", path=self.name) from None
        finally:
            if "book" in locals():
                book.close()
        self.sheet = sheets[0]
        if len(sheets) > 1:
            self.warnings.append(f"Read the first sheet {self.sheet!r} of {len(sheets)}")
        if head.empty:
            raise InputError("the first sheet is empty", path=self.name)
        rows = [["" if pd.isna(v) else str(v) for v in r] for r in head.itertuples(index=False)]
        self.has_header = _has_header(rows)
        if self.has_header:
            self.names = _clean_names(rows[0], self.warnings)
        else:
            self.names = [f"column{i + 1}" for i in range(len(rows[0]))]
            self.warnings.append(f"No header row found; columns named column1..column{len(rows[0])}")

    def _read(self, nrows: int | None) -> pd.DataFrame:
        try:
            df = pd.read_excel(self.path, sheet_name=self.sheet, header=None,
                               skiprows=1 if self.has_header else 0, nrows=nrows, dtype=object,
                               engine="openpyxl")
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise InputError(f"cannot read the workbook ({type(exc).__name__})",
                             path=self.name) from None
        df = df.reindex(columns=range(len(self.names)))
        df.columns = self.names
        return df.infer_objects()

    def preview(self, nrows):
        return self._read(nrows)

    def frames(self, str_columns, progress, columns=None):
        """The sheet's rows in chunks, as ``pd.read_excel`` reads them, never the whole sheet.

        The workbook is read row by row (openpyxl's read-only mode); each chunk of rows goes
        through the parser ``read_excel`` uses, with its settings, so every cell becomes what
        reading the whole sheet makes of it. Empty rows are kept where a later row has data
        and dropped at the end of the sheet, as ``read_excel`` does.
        """
        from openpyxl import load_workbook
        from pandas.io.parsers import TextParser

        width = len(self.names)
        rows = max(1000, _CHUNK_CELLS // max(1, width))
        total = max(1, self.estimate_rows())

        def parse(block: list) -> pd.DataFrame:
            df = TextParser(block, header=None, dtype=object, skip_blank_lines=False).read()
            df = df.reindex(columns=range(width))
            df.columns = self.names
            return df.infer_objects()

        try:
            book = load_workbook(self.path, read_only=True, data_only=True, keep_links=False)
        except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
            raise InputError(f"cannot read the workbook ({type(exc).__name__})", path=self.name) from None
        try:
            sheet = book[self.sheet]
            sheet.reset_dimensions()  # declared sizes can be wrong; read what is there
            block: list[list] = []
            empty = 0  # empty rows held back until a row with data follows
            done = 0
            try:
                for number, row in enumerate(sheet.rows):
                    if number == 0 and self.has_header:
                        continue
                    cells = [_excel_cell(c) for c in row]
                    while cells and cells[-1] == "":
                        cells.pop()
                    if not cells:
                        empty += 1
                        continue
                    block.extend([[""] * width for _ in range(empty)])
                    empty = 0
                    # Cells past the named columns are dropped, as read_excel's frame is cut.
                    block.append(cells[:width] + [""] * (width - len(cells)))
                    if len(block) >= rows:
                        done += len(block)
                        if progress is not None:
                            progress(min(done / total, 1.0))
                        yield parse(block)
                        block = []
            except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
                raise InputError(f"cannot read the workbook ({type(exc).__name__})", path=self.name) from None
            if block:
                yield parse(block)
            if progress is not None:
                progress(1.0)
        finally:
            book.close()

    def estimate_rows(self) -> int:
        try:
            with zipfile.ZipFile(self.path) as z:
                size = sum(i.file_size for i in z.infolist() if i.filename.startswith("xl/worksheets"))
        except (zipfile.BadZipFile, OSError):
            size = self.path.stat().st_size * 5
        return int(size / max(1, 40 * len(self.names)))


def _excel_cell(cell):
    """A worksheet cell as ``pd.read_excel`` (openpyxl engine) takes it: "" when empty, NaN
    for an error, whole numbers as int."""
    from openpyxl.cell.cell import TYPE_ERROR, TYPE_NUMERIC

    value = cell.value
    if value is None:
        return ""
    if cell.data_type == TYPE_ERROR:
        return float("nan")
    if cell.data_type == TYPE_NUMERIC:
        whole = int(value)
        return whole if whole == value else float(value)
    return value


#: What to install when Parquet is opened without pyarrow (an optional extra: it is large).
PARQUET_INSTALL = 'pip install "dpsom-studio[parquet]"'


def _pyarrow_parquet(path: str):
    """``pyarrow.parquet``, or one plain line saying how to install it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet files needs the optional 'parquet' extra (pyarrow); "
                         f"install it with {PARQUET_INSTALL}, or save the file as CSV",
                         path=path) from None
    return pq


class _ParquetSource(_Source):
    kind = "parquet"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        pq = _pyarrow_parquet(self.name)
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises its own error types for corrupt files
            raise InputError(f"cannot open the Parquet file ({type(exc).__name__}); write it "
                             "again or save it as CSV", path=self.name) from None
        self.names = _clean_names(list(self._file.schema_arrow.names), self.warnings)

    def locate(self, record: int) -> int | None:
        return record + 1

    def _to_frame(self, batch) -> pd.DataFrame:
        df = batch.to_pandas()
        df.columns = self.names
        return df

    def _fail(self, exc: Exception) -> InputError:
        return InputError(f"cannot read the Parquet file ({type(exc).__name__}: {exc}); write it "
                          "again or save it as CSV".replace("\n", " "), path=self.name)

    def preview(self, nrows):
        import pyarrow as pa

        try:
            for batch in self._file.iter_batches(batch_size=max(1, nrows)):
                return self._to_frame(batch)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise self._fail(exc) from None
        return pd.DataFrame(columns=self.names)

    def frames(self, str_columns, progress, columns=None):
        import pyarrow as pa

        total = max(1, self._file.metadata.num_rows)
        done = 0
        rows = max(1000, _CHUNK_CELLS // max(1, len(self.names)))
        try:
            for batch in self._file.iter_batches(batch_size=rows):
                done += batch.num_rows
                if progress is not None:
                    progress(min(done / total, 1.0))
                frame = self._to_frame(batch)
                yield frame if columns is None else frame[list(columns)]
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise self._fail(exc) from None

    def estimate_rows(self) -> int:
        return int(self._file.metadata.num_rows)


def _open_source(path: Path) -> _Source:
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return _ExcelSource(path)
    if suffix in PARQUET_SUFFIXES:
        return _ParquetSource(path)
    if suffix == ".xls":
        raise InputError("old .xls workbooks are not supported; save it as .xlsx or CSV",
                         path=str(path))
    return _TextSource(path)


def _check_path(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError("file not found; check the path", path=str(p))
    if not os.access(p, os.R_OK):
        raise InputError("the file cannot be read (permission denied)", path=str(p))
    return p
