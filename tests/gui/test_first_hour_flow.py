"""A clinician's first hour, driven through the real window: no trained map is lost without
asking, no view keeps the previous data, loading never freezes the window, the map size is
explained before Start, a reopened project says what it holds, and the buttons stay put.
Training is faked; files, widgets and threads are real."""

import threading
import time

import numpy as np
import pytest
from gui_fakes import FakeEngine, make_series
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QScrollArea

from dpsom_gui import actions
from dpsom_gui.session import TrainingState


WINDOW_SIZE = (1280, 800)


@pytest.fixture
def window(make_window):
    return make_window(size=WINDOW_SIZE)


def train_to_end(qtbot, window):
    with qtbot.waitSignal(window.session.training_finished, timeout=10000):
        window.training_panel.start_button.click()


def coloured_pixels(widget) -> int:
    """Pixels of a widget's picture that are clearly coloured (not white, grey or black)."""
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB32)
    ptr = image.constBits()
    rgb = np.frombuffer(ptr, np.uint8, image.sizeInBytes()).reshape(image.height(), image.bytesPerLine() // 4, 4)
    rgb = rgb[:, :image.width(), :3].astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 40).sum())


# ------------------------------------------------------------ 1. no map lost silently
def test_start_on_a_trained_map_asks_and_keep_changes_nothing(window, qtbot, answers):
    actions.open_demo(window)
    train_to_end(qtbot, window)
    run, bmu = window.session.run, window.session.results["bmu"].copy()
    answers["replace"] = "keep"
    window.training_panel.start_button.click()
    assert answers["asked"] == ["replace"]
    assert not window.session.is_training and window.session.run is run
    assert np.array_equal(window.session.results["bmu"], bmu)
    window.actions["start"].trigger()  # F5 on a finished map asks as well
    assert answers["asked"] == ["replace", "replace"] and window.session.run is run


def test_replacing_a_trained_map_trains_anew_in_the_same_project(window, qtbot, answers):
    actions.open_demo(window)
    train_to_end(qtbot, window)
    first = window.session.run
    answers["replace"] = "replace"
    train_to_end(qtbot, window)
    assert window.session.run is not first and window.session.run.is_complete
    assert "save" not in answers["asked"]


def test_a_new_run_in_a_new_project_keeps_the_saved_map(window, qtbot, answers, tmp_path):
    from core.io.project_h5 import load_project

    actions.open_demo(window)
    train_to_end(qtbot, window)
    assert window.isWindowModified()  # a trained, unsaved map
    answers["replace"] = "new_project"
    answers["save"] = "save"
    answers["save_path"] = str(tmp_path / "first.h5")
    train_to_end(qtbot, window)
    assert answers["asked"] == ["replace", "save", "save_path"]
    kept = load_project(tmp_path / "first.h5")
    assert int(kept.model_state["done_steps"]) == 25 and bool(kept.model_state["complete"])
    assert window.session.path is None and window.windowTitle().startswith("Untitled project")
    assert window.session.run.is_complete


def test_cancelling_the_save_before_a_new_project_keeps_everything(window, qtbot, answers):
    actions.open_demo(window)
    train_to_end(qtbot, window)
    run = window.session.run
    answers["replace"] = "new_project"
    answers["save"] = "cancel"
    window.training_panel.start_button.click()
    assert window.session.run is run and not window.session.is_training and window.isWindowModified()


# -------------------------------------------------------------- 2. no stale panels
def test_opening_other_data_clears_the_journeys_view(window, qtbot, answers):
    actions.open_demo(window)
    train_to_end(qtbot, window)
    journeys = window.exploration.trajectories
    window.exploration.docks["trajectories"].raise_()
    qtbot.wait(50)
    assert journeys.map.layer_names() and journeys._curves  # the trained map and a patient's curve
    assert coloured_pixels(journeys.map) > 500
    assert coloured_pixels(journeys.plot) > 50

    answers["save"] = "discard"
    assert actions.open_demo(window)  # new, untrained data
    qtbot.wait(50)
    assert journeys.map.layer_names() == [] and journeys.map.grid is None
    assert not journeys._curves
    assert "heart_rate" not in journeys.plot.getAxis("left").labelText
    assert coloured_pixels(journeys.map) < 50  # no cells of the old map left on screen
    assert coloured_pixels(journeys.plot) < 50
    assert window.exploration.transitions.matrix().size == 0
    assert window.exploration.inspector.summary is None


