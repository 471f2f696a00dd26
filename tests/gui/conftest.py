"""Fixtures for the desktop application's tests: private preferences, small fake data,
fake training runs, and a guard that fails any test leaving a thread running."""

from __future__ import annotations

import pytest
from gui_fakes import FakeEngine, make_series, make_table
from thread_guard import ThreadGuard


# ---------------------------------------------------------------- thread guard
@pytest.fixture(autouse=True)
def _no_dangling_threads():
    """Fail a test that leaves a QThread or a Python thread running after it ends."""
    guard = ThreadGuard()
    guard.install()
    try:
        yield
    finally:
        guard.uninstall()
    running = guard.running_qthreads()
    for thread in running:  # clean up so one failure does not cascade into the next tests
        thread.quit()
        thread.wait(5000)
    if running:
        pytest.fail(f"test left {len(running)} QThread(s) running: "
                    + ", ".join(t.objectName() or "unnamed" for t in running))
    extra = guard.new_python_threads()
    if extra:
        pytest.fail("test left Python threads running: " + ", ".join(t.name for t in extra))


# ------------------------------------------------------------------ settings
@pytest.fixture
def prefs(tmp_path):
    """Preferences in a temporary ini file, never the user's own."""
    from dpsom_gui.settings import Preferences

    return Preferences.open(tmp_path / "prefs.ini")


# ------------------------------------------------------------------- fixtures
@pytest.fixture
def table():
    return make_table()


@pytest.fixture
def series():
    return make_series()


@pytest.fixture
def fake_engine():
    return FakeEngine()


@pytest.fixture
def session(prefs, fake_engine, qtbot):
    from dpsom_gui.session import Session

    s = Session(prefs, fake_engine)
    yield s
    s.shutdown(10000)


@pytest.fixture
def qtbot(qtbot):
    """pytest-qt's qtbot whose ``addWidget`` also keeps the widget alive until the test ends.

    qtbot itself only keeps weak references. A widget that sits in a reference cycle (an
    exception traceback is enough) is then freed by Python's cycle collector at an arbitrary
    moment, possibly while Qt is painting it, which crashes the process.
    """
    held = []
    add_widget = qtbot.addWidget

    def keep(widget, **kwargs):
        held.append(widget)
        return add_widget(widget, **kwargs)

    qtbot.addWidget = keep
    yield qtbot
    held.clear()


# ------------------------------------------------------------------- main windows
LOG_PATH = "/tmp/dpsom-studio.log"  # only shown in messages; no test writes it


@pytest.fixture
def answers(monkeypatch):
    """Scripted answers to the window's questions, so no modal box ever opens.

    Tests change the values to steer the window; ``asked`` records which questions were put.
    """
    from dpsom_gui import actions

    given = {"stop": True, "save": "discard", "open": None, "save_path": None, "replace": "keep", "asked": []}

    def answer(name):
        def ask(window, *args):
            given["asked"].append(name)
            return given[name]
        return ask

    monkeypatch.setattr(actions, "ask_stop_training", answer("stop"))
    monkeypatch.setattr(actions, "ask_save_changes", answer("save"))
    monkeypatch.setattr(actions, "ask_open_path", answer("open"))
    monkeypatch.setattr(actions, "ask_save_path", answer("save_path"))
    monkeypatch.setattr(actions, "ask_replace_model", answer("replace"))
    return given


@pytest.fixture
def make_window(qtbot, prefs, answers):
    """Build shown main windows that answer through ``answers``; all are shut down afterwards.

    ``make_window(engine=None, prefs=None, size=None, log_path=LOG_PATH)``: a fake engine and
    this test's preferences unless given; ``size`` is ``(width, height)``.
    """
    from dpsom_gui.app import create_window

    made = []

    def make(engine=None, prefs=prefs, size=None, log_path=LOG_PATH):
        window = create_window(prefs, engine or FakeEngine(), log_path=log_path)
        qtbot.addWidget(window)
        if size is not None:
            window.resize(*size)
        window.show()
        made.append(window)
        return window

    yield make
    for window in made:
        window.session.shutdown()


# ------------------------------------------------------------------- exploring
@pytest.fixture
def explorer():
    """A fake trained run behind a real map explorer."""
    from part2_fakes import make_explorer

    return make_explorer()
