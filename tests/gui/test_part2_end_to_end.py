"""The real engine through the real widgets: open the demo (test size), train a tiny model,
select cells on the map with the mouse, export the selection, all assignments and the cell
summary, and find exactly what core's own export functions write for the same run."""

import numpy as np
import pandas as pd
import pytest
from gui_fakes import set_tiny_schedule
from PySide6.QtCore import Qt

from core.analysis import hit_map, label_enrichment
from core.io.export import assignments_frame, node_summary_frame, write_csv
from dpsom_gui import actions
from dpsom_gui.engine import Engine


@pytest.fixture
def window(make_window, monkeypatch, tmp_path):
    names = {"Save selected lines": "selection.csv", "Save assignments": "assignments.csv",
             "Save cell summary": "cells.csv"}
    monkeypatch.setattr(actions, "ask_export_path",
                        lambda window, title, flt, name: str(tmp_path / names[title]))
    # The export dialog's choices that give the command line's columns, for the comparison below.
    from dpsom_gui.dialogs import export_dialog

    monkeypatch.setattr(export_dialog, "ask_export_options",
                        lambda window, explorer, what="": export_dialog.ExportOptions(plain_names=False,
                                                                                     keep_types=False))
    return make_window(Engine(), size=(1280, 860), log_path=None)


def test_demo_train_select_and_export_like_core(window, qtbot, tmp_path):
    session, panel = window.session, window.training_panel
    assert actions.open_demo(window, size="test")
    set_tiny_schedule(panel, epochs=(1, 1, 1), seed=3)
    panel.set_config(panel.config().replace(**{"train.som_init_epochs": (1, 1), "train.max_steps": 10}))
    with qtbot.waitSignal(session.training_finished, timeout=240000):
        panel.start_button.click()
    run, ds = session.run, session.dataset
    explorer = window.exploration.explorer
    assert explorer is not None and explorer.run is run

    # a variable in clinical units, on demand
    mv = window.map_view
    mv._layer_box.setCurrentIndex(mv._layer_box.findData("variable"))
    mv._option_box.setCurrentIndex(mv._option_box.findData("HR"))
    hr = mv.layer("variable:HR")
    assert mv._colorbar.axis.labelText == "bpm" and np.allclose(hr.values, run.decoded_prototypes()[:, 0])
    assert 30 < np.nanmin(hr.values) and np.nanmax(hr.values) < 220

    # select two cells holding patients with the mouse
    hits = run.hits()
    a, c = [int(k) for k in np.argsort(hits)[::-1][:2]]
    port = mv.plot_widget().viewport()
    centres = run.grid.positions()
    qtbot.mouseClick(port, Qt.MouseButton.LeftButton, pos=mv.map_to_widget(*centres[a]))
    qtbot.mouseClick(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     pos=mv.map_to_widget(*centres[c]))
    assert mv.selected_nodes() == sorted([a, c])
    inspector = window.exploration.inspector
    assert inspector.summary.n_points == hits[a] + hits[c]
    inspector.export_button.click()

    assert window.actions["export_assignments"].isEnabled()
    window.actions["export_assignments"].trigger()
    window.actions["export_nodes"].trigger()

    # what core writes for the same run
    res = run.assignments()
    full = assignments_frame(bmu=res["bmu"], grid=run.grid, proba=res["proba"], dataset=ds,
                             next_node_pred=res.get("next_node_pred"), path_node=run.node_paths())
    write_csv(full, tmp_path / "core-assignments.csv")
    write_csv(full[full["node"].isin([a, c])].reset_index(drop=True), tmp_path / "core-selection.csv")
    bmu = res["bmu"]
    valid = bmu >= 0
    means = {name: label_enrichment(bmu[valid], np.asarray(v)[valid], run.grid.n_nodes).mean
             for name, v in ds.labels.items()}
    nodes = node_summary_frame(run.grid, counts=hit_map(bmu[valid], run.grid.n_nodes), label_means=means,
                               prototypes=run.decoded_prototypes(), feature_names=ds.feature_names, annotations={})
    write_csv(nodes, tmp_path / "core-cells.csv")
    for ours, theirs in (("assignments", "core-assignments"), ("selection", "core-selection"), ("cells", "core-cells")):
        assert (tmp_path / f"{ours}.csv").read_bytes() == (tmp_path / f"{theirs}.csv").read_bytes(), ours
    exported = pd.read_csv(tmp_path / "selection.csv")
    assert len(exported) == hits[a] + hits[c] and set(exported["node"]) == {a, c}

    # the journeys view forecasts with the real model
    window.exploration.docks["trajectories"].raise_()
    journeys = window.exploration.trajectories
    assert journeys.isVisible()
    journeys.set_patients([0, 1])
    with qtbot.waitSignal(journeys.forecast_ready, timeout=30000):  # computed on a worker thread
        journeys.set_time(5.0)
    f = journeys.forecast
    assert f is not None and f.nodes.shape == (2, journeys.horizon_box.value())
    assert ((f.nodes >= 0) & (f.nodes < run.grid.n_nodes)).all()
    assert (f.start == 6).all()  # the history is the first six hours
    assert f.sample_nodes is not None and journeys.forecast_item.n_rings > 0
