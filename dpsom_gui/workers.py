"""Background work: training and importing on their own QThread.

Each worker is a plain ``QObject`` that is moved to a ``QThread`` by :class:`WorkerThread`.
Only copies cross the thread boundary: training reports are frozen
:class:`core.progress.TrainProgress` records of floats and numpy copies, imports hand over
the finished :class:`core.data.Dataset`, and failures travel as frozen :class:`Failure`
records (message and traceback), never as live exceptions.

Thread lifetime follows one pattern everywhere (it survived hundreds of start/stop cycles
where shortcuts crashed): the worker's terminal signal quits the thread; the thread's own
``finished`` reaches a GUI-thread slot that waits for it, drops the references and only then
announces that the job is over (:attr:`WorkerThread.stopped`).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

__all__ = ["TrainingWorker", "ImportWorker", "WorkerThread", "Failure", "split_failure", "loggable_traceback",
           "DETAILS_SEPARATOR"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """What went wrong in a background task, in a form that can cross threads.

    Attributes
    ----------
    message : str
        For people: the exception's message, or a plain sentence naming its type.
    details : str
        The full traceback, shown behind a "details" button.
    kind : str
        The exception's class name (e.g. ``"InputError"``).
    """

    message: str
    details: str = ""
    kind: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> "Failure":
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = str(exc) or f"An unexpected problem occurred ({type(exc).__name__})."
        return cls(message, details, type(exc).__name__)

    def __str__(self) -> str:
        return self.message


class TrainingWorker(QObject):
    """Drives a training generator step by step, between steps obeying pause and cancel.

    Parameters
    ----------
    make_steps : callable
        Called once, in the worker thread, to create the iterator of
        :class:`~core.progress.TrainProgress` (e.g. ``lambda: run.iter_train(resume)``).
        Closing the iterator must stop training at a step boundary.
    emit_every : int
        Report progress at most every this many steps, and no more often than every
        ``min_interval`` seconds. A new phase, a prototype snapshot, a pause and the end of
        training are always reported at once.
    save : callable, optional
        ``save(path, extras)`` writes a checkpoint; called in the worker thread between two
        steps when :meth:`request_save` asked for one, so the model is never caught mid-step.
        ``extras`` is the immutable snapshot handed to :meth:`request_save`.
    after : callable, optional
        Called in the worker thread once training completed; its return value is kept in
        :attr:`result` before ``finished`` is emitted (e.g. assignments of every patient,
        so that the window does not compute them on the GUI thread). An error here counts
        as a failure.
    min_interval : float
        Shortest time in seconds between two ordinary reports.

    Signals
    -------
    progress(list)
        The :class:`~core.progress.TrainProgress` records since the previous report, oldest
        first (so loss curves keep every step while the window redraws less often).
    paused, resumed
        Training really stopped at, or continued from, a step boundary.
    saved(str), save_failed(object)
        A requested checkpoint was written (path), or could not be (a :class:`Failure`).
    cancelled, failed(object), finished
        Terminal: stopped on request, stopped by an error (a :class:`Failure`), or completed.
        Exactly one of them is emitted per :meth:`run`.
    """

    progress = Signal(object)
    paused = Signal()
    resumed = Signal()
    saved = Signal(str)
    save_failed = Signal(object)
    cancelled = Signal()
    failed = Signal(object)
    finished = Signal()

    def __init__(self, make_steps: Callable[[], Iterator], emit_every: int = 5,
                 save: Callable[[str, object], None] | None = None, after: Callable[[], object] | None = None,
                 min_interval: float = 0.05) -> None:
        super().__init__()
        self._min_interval = float(min_interval)
        self._last_emit = 0.0
        self.result = None
        self._after = after
        self._make_steps = make_steps
        self._emit_every = max(1, int(emit_every))
        self._save = save
        self._cancel = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._lock = threading.Lock()
        self._save_request: tuple[str, object] | None = None

    # ---------------------------------------------------- called from any thread
    def cancel(self) -> None:
        """Stop at the next step boundary (also wakes a paused worker)."""
        self._cancel.set()
        self._running.set()

    def pause(self) -> None:
        """Hold training at the next step boundary."""
        self._running.clear()

    def resume(self) -> None:
        """Continue a paused training."""
        self._running.set()

    def request_save(self, path: str, extras: object = None) -> None:
        """Ask for a checkpoint to ``path`` at the next step boundary.

        ``extras`` is passed on to ``save``: an immutable snapshot, taken by the caller, of
        whatever the checkpoint needs from the GUI thread (this worker never reads state
        that the GUI thread changes).
        """
        with self._lock:
            self._save_request = (path, extras)

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    # --------------------------------------------------------- worker thread
    @Slot()
    def run(self) -> None:
        """Train until the iterator ends, cancel is requested or an error happens."""
        steps = None
        pending: list = []
        last_phase = None
        completed = False
        try:
            steps = self._make_steps()
            for record in steps:
                pending.append(record)
                important = record.prototypes is not None or record.phase != last_phase
                last_phase = record.phase
                due = (len(pending) >= self._emit_every
                       and time.monotonic() - self._last_emit >= self._min_interval)
                if important or due:
                    self._flush(pending)
                self._maybe_save()
                time.sleep(0)  # hand the interpreter lock to the GUI thread between steps
                if self._cancel.is_set():
                    break
                if not self._running.is_set():
                    self._flush(pending)
                    self._hold()
                    if self._cancel.is_set():
                        break
            else:
                completed = True
            self._flush(pending)
            if not completed:
                _close(steps)
                log.info("training cancelled")
                self.cancelled.emit()
            else:
                if self._after is not None:
                    self.result = self._after()
                log.info("training finished")
                self.finished.emit()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, never raised in a thread
            _close(steps)
            log.error("training failed:\n%s", loggable_traceback(exc))
            self.failed.emit(Failure.from_exception(exc))

    def _flush(self, pending: list) -> None:
        if pending:
            self.progress.emit(list(pending))
            pending.clear()
            self._last_emit = time.monotonic()

    def _hold(self) -> None:
        log.info("training paused")
        self.paused.emit()
        while not self._running.wait(0.05):
            self._maybe_save()
        if not self._cancel.is_set():
            log.info("training resumed")
            self.resumed.emit()

    def _maybe_save(self) -> None:
        with self._lock:
            request, self._save_request = self._save_request, None
        if request is None or self._save is None:
            return
        path, extras = request
        try:
            self._save(path, extras)
        except Exception as exc:  # noqa: BLE001 - a failed autosave must not end training
            log.warning("checkpoint failed: %s", type(exc).__name__)
            self.save_failed.emit(Failure.from_exception(exc))
        else:
            self.saved.emit(path)


class _ImportCancelled(Exception):
    """Raised inside the reader's progress callback to stop a cancelled import."""


