"""Loss curves of every named loss term, phase by phase, while the model trains."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ._throttle import RedrawThrottle
from .signed_log import SignedLogAxis, linear_width, signed_log

__all__ = ["LossView", "TERM_TITLES", "PHASE_SHORT"]

#: Short name and plain explanation of each loss term (legend text and its tooltip).
TERM_TITLES = {
    "total": ("total", "The sum of all weighted terms: what training makes smaller."),
    "elbo": ("reconstruction", "How well the model can rebuild the measured values from its summary."),
    "cah": ("clustering", "How clearly each point belongs to one cell of the map."),
    "som": ("map order", "Whether neighbouring cells of the map stay similar to each other."),
    "smooth": ("smoothness", "Whether patients move to nearby cells from one time step to the next."),
    "pred": ("forecast", "How well the next health state is predicted."),
    "pred_step": ("forecast per step", "The forecast term of a single time step, before weighting."),
    "init": ("map start-up", "Placing the cells of the map before joint training."),
}

#: Short labels of the phase markers.
PHASE_SHORT = {"pretrain": "pretraining", "som_init": "map layout", "joint": "joint training",
               "prediction": "forecaster"}

_PALETTE = ["#263238", "#2e7d6b", "#3b6ea5", "#c08a1e", "#8e5ea2", "#b3473a", "#5a8f29", "#6d4c41"]


class _Buffer:
    """Growable x/y arrays (capacity doubles, so appends stay cheap)."""

    def __init__(self) -> None:
        self.x = np.empty(64)
        self.y = np.empty(64)
        self.n = 0

    def extend(self, xs: list[float], ys: list[float]) -> None:
        need = self.n + len(xs)
        if need > self.x.size:
            size = self.x.size
            while size < need:
                size *= 2
            self.x = np.resize(self.x, size)
            self.y = np.resize(self.y, size)
        self.x[self.n:need] = xs
        self.y[self.n:need] = ys
        self.n = need


class LossView(QWidget):
    """Plots each loss term against the training step, one curve per term and phase.

    Curves are created once and only their data change; they use downsampling and
    clip-to-view so hundreds of thousands of steps stay smooth. Phase starts are marked
    with a labelled vertical line. The logarithmic scale is a signed one
    (:mod:`.signed_log`): terms that turn negative, such as a Gaussian likelihood once the
    model fits well, stay on the plot.

    Signals
    -------
    log_scale_changed(bool)
        The user switched the logarithmic scale on or off (the window remembers it).
    """

    log_scale_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None, hz: float = 15.0, log_scale: bool = True) -> None:
        super().__init__(parent)
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        self._curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._colors: dict[str, str] = {}
        self._phase_lines: dict[str, pg.InfiniteLine] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._last_step = 0
        self._width: float | None = None  # linear band of the signed log scale in use

        self._log_box = QCheckBox("Logarithmic scale")
        self._log_box.setToolTip("Show the losses on a logarithmic scale, so both large early values "
                                 "and small late changes are visible. Terms that turn negative (a "
                                 "likelihood can) are drawn below zero, where the scale mirrors itself.")
        self._log_box.setChecked(log_scale)
        self._log_box.toggled.connect(self._on_log_box_toggled)
        help_label = QLabel("Lower is better. Curves that flatten mean the phase has learnt what it can.")
        help_label.setProperty("role", "hint")
        help_label.setWordWrap(True)

        self._axis = SignedLogAxis("left")
        self._plot = pg.PlotWidget(background="w", axisItems={"left": self._axis})
        item = self._plot.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("bottom", "training step")
        item.setLabel("left", "loss")
        item.setMenuEnabled(False)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen("#90a4ae"))
            item.getAxis(axis).setTextPen(pg.mkPen("#37474f"))
        # Long runs stay smooth: draw only the visible range, at most a few points per pixel.
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        self._term_boxes: dict[str, QCheckBox] = {}
        self._legend = QHBoxLayout()
        self._legend.setSpacing(12)
        self._legend.addStretch(1)

        top = QHBoxLayout()
        top.addWidget(help_label, 1)
        top.addWidget(self._log_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self._plot, 1)
        layout.addLayout(self._legend)
        self.setMinimumSize(320, 220)
        self._throttle = RedrawThrottle(self._redraw, hz, self)

    # ------------------------------------------------------------------ input
    def append(self, records) -> None:
        """Add progress records (:class:`core.progress.TrainProgress`, oldest first)."""
        grouped: dict[tuple[str, str], tuple[list, list]] = {}
        for record in records:
            if record.phase not in self._phase_lines:
                self._add_phase_line(record.phase, record.step)
            for term, value in record.losses.items():
                xs, ys = grouped.setdefault((record.phase, term), ([], []))
                xs.append(float(record.step))
                ys.append(float(value))
            self._last_step = max(self._last_step, int(record.step))
        for key, (xs, ys) in grouped.items():
            if key not in self._buffers:
                self._add_curve(*key)
            self._buffers[key].extend(xs, ys)
            self._dirty.add(key)
        if grouped:
            self._throttle.request()

    def clear(self) -> None:
        """Forget all curves (a new training from scratch)."""
        item = self._plot.getPlotItem()
        for curve in self._curves.values():
            item.removeItem(curve)
        for line in self._phase_lines.values():
            item.removeItem(line)
        for box in self._term_boxes.values():
            self._legend.removeWidget(box)
            box.deleteLater()
        self._term_boxes.clear()
        self._buffers.clear()
        self._curves.clear()
        self._phase_lines.clear()
        self._colors.clear()
        self._dirty.clear()
        self._last_step = 0

    def set_log_scale(self, on: bool) -> None:
        self._log_box.setChecked(bool(on))

    def set_refresh_rate(self, hz: float) -> None:
        self._throttle.set_rate(hz)

    def flush(self) -> None:
        """Draw pending changes now instead of on the next frame."""
        self._throttle.flush()

    # ----------------------------------------------------------------- output
    @property
    def log_scale(self) -> bool:
        return self._log_box.isChecked()

    def curve_keys(self) -> list[tuple[str, str]]:
        """(phase, term) of every curve, in order of appearance."""
        return list(self._curves)

    def curve_data(self, phase: str, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Steps and values recorded for one curve."""
        b = self._buffers[(phase, term)]
        return b.x[: b.n].copy(), b.y[: b.n].copy()

    def plot_item(self) -> pg.PlotItem:
        return self._plot.getPlotItem()

    # ---------------------------------------------------------------- drawing
    def term_visible(self, term: str) -> bool:
        return self._term_boxes[term].isChecked()

    def set_term_visible(self, term: str, visible: bool) -> None:
        self._term_boxes[term].setChecked(visible)

    def _add_term(self, term: str) -> None:
        color = _PALETTE[len(self._colors) % len(_PALETTE)]
        self._colors[term] = color
        name, tip = TERM_TITLES.get(term, (term, f"The loss term {term!r}."))
        box = QCheckBox(name)
        box.setChecked(True)
        box.setToolTip(tip + " Untick to hide this curve.")
        box.setStyleSheet(f"QCheckBox {{ color: {color}; font-weight: 600; }}")
        box.toggled.connect(lambda on, t=term: self._on_term_box_toggled(t, on))
        self._legend.insertWidget(self._legend.count() - 1, box)
        self._term_boxes[term] = box

    def _add_curve(self, phase: str, term: str) -> None:
        if term not in self._colors:
            self._add_term(term)
        width = 2.0 if term == "total" else 1.3
        curve = pg.PlotDataItem(pen=pg.mkPen(self._colors[term], width=width))
        curve.setVisible(self._term_boxes[term].isChecked())
        # PlotItem.addItem applies the plot's own downsampling and clipping to the curve.
        self._plot.getPlotItem().addItem(curve)
        self._curves[(phase, term)] = curve
        self._buffers[(phase, term)] = _Buffer()

    def _add_phase_line(self, phase: str, step: int) -> None:
        title = PHASE_SHORT.get(phase, phase)
        line = pg.InfiniteLine(pos=max(0, step - 1), angle=90, movable=False,
                               pen=pg.mkPen("#b0bec5", style=pg.QtCore.Qt.PenStyle.DashLine),
                               label=title, labelOpts={"position": 0.95, "color": "#607d8b",
                                                       "anchors": [(0, 0), (0, 0)]})
        self._plot.getPlotItem().addItem(line, ignoreBounds=True)
        self._phase_lines[phase] = line

    def _redraw(self) -> None:
        if self.log_scale:
            # The band follows the data in powers of ten; when it moves, every curve is redrawn.
            width = linear_width([b.y[: b.n][:: max(1, b.n // 2000)] for b in self._buffers.values()])
        else:
            width = None
        if width != self._width:
            self._width = width
            self._axis.set_linear_width(width)
            self._dirty = set(self._buffers)
        for key in self._dirty:
            b = self._buffers[key]
            y = b.y[: b.n]
            if width is not None:
                y = signed_log(y, width)
            self._curves[key].setData(b.x[: b.n], y, connect="finite")
        self._dirty.clear()

    def _on_term_box_toggled(self, term: str, on: bool) -> None:
        for (_, t), curve in self._curves.items():
            if t == term:
                curve.setVisible(on)

    def _on_log_box_toggled(self, on: bool) -> None:
        self._throttle.request()
        self._throttle.flush()
        self.log_scale_changed.emit(on)

