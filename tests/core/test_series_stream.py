"""Series read in groups of whole patients, and workbooks read row by row, hold exactly what
reading the whole file gives."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

import core.data.readers.sources as sources
from core.data.readers import read_data
from core.data.readers.series_stream import ScatteredPatients, iter_series_chunks
from core.data.timeseries import infer_time_step


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(sources, "_CHUNK_CELLS", 1000)  # 1000 rows per parser chunk


def assert_same_patients(parts, whole):
    """The groups, stacked, are the whole file's dataset (each group padded only to its own longest)."""
    i = 0
    for ds in parts:
        n, t = ds.values.shape[:2]
        assert ds.feature_names == whole.feature_names
        np.testing.assert_array_equal(ds.values, whole.values[i:i + n, :t])
        assert np.isnan(whole.values[i:i + n, t:]).all()
        np.testing.assert_array_equal(ds.mask, whole.mask[i:i + n, :t])
        np.testing.assert_array_equal(ds.times, whole.times[i:i + n, :t])
        np.testing.assert_array_equal(ds.lengths, whole.lengths[i:i + n])
        np.testing.assert_array_equal(ds.ids, whole.ids[i:i + n])
        assert ds.ids.dtype.kind == whole.ids.dtype.kind
        i += n
    assert i == whole.n_samples


