"""Read clinical tables and time series from files into a :class:`~core.data.dataset.Dataset`.

Entry points
------------
:func:`read_data`
    Any supported input (.csv .tsv .txt .xlsx .parquet, or a PhysioNet-2012 directory) as a
    table, a long-format series, a wide-format series or PhysioNet 2012.
:func:`inspect_file`
    What the import dialog shows before loading: detected encoding, delimiter, decimal mark,
    header, a preview, column kinds and suggested roles.
:func:`estimate_memory`
    A rough figure of the memory :func:`read_data` will need, without reading the file.

Text files are sniffed (encoding UTF-8 / UTF-8 with BOM / cp1252, delimiter ``, ; tab |``,
decimal comma, header), then parsed by pandas in chunks so that numbers become float32 early
and peak memory stays bounded. Everything the reader changes is written, in plain words, to
``Dataset.warnings``; everything it refuses raises :class:`~core.errors.InputError` naming the
file, the line and the column.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import warnings as _warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from . import validation
from .dataset import Dataset
from .timeseries import AGGREGATIONS, SeriesParts, TimeParser, build_series, time_unit_from_name

__all__ = ["read_data", "inspect_file", "estimate_memory", "FileInspection", "FORMATS",
           "MAX_CATEGORY_LEVELS"]

FORMATS = ("auto", "table", "long", "wide", "physionet2012")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".dat")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Text columns with at most this many distinct values become one-hot features.
MAX_CATEGORY_LEVELS = 10
_DELIMITERS = (",", ";", "\t", "|")
_EXTRA_NA = ["?", "na", "none", "missing", "-", "--"]
_SAMPLE_BYTES = 1 << 20
_CHUNK_CELLS = 1_000_000
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.I)
_COMMA_DECIMAL = re.compile(r"^[+-]?\d*,\d+$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d*\.\d+$")
_CLOCK = re.compile(r"^\d{1,4}:[0-5]\d(:[0-5]\d(\.\d*)?)?$")
_UNIT_IN_NAME = re.compile(r"^(.*?)\s*[\(\[]\s*([^\)\]]{1,20})\s*[\)\]]\s*$")

Progress = Callable[[float], object]


# --------------------------------------------------------------------------------------------
# Column-name heuristics
# --------------------------------------------------------------------------------------------

_ID_NAMES = {"id", "ids", "pid", "patient", "patients", "patientid", "subject", "subjectid",
             "stay", "stayid", "icustayid", "hadmid", "record", "recordid", "encounter",
             "encounterid", "patientunitstayid", "mrn", "caseid", "case"}
_TIME_WORDS = {"time", "hour", "hours", "charttime", "offset", "minute", "minutes", "timestamp",
               "datetime", "date", "t", "step", "chartoffset", "day", "days", "observationoffset"}
_LABEL_WORDS = {"death", "died", "mortality", "outcome", "outcomes", "label", "labels", "class",
                "state", "severity", "score", "survival", "survived", "expired", "target",
                "diagnosis", "sofa", "saps", "apache", "los", "subgroup", "cluster",
                "phenotype"}
_VAR_WORDS = {"variable", "var", "parameter", "param", "item", "itemid", "measurement",
              "name", "feature", "code", "test", "labname", "vital", "signal", "key", "concept"}
_VALUE_WORDS = {"value", "val", "valuenum", "result", "reading", "amount", "num", "obs",
                "labresult", "observation"}


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _id_score(name: str) -> int:
    toks = _tokens(name)
    joined = "".join(toks)
    if not toks or joined in {"itemid"} or _label_hint(name):
        return 0
    if joined == "id":
        return 4
    if joined in _ID_NAMES:
        return 3
    if toks[-1] in ("id", "ids") or any(t in ("patient", "stay", "subject") for t in toks):
        return 2
    return 0


def _time_score(name: str) -> int:
    toks = _tokens(name)
    joined = "".join(toks)
    if not toks or _label_hint(name):
        return 0
    if joined in _TIME_WORDS:
        return 3
    if any(t in _TIME_WORDS for t in toks) or "time" in joined or "offset" in joined:
        return 2
    return 0


def _label_hint(name: str) -> bool:
    toks = _tokens(name)
    if any(t in _LABEL_WORDS for t in toks):
        return True
    return "length" in toks and "stay" in toks


def _var_hint(name: str) -> bool:
    return any(t in _VAR_WORDS for t in _tokens(name))


def _value_hint(name: str) -> bool:
    return any(t in _VALUE_WORDS for t in _tokens(name))


def _split_unit(name: str) -> str:
    m = _UNIT_IN_NAME.match(str(name))
    return m.group(2).strip() if m else ""


def _names(items: Sequence, limit: int = 8) -> str:
    return validation._list_names([str(i) for i in items], limit)


# --------------------------------------------------------------------------------------------
# Sniffing text files
# --------------------------------------------------------------------------------------------

@dataclass
class _TextFormat:
    encoding: str
    delimiter: str
    decimal: str
    has_header: bool
    names: list[str]
    warnings: list[str]
    sample_rows: list[list[str]]
    avg_line_bytes: float
    trailing_delimiter: bool


def _decode_sample(raw: bytes, complete: bool) -> tuple[str, str]:
    """Return (encoding, decoded text) for the first bytes of a file."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", raw.decode("utf-16", errors="replace")
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(raw, final=complete)
        return "utf-8", text
    except UnicodeDecodeError:
        pass
    try:
        return "cp1252", raw.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1", raw.decode("latin-1")


def _is_number(cell: str) -> bool:
    return bool(_NUMBER.match(cell.strip()))


def _parse_rows(text: str, delimiter: str, limit: int = 200) -> list[list[str]] | None:
    rows = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            rows.append(row)
            if len(row) > 2000:
                return None
            if len(rows) >= limit:
                break
    except csv.Error:
        return None
    return rows


def _score_delimiter(rows: list[list[str]] | None) -> tuple[float, float, int] | None:
    if not rows:
        return None
    counts = [len(r) for r in rows]
    # Trailing delimiters add an empty field to some lines; don't let that hide consistency.
    trimmed = [len(r) - (1 if len(r) > 1 and not r[-1].strip() else 0) for r in rows]
    best = None
    for cs in (counts, trimmed):
        values, freq = np.unique(cs, return_counts=True)
        modal = int(values[np.argmax(freq)])
        if modal < 2:
            continue
        consistency = float(freq.max()) / len(cs)
        if best is None or consistency > best[0]:
            best = (consistency, modal)
    if best is None:
        return None
    others = set(_DELIMITERS)
    clean = sum(1 for r in rows for c in r
                if _is_number(c) or not any(d in c for d in others)) / max(1, sum(counts))
    return round(best[0], 2), round(clean, 2), best[1]


