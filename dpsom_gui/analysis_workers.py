"""Background analyses of a trained run (quality figures, stability across seeds, forecasts).

:class:`AnalysisWorker` runs one task on its own thread through
:class:`dpsom_gui.workers.WorkerThread`, like training and importing: only the task's
result and small progress tuples cross the thread boundary, and the task stops at its next
progress report once cancelled.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from .workers import Failure, loggable_traceback

__all__ = ["AnalysisWorker", "stability_task", "metrics_task", "ForecastRequest", "ForecastFrame",
           "compute_forecast", "forecast_task", "FORECAST_LOCK"]

log = logging.getLogger(__name__)


class AnalysisWorker(QObject):
    """Runs ``task(report)`` in the worker thread.

    Parameters
    ----------
    task : callable
        ``task(report) -> result``. It calls ``report(value)`` now and then with a small
        progress value; ``report`` returns False once the analysis was cancelled, and the
        task should then stop as soon as it can.
    min_interval : float
        Shortest time in seconds between two ``progress`` signals.

    Signals
    -------
    progress(object)
        The latest progress value given to ``report``.
    result(object)
        The task's return value, emitted just before ``finished``.
    cancelled, failed(object), finished
        Terminal; exactly one per run. ``failed`` carries a frozen
        :class:`~dpsom_gui.workers.Failure` (message, traceback, exception type), never the
        live exception.
    """

    progress = Signal(object)
    result = Signal(object)
    cancelled = Signal()
    failed = Signal(object)
    finished = Signal()

    def __init__(self, task: Callable, min_interval: float = 0.1) -> None:
        super().__init__()
        self._task = task
        self._cancel = threading.Event()
        self._min_interval = float(min_interval)
        self._last = 0.0

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def _report(self, value) -> bool:
        now = time.monotonic()
        if now - self._last >= self._min_interval:
            self._last = now
            self.progress.emit(value)
        time.sleep(0)  # let the GUI thread have the interpreter lock
        return not self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        try:
            value = self._task(self._report)
        except Exception as exc:  # noqa: BLE001 - reported, never raised in a thread
            if self._cancel.is_set():
                self.cancelled.emit()
                return
            log.error("analysis failed:\n%s", loggable_traceback(exc))
            self.failed.emit(Failure.from_exception(exc))
            return
        if self._cancel.is_set():
            self.cancelled.emit()
            return
        self.result.emit(value)
        self.finished.emit()


def stability_task(run, seeds, label: str | None = None) -> Callable:
    """A task training ``run``'s settings afresh with each seed (``ModelRun.stability``).

    Progress values are ``(seed_index, n_seeds, step, total_steps)``.
    """
    seeds = [int(s) for s in seeds]

    def task(report):
        def callback(index, progress):
            return report((index, len(seeds), int(getattr(progress, "step", 0)),
                           int(getattr(progress, "total_steps", 0) or 0)))

        return run.stability(seeds, label=label or None, callback=callback)

    return task


def metrics_task(explorer, label: str) -> Callable:
    """A task computing :meth:`dpsom_gui.map_explorer.MapExplorer.metrics` for ``label``."""

    def task(report):
        report(("metrics", label))
        return explorer.metrics(label)

    return task


# ------------------------------------------------------------------ forecasts
#: Serialises forecasts of one explorer between the GUI thread (GIF export) and workers.
FORECAST_LOCK = threading.Lock()


@dataclass(frozen=True)
class ForecastRequest:
    """Which forecast the journeys view wants: patients, from which step, how far, how many samples."""

    patients: tuple
    step: int
    n_steps: int
    n_samples: int


@dataclass(frozen=True)
class ForecastFrame:
    """A computed forecast and the band of the first patient's sampled futures.

    ``data`` is a :class:`~dpsom_gui.map_explorer.ForecastData` (None when the run cannot
    forecast). ``band_lower`` and ``band_upper`` are ``(D, H + 1)`` in clinical units, from
    the last measured value to the 10th and 90th percentiles of the samples (None without
    samples).
    """

    request: ForecastRequest
    data: object
    band_lower: np.ndarray | None = None
    band_upper: np.ndarray | None = None


def compute_forecast(source, request: ForecastRequest) -> ForecastFrame:
    """The forecast ``request`` asks of ``source`` (a :class:`~dpsom_gui.map_explorer.MapExplorer`),
    with its bands (``core.analysis.cohort_stats.forecast_band``)."""
    from core.analysis.cohort_stats import forecast_band

    with FORECAST_LOCK:
        fc = source.forecast(list(request.patients), request.step, n_steps=request.n_steps,
                             n_samples=request.n_samples)
    if fc is None or fc.sample_features is None or not request.patients:
        return ForecastFrame(request, fc)
    ds = source.dataset
    p = int(request.patients[0])
    last_step = max(0, min(int(fc.start[0]) - 1, int(ds.lengths[p]) - 1))
    lower, upper = [], []
    for j in range(fc.sample_features.shape[-1]):
        seen = np.flatnonzero(ds.mask[p, : last_step + 1, j])
        last = float(ds.values[p, seen[-1], j]) if seen.size else np.nan
        lo, hi = forecast_band(last, fc.sample_features[0, :, :, j])
        lower.append(lo)
        upper.append(hi)
    return ForecastFrame(request, fc, np.asarray(lower), np.asarray(upper))


def forecast_task(source, request: ForecastRequest) -> Callable:
    """A task for :class:`AnalysisWorker` computing :func:`compute_forecast`."""

    def task(report):
        return compute_forecast(source, request)

    return task
