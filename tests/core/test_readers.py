"""Tables from real-world files: encodings, delimiters, decimal commas, headers, bad input."""

from __future__ import annotations

import gzip
import struct
from unittest.mock import Mock

import numpy as np
import pandas as pd
import pytest

from core.data.idx import read_idx, read_idx_dataset
from core.data.readers import FileInspection, estimate_memory, inspect_file, read_data
from core.data.validation import check_grid_size
from core.errors import InputError

EXPECTED = np.array([[50.5, 70.0], [60.25, 80.0], [71.0, 90.5]], dtype=np.float32)


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# ------------------------------------------------------------------ awkward real-world CSVs

@pytest.mark.parametrize("name, text, encoding", [
    ("plain.csv", "age,weight\n50.5,70\n60.25,80\n71,90.5\n", "utf-8"),
    ("bom.csv", "\ufeffage,weight\n50.5,70\n60.25,80\n71,90.5\n", "utf-8"),
    ("crlf.csv", "age,weight\r\n50.5,70\r\n60.25,80\r\n71,90.5\r\n", "utf-8"),
    ("semicolon_decimal_comma.csv", "age;weight\n50,5;70\n60,25;80\n71;90,5\n", "utf-8"),
    ("tabs.tsv", "age\tweight\n50.5\t70\n60.25\t80\n71\t90.5\n", "utf-8"),
    ("pipes.txt", "age|weight\n50.5|70\n60.25|80\n71|90.5\n", "utf-8"),
    ("quoted.csv", '"age","weight"\n"50.5","70"\n"60.25","80"\n"71","90.5"\n', "utf-8"),
    ("bom_crlf_semicolon.csv", "\ufeffage;weight\r\n50,5;70\r\n60,25;80\r\n71;90,5\r\n", "utf-8"),
    ("blank_lines.csv", "age,weight\n\n50.5,70\n60.25,80\n\n71,90.5\n\n", "utf-8"),
])
def test_awkward_csv_variants_read_to_the_same_table(tmp_path, name, text, encoding):
    ds = read_data(write(tmp_path, name, text, encoding))
    assert ds.feature_names == ["age", "weight"]
    np.testing.assert_allclose(ds.values, EXPECTED)
    assert ds.mask.all() and not ds.is_series


def test_latin1_names_and_decimal_commas(tmp_path):
    text = "patient;Température (°C);poids\n1;36,5;70\n2;37,1;80\n3;38,0;75\n"
    path = write(tmp_path, "latin.csv", text, "cp1252")
    ds = read_data(path)
    assert ds.feature_names == ["Température (°C)", "poids"]
    assert ds.units == ["°C", ""]
    np.testing.assert_allclose(ds.values[:, 0], [36.5, 37.1, 38.0], rtol=1e-6)
    np.testing.assert_array_equal(ds.ids, [1, 2, 3])
    assert any("cp1252" in w for w in ds.warnings)
    info = inspect_file(path)
    assert (info.encoding, info.delimiter, info.decimal) == ("cp1252", ";", ",")


def test_non_utf8_byte_after_the_sniffed_sample_restarts_as_cp1252(tmp_path):
    body = "".join(f"{i},{i * 2}\n" for i in range(70_000))
    path = tmp_path / "late.csv"
    path.write_bytes(("id,x,name\n" + body.replace("\n", ",abc\n") + "9,9,caf\xe9\n")
                     .encode("latin-1"))
    ds = read_data(path, labels=["name"])
    assert ds.labels["name"][-1] == "café"
    assert ds.n_samples == 70_001
    assert any("not UTF-8 throughout" in w for w in ds.warnings)


def test_quoted_delimiters_stay_inside_their_field(tmp_path):
    text = 'name,a,b\n"Smith, J",1,2\n"Doe, K",3,4\n"Roe; L",5,6\n'
    ds = read_data(write(tmp_path, "q.csv", text), labels=["name"])
    assert ds.feature_names == ["a", "b"]
    assert list(ds.labels["name"]) == ["Smith, J", "Doe, K", "Roe; L"]
    np.testing.assert_array_equal(ds.values, [[1, 2], [3, 4], [5, 6]])


