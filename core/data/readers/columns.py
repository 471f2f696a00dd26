"""Column accumulators: each chunk parsed once into codes, numbers or times.

Ids and variables become integer codes, features, values and labels numbers; a large file is
never held as text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..timeseries import TimeParser
from .sources import Progress, _Source


def _as_text(s: pd.Series, strip: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Cells as strings (object array) and a mask of non-empty cells.

    With ``strip`` False the text is kept exactly as written (ids: " 7" and "7" are two
    patients); a cell of blanks only still counts as empty.
    """
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
        out = (stripped if strip else s).to_numpy(dtype=object, na_value="")
        return out, (stripped.notna() & (stripped != "")).to_numpy(dtype=bool)
    obj = s.astype(object)
    notna = obj.notna().to_numpy()
    out = np.full(len(s), "", dtype=object)
    if notna.any():
        # Mixed cells (Excel, Parquet): show a whole number stored as 1001.0 as "1001".
        vals = obj[notna].map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer()
                              else v)
        text = vals.astype(str)
        out[notna] = (text.str.strip() if strip else text).to_numpy(dtype=object)
        blank = np.zeros(len(s), dtype=bool)
        blank[notna] = (text.str.strip() == "").to_numpy(dtype=bool)
        return out, notna & ~blank
    return out, notna


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
    """Id or variable column: every cell kept as a string code.

    Ids keep their text exactly (``exact``); variable names are stripped so that " HR" in a
    long file is the feature "HR" that ``features`` names.
    """

    def __init__(self, name: str, exact: bool = False) -> None:
        self.name = name
        self.exact = exact
        self.codes = _Codes()
        self.parts: list[np.ndarray] = []

    def add(self, s: pd.Series, start: int) -> None:
        text, nonempty = _as_text(s, strip=not self.exact)
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
            acc[c] = _KeyColumn(c, exact=r == "id")
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
