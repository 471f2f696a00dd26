"""Entry points: :func:`read_data`, :func:`inspect_file` and :func:`estimate_memory`."""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import InputError
from ..dataset import Dataset
from ..inspection import FileInspection
from ..physionet import inspect_physionet2012, read_physionet2012
from ..timeseries import AGGREGATIONS, TimeParser
from .columns import _accumulate
from .infer import _preview_identifiers, _preview_kinds, _suggest
from .plan import _plan
from .series import _build_series
from .sources import _CHUNK_CELLS, Progress, _check_path, _open_source, _Source, _TextSource
from .tables import _build_table

FORMATS = ("auto", "table", "long", "wide", "physionet2012")


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
        return inspect_physionet2012(p, nrows=nrows)
    source = _open_source(p)
    preview = source.preview(nrows)
    kinds = _preview_kinds(preview, source.decimal)
    fmt, roles, picks = _suggest(list(preview.columns), kinds)
    warnings = list(source.warnings)
    if fmt != "long":
        note = _preview_identifiers(preview, kinds, roles, source.decimal,
                                    generated=not source.has_header)
        if note:
            warnings.append(note)
    return FileInspection(
        path=str(p), file_type=source.kind, suggested_format=fmt, encoding=source.encoding,
        delimiter=source.delimiter, decimal=source.decimal, has_header=source.has_header,
        columns=list(preview.columns), preview=preview, kinds=kinds, roles=roles,
        id_col=picks["id"], time_col=picks["time"], var_col=picks["variable"],
        value_col=picks["value"], n_rows_estimate=source.estimate_rows(),
        warnings=warnings)


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
