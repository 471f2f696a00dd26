"""Short computations for the window done off the GUI thread, newest request first.

The training-time estimate (a probe of a few training steps: 0.2 to 10 s on a CPU) and the
per-variable summary of a new data set are asked for again whenever the settings or the
data change. :class:`BackgroundCall` runs one such call at a time in a daemon thread and
hands its result to a GUI-thread slot; a request made while one runs replaces any request
still waiting and asks the running call to stop (:meth:`BackgroundCall.should_stop`), so a
user typing a grid size causes at most one extra computation, and closing the window does not
wait for a probe whose answer nobody will read.

Its priority is not lowered: a thread that holds the interpreter lock while the system
keeps it waiting for a core would stall the GUI thread behind it. A plain Python thread,
not a ``QThread``: nothing here has to stop when the window closes
(the result is then dropped), and a running ``QThread`` that loses its last reference aborts
the process.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from PySide6.QtCore import QObject, Signal

__all__ = ["BackgroundCall"]

log = logging.getLogger(__name__)


class BackgroundCall(QObject):
    """One function at a time on a worker thread; results arrive through :attr:`done`.

    Parameters
    ----------
    name : str
        The thread's name (shown in logs and debuggers).
    parent : QObject, optional

    Signals
    -------
    done(object, object)
        ``(tag, result)`` in the GUI thread; ``result`` is None when the call raised
        (the error type is logged, never its message, which may quote data).
    """

    done = Signal(object, object)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._name = name
        self._lock = threading.Lock()
        self._pending: tuple[object, Callable[[], object]] | None = None
        self._thread: threading.Thread | None = None
        # Set when the running call is no longer wanted (a newer request, or closing); a call
        # that can stop early polls it through should_stop.
        self._superseded = threading.Event()

    def should_stop(self) -> bool:
        """True once the running call's result is no longer wanted; for calls that can end early."""
        return self._superseded.is_set()

    @property
    def busy(self) -> bool:
        """A call is running or waiting."""
        with self._lock:
            return self._thread is not None

    def request(self, tag: object, call: Callable[[], object]) -> None:
        """Run ``call()`` in the background and emit ``done(tag, result)``; replaces a request
        that has not started yet."""
        with self._lock:
            self._pending = (tag, call)
            if self._thread is not None:
                self._superseded.set()
                return  # the running thread picks the new request up when it is done
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Drop waiting requests, ask the running call to stop, and wait (bounded) for it; True
        if none runs."""
        with self._lock:
            self._pending = None
            thread = self._thread
            self._superseded.set()
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def _work(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._thread = None
                    return
                self._superseded.clear()
            tag, call = job
            try:
                result = call()
            except Exception as exc:  # noqa: BLE001 - a courtesy computation: never fatal
                log.warning("%s failed: %s", self._name, type(exc).__name__)
                result = None
            try:
                self.done.emit(tag, result)
            except RuntimeError:  # the receiver (and this object) was deleted meanwhile
                with self._lock:
                    self._thread = None
                return
