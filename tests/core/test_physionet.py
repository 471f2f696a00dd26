"""PhysioNet/CinC Challenge 2012 directories written by the tests themselves."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.physionet import (PHYSIONET_UNITS, TIME_SERIES_VARIABLES, is_physionet2012_dir,
                                 read_physionet2012)
from core.data.readers import inspect_file, read_data
from core.errors import InputError

NAN = np.nan


def record(folder, rid, lines, age=54, gender=0, height=-1, icu=4, weight=-1):
    text = ("Time,Parameter,Value\n"
            f"00:00,RecordID,{rid}\n00:00,Age,{age}\n00:00,Gender,{gender}\n"
            f"00:00,Height,{height}\n00:00,ICUType,{icu}\n00:00,Weight,{weight}\n")
    (folder / f"{rid}.txt").write_text(text + "".join(f"{x}\n" for x in lines))


@pytest.fixture
def set_a(tmp_path):
    folder = tmp_path / "set-a"
    folder.mkdir()
    record(folder, 132539, ["00:07,GCS,15", "00:37,HR,88", "00:52,HR,90", "01:37,HR,91",
                            "02:10,Temp,36.5", "05:00,Weight,80", "47:59,HR,70", "48:10,HR,71"],
           height=175.3, weight=82)
    record(folder, 132540, ["00:30,HR,100", "03:00,MAP,65", "03:00,MechVent,1", "03:20,MAP,-1"],
           age=71, gender=1, icu=2)
    record(folder, 132541, ["01:00,HR,77"], age=-1)
    (folder / "README.md").write_text("not a record")
    (tmp_path / "Outcomes-a.txt").write_text(
        "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
        "132539,6,1,5,-1,0\n132540,16,8,8,12,1\n999999,1,1,1,1,1\n")
    return folder


def test_reads_records_statics_outcomes_and_units(set_a):
    ds = read_data(set_a)
    assert ds.warnings[0] == "Read as a PhysioNet 2012 directory (3 stays)"
    np.testing.assert_array_equal(ds.ids, [132539, 132540, 132541])
    assert (ds.id_col, ds.time_col, ds.time_unit) == ("RecordID", "Time", "h")
    # measured variables only, in the challenge's order
    assert ds.feature_names == ["GCS", "HR", "MAP", "MechVent", "Temp", "Weight"]
    assert ds.units == ["points", "bpm", "mmHg", "0/1", "°C", "kg"]
    # hourly grid from admission, cut at 48 h
    assert ds.values.shape == (3, 48, 6)
    np.testing.assert_array_equal(ds.lengths, [48, 4, 2])
    np.testing.assert_array_equal(ds.times[1], [0, 1, 2, 3] + [NAN] * 44)
    hr = ds.values[..., ds.feature_names.index("HR")]
    np.testing.assert_array_equal(hr[0, :3], [90, 91, NAN])   # last value in each hour
    assert hr[0, 47] == 70                                     # 48:10 is outside the grid
    weight = ds.values[..., ds.feature_names.index("Weight")]
    assert weight[0, 5] == 80 and np.isnan(weight[0, 0])      # admission weight is static
    # -1 means missing: it does not overwrite the earlier MAP of the same hour
    assert ds.values[1, 3, ds.feature_names.index("MAP")] == 65
    assert not (ds.values == -1).any()
    assert any("1 observation(s) after step 48" in w for w in ds.warnings)
    assert any("value(s) of -1 were read as missing" in w for w in ds.warnings)
    assert any("README.md" in w for w in ds.warnings)
    # statics and outcomes are per-step labels
    assert set(ds.labels) == {"Age", "Gender", "Height", "ICUType", "Weight", "SAPS-I", "SOFA",
                              "Length_of_stay", "Survival", "In-hospital_death"}
    np.testing.assert_array_equal(ds.labels["Age"][:, 0], [54, 71, NAN])
    np.testing.assert_array_equal(ds.labels["Height"][:, 0], [175.3, NAN, NAN])
    np.testing.assert_array_equal(ds.labels["Weight"][:, 0], [82, NAN, NAN])
    np.testing.assert_array_equal(ds.labels["In-hospital_death"][:, 0], [0, 1, NAN])
    np.testing.assert_array_equal(ds.labels["Survival"][:, 0], [NAN, 12, NAN])
    assert np.isnan(ds.labels["Age"][1, 4:]).all()            # padding
    assert any("2 of 3 stays matched" in w and "1 outcome row(s) have no record" in w
               for w in ds.warnings)


def test_features_labels_and_static_features(set_a):
    ds = read_physionet2012(set_a, features=["HR", "Age"], labels=["In-hospital_death"])
    assert ds.feature_names == ["HR", "Age"]
    assert list(ds.labels) == ["In-hospital_death"]
    age = ds.values[..., 1]
    np.testing.assert_array_equal(age[1, :4], [71] * 4)
    assert np.isnan(age[1, 4:]).all() and not ds.mask[1, 4:, 1].any()
    assert not ds.mask[2, :, 1].any()                          # Age -1: unknown


def test_time_step_and_max_steps_options(set_a):
    ds = read_data(set_a, time_step=2.0, max_steps=24)
    assert ds.values.shape == (3, 24, 6)
    hr = ds.values[0, :, ds.feature_names.index("HR")]
    assert hr[0] == 91 and hr[23] == 70


def test_explicit_outcomes_file(set_a, tmp_path):
    other = tmp_path / "my_outcomes.csv"
    other.write_text("RecordID,In-hospital_death\n132541,1\n")
    ds = read_physionet2012(set_a, outcomes=other)
    np.testing.assert_array_equal(ds.labels["In-hospital_death"][:, 0], [NAN, NAN, 1])


def test_bad_time_and_value_name_file_and_line(tmp_path):
    folder = tmp_path / "set-b"
    folder.mkdir()
    record(folder, 1, ["00:30,HR,80"])
    record(folder, 2, ["00:30,HR,80", "1h30,HR,82"])
    with pytest.raises(InputError, match=r"2\.txt, line 9, column 'Time': time '1h30'"):
        read_data(folder)
    record(folder, 2, ["00:30,HR,eighty"])
    with pytest.raises(InputError, match=r"2\.txt, line 8, column 'Value': value 'eighty'"):
        read_data(folder)
    record(folder, 2, ["00:30,HR,80,extra"])
    with pytest.raises(InputError, match=r"2\.txt, line 8: expected 3 fields"):
        read_data(folder)


def test_directory_without_records_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    assert not is_physionet2012_dir(tmp_path)
    with pytest.raises(InputError, match="no PhysioNet 2012 record file"):
        read_data(tmp_path)
    with pytest.raises(InputError, match="label\\(s\\) 'Nope' not found"):
        record(tmp_path, 5, ["00:30,HR,80"])
        read_physionet2012(tmp_path, labels=["Nope"])


def test_inspect_directory(set_a):
    assert is_physionet2012_dir(set_a)
    info = inspect_file(set_a)
    assert info.suggested_format == "physionet2012" and info.n_rows_estimate == 3
    assert info.roles == {"Time": "time", "Parameter": "variable", "Value": "value"}
    assert "Outcomes-a.txt" in info.warnings[0]


def test_unit_table_covers_every_challenge_variable():
    assert len(TIME_SERIES_VARIABLES) == 37
    assert set(TIME_SERIES_VARIABLES) <= set(PHYSIONET_UNITS)
    assert PHYSIONET_UNITS["HR"] == "bpm" and PHYSIONET_UNITS["Temp"] == "°C"


def test_single_record_file_points_to_the_directory(set_a):
    with pytest.raises(InputError, match="one PhysioNet 2012 record; pass the directory"):
        read_data(set_a / "132539.txt")