def test_every_view_follows_a_new_project(window, qtbot, answers):
    actions.open_demo(window)
    train_to_end(qtbot, window)
    window.training_panel.binder.widget("grid.height").setValue(5)
    answers["save"] = "discard"
    window.actions["new"].trigger()
    assert window.stack.currentWidget() is window.start_panel
    assert window.data_view.table_model.rowCount() == 0
    assert window.loss_view.curve_keys() == []
    assert window.exploration.explorer is None
    assert window.exploration.trajectories.map.grid is None


# ------------------------------------------------------- 4. loading never freezes
class SlowEngine(FakeEngine):
    """Reading takes a while, as the real demo and big projects do on a busy machine."""

    def __init__(self, seconds=0.6, **options):
        super().__init__(**options)
        self.seconds = seconds
        self.read_in = []

    def demo(self, size="demo"):
        self.read_in.append(threading.current_thread() is threading.main_thread())
        time.sleep(self.seconds)
        return make_series()

    def load_project(self, path):
        self.read_in.append(threading.current_thread() is threading.main_thread())
        time.sleep(self.seconds)
        return super().load_project(path)


def beats_during(qtbot, call, interval_ms=10):
    """Run ``call()`` and return the gaps (ms) between the GUI thread's timer beats meanwhile."""
    stamps = []
    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(lambda: stamps.append(time.perf_counter()))
    timer.start()
    try:
        result = call()
    finally:
        timer.stop()
    return result, np.diff(stamps) * 1000 if len(stamps) > 1 else np.array([1e9])


def test_opening_the_demo_reads_on_a_worker_and_shows_that_it_is_busy(make_window, qtbot, answers):
    engine = SlowEngine()
    window = make_window(engine, size=WINDOW_SIZE)
    seen = {}

    def look():
        seen["busy"] = window.start_panel.is_busy
        seen["demo_enabled"] = window.start_panel.demo_button.isEnabled()
        seen["action_enabled"] = window.actions["open"].isEnabled()
        seen["bar"] = window.busy_bar.isVisible()
        seen["text"] = window.start_panel.busy_label.text()

    QTimer.singleShot(200, look)
    ok, gaps = beats_during(qtbot, lambda: actions.open_demo(window))
    assert ok and window.session.dataset is not None
    assert engine.read_in == [False]  # made on the worker thread
    assert len(gaps) > 20 and np.percentile(gaps, 99) < 200  # the event loop kept turning
    assert seen == {"busy": True, "demo_enabled": False, "action_enabled": False, "bar": True,
                    "text": "Opening the demo cohort…"}
    assert not window.start_panel.is_busy and not window.busy_bar.isVisible()
    assert window.actions["open"].isEnabled()
    assert QApplication.overrideCursor() is None
    window.session.shutdown()


def test_opening_a_project_reads_on_a_worker_and_reports_a_broken_file(make_window, qtbot, answers, tmp_path):
    engine = SlowEngine(seconds=0.3)
    window = make_window(engine, size=WINDOW_SIZE)
    actions.open_demo(window)
    train_to_end(qtbot, window)
    path = tmp_path / "study.h5"
    actions.save_project_as(window, str(path))
    engine.read_in.clear()
    ok, gaps = beats_during(qtbot, lambda: actions.open_project(window, str(path)))
    assert ok and engine.read_in == [False] and np.percentile(gaps, 99) < 200
    assert window.session.run.is_complete

    seen = []
    QTimer.singleShot(100, lambda: seen.append((window.training_panel.status_text(), window.busy_bar.isVisible(),
                                                window.training_panel.start_button.isEnabled())))
    assert actions.open_demo(window)  # from the workspace, where the start page is hidden
    assert seen == [("Opening the demo cohort…", True, False)]

    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5")
    shown = window.session.dataset
    assert not actions.open_project(window, str(bad))
    assert window.session.dataset is shown  # the open project stays
    assert "broken.h5" in window.error_dialogs[-1].message_label.text()
    assert window.start_panel.demo_button.isEnabled() and window.actions["open"].isEnabled()
    window.session.shutdown()