@pytest.mark.parametrize("text", [
    "a,b,c,\n1,2,3,\n4,5,6,\n",      # header and rows end with the delimiter
    "a,b,c\n1,2,3,\n4,5,6,\n",       # only the rows do
])
def test_trailing_empty_columns_are_dropped_with_a_warning(tmp_path, text):
    ds = read_data(write(tmp_path, "t.csv", text))
    assert ds.feature_names == ["a", "b", "c"]
    np.testing.assert_array_equal(ds.values, [[1, 2, 3], [4, 5, 6]])
    assert any("delimiter" in w for w in ds.warnings)


def test_file_without_header_gets_generated_names(tmp_path):
    ds = read_data(write(tmp_path, "n.csv", "1,2,3\n4,5,6\n7,8,9\n"))
    assert ds.feature_names == ["column1", "column2", "column3"]
    assert ds.values.shape == (3, 3)
    assert any("No header" in w for w in ds.warnings)


def test_numeric_column_names_do_not_hide_the_header(tmp_path):
    ds = read_data(write(tmp_path, "y.csv", "id,2019,2020\n1,5,6\n2,7,8\n"))
    assert ds.feature_names == ["2019", "2020"]
    np.testing.assert_array_equal(ds.ids, [1, 2])


def test_excel_and_parquet_round_trip(tmp_path):
    frame = pd.DataFrame({"age": [50.5, 60.25, 71.0], "weight": [70.0, 80.0, 90.5],
                          "mortality": [0, 1, 0]})
    frame.to_excel(tmp_path / "t.xlsx", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.xlsx", "t.parquet"):
        ds = read_data(tmp_path / name)
        assert ds.feature_names == ["age", "weight"], name
        np.testing.assert_allclose(ds.values, EXPECTED)
        np.testing.assert_array_equal(ds.labels["mortality"], [0, 1, 0])


def test_excel_text_error_names_the_sheet_row(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1, "oops", 3, 4]})
    frame.to_excel(tmp_path / "bad.xlsx", index=False)
    with pytest.raises(InputError, match=r"line 3, column 'b'.*'oops'"):
        read_data(tmp_path / "bad.xlsx")


# ------------------------------------------------------------------ roles, labels, categories

def test_labels_never_become_features_and_ids_are_kept(tmp_path):
    text = "stay_id,hr,map,in_hospital_death\n7,80,70,0\n8,90,65,1\n9,85,60,0\n"
    ds = read_data(write(tmp_path, "r.csv", text))
    assert ds.feature_names == ["hr", "map"]
    np.testing.assert_array_equal(ds.ids, [7, 8, 9])
    np.testing.assert_array_equal(ds.labels["in_hospital_death"], [0, 1, 0])
    assert ds.id_col == "stay_id"
    assert any("labels" in w and "in_hospital_death" in w for w in ds.warnings)


def test_explicit_features_and_labels(tmp_path):
    text = "a,b,c,grade\n1,2,3,x\n4,5,6,y\n7,8,9,x\n"
    ds = read_data(write(tmp_path, "e.csv", text), features=["c", "a"], labels=["grade"])
    assert ds.feature_names == ["c", "a"]
    np.testing.assert_array_equal(ds.values, [[3, 1], [6, 4], [9, 7]])
    assert list(ds.labels["grade"]) == ["x", "y", "x"]
    assert any("not used" in w and "'b'" in w for w in ds.warnings)


def test_few_level_text_becomes_one_hot(tmp_path):
    text = "hr,sex\n80,F\n90,M\n85,\n70,F\n"
    ds = read_data(write(tmp_path, "c.csv", text))
    assert ds.feature_names == ["hr", "sex=F", "sex=M"]
    np.testing.assert_array_equal(ds.values[[0, 1, 3], 1:], [[1, 0], [0, 1], [1, 0]])
    assert not ds.mask[2, 1:].any() and np.isnan(ds.values[2, 1:]).all()
    assert any("one-hot" in w for w in ds.warnings)