def wide_frame(n_patients: int, seed: int, text_ids: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        n = int(rng.integers(1, 40))
        times = np.sort(rng.choice(200, n, replace=False)) * 0.25
        if p % 9 == 4:
            times = times[::-1]  # rows out of time order
        pid = f"00{p}" if text_ids and p == n_patients - 1 else str(p)
        for t in times:
            rows.append((pid, t, rng.normal(80, 10), rng.normal() if rng.random() < 0.6 else np.nan,
                         rng.choice(["a", "b", None])))
    frame = pd.DataFrame(rows, columns=["pid", "hour", "hr", "lactate", "grp"])
    frame.loc[[3, 700], "hour"] = np.nan  # rows without a time are left out
    return frame


@pytest.mark.parametrize("text_ids", [False, True])
def test_wide_groups_hold_the_whole_file_patients(tmp_path, small_chunks, text_ids):
    path = tmp_path / "wide.csv"
    wide_frame(180, 1, text_ids).to_csv(path, index=False)
    whole = read_data(path, id_col="pid", time_col="hour")
    chunks = iter_series_chunks(path, whole.feature_names, id_col="pid", time_col="hour", batch_rows=300)
    parts = list(chunks)
    assert len(parts) >= 8
    assert_same_patients(parts, whole)
    assert whole.ids.dtype.kind == ("U" if text_ids else "i")
    assert chunks.step == 0.25 and any("without a patient id or a time" in n for n in chunks.notes)


def test_long_groups_hold_the_whole_file_patients(tmp_path, small_chunks):
    wide = wide_frame(120, 2).drop(columns="grp")
    long = wide.melt(id_vars=["pid", "hour"], var_name="variable", value_name="value")
    long = long.iloc[np.argsort(long["pid"].astype(str).to_numpy(), kind="stable")]
    long.loc[long.index[::50], "variable"] = " hr"  # names are stripped, as read_data does
    path = tmp_path / "long.csv"
    long.to_csv(path, index=False)
    whole = read_data(path, id_col="pid", time_col="hour", var_col="variable", value_col="value")
    parts = list(iter_series_chunks(path, whole.feature_names, id_col="pid", time_col="hour",
                                    var_col="variable", value_col="value", batch_rows=400))
    assert len(parts) >= 4
    assert_same_patients(parts, whole)


def test_an_irregular_time_step_is_inferred_as_for_the_whole_file(tmp_path, small_chunks):
    rng = np.random.default_rng(3)
    rows = []
    start = pd.Timestamp("2024-03-01 00:00")
    for p in range(150):
        minutes = np.cumsum(rng.choice([55, 60, 60, 61, 90, 120], size=int(rng.integers(2, 20))))
        rows += [(f"S{p}", (start + pd.Timedelta(minutes=int(m))).isoformat(sep=" "), rng.normal()) for m in minutes]
    frame = pd.DataFrame(rows, columns=["stay", "charttime", "hr"])
    path = tmp_path / "stamps.csv"
    frame.to_csv(path, index=False)
    whole = read_data(path, id_col="stay", time_col="charttime")
    chunks = iter_series_chunks(path, whole.feature_names, id_col="stay", time_col="charttime", batch_rows=200)
    codes = pd.factorize(frame["stay"])[0]
    hours = (pd.to_datetime(frame["charttime"]) - pd.Timestamp("1970-01-01")) / pd.Timedelta(hours=1)
    assert chunks.step == infer_time_step(codes, hours.to_numpy())
    assert_same_patients(list(chunks), whole)


def test_far_longer_stays_are_split_where_the_whole_file_splits_them(tmp_path, small_chunks):
    rows = [(p, float(t), 1.0 + t % 3) for p in range(400) for t in range(6)]
    rows += [(400, float(t), 2.0) for t in range(3000)]
    path = tmp_path / "long_stay.csv"
    pd.DataFrame(rows, columns=["pid", "hour", "x"]).to_csv(path, index=False)
    whole = read_data(path, id_col="pid", time_col="hour")
    assert whole.n_samples == 400 + 3000 // 6 and whole.lengths.sum() == len(rows)  # kept, in parts
    chunks = iter_series_chunks(path, whole.feature_names, id_col="pid", time_col="hour", batch_rows=500)
    assert chunks.part_steps == 6
    assert any("far more than the rest" in n and "'400'" in n for n in chunks.notes)
    groups = list(chunks)
    assert_same_patients(groups, whole)
    np.testing.assert_array_equal(np.concatenate([g.starts if g.starts is not None else np.zeros(g.n_samples, int)
                                                  for g in groups]), whole.starts)


def test_scattered_patient_rows_are_found_before_anything_is_read(tmp_path, small_chunks):
    frame = wide_frame(60, 4)
    moved = frame[frame["pid"] == "5"].index[:1]
    frame = pd.concat([frame.drop(moved), frame.loc[moved]])
    path = tmp_path / "scattered.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ScatteredPatients, match="patient '5' are not together"):
        iter_series_chunks(path, ["hr"], id_col="pid", time_col="hour")


def test_a_table_or_a_folder_is_not_a_series_here(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    assert iter_series_chunks(table, ["a"]) is None
    assert iter_series_chunks(tmp_path, ["a"]) is None


def test_a_workbook_is_read_in_chunks_cell_for_cell_as_read_excel_reads_it(tmp_path, small_chunks):
    book = Workbook()
    sheet = book.active
    sheet.append(["id", "when", "x", "y", "flag", "note"])
    rng = np.random.default_rng(5)
    for i in range(2600):
        if i in (10, 11, 1500):
            sheet.append([])  # empty rows inside the data are rows
            continue
        row = [i if i % 3 else f"P{i}",
               dt.datetime(2024, 1, 1) + dt.timedelta(hours=i) if i % 50 else "2024-02-01 08:00",
               float(rng.normal()) if i % 7 else None, i if i % 11 else 2.5, bool(i % 2) if i % 13 else None,
               "NA" if i % 17 == 0 else ("  " if i % 19 == 0 else "t")]
        if i == 999:
            row += [None, "past the header"]
        sheet.append(row)
    sheet.append([])
    sheet.append([None] * 7 + ["only past the header"])
    sheet.append([])  # empty rows at the end are not
    path = tmp_path / "book.xlsx"
    book.save(path)
    source = sources._ExcelSource(path)
    parts = list(source.frames(set(), None))
    whole = pd.read_excel(path, header=None, skiprows=1, dtype=object, engine="openpyxl")
    whole = whole.reindex(columns=range(6))
    whole.columns = source.names
    whole = whole.infer_objects()
    assert [len(p) for p in parts] == [1000, 1000, 602] and sum(map(len, parts)) == len(whole)
    got = pd.concat(parts, ignore_index=True)
    for name in source.names:
        for a, b in zip(whole[name].astype(object), got[name].astype(object)):
            assert (pd.isna(a) and pd.isna(b)) or (type(a) is type(b) and a == b), (name, a, b)


@pytest.mark.parametrize("suffix", [".xlsx", ".parquet"])
def test_workbook_and_parquet_series_groups_hold_the_whole_file_patients(tmp_path, small_chunks, suffix):
    path = tmp_path / f"series{suffix}"
    frame = wide_frame(90, 6)
    frame.to_excel(path, index=False) if suffix == ".xlsx" else frame.to_parquet(path, index=False)
    whole = read_data(path, id_col="pid", time_col="hour")
    parts = list(iter_series_chunks(path, whole.feature_names, id_col="pid", time_col="hour", batch_rows=300))
    assert len(parts) >= 4
    assert_same_patients(parts, whole)
