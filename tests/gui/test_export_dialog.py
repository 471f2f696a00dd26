"""Assignments exports a person can read: plain headers, whole hours, outcomes, probabilities."""

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt

from dpsom_gui.dialogs.export_dialog import (ExportDialog, ExportOptions, assignments_for_export,
                                             write_assignments)


def test_defaults_write_whole_hours_and_plain_headers(explorer, tmp_path):
    ds = explorer.dataset
    technical = explorer.assignments_frame()
    assert technical[ds.time_col].dtype.kind == "f"  # what the command line writes: 0.0, 1.0, ...
    path = tmp_path / "assignments.csv"
    n = write_assignments(explorer, path, ExportOptions())
    text = path.read_text(encoding="utf-8").splitlines()
    assert n == explorer.n_points == len(text) - 1
    header = text[0].split(",")
    assert header[:6] == ["Line", "Patient", f"Time ({ds.time_unit})", "Cell", "Cell row", "Cell column"]
    first = text[1].split(",")
    assert first[2] == str(int(ds.times[0, 0]))  # "0", not "0.0"
    back = pd.read_csv(path)
    assert back["Cell"].tolist() == technical["node"].tolist()
    assert back["Patient"].astype(str).tolist() == technical[ds.id_col].astype(str).tolist()
    # the smoothed path's cell, under a plain name, equals the run's decoded path at the real steps
    assert back["Cell on smoothed path"].tolist() == explorer.run.node_paths()[ds.step_mask].tolist()
    assert {"Smoothed path cell row", "Smoothed path cell column"} <= set(back.columns)


def test_outcomes_and_probabilities_are_added_on_request(explorer):
    options = ExportOptions(outcomes=("death_24h", "state"), probabilities=True)
    frame = assignments_for_export(explorer, options, nodes=[0, 5])
    mask = explorer.point_mask([0, 5])
    assert len(frame) == mask.sum()
    assert frame["Death within 24 h"].tolist() == explorer.label_points("death_24h")[mask].astype(int).tolist()
    assert frame["True health state"].dtype.kind in "iu"
    probs = frame[[f"Probability of cell {j}" for j in range(explorer.n_nodes)]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(probs, explorer.point_proba()[mask])


def test_technical_names_and_float_times_stay_available(explorer):
    frame = assignments_for_export(explorer, ExportOptions(plain_names=False, keep_types=False))
    pd.testing.assert_frame_equal(frame, explorer.assignments_frame())


def test_the_dialog_collects_the_choices(qtbot, explorer):
    dialog = ExportDialog(explorer)
    qtbot.addWidget(dialog)
    assert dialog.options() == ExportOptions()
    dialog.proba_check.setChecked(True)
    dialog.plain_check.setChecked(False)
    dialog.set_outcome_checked("death_24h")
    assert dialog.options() == ExportOptions(plain_names=False, outcomes=("death_24h",), probabilities=True)
    names = [dialog.outcomes.item(i).text() for i in range(dialog.outcomes.count())]
    assert "Death within 24 h (death_24h)" in names
    assert dialog.outcomes.item(0).flags() & Qt.ItemFlag.ItemIsUserCheckable
