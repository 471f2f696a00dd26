"""Sniffing text files: encoding, delimiter, decimal mark, header and column names."""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError

_DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_BYTES = 1 << 20
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.I)
_COMMA_DECIMAL = re.compile(r"^[+-]?\d*,\d+$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d*\.\d+$")


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
