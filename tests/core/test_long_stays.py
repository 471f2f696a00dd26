"""One stay far longer than the rest: every step kept, memory following the observed steps.

Such a stay fills several consecutive rows (parts with the same id) as long as the longest
other stay, instead of padding every patient to it or cutting it.
"""

import numpy as np
import pandas as pd
import pytest

from core.analysis import local_move_share, mean_jump, transition_matrix
from core.cli import main
from core.data.dataset import Dataset
from core.data.readers import read_data
from core.grid import SOMGrid
from core.io.project_h5 import Project, load_project, save_project

N_SHORT, SHORT, LONG = 200, 12, 2000


def _cohort(tmp_path, n_short=N_SHORT, short=SHORT, long=LONG, name="long_stay.csv"):
    """Hourly rows of ``n_short`` stays of ``short`` hours, then one stay (id 9999) of ``long``."""
    rng = np.random.default_rng(1)
    pid = np.concatenate([np.repeat(np.arange(n_short), short), np.full(long, 9999)])
    hour = np.concatenate([np.tile(np.arange(short), n_short), np.arange(long)])
    # a label written every 100 hours of the long stay and at the first hour of the others
    state = np.where(hour % 100 == 0, (hour // 100).astype(float), np.nan)
    # an outcome known only at the last hour of each stay (1 for the long one)
    last = np.r_[pid[1:] != pid[:-1], True]
    died = np.where(last, (pid == 9999).astype(float), np.nan)
    frame = pd.DataFrame({"stay_id": pid, "hour": hour, "hr": rng.normal(80, 5, pid.size).round(1),
                          "sbp": rng.normal(120, 9, pid.size).round(1), "state": state, "died": died})
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path, frame


def _read(path, **kw):
    return read_data(path, id_col="stay_id", time_col="hour", labels=["state", "died"], **kw)


def test_every_step_of_the_long_stay_is_kept_in_order_with_its_time(tmp_path):
    path, frame = _cohort(tmp_path)
    ds = _read(path)
    real = ds.step_mask
    assert ds.n_points == len(frame) and ds.n_patients == N_SHORT + 1
    # patient by patient, in time order: exactly the rows of the file
    np.testing.assert_allclose(ds.values[real][:, ds.feature_names.index("hr")], frame.hr, rtol=1e-6)
    np.testing.assert_allclose(ds.values[real][:, ds.feature_names.index("sbp")], frame.sbp, rtol=1e-6)
    np.testing.assert_array_equal(ds.times[real], frame.hour)
    np.testing.assert_array_equal(np.asarray(ds.ids)[np.nonzero(real)[0]], frame.stay_id)
    # the long stay's rows are consecutive parts that continue each other
    rows = np.flatnonzero(np.asarray(ds.ids) == 9999)
    assert np.array_equal(rows, np.arange(rows[0], rows[-1] + 1))
    assert ds.starts[rows[0]] == 0 and np.array_equal(np.diff(ds.starts[rows]), ds.lengths[rows][:-1])
    assert ds.continues[rows[1:]].all() and not ds.continues[rows[0]]
    assert (ds.row_patient[rows] == N_SHORT).all()
    assert not any("left out" in w or "were cut" in w for w in ds.warnings)


def test_grid_memory_follows_the_observed_steps(tmp_path):
    path, frame = _cohort(tmp_path)
    ds = _read(path)
    parts = -(-LONG // SHORT)
    # rows as long as the longest other stay: the short ones are not padded at all
    assert ds.values.shape == (N_SHORT + parts, SHORT, 2)
    observed_bytes = len(frame) * 2 * 4  # float32 values of the observed steps
    assert ds.values.nbytes < 1.01 * observed_bytes
    assert ds.mask.nbytes == ds.values.size and ds.times.shape == ds.values.shape[:2]
    assert ds.labels["state"].shape == ds.values.shape[:2]
    # padding everyone to the long stay would have been 91 times as large
    assert (N_SHORT + 1) * LONG * 2 * 4 > 90 * ds.values.nbytes


def test_the_warning_names_the_patient_its_length_what_was_done_and_the_option(tmp_path):
    ds = _read(_cohort(tmp_path)[0])
    notes = [w for w in ds.warnings if "far more than the rest" in w]
    assert len(notes) == 1
    note = notes[0]
    assert note.startswith("Patient '9999' has 2,000 steps, far more than the rest "
                           "(200 of 201 patients have at most 12)")
    assert "kept whole, as 167 consecutive parts of up to 12 steps" in note
    assert "--max-time-steps N" in note and "--max-time-steps 12" in note


def test_several_far_longer_stays_are_counted_and_the_longest_named(tmp_path):
    lengths = [10] * 2000 + [3000, 5000]
    pid = np.repeat(np.arange(len(lengths)), lengths)
    hour = np.concatenate([np.arange(n) for n in lengths])
    path = tmp_path / "two.csv"
    pd.DataFrame({"stay_id": pid, "hour": hour, "hr": 70.0 + hour % 7}).to_csv(path, index=False)
    ds = read_data(path, id_col="stay_id", time_col="hour")
    assert ds.values.shape == (2000 + 300 + 500, 10, 1) and ds.n_points == sum(lengths)
    note = next(w for w in ds.warnings if "far longer than the rest" in w)
    assert note.startswith("2 patients are far longer than the rest; the longest, '2001', has 5,000 steps")
    assert "as 800 consecutive parts of up to 10 steps" in note


def test_labels_carry_forward_from_one_part_to_the_next(tmp_path):
    path, frame = _cohort(tmp_path)
    ds = _read(path)
    rows = np.flatnonzero(np.asarray(ds.ids) == 9999)
    whole = ds.labels["state"][rows][ds.step_mask[rows]]  # the stay's label, step by step
    np.testing.assert_array_equal(whole, np.arange(LONG) // 100)
    # a short stay's label never leaks into the long stay (or the other way round)
    assert np.isnan(ds.labels["state"][0, 1:]).sum() == 0 and ds.labels["state"][0, 0] == 0
    # an outcome given once per stay fills the whole stay, back through every part
    died = ds.labels["died"]
    assert (died[rows][ds.step_mask[rows]] == 1).all()
    assert (died[:N_SHORT][ds.step_mask[:N_SHORT]] == 0).all()


def test_max_time_steps_still_cuts_and_keeps_one_row_per_patient(tmp_path):
    path, _ = _cohort(tmp_path)
    ds = _read(path, max_steps=48)
    assert ds.values.shape == (N_SHORT + 1, 48, 2) and ds.starts is None
    assert any("1 patient(s) were longer than 48 steps" in w for w in ds.warnings)


def test_parts_survive_a_subset_and_a_subset_never_joins_strangers(tmp_path):
    ds = _read(_cohort(tmp_path)[0])
    rows = np.flatnonzero(np.asarray(ds.ids) == 9999)
    sub = ds.subset(np.r_[0, rows[:3], rows[5:7]])
    # part 5 does not continue part 3: the gap starts a new run
    assert sub.continues.tolist() == [False, False, True, True, False, True]
    assert sub.n_patients == 3
    assert sub.row_names() == ["0", "9999 (part 1 of 3)", "9999 (part 2 of 3)", "9999 (part 3 of 3)",
                               "9999 (part 1 of 2)", "9999 (part 2 of 2)"]
    assert [sub.row_name(i) for i in range(6)] == sub.row_names()


def test_transitions_and_jumps_count_the_move_from_one_part_to_the_next():
    grid = SOMGrid(1, 4, toroidal=False)
    bmu = np.array([[0, 1, 1], [3, 2, -1]])  # one stay of 5 steps in two parts
    lengths = np.array([3, 2])
    joined = transition_matrix(bmu, lengths, 4, normalize=False, continues=np.array([False, True]))
    apart = transition_matrix(bmu, lengths, 4, normalize=False)
    assert joined[1, 3] == 1 and apart[1, 3] == 0 and joined.sum() == 4
    assert mean_jump(bmu, lengths, grid, continues=np.array([False, True])) == pytest.approx((1 + 0 + 2 + 1) / 4)
    # Steps 0->1, 1->1, 1->3 (across the parts: two cells), 3->2: three of four stay local.
    assert local_move_share(bmu, lengths, grid, continues=np.array([False, True])) == pytest.approx(3 / 4)
    assert local_move_share(bmu, lengths, grid) == pytest.approx(3 / 3)


def test_a_project_keeps_the_parts(tmp_path):
    ds = _read(_cohort(tmp_path)[0])
    out = save_project(tmp_path / "p.h5", Project(config={}, dataset=ds))
    back = load_project(out).dataset
    np.testing.assert_array_equal(back.starts, ds.starts)
    np.testing.assert_array_equal(back.lengths, ds.lengths)
    np.testing.assert_array_equal(back.continues, ds.continues)
    assert back.n_patients == N_SHORT + 1


def test_a_project_without_parts_stores_no_starts(tmp_path):
    ds = Dataset(values=np.ones((3, 4, 1)), mask=np.ones((3, 4, 1), bool), feature_names=["a"],
                 ids=np.array(["a", "b", "c"]), lengths=np.array([4, 2, 3]))
    back = load_project(save_project(tmp_path / "p.h5", Project(config={}, dataset=ds))).dataset
    assert back.starts is None and back.n_patients == 3 and not back.continues.any()


def test_train_export_and_apply_list_every_observed_step_with_its_id_and_time(tmp_path, capsys, monkeypatch):
    from core.workflow import ModelRun

    # The training-time estimate times a few dozen probe steps; it is not under test here.
    monkeypatch.setattr(ModelRun, "estimate", lambda self: {"steps": 3, "seconds": 1.0, "memory_bytes": 0})
    path, frame = _cohort(tmp_path, n_short=100, long=1200)
    project, out = tmp_path / "p.h5", tmp_path / "a.csv"
    code = main(["train", str(path), "--out", str(project), "--id-col", "stay_id", "--time-col", "hour",
                 "--labels", "state,died", "--grid", "3x3", "--max-steps", "3", "--quiet", "--autosave", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Patient '9999' has 1,200 steps" in err
    assert main(["export", str(project), "--assignments", str(out)]) == 0
    rows = pd.read_csv(out)
    assert len(rows) == len(frame)
    np.testing.assert_array_equal(rows["stay_id"], frame.stay_id)
    np.testing.assert_array_equal(rows["hour"], frame.hour)
    assert rows["row"].tolist() == list(range(len(frame)))
    # the smoothed path runs through the long stay's parts as through one sequence
    from core.analysis.paths import smoothed_paths

    run = ModelRun.from_project(load_project(project))
    ds = run.dataset
    long_rows = np.flatnonzero(np.asarray(ds.ids) == 9999)
    stay = run.assignments()["proba"][long_rows][ds.step_mask[long_rows]]  # (1200, K), in time order
    whole = smoothed_paths(stay[None], None, run.grid.distances())[0]
    np.testing.assert_array_equal(rows.loc[rows["stay_id"] == 9999, "path_node"], whole)
    # the same file mapped by `dpsom apply` is read the same way
    applied = tmp_path / "b.csv"
    assert main(["apply", str(project), str(path), "--assignments", str(applied)]) == 0
    again = pd.read_csv(applied)
    assert len(again) == len(frame)
    np.testing.assert_array_equal(again["hour"], frame.hour)
    np.testing.assert_array_equal(again["node"], rows["node"])
    np.testing.assert_array_equal(again["path_node"], rows["path_node"])
    # every move between consecutive hours of a stay is counted, across the parts too
    moves = tmp_path / "t.csv"
    assert main(["export", str(project), "--transitions", str(moves)]) == 0
    exported = pd.read_csv(moves).drop(columns="from_node").to_numpy()
    expected = np.zeros_like(exported)
    for _, stay in rows.groupby("stay_id", sort=False):
        nodes = stay["node"].to_numpy()
        np.add.at(expected, (nodes[:-1], nodes[1:]), 1.0)
    assert expected.sum() == len(frame) - frame.stay_id.nunique()
    totals = expected.sum(axis=1, keepdims=True)
    expected = np.divide(expected, totals, out=np.zeros_like(expected), where=totals > 0)
    np.testing.assert_allclose(exported, expected, atol=1e-9)


def test_a_cohort_file_keeps_the_parts(tmp_path):
    from core.data.preprocessing import Preprocessor
    from core.io.cohort_h5 import Cohort, cohort_from_dataset

    ds = _read(_cohort(tmp_path)[0])
    path = cohort_from_dataset(ds, Preprocessor().fit(ds), tmp_path / "c.h5")
    with Cohort(path) as cohort:
        back = cohort.to_dataset()
    np.testing.assert_array_equal(back.starts, ds.starts)
    np.testing.assert_array_equal(back.times[back.step_mask], ds.times[ds.step_mask])
    assert back.n_patients == N_SHORT + 1


def test_an_old_project_has_one_row_per_patient():
    from pathlib import Path

    ds = load_project(Path(__file__).resolve().parent / "fixtures" / "project_v1.h5").dataset
    assert ds.is_series and ds.starts is None and not ds.continues.any()
    assert ds.n_patients == 3 and ds.row_names() == ["p1", "p2", "p3"]


def test_the_explorer_counts_a_stay_in_parts_as_one_patient_and_its_moves_between_parts():
    from types import SimpleNamespace

    from core.explore import RunExplorer

    # patient "a" in two parts (steps 0-2 and 3-4), patient "b" in one row
    ds = Dataset(values=np.zeros((3, 3, 1)), mask=np.ones((3, 3, 1), bool), feature_names=["x"],
                 ids=np.array(["a", "a", "b"]), lengths=np.array([3, 2, 2]), starts=np.array([0, 3, 0]),
                 times=np.array([[0.0, 1, 2], [3, 4, np.nan], [0, 1, np.nan]]))
    bmu = np.array([[0, 2, 2], [2, 1, -1], [1, 1, -1]])
    ex = RunExplorer(SimpleNamespace(grid=SOMGrid(1, 3, toroidal=False)), {"bmu": bmu}, ds)
    counts = ex.transition_counts()
    # 0->2, 2->2, 2->2 (from part 1 to part 2), 2->1, 1->1
    assert counts[2, 2] == 2 and counts.sum() == 5
    assert ex.patients_per_node().tolist() == [1, 2, 1]  # node 2: "a" only, in both parts
    assert ex.selection([2]).n_patients == 1
    frame = ex.assignments_frame()
    assert frame["id"].tolist() == ["a"] * 5 + ["b"] * 2
    assert frame["time"].tolist() == [0, 1, 2, 3, 4, 0, 1]
