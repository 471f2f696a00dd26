"""`dpsom apply` reads time series in groups of whole patients and workbooks row by row, and
writes exactly the file that reading the whole input gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import core.apply as apply_module
import core.data.readers.series_stream as series_stream
import core.data.readers.sources as sources
import core.workflow as workflow
from core.cli import main
from core.data.synthetic import cohort_to_frame, make_icu_cohort

FAST = ["--quiet", "--autosave", "0"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("dpsom: error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def series_project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("series")
    ds = make_icu_cohort(40, n_features=7, max_steps=12, min_steps=6, seed=2)
    path = folder / "icu.csv"
    cohort_to_frame(ds, "wide").to_csv(path, index=False)
    project = folder / "icu.h5"
    code = main([str(a) for a in ("train", path, "--out", project, "--id-col", ds.id_col, "--time-col",
                                  ds.time_col, "--grid", "3x3", "--max-steps", "6", *FAST)])
    assert code == 0
    return project, ds.id_col, ds.time_col


@pytest.fixture(scope="module")
def table_project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    df["grp"] = rng.choice(["x", "y"], size=300)
    path = folder / "t.csv"
    df.to_csv(path, index=False)
    project = folder / "t.h5"
    assert main([str(a) for a in ("train", path, "--out", project, "--grid", "3x3", "--max-steps", "6", *FAST)]) == 0
    return project


def new_patients(n: int, seed: int, id_col: str, time_col: str, layout: str) -> pd.DataFrame:
    ds = make_icu_cohort(n, n_features=7, max_steps=14, min_steps=4, seed=seed)
    frame = cohort_to_frame(ds, layout, id_col=id_col, time_col=time_col)
    return frame


def whole_and_streamed(capsys, monkeypatch, project, data, tmp_path, *options, groups=None):
    """The assignments file read whole and read in parts (small parts forced), and the notes."""
    monkeypatch.setattr(sources, "_CHUNK_CELLS", 1000)
    monkeypatch.setattr(series_stream, "_BATCH_ROWS", 150)
    sizes = []
    assign = workflow.ModelRun.assignments

    def recording(self, dataset=None):
        sizes.append(None if dataset is None else dataset.n_samples)
        return assign(self, dataset)

    monkeypatch.setattr(workflow.ModelRun, "assignments", recording)
    streamed = tmp_path / "streamed.csv"
    code, out, err = run_cli(capsys, "apply", project, data, "--assignments", streamed, "--probabilities", *options)
    assert code == 0, err
    in_parts = list(sizes)
    sizes.clear()
    with monkeypatch.context() as m:
        m.setattr(apply_module, "series_assignment_chunks", lambda *a, **k: None)
        m.setattr(apply_module, "table_assignment_chunks", lambda *a, **k: None)
        whole = tmp_path / "whole.csv"
        code, _, err_whole = run_cli(capsys, "apply", project, data, "--assignments", whole, "--probabilities",
                                     *options)
        assert code == 0, err_whole
    assert len(sizes) == 1
    return streamed.read_bytes(), whole.read_bytes(), in_parts, sizes[0], err


def test_wide_series_in_groups_of_patients_gives_the_whole_file_result(series_project, tmp_path, capsys,
                                                                       monkeypatch):
    project, id_col, time_col = series_project
    frame = new_patients(150, 5, id_col, time_col, "wide")
    # Awkward rows: one patient's rows out of time order, a repeated time, a row without time.
    rows = frame.index[frame[id_col] == frame[id_col].iloc[30]]
    frame.loc[rows] = frame.loc[rows[::-1]].to_numpy()
    frame = pd.concat([frame.iloc[:50], frame.iloc[[50]], frame.iloc[50:]], ignore_index=True)
    frame.loc[200, time_col] = np.nan
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    streamed, whole, parts, n_whole, notes = whole_and_streamed(capsys, monkeypatch, project, path, tmp_path)
    assert streamed == whole
    assert len(parts) >= 5 and sum(parts) == n_whole == 150 and max(parts) < 40
    assert "Time step inferred as 1 h" in notes and "without a patient id or a time" in notes


def test_long_series_in_groups_of_patients_gives_the_whole_file_result(series_project, tmp_path, capsys,
                                                                       monkeypatch):
    project, id_col, time_col = series_project
    frame = new_patients(60, 6, id_col, time_col, "long")
    frame.loc[frame.index[::97], "variable"] = "not_a_feature"  # other variables are left out
    path = tmp_path / "new_long.csv"
    frame.to_csv(path, index=False)
    streamed, whole, parts, n_whole, _ = whole_and_streamed(capsys, monkeypatch, project, path, tmp_path,
                                                            "--var-col", "variable", "--value-col", "value")
    assert streamed == whole
    assert len(parts) >= 3 and sum(parts) == n_whole == 60


def test_a_far_longer_stay_is_split_where_the_whole_file_splits_it(series_project, tmp_path, capsys, monkeypatch):
    project, id_col, time_col = series_project
    frame = new_patients(150, 9, id_col, time_col, "wide")
    long = cohort_to_frame(make_icu_cohort(1, n_features=7, max_steps=1000, min_steps=1000, seed=3), "wide",
                           id_col=id_col, time_col=time_col)
    long[id_col] = "long-stay"
    # the long stay sits in the middle of the file, so only one group holds it
    cut = int(np.flatnonzero(frame[id_col].to_numpy() != frame[id_col].shift().to_numpy())[75])
    frame = pd.concat([frame.iloc[:cut], long, frame.iloc[cut:]], ignore_index=True)
    path = tmp_path / "with_long_stay.csv"
    frame.to_csv(path, index=False)
    streamed, whole, parts, n_whole, notes = whole_and_streamed(capsys, monkeypatch, project, path, tmp_path)
    assert streamed == whole
    assert len(parts) >= 3 and sum(parts) == n_whole > 151  # the stay fills several rows in both
    assert "'long-stay' has 1,000 steps" in notes
    assert len(pd.read_csv(tmp_path / "streamed.csv")) == len(frame)


def test_a_patient_whose_rows_come_back_later_is_read_whole_with_a_note(series_project, tmp_path, capsys,
                                                                        monkeypatch):
    project, id_col, time_col = series_project
    frame = new_patients(20, 7, id_col, time_col, "wide")
    first = frame[id_col].iloc[0]
    mine = frame[frame[id_col] == first]
    frame = pd.concat([mine.iloc[:2], frame[frame[id_col] != first], mine.iloc[2:]], ignore_index=True)
    path = tmp_path / "scattered.csv"
    frame.to_csv(path, index=False)
    streamed, whole, parts, n_whole, notes = whole_and_streamed(capsys, monkeypatch, project, path, tmp_path)
    assert streamed == whole and parts == [20] and n_whole == 20
    assert f"the rows of patient '{first}' are not together" in notes and "sort the file by patient" in notes


def test_bad_value_of_a_late_patient_exits_2_and_writes_nothing(series_project, tmp_path, capsys, monkeypatch):
    project, id_col, time_col = series_project
    frame = new_patients(150, 8, id_col, time_col, "wide").astype(object)
    column = frame.columns[2]
    frame.loc[len(frame) - 5, column] = "oops"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(sources, "_CHUNK_CELLS", 1000)
    monkeypatch.setattr(series_stream, "_BATCH_ROWS", 150)
    out = tmp_path / "a.csv"
    out.write_text("kept")
    code, _, err = run_cli(capsys, "apply", project, path, "--assignments", out)
    assert code == 2
    line = one_error_line(err)
    assert f"line {len(frame) - 3}" in line and "oops" in line and column in line
    assert out.read_text() == "kept" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "bad.csv"]


def test_a_feature_missing_from_every_patient_of_a_long_file_is_refused_at_the_end(series_project, tmp_path,
                                                                                   capsys, monkeypatch):
    project, id_col, time_col = series_project
    frame = new_patients(60, 9, id_col, time_col, "long")
    gone = sorted(frame["variable"].unique())[0]
    frame = frame[frame["variable"] != gone]
    path = tmp_path / "lacking.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(sources, "_CHUNK_CELLS", 1000)
    monkeypatch.setattr(series_stream, "_BATCH_ROWS", 150)
    out = tmp_path / "a.csv"
    code, _, err = run_cli(capsys, "apply", project, path, "--assignments", out, "--var-col", "variable",
                           "--value-col", "value")
    assert code == 2
    line = one_error_line(err)
    assert "lacks the model's features" in line and gone in line and "lacking.csv" in line
    assert not out.exists()


def test_a_workbook_is_read_row_by_row_with_the_whole_file_result(table_project, tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(3)
    n = 2500
    df = pd.DataFrame(rng.normal(size=(n, 3)).round(4), columns=["c", "a", "b"])
    df.insert(0, "id", [f"S{i}" for i in range(n)])
    df["grp"] = rng.choice(["x", "y", None], size=n)
    df.loc[7, "a"] = None
    path = tmp_path / "new.xlsx"
    df.to_excel(path, index=False)
    read = []
    original = sources._ExcelSource.frames

    def frames(self, str_columns, progress, **options):
        for chunk in original(self, str_columns, progress, **options):
            read.append(len(chunk))
            yield chunk

    monkeypatch.setattr(sources._ExcelSource, "frames", frames)
    streamed, whole, parts, n_whole, _ = whole_and_streamed(capsys, monkeypatch, table_project, path, tmp_path,
                                                            "--id-col", "id")
    assert streamed == whole
    assert read[:3] == [1000, 1000, 500] and parts == [1000, 1000, 500] and n_whole == n
