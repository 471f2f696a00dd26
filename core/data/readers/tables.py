"""Tables: features (numbers and one-hot categories), labels and ids from read columns.

The feature columns are shared with the wide-format series.
"""

from __future__ import annotations

import re

import numpy as np

from ...errors import InputError
from .. import validation
from ..dataset import Dataset
from .columns import _DataColumn
from .infer import (MAX_CATEGORY_LEVELS, _identifier_note, _identifier_reason, _names,
                    _split_unit)
from .plan import _Plan
from .sources import _Source


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


def _candidates(source: _Source, acc: dict, plan: _Plan,
                warnings: list[str]) -> tuple[list[str], list[str]]:
    """Feature columns to consider, and the identifier-like columns left out of them.

    Listed features are taken in their order, as they are. By default every column is a
    candidate in file order, except numeric columns that look like row identifiers (see
    :func:`.infer._identifier_reason`): those are left out with a note.
    """
    order = plan.feature_cols if plan.feature_cols is not None else source.names
    cols = [c for c in order if isinstance(acc.get(c), _DataColumn) and c not in plan.labels]
    if plan.feature_cols is not None:
        return cols, []
    reasons = {c: _identifier_reason(c, acc[c].values(), generated=not source.has_header)
               for c in cols if acc[c].kind == "numeric"}
    left_out = [c for c in cols if reasons.get(c)]
    if left_out:
        warnings.append(_identifier_note(left_out, [reasons[c] for c in left_out]))
    return [c for c in cols if c not in left_out], left_out


def _no_numeric(path: str, identifiers: list[str], besides: str = "") -> InputError:
    text = f"no numeric column to use as features{besides}"
    if identifiers:
        return InputError(f"{text}: {_names(identifiers)} look like row identifiers; list them "
                          "in the features (--features) to train on them anyway", path=path)
    return InputError(f"{text}; a map needs numbers (check the delimiter and decimal mark, or "
                      "list features)", path=path)


def _build_table(source: _Source, acc: dict, n: int, plan: _Plan, warnings: list[str]) -> Dataset:
    path = source.name
    if n < 2:
        raise InputError("only one data row; a map needs at least 2 rows (and more rows than "
                         "map nodes)", path=path)
    candidates, identifiers = _candidates(source, acc, plan, warnings)
    explicit = plan.feature_cols is not None
    if not explicit:
        numeric = [c for c in candidates if acc[c].kind == "numeric"
                   or (acc[c].kind == "mixed" and acc[c].n_num >= acc[c].n_text)]
        if not numeric:
            raise _no_numeric(path, identifiers)
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
