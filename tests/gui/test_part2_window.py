"""The exploring views inside the main window (training faked, files real): menus and docks,
layers on demand, selection to inspector to patient, saved group names, exports compared with
core's frames, pictures, animations, and analyses on a background thread."""

import numpy as np
import pandas as pd
import pytest
from part2_fakes import ExploreEngine
from PySide6.QtGui import QImageReader

from core.io.export import assignments_frame, write_csv
from dpsom_gui import actions


@pytest.fixture
def window(make_window):
    return make_window(ExploreEngine(), size=(1280, 860), log_path=None)


@pytest.fixture
def trained(window, qtbot):
    assert actions.open_demo(window)
    with qtbot.waitSignal(window.session.training_finished, timeout=20000):
        window.actions["start"].trigger()
    return window


def test_menus_and_docks(window):
    names = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert "Export" in names and "Help" in names
    assert window.actions["guide"].shortcut().toString()  # F1 or the platform's help key
    for key in ("inspector", "trajectories", "transitions", "metrics"):
        dock = window.exploration.docks[key]
        assert dock.objectName() == f"dock_{key}" and not dock.isVisible()
        assert dock.toggleViewAction() in window.findChildren(type(dock.toggleViewAction()))
    window.actions["export_assignments"].trigger()  # nothing trained: a hint, no file dialog
    assert "Train a model" in window.statusBar().currentMessage()


def test_after_training_every_exploring_view_has_data(trained):
    w = trained
    ex = w.exploration
    assert ex.explorer is not None
    kinds = [w.map_view._layer_box.itemData(i) for i in range(w.map_view._layer_box.count())]
    assert kinds == ["umatrix", "hits", "variable", "outcome", "uncertainty", "superclusters"]
    assert ex.trajectories.patients == [0] and ex.trajectories.play_button.isEnabled()
    assert ex.transitions.matrix().sum() > 0 and ex.transitions.arrows_check.isEnabled()
    assert ex.metrics.compute_button.isEnabled() and ex.metrics.stability_button.isEnabled()
    text = w.map_view.describe(0)
    assert text.startswith("Cell 0") and "time points from" in text


def test_selection_fills_the_inspector_and_a_line_shows_the_patient(trained, qtbot):
    w = trained
    mv, ex = w.map_view, w.exploration
    mv._user_selects([2, 3])
    summary = ex.inspector.summary
    assert summary.nodes == (2, 3)
    assert summary.n_points == int(np.isin(ex.explorer.point_node, [2, 3]).sum())
    line = 4
    patient, step = int(summary.patient[line]), int(summary.step[line])
    ex.inspector.select_line(line)
    assert w.patient_view.current_patient == patient
    row = w.data_view.table.selectionModel().selectedRows()[0].row()
    model = w.data_view.table_model
    assert model.data(model.index(row, 0)) == ex.explorer.patient_ids()[patient]
    assert float(model.data(model.index(row, 1))) == w.session.dataset.times[patient, step]


def test_group_names_are_saved_with_the_project(trained, tmp_path):
    w = trained
    mv = w.map_view
    mv._layer_box.setCurrentIndex(mv._layer_box.findData("superclusters"))
    mv._option_box.setCurrentIndex(mv._option_box.findData("3"))
    assert mv.current_layer == "superclusters:3"
    mv.legend.categories.item(0).setText("Stable")
    assert w.session.annotations["supercluster_names"] == ["Stable", "Group 2", "Group 3"]
    assert w.session.dirty and mv.legend.category_names()[0] == "Stable"
    groups = w.session.annotations["superclusters"]
    path = str(tmp_path / "named.h5")
    assert actions.save_project_as(w, path)
    w.actions["new"].trigger()
    assert w.session.annotations == {}
    assert actions.open_project(w, path)
    assert w.session.annotations["superclusters"] == groups
    mv._layer_box.setCurrentIndex(mv._layer_box.findData("superclusters"))  # the saved grouping, by name
    assert mv.layer(mv.current_layer).categories == ("Stable", "Group 2", "Group 3")
    out = tmp_path / "cells.csv"
    assert actions.export_node_summary(w, str(out))
    table = pd.read_csv(out)
    names = ["Stable", "Group 2", "Group 3"]
    assert table["supercluster"].tolist() == groups
    assert table["supercluster_name"].tolist() == [names[g] for g in groups]