def _choose_delimiter(text: str, suffix: str) -> tuple[str, list[list[str]]]:
    preferred = ("\t",) if suffix in (".tsv", ".tab") else ()
    scored = []
    for i, d in enumerate(preferred + tuple(x for x in _DELIMITERS if x not in preferred)):
        rows = _parse_rows(text, d)
        s = _score_delimiter(rows)
        if s is not None:
            scored.append(((s[0], s[1], -i), d, rows))
    if not scored:
        rows = _parse_rows(text, "\x1f") or [[line] for line in text.splitlines() if line.strip()]
        return ",", rows
    scored.sort(key=lambda x: x[0], reverse=True)
    return scored[0][1], scored[0][2]


def _choose_decimal(rows: list[list[str]], delimiter: str) -> str:
    if delimiter == ",":
        return "."
    comma = dot = 0
    for r in rows[1:]:
        for c in r:
            c = c.strip()
            if _COMMA_DECIMAL.match(c):
                comma += 1
            elif _DOT_DECIMAL.match(c):
                dot += 1
    return "," if comma > 0 and dot == 0 else "."


def _cell_kind(cell: str) -> str:
    cell = cell.strip()
    if not cell:
        return "empty"
    return "number" if _is_number(cell) else "text"


def _has_header(rows: list[list[str]]) -> bool:
    first = rows[0]
    first_kinds = [_cell_kind(c) for c in first]
    if "number" not in first_kinds:
        return True
    if len(rows) == 1:
        return False
    # No header when the first row looks like the rows after it, column by column.
    for j, kind in enumerate(first_kinds):
        col = [_cell_kind(r[j]) for r in rows[1:] if j < len(r)]
        col = [k for k in col if k != "empty"]
        if not col or kind == "empty":
            continue
        modal = max(set(col), key=col.count)
        if kind != modal:
            return True
    return False


def _clean_names(raw: list[str], warnings: list[str]) -> list[str]:
    names, seen = [], {}
    renamed = []
    for i, n in enumerate(raw):
        n = str(n).strip()
        if not n:
            n = f"column{i + 1}"
        if n in seen:
            seen[n] += 1
            new = f"{n}.{seen[n]}"
            renamed.append((n, new))
            n = new
        seen.setdefault(n, 0)
        names.append(n)
    if renamed:
        warnings.append("Duplicate column names renamed: "
                        + ", ".join(f"{a!r} -> {b!r}" for a, b in renamed[:8]))
    return names


def _sniff_text(path: Path) -> _TextFormat:
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(_SAMPLE_BYTES)
    if not raw.strip(b" \t\r\n\x00"):
        raise InputError("the file is empty; export the table again with a header and data rows",
                         path=str(path))
    complete = len(raw) >= size
    encoding, text = _decode_sample(raw, complete)
    if not complete:
        cut = max(text.rfind("\n"), 0)
        text = text[:cut]
    if "\x00" in text:
        raise InputError("this is not a text table (it contains binary data); save it as CSV",
                         path=str(path))
    warnings: list[str] = []
    if encoding in ("cp1252", "latin-1"):
        warnings.append(f"The file is not UTF-8; read it as {encoding} (Western European)")
    delimiter, rows = _choose_delimiter(text, path.suffix.lower())
    if not rows:
        raise InputError("the file has no readable line", path=str(path))
    decimal = _choose_decimal(rows, delimiter)
    has_header = _has_header(rows)
    width = len(rows[0])
    # A delimiter at the end of every line: either the header ends with an empty name and the
    # last column is empty, or data lines carry one empty field more than the header.
    header_trails = (has_header and width > 1 and not rows[0][-1].strip()
                     and all(not r[-1].strip() for r in rows if len(r) == width))
    longer = [r for r in rows[1:] if len(r) > width]
    rows_trail = bool(longer) and all(not c.strip() for r in longer for c in r[width:])
    trailing = header_trails or rows_trail
    if has_header:
        names = _clean_names(rows[0], warnings)
    else:
        names = [f"column{i + 1}" for i in range(width)]
        warnings.append(f"No header row found; columns named column1..column{width}")
    n_lines = max(1, text.count("\n"))
    avg = (len(text.encode(encoding if encoding != "utf-16" else "utf-16-le", "replace"))
           / n_lines) if text else 1.0
    return _TextFormat(encoding, delimiter, decimal, has_header, names, warnings, rows,
                       max(avg, 1.0), trailing)


