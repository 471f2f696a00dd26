"""Redraw at most a few times a second, always with the latest data."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QTimer

__all__ = ["RedrawThrottle"]


class RedrawThrottle(QObject):
    """Coalesces redraw requests: :meth:`request` marks the view stale, and a timer at
    ``hz`` calls ``redraw`` once for all requests since the last frame.

    The timer only runs while something is stale, so an idle window costs nothing.
    """

    def __init__(self, redraw: Callable[[], None], hz: float = 15.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._redraw = redraw
        self._stale = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.set_rate(hz)

    def set_rate(self, hz: float) -> None:
        """Frames per second while data keeps arriving (1-60)."""
        self._timer.setInterval(int(1000 / max(1.0, min(60.0, float(hz)))))

    @property
    def interval_ms(self) -> int:
        return self._timer.interval()

    def request(self) -> None:
        """Mark the view stale; it will be redrawn on the next frame."""
        self._stale = True
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Redraw now if stale (tests and one-off updates use this)."""
        if self._stale:
            self._stale = False
            self._redraw()

    def stop(self) -> None:
        self._timer.stop()

    def _on_timer_timeout(self) -> None:
        if self._stale:
            self.flush()
        else:
            self._timer.stop()