def test_many_level_text_is_refused_with_advice(tmp_path):
    text = "hr,ward\n" + "".join(f"{80 + i},w{i}\n" for i in range(12))
    with pytest.raises(InputError, match=r"column 'ward'.*12 different values.*label"):
        read_data(write(tmp_path, "d.csv", text))
    ds = read_data(write(tmp_path, "d.csv", text), labels=["ward"])
    assert ds.feature_names == ["hr"]
    assert ds.labels["ward"][11] == "w11"


def test_empty_column_dropped_and_named(tmp_path):
    ds = read_data(write(tmp_path, "e.csv", "a,b,c\n1,,3\n4,,6\n"))
    assert ds.feature_names == ["a", "c"]
    assert any("'b'" in w and "empty" in w.lower() for w in ds.warnings)


def test_constant_column_warns(tmp_path):
    ds = read_data(write(tmp_path, "k.csv", "a,b\n1,5\n2,5\n3,5\n"))
    assert ds.feature_names == ["a", "b"]
    assert any("Constant" in w and "'b'" in w for w in ds.warnings)


def test_duplicate_column_names_are_renamed(tmp_path):
    ds = read_data(write(tmp_path, "d.csv", "a,a,b\n1,2,3\n4,5,6\n"))
    assert ds.feature_names == ["a", "a.1", "b"]
    np.testing.assert_array_equal(ds.values[:, 1], [2, 5])
    assert any("'a' -> 'a.1'" in w for w in ds.warnings)


def test_mixed_text_and_numbers_in_a_category_column_warn(tmp_path):
    ds = read_data(write(tmp_path, "m.csv", "a,grade\n1,low\n2,high\n3,2\n4,low\n"))
    assert ds.feature_names == ["a", "grade=2", "grade=high", "grade=low"]
    assert any("mixes 1 numbers and 3 text values" in w for w in ds.warnings)


def test_missing_markers_are_missing_not_text(tmp_path):
    ds = read_data(write(tmp_path, "m.csv", "a,b\n1,NA\n2,?\n3,\n4,7\n"))
    np.testing.assert_array_equal(ds.mask[:, 1], [False, False, False, True])


# ------------------------------------------------------------------ refusals

@pytest.mark.parametrize("text, pattern", [
    ("a,b\n1,2\n3,x7\n5,6\n", r"bad\.csv, line 3, column 'b': text 'x7'"),
    ("a,b\n1,2\n3,4\n5,inf\n", r"bad\.csv, line 4, column 'b': infinite"),
    ("a,b\n1,2\n\n3,4\n5,-inf\n", r"bad\.csv, line 5, column 'b': infinite"),
    ("a,b\n1,2\n3,1e39\n", r"line 3, column 'b': infinite value \(or beyond"),
    ("", r"bad\.csv: the file is empty"),
    ("a,b,c\n", r"header but no data rows"),
    ("a,b\n1,2\n", r"only one data row"),
    ("name,city\nbob,x\nal,y\n", r"no numeric column"),
    ("a,b\n1,2\n3,4,5\n", r"line 3: this line has 3 fields"),
    ('a,b\n1,"2\n3,4\n', r"line 2: a quote"),
])
def test_bad_tables_raise_input_error_naming_line_and_column(tmp_path, text, pattern):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(InputError, match=pattern) as info:
        read_data(path)
    assert "\n" not in str(info.value)


def test_text_error_line_counts_quoted_line_breaks(tmp_path):
    text = 'note,a\n"two\nlines",1\nok,2\nok,oops\n'
    with pytest.raises(InputError, match=r"line 5, column 'a'"):
        read_data(write(tmp_path, "q.csv", text), labels=["note"])