def test_closing_the_window_while_a_file_is_read_stops_cleanly(make_window, qtbot, answers):
    window = make_window(SlowEngine(seconds=0.5), size=WINDOW_SIZE)
    QTimer.singleShot(100, window.close)
    assert not actions.open_demo(window)  # the wait ends; the data that came too late are dropped
    assert not window.isVisible() and window.session.dataset is None and not window.session.is_loading
    assert QApplication.overrideCursor() is None


# ---------------------------------------------------------------- 5. grid sanity
def type_into(qtbot, spin, text):
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Tab)


def test_typing_200_stays_200_and_is_explained(window, qtbot):
    actions.open_demo(window)
    panel = window.training_panel
    rows = panel.binder.widget("grid.height")
    type_into(qtbot, rows, "200")
    assert rows.value() == 200 and panel.config().grid.height == 200  # never clamped silently
    hint = panel.grid_hint
    qtbot.wait(20)
    assert hint.isVisible() and "200 is more than 64" in hint.text()  # said next to the field
    assert panel.scroll.viewport().rect().contains(hint.geometry().translated(
        hint.parentWidget().mapTo(panel.scroll.viewport(), QPoint(0, 0))).center())
    assert not panel.start_button.isEnabled()
    type_into(qtbot, rows, "6")
    assert "more than" not in hint.text() and panel.start_button.isEnabled()


def test_a_map_larger_than_the_data_is_refused_before_start(window, qtbot):
    actions.open_demo(window)  # 12 patients, 97 time points
    panel = window.training_panel
    type_into(qtbot, panel.binder.widget("grid.height"), "12")
    type_into(qtbot, panel.binder.widget("grid.width"), "12")
    assert not panel.start_button.isEnabled()
    assert "144 nodes" in panel.grid_hint.text() and "97" in panel.grid_hint.text()
    assert panel.suggest_button.isVisible()
    panel.suggest_button.click()  # back to the size proposed for the data
    assert (panel.config().grid.height, panel.config().grid.width) == (4, 4)
    assert panel.start_button.isEnabled() and not panel.suggest_button.isVisible()
    assert "suggest 4x4" in panel.grid_hint.text()


def test_more_cells_than_the_data_can_fill_gets_a_warning_before_start(window, qtbot):
    actions.open_demo(window)
    panel = window.training_panel
    type_into(qtbot, panel.binder.widget("grid.height"), "9")
    type_into(qtbot, panel.binder.widget("grid.width"), "9")
    text = panel.grid_hint.text()
    assert "81 cells" in text and "12 patients" in text and "suggest 4x4" in text
    assert panel.start_button.isEnabled()  # a warning, not a refusal
    hint = panel.grid_hint.grab().toImage()
    colours = {hint.pixelColor(x, y).name() for x in range(hint.width()) for y in range(hint.height())}
    assert any(QColor(c).red() > 100 and QColor(c).blue() < 60 for c in colours)  # drawn in the warning colour


def test_the_limits_are_written_next_to_the_fields(window):
    assert "2 to 64" in window.training_panel.grid_hint.text()


# ------------------------------------------------------- 9. state after reopening
def test_a_reopened_trained_project_says_it_is_trained(window, qtbot, answers, tmp_path):
    actions.open_demo(window)
    train_to_end(qtbot, window)
    path = str(tmp_path / "done.h5")
    actions.save_project_as(window, path)
    window.actions["new"].trigger()
    assert window.training_panel.status_text() == "Not started"
    assert actions.open_project(window, path)
    panel = window.training_panel
    assert "Not started" not in panel.status_text() and "finished" in panel.status_text()
    assert panel.progress_bar.value() == 1000
    assert not window.isWindowModified()


