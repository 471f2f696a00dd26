"""How training is going: a plain learning-progress curve per phase, or every loss term."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ._throttle import RedrawThrottle
from .signed_log import SignedLogAxis, linear_width, signed_log

__all__ = ["LossView", "TERM_TITLES", "PHASE_SHORT", "PHASE_TITLES", "learning_progress"]

#: Short name and plain explanation of each loss term (legend text and its tooltip).
TERM_TITLES = {
    "total": ("total", "The sum of all weighted terms: what training makes smaller."),
    "elbo": ("reconstruction", "How well the model can rebuild the measured values from its summary."),
    "cah": ("clustering", "How clearly each point belongs to one cell of the map."),
    "som": ("map order", "Whether neighbouring cells of the map stay similar to each other."),
    "smooth": ("smoothness", "Whether patients move to nearby cells from one time step to the next."),
    "jump": ("map continuity", "Whether the cells of consecutive time steps lie next to each other on the map."),
    "balance": ("even use", "Whether all cells of the map are used, rather than a few."),
    "pred": ("forecast", "How well the next health state is predicted."),
    "pred_step": ("forecast per step", "The forecast term of a single time step, before weighting."),
    "init": ("map start-up", "Placing the cells of the map before joint training."),
}

#: Short labels of the phase markers.
PHASE_SHORT = {"pretrain": "pretraining", "som_init": "map layout", "joint": "joint training",
               "prediction": "forecaster"}
#: What each phase does, in plain words (the plain view's legend tooltips).
PHASE_TITLES = {
    "pretrain": "Learning to summarise each time point in a few numbers.",
    "som_init": "Laying the cells of the map out over those summaries.",
    "joint": "Refining the summaries and the map together.",
    "prediction": "Learning to forecast the next health state.",
}
_PLAIN_HELP = ("How much of what each phase can learn it has learnt: 0 % at the phase's start, 100 % at "
               "its best so far. Higher is better; a curve that flattens has learnt what it can. A phase "
               "that gains little next to the noise between batches stays low.")
_SPARSE_NOTE = (" Too few training steps are recorded here to draw this; \"Show every loss term\" shows "
                "the values that are.")
_PHASE_COLOURS = {"pretrain": "#3b6ea5", "som_init": "#c08a1e", "joint": "#2e7d6b", "prediction": "#8e5ea2"}
_OTHER_PHASE_COLOURS = ["#b3473a", "#6d4c41", "#263238"]


def learning_progress(loss: np.ndarray, smooth: bool = True) -> np.ndarray:
    """How far a phase has come, in percent, from its loss per step ``(n,)``.

    The loss is smoothed over a trailing window (about 1/10 of the steps so far, at most
    200), because single mini-batches jump about. 0 % is the mean loss of the phase's first
    window (the curve starts there: NaN before it), 100 % its lowest smoothed loss so far; a curve that flattens near 100 %
    means the phase has learnt what it can. An improvement smaller than the batch-to-batch
    noise is not stretched to 100 %: the scale is then set by the noise, so a phase that
    hardly learns stays low instead of jumping about. Values are kept between -25 % and
    100 %. Loss terms that are negative (a likelihood) need no care: only differences count.

    ``smooth=False`` is for values that are already means over many batches (the one row
    per pass a saved project keeps): each is a point of the curve, 0 % is the first.
    """
    y = np.asarray(loss, dtype=np.float64)
    y = y[np.isfinite(y)]
    n = y.size
    if n == 0:
        return np.zeros(0)
    if not smooth:
        start, best = y[0], y.min()
        out = np.zeros(n)
        if start - best > 1e-12 * max(1.0, abs(start)):
            out = np.clip(100.0 * (start - y) / (start - best), -25.0, 100.0)
        return out
    w = int(min(200, max(min(5, n), n // 10)))
    c = np.concatenate([[0.0], np.cumsum(y)])
    lo = np.maximum(np.arange(1, n + 1) - w, 0)
    smooth = (c[1:] - c[lo]) / (np.arange(1, n + 1) - lo)
    # The first window is the reference (its mean is 0 %); the curve starts after it, where
    # every smoothed value averages as many steps as the reference.
    start, best = smooth[w - 1], smooth[w - 1:].min()
    # Batch-to-batch noise (robust: from the median absolute step) as it remains after
    # smoothing, and the spread that noise alone gives the highest and lowest of n values.
    noise = 1.4826 * float(np.median(np.abs(np.diff(y)))) / np.sqrt(2.0 * w) if n > 1 else 0.0
    scale = max(start - best, 3.0 * np.sqrt(2.0 * np.log(max(n, 2))) * noise)
    out = np.full(n, np.nan)
    out[w - 1:] = 0.0
    if scale > 1e-12 * max(1.0, abs(start)):
        out[w - 1:] = np.clip(100.0 * (start - smooth[w - 1:]) / scale, -25.0, 100.0)
    return out


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
    """Shows how training is going, plainly by default and in detail on request.

    * **Plain** (default): one *learning progress* curve per phase (:func:`learning_progress`
      of the phase's total loss): 0 % at the phase's start, 100 % at its best so far, so a
      curve that flattens near the top has learnt what it can. Higher is better.
    * **Every loss term** (the "Show every loss term" box): each named term against the
      step, one curve per term and phase, on a signed logarithmic scale
      (:mod:`.signed_log`) so terms that turn negative, such as a likelihood, stay drawn.

    Curves are created once and only their data change; they use downsampling and
    clip-to-view so hundreds of thousands of steps stay smooth. Phase starts are marked
    with vertical lines whose labels are staggered so that short phases stay readable.

    Signals
    -------
    log_scale_changed(bool)
        The user switched the logarithmic scale on or off (the window remembers it).
    detailed_changed(bool)
        The user switched between the plain and the detailed view.
    """

    log_scale_changed = Signal(bool)
    detailed_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None, hz: float = 15.0, log_scale: bool = True,
                 detailed: bool = False) -> None:
        super().__init__(parent)
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        self._curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._colors: dict[str, str] = {}
        self._phase_lines: dict[str, pg.InfiniteLine] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._last_step = 0
        self._width: float | None = None  # linear band of the signed log scale in use

        self._progress: dict[str, pg.PlotDataItem] = {}
        self._per_pass: set[str] = set()  # phases recorded as one mean per pass (a saved project)
        self._progress_dirty: set[str] = set()
        self._detail_box = QCheckBox("Show every loss term")
        self._detail_box.setToolTip("Switch from the plain learning progress to every term the model "
                                    "minimises, as technical people read it.")
        self._detail_box.setChecked(detailed)
        self._detail_box.toggled.connect(self._on_detail_box_toggled)
        self._log_box = QCheckBox("Logarithmic scale")
        self._log_box.setToolTip("Show the losses on a logarithmic scale, so both large early values "
                                 "and small late changes are visible. Terms that turn negative (a "
                                 "likelihood can) are drawn below zero, where the scale mirrors itself.")
        self._log_box.setChecked(log_scale)
        self._log_box.toggled.connect(self._on_log_box_toggled)
        self._help = QLabel("")
        self._help.setProperty("role", "hint")
        self._help.setWordWrap(True)

        self._axis = SignedLogAxis("left")
        self._plot = pg.PlotWidget(background="w", axisItems={"left": self._axis})
        item = self._plot.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("bottom", "training step")
        item.setMenuEnabled(False)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen("#90a4ae"))
            item.getAxis(axis).setTextPen(pg.mkPen("#37474f"))
        # Long runs stay smooth: draw only the visible range, at most a few points per pixel.
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        item.getViewBox().sigResized.connect(lambda _vb: self._place_phase_labels())
        self._phase_labels: dict[str, QLabel] = {}
        self._phase_legend = QHBoxLayout()
        self._phase_legend.setSpacing(12)
        self._phase_legend.addStretch(1)
        self._term_boxes: dict[str, QCheckBox] = {}
        self._legend = QHBoxLayout()
        self._legend.setSpacing(12)
        self._legend.addStretch(1)

        top = QHBoxLayout()
        top.addWidget(self._help, 1)
        top.addWidget(self._log_box)
        top.addWidget(self._detail_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self._plot, 1)
        layout.addLayout(self._phase_legend)
        layout.addLayout(self._legend)
        self.setMinimumSize(320, 220)
        self._throttle = RedrawThrottle(self._redraw, hz, self)
        self._apply_mode()

    # ------------------------------------------------------------------ input
    def append(self, records, per_pass: bool = False) -> None:
        """Add progress records (:class:`core.progress.TrainProgress`, oldest first).

        ``per_pass=True`` for the rows a saved project keeps, one mean per pass over the
        data: the plain view draws them point by point (a few of them are a curve), where
        single steps are smoothed first.
        """
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
            if per_pass:
                self._per_pass.add(key[0])
            else:  # training resumed: steps again, smoothed with the passes before them
                self._per_pass.discard(key[0])
            if key not in self._buffers:
                self._add_curve(*key)
            self._buffers[key].extend(xs, ys)
            self._dirty.add(key)
            self._progress_dirty.add(key[0])
        if grouped:
            self._throttle.request()

    def clear(self) -> None:
        """Forget all curves (a new training from scratch)."""
        item = self._plot.getPlotItem()
        for curve in self._curves.values():
            item.removeItem(curve)
        for line in self._phase_lines.values():
            item.removeItem(line)
        for curve in self._progress.values():
            item.removeItem(curve)
        for label in self._phase_labels.values():
            self._phase_legend.removeWidget(label)
            label.deleteLater()
        self._progress.clear()
        self._per_pass.clear()
        self._phase_labels.clear()
        self._progress_dirty.clear()
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

    def set_detailed(self, on: bool) -> None:
        """Show every loss term (True) or the plain learning progress (False)."""
        self._detail_box.setChecked(bool(on))

    def set_refresh_rate(self, hz: float) -> None:
        self._throttle.set_rate(hz)

    def flush(self) -> None:
        """Draw pending changes now instead of on the next frame."""
        self._throttle.flush()

    # ----------------------------------------------------------------- output
    @property
    def log_scale(self) -> bool:
        return self._log_box.isChecked()

    @property
    def detailed(self) -> bool:
        return self._detail_box.isChecked()

    def progress_data(self, phase: str) -> tuple[np.ndarray, np.ndarray]:
        """Steps and learning progress (percent) drawn for one phase in the plain view."""
        x, y = self._progress[phase].getData()
        return (np.zeros(0) if x is None else np.asarray(x)), (np.zeros(0) if y is None else np.asarray(y))

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
        box.setVisible(self.detailed)
        self._legend.insertWidget(self._legend.count() - 1, box)
        self._term_boxes[term] = box

    def _add_curve(self, phase: str, term: str) -> None:
        if term not in self._colors:
            self._add_term(term)
        width = 2.0 if term == "total" else 1.3
        curve = pg.PlotDataItem(pen=pg.mkPen(self._colors[term], width=width))
        curve.setVisible(self.detailed and self._term_boxes[term].isChecked())
        # PlotItem.addItem applies the plot's own downsampling and clipping to the curve.
        self._plot.getPlotItem().addItem(curve)
        self._curves[(phase, term)] = curve
        self._buffers[(phase, term)] = _Buffer()

    def _add_phase_line(self, phase: str, step: int) -> None:
        title = PHASE_SHORT.get(phase, phase)
        colour = _PHASE_COLOURS.get(phase, _OTHER_PHASE_COLOURS[len(self._phase_lines) % len(_OTHER_PHASE_COLOURS)])
        line = pg.InfiniteLine(pos=max(0, step - 1), angle=90, movable=False,
                               pen=pg.mkPen("#b0bec5", style=pg.QtCore.Qt.PenStyle.DashLine),
                               label=title, labelOpts={"position": 0.96, "color": "#607d8b",
                                                       "anchors": [(0, 0), (0, 0)]})
        self._plot.getPlotItem().addItem(line, ignoreBounds=True)
        self._phase_lines[phase] = line
        self._place_phase_labels()
        curve = pg.PlotDataItem(pen=pg.mkPen(colour, width=2.0))
        curve.setVisible(not self.detailed)
        self._plot.getPlotItem().addItem(curve)
        self._progress[phase] = curve
        label = QLabel(f'<span style="color:{colour}">■</span> {title}')
        label.setToolTip(PHASE_TITLES.get(phase, ""))
        self._phase_legend.insertWidget(self._phase_legend.count() - 1, label)
        self._phase_labels[phase] = label

    def _place_phase_labels(self) -> None:
        """Stagger the phase labels over three heights, one label's height apart, so a short
        phase's name does not run into the next one's."""
        height = self._plot.getPlotItem().getViewBox().height()
        gap = min(0.3, 26.0 / height) if height > 0 else 0.1
        for i, line in enumerate(self._phase_lines.values()):
            line.label.setPosition(0.96 - gap * (i % 3))

    def _total_key(self, phase: str) -> tuple[str, str] | None:
        if (phase, "total") in self._buffers:
            return phase, "total"
        return next((key for key in self._buffers if key[0] == phase), None)

    def _redraw(self) -> None:
        self._place_phase_labels()
        if not self.detailed:
            for phase in self._progress_dirty:
                key = self._total_key(phase)
                if key is not None:
                    b = self._buffers[key]
                    progress = learning_progress(b.y[: b.n], smooth=phase not in self._per_pass)
                    self._progress[phase].setData(b.x[: b.n], progress, connect="finite")
            self._progress_dirty.clear()
            # A reopened project may hold only a few recorded steps: say why no curve shows
            # rather than leave an empty plot.
            drawn = [np.isfinite(c.getData()[1] if c.getData()[1] is not None else []).sum()
                     for c in self._progress.values()]
            sparse = bool(self._buffers) and max(drawn, default=0) < 2
            self._help.setText(_PLAIN_HELP + (_SPARSE_NOTE if sparse else ""))
            return
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
                curve.setVisible(on and self.detailed)

    def _apply_mode(self) -> None:
        detailed = self.detailed
        item = self._plot.getPlotItem()
        for (_, term), curve in self._curves.items():
            curve.setVisible(detailed and self._term_boxes[term].isChecked())
        for curve in self._progress.values():
            curve.setVisible(not detailed)
        for box in self._term_boxes.values():
            box.setVisible(detailed)
        for label in self._phase_labels.values():
            label.setVisible(not detailed)
        self._log_box.setVisible(detailed)
        if detailed:
            self._help.setText("Each term the model minimises: lower is better. A likelihood term can go "
                               "below zero.")
            item.setLabel("left", "loss")
            self._width = None  # the band is chosen afresh for the terms
            self._dirty = set(self._buffers)
            item.enableAutoRange(y=True)
        else:
            self._help.setText(_PLAIN_HELP)
            item.setLabel("left", "learning progress (%)")
            self._axis.set_linear_width(None)
            self._progress_dirty = set(self._phase_lines)
            item.enableAutoRange(y=False)
            item.setYRange(-5, 105, padding=0)

    def _on_detail_box_toggled(self, on: bool) -> None:
        self._apply_mode()
        self._throttle.request()
        self._throttle.flush()
        self.detailed_changed.emit(on)

    def _on_log_box_toggled(self, on: bool) -> None:
        self._throttle.request()
        self._throttle.flush()
        self.log_scale_changed.emit(on)

