"""The main window driven like a user would: menus, shortcuts, training, saving, errors and
closing (also during training). Training is faked; files are real."""

import numpy as np
import pytest
from gui_fakes import FakeEngine
from PySide6.QtGui import QKeySequence

from dpsom_gui import actions
from dpsom_gui.dialogs.import_dialog import ImportDialog


@pytest.fixture
def window(make_window):
    return make_window()


def train_to_end(qtbot, window):
    with qtbot.waitSignal(window.session.training_finished, timeout=10000):
        window.actions["start"].trigger()


def test_starts_on_the_start_page_with_docks_hidden(window):
    assert window.stack.currentWidget() is window.start_panel
    assert not any(d.isVisible() for d in window.docks.values())
    assert window.windowTitle().startswith("Untitled project")
    assert not window.actions["pause"].isEnabled() and not window.actions["save"].isEnabled()


def test_the_training_curves_view_chosen_is_remembered_next_time(make_window, qtbot, prefs, answers):
    first = make_window()
    assert not first.loss_view.detailed  # the plain view by default
    first.loss_view._detail_box.click()  # as a user does
    assert first.loss_view.detailed and first.loss_view._log_box.isVisibleTo(first.loss_view)
    first.close()
    prefs.sync()
    from dpsom_gui.settings import Preferences

    again = make_window(prefs=Preferences.open(prefs.file_name))  # a new session reads the file
    assert again.loss_view.detailed and again.loss_view._log_box.isVisibleTo(again.loss_view)
    again.loss_view._detail_box.click()
    assert Preferences.open(prefs.file_name).get("loss_detailed") is False
    again.session.shutdown()
    first.session.shutdown()


def test_keyboard_shortcuts(window):
    expected = {"open": QKeySequence(QKeySequence.StandardKey.Open), "save": QKeySequence(QKeySequence.StandardKey.Save),
                "save_as": QKeySequence("Ctrl+Shift+S"), "import": QKeySequence("Ctrl+I"),
                "start": QKeySequence("F5"), "pause": QKeySequence("F6")}
    for name, keys in expected.items():
        assert window.actions[name].shortcut() == keys, name
        assert window.actions[name].toolTip()


def test_demo_opens_the_workspace_and_fills_every_view(window, qtbot):
    window.start_panel.demo_button.click()
    assert window.stack.currentWidget() is window.map_view
    assert all(d.isVisible() for name, d in window.docks.items() if name != "data")
    assert window.data_view.table_model.rowCount() == window.session.dataset.n_points
    assert window.patient_view.current_patient == 0
    assert window.training_panel.state == "idle" and window.training_panel.start_button.isEnabled()
    assert not window.isWindowModified()  # the untouched demo has nothing to save
    qtbot.waitUntil(lambda: "Estimated time" in window.training_panel._estimate.text(), timeout=3000)


def test_training_from_the_panel_updates_views_and_locks_settings(window, qtbot):
    actions.open_demo(window)
    panel = window.training_panel
    with qtbot.waitSignal(window.session.training_finished, timeout=10000):
        panel.start_button.click()
        assert not panel.binder.widget("grid.height").isEnabled()
        assert window.actions["pause"].isEnabled() and window.actions["save"].isEnabled()
    assert panel.binder.widget("grid.height").isEnabled()
    window.loss_view.flush()
    assert ("joint", "total") in window.loss_view.curve_keys()
    assert window.map_view.layer_names() == ["umatrix", "hits"]
    assert panel.progress_bar.value() == 1000
    assert "finished" in panel._phase.text()
    assert window.patient_view._cell_bars is not None  # map cells shown for the patient


def test_pause_resume_and_stop_from_the_menu(make_window, qtbot, answers):
    # long enough (2 s) that a loaded machine cannot finish it before Stop is pressed
    window = make_window(FakeEngine(delay=0.02, phases=(("pretrain", 20, 5),)))
    try:
        actions.open_demo(window)
        window.actions["start"].trigger()
        qtbot.waitUntil(lambda: len(window.session.history) >= 2, timeout=5000)
        with qtbot.waitSignal(window.session.training_state_changed, timeout=5000):
            window.actions["pause"].trigger()
        assert window.session.state == "paused" and window.training_panel.resume_button.isEnabled()
        with qtbot.waitSignal(window.session.training_state_changed, timeout=5000):
            window.actions["start"].trigger()  # F5 resumes
        assert window.session.state == "running"
        with qtbot.waitSignal(window.session.training_cancelled, timeout=10000):
            window.actions["stop"].trigger()
        assert window.training_panel.resume_button.isEnabled()
        assert "Resume" in window.training_panel._phase.text()
    finally:
        window.session.shutdown()


