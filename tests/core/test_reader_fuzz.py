"""Property tests: malformed files never crash a reader; they load or raise InputError."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data.dataset import Dataset
from core.data.idx import read_idx
from core.data.readers import inspect_file, read_data
from core.errors import InputError

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# Cells built from the characters that break naive parsers: delimiters, quotes, decimal marks,
# signs, non-ASCII letters, stray line ends.
cell = st.one_of(
    st.text(alphabet="0123456789.,;-+eE", max_size=6),
    st.text(alphabet='abcé"\'| \t;,:-', max_size=5),
    st.sampled_from(["", "inf", "-inf", "nan", "NA", "?", "1e309", "00:30", "2024-01-01",
                     "1,5", "\"a,b\"", "\"", "\r", "99999999999999999999"]),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
line = st.lists(cell, min_size=0, max_size=6)
delimiter = st.sampled_from([",", ";", "\t", "|"])
line_end = st.sampled_from(["\n", "\r\n", "\r"])
encoding = st.sampled_from(["utf-8", "utf-8-sig", "cp1252"])


def _render(header, rows, delim, end):
    lines = [delim.join(header)] if header is not None else []
    lines += [delim.join(r) for r in rows]
    return end.join(lines) + end


def _read_or_refuse(path, **kwargs):
    try:
        ds = read_data(path, **kwargs)
    except InputError as exc:
        text = str(exc)
        assert text and "\n" not in text, "InputError messages are one plain line"
        return None
    assert isinstance(ds, Dataset)
    assert ds.values.dtype == np.float32
    assert ds.mask.shape == ds.values.shape
    assert not np.isinf(ds.values).any()
    # observed cells hold numbers, unobserved cells hold NaN
    assert np.isfinite(ds.values[ds.mask]).all()
    assert np.isnan(ds.values[~ds.mask]).all()
    return ds


@FUZZ
@given(header=st.one_of(st.none(), line), rows=st.lists(line, max_size=8), delim=delimiter,
       end=line_end, enc=encoding)
def test_random_tables_load_or_raise_input_error(tmp_path_factory, header, rows, delim, end, enc):
    path = tmp_path_factory.mktemp("fuzz") / "data.csv"
    text = _render(header, rows, delim, end)
    path.write_bytes(text.encode(enc, errors="replace"))
    _read_or_refuse(path)
    try:
        inspect_file(path)
    except InputError:
        pass


@FUZZ
@given(rows=st.lists(st.tuples(cell, cell, cell, cell), min_size=0, max_size=10),
       delim=delimiter)
def test_random_long_series_load_or_raise_input_error(tmp_path_factory, rows, delim):
    path = tmp_path_factory.mktemp("fuzz") / "long.csv"
    path.write_text(_render(["pid", "hour", "var", "val"], [list(r) for r in rows], delim, "\n"),
                    encoding="utf-8")
    ds = _read_or_refuse(path, id_col="pid", time_col="hour", var_col="var", value_col="val")
    if ds is not None:
        assert ds.is_series
        assert (ds.lengths >= 1).all()
        real = ds.step_mask
        assert np.isnan(ds.times[~real]).all() and np.isfinite(ds.times[real]).all()


@FUZZ
@given(rows=st.lists(st.tuples(st.sampled_from(["1", "2", "x", ""]), cell, cell, cell),
                     min_size=0, max_size=10), step=st.sampled_from([None, 0.5, 1.0]),
       max_steps=st.sampled_from([None, 1, 3]), aggregate=st.sampled_from(["last", "mean"]))
def test_random_wide_series_load_or_raise_input_error(tmp_path_factory, rows, step, max_steps,
                                                      aggregate):
    path = tmp_path_factory.mktemp("fuzz") / "wide.csv"
    path.write_text(_render(["id", "time", "a", "b"], [list(r) for r in rows], ",", "\n"),
                    encoding="utf-8")
    ds = _read_or_refuse(path, id_col="id", time_col="time", time_step=step,
                         max_steps=max_steps, aggregate=aggregate)
    if ds is not None:
        assert ds.is_series
        if max_steps is not None:
            assert ds.values.shape[1] <= max_steps


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash_readers(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    for name in ("blob.csv", "blob.xlsx", "blob.parquet"):
        path = folder / name
        path.write_bytes(data)
        _read_or_refuse(path)
    idx = folder / "blob-idx1-ubyte.gz"
    idx.write_bytes(gzip.compress(data) if data[:1] == b"\x00" else data)
    try:
        arr = read_idx(idx)
    except InputError:
        return
    assert isinstance(arr, np.ndarray)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt"])
def test_whitespace_only_file_is_refused(tmp_path, suffix):
    path = tmp_path / f"blank{suffix}"
    path.write_text("  \n\n\t\n")
    with pytest.raises(InputError, match="empty"):
        read_data(path)
