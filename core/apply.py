"""Mapping new data onto a trained map: the assignments table of a file, written in parts.

A file is read in parts whenever it allows it, so that memory is bounded by a part rather
than growing with the rows: a table chunk by chunk (:func:`table_assignment_chunks`), a long-
or wide-format series in groups of whole patients (:func:`series_assignment_chunks`). Each
part is preprocessed, assigned and written before the next one is read. Only what cannot be
read in parts (a PhysioNet 2012 folder, a series whose patients' rows are scattered, reader
options that need the whole file) is read whole, with the same result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pandas as pd

from .data.dataset import Dataset
from .errors import InputError

__all__ = ["write_assignments", "assignment_frames", "table_assignment_chunks", "series_assignment_chunks",
           "align_features"]

Warn = Callable[[str], object]


def write_assignments(run, data, out: str | os.PathLike, *, probabilities: bool = False, warn: Warn | None = None,
                      **read_options) -> int:
    """Map ``data`` with a trained run and write its assignments table to ``out``.

    The file appears at ``out`` only once complete: bad input found late in the data (text
    in a numeric column, a missing feature) leaves ``out`` as it was.

    Parameters
    ----------
    run : core.workflow.ModelRun
        A fitted run (its model, preprocessing and grid are used).
    data : path or Dataset
        The new data: a file (or folder) or an already read dataset.
    out : path
        The CSV to write (see :func:`core.io.export.assignments_frame` for its columns).
    probabilities : bool
        Add ``p_0 .. p_{K-1}``.
    warn : callable, optional
        Called with each note about how the data were read.
    **read_options
        ``format``, ``id_col``, ``time_col``, ``var_col``, ``value_col``, ``features``,
        ``labels``, ``time_step``, ``aggregate``, ``max_steps``, as for
        :func:`core.data.readers.read_data`.

    Returns
    -------
    int
        Lines written (rows, or real patient steps).

    Raises
    ------
    InputError
        The data do not suit the model (a table for a series model, missing features) or
        cannot be read; the message names the file and, where it can, the line.
    """
    from .io.export import write_csv_lines
    from .io.outputs import atomic_text

    written, header = 0, True
    with atomic_text(out) as fh:
        for frame in assignment_frames(run, data, probabilities=probabilities, warn=warn, **read_options):
            write_csv_lines(frame, fh, header=header)
            written, header = written + len(frame), False
    return written


def assignment_frames(run, data, *, probabilities: bool = False, warn: Warn | None = None,
                      **read_options) -> Iterator[pd.DataFrame]:
    """The assignments table of ``data`` in parts, in input order (see :func:`write_assignments`).

    ``row`` counts over the whole input. Every part but the last is handed on before the
    next one is read.
    """
    _require_fitted(run)
    if not isinstance(data, Dataset):
        options = {"format": "auto", **read_options}
        if run.temporal and options.get("id_col") is None and run.dataset.id_col:
            # The model's own id and time columns, unless told otherwise.
            options["id_col"], options["time_col"] = run.dataset.id_col, run.dataset.time_col
        read = series_assignment_chunks if run.temporal else table_assignment_chunks
        parts = None if options.get("features") is not None else read(
            run, data, probabilities=probabilities, warn=warn, **options)
        if parts is not None:
            yield from parts
            return
        from .data.readers import read_data

        data = read_data(data, **options)
        for note in data.warnings:
            if warn is not None:
                warn(note)
    yield _frame(run, align_features(run, data), probabilities)


def align_features(run, ds: Dataset) -> Dataset:
    """``ds`` with the model's features in the model's order (refused when it lacks one).

    Raises
    ------
    InputError
        A table for a series model or the reverse, or a feature of the model missing.
    """
    if ds.is_series != run.temporal:
        need = "time series (give --id-col and --time-col)" if run.temporal else "a table"
        raise InputError(f"this model was trained on {need}; the new data does not match", path=ds.source or None)
    wanted = list(run.preprocessor.feature_names_)
    if ds.feature_names != wanted:
        missing = [f for f in wanted if f not in ds.feature_names]
        if missing:
            raise InputError(f"the new data lacks the model's features {', '.join(missing[:6])}; "
                             "export them with the same column names", path=ds.source or None)
        order = [ds.feature_names.index(f) for f in wanted]
        ds.values, ds.mask = ds.values[..., order], ds.mask[..., order]
        ds.feature_names = wanted
        ds.units = [ds.units[i] for i in order]
    return ds


def _frame(run, ds: Dataset, probabilities: bool) -> pd.DataFrame:
    from .io.export import assignments_frame

    a = run.assignments(ds)
    path = None
    if run.temporal:  # the smoothed path, as ModelRun.node_paths decodes it for the training data
        from .analysis.paths import smoothed_paths

        path = smoothed_paths(a["proba"], ds.lengths, run.grid.distances(), continues=ds.continues)
    return assignments_frame(bmu=a["bmu"], grid=run.grid, proba=a["proba"], dataset=ds,
                             next_node_pred=a.get("next_node_pred"), path_node=path, probabilities=probabilities)


def _require_fitted(run) -> None:
    if run.estimator is None or run.preprocessor is None:
        raise InputError("this project holds no trained model; train it first with 'dpsom train'")


def _numbered(run, datasets, probabilities: bool) -> Iterator[pd.DataFrame]:
    """The assignments of consecutive parts, ``row`` counted over all of them."""
    start = 0
    for ds in datasets:
        frame = _frame(run, ds, probabilities)
        frame["row"] += start
        start += len(frame)
        yield frame


def _announced(run, chunks, probabilities: bool, warn: Warn | None) -> Iterator[pd.DataFrame] | None:
    """Say the reader's notes now (before any part is mapped), then map the parts as they come."""
    if chunks is None:
        return None
    for note in chunks.notes:
        if warn is not None:
            warn(note)
    return _numbered(run, chunks, probabilities)