def test_missing_file_and_unknown_columns(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_data(tmp_path / "nope.csv")
    path = write(tmp_path, "ok.csv", "a,b\n1,2\n3,4\n")
    with pytest.raises(InputError, match="id column 'pid' not found"):
        read_data(path, id_col="pid")
    with pytest.raises(InputError, match="feature column 'zz' not found"):
        read_data(path, features=["zz"])
    with pytest.raises(InputError, match="format must be"):
        read_data(path, format="json")


def test_binary_content_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n\x00\x01\x02\n")
    with pytest.raises(InputError, match="binary"):
        read_data(path)


# ------------------------------------------------------------------ inspection, memory, progress

def test_inspect_file_reports_format_and_roles(tmp_path):
    text = ("stay_id;charttime;hr;sex;mortality\n"
            "1;2024-01-01 08:00;80,5;F;0\n1;2024-01-01 09:00;81;F;0\n2;2024-01-02 10:00;90;M;1\n")
    info = inspect_file(write(tmp_path, "i.csv", text))
    assert isinstance(info, FileInspection)
    assert (info.file_type, info.delimiter, info.decimal, info.encoding) == ("text", ";", ",", "utf-8")
    assert info.has_header and info.columns == ["stay_id", "charttime", "hr", "sex", "mortality"]
    assert info.kinds == {"stay_id": "numeric", "charttime": "time", "hr": "numeric",
                          "sex": "categorical", "mortality": "numeric"}
    assert info.roles == {"stay_id": "id", "charttime": "time", "hr": "feature",
                          "sex": "feature", "mortality": "label"}
    assert info.suggested_format == "wide"
    assert len(info.preview) == 3 and info.n_rows_estimate >= 1


def test_inspect_suggests_long_format(tmp_path):
    text = "patient,offset,parameter,valuenum,note\n1,0,HR,80,a\n1,5,MAP,70,b\n2,0,HR,90,c\n"
    info = inspect_file(write(tmp_path, "l.csv", text))
    assert info.suggested_format == "long"
    assert (info.id_col, info.time_col, info.var_col, info.value_col) == (
        "patient", "offset", "parameter", "valuenum")
    assert info.roles["note"] == "ignore"


def test_inspect_plain_table_and_empty_column(tmp_path):
    info = inspect_file(write(tmp_path, "p.csv", "a,b,c\n1,,x\n2,,y\n"))
    assert info.suggested_format == "table"
    assert info.kinds["b"] == "empty" and info.roles["b"] == "ignore"
    assert info.kinds["c"] == "categorical"


def test_estimate_memory_grows_with_the_file(tmp_path):
    small = write(tmp_path, "s.csv", "a,b\n" + "1,2\n" * 100)
    large = write(tmp_path, "l.csv", "a,b\n" + "1,2\n" * 100_000)
    est_small, est_large = estimate_memory(small), estimate_memory(large)
    assert 0 < est_small < est_large
    # the parsed numbers alone: 100k rows x 2 columns x 8 bytes
    assert est_large >= 100_000 * 2 * 8


def test_chunked_reading_reports_progress(tmp_path):
    rows = 600_000  # several chunks of the reader
    path = tmp_path / "big.csv"
    x = np.arange(rows)
    pd.DataFrame({"a": x, "b": x % 7}).to_csv(path, index=False)
    progress = Mock()
    ds = read_data(path, progress=progress)
    assert ds.values.shape == (rows, 2) and ds.values.dtype == np.float32
    fractions = [c.args[0] for c in progress.call_args_list]
    assert len(fractions) >= 3
    assert fractions == sorted(fractions) and 0 <= fractions[0] < 1 and fractions[-1] == 1.0


# ------------------------------------------------------------------ grid size

def test_check_grid_size_message():
    with pytest.raises(InputError, match=r"has 40 rows but an 8x8 map has 64 nodes; use a smaller "
                                         r"grid such as 4x4"):
        check_grid_size(40, (8, 8), what="data.csv")
    with pytest.raises(InputError, match="a 10x10 map has 100 nodes"):
        check_grid_size(60, 100)
    check_grid_size(64, (8, 8))


# ------------------------------------------------------------------ IDX

def _idx_bytes(arr: np.ndarray, code: int) -> bytes:
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_read_idx_plain_and_gzip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 3], dtype=np.uint8)
    (tmp_path / "img-idx3-ubyte").write_bytes(_idx_bytes(images, 0x08))
    (tmp_path / "lab-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels, 0x08)))
    np.testing.assert_array_equal(read_idx(tmp_path / "img-idx3-ubyte"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "lab-idx1-ubyte.gz"), labels)
    floats = np.array([[1.5, -2.0]], dtype=np.float32)
    (tmp_path / "f-idx2").write_bytes(_idx_bytes(floats, 0x0D))
    np.testing.assert_array_equal(read_idx(tmp_path / "f-idx2"), floats)
    ds = read_idx_dataset(tmp_path / "img-idx3-ubyte", tmp_path / "lab-idx1-ubyte.gz")
    assert ds.values.shape == (2, 12)
    np.testing.assert_allclose(ds.values[1, 0], 12 / 255)
    np.testing.assert_array_equal(ds.labels["label"], [7, 3])


def test_read_idx_refuses_bad_files(tmp_path):
    good = _idx_bytes(np.zeros((2, 2), dtype=np.uint8), 0x08)
    (tmp_path / "magic").write_bytes(b"\x01\x00" + good[2:])
    (tmp_path / "type").write_bytes(b"\x00\x00\x07" + good[3:])
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(InputError, match="magic number 0x01000802"):
        read_idx(tmp_path / "magic")
    with pytest.raises(InputError, match="not an IDX file"):
        read_idx(tmp_path / "type")
    with pytest.raises(InputError, match="truncated"):
        read_idx(tmp_path / "short")
    with pytest.raises(InputError, match="not found"):
        read_idx(tmp_path / "missing")


def test_id_like_column_listed_as_feature_stays_a_feature(tmp_path):
    path = write(tmp_path, "f.csv", "patient_id,hr\n1,80\n2,90\n3,85\n")
    ds = read_data(path, format="table", features=["patient_id", "hr"], labels=[])
    assert ds.feature_names == ["patient_id", "hr"] and ds.ids is None
    ds = read_data(path, format="table", labels=[])
    assert ds.feature_names == ["hr"]
    np.testing.assert_array_equal(ds.ids, [1, 2, 3])
    assert ds.warnings[0] == "Columns inferred from their names: id 'patient_id'"


def test_no_import_cycle_among_the_data_modules():
    # A cycle (readers importing physionet importing readers) only worked through imports
    # hidden inside functions; each module must be importable on its own.
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("core", cache_dir=None)
    data = sorted(m for m in graph.modules if m.startswith("core.data."))
    cycles = [(a, b) for a in data for b in graph.find_modules_directly_imported_by(a)
              if b.startswith("core.data.") and graph.find_shortest_chain(importer=b, imported=a)]
    assert cycles == []
    assert "core.data.readers.read" in data  # the split package is what was checked


# ------------------------------------------------------------------ ids exactly as written

def _write_table(tmp_path, suffix, frame):
    path = tmp_path / f"ids{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_table_ids_keep_leading_blanks_and_tabs(tmp_path, suffix):
    frame = pd.DataFrame({"patient_id": [" 7", "\t8", "9", "9 "], "hr": [60.0, 70.0, 80.0, 90.0],
                          "sbp": [110.0, 120.0, 130.0, 140.0]})
    ds = read_data(_write_table(tmp_path, suffix, frame), id_col="patient_id")
    assert list(ds.ids) == [" 7", "\t8", "9", "9 "]
    assert ds.feature_names == ["hr", "sbp"]


def test_long_format_ids_differing_only_by_a_leading_blank_are_two_patients(tmp_path):
    text = ("stay,hour,variable,value\n"
            " p1,0,hr,60\n p1,1,hr,61\n"
            "p1,0,hr,90\np1,1,hr,91\n"
            "\tp1,0,hr,30\n\tp1,1,hr,31\n")
    ds = read_data(write(tmp_path, "long.csv", text), id_col="stay", time_col="hour",
                   var_col="variable", value_col="value")
    assert list(ds.ids) == [" p1", "p1", "\tp1"]
    np.testing.assert_array_equal(ds.values[:, :, 0], [[60, 61], [90, 91], [30, 31]])


def test_wide_format_ids_keep_leading_blanks_and_blank_ids_stay_missing(tmp_path):
    text = 'id,t,hr\n" 12",0,60\n" 12",1,61\n12,0,90\n12,1,91\n"   ",0,5\n'
    ds = read_data(write(tmp_path, "wide.csv", text), id_col="id", time_col="t")
    assert list(ds.ids) == [" 12", "12"]
    np.testing.assert_array_equal(ds.values[:, :, 0], [[60, 61], [90, 91]])
    assert any("1 row(s) without a patient id" in w for w in ds.warnings)


# ------------------------------------------------------------------ identifier-like columns

def _vitals(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"hr": rng.normal(80, 10, n).round(1), "sbp": rng.normal(120, 15, n).round(1),
                         "age": rng.permutation(np.arange(20, 20 + n))})