def test_exports_match_cores_frames(trained, tmp_path):
    w = trained
    run, ds = w.session.run, w.session.dataset
    r = run.results()
    ours, core = tmp_path / "ours.csv", tmp_path / "core.csv"
    assert actions.export_assignments(w, str(ours))
    write_csv(assignments_frame(bmu=r["bmu"], grid=run.grid, proba=r["proba"], dataset=ds,
                                next_node_pred=r["next_node_pred"], path_node=r["path_node"]), core)
    assert ours.read_bytes() == core.read_bytes()
    w.map_view._user_selects([1, 9])
    sel = tmp_path / "sel.csv"
    assert actions.export_selection(w, str(sel))
    full = pd.read_csv(core)
    pd.testing.assert_frame_equal(pd.read_csv(sel), full[full["node"].isin([1, 9])].reset_index(drop=True))


def test_pictures_of_views_as_png_and_svg(trained, tmp_path):
    w = trained
    png, svg = tmp_path / "map.png", tmp_path / "moves.svg"
    assert actions.export_view_picture(w, "map", str(png))
    reader = QImageReader(str(png))
    assert reader.size() == w.map_view.size()
    assert actions.export_view_picture(w, "transitions", str(svg))
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and text.count("<image") + text.count("<path") > 5
    assert not actions.export_view_picture(w, "map", str(tmp_path / "map.bmp"))  # refused: an error is shown
    assert w.error_dialogs


def test_animation_export_from_the_menu(trained, tmp_path):
    w = trained
    view = w.exploration.trajectories
    view.set_patients([0, 1])
    view.set_speed(16.0)
    path = tmp_path / "journeys.gif"
    assert actions.export_animation(w, str(path))
    assert QImageReader(str(path)).imageCount() > 3


def test_flow_arrows_follow_the_transition_view(trained):
    w = trained
    ex = w.exploration
    ex.transitions.show_arrows(7)
    assert ex.flows_item.scene() is not None and ex.flows_item.flow_count() == 7
    ex.transitions.show_arrows(0)
    assert ex.flows_item.scene() is None


def test_quality_and_stability_run_in_the_background(trained, qtbot):
    w = trained
    s, panel = w.session, w.exploration.metrics
    panel.label_box.setCurrentIndex(panel.label_box.findData("state"))
    with qtbot.waitSignal(s.analysis_finished, timeout=20000) as done:
        panel.compute_button.click()
    assert done.args[0] == "metrics" and done.args[1]["label"] == "state"
    assert "NMI" in panel.result_label.text()
    panel.seeds_box.setValue(2)
    progress = []
    s.analysis_progress.connect(lambda name, value: progress.append(value))
    with qtbot.waitSignal(s.analysis_finished, timeout=20000) as done:
        panel.stability_button.click()
        assert panel.stop_button.isEnabled() and s.is_analysing
    name, res = done.args
    seed = s.config.train.seed  # the other seeds follow the model's own
    assert name == "stability" and res["seeds"] == [seed + 1, seed + 2]
    assert s.run.stability_calls == [((seed + 1, seed + 2), "state")]
    assert progress and progress[-1][1] == 2
    assert "agreement" in panel.stability_label.text() and not panel.stop_button.isEnabled()
    assert not s.is_analysing


def test_stopping_a_stability_check(trained, qtbot, monkeypatch):
    w = trained
    s, panel = w.session, w.exploration.metrics
    run = s.run
    original = run.stability

    def slow(seeds, label=None, callback=None):
        def waiting(index, progress):
            import time

            time.sleep(0.02)
            return callback(index, progress)

        return original(seeds, label=label, callback=waiting)

    monkeypatch.setattr(run, "stability", slow)
    with qtbot.waitSignal(s.analysis_cancelled, timeout=20000):
        panel.stability_button.click()
        panel.stop_button.click()
    assert "Stopped" in panel.stability_label.text() and panel.stability_button.isEnabled()


def test_help_and_about_from_the_menu(window, qtbot):
    window.actions["guide"].trigger()
    assert window.help_dialog.isVisible() and "DPSOM Studio" in window.help_dialog.browser.toPlainText()
    window.actions["about"].trigger()
    assert "PyTorch" in window.about_dialog.versions()
    window.help_dialog.close()
    window.about_dialog.close()


def test_a_layer_that_cannot_be_drawn_is_logged_and_said(trained, monkeypatch, caplog):
    w = trained
    ex = w.exploration

    def broken(kind, option="", annotations=None):
        raise ValueError("no numbers for this layer")

    monkeypatch.setattr(ex.explorer, "layer", broken)
    with caplog.at_level("WARNING", logger="dpsom_gui.exploring_views"):
        ex._on_map_layer_requested("variable", "heart_rate")
    # The log names the layer and where it failed (never the message, which may quote data).
    assert "map layer variable:heart_rate not drawn" in caplog.text and "ValueError" in caplog.text
    assert "This layer cannot be shown: no numbers for this layer" in w.statusBar().currentMessage()
