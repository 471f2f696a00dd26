"""Application start-up: arguments, logging that never holds patient values, crash hooks."""

import logging
import sys
import threading

import pytest
from gui_fakes import FakeEngine

from dpsom_gui import actions
from dpsom_gui import app as app_module
from dpsom_gui.app import XCB_LIBRARIES, display_problem, install_excepthooks, main, parse_args, setup_logging
from dpsom_gui.session import Session


def test_arguments():
    assert parse_args([]).file is None and not parse_args([]).demo
    args = parse_args(["study.h5", "--demo"])
    assert args.file == "study.h5" and args.demo


@pytest.fixture
def restore_hooks(monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)


@pytest.fixture
def log_file(tmp_path):
    path = setup_logging(tmp_path / "logs")
    yield path
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "baseFilename", None) == str(path):
            root.removeHandler(handler)
            handler.close()


def test_uncaught_errors_are_logged_without_their_message_and_reported(qtbot, restore_hooks, log_file):
    reported = []
    relay = install_excepthooks(reported.append)
    try:
        raise ValueError("heart rate 187.25 of patient P0042 is odd")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: len(reported) == 1, timeout=2000)
    assert isinstance(reported[0], ValueError)
    text = log_file.read_text()
    assert "uncaught error" in text and "ValueError" in text and "test_app.py" in text
    assert "187.25" not in text and "P0042" not in text
    del relay


def test_errors_in_other_threads_reach_the_gui_thread(qtbot, restore_hooks, log_file):
    where = []
    relay = install_excepthooks(lambda exc: where.append((str(exc), threading.current_thread() is threading.main_thread())))

    def boom():
        raise RuntimeError("from a thread")

    thread = threading.Thread(target=boom)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(where) == 1, timeout=2000)
    assert where == [("from a thread", True)]
    del relay


def test_logs_hold_events_and_shapes_never_patient_values(prefs, qtbot, tmp_path, log_file):
    good = tmp_path / "vitals.csv"
    good.write_text("patient,hour,hr\n" + "".join(f"P{p:04d},{h},{100 + p + h / 7:.5f}\n"
                                                  for p in range(3) for h in range(4)))
    bad = tmp_path / "bad.csv"
    bad.write_text("id,hr\n1,80\n2,SECRET-VALUE\n")
    session = Session(prefs, FakeEngine(fail_at=4))
    with qtbot.waitSignal(session.import_finished, timeout=10000):
        session.import_file(str(good), {"id_col": "patient", "time_col": "hour"})
    with qtbot.waitSignal(session.import_failed, timeout=10000) as failed:
        session.import_file(str(bad), {"format": "table", "features": ["hr"]})
    assert "SECRET-VALUE" in failed.args[0].message  # the user is told exactly what is wrong...
    with qtbot.waitSignal(session.training_failed, timeout=10000):
        session.start_training()
    session.save_project(str(tmp_path / "p.h5"))
    text = log_file.read_text()
    assert "import finished: shape (3, 4, 1)" in text and "training failed" in text
    assert "SECRET-VALUE" not in text  # ...but the log never repeats it
    for p in range(3):
        assert f"P{p:04d}" not in text
        assert f"{100 + p:.0f}." not in text


def test_main_starts_and_closes_cleanly(qtbot, tmp_path, restore_hooks, monkeypatch, log_file):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    monkeypatch.setattr(actions, "ask_save_changes", lambda window: "discard")
    settings = tmp_path / "prefs.ini"
    titles = []

    def close_soon():
        # main() deletes its window before it returns, so read it while it is open; before
        # the window, a splash screen shows while the training stack loads.
        shown = [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow" and w.isVisible()]
        if not shown:
            QTimer.singleShot(50, close_soon)
            return
        titles.extend(w.windowTitle() for w in shown)
        app.closeAllWindows()

    QTimer.singleShot(300, close_soon)
    style = app.style().name()
    try:
        assert main(["--settings", str(settings)]) == 0
    finally:
        app.setStyleSheet("")  # main() styles the whole process; later tests expect the default
        app.setStyle(style)
    assert titles and titles[0].startswith("Untitled project")
    assert not [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"]  # deleted, not left to exit
    assert settings.exists()
    assert (tmp_path / "logs" / "dpsom-studio.log").exists()


def test_engine_warm_up_runs_in_a_daemon_thread_and_logs(log_file):
    from dpsom_gui.app import start_warm_up

    class Engine:
        calls = 0

        def warm_up(self):
            Engine.calls += 1

    thread = start_warm_up(Engine())
    thread.join(10)
    assert thread.daemon and not thread.is_alive() and Engine.calls == 1
    assert "engine ready" in log_file.read_text()


def test_display_problem_names_what_is_missing_and_what_to_do():
    every_library = lambda name: True  # noqa: E731
    no_cursor = lambda name: name != "libxcb-cursor.so.0"  # noqa: E731
    line = display_problem({}, "linux", every_library)
    assert "DISPLAY and WAYLAND_DISPLAY are not set" in line and "xvfb-run" in line
    assert display_problem({"QT_QPA_PLATFORM": "xcb"}, "linux", every_library).startswith("no display")
    # A display is there, but the X11 plugin's libraries are not: name the package to install.
    line = display_problem({"DISPLAY": ":0"}, "linux", no_cursor)
    assert "libxcb-cursor.so.0" in line and "apt-get install libxcb-cursor0" in line
    assert "libxcb-icccm" not in line
    assert display_problem({"DISPLAY": ":0"}, "linux", every_library) is None
    # Wayland sessions and platforms the user chose need no X11 libraries.
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "linux", no_cursor) is None
    for chosen in ("offscreen", "vnc:size=800x600", "eglfs"):
        assert display_problem({"QT_QPA_PLATFORM": chosen}, "linux", no_cursor) is None
    assert display_problem({}, "win32", no_cursor) is None and display_problem({}, "darwin", no_cursor) is None


def test_the_library_check_really_loads_libraries():
    from dpsom_gui.app import _library_loads

    assert not _library_loads("libdpsom-no-such-library.so.7")
    if sys.platform.startswith("linux"):
        assert _library_loads("libc.so.6")
        assert set(XCB_LIBRARIES.values()) >= {"libxcb-cursor0", "libxcb1", "libxkbcommon-x11-0"}


def test_main_without_a_display_says_so_before_qt_starts(monkeypatch, capsys):
    def no_qt():
        raise AssertionError("Qt was started")

    monkeypatch.setattr(app_module, "_application", no_qt)
    monkeypatch.setattr(app_module, "run_smoke_test", lambda args: no_qt())
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)  # Qt already runs offscreen; only the check reads it
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for argv in (["--demo"], ["--smoke-test", "out.png"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("dpsom-studio: no display")
