"""Format inference: which column is the id, the time, a variable, a value, a label.

Everything here judges column names and the kinds of a preview's cells; nothing reads a file.
"""

from __future__ import annotations

import re
import warnings as _warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import validation
from .columns import _as_text
from .sniff import _is_number

#: Text columns with at most this many distinct values become one-hot features.
MAX_CATEGORY_LEVELS = 10
_CLOCK = re.compile(r"^\d{1,4}:[0-5]\d(:[0-5]\d(\.\d*)?)?$")
_UNIT_IN_NAME = re.compile(r"^(.*?)\s*[\(\[]\s*([^\)\]]{1,20})\s*[\)\]]\s*$")


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


#: Names (joined lower-case tokens) of columns that number or key the rows.
_ROW_ID_NAMES = {"rid", "row", "rowid", "rownum", "rownumber", "rowno", "index", "idx",
                 "record", "recordid", "recno", "recordno", "seq", "seqno", "serial",
                 "serialno", "sample", "sampleid", "obsid", "uid", "key", "pk", "no", "nr"}
_ROW_ID_LAST = {"id", "ids", "rid", "idx", "index", "no", "nr", "key", "uid"}


def _row_id_name(name: str) -> bool:
    """True for names that say a column identifies rows or records (id, rid, index, ...)."""
    toks = _tokens(name)
    if not toks or _label_hint(name):
        return False
    joined = "".join(toks)
    return (joined in _ROW_ID_NAMES or joined in _ID_NAMES or toks[-1] in _ROW_ID_LAST
            or toks[0] == "unnamed")


def _identifier_reason(name: str, x: np.ndarray, generated: bool = False) -> str | None:
    """Why a numeric column looks like an identifier rather than a measurement, or None.

    An identifier is a whole number on every row, unique per row, in a column named like one
    (id, rid, record, index, ...); a column without a real name (``Unnamed: 0``, or
    ``column1`` of a file without header) counting 0, 1, 2, ... or 1, 2, 3, ... is a row
    number. A measurement rarely looks like either, and training on an identifier would only
    learn the order of the file.

    Parameters
    ----------
    name : str
        Column name.
    x : ndarray of float, shape (n_rows,)
        The column's numbers in file order (NaN where empty).
    generated : bool
        The name was made up by the reader (no header); ``columnN`` counts as made up.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 3 or not np.isfinite(x).all() or not (np.floor(x) == x).all():
        return None
    steps = np.diff(x)
    counting = x[0] in (0.0, 1.0) and bool((steps == 1).all())
    generated = generated or re.fullmatch(r"column\d+", str(name)) is not None
    if (generated or _tokens(name)[:1] == ["unnamed"]) and counting:
        return "row numbers"
    if not _row_id_name(name):
        return None
    # float32 storage merges neighbouring ids beyond 2**24: there, sorted stands for unique
    if np.unique(x).size == x.size or (bool((steps >= 0).all()) and x[-1] > 2**24):
        return "a unique whole number per row"
    return None


def _identifier_note(columns: list[str], reasons: list[str]) -> str:
    """The note saying which columns were left out of the features as identifiers."""
    return (f"Column(s) {_names(columns)} look like row identifiers "
            f"({'; '.join(sorted(set(reasons)))}) and are not used as features; list them in "
            "the features (--features) to train on them")


def _preview_identifiers(preview: pd.DataFrame, kinds: dict[str, str], roles: dict[str, str],
                         decimal: str, generated: bool) -> str | None:
    """Set identifier-like feature columns of a preview to "ignore"; return the note or None."""
    found, reasons = [], []
    for c in preview.columns:
        if roles.get(c) != "feature" or kinds.get(c) != "numeric":
            continue
        cells = preview[c]
        if not pd.api.types.is_numeric_dtype(cells):
            text = cells.astype(str).str.strip()
            cells = text.str.replace(",", ".", regex=False) if decimal == "," else text
        x = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        why = _identifier_reason(c, x, generated=generated)
        if why:
            roles[c] = "ignore"
            found.append(c)
            reasons.append(why)
    return _identifier_note(found, reasons) if found else None


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
