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
