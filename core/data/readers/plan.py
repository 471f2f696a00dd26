"""The reading plan: the format and the role of each column.

The caller's options win; what they leave open comes from :mod:`.infer`, and every guess is
written to the warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import InputError
from .infer import _label_hint, _names, _preview_kinds, _suggest
from .sources import _Source


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
