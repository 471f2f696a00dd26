"""Finding threads a test forgot to stop (used by the autouse fixture in conftest.py)."""

from __future__ import annotations

import threading
import time
import weakref

from PySide6.QtCore import QThread


class ThreadGuard:
    """Records every ``QThread`` started while active, and the Python threads alive before.

    Use :meth:`install` / :meth:`uninstall` around a test, then :meth:`running_qthreads` and
    :meth:`new_python_threads` to find what is still running.
    """

    def __init__(self) -> None:
        self._started: list[weakref.ref] = []
        self._before: set[threading.Thread] = set()
        self._original = None

    def install(self) -> None:
        self._before = set(threading.enumerate())
        self._original = original = QThread.start
        started = self._started

        def recording_start(thread, *args):
            started.append(weakref.ref(thread))
            return original(thread, *args)

        QThread.start = recording_start

    def uninstall(self) -> None:
        if self._original is not None:
            QThread.start = self._original
            self._original = None

    def running_qthreads(self) -> list[QThread]:
        return [t for t in (ref() for ref in self._started) if t is not None and t.isRunning()]

    def new_python_threads(self, grace: float = 2.0) -> list[threading.Thread]:
        """Non-daemon Python threads started since :meth:`install` that are still alive
        after waiting up to ``grace`` seconds for them to end."""
        deadline = time.monotonic() + grace
        while True:
            extra = [t for t in threading.enumerate()
                     if t not in self._before and t.is_alive() and not t.daemon
                     and not isinstance(t, threading._DummyThread)]
            if not extra or time.monotonic() >= deadline:
                return extra
            time.sleep(0.02)
