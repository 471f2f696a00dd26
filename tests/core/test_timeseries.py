"""Long- and wide-format patient series on a regular time grid, and their validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.readers import read_data
from core.data.timeseries import TimeParser, infer_time_step
from core.errors import InputError

NAN = np.nan


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


LONG = """pid,hour,var,val,death
1,0,HR,80,0
1,1,HR,82,0
1,1,MAP,70,0
2,0,HR,90,1
2,2,HR,95,1
2,3,MAP,60,1
"""


def test_long_format_auto_detected_and_gridded(tmp_path):
    ds = read_data(write(tmp_path, "long.csv", LONG))
    assert ds.warnings[0] == ("Read as long-format time series (id 'pid', time 'hour', "
                              "variable 'var', value 'val')")
    assert ds.is_series and ds.values.shape == (2, 4, 2)
    assert ds.feature_names == ["HR", "MAP"]
    np.testing.assert_array_equal(ds.ids, [1, 2])
    np.testing.assert_array_equal(ds.lengths, [2, 4])
    np.testing.assert_array_equal(ds.values[..., 0], [[80, 82, NAN, NAN], [90, NAN, 95, NAN]])
    np.testing.assert_array_equal(ds.values[..., 1], [[NAN, 70, NAN, NAN], [NAN, NAN, NAN, 60]])
    np.testing.assert_array_equal(ds.mask, ~np.isnan(ds.values))
    np.testing.assert_array_equal(ds.times, [[0, 1, NAN, NAN], [0, 1, 2, 3]])
    # static label broadcast over real steps, NaN on padding
    np.testing.assert_array_equal(ds.labels["death"], [[0, 0, NAN, NAN], [1, 1, 1, 1]])
    assert ds.time_unit == "h" and (ds.id_col, ds.time_col) == ("pid", "hour")
    assert any("step inferred as 1 h" in w for w in ds.warnings)


def test_long_format_with_explicit_columns_and_text_ids(tmp_path):
    text = "stay,t,item,v\nA,0,HR,80\nA,1,HR,81\nB,0,SpO2,97\nB,1,HR,90\n"
    ds = read_data(write(tmp_path, "l.csv", text), format="long", id_col="stay", time_col="t",
                   var_col="item", value_col="v")
    assert list(ds.ids) == ["A", "B"]
    assert ds.feature_names == ["HR", "SpO2"]
    np.testing.assert_array_equal(ds.values[1], [[NAN, 97], [90, NAN]])


def test_wide_format_with_categorical_and_dynamic_label(tmp_path):
    text = ("patient_id,hour,hr,sex,state\n"
            "1,0,80,F,stable\n1,1,81,F,stable\n1,2,,F,sick\n"
            "2,0,90,M,sick\n")
    ds = read_data(write(tmp_path, "w.csv", text))
    assert ds.warnings[0] == "Read as wide-format time series (id 'patient_id', time 'hour')"
    assert ds.feature_names == ["hr", "sex=F", "sex=M"]
    assert ds.values.shape == (2, 3, 3)
    np.testing.assert_array_equal(ds.values[0, :, 0], [80, 81, NAN])
    np.testing.assert_array_equal(ds.values[1, 0], [90, 0, 1])
    assert not ds.mask[1, 1:].any()
    # a label that changes within a stay is carried forward, not spread backwards
    assert ds.labels["state"].tolist() == [["stable", "stable", "sick"], ["sick", "", ""]]


def test_clock_times_and_backwards_rows_are_sorted(tmp_path):
    text = "id,time,x\n1,00:00,1\n1,01:30,3\n1,00:30,2\n2,00:00,5\n2,01:00,6\n"
    ds = read_data(write(tmp_path, "c.csv", text), time_step=0.5)
    assert ds.time_unit == "h"
    np.testing.assert_allclose(ds.times[0], [0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(ds.values[0, :, 0], [1, 2, NAN, 3])
    assert any("earlier than the row before" in w and "sorted" in w for w in ds.warnings)


def test_timestamps_are_hours_since_each_patients_first_row(tmp_path):
    text = ("id,charttime,x\n"
            "1,2024-01-01 08:00,1\n1,2024-01-01 09:00,2\n1,2024-01-01 11:00,4\n"
            "2,2023-06-30 23:00,5\n2,2023-07-01 00:00,6\n")
    ds = read_data(write(tmp_path, "s.csv", text))
    np.testing.assert_array_equal(ds.lengths, [4, 2])
    np.testing.assert_array_equal(ds.times, [[0, 1, 2, 3], [0, 1, NAN, NAN]])
    np.testing.assert_array_equal(ds.values[0, :, 0], [1, 2, NAN, 4])


def test_duplicates_are_aggregated_and_counted(tmp_path):
    text = "id,time,x\n1,0,1\n1,0,3\n1,1,5\n2,0,7\n2,1,8\n"
    last = read_data(write(tmp_path, "d.csv", text))
    assert last.values[0, 0, 0] == 3
    assert any(w.startswith("1 observation(s) repeat") for w in last.warnings)
    mean = read_data(write(tmp_path, "d.csv", text), aggregate="mean")
    assert mean.values[0, 0, 0] == 2
    assert any("aggregation mean" in w for w in mean.warnings)


def test_explicit_time_step_bins_and_aggregates(tmp_path):
    text = "id,time,x\n1,0,1\n1,1,2\n1,2,3\n1,3,4\n1,5,6\n"
    ds = read_data(write(tmp_path, "b.csv", text), id_col="id", time_col="time", time_step=2,
                   aggregate="mean")
    np.testing.assert_array_equal(ds.values[0, :, 0], [1.5, 3.5, 6])
    np.testing.assert_array_equal(ds.times[0], [0, 2, 4])
    ds = read_data(write(tmp_path, "b.csv", text), id_col="id", time_col="time", time_step=2)
    np.testing.assert_array_equal(ds.values[0, :, 0], [2, 4, 6])
    assert any("4 observation(s) fell in a grid step" not in w for w in ds.warnings)
    assert any("2 observation(s) fell in a grid step" in w for w in ds.warnings)


def test_max_steps_truncates_and_counts(tmp_path):
    text = "id,time,x\n1,0,1\n1,1,2\n1,2,3\n1,3,4\n2,0,5\n"
    ds = read_data(write(tmp_path, "m.csv", text), max_steps=2)
    assert ds.values.shape == (2, 2, 1)
    np.testing.assert_array_equal(ds.lengths, [2, 1])
    assert any("1 patient(s) were longer than 2 steps" in w for w in ds.warnings)
    assert any("2 observation(s) after step 2" in w for w in ds.warnings)


def test_numeric_times_keep_their_values(tmp_path):
    text = "id,minutes,x\n1,30,1\n1,45,2\n1,60,3\n2,0,4\n2,15,5\n"
    ds = read_data(write(tmp_path, "n.csv", text), id_col="id", time_col="minutes")
    assert ds.time_unit == "min"
    np.testing.assert_array_equal(ds.times, [[30, 45, 60], [0, 15, NAN]])


def test_unmeasured_variable_dropped_and_single_observation_warned(tmp_path):
    text = "id,time,var,val\n1,0,HR,80\n1,1,HR,82\n1,1,Lactate,\n2,0,HR,90\n"
    ds = read_data(write(tmp_path, "u.csv", text), id_col="id", time_col="time", var_col="var",
                   value_col="val")
    assert ds.feature_names == ["HR"]
    assert any("never measured" in w and "'Lactate'" in w for w in ds.warnings)
    assert any("1 patient(s) have a single observation" in w for w in ds.warnings)
    assert any("1 row(s) have a variable but no value" in w for w in ds.warnings)


def test_rows_without_id_or_time_are_counted(tmp_path):
    text = "id,time,x\n1,0,1\n,1,2\n1,,3\n1,1,4\n2,0,5\n"
    ds = read_data(write(tmp_path, "r.csv", text), id_col="id", time_col="time")
    assert int(ds.mask.sum()) == 3
    assert any("2 row(s) without a patient id or a time" in w and "line 3" in w
               for w in ds.warnings)


def test_label_given_as_a_long_format_variable(tmp_path):
    text = "pid,hour,var,val\n1,0,HR,80\n1,1,HR,82\n1,1,mortality,1\n2,0,HR,90\n2,1,HR,91\n"
    ds = read_data(write(tmp_path, "l.csv", text), labels=["mortality"])
    assert ds.feature_names == ["HR"]
    np.testing.assert_array_equal(ds.labels["mortality"], [[1, 1], [NAN, NAN]])


def test_long_feature_selection(tmp_path):
    ds = read_data(write(tmp_path, "long.csv", LONG), features=["MAP"])
    assert ds.feature_names == ["MAP"]
    assert any("variable(s) not among the features" in w and "'HR'" in w for w in ds.warnings)
    with pytest.raises(InputError, match="feature\\(s\\) 'SpO2' not found among the variables"):
        read_data(write(tmp_path, "long.csv", LONG), features=["SpO2"])


@pytest.mark.parametrize("text, kwargs, pattern", [
    ("id,time,x\n1,0,1\n1,-2,2\n2,0,3\n", {}, r"line 3, column 'time': negative time"),
    ("id,time,x\n1,0,1\n1,01:00,2\n", {}, r"line 3, column 'time': mixed time formats"),
    ("id,time,x\n1,0,1\n1,soon,2\n", {"id_col": "id", "time_col": "time"},
     r"line 3, column 'time': time 'soon' not understood"),
    ("id,time,x\n1,2024-01-01,1\n1,2350-01-01,2\n", {}, r"line 3, column 'time': timestamp outside"),
    ("id,time,x\n1,0,1\n1,0.001,2\n1,1000000,3\n", {"time_step": 0.001},
     r"line 4, column 'time': a stay spanning"),
    ("id,time,x\n1,0,1\n1,1,abc\n1,2,3\n", {}, r"line 3, column 'x': text 'abc'"),
    ("id,time,x\n1,0,1\n1,1,inf\n", {}, r"line 3, column 'x': infinite"),
    ("pid,hour,var,val\n1,0,HR,80\n1,1,HR,high\n", {}, r"line 3, column 'val': text 'high'"),
    ("id,time,x\n1,0,1\n", {"id_col": "id", "time_col": "time"}, r"only one data row"),
    ("id,time,name\n1,0,a\n1,1,b\n", {"id_col": "id", "time_col": "time"}, "no numeric column"),
    ("id,time,x\n1,0,1\n1,1,2\n", {"id_col": "id", "time_col": "time", "time_step": -1},
     "time step must be a positive number"),
    ("id,time,x\n1,0,1\n1,1,2\n", {"format": "long", "id_col": "id", "time_col": "time"},
     "need a variable and a value column"),
    ("a,b\n1,0\n1,1\n", {"format": "wide"}, "need an id and a time column"),
])
def test_bad_series_raise_input_error(tmp_path, text, kwargs, pattern):
    with pytest.raises(InputError, match=pattern) as info:
        read_data(write(tmp_path, "bad.csv", text), **kwargs)
    assert "\n" not in str(info.value)


def test_time_parser_kinds():
    parser = TimeParser("t")
    np.testing.assert_allclose(parser.parse(pd.Series(["00:30", "47:15", None]), 0), [0.5, 47.25, NAN])
    assert parser.kind == "clock"
    stamps = TimeParser("t")
    out = stamps.parse(pd.Series(["2024-01-01T00:00", "2024-01-01T06:30"]), 0)
    assert stamps.kind == "timestamp"
    assert out[1] - out[0] == pytest.approx(6.5)
    comma = TimeParser("t", decimal=",")
    np.testing.assert_allclose(comma.parse(pd.Series(["1,5", "2"], dtype="str"), 0), [1.5, 2])


def test_infer_time_step_uses_the_most_common_gap():
    patient = np.array([0, 0, 0, 0, 1, 1, 1])
    times = np.array([0.0, 0.25, 0.5, 2.0, 10.0, 10.25, 10.25])
    assert infer_time_step(patient, times) == 0.25
    assert infer_time_step(np.array([0, 1]), np.array([0.0, 5.0])) is None


def test_excel_series_with_datetime_cells(tmp_path):
    frame = pd.DataFrame({
        "stay_id": [5, 5, 5, 6],
        "charttime": pd.to_datetime(["2024-03-01 10:00", "2024-03-01 11:00",
                                     "2024-03-01 13:00", "2024-03-02 08:00"]),
        "hr": [80.0, 82.0, 85.0, 99.0],
    })
    frame.to_excel(tmp_path / "s.xlsx", index=False)
    ds = read_data(tmp_path / "s.xlsx")
    assert ds.warnings[0] == "Read as wide-format time series (id 'stay_id', time 'charttime')"
    np.testing.assert_array_equal(ds.ids, [5, 6])
    np.testing.assert_array_equal(ds.values[0, :, 0], [80, 82, NAN, 85])
    np.testing.assert_array_equal(ds.times[1], [0, NAN, NAN, NAN])


def test_parquet_long_series(tmp_path):
    frame = pd.DataFrame({"pid": ["a", "a", "b"], "hour": [0.0, 1.0, 0.0],
                          "variable": ["HR", "HR", "MAP"], "value": [80.0, 81.0, 60.0]})
    frame.to_parquet(tmp_path / "l.parquet")
    ds = read_data(tmp_path / "l.parquet")
    assert ds.feature_names == ["HR", "MAP"] and list(ds.ids) == ["a", "b"]
    np.testing.assert_array_equal(ds.values[:, :, 0], [[80, 81], [NAN, NAN]])


def test_long_format_extra_column_as_feature_keeps_requested_order(tmp_path):
    text = "pid,hour,var,val,age\n1,0,HR,80,50\n1,1,HR,82,50\n2,0,HR,90,60\n"
    ds = read_data(write(tmp_path, "x.csv", text), features=["HR", "age"])
    assert ds.feature_names == ["HR", "age"]
    np.testing.assert_array_equal(ds.values[:, :, 1], [[50, 50], [60, NAN]])


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_synthetic_cohort_round_trips_through_a_csv(tmp_path, layout):
    from core.data.synthetic import cohort_to_frame, make_icu_cohort

    cohort = make_icu_cohort(n_patients=12, max_steps=30, min_steps=10, seed=3)
    path = tmp_path / f"cohort_{layout}.csv"
    cohort_to_frame(cohort, layout).to_csv(path, index=False)
    ds = read_data(path, time_step=1.0)
    order = [ds.feature_names.index(n) for n in cohort.feature_names]
    values, mask = ds.values[..., order], ds.mask[..., order]
    np.testing.assert_array_equal(mask, cohort.mask)
    np.testing.assert_allclose(values[mask], cohort.values[cohort.mask])
    assert list(ds.ids) == list(cohort.ids)
    if layout == "wide":
        np.testing.assert_array_equal(ds.lengths, cohort.lengths)
        assert set(ds.labels) == set(cohort.labels)
        np.testing.assert_array_equal(ds.labels["state"], cohort.labels["state"])


# ------------------------------------------------------------------ one stay far longer

def _cohort_with_one_long_stay(tmp_path, n_short=200, short=12, long=2000):
    rng = np.random.default_rng(1)
    pid = np.concatenate([np.repeat(np.arange(n_short), short), np.full(long, 9999)])
    hour = np.concatenate([np.tile(np.arange(short), n_short), np.arange(long)])
    frame = pd.DataFrame({"stay_id": pid, "hour": hour, "hr": rng.normal(80, 5, pid.size).round(1),
                          "sbp": rng.normal(120, 9, pid.size).round(1)})
    path = tmp_path / "long_stay.csv"
    frame.to_csv(path, index=False)
    return path


def test_max_steps_given_keeps_the_long_stay_whole(tmp_path):
    ds = read_data(_cohort_with_one_long_stay(tmp_path), id_col="stay_id", time_col="hour",
                   max_steps=2000)
    assert ds.values.shape == (201, 2000, 2) and ds.lengths[-1] == 2000
    assert not any("far longer" in w for w in ds.warnings)


@pytest.mark.parametrize("lengths", [
    [12, 12, 120],                       # a small cohort: padding is no burden
    list(range(12, 72)) * 3 + [200],     # spread-out stays: the longest is not an outlier
])
def test_stays_that_are_not_outliers_are_never_cut(tmp_path, lengths):
    pid = np.repeat(np.arange(len(lengths)), lengths)
    hour = np.concatenate([np.arange(n) for n in lengths])
    path = tmp_path / "spread.csv"
    pd.DataFrame({"stay_id": pid, "hour": hour, "hr": 70.0 + hour % 7}).to_csv(path, index=False)
    ds = read_data(path, id_col="stay_id", time_col="hour")
    np.testing.assert_array_equal(ds.lengths, lengths)
    assert not any("far longer" in w for w in ds.warnings)


def test_a_small_grid_is_never_cut_even_around_an_outlier(tmp_path):
    lengths = [1] * 500 + [10]  # 5,010 padded steps: no memory to save
    pid = np.repeat(np.arange(len(lengths)), lengths)
    hour = np.concatenate([np.arange(n) for n in lengths])
    path = tmp_path / "small.csv"
    pd.DataFrame({"stay_id": pid, "hour": hour, "hr": 70.0 + hour}).to_csv(path, index=False)
    ds = read_data(path, id_col="stay_id", time_col="hour", time_step=1)
    assert ds.lengths.max() == 10 and not any("far longer" in w for w in ds.warnings)