def table_assignment_chunks(run, path, *, format: str = "auto", id_col: str | None = None,
                            time_col: str | None = None, var_col: str | None = None, value_col: str | None = None,
                            labels=None, probabilities: bool = False, warn: Warn | None = None, **_series_options,
                            ) -> Iterator[pd.DataFrame] | None:
    """Assignments of a table file's rows, computed and returned chunk by chunk.

    Memory stays bounded by the chunk (about a million cells) rather than growing with the
    rows: each chunk is read (:func:`core.data.readers.iter_table_chunks`), preprocessed and
    assigned, and handed on as the lines of the assignments table (``row`` counts over the
    whole file, in input order).

    Parameters
    ----------
    run : ModelRun
        A fitted DPSOM run (tables only).
    path : path
        A text (.csv .tsv .txt), Excel (.xlsx) or Parquet file.
    format, id_col, time_col, var_col, value_col, labels
        As for :func:`core.data.readers.read_data` (options that make the file a time
        series give None).
    probabilities : bool
        Add ``p_0 .. p_{K-1}``.
    warn : callable, optional
        Called with each note about how the file was read.

    Returns
    -------
    iterator of DataFrame, or None
        None when the file cannot be read in chunks this way (a time series, a folder):
        read it whole instead.

    Raises
    ------
    InputError
        A missing feature, text or an infinite value in a feature column (naming the line),
        or a file without data rows.
    """
    from .data.readers import iter_table_chunks

    if run.temporal:
        return None
    chunks = iter_table_chunks(path, run.preprocessor.feature_names_, format=format, id_col=id_col,
                               time_col=time_col, var_col=var_col, value_col=value_col, labels=labels)
    return _announced(run, chunks, probabilities, warn)


def series_assignment_chunks(run, path, *, format: str = "auto", id_col: str | None = None,
                             time_col: str | None = None, var_col: str | None = None, value_col: str | None = None,
                             labels=None, time_step: float | None = None, aggregate: str = "last",
                             max_steps: int | None = None, probabilities: bool = False, warn: Warn | None = None,
                             batch_rows: int | None = None, **_table_options) -> Iterator[pd.DataFrame] | None:
    """Assignments of a series file's patient steps, computed and returned patient group by group.

    Each group of whole patients (:func:`core.data.readers.iter_series_chunks`, about
    ``batch_rows`` rows) is put on the time grid of the whole file, preprocessed and
    assigned; the lines are those of reading the file whole, in the same order.

    Parameters
    ----------
    run : ModelRun
        A fitted T-DPSOM run.
    path : path
        A long- or wide-format text, Excel or Parquet file.
    format, id_col, time_col, var_col, value_col, labels, time_step, aggregate, max_steps
        As for :func:`core.data.readers.read_data`.
    probabilities : bool
        Add ``p_0 .. p_{K-1}``.
    warn : callable, optional
        Called with each note about how the file was read.
    batch_rows : int, optional
        Rows per group (default: the reader's).

    Returns
    -------
    iterator of DataFrame, or None
        None when the file has to be read whole: not a long- or wide-format file, or a
        patient's rows scattered over the file (``warn`` says so).

    Raises
    ------
    InputError
        What reading the whole file refuses (naming the line), or a model feature the file
        lacks (for the long format, found only at the end: nothing is written then).
    """
    from .data.readers.series_stream import ScatteredPatients, iter_series_chunks

    if not run.temporal:
        return None
    try:
        chunks = iter_series_chunks(path, run.preprocessor.feature_names_, format=format, id_col=id_col,
                                    time_col=time_col, var_col=var_col, value_col=value_col, labels=labels,
                                    time_step=time_step, aggregate=aggregate, max_steps=max_steps,
                                    batch_rows=batch_rows)
    except ScatteredPatients as exc:
        if warn is not None:
            warn(f"{exc}; reading the whole file at once, so memory grows with its rows (sort the file by "
                 "patient to map it in parts)")
        return None
    return _announced(run, chunks, probabilities, warn)