def test_a_reopened_partly_trained_project_offers_resume(make_window, qtbot, answers, tmp_path):
    window = make_window(FakeEngine(delay=0.02, phases=(("pretrain", 20, 5),)), size=WINDOW_SIZE)
    actions.open_demo(window)
    window.training_panel.start_button.click()
    qtbot.waitUntil(lambda: len(window.session.history) >= 3, timeout=5000)
    with qtbot.waitSignal(window.session.training_cancelled, timeout=10000):
        window.training_panel.cancel_button.click()
    path = str(tmp_path / "half.h5")
    actions.save_project_as(window, path)
    window.actions["new"].trigger()
    assert actions.open_project(window, path)
    assert "Resume" in window.training_panel.status_text()
    assert window.training_panel.resume_button.isEnabled()
    window.session.shutdown()


def test_the_untouched_demo_closes_without_asking(window, qtbot, answers):
    actions.open_demo(window)
    assert not window.isWindowModified()
    assert window.close()
    assert "save" not in answers["asked"]


# --------------------------------------------------------- 6. buttons that stay put
def test_buttons_stay_put_when_the_status_line_wraps_or_a_problem_shows(window, qtbot):
    actions.open_demo(window)
    panel = window.training_panel
    window.docks["training"].resize(340, 700)
    qtbot.wait(20)

    def positions():
        QApplication.processEvents()
        return [b.mapTo(window, QPoint(0, 0)) for b in
                (panel.start_button, panel.pause_button, panel.resume_button, panel.cancel_button)]

    before = positions()
    panel.set_message("Training stopped. Press Resume (F5) to continue it. " * 3)
    assert positions() == before
    panel.set_estimate({"seconds": 4000, "memory_bytes": 2**31, "device": "a very long device name " * 3})
    assert positions() == before
    type_into(qtbot, panel.binder.widget("grid.height"), "200")
    assert "more than 64" in panel.grid_hint.text() and positions() == before
    panel.binder.widget("train.batch_size").setValue(1)
    panel.binder.widget("network.latent_dim").setValue(2)
    panel.binder.widget("weights.kl").setValue(0)
    assert positions() == before


def test_typing_grid_sizes_never_scrolls_the_panel_sideways(window, qtbot):
    actions.open_demo(window)
    panel = window.training_panel
    scroll = panel.findChild(QScrollArea)
    font = panel.font()  # the fonts of a desktop (wider than the test platform's) widen the form
    font.setPointSizeF(font.pointSizeF() * 1.3)
    panel.setFont(font)
    window.docks["training"].setFloating(True)
    window.docks["training"].resize(300, 600)
    qtbot.wait(20)
    type_into(qtbot, panel.binder.widget("grid.width"), "200")
    type_into(qtbot, panel.binder.widget("grid.height"), "150")
    for _ in range(12):  # on through the form with Tab, as a user does after typing
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    QApplication.processEvents()
    assert scroll.horizontalScrollBar().value() == 0
    assert scroll.widget().width() <= scroll.viewport().width()
    left = panel.binder.widget("grid.height").mapTo(scroll.viewport(), QPoint(0, 0)).x()
    assert left >= 0


