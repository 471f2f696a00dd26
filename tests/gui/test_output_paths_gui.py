"""The app's save and export refuse what ``dpsom`` refuses: an export onto the open project or
the data file, and a project that another process is training (training it here too)."""

import hashlib
import os
import subprocess
import sys
import time

import pytest
from part2_fakes import ExploreEngine

from core.io.outputs import lock_path
from dpsom_gui import actions


@pytest.fixture
def window(make_window):
    return make_window(ExploreEngine(), size=(1000, 700), log_path=None)


@pytest.fixture
def trained(window, qtbot, tmp_path):
    assert actions.open_demo(window)
    with qtbot.waitSignal(window.session.training_finished, timeout=20000):
        window.actions["start"].trigger()
    assert actions.save_project_as(window, str(tmp_path / "p.h5"))
    return window


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def error_text(window) -> str:
    dialog = window.error_dialogs[-1]
    from PySide6.QtWidgets import QLabel

    return " ".join(label.text() for label in dialog.findChildren(QLabel))


def test_exporting_onto_the_open_project_is_refused_with_the_commands_message(trained, tmp_path, qtbot):
    w = trained
    project = tmp_path / "p.h5"
    before = digest(project)
    assert not actions.export_assignments(w, str(project))
    text = error_text(w)
    assert "could not be saved" in text and "the open project" in text and "destroy the input" in text
    assert digest(project) == before
    dialog = w.error_dialogs[-1]
    qtbot.waitExposed(dialog)
    image = dialog.grab().toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 3  # the message was drawn, not an empty window
    # A symbolic link to the project is the project too; another name is fine.
    link = tmp_path / "link.csv"
    link.symlink_to(project)
    assert not actions.export_node_summary(w, str(link))
    assert digest(project) == before
    assert actions.export_assignments(w, str(tmp_path / "a.csv"))


@pytest.fixture
def held_lock(tmp_path):
    """Another process holding the training lock of tmp_path/other.h5."""
    project = tmp_path / "other.h5"
    code = ("import sys, time\nfrom core.io.outputs import ProjectLock\n"
            f"ProjectLock({str(project)!r}).acquire()\nprint('held', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert proc.stdout.readline().strip() == "held"
    yield project, proc.pid
    proc.kill()
    proc.wait()


def test_saving_over_a_project_another_process_trains_is_refused(trained, held_lock):
    w = trained
    project, pid = held_lock
    assert not actions.save_project_as(w, str(project))
    text = error_text(w)
    assert "not saved" in text and f"process {pid}" in text and str(project) in text
    assert not project.exists()


def test_training_a_project_another_process_trains_is_refused(window, qtbot, held_lock, tmp_path):
    w = window
    project, pid = held_lock
    assert actions.open_demo(w)
    w.session.path = str(project)  # as if saved there before the other process began training it
    assert not actions.start_or_resume(w)
    assert f"process {pid}" in error_text(w) and w.session.state == "idle"


def test_the_session_holds_the_lock_while_it_trains(window, qtbot, tmp_path):
    w = window
    assert actions.open_demo(w)
    path = tmp_path / "mine.h5"
    assert actions.save_project_as(w, str(path))
    with qtbot.waitSignal(w.session.training_finished, timeout=20000):
        w.actions["start"].trigger()
        assert lock_path(path).read_text().strip() == str(os.getpid())
        res = subprocess.run([sys.executable, "-m", "core.cli", "resume", str(path), "--quiet"],
                             capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert res.returncode == 2 and f"process {os.getpid()}" in res.stderr
    deadline = time.monotonic() + 5
    while lock_path(path).exists() and time.monotonic() < deadline:
        qtbot.wait(20)
    assert not lock_path(path).exists()


def test_autosave_of_a_new_training_keeps_the_saved_project_until_the_user_saves(prefs, qtbot, tmp_path):
    from gui_fakes import FakeEngine, make_series

    from core.io.outputs import unfinished_path
    from core.io.project_h5 import load_project
    from dpsom_gui.session import Session

    # 25 steps of 0.1 s: the saves below must all land while the run is still going
    session = Session(prefs, FakeEngine(delay=0.1))
    try:
        session.load_dataset(make_series())
        path = tmp_path / "saved.h5"
        session.save_project(str(path))
        before = digest(path)
        session.start_training()  # a new model over the saved project
        qtbot.waitUntil(lambda: len(session.history) >= 2, timeout=5000)
        with qtbot.waitSignal(session.message, timeout=5000) as blocker:
            session._on_autosave_timeout()
        side = unfinished_path(path)
        assert blocker.args[0] == f"Autosaved to {side}"
        assert digest(path) == before and int(load_project(side).model_state["done_steps"]) >= 2
        assert session.path == str(path)
        with qtbot.waitSignal(session.message, timeout=5000, check_params_cb=lambda text: text.startswith("Saved ")):
            session.save_project()  # the user saves: the run goes into the project, the side file goes
        assert digest(path) != before and not side.exists()
        with qtbot.waitSignal(session.message, timeout=5000, check_params_cb=lambda text: text.startswith("Saved ")):
            session._on_autosave_timeout()  # from now on autosaves go to the project itself
        assert not side.exists()
        with qtbot.waitSignal(session.training_cancelled, timeout=10000):
            session.cancel_training()
    finally:
        session.shutdown()