# --------------------------------------------------------------------------------------------
# Sources: one object per input file, yielding pandas chunks in file order
# --------------------------------------------------------------------------------------------

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

    def frames(self, str_columns: set[str], progress: Progress | None) -> Iterator[pd.DataFrame]:
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

    def frames(self, str_columns, progress):
        size = max(1, self.path.stat().st_size)
        rows = max(1000, _CHUNK_CELLS // max(1, len(self.names)))
        extra_fields = False
        with open(self.path, "rb") as fh:
            try:
                reader = pd.read_csv(fh, chunksize=rows, **self._kwargs(str_columns))
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

    def frames(self, str_columns, progress):
        df = self._read(None)
        if progress is not None:
            progress(1.0)
        yield df

    def estimate_rows(self) -> int:
        try:
            with zipfile.ZipFile(self.path) as z:
                size = sum(i.file_size for i in z.infolist() if i.filename.startswith("xl/worksheets"))
        except (zipfile.BadZipFile, OSError):
            size = self.path.stat().st_size * 5
        return int(size / max(1, 40 * len(self.names)))


class _ParquetSource(_Source):
    kind = "parquet"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import pyarrow.parquet as pq

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

    def frames(self, str_columns, progress):
        import pyarrow as pa

        total = max(1, self._file.metadata.num_rows)
        done = 0
        rows = max(1000, _CHUNK_CELLS // max(1, len(self.names)))
        try:
            for batch in self._file.iter_batches(batch_size=rows):
                done += batch.num_rows
                if progress is not None:
                    progress(min(done / total, 1.0))
                yield self._to_frame(batch)
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


# --------------------------------------------------------------------------------------------
# Column accumulators
# --------------------------------------------------------------------------------------------

def _as_text(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Cells as stripped strings (object array) and a mask of non-empty cells."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = ~np.isnan(x)
        out = np.full(len(s), "", dtype=object)
        whole = ok & np.isfinite(x) & (np.floor(x) == x) & (np.abs(x) < 2**53)
        out[whole] = x[whole].astype(np.int64).astype(str)
        rest = ok & ~whole
        out[rest] = x[rest].astype(str)
        return out, ok
    if pd.api.types.is_string_dtype(s) and not pd.api.types.is_object_dtype(s):
        stripped = s.str.strip()
        out = stripped.to_numpy(dtype=object, na_value="")
        return out, (stripped.notna() & (stripped != "")).to_numpy(dtype=bool)
    obj = s.astype(object)
    notna = obj.notna().to_numpy()
    out = np.full(len(s), "", dtype=object)
    if notna.any():
        # Mixed cells (Excel, Parquet): show a whole number stored as 1001.0 as "1001".
        vals = obj[notna].map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer()
                              else v)
        out[notna] = vals.astype(str).str.strip().to_numpy(dtype=object)
    return out, out != ""


class _Codes:
    """Strings to integer codes with one vocabulary across chunks."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: np.ndarray, nonempty: np.ndarray) -> np.ndarray:
        codes = np.full(text.size, -1, dtype=np.int32)
        if nonempty.any():
            local, uniques = pd.factorize(text[nonempty])
            mapping = np.array([self.vocab.setdefault(u, len(self.vocab)) for u in uniques],
                               dtype=np.int32)
            codes[nonempty] = mapping[local]
        return codes

    @property
    def levels(self) -> list[str]:
        return list(self.vocab)


class _KeyColumn:
    """Id or variable column: every cell kept as a string code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.codes = _Codes()
        self.parts: list[np.ndarray] = []

    def add(self, s: pd.Series, start: int) -> None:
        text, nonempty = _as_text(s)
        self.parts.append(self.codes.encode(text, nonempty))

    def finish(self) -> np.ndarray:
        # Concatenate once and drop the chunk list, so the codes are not held twice.
        if len(self.parts) != 1:
            self.parts = [np.concatenate(self.parts) if self.parts else np.zeros(0, np.int32)]
        return self.parts[0]


class _DataColumn:
    """Feature, value or label column: numbers, plus codes for any text found."""

    def __init__(self, name: str, *, decimal: str, precise: bool) -> None:
        self.name = name
        self.decimal = decimal
        self.dtype = np.float64 if precise else np.float32
        self.numbers: list[np.ndarray] = []
        self.code_parts: list[np.ndarray | None] = []
        self.codes = _Codes()
        self.n_num = 0
        self.n_text = 0
        self.first_text: tuple[int, str] | None = None
        self.first_inf: int | None = None

    def add(self, s: pd.Series, start: int) -> None:
        if pd.api.types.is_bool_dtype(s):
            x = s.astype(float).to_numpy(dtype=np.float64, na_value=np.nan)
            codes = None
        elif pd.api.types.is_numeric_dtype(s):
            x = s.to_numpy(dtype=np.float64, na_value=np.nan)
            codes = None
        else:
            text, nonempty = _as_text(s)
            numeric = pd.Series(text[nonempty], dtype=object)
            if self.decimal == ",":
                numeric = numeric.str.replace(",", ".", regex=False)
            parsed = pd.to_numeric(numeric, errors="coerce").to_numpy(dtype=np.float64)
            x = np.full(len(s), np.nan)
            x[nonempty] = parsed
            is_text = nonempty.copy()
            is_text[nonempty] = np.isnan(parsed)
            n_text = int(is_text.sum())
            if n_text:
                self.n_text += n_text
                if self.first_text is None:
                    i = int(np.flatnonzero(is_text)[0])
                    self.first_text = (start + i, str(text[i]))
                codes = self.codes.encode(text, nonempty)
            else:
                codes = None
        with np.errstate(over="ignore"):
            stored = x.astype(self.dtype)
        # inf as written, or a number beyond the float32 range that became inf when stored
        bad = np.isinf(stored)
        if self.first_inf is None and bad.any():
            self.first_inf = start + int(np.flatnonzero(bad)[0])
        self.n_num += int((~np.isnan(x)).sum())
        self.numbers.append(stored)
        self.code_parts.append(codes)

    @property
    def kind(self) -> str:
        if self.n_num + self.n_text == 0:
            return "empty"
        if self.n_text == 0:
            return "numeric"
        return "text" if self.n_num == 0 else "mixed"

    def values(self) -> np.ndarray:
        if len(self.numbers) != 1:
            whole = np.concatenate(self.numbers) if self.numbers else np.zeros(0, self.dtype)
            # Keep one array (and one matching codes part) instead of the chunk list.
            if any(c is not None for c in self.code_parts):
                codes, _ = self.text_codes()
                self.code_parts = [codes]
            else:
                self.code_parts = [None]
            self.numbers = [whole]
        return self.numbers[0]

    def text_codes(self) -> tuple[np.ndarray, list[str]]:
        """Codes (-1 empty) and levels, reading numbers of numeric chunks as text too."""
        parts = []
        for x, codes in zip(self.numbers, self.code_parts):
            if codes is None:
                text, nonempty = _as_text(pd.Series(x.astype(np.float64)))
                codes = self.codes.encode(text, nonempty)
            parts.append(codes)
        return (np.concatenate(parts) if parts else np.zeros(0, np.int32)), self.codes.levels


def _accumulate(source: _Source, roles: dict[str, str], progress: Progress | None,
                time_parser: TimeParser | None) -> tuple[dict, int]:
    """Read every chunk once; return ({column: accumulator or float64 times}, n_records)."""
    key_cols = {c for c, r in roles.items() if r in ("id", "variable")}
    str_cols = key_cols | {c for c, r in roles.items() if r == "time"}
    acc: dict = {}
    for c, r in roles.items():
        if r in ("id", "variable"):
            acc[c] = _KeyColumn(c)
        elif r == "time":
            acc[c] = []
        elif r != "ignore":
            acc[c] = _DataColumn(c, decimal=source.decimal, precise=r == "label")
    n = 0
    for chunk in source.frames(str_cols, progress):
        for c, a in acc.items():
            s = chunk[c]
            if isinstance(a, list):
                a.append(time_parser.parse(s, n))
            else:
                a.add(s, n)
        n += len(chunk)
    for c, a in acc.items():
        if isinstance(a, list):
            acc[c] = np.concatenate(a) if a else np.zeros(0)
    return acc, n


# --------------------------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------------------------

@dataclass
class FileInspection:
    """What a file looks like, for the import dialog; produced by :func:`inspect_file`.

    Attributes
    ----------
    path : str
    file_type : {"text", "excel", "parquet", "physionet2012"}
        How the file is stored.
    suggested_format : {"table", "long", "wide", "physionet2012"}
        How :func:`read_data` with ``format="auto"`` will read it.
    encoding, delimiter : str or None
        Text files only (``"\\t"`` for tabs).
    decimal : str
        Decimal mark ("." or ",").
    has_header : bool
    columns : list of str
    preview : pandas.DataFrame
        The first rows, parsed with the detected settings.
    kinds : dict of str to str
        Column -> "numeric", "categorical", "text", "time" or "empty".
    roles : dict of str to str
        Column -> "id", "time", "variable", "value", "feature", "label" or "ignore".
    id_col, time_col, var_col, value_col : str or None
        The suggested role columns.
    n_rows_estimate : int
        Data rows (estimated from the size for large text files).
    warnings : list of str
        What the sniffer noticed (encoding, missing header, renamed columns, ...).
    """

    path: str
    file_type: str
    suggested_format: str
    encoding: str | None
    delimiter: str | None
    decimal: str
    has_header: bool
    columns: list[str]
    preview: pd.DataFrame
    kinds: dict[str, str]
    roles: dict[str, str]
    id_col: str | None = None
    time_col: str | None = None
    var_col: str | None = None
    value_col: str | None = None
    n_rows_estimate: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def format(self) -> str:
        """Alias of :attr:`suggested_format`."""
        return self.suggested_format


def _preview_kinds(df: pd.DataFrame, decimal: str) -> dict[str, str]:
    kinds = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            kinds[c] = "time"
            continue
        text, nonempty = _as_text(s)
        cells = [str(v) for v in text[nonempty]]
        if not cells:
            kinds[c] = "empty"
            continue
        num = sum(1 for v in cells if _is_number(v if decimal == "." else v.replace(",", ".")))
        if num >= 0.9 * len(cells):
            kinds[c] = "numeric"
        elif sum(1 for v in cells if _CLOCK.match(v)) == len(cells) or _looks_like_dates(cells):
            kinds[c] = "time"
        elif len(set(cells)) <= MAX_CATEGORY_LEVELS:
            kinds[c] = "categorical"
        else:
            kinds[c] = "text"
    return kinds


def _looks_like_dates(cells: list[str]) -> bool:
    sample = [c for c in cells[:50] if re.search(r"\d", c)]
    if len(sample) < len(cells[:50]) or not sample:
        return False
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(pd.Series(sample), errors="coerce", format="mixed")
        except (ValueError, TypeError, OverflowError):
            return False
    return bool(parsed.notna().all())


def _suggest(columns: list[str], kinds: dict[str, str]) -> tuple[str, dict[str, str], dict]:
    """Suggested format, roles and role columns from names and kinds."""
    roles = {c: "feature" for c in columns}
    picks: dict[str, str | None] = {"id": None, "time": None, "variable": None, "value": None}
    ids = sorted((c for c in columns if _id_score(c) and kinds[c] != "empty"),
                 key=lambda c: -_id_score(c))
    if ids:
        picks["id"] = ids[0]
    times = sorted((c for c in columns if c != picks["id"] and kinds[c] != "empty"
                    and (_time_score(c) or (kinds[c] == "time" and not _label_hint(c)))),
                   key=lambda c: -(_time_score(c) + (2 if kinds[c] == "time" else 0)))
    if times:
        picks["time"] = times[0]
    for c in columns:
        if kinds[c] == "empty":
            roles[c] = "ignore"
        elif c == picks["id"]:
            roles[c] = "id"
        elif c in ids:
            roles[c] = "ignore"
        elif _label_hint(c):
            roles[c] = "label"
        elif kinds[c] == "text":
            roles[c] = "ignore"
    fmt = "table"
    if picks["id"] and picks["time"]:
        roles[picks["time"]] = "time"
        rest = [c for c in columns if roles[c] in ("feature", "ignore") and kinds[c] != "empty"
                and c not in (picks["id"], picks["time"])]
        var = [c for c in rest if kinds[c] in ("categorical", "text") and _var_hint(c)]
        if not var:
            var = [c for c in rest if kinds[c] in ("categorical", "text")]
        val = [c for c in rest if kinds[c] == "numeric" and _value_hint(c)]
        numeric_rest = [c for c in rest if kinds[c] == "numeric"]
        if not val and len(numeric_rest) == 1:
            val = numeric_rest
        # A text column next to one numeric column is long format only when a name says so;
        # otherwise it is a categorical feature of a wide file (e.g. "sex" next to "hr").
        if var and len(val) == 1 and (_var_hint(var[0]) or _value_hint(val[0])):
            fmt = "long"
            picks["variable"], picks["value"] = var[0], val[0]
            roles[var[0]], roles[val[0]] = "variable", "value"
            for c in rest:
                if roles[c] == "feature":
                    roles[c] = "ignore"
        else:
            fmt = "wide"
    else:
        picks["time"] = None
    return fmt, roles, picks


def inspect_file(path, nrows: int = 200) -> FileInspection:
    """Look at a file without loading it: format, encoding, delimiter, preview, column roles.

    Parameters
    ----------
    path : str or Path
        A .csv/.tsv/.txt/.xlsx/.parquet file, or a directory of PhysioNet 2012 records.
    nrows : int
        Rows to parse for the preview and the column kinds.

    Returns
    -------
    FileInspection

    Raises
    ------
    InputError
        Missing, empty or unreadable file.
    """
    p = _check_path(path)
    if p.is_dir():
        from .physionet import inspect_physionet2012

        return inspect_physionet2012(p, nrows=nrows)
    source = _open_source(p)
    preview = source.preview(nrows)
    kinds = _preview_kinds(preview, source.decimal)
    fmt, roles, picks = _suggest(list(preview.columns), kinds)
    return FileInspection(
        path=str(p), file_type=source.kind, suggested_format=fmt, encoding=source.encoding,
        delimiter=source.delimiter, decimal=source.decimal, has_header=source.has_header,
        columns=list(preview.columns), preview=preview, kinds=kinds, roles=roles,
        id_col=picks["id"], time_col=picks["time"], var_col=picks["variable"],
        value_col=picks["value"], n_rows_estimate=source.estimate_rows(),
        warnings=list(source.warnings))


def estimate_memory(path) -> int:
    """Rough peak memory in bytes that :func:`read_data` will need for ``path``.

    Counts the parsed numbers (8 bytes per cell while reading, then float32 values and a bool
    mask) and one chunk of pandas overhead. Long-format files can need more when the time grid
    is much denser than the rows; treat the figure as an order of magnitude.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    int
        Bytes.
    """
    p = _check_path(path)
    if p.is_dir():
        size = sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        return int(size * 4 + 64 * 1024**2)
    source = _open_source(p)
    rows = source.estimate_rows()
    cols = max(1, len(source.names))
    chunk = min(rows, max(1000, _CHUNK_CELLS // cols)) * cols * 60
    return int(rows * cols * (8 + 5) + chunk)


# --------------------------------------------------------------------------------------------
# read_data
# --------------------------------------------------------------------------------------------

def _require(columns: Sequence[str], name: str | None, what: str, path: str) -> None:
    if name is not None and name not in columns:
        raise InputError(f"{what} column {name!r} not found; columns are {_names(columns, 12)}",
                         path=path)


@dataclass
class _Plan:
    fmt: str
    id_col: str | None
    time_col: str | None
    var_col: str | None
    value_col: str | None
    labels: list[str]
    feature_cols: list[str] | None
    wanted_features: list[str] | None
    wanted_labels: list[str] | None
    ignored: list[str]


def _plan(source: _Source, fmt: str, *, id_col, time_col, var_col, value_col, features, labels,
          warnings: list[str]) -> _Plan:
    cols = list(source.names)
    path = source.name
    for name, what in ((id_col, "id"), (time_col, "time"), (var_col, "variable"),
                       (value_col, "value")):
        _require(cols, name, what, path)
    preview = source.preview(200)
    kinds = _preview_kinds(preview, source.decimal)
    guess, _, picks = _suggest(cols, kinds)
    described = ""
    if fmt == "auto":
        if id_col and time_col:
            fmt = "long" if (var_col or value_col) or (
                guess == "long" and picks["id"] == id_col and picks["time"] == time_col) else "wide"
        elif id_col and not time_col and picks["time"] and picks["time"] != id_col:
            fmt, time_col = ("long" if guess == "long" else "wide"), picks["time"]
        elif (id_col or time_col) and not (id_col and time_col):
            fmt = "table"
        else:
            fmt = guess
            if fmt != "table":
                id_col, time_col = picks["id"], picks["time"]
            else:
                id_col = id_col or picks["id"]
        described = "auto"
    inferred = []
    chosen = set(features or []) | set(labels or [])
    if id_col is None and picks["id"] and picks["id"] not in chosen | {time_col}:
        id_col = picks["id"]
        inferred.append(f"id {id_col!r}")
    if fmt in ("long", "wide"):
        if time_col is None and picks["time"] and picks["time"] != id_col:
            time_col = picks["time"]
            inferred.append(f"time {time_col!r}")
        if id_col is None or time_col is None:
            raise InputError(f"{fmt}-format time series need an id and a time column; pass "
                             "--id-col and --time-col", path=path)
    if fmt == "long":
        if var_col is None and picks["variable"]:
            var_col = picks["variable"]
            inferred.append(f"variable {var_col!r}")
        if value_col is None and picks["value"]:
            value_col = picks["value"]
            inferred.append(f"value {value_col!r}")
        if var_col is None or value_col is None:
            raise InputError("long-format time series need a variable and a value column; pass "
                             "--var-col and --value-col", path=path)
    roles_taken = {c for c in (id_col, time_col, var_col, value_col) if c}
    if fmt != "long":
        for name in labels or []:
            _require(cols, name, "label", path)
    if fmt == "table" and time_col:
        warnings.append(f"Read as a table; the time column {time_col!r} is not used as a feature")
    feature_list = list(features) if features is not None else None
    if feature_list is not None:
        clash = [f for f in feature_list if f in roles_taken]
        if clash:
            raise InputError(f"column(s) {_names(clash)} cannot be features: they are the id, "
                             "time, variable or value column", path=path)
        if fmt != "long":
            for f in feature_list:
                _require(cols, f, "feature", path)
    if labels is None:
        label_list = [c for c in cols if c not in roles_taken and _label_hint(c)
                      and kinds.get(c) != "empty"
                      and (feature_list is None or c not in feature_list)]
        if label_list:
            warnings.append(f"Column(s) {_names(label_list)} look like outcomes and are kept as "
                            "labels (never trained on); pass labels to choose")
    else:
        label_list = [c for c in labels if c in cols]
        both = [c for c in label_list if feature_list is not None and c in feature_list]
        if both:
            raise InputError(f"column(s) {_names(both)} are listed both as features and labels; "
                             "a label is never trained on", path=path)
        clash = [c for c in label_list if c in roles_taken]
        if clash:
            raise InputError(f"column(s) {_names(clash)} cannot be labels: they are the id, "
                             "time, variable or value column", path=path)
    rest = [c for c in cols if c not in roles_taken and c not in label_list]
    if fmt == "long":
        feature_cols = [c for c in (feature_list or []) if c in cols and c in rest]
        ignored = [c for c in rest if c not in feature_cols]
    elif feature_list is not None:
        feature_cols = feature_list
        ignored = [c for c in rest if c not in feature_cols]
    else:
        feature_cols = None
        ignored = []
    if ignored:
        nonempty = [c for c in ignored if kinds.get(c) != "empty"]
        if nonempty:
            warnings.append(f"Column(s) not used: {_names(nonempty)}")
    if inferred and not described:
        warnings.insert(0, f"Columns inferred from their names: {', '.join(inferred)}")
    if described:
        if fmt == "table":
            text = "Read as a table (one row per sample"
            text += f", id {id_col!r})" if id_col else ")"
        elif fmt == "wide":
            text = f"Read as wide-format time series (id {id_col!r}, time {time_col!r})"
        else:
            text = (f"Read as long-format time series (id {id_col!r}, time {time_col!r}, "
                    f"variable {var_col!r}, value {value_col!r})")
        warnings.insert(0, text)
    return _Plan(fmt, id_col, time_col, var_col, value_col, label_list, feature_cols,
                 feature_list, list(labels) if labels is not None else None, ignored)


def read_data(path, *, format: str = "auto", id_col: str | None = None,
              time_col: str | None = None, var_col: str | None = None,
              value_col: str | None = None, features: Sequence[str] | None = None,
              labels: Sequence[str] | None = None, time_step: float | None = None,
              aggregate: str = "last", max_steps: int | None = None,
              progress: Progress | None = None) -> Dataset:
    """Read a table or patient time series into a :class:`Dataset`.

    Parameters
    ----------
    path : str or Path
        A .csv, .tsv, .txt, .xlsx or .parquet file, or a directory of PhysioNet 2012 records.
    format : {"auto", "table", "long", "wide", "physionet2012"}
        ``"auto"`` infers the format from the column names and contents and records what it
        inferred as the first entry of ``Dataset.warnings``.
    id_col, time_col : str, optional
        Patient id and time columns; giving both reads a time series.
    var_col, value_col : str, optional
        Long format: the column naming the variable and the column holding its value.
    features : sequence of str, optional
        Feature columns (wide/table) or variable names (long). Default: every numeric column
        without a role; text columns with at most 10 distinct values become one-hot features
        named ``"column=level"``.
    labels : sequence of str, optional
        Outcome columns kept in ``Dataset.labels`` (never features). Default: columns whose
        names look like outcomes (death, mortality, outcome, label, class, state, score, ...);
        pass ``[]`` for none.
    time_step : float, optional
        Series: grid step in the time unit (hours for ``HH:MM`` and timestamps). Default: the
        most common gap between consecutive times of a patient.
    aggregate : {"last", "mean"}
        Series: how observations sharing a grid step are combined.
    max_steps : int, optional
        Series: keep the first ``max_steps`` steps of each patient.
    progress : callable, optional
        Called with a float in [0, 1] while reading, e.g. to move a progress bar.

    Returns
    -------
    Dataset
        Tables: ``values`` (n_rows, n_features) float32. Series: ``values`` (n_patients,
        n_steps, n_features) float32 with ``times``, ``lengths`` and per-step labels.

    Raises
    ------
    InputError
        Missing or unreadable file, text in a numeric column, infinite values, negative
        times, no numeric column, too few rows, and so on; the message names the file, the
        line and the column and says what to do.

    Examples
    --------
    >>> ds = read_data("vitals.csv", id_col="stay_id", time_col="hour")  # doctest: +SKIP
    >>> ds.values.shape                                                  # doctest: +SKIP
    (120, 48, 7)
    """
    if format not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if aggregate not in AGGREGATIONS:
        raise InputError(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {aggregate!r}")
    p = _check_path(path)
    if p.is_dir() or format == "physionet2012":
        from .physionet import read_physionet2012

        if not p.is_dir():
            raise InputError("PhysioNet 2012 data is a directory of record files; pass the "
                             "directory", path=str(p))
        ds = read_physionet2012(p, features=features, labels=labels,
                                time_step=1.0 if time_step is None else time_step,
                                aggregate=aggregate, max_steps=48 if max_steps is None else max_steps,
                                progress=progress)
        if format == "auto":
            ds.warnings.insert(0, f"Read as a PhysioNet 2012 directory ({ds.n_samples} stays)")
        return ds
    if p.stat().st_size == 0:
        raise InputError("the file is empty; export the table again with a header and data rows",
                         path=str(p))
    source = _open_source(p)
    try:
        return _read_source(source, format, id_col=id_col, time_col=time_col, var_col=var_col,
                            value_col=value_col, features=features, labels=labels,
                            time_step=time_step, aggregate=aggregate, max_steps=max_steps,
                            progress=progress)
    except UnicodeDecodeError:
        if not isinstance(source, _TextSource) or source.encoding == "cp1252":
            raise InputError("the text is not valid in any supported encoding; save it as UTF-8",
                             path=str(p)) from None
        # The sample was valid UTF-8 but a later line is not: start again as Windows text.
        source.encoding = "cp1252"
        source.warnings.append("The file is not UTF-8 throughout; read it as cp1252 "
                               "(Windows Western European)")
        return _read_source(source, format, id_col=id_col, time_col=time_col, var_col=var_col,
                            value_col=value_col, features=features, labels=labels,
                            time_step=time_step, aggregate=aggregate, max_steps=max_steps,
                            progress=progress)


def _read_source(source: _Source, fmt: str, *, id_col, time_col, var_col, value_col, features,
                 labels, time_step, aggregate, max_steps, progress) -> Dataset:
    if [c.replace(" ", "") for c in source.names] == ["Time", "Parameter", "Value"]:
        raise InputError("this is one PhysioNet 2012 record; pass the directory holding all "
                         "record files (format physionet2012)", path=source.name)
    warnings = list(source.warnings)
    plan = _plan(source, fmt, id_col=id_col, time_col=time_col, var_col=var_col,
                 value_col=value_col, features=features, labels=labels, warnings=warnings)
    roles: dict[str, str] = {c: "ignore" for c in source.names}
    for c in plan.labels:
        roles[c] = "label"
    if plan.feature_cols is None:
        for c in source.names:
            if roles[c] == "ignore":
                roles[c] = "feature"
    else:
        for c in plan.feature_cols:
            roles[c] = "feature"
    for c, r in ((plan.id_col, "id"), (plan.time_col, "time"), (plan.var_col, "variable"),
                 (plan.value_col, "value")):
        if c:
            roles[c] = r
    if plan.fmt == "table" and plan.time_col:
        roles[plan.time_col] = "ignore"
    parser = None
    if roles.get(plan.time_col) == "time":
        parser = TimeParser(plan.time_col, decimal=source.decimal, path=source.name,
                            locate=source.locate)

    def reading(f: float) -> None:
        if progress is not None:
            progress(0.9 * f)

    n_source_warnings = len(source.warnings)
    acc, n = _accumulate(source, roles, reading, parser)
    warnings.extend(source.warnings[n_source_warnings:])
    if n == 0:
        what = "has a header but no data rows" if source.has_header else "has no data rows"
        raise InputError(f"the file {what}; add at least 2 rows", path=source.name)
    if plan.fmt == "table":
        ds = _build_table(source, acc, n, plan, warnings)
    else:
        ds = _build_series(source, acc, n, plan, parser, warnings, time_step=time_step,
                           aggregate=aggregate, max_steps=max_steps)
    if progress is not None:
        progress(1.0)
    return ds


def _raise_text_in_numeric(source: _Source, col: _DataColumn) -> None:
    record, value = col.first_text
    raise InputError(
        f"text {value!r} in a numeric column ({col.n_text} such cell(s)); correct or empty the "
        "cell(s), or pass the column as a label or leave it out of the features",
        path=source.name, row=source.locate(record), column=col.name)


def _check_inf(source: _Source, col: _DataColumn) -> None:
    if col.first_inf is not None:
        raise InputError("infinite value (or beyond +-3.4e38); replace it with a finite number "
                         "or leave the cell empty", path=source.name,
                         row=source.locate(col.first_inf), column=col.name)


def _label_array(col: _DataColumn) -> np.ndarray:
    """Numbers as float64 (NaN unknown) or text as str ("" unknown)."""
    if col.kind in ("numeric", "empty"):
        return col.values().astype(np.float64)
    codes, levels = col.text_codes()
    lv = np.asarray(levels + [""], dtype=object)
    return lv[np.where(codes < 0, len(levels), codes)].astype(str)


def _feature_columns(source: _Source, acc: dict, candidates: list[str], explicit: bool,
                     warnings: list[str]) -> list[tuple[str, np.ndarray]]:
    """Numeric and one-hot feature columns (float32 per row), in column order."""
    out: list[tuple[str, np.ndarray]] = []
    empty, onehot = [], []
    for c in candidates:
        col: _DataColumn = acc[c]
        kind = col.kind
        if kind == "empty":
            empty.append(c)
            continue
        if kind == "mixed" and col.n_num >= col.n_text:
            _raise_text_in_numeric(source, col)
        if kind == "numeric":
            _check_inf(source, col)
            out.append((c, col.values()))
            continue
        codes, levels = col.text_codes()
        used = sorted({levels[i] for i in np.unique(codes[codes >= 0])})
        if len(used) > MAX_CATEGORY_LEVELS:
            record, value = col.first_text
            raise InputError(
                f"text column with {len(used)} different values (e.g. {value!r}); it cannot be a "
                f"feature: pass it as a label, leave it out with --features, or recode it into "
                f"at most {MAX_CATEGORY_LEVELS} categories", path=source.name, column=c)
        if kind == "mixed":
            record, value = col.first_text
            warnings.append(validation.describe_mix(col.n_num, col.n_text, c, value,
                                                    source.locate(record), source.name))
        index = {lv: i for i, lv in enumerate(levels)}
        missing = codes < 0
        for lv in used:
            x = (codes == index[lv]).astype(np.float32)
            x[missing] = np.nan
            out.append((f"{c}={lv}", x))
        onehot.append(f"{c} ({len(used)} levels)")
    trailing = [c for c in empty if c in source.trailing_names]
    empty = [c for c in empty if c not in trailing]
    if trailing:
        warnings.append("Lines end with a delimiter; dropped the empty trailing column")
    if empty:
        warnings.append(f"Dropped empty column(s) {_names(empty)}: no value in any row")
    if onehot:
        warnings.append(f"Text column(s) {', '.join(onehot)} became one-hot features "
                        "'column=level'")
    return out


def _candidates(source: _Source, acc: dict, plan: _Plan) -> list[str]:
    """Feature columns to consider: the listed ones in their order, else all in file order."""
    order = plan.feature_cols if plan.feature_cols is not None else source.names
    return [c for c in order if isinstance(acc.get(c), _DataColumn) and c not in plan.labels]


def _build_table(source: _Source, acc: dict, n: int, plan: _Plan, warnings: list[str]) -> Dataset:
    path = source.name
    if n < 2:
        raise InputError("only one data row; a map needs at least 2 rows (and more rows than "
                         "map nodes)", path=path)
    candidates = _candidates(source, acc, plan)
    explicit = plan.feature_cols is not None
    if not explicit:
        numeric = [c for c in candidates if acc[c].kind == "numeric"
                   or (acc[c].kind == "mixed" and acc[c].n_num >= acc[c].n_text)]
        if not numeric:
            raise InputError("no numeric column to use as features; a map needs numbers (check "
                             "the delimiter and decimal mark, or list features)", path=path)
    cols = _feature_columns(source, acc, candidates, explicit, warnings)
    if not cols:
        raise InputError("no usable feature column (all are empty)", path=path)
    values = np.column_stack([x for _, x in cols]).astype(np.float32, copy=False)
    names = [name for name, _ in cols]
    mask = ~np.isnan(values)
    no_value = int((~mask.any(axis=1)).sum())
    if no_value:
        warnings.append(f"{no_value} row(s) have no value in any feature (kept, fully missing)")
    const = validation.constant_columns(values, mask, names)
    if const:
        warnings.append(f"Constant column(s) (one value in every row): {_names(const)}")
    ids = None
    if plan.id_col:
        codes = acc[plan.id_col].finish()
        ids = _natural_ids(codes, acc[plan.id_col].codes.levels)
        n_missing = int((codes < 0).sum())
        if n_missing:
            warnings.append(f"{n_missing} row(s) have no id")
    labels = {c: _label_array(acc[c]) for c in plan.labels}
    units = [_split_unit(nm.split("=")[0]) for nm in names]
    return Dataset(values=values, mask=mask, feature_names=names, units=units, ids=ids,
                   labels=labels, id_col=plan.id_col, source=path, warnings=warnings)


def _natural_ids(codes: np.ndarray, levels: list[str]) -> np.ndarray:
    """Ids as int64 when every id is a whole number written without leading zeros, else str."""
    lv = np.asarray(levels + [""], dtype=object)
    as_text = lv[np.where(codes < 0, len(levels), codes)]
    if levels and all(re.fullmatch(r"-?(0|[1-9]\d{0,17})", s) for s in levels) and (codes >= 0).all():
        return np.asarray([int(s) for s in levels], dtype=np.int64)[codes]
    return as_text.astype(str)


def _build_series(source: _Source, acc: dict, n: int, plan: _Plan, parser: TimeParser,
                  warnings: list[str], *, time_step, aggregate, max_steps) -> Dataset:
    path = source.name
    if n < 2:
        raise InputError("only one data row; a time series needs more rows", path=path)
    pid_codes = acc[plan.id_col].finish()
    times = acc[plan.time_col]
    ok = (pid_codes >= 0) & ~np.isnan(times)
    dropped = int((~ok).sum())
    if dropped:
        first = int(np.flatnonzero(~ok)[0])
        warnings.append(f"{dropped} row(s) without a patient id or a time were left out "
                        f"(first at line {source.locate(first)})")
    if not ok.any():
        raise InputError("no row has both a patient id and a time", path=path)
    # Copy columns only when rows were left out (large files: memory).
    rows = np.flatnonzero(ok) if dropped else None

    def take(a: np.ndarray) -> np.ndarray:
        return a if rows is None else a[rows]

    kept_codes = take(pid_codes)
    # Patients in order of first appearance among kept rows.
    uniq, first_pos = np.unique(kept_codes, return_index=True)
    order = np.argsort(first_pos)
    remap = np.full(max(int(pid_codes.max()) + 1, 1), -1, dtype=np.int32)
    remap[uniq[order]] = np.arange(uniq.size, dtype=np.int32)
    levels = acc[plan.id_col].codes.levels
    patient_ids = _natural_ids(uniq[order].astype(np.int32), levels)

    parts = SeriesParts(patient=remap[kept_codes], patient_ids=patient_ids, times=take(times),
                        records=rows, time_kind=parser.kind or "number")
    del kept_codes
    if plan.fmt == "long":
        _long_parts(source, acc, plan, take, parts, warnings)
    else:
        candidates = _candidates(source, acc, plan)
        if plan.feature_cols is None and not any(
                acc[c].kind == "numeric" or (acc[c].kind == "mixed" and acc[c].n_num >= acc[c].n_text)
                for c in candidates):
            raise InputError("no numeric column to use as features (besides id and time); check "
                             "the delimiter and decimal mark, or list features", path=path)
        cols = _feature_columns(source, acc, candidates, plan.feature_cols is not None, warnings)
        parts.wide = [(name, take(x)) for name, x in cols]
    for c in plan.labels:
        if c in acc:
            parts.row_labels[c] = take(_label_array(acc[c]))
    parts.units = {name: _split_unit(name.split("=")[0]) for name, _ in parts.wide}
    for name in parts.long_names:
        parts.units.setdefault(name, _split_unit(name))
    unit = {"clock": "h", "timestamp": "h"}.get(parts.time_kind, time_unit_from_name(plan.time_col))
    ds = build_series(parts, time_step=time_step, aggregate=aggregate, max_steps=max_steps,
                      origin="first", id_col=plan.id_col, time_col=plan.time_col, time_unit=unit,
                      source=path, path=path, locate=source.locate, warnings=warnings)
    if plan.fmt == "long" and plan.wanted_features and plan.feature_cols:
        # extra columns and variables were laid out separately: restore the requested order
        rank = {name: i for i, name in enumerate(plan.wanted_features)}
        order = sorted(range(ds.n_features), key=lambda j: rank.get(ds.feature_names[j], len(rank)))
        ds.values, ds.mask = ds.values[..., order], ds.mask[..., order]
        ds.feature_names = [ds.feature_names[j] for j in order]
        ds.units = [ds.units[j] for j in order]
    return ds


def _long_parts(source: _Source, acc: dict, plan: _Plan, take: Callable, parts: SeriesParts,
                warnings: list[str]) -> None:
    path = source.name
    var: _KeyColumn = acc[plan.var_col]
    val: _DataColumn = acc[plan.value_col]
    if val.kind == "text" or (val.kind == "mixed"):
        _raise_text_in_numeric(source, val)
    _check_inf(source, val)
    codes = take(var.finish())
    values = take(val.values())
    names_all = var.codes.levels
    no_var = (codes < 0) & ~np.isnan(values)
    if no_var.any():
        first = int(np.flatnonzero(no_var)[0])
        record = first if parts.records is None else int(parts.records[first])
        warnings.append(f"{int(no_var.sum())} row(s) with a value but no variable name were left "
                        f"out (first at line {source.locate(record)})")
    # Labels given as variable names (e.g. a 'mortality' variable) leave the feature set.
    label_vars = [lb for lb in (plan.wanted_labels or []) if lb in names_all
                  and lb not in source.names]
    missing_labels = [lb for lb in (plan.wanted_labels or []) if lb not in names_all
                      and lb not in source.names]
    if missing_labels:
        raise InputError(f"label(s) {_names(missing_labels)} are neither columns nor variables",
                         path=path)
    wanted = plan.wanted_features
    if wanted is not None:
        unknown = [f for f in wanted if f not in names_all and f not in source.names]
        if unknown:
            raise InputError(f"feature(s) {_names(unknown)} not found among the variables "
                             f"{_names(sorted(names_all), 12)}", path=path, column=plan.var_col)
        keep_names = [f for f in wanted if f in names_all]
    else:
        keep_names = sorted(n for n in names_all if n not in label_vars)
    index = {name: i for i, name in enumerate(names_all)}
    new_code = np.full(len(names_all) + 1, -1, dtype=np.int32)
    for j, name in enumerate(keep_names):
        new_code[index[name]] = j
    mapped = new_code[np.where(codes < 0, len(names_all), codes)]
    left_out = (mapped < 0) & (codes >= 0) & ~np.isnan(values)
    unused = sorted({names_all[c] for c in np.unique(codes[left_out])} - set(label_vars))
    if unused:
        warnings.append(f"{int(left_out.sum())} row(s) of variable(s) not among the features were "
                        f"left out: {_names(unused)}")
    n_empty = int(((codes >= 0) & np.isnan(values)).sum())
    if n_empty:
        warnings.append(f"{n_empty} row(s) have a variable but no value")
    parts.long_codes = mapped
    parts.long_values = values
    parts.long_names = keep_names
    for lb in label_vars:
        x = np.where(codes == index[lb], values, np.nan).astype(np.float64)
        parts.row_labels[lb] = x
    # Extra columns listed as features are read like wide-format columns.
    extra = [c for c in (plan.feature_cols or [])]
    if extra:
        parts.wide = [(name, take(x)) for name, x in
                      _feature_columns(source, acc, extra, True, warnings)]