def test_the_wheel_scrolls_the_settings_instead_of_changing_them(window, qtbot):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent

    actions.open_demo(window)
    panel = window.training_panel
    scroll = panel.findChild(QScrollArea)
    window.docks["training"].setFloating(True)
    window.docks["training"].resize(360, 420)
    qtbot.wait(20)
    field = panel.binder.widget("train.epochs_pretrain")
    scroll.ensureWidgetVisible(field)
    before, bar = field.value(), scroll.verticalScrollBar()
    position = bar.value()
    centre = QPointF(field.rect().center())
    wheel = QWheelEvent(centre, QPointF(field.mapToGlobal(field.rect().center())), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(field, wheel)
    assert field.value() == before and bar.value() > position


# --------------------------------------------------- 18. checkpoints from a snapshot
class GatedEngine(FakeEngine):
    """A checkpoint's model copy waits until the test has changed the GUI-side state."""

    def __init__(self, **options):
        super().__init__(**options)
        self.entered, self.release = threading.Event(), threading.Event()

    def make_run(self, dataset, config, preprocessing=None):
        run = super().make_run(dataset, config, preprocessing)
        original = run.to_project

        def gated():
            if threading.current_thread() is not threading.main_thread():
                self.entered.set()
                self.release.wait(5)
            return original()

        run.to_project = gated
        return run


def test_a_checkpoint_saves_the_annotations_of_when_it_was_asked_for(prefs, qtbot, tmp_path):
    from core.io.project_h5 import load_project
    from dpsom_gui.session import Session

    engine = GatedEngine(delay=0.01)
    session = Session(prefs, engine)
    try:
        session.load_dataset(make_series())
        session.start_training(session.config.replace(**{"grid.height": 3, "grid.width": 3}))
        qtbot.waitUntil(lambda: len(session.history) >= 2, timeout=5000)
        session.set_annotations(note="before")
        path = str(tmp_path / "mid.h5")
        with qtbot.waitSignal(session.dirty_changed, timeout=10000):  # saved: not dirty any more
            session.save_project(path)
            qtbot.waitUntil(engine.entered.is_set, timeout=5000)
            session.set_annotations(note="after", extra=[1, 2, 3])  # the GUI thread goes on changing them
            session.annotations["note"] = "changed in place"
            engine.release.set()
        assert load_project(path).annotations == {"note": "before"}
    finally:
        engine.release.set()
        session.shutdown(10000)


def test_annotations_and_history_change_freely_while_checkpoints_are_taken(prefs, qtbot, tmp_path):
    from dpsom_gui.session import Session

    session = Session(prefs, FakeEngine(delay=0.005, phases=(("pretrain", 40, 5),)))
    problems = []
    session.message.connect(lambda text: problems.append(text) if "failed" in text else None)
    try:
        session.load_dataset(make_series())
        session.start_training(session.config.replace(**{"grid.height": 3, "grid.width": 3}))
        for i in range(40):
            session.save_project(str(tmp_path / f"c{i % 3}.h5"))
            session.set_annotations(superclusters=list(range(i % 9)), names={str(j): j for j in range(i)})
            qtbot.wait(5)
        with qtbot.waitSignal(session.training_finished, timeout=20000):
            pass
        assert problems == []
    finally:
        session.shutdown(10000)


# ----------------------------------------------------------- states are an Enum
def test_training_states_are_an_enum_that_still_reads_as_names(session, qtbot):
    session.load_dataset(make_series())
    assert session.state is TrainingState.IDLE and session.state == "idle"
    states = []
    session.training_state_changed.connect(states.append)
    with qtbot.waitSignal(session.training_finished, timeout=10000):
        session.start_training()
    assert states[0] is TrainingState.RUNNING and states[-1] is TrainingState.IDLE
    assert {TrainingState.RUNNING: 1}.get("running") == 1


def test_grid_advice_follows_the_proposal_of_the_core(session):
    data = make_series()
    session.load_dataset(data)
    config = session.config
    proposal = session.engine.propose_config(data).grid
    assert session.grid_advice(config) == (
        "", f"These data ({data.n_samples} patients, {data.n_points} time points) suggest 4x4.", proposal)
    level, text, _ = session.grid_advice(config.replace(**{"grid.height": 6, "grid.width": 6}))
    assert level == "warning" and "36 cells" in text
    level, text, _ = session.grid_advice(config.replace(**{"grid.height": 20, "grid.width": 20}))
    assert level == "error" and "400 nodes" in text