def test_a_row_id_column_is_left_out_of_the_default_features_with_a_note(tmp_path):
    frame = _vitals()
    frame.insert(0, "rid", np.arange(1001, 1001 + len(frame)))
    path = tmp_path / "rid.csv"
    frame.to_csv(path, index=False)
    ds = read_data(path)
    # age is whole, unique and named like no identifier: it stays a feature
    assert ds.feature_names == ["hr", "sbp", "age"]
    note = [w for w in ds.warnings if "row identifiers" in w]
    assert len(note) == 1 and "'rid'" in note[0] and "--features" in note[0]
    info = inspect_file(path)
    assert info.roles["rid"] == "ignore" and info.roles["age"] == "feature"
    assert any("'rid'" in w and "row identifiers" in w for w in info.warnings)


def test_a_row_id_named_in_the_features_is_kept(tmp_path):
    frame = _vitals()
    frame.insert(0, "rid", np.arange(len(frame)))
    path = tmp_path / "rid.csv"
    frame.to_csv(path, index=False)
    ds = read_data(path, features=["rid", "hr"])
    assert ds.feature_names == ["rid", "hr"]
    np.testing.assert_array_equal(ds.values[:, 0], np.arange(len(frame)))
    assert not any("row identifiers" in w for w in ds.warnings)


