"""CSV exports: cluster assignments, per-node summaries and transition matrices.

The ``*_frame`` functions build pandas DataFrames from numpy results; :func:`write_csv`
writes any of them safely for spreadsheet users (UTF-8, header, ISO dates, atomic, and
cells that a spreadsheet would run as a formula are neutralised). The GUI and the CLI only
choose the path.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..grid import SOMGrid
from .outputs import atomic_text

__all__ = ["assignments_frame", "node_summary_frame", "transition_frame", "write_csv", "write_csv_lines"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _unique_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name = f"input_{name}"
    return name


def assignments_frame(
    *,
    bmu: np.ndarray,
    grid: SOMGrid,
    proba: np.ndarray | None = None,
    dataset: Dataset | None = None,
    step_mask: np.ndarray | None = None,
    next_node_pred: np.ndarray | None = None,
    path_node: np.ndarray | None = None,
    probabilities: bool = False,
) -> pd.DataFrame:
    """One line per assigned point, in input order, with its node and assignment quality.

    Parameters
    ----------
    bmu : ndarray of int
        Best-matching node per point: ``(n,)`` for a table, ``(n_patients, n_steps)`` for a
        series (padding entries are ignored).
    grid : SOMGrid
        The map; gives ``node_row``/``node_col`` and the number of nodes ``K``.
    proba : ndarray of float, optional
        Soft assignment ``(n, K)`` or ``(n_patients, n_steps, K)``; rows sum to 1. Needed for
        ``p_max``, ``entropy`` and the probability columns.
    dataset : Dataset, optional
        Supplies the id and time columns (named after ``dataset.id_col``/``time_col``,
        default "id"/"time") and, for series, the real-step mask.
    step_mask : ndarray of bool, optional
        Same shape as ``bmu``: which entries are real points. Defaults to
        ``dataset.step_mask``, or everything.
    next_node_pred : ndarray of int, optional
        T-DPSOM prediction of the next step's node, same shape as ``bmu``.
    path_node : ndarray of int, optional
        T-DPSOM: the node of each step on the patient's smoothed path
        (:meth:`core.workflow.ModelRun.node_paths`), same shape as ``bmu``.
    probabilities : bool
        Add ``p_0 .. p_{K-1}`` (requires ``proba``).

    Returns
    -------
    DataFrame
        Columns, in order: ``row`` (tables: 0-based input row; series: 0-based running
        number of the real step), the id column (series always: the patient id, or the
        patient index without ids; tables only when the dataset has ids), the time column
        (series: the step's time, or the step index without times), ``node``,
        ``node_row``, ``node_col``, ``path_node``, ``path_row`` and ``path_col`` when
        ``path_node`` is given, then with ``proba`` ``p_max`` and ``entropy`` (in nats),
        ``next_node_pred`` when given, and ``p_0 .. p_{K-1}`` when requested. Series lines
        run patient by patient, in time order within each patient.

    Raises
    ------
    ValueError
        Mismatched shapes, node indices outside the grid, or ``probabilities`` without
        ``proba``.
    """
    bmu = np.asarray(bmu)
    if bmu.ndim not in (1, 2):
        raise ValueError(f"bmu must be (n,) or (n_patients, n_steps); got shape {bmu.shape}")
    series = bmu.ndim == 2
    k = grid.n_nodes
    if probabilities and proba is None:
        raise ValueError("probabilities=True needs the soft assignment proba")
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        if proba.shape != bmu.shape + (k,):
            raise ValueError(f"proba has shape {proba.shape}; expected {bmu.shape + (k,)} for this bmu and grid")
    if next_node_pred is not None:
        next_node_pred = np.asarray(next_node_pred)
        if next_node_pred.shape != bmu.shape:
            raise ValueError(f"next_node_pred has shape {next_node_pred.shape}; expected {bmu.shape}")
    if path_node is not None:
        path_node = np.asarray(path_node)
        if path_node.shape != bmu.shape:
            raise ValueError(f"path_node has shape {path_node.shape}; expected {bmu.shape}")
    if dataset is not None:
        expected = dataset.values.shape[:-1]
        if dataset.is_series != series or expected != bmu.shape:
            raise ValueError(f"bmu has shape {bmu.shape} but the dataset has {expected} points")
    if step_mask is None:
        step_mask = dataset.step_mask if dataset is not None else np.ones(bmu.shape, dtype=bool)
    step_mask = np.asarray(step_mask, dtype=bool)
    if step_mask.shape != bmu.shape:
        raise ValueError(f"step_mask has shape {step_mask.shape}; expected {bmu.shape}")

    nodes = bmu[step_mask].astype(np.int64)
    if nodes.size and (nodes.min() < 0 or nodes.max() >= k):
        raise ValueError(f"bmu holds node indices outside 0..{k - 1}")
    where = np.nonzero(step_mask)  # C order: patient by patient, then time

    columns: dict[str, Any] = {}
    if series:
        columns["row"] = np.arange(nodes.size, dtype=np.int64)
    else:
        columns["row"] = where[0].astype(np.int64)
    reserved = {"row", "node", "node_row", "node_col", "path_node", "path_row", "path_col", "p_max", "entropy",
                "next_node_pred"}
    reserved |= {f"p_{j}" for j in range(k)}
    ids = dataset.ids if dataset is not None else None
    times = dataset.times if dataset is not None else None
    if series or ids is not None:
        name = _unique_name((dataset.id_col if dataset is not None else None) or "id", reserved)
        columns[name] = np.asarray(ids)[where[0]] if ids is not None else where[0].astype(np.int64)
        reserved.add(name)
    if series or times is not None:
        name = _unique_name((dataset.time_col if dataset is not None else None) or "time", reserved)
        columns[name] = np.asarray(times)[where] if times is not None else where[-1].astype(np.int64)
    rows, cols = grid.coords(nodes)
    columns["node"] = nodes
    columns["node_row"] = np.asarray(rows, dtype=np.int64)
    columns["node_col"] = np.asarray(cols, dtype=np.int64)
    if path_node is not None:
        path = path_node[step_mask].astype(np.int64)
        if path.size and (path.min() < 0 or path.max() >= k):
            raise ValueError(f"path_node holds node indices outside 0..{k - 1} at real steps")
        rows, cols = grid.coords(path)
        columns["path_node"] = path
        columns["path_row"] = np.asarray(rows, dtype=np.int64)
        columns["path_col"] = np.asarray(cols, dtype=np.int64)
    if proba is not None:
        p = proba[step_mask]  # (M, K)
        columns["p_max"] = p.max(axis=1) if p.size else np.zeros(0)
        logp = np.log(np.where(p > 0, p, 1.0))
        columns["entropy"] = -(p * logp).sum(axis=1)
    if next_node_pred is not None:
        columns["next_node_pred"] = next_node_pred[step_mask].astype(np.int64)
    if probabilities:
        for j in range(k):
            columns[f"p_{j}"] = p[:, j]
    return pd.DataFrame(columns)


def _per_node(annotations: Mapping[str, Any], key: str, k: int) -> list | None:
    value = annotations.get(key)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return [value.get(str(j), value.get(j)) for j in range(k)]
    value = list(value)
    if len(value) != k:
        raise ValueError(f"annotations[{key!r}] has {len(value)} entries for {k} nodes")
    return value


def node_summary_frame(
    grid: SOMGrid,
    *,
    bmu: np.ndarray | None = None,
    step_mask: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    label_means: Mapping[str, np.ndarray] | None = None,
    prototypes: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    annotations: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One line per node: position, size, label means, prototype and annotations.

    Parameters
    ----------
    grid : SOMGrid
    bmu : ndarray of int, optional
        Assignments, any shape; counted per node (entries where ``step_mask`` is False are
        skipped). Ignored when ``counts`` is given.
    step_mask : ndarray of bool, optional
        Same shape as ``bmu``.
    counts : ndarray of int, optional
        Points per node ``(K,)``.
    label_means : dict of str to ndarray, optional
        Per-node value of each label ``(K,)``; column ``mean_<label>``.
    prototypes : ndarray of float, optional
        Decoded prototypes in original units ``(K, D)``; one column per feature.
    feature_names : sequence of str, optional
        ``D`` names for the prototype columns (default ``feature_0 ..``). A name that clashes
        with another column gets a ``prototype_`` prefix.
    annotations : dict, optional
        ``"node_names"`` and ``"superclusters"``: a list of ``K`` values or a dict keyed by
        node index; they become the ``name`` and ``supercluster`` columns.

    Returns
    -------
    DataFrame
        ``node``, ``node_row``, ``node_col``, ``count`` (when ``bmu`` or ``counts`` given),
        ``supercluster``, ``name``, ``mean_<label>`` columns, prototype columns.
    """
    k = grid.n_nodes
    nodes = np.arange(k, dtype=np.int64)
    rows, cols = grid.coords(nodes)
    columns: dict[str, Any] = {"node": nodes, "node_row": rows, "node_col": cols}
    if counts is not None:
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (k,):
            raise ValueError(f"counts has shape {counts.shape}; expected ({k},)")
        columns["count"] = counts
    elif bmu is not None:
        bmu = np.asarray(bmu)
        picked = bmu[np.asarray(step_mask, dtype=bool)] if step_mask is not None else bmu.ravel()
        columns["count"] = np.bincount(picked.astype(np.int64), minlength=k)[:k]
    if annotations:
        superclusters = _per_node(annotations, "superclusters", k)
        if superclusters is not None:
            columns["supercluster"] = superclusters
        names = _per_node(annotations, "node_names", k)
        if names is not None:
            columns["name"] = ["" if n is None else str(n) for n in names]
    for label, values in (label_means or {}).items():
        values = np.asarray(values)
        if values.shape != (k,):
            raise ValueError(f"label means for {label!r} have shape {values.shape}; expected ({k},)")
        columns[f"mean_{label}"] = values
    if prototypes is not None:
        prototypes = np.asarray(prototypes)
        if prototypes.ndim != 2 or prototypes.shape[0] != k:
            raise ValueError(f"prototypes have shape {prototypes.shape}; expected ({k}, n_features)")
        names = list(feature_names) if feature_names is not None else [
            f"feature_{j}" for j in range(prototypes.shape[1])]
        if len(names) != prototypes.shape[1]:
            raise ValueError(f"{len(names)} feature names for {prototypes.shape[1]} prototype columns")
        for j, name in enumerate(names):
            columns[name if name not in columns else f"prototype_{name}"] = prototypes[:, j]
    return pd.DataFrame(columns)


def transition_frame(matrix: np.ndarray, *, long: bool = False) -> pd.DataFrame:
    """A node-to-node transition matrix as a table.

    Parameters
    ----------
    matrix : ndarray, shape (K, K)
        ``matrix[i, j]``: transitions (counts or probabilities) from node ``i`` to ``j``.
    long : bool
        False: one line per source node with ``from_node`` and ``to_0 .. to_{K-1}``.
        True: one line per non-zero entry with ``from_node``, ``to_node``, ``value``.

    Returns
    -------
    DataFrame
    """
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a transition matrix must be square (K, K); got shape {m.shape}")
    k = m.shape[0]
    if long:
        i, j = np.nonzero(m)
        return pd.DataFrame({"from_node": i.astype(np.int64), "to_node": j.astype(np.int64), "value": m[i, j]})
    columns: dict[str, Any] = {"from_node": np.arange(k, dtype=np.int64)}
    for j in range(k):
        columns[f"to_{j}"] = m[:, j]
    return pd.DataFrame(columns)


# ------------------------------------------------------------------------------ writing
#: A finite number as a spreadsheet reads it (no "nan", "inf" or Python's "1_000").
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: Leading characters a spreadsheet may drop (or a user may trim) before reading a cell.
_BLANKS = " \t\r\n"


def _escape(value: Any) -> Any:
    """Prefix an apostrophe to text a spreadsheet would evaluate as a formula.

    A cell is a formula risk when, after any leading spaces, tabs or line breaks, it starts
    with ``= + - @`` and is not a finite number: ``-1.5`` is left alone, ``-inf``, ``+nan``
    and ``=1+2`` are escaped. Text that merely starts with a space or a tab (an id such as
    " 12") is written unchanged.
    """
    if not isinstance(value, str):
        return value
    rest = value.lstrip(_BLANKS)
    if rest.startswith(_FORMULA_START) and not _NUMBER.fullmatch(rest):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    return _escape(value)


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for name in out.columns:
        s = out[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            out[name] = s.map(lambda t: t.isoformat() if pd.notna(t) else "").astype(object)
        elif pd.api.types.is_timedelta64_dtype(s.dtype):
            out[name] = s.map(lambda t: t.isoformat() if pd.notna(t) else "").astype(object)
        elif isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(s.dtype) \
                or s.dtype == object:
            out[name] = s.astype(object).map(_cell)
    out.columns = [_escape(str(c)) for c in out.columns]
    return out


def write_csv_lines(df: pd.DataFrame, fh, *, header: bool = True) -> None:
    """Append a table to an open text file in the format of :func:`write_csv`.

    For writers that produce one table in parts (``dpsom apply`` writes chunk by chunk):
    the first part with ``header=True``, the others without.
    """
    # CRLF (RFC 4180): the csv writer only quotes cells holding a character of the line
    # terminator, and a bare CR inside an unquoted cell would break the table.
    _prepare(df).to_csv(fh, index=False, header=header, lineterminator="\r\n")


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as CSV for people and spreadsheets, atomically.

    UTF-8 with a header line and no index, lines ending in CRLF as RFC 4180 asks; date-times
    in ISO 8601; missing values empty.
    Text cells (and column names) that a spreadsheet would run as a formula (after any
    leading blanks they start with ``= + - @`` and are not finite numbers, so ``-inf`` and
    ``+nan`` count) get a leading apostrophe; numbers such as ``-1.5`` and text that merely
    starts with a space or a tab are untouched. The file appears at ``path`` only once
    completely written; temporary files of an earlier, killed write are removed.

    Parameters
    ----------
    df : DataFrame
    path : str or path-like
        Target file; its folder must exist.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_text(path) as fh:
        write_csv_lines(df, fh)
    return path
