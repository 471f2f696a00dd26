"""The window keeps answering while it loads: the training stack loads behind a splash screen
before the window shows, the training-time estimate and the variable summary are worked out
off the GUI thread, and the settings proposal is made once per data set."""

import threading
import time

import pytest
from gui_fakes import FakeEngine, FakeRun, make_series
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from dpsom_gui import main_window as main_window_module
from dpsom_gui.app import main
from dpsom_gui.engine import Engine


@pytest.fixture(autouse=True)
def no_questions(answers):
    """Closing windows never asks (the shared scripted answers: discard, stop)."""


class SlowEstimateRun(FakeRun):
    """A fake run whose estimate takes as long as a real probe of a few training steps."""

    threads: list = []
    spans: list = []

    def estimate(self, stop=None):
        SlowEstimateRun.threads.append(threading.current_thread())
        started = time.perf_counter()
        time.sleep(0.6)
        SlowEstimateRun.spans.append((started, time.perf_counter()))
        return {"seconds": 90.0, "memory_bytes": 2**20, "device": "cpu"}


class SlowEstimateEngine(FakeEngine):
    def make_run(self, dataset, config, preprocessing=None):
        return SlowEstimateRun(dataset, config, preprocessing)


def close(window):
    window.session.shutdown()
    window.estimator.wait()
    window.summariser.wait()
    window.session._set_dirty(False)
    window.close()


def beats_within(beats, spans):
    """How many heartbeats fired while one of ``spans`` (start, end) was under way."""
    return sum(1 for b in beats if any(start < b < end for start, end in spans))


def heartbeat():
    """A 10 ms GUI-thread timer and the list of times (s) at which it fired."""
    beats = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    timer.start()
    return timer, beats


def test_the_estimate_is_worked_out_off_the_gui_thread_and_says_so_meanwhile(qtbot, make_window):
    SlowEstimateRun.threads, SlowEstimateRun.spans = [], []
    window = make_window(SlowEstimateEngine(), size=(1280, 800))
    label = window.training_panel._estimate
    timer, beats = heartbeat()
    window.session.load_dataset(make_series(), changed=False)
    qtbot.waitUntil(lambda: "Estimating" in label.text(), timeout=5000)
    qtbot.waitUntil(lambda: "Estimated time" in label.text(), timeout=5000)
    timer.stop()
    assert "1 min 30 s" in label.text()
    assert SlowEstimateRun.threads and all(t is not threading.main_thread() for t in SlowEstimateRun.threads)
    # the event loop kept running while the probe ran (on the GUI thread, not one beat could)
    assert beats_within(beats, SlowEstimateRun.spans) >= 1
    close(window)


def test_an_estimate_for_settings_changed_meanwhile_is_not_shown(qtbot, make_window):
    window = make_window(SlowEstimateEngine(), size=(1280, 800))
    label = window.training_panel._estimate
    window.session.load_dataset(make_series(), changed=False)
    qtbot.waitUntil(lambda: "Estimating" in label.text(), timeout=5000)
    tag = ((window.session.dataset, window.training_panel.config().to_dict()))
    window._on_estimator_done((tag[0], {**tag[1], "seed": -1}), {"seconds": 1.0, "memory_bytes": 1})
    assert "Estimated time" not in label.text()  # the stale answer was dropped
    qtbot.waitUntil(lambda: "Estimated time" in label.text(), timeout=5000)
    close(window)


def test_closing_or_a_newer_request_stops_a_running_probe_instead_of_waiting_for_it(qtbot):
    from dpsom_gui.background import BackgroundCall

    call = BackgroundCall("probe")
    results, started = [], threading.Event()

    def probe(seconds=30.0):
        # a probe of training steps that asks between steps whether it is still wanted
        started.set()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if call.should_stop():
                return "stopped"
            time.sleep(0.01)
        return "finished"

    call.done.connect(lambda tag, result: results.append((tag, result)))
    call.request("old", probe)
    assert started.wait(5)
    call.request("new", lambda: probe(0.05))  # settings changed: the running probe is dropped
    qtbot.waitUntil(lambda: len(results) == 2, timeout=5000)
    assert results == [("old", "stopped"), ("new", "finished")]
    started.clear()
    call.request("last", probe)
    assert started.wait(5)
    begun = time.perf_counter()
    assert call.wait(10.0)  # the window closes
    assert time.perf_counter() - begun < 5.0 and not call.busy