class ImportWorker(QObject):
    """Reads a data file (or a project, or the demo cohort) in the background.

    Parameters
    ----------
    read : callable
        Called once, in the worker thread, as ``read(report)`` where ``report(fraction)``
        moves the progress bar; returns what was read, e.g. the :class:`core.data.Dataset`
        of ``lambda report: read_data(path, progress=report, **options)``.

    Signals
    -------
    progress(float)
        Share of the file read, in [0, 1] (at most one report per percent).
    loaded(object)
        What ``read`` returned, emitted just before ``finished``.
    cancelled, failed(object), finished
        Terminal, as for :class:`TrainingWorker`. A cancelled import discards its result.
    """

    progress = Signal(float)
    loaded = Signal(object)
    cancelled = Signal()
    failed = Signal(object)
    finished = Signal()

    def __init__(self, read: Callable[[Callable[[float], None]], object]) -> None:
        super().__init__()
        self._read = read
        self._cancel = threading.Event()
        self._last = -1

    def cancel(self) -> None:
        """Stop at the reader's next progress report; the result is discarded."""
        self._cancel.set()

    def _report(self, fraction: float) -> None:
        if self._cancel.is_set():
            raise _ImportCancelled()  # unwinds the reader at its next progress report
        percent = int(max(0.0, min(1.0, float(fraction))) * 100)
        if percent != self._last:
            self._last = percent
            self.progress.emit(percent / 100)

    @Slot()
    def run(self) -> None:
        started = time.perf_counter()
        try:
            dataset = self._read(self._report)
        except _ImportCancelled:
            self.cancelled.emit()
            return
        except Exception as exc:  # noqa: BLE001
            if self._cancel.is_set():
                self.cancelled.emit()
                return
            log.error("import failed:\n%s", loggable_traceback(exc))
            self.failed.emit(Failure.from_exception(exc))
            return
        if self._cancel.is_set():
            self.cancelled.emit()
            return
        shape = getattr(getattr(dataset, "values", None), "shape", None)
        if shape is not None:
            log.info("import finished: shape %s in %.1f s", shape, time.perf_counter() - started)
        else:
            log.info("reading finished in %.1f s", time.perf_counter() - started)
        self.loaded.emit(dataset)
        self.finished.emit()


