"""A table read in chunks gives the rows, ids and refusals of the whole-file reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import core.data.readers.sniff as sniff
import core.data.readers.sources as sources
from core.data.readers import iter_table_chunks, read_data
from core.errors import InputError


def table(n: int, seed: int = 0) -> pd.DataFrame:
    """Ids (some with a leading blank, some missing), numbers with gaps, and a text column."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"pid": [f" P{i}" if i % 7 == 0 else f"P{i}" for i in range(n)],
                       "hr": rng.normal(80, 10, n).round(2),
                       "sex": rng.choice(["F", "M"], n).astype(object),
                       "sbp": rng.normal(120, 15, n).round(1)})
    df.loc[rng.choice(n, n // 10, replace=False), "hr"] = np.nan
    df.loc[rng.choice(n, n // 10, replace=False), "sex"] = None
    df.loc[[3, n - 2], "pid"] = None
    return df


def gather(chunks) -> tuple[np.ndarray, list[str], list[int]]:
    parts = list(chunks)
    values = np.concatenate([ds.values for ds in parts])
    ids = [str(i) for ds in parts for i in ds.ids] if parts[0].ids is not None else []
    return values, ids, [ds.n_samples for ds in parts]


def whole_file(path, features, **options):
    """read_data's values in the order of ``features``, and its ids as text."""
    ds = read_data(path, **options)
    order = [ds.feature_names.index(f) for f in features]
    return ds.values[:, order], [str(i) for i in ds.ids] if ds.ids is not None else []


@pytest.mark.parametrize("sep, decimal", [(",", "."), (";", ",")])
def test_chunks_hold_the_values_and_ids_of_read_data_across_chunk_boundaries(tmp_path, monkeypatch,
                                                                              sep, decimal):
    n = 950
    path = tmp_path / "new.csv"
    table(n).to_csv(path, index=False, sep=sep, decimal=decimal)
    features = ["sbp", "sex=M", "hr", "sex=F"]  # another order than the file's
    expected_values, expected_ids = whole_file(path, features, id_col="pid")
    # Small parser chunks (4 columns: 1000 rows) cut again into 37 rows: both kinds of boundary.
    monkeypatch.setattr(sources, "_CHUNK_CELLS", 400)
    chunks = iter_table_chunks(path, features, id_col="pid", chunk_rows=37)
    assert chunks.id_col == "pid" and chunks.feature_names == features
    values, ids, sizes = gather(chunks)
    assert sizes[0] == 37 and len(sizes) > n // 37 and sum(sizes) == n
    np.testing.assert_array_equal(values, expected_values)  # NaN where read_data has NaN
    assert ids == expected_ids
    assert ids[7] == " P7" and ids[14] == " P14" and ids[3] == ""  # blanks kept as written
    assert np.isnan(values[:, 1]).sum() == n // 10  # a missing category is missing, not 0


def test_whole_number_ids_read_as_read_data_reads_them(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("stay_id,x\n" + "".join(f"{1000 + i},{i * 0.5}\n" for i in range(120)))
    ds = read_data(path)
    parts = list(iter_table_chunks(path, ["x"], chunk_rows=50))
    assert [len(p.ids) for p in parts] == [50, 50, 20]
    assert all(p.ids.dtype == np.int64 and p.id_col == "stay_id" for p in parts)
    np.testing.assert_array_equal(np.concatenate([p.ids for p in parts]), ds.ids)
    np.testing.assert_array_equal(np.concatenate([p.values[:, 0] for p in parts]), ds.values[:, 0])


def test_parquet_chunks_hold_the_values_of_read_data(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "new.parquet"
    table(300).to_parquet(path, index=False)
    features = ["hr", "sex=F", "sbp"]
    expected_values, expected_ids = whole_file(path, features, id_col="pid")
    values, ids, sizes = gather(iter_table_chunks(path, features, id_col="pid", chunk_rows=64))
    assert sizes == [64, 64, 64, 64, 44]
    np.testing.assert_array_equal(values, expected_values)
    assert ids == expected_ids


def test_text_in_a_numeric_column_of_a_later_chunk_is_refused_naming_its_line(tmp_path):
    df = table(400).drop(columns="pid")
    df["sbp"] = df["sbp"].astype(object)
    df.loc[333, "sbp"] = "n/a?"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError) as whole:
        read_data(path)
    handed = []
    with pytest.raises(InputError) as streamed:
        for ds in iter_table_chunks(path, ["hr", "sbp"], chunk_rows=100):
            handed.append(ds.n_samples)
    assert handed == [100, 100, 100]  # the chunks before the bad line were good
    assert streamed.value.row == 335 and streamed.value.column == "sbp"
    assert str(streamed.value) == str(whole.value)
    assert "line 335" in str(streamed.value) and "'n/a?'" in str(streamed.value)


def test_infinity_in_a_later_chunk_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "inf.csv"
    rows = [f"{i},{i * 0.1:.1f}" for i in range(200)]
    rows[150] = "150,inf"
    path.write_text("a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as whole:
        read_data(path)
    with pytest.raises(InputError) as streamed:
        list(iter_table_chunks(path, ["b"], chunk_rows=64))
    assert streamed.value.row == 152 and str(streamed.value) == str(whole.value)


def test_a_late_non_utf8_byte_reads_the_whole_file_as_cp1252(tmp_path, monkeypatch):
    monkeypatch.setattr(sniff, "_SAMPLE_BYTES", 2048)  # the é lies beyond the sniffed sample
    lines = [f"{i},{i % 5},{'Paris' if i % 2 else 'Lyon'}" for i in range(400)]
    lines[390] = "390,1,Montr\xe9al"
    path = tmp_path / "late.csv"
    path.write_bytes(("x,y,city\n" + "\n".join(lines) + "\n").encode("cp1252"))
    chunks = iter_table_chunks(path, ["y", "city=Montréal", "city=Lyon"], chunk_rows=100)
    assert any("not UTF-8 throughout" in note for note in chunks.notes)
    values, _, _ = gather(chunks)
    assert values[390].tolist() == [1.0, 1.0, 0.0] and values[:, 1].sum() == 1
    assert values[:, 2].sum() == 199
    np.testing.assert_array_equal(values, whole_file(path, chunks.feature_names)[0])


def test_features_the_file_lacks_are_refused_before_reading(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,x\n3,4,y\n")
    with pytest.raises(InputError, match="lacks the model's features d, e=1"):
        iter_table_chunks(path, ["a", "d", "e=1"])
    level = list(iter_table_chunks(path, ["c=z", "c=x"]))[0]  # an unseen level is 0
    np.testing.assert_array_equal(level.values, [[0, 1], [0, 0]])


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("a,b\n", "has a header but no data rows"),
])
def test_files_without_rows_are_refused(tmp_path, text, message):
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        list(iter_table_chunks(path, ["a"]))


def test_inputs_that_are_not_tables_give_none(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text("id,time,variable,value\n" + "".join(
        f"{p},{t},{v},{t + p}\n" for p in range(3) for t in range(4) for v in ("HR", "SBP")))
    assert iter_table_chunks(long, ["HR"]) is None  # inferred long format
    flat = tmp_path / "flat.csv"
    flat.write_text("a,b\n1,2\n3,4\n")
    assert iter_table_chunks(flat, ["a"], format="wide") is None
    assert iter_table_chunks(tmp_path, ["a"]) is None  # a folder (PhysioNet 2012)
    book = tmp_path / "book.xlsx"  # a workbook is a table: read row by row
    pd.DataFrame({"a": [1, 2]}).to_excel(book, index=False)
    assert [ds.values.ravel().tolist() for ds in iter_table_chunks(book, ["a"])] == [[1.0, 2.0]]
    with pytest.raises(InputError, match="format must be one of"):
        iter_table_chunks(flat, ["a"], format="sheet")