def test_the_variable_summary_is_computed_off_the_gui_thread(qtbot, make_window, monkeypatch):
    where, spans = [], []
    real = main_window_module.summarise_variables

    def slow_summary(dataset, *args, **kwargs):
        where.append(threading.current_thread())
        started = time.perf_counter()
        time.sleep(1.0)
        spans.append((started, time.perf_counter()))
        return real(dataset, *args, **kwargs)

    monkeypatch.setattr(main_window_module, "summarise_variables", slow_summary)
    window = make_window(FakeEngine(), size=(1280, 800))
    timer, beats = heartbeat()
    window.session.load_dataset(make_series(), changed=False)
    assert spans == []  # the data are shown before their summary is ready
    model = window.data_view.summary_model
    qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=5000)
    timer.stop()
    assert where and where[0] is not threading.main_thread()
    assert beats_within(beats, spans) >= 1
    # the rendered Variables tab lists the variables
    window.data_view.tabs.setCurrentIndex(0)
    window.docks["data"].raise_()
    QApplication.processEvents()
    assert model.index(0, 0).data() in {v for v in window.session.dataset.feature_names}
    close(window)


class CountingEngine(FakeEngine):
    """Fake training, but the real settings proposal (whose calls are counted)."""

    propose_config = Engine.propose_config


def test_the_grid_advice_profiles_each_data_set_once(qtbot, make_window, monkeypatch):
    import core.workflow

    calls = []
    real = core.workflow.propose_settings

    def counted(dataset, *args, **kwargs):
        calls.append(id(dataset))
        return real(dataset, *args, **kwargs)

    monkeypatch.setattr(core.workflow, "propose_settings", counted)
    window = make_window(CountingEngine(), size=(1280, 800))
    window.session.load_dataset(make_series(), changed=False)
    first = len(calls)
    assert first >= 1
    height = window.training_panel.binder.widget("grid.height")
    for rows in (3, 5, 6, 4):  # a user trying map sizes
        height.setValue(rows)
        QApplication.processEvents()
    assert "suggest" in window.training_panel._advice[1]  # the advice was given each time
    assert len(calls) == first  # ... from the proposal made when the data arrived
    window.session.load_dataset(make_series(seed=3), changed=False)  # new data: proposed anew
    assert len(calls) == first + 1
    close(window)


def test_start_up_loads_the_training_stack_behind_a_splash_before_the_window(qtbot, tmp_path, monkeypatch):
    app = QApplication.instance()
    seen = []  # (message on the splash, whether a main window exists yet)

    def import_stack(self, report=None):
        for _, words in Engine.STACK:
            report(words)
            splash = next(w for w in app.topLevelWidgets() if w.objectName() == "splash")
            seen.append((splash.message(), splash.isVisible(),
                         any(type(w).__name__ == "MainWindow" and w.isVisible() for w in app.topLevelWidgets())))
        self._warm = True

    monkeypatch.setattr(Engine, "import_stack", import_stack)
    ready_at_window = []

    def close_when_shown():
        windows = [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow" and w.isVisible()]
        if not windows:
            QTimer.singleShot(50, close_when_shown)
            return
        ready_at_window.append(windows[0].session.engine.is_ready())
        app.closeAllWindows()

    QTimer.singleShot(0, close_when_shown)
    style = app.style().name()
    try:
        assert main(["--settings", str(tmp_path / "prefs.ini")]) == 0
    finally:
        app.setStyleSheet("")
        app.setStyle(style)
    assert [m for m, _, _ in seen] == [words for _, words in Engine.STACK]
    assert "PyTorch" in seen[0][0]
    assert all(visible and not window for _, visible, window in seen)  # before the window, on a splash
    assert ready_at_window == [True]
    assert not [w for w in app.topLevelWidgets() if w.objectName() == "splash" and w.isVisible()]