class WorkerThread(QObject):
    """Runs one worker on its own ``QThread`` and says when the thread has really ended.

    Parameters
    ----------
    worker : QObject
        A worker with a ``run`` slot, a ``cancel()`` method and the terminal signals
        ``finished``, ``cancelled`` and ``failed``.

    Signals
    -------
    stopped
        Emitted in the GUI thread once the thread has ended and been waited for; the
        worker and thread references are already dropped.
    """

    stopped = Signal()

    def __init__(self, worker: QObject, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self._thread: QThread | None = QThread()
        self._thread.setObjectName(type(worker).__name__)
        worker.moveToThread(self._thread)
        self._thread.started.connect(worker.run)
        for signal in (worker.finished, worker.cancelled, worker.failed):
            signal.connect(self._thread.quit)
        self._thread.finished.connect(self._on_thread_finished)

    def start(self) -> None:
        self._thread.start()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def stop(self, timeout_ms: int = 30000) -> bool:
        """Cancel the worker, end the thread and wait for it (bounded). True if it ended."""
        if self._thread is None:
            return True
        self.worker.cancel()
        self._thread.quit()
        ended = self._thread.wait(timeout_ms)
        if ended:
            self._on_thread_finished()
        else:
            log.warning("background task did not stop within %d ms", timeout_ms)
        return ended

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self._thread
        if thread is None:  # already cleaned up by stop()
            return
        thread.wait()
        thread.finished.disconnect(self._on_thread_finished)
        self._thread = None
        self.worker = None
        self.stopped.emit()


def _close(steps) -> None:
    close = getattr(steps, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - closing a broken generator must not mask the first error
            log.warning("closing the training generator failed", exc_info=False)


#: Separates the plain message from the traceback in failure texts of tasks that report
#: them as one string (see :func:`split_failure`).
DETAILS_SEPARATOR = "\n\n--- Technical details ---\n"


def split_failure(failure: "Failure | str") -> tuple[str, str]:
    """(plain message, technical details) of a :class:`Failure`, or of a text made of the
    message, :data:`DETAILS_SEPARATOR` and the traceback."""
    if isinstance(failure, Failure):
        return failure.message.strip(), failure.details
    message, _, details = str(failure).partition(DETAILS_SEPARATOR)
    return message.strip(), details


def loggable_traceback(exc: BaseException) -> str:
    """Where ``exc`` happened (files, lines, functions) and its type: neither its message nor
    the source lines, which may quote patient values."""
    frames = "".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
                     for f in traceback.extract_tb(exc.__traceback__))
    return f"{frames}{type(exc).__module__}.{type(exc).__qualname__}"