def test_an_unnamed_index_column_written_by_pandas_is_left_out(tmp_path):
    path = tmp_path / "with_index.csv"
    _vitals().to_csv(path)  # first header cell empty, then 0, 1, 2, ...
    ds = read_data(path)
    assert ds.feature_names == ["hr", "sbp", "age"]
    assert any("row numbers" in w for w in ds.warnings)


@pytest.mark.parametrize("name, values", [
    ("record_no", [3, 1, 2, 2, 5, 4] * 5),    # named like an id but repeats, unsorted
    ("dose", list(range(1, 31))),             # counts 1, 2, 3 but named as a measurement
])
def test_whole_number_measurements_stay_features(tmp_path, name, values):
    frame = _vitals()
    frame[name] = values
    path = tmp_path / "m.csv"
    frame.to_csv(path, index=False)
    assert read_data(path).feature_names == ["hr", "sbp", "age", name]


def test_a_row_id_in_a_wide_series_is_left_out(tmp_path):
    rows = [(p, t, 60 + p + t) for p in range(4) for t in range(5)]
    frame = pd.DataFrame(rows, columns=["stay_id", "hour", "hr"])
    frame.insert(0, "record_id", np.arange(len(frame)) + 1)
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    ds = read_data(path, id_col="stay_id", time_col="hour")
    assert ds.is_series and ds.feature_names == ["hr"]
    assert any("'record_id'" in w for w in ds.warnings)


def test_only_a_row_id_is_numeric_the_refusal_says_so(tmp_path):
    path = write(tmp_path, "ids_only.csv", "rid,name\n1,a\n2,b\n3,c\n4,d\n")
    with pytest.raises(InputError, match="'rid' look like row identifiers"):
        read_data(path, labels=["name"])


def test_the_command_line_prints_the_identifier_note(tmp_path, capsys):
    from core.cli import _read_with_options, build_parser

    frame = _vitals()
    frame.insert(0, "rid", np.arange(len(frame)))
    path = tmp_path / "rid.csv"
    frame.to_csv(path, index=False)
    args = build_parser().parse_args(["train", str(path), "--out", str(tmp_path / "p.h5")])
    ds, _ = _read_with_options(args, str(path))
    assert "rid" not in ds.feature_names
    err = capsys.readouterr().err
    assert "dpsom: note: Column(s) 'rid' look like row identifiers" in err
