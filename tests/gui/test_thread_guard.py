"""The guard behind the autouse fixture really sees threads left running."""

import threading

from PySide6.QtCore import QThread
from thread_guard import ThreadGuard


def test_guard_sees_a_running_qthread_until_it_ends(qapp):
    before = QThread.start
    guard = ThreadGuard()
    guard.install()
    assert QThread.start is not before
    thread = QThread()
    thread.setObjectName("left-behind")
    try:
        thread.start()
        assert [t.objectName() for t in guard.running_qthreads()] == ["left-behind"]
    finally:
        thread.quit()
        thread.wait(5000)
        guard.uninstall()
    assert guard.running_qthreads() == []
    assert QThread.start is before  # uninstall puts back what was there


def test_guard_sees_a_new_python_thread_until_it_ends():
    guard = ThreadGuard()
    guard.install()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="lingering")
    thread.start()
    try:
        assert [t.name for t in guard.new_python_threads(grace=0.05)] == ["lingering"]
    finally:
        stop.set()
        thread.join()
        guard.uninstall()
    assert guard.new_python_threads(grace=0.05) == []
