"""Long and wide format: rows reshaped into what the time grid is built from.

Rows of (id, time, variable, value) or (id, time, one column per variable) become the
:class:`~core.data.timeseries.SeriesParts` that :func:`~core.data.timeseries.build_series`
puts on a grid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import InputError
from ..dataset import Dataset
from ..timeseries import SeriesParts, TimeParser, build_series, time_unit_from_name
from .columns import _DataColumn, _KeyColumn
from .infer import _names, _split_unit
from .plan import _Plan
from .sources import _Source
from .tables import (_candidates, _check_inf, _feature_columns, _label_array, _natural_ids,
                     _no_numeric, _raise_text_in_numeric)


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
        candidates, identifiers = _candidates(source, acc, plan, warnings)
        if plan.feature_cols is None and not any(
                acc[c].kind == "numeric" or (acc[c].kind == "mixed" and acc[c].n_num >= acc[c].n_text)
                for c in candidates):
            raise _no_numeric(path, identifiers, " (besides id and time)")
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