def test_save_as_then_reopen_from_recent_files(window, qtbot, tmp_path, answers):
    actions.open_demo(window)
    train_to_end(qtbot, window)
    bmu = window.session.results["bmu"].copy()
    assert "Save the project to keep the model" in window.training_panel._phase.text()
    answers["save_path"] = str(tmp_path / "study.h5")
    window.actions["save_as"].trigger()
    assert not window.isWindowModified() and window.windowTitle().startswith("study.h5")
    assert window.training_panel._phase.text() == "Training finished. The model is saved in study.h5."
    window.actions["new"].trigger()
    assert window.stack.currentWidget() is window.start_panel
    assert window.start_panel.recent_list.count() == 1
    window.start_panel.recent_list.itemActivated.emit(window.start_panel.recent_list.item(0))
    assert np.array_equal(window.session.results["bmu"], bmu)
    assert window.map_view.layer_names() == ["umatrix", "hits"]
    window.loss_view.flush()
    assert ("joint", "total") in window.loss_view.curve_keys()  # the curves come back too


def test_unsaved_work_is_protected(window, qtbot, tmp_path, answers):
    actions.open_demo(window)
    window.training_panel.binder.widget("grid.height").setValue(5)  # a change worth keeping
    assert window.isWindowModified()
    answers["save"] = "cancel"
    window.actions["new"].trigger()
    assert window.session.dataset is not None  # nothing lost
    answers["save"] = "save"
    answers["save_path"] = str(tmp_path / "kept.h5")
    window.actions["new"].trigger()
    assert (tmp_path / "kept.h5").exists() and window.session.dataset is None


def test_a_broken_project_shows_a_non_modal_error_and_keeps_the_project(window, qtbot, tmp_path):
    actions.open_demo(window)
    ds = window.session.dataset
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5")
    window.session._set_dirty(False)
    assert not actions.open_project(window, str(bad))
    assert window.session.dataset is ds
    dialog = window.error_dialogs[-1]
    assert dialog.isVisible() and not dialog.isModal()
    assert "broken.h5" in dialog.message_label.text()
    assert "/tmp/dpsom-studio.log" in dialog.log_label.text()


def test_a_failed_training_shows_the_problem_and_keeps_working(make_window, qtbot, answers):
    window = make_window(FakeEngine(fail_at=5))
    try:
        actions.open_demo(window)
        with qtbot.waitSignal(window.session.training_failed, timeout=10000):
            window.actions["start"].trigger()
        dialog = window.error_dialogs[-1]
        assert "NaN" in dialog.message_label.text() and "Traceback" in dialog.details.toPlainText()
        assert window.training_panel.start_button.isEnabled()
    finally:
        window.session.shutdown()


def test_closing_during_training_asks_stops_and_waits(make_window, prefs, qtbot, answers):
    # 25 steps of 0.1 s: the run must still be going when close() asks, even on a busy machine
    window = make_window(FakeEngine(delay=0.1))
    actions.open_demo(window)
    window.actions["start"].trigger()
    qtbot.waitUntil(lambda: len(window.session.history) >= 1, timeout=5000)
    answers["stop"] = False
    assert not window.close()
    assert window.session.is_training
    answers["stop"] = True
    answers["save"] = "discard"
    assert window.close()
    assert not window.session.is_training
    assert prefs.window_geometry() is not None and prefs.window_state() is not None


def test_window_layout_is_restored(make_window, qtbot, answers):
    first = make_window()
    actions.open_demo(first)
    first.docks["patients"].setVisible(False)
    first.session._set_dirty(False)
    assert first.close()
    second = make_window()
    actions.open_demo(second)
    assert not second.docks["patients"].isVisible() and second.docks["training"].isVisible()


def test_a_data_file_given_to_open_goes_to_the_import_dialog(window, qtbot, tmp_path, monkeypatch):
    path = tmp_path / "table.csv"
    path.write_text("id,hr,sbp\n" + "".join(f"{i},{70 + i},{110 + i}\n" for i in range(30)))

    def exec_after_check(dialog):
        qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=10000)
        dialog.accept()
        return ImportDialog.DialogCode.Accepted

    monkeypatch.setattr(ImportDialog, "exec", exec_after_check)
    assert actions.open_project(window, str(path))
    assert window.session.dataset.values.shape == (30, 2)
    assert window.session.config.model == "dpsom"
    assert window.stack.currentWidget() is window.map_view


def test_preferences_apply_to_live_views(window, prefs):
    prefs.set("refresh_hz", 5)
    window.apply_preferences()
    assert window.map_view._throttle.interval_ms == 200 and window.loss_view._throttle.interval_ms == 200
