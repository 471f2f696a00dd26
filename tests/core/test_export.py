"""CSV exports: columns, line order, values, formula escaping, ISO dates and atomic writes."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from core.data.dataset import Dataset
from core.grid import SOMGrid
from core.io.export import assignments_frame, node_summary_frame, transition_frame, write_csv

GRID = SOMGrid(2, 3, "rect", False)  # K = 6, node k sits at (k // 3, k % 3)


def one_hot_and_uniform(n: int, k: int, hot: np.ndarray) -> np.ndarray:
    p = np.full((n, k), 1.0 / k)
    p[::2] = np.eye(k)[hot[::2]]
    return p


def test_table_assignments_have_the_documented_columns_in_input_order(tmp_path):
    bmu = np.array([5, 0, 3, 3, 1])
    proba = one_hot_and_uniform(5, 6, bmu)
    ds = Dataset(values=np.zeros((5, 2)), mask=np.ones((5, 2), bool), feature_names=["a", "b"],
                 ids=np.array(["s1", "s2", "s3", "s4", "s5"], dtype=object), id_col="subject")
    df = assignments_frame(bmu=bmu, proba=proba, grid=GRID, dataset=ds)
    assert list(df.columns) == ["row", "subject", "node", "node_row", "node_col", "p_max", "entropy"]
    assert df["row"].tolist() == [0, 1, 2, 3, 4]
    assert df["subject"].tolist() == ["s1", "s2", "s3", "s4", "s5"]
    assert df["node"].tolist() == [5, 0, 3, 3, 1]
    assert df["node_row"].tolist() == [1, 0, 1, 1, 0]
    assert df["node_col"].tolist() == [2, 0, 0, 0, 1]
    assert df["p_max"].tolist() == pytest.approx([1, 1 / 6, 1, 1 / 6, 1])
    assert df["entropy"].tolist() == pytest.approx([0, math.log(6), 0, math.log(6), 0])

    back = pd.read_csv(write_csv(df, tmp_path / "a.csv"))
    assert list(back.columns) == list(df.columns)
    assert back["subject"].tolist() == df["subject"].tolist()
    assert np.array_equal(back["entropy"].to_numpy(), df["entropy"].to_numpy())  # full precision


def test_table_without_dataset_and_with_probabilities():
    bmu = np.array([2, 4, 4])
    proba = np.array([[0.1, 0.1, 0.5, 0.1, 0.1, 0.1], [0, 0, 0, 0, 1.0, 0], [0, 0, 0, 0.4, 0.6, 0]])
    df = assignments_frame(bmu=bmu, proba=proba, grid=GRID, probabilities=True)
    assert list(df.columns) == ["row", "node", "node_row", "node_col", "p_max", "entropy"] + [f"p_{j}" for j in range(6)]
    assert df.loc[2, "entropy"] == pytest.approx(-(0.4 * math.log(0.4) + 0.6 * math.log(0.6)))
    assert np.array_equal(df[[f"p_{j}" for j in range(6)]].to_numpy(), proba)
    with pytest.raises(ValueError, match="probabilities"):
        assignments_frame(bmu=bmu, grid=GRID, probabilities=True)
    without = assignments_frame(bmu=bmu, grid=GRID)
    assert list(without.columns) == ["row", "node", "node_row", "node_col"]


def series_dataset() -> Dataset:
    lengths = np.array([4, 2, 3])
    real = np.arange(4)[None, :] < lengths[:, None]
    times = np.where(real, np.array([0.0, 1.5, 3.0, 4.5]), np.nan)
    return Dataset(values=np.zeros((3, 4, 1)), mask=real[..., None], feature_names=["hr"],
                   ids=np.array([101, 205, 307]), times=times, lengths=lengths,
                   id_col="patient", time_col="hour")


def test_series_assignments_list_real_steps_patient_by_patient(tmp_path):
    ds = series_dataset()
    bmu = np.array([[0, 1, 2, 3], [4, 5, -1, -1], [5, 5, 0, -1]])  # -1 only on padding
    nxt = np.array([[1, 2, 3, 3], [5, 5, -1, -1], [5, 0, 0, -1]])
    proba = np.zeros((3, 4, 6))
    proba[..., 0] = 1.0
    df = assignments_frame(bmu=bmu, proba=proba, grid=GRID, dataset=ds, next_node_pred=nxt, probabilities=True)
    assert list(df.columns)[:9] == ["row", "patient", "hour", "node", "node_row", "node_col", "p_max",
                                    "entropy", "next_node_pred"]
    assert len(df) == 9
    assert df["row"].tolist() == list(range(9))
    assert df["patient"].tolist() == [101] * 4 + [205] * 2 + [307] * 3
    assert df["hour"].tolist() == [0.0, 1.5, 3.0, 4.5, 0.0, 1.5, 0.0, 1.5, 3.0]
    assert df["node"].tolist() == [0, 1, 2, 3, 4, 5, 5, 5, 0]
    assert df["next_node_pred"].tolist() == [1, 2, 3, 3, 5, 5, 5, 0, 0]
    back = pd.read_csv(write_csv(df, tmp_path / "s.csv"))
    assert back["patient"].tolist() == df["patient"].tolist()
    assert back["p_0"].tolist() == [1.0] * 9


def test_series_path_columns_follow_the_node_columns_and_skip_padding():
    ds = series_dataset()
    bmu = np.array([[0, 1, 2, 3], [4, 5, -1, -1], [5, 5, 0, -1]])
    path = np.array([[0, 1, 1, 1], [4, 4, -1, -1], [5, 5, 5, -1]])  # -1 only on padding
    df = assignments_frame(bmu=bmu, grid=GRID, dataset=ds, path_node=path)
    assert list(df.columns) == ["row", "patient", "hour", "node", "node_row", "node_col", "path_node",
                                "path_row", "path_col"]
    assert df["path_node"].tolist() == [0, 1, 1, 1, 4, 4, 5, 5, 5]
    assert df["path_row"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert df["path_col"].tolist() == [0, 1, 1, 1, 1, 1, 2, 2, 2]
    # a path that leaves a real step undecoded is refused, not written as node -1
    with pytest.raises(ValueError, match="path_node"):
        assignments_frame(bmu=bmu, grid=GRID, dataset=ds, path_node=np.full_like(bmu, -1))


def test_series_without_dataset_uses_patient_and_step_indices():
    bmu = np.array([[1, 2, 3], [4, 0, 0]])
    mask = np.array([[True, True, False], [True, True, True]])
    df = assignments_frame(bmu=bmu, grid=GRID, step_mask=mask)
    assert list(df.columns) == ["row", "id", "time", "node", "node_row", "node_col"]
    assert df["id"].tolist() == [0, 0, 1, 1, 1]
    assert df["time"].tolist() == [0, 1, 0, 1, 2]
    assert df["node"].tolist() == [1, 2, 4, 0, 0]


def test_id_column_named_like_an_output_column_is_renamed():
    ds = Dataset(values=np.zeros((2, 1)), mask=np.ones((2, 1), bool), feature_names=["x"],
                 ids=np.array([7, 8]), id_col="node")
    df = assignments_frame(bmu=np.array([0, 1]), grid=GRID, dataset=ds)
    assert list(df.columns) == ["row", "input_node", "node", "node_row", "node_col"]
    assert df["input_node"].tolist() == [7, 8]


@pytest.mark.parametrize("kwargs, message", [
    ({"bmu": np.zeros((2, 2, 2), int)}, "bmu"),
    ({"bmu": np.array([0, 6])}, "outside"),
    ({"bmu": np.array([0, 1]), "proba": np.ones((2, 5))}, "proba"),
    ({"bmu": np.array([0, 1]), "next_node_pred": np.ones(3, int)}, "next_node_pred"),
    ({"bmu": np.array([0, 1]), "path_node": np.ones(3, int)}, "path_node"),
    ({"bmu": np.array([0, 1]), "dataset": series_dataset()}, "dataset"),
])
def test_assignment_shape_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        assignments_frame(grid=GRID, **kwargs)


def test_formula_like_text_is_escaped_but_numbers_are_not(tmp_path):
    cells = ["=1+2", "+cmd", "-1.5", "-", "@SUM(A1)", "\tx", "\rx", "normal", "-1e3", "+7", " =x", "é",
             "two\nlines", "cr\rinside", "+nan", "-inf", "-Infinity", "+1_000", "\t=cmd", "\r@x", "nan", ".5e-3"]
    df = pd.DataFrame({"text": cells, "=evil": [-1.5] * len(cells), "n": range(len(cells))})
    path = write_csv(df, tmp_path / "x.csv")
    back = pd.read_csv(path, dtype={"text": str}, keep_default_na=False)
    assert list(back.columns) == ["text", "'=evil", "n"]
    assert back["text"].tolist() == ["'=1+2", "'+cmd", "-1.5", "'-", "'@SUM(A1)", "\tx", "\rx", "normal",
                                     "-1e3", "+7", "' =x", "é", "two\nlines", "cr\rinside", "'+nan", "'-inf",
                                     "'-Infinity", "'+1_000", "'\t=cmd", "'\r@x", "nan", ".5e-3"]
    assert back["'=evil"].tolist() == [-1.5] * len(cells)
    raw = path.read_bytes()
    assert raw.startswith(b"text,'=evil,n\r\n") and "é".encode("utf-8") in raw
    assert df["text"].tolist() == cells  # the caller's frame is left alone


def test_dates_are_written_in_iso_8601(tmp_path):
    df = pd.DataFrame({
        "admitted": pd.to_datetime(["2024-01-02 03:04:05", None]),
        "seen": [dt.datetime(2024, 5, 6, 7, 8, 9), dt.date(2024, 5, 7)],
    })
    lines = write_csv(df, tmp_path / "d.csv").read_text(encoding="utf-8").splitlines()
    assert lines == ["admitted,seen", "2024-01-02T03:04:05,2024-05-06T07:08:09", ",2024-05-07"]


def test_failed_write_keeps_the_old_csv_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    write_csv(pd.DataFrame({"a": [1]}), path)
    before = path.read_bytes()

    def half_then_fail(self, fh, **kwargs):
        fh.write("a\n2\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        write_csv(pd.DataFrame({"a": [2]}), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_node_summary_columns_and_values(tmp_path):
    bmu = np.array([[0, 0, 5, -1], [5, 5, 2, -1]])
    mask = bmu >= 0
    protos = np.arange(12, dtype=float).reshape(6, 2) * 10
    df = node_summary_frame(
        GRID, bmu=bmu, step_mask=mask,
        label_means={"died": np.array([0.0, np.nan, 0.5, np.nan, np.nan, 1.0])},
        prototypes=protos, feature_names=["hr", "count"],
        annotations={"node_names": {"0": "stable", "5": "=shock"}, "superclusters": [0, 0, 1, 1, 2, 2]},
    )
    assert list(df.columns) == ["node", "node_row", "node_col", "count", "supercluster", "name", "mean_died",
                                "hr", "prototype_count"]
    assert df["count"].tolist() == [2, 0, 1, 0, 0, 3]
    assert df["node_row"].tolist() == [0, 0, 0, 1, 1, 1] and df["node_col"].tolist() == [0, 1, 2, 0, 1, 2]
    assert df["name"].tolist() == ["stable", "", "", "", "", "=shock"]
    assert df["hr"].tolist() == [0, 20, 40, 60, 80, 100]
    back = pd.read_csv(write_csv(df, tmp_path / "nodes.csv"), keep_default_na=False)
    assert back["name"].tolist() == ["stable", "", "", "", "", "'=shock"]
    assert node_summary_frame(GRID, counts=np.arange(6))["count"].tolist() == list(range(6))
    with pytest.raises(ValueError, match="prototypes"):
        node_summary_frame(GRID, prototypes=np.zeros((5, 2)))


def test_transition_frame_wide_and_long():
    m = np.zeros((6, 6))
    m[0, 1], m[5, 5], m[2, 0] = 0.5, 1.0, 0.25
    wide = transition_frame(m)
    assert list(wide.columns) == ["from_node"] + [f"to_{j}" for j in range(6)]
    assert np.array_equal(wide.iloc[:, 1:].to_numpy(), m)
    long = transition_frame(m, long=True)
    assert long.to_dict("list") == {"from_node": [0, 2, 5], "to_node": [1, 0, 5], "value": [0.5, 0.25, 1.0]}
    with pytest.raises(ValueError, match="square"):
        transition_frame(np.zeros((2, 3)))


def test_ids_that_start_with_a_space_or_tab_are_written_unchanged(tmp_path):
    ids = np.array([" 12", "\tP-3", "  x", "P4"], dtype=object)
    ds = Dataset(values=np.zeros((4, 1)), mask=np.ones((4, 1), bool), feature_names=["a"], ids=ids, id_col="pid")
    df = assignments_frame(bmu=np.array([0, 1, 2, 3]), grid=GRID, dataset=ds)
    path = write_csv(df, tmp_path / "ids.csv")
    raw = path.read_bytes().decode("utf-8").split("\r\n")
    assert [line.split(",")[1] for line in raw[1:5]] == [" 12", "\tP-3", "  x", "P4"]
    back = pd.read_csv(path, dtype={"pid": str}, keep_default_na=False)
    assert back["pid"].tolist() == ids.tolist()


def test_a_killed_export_leaves_a_temporary_file_that_the_next_export_removes(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "out.csv"
    # A writer killed mid-write: its temporary file stays, unlocked, with half a table.
    code = ("import os, pandas as pd, core.io.export as e\n"
            "def die(self, fh, **kw):\n"
            "    fh.write('a\\r\\n1\\r\\n'); fh.flush(); os._exit(9)\n"
            "pd.DataFrame.to_csv = die\n"
            f"e.write_csv(pd.DataFrame({{'a': [1]}}), {str(path)!r})\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert res.returncode == 9, res.stderr
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith("out.csv.tmp")
    old = tmp_path / left[0]
    os.utime(old, (old.stat().st_atime - 60, old.stat().st_mtime - 60))  # not a write in progress
    # A temporary file another live writer holds (locked, and fresh) is left alone.
    from core.io.outputs import atomic_text

    with atomic_text(tmp_path / "busy.csv") as fh:
        fh.write("x\r\n")
        busy = [p for p in tmp_path.iterdir() if p.name.startswith("busy.csv.tmp")]
        write_csv(pd.DataFrame({"a": [2]}), path)
        assert busy[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy.csv", "out.csv"]
    assert path.read_bytes() == b"a\r\n2\r\n"


def test_a_locked_temporary_file_of_a_live_writer_is_not_swept(tmp_path):
    import os

    from core.io.outputs import atomic_text, sweep_stale_temps

    target = tmp_path / "t.csv"
    with atomic_text(target) as fh:
        fh.write("a\r\n")
        tmp = next(p for p in tmp_path.iterdir() if p.name.startswith("t.csv.tmp"))
        os.utime(tmp, (0, 0))  # old, but its writer is alive and holds the lock
        assert sweep_stale_temps(target) == [] and tmp.exists()
    assert target.read_bytes() == b"a\r\n"


def test_atomic_path_replaces_only_when_the_writer_succeeds(tmp_path):
    from core.io.outputs import atomic_path

    target = tmp_path / "pic.png"
    target.write_bytes(b"old picture")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the writer failed")
    with pytest.raises(OSError, match="nothing was written"):
        with atomic_path(target):
            pass  # a writer that reported success but wrote nothing
    assert target.read_bytes() == b"old picture" and [p.name for p in tmp_path.iterdir()] == ["pic.png"]
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new picture")
    assert target.read_bytes() == b"new picture" and [p.name for p in tmp_path.iterdir()] == ["pic.png"]
