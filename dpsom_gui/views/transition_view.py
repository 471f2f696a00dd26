"""How patients move between cells from one time step to the next."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSpinBox, QToolTip, QVBoxLayout, QWidget

__all__ = ["TransitionView"]


class TransitionView(QWidget):
    """The cohort's cell-to-cell transition matrix as a picture, and the choice of flow arrows
    drawn on the map.

    Row *i*, column *j* of the picture is how often a patient in cell *i* is in cell *j* at
    the next time step: as a count of moves, or as a share of all moves out of cell *i*.
    The diagonal (staying in the same cell) is usually the brightest.

    Signals
    -------
    flows_requested(int)
        Draw arrows for this many of the most frequent moves between different cells on the
        map (0: none).
    """

    flows_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts = np.zeros((0, 0), dtype=np.int64)
        self.mode_box = QComboBox()
        self.mode_box.addItem("share of moves out of each cell", "share")
        self.mode_box.addItem("number of moves", "count")
        self.mode_box.setToolTip("Colour each square by the number of moves, or by the share of the moves out "
                                 "of its row's cell (each row then sums to 100%).")
        self.mode_box.currentIndexChanged.connect(lambda _i: self._redraw())
        self.arrows_check = QCheckBox("Arrows on the map for the")
        self.arrows_check.setToolTip("Draw the most frequent moves between different cells on the map; thicker "
                                     "arrows mean more moves.")
        self.arrows_box = QSpinBox()
        self.arrows_box.setRange(1, 200)
        self.arrows_box.setValue(20)
        self.arrows_box.setSuffix(" most frequent moves")
        self.arrows_box.setToolTip("How many arrows to draw.")
        self.arrows_check.toggled.connect(lambda _on: self._emit_flows())
        self.arrows_box.valueChanged.connect(lambda _v: self._emit_flows())
        self._caption = QLabel("Transitions appear here once a model of patients over time is trained.")
        self._caption.setWordWrap(True)
        self._caption.setProperty("role", "hint")

        self._plot = pg.GraphicsLayoutWidget()
        self._plot.setBackground("w")
        self.plot_item = self._plot.addPlot(row=0, col=0)
        self.plot_item.setMenuEnabled(False)
        self.plot_item.setMouseEnabled(False, False)
        self.plot_item.hideButtons()
        # No locked aspect: in a wide, low dock a square picture would shrink to a stamp in
        # the middle of an axis running far past the last cell. The picture fills the plot.
        self.plot_item.invertY(True)
        self.plot_item.setLabel("left", "from cell")
        self.plot_item.setLabel("bottom", "to cell")
        for axis in ("left", "bottom"):
            self.plot_item.getAxis(axis).setPen(pg.mkPen("#90a4ae"))
            self.plot_item.getAxis(axis).setTextPen(pg.mkPen("#37474f"))
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot_item.addItem(self.image)
        self._cmap = pg.colormap.get("magma")
        self.image.setLookupTable(self._cmap.getLookupTable(nPts=256))
        self._colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self._cmap, interactive=False, width=14,
                                         colorMapMenu=False, pen=pg.mkPen("#90a4ae"))
        self._colorbar.axis.setTextPen(pg.mkPen("#37474f"))
        self._plot.addItem(self._colorbar, row=0, col=1)
        self._plot.scene().sigMouseMoved.connect(self._on_scene_moved)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Colour shows the"))
        controls.addWidget(self.mode_box, 1)
        arrows = QHBoxLayout()
        arrows.addWidget(self.arrows_check)
        arrows.addWidget(self.arrows_box)
        arrows.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(controls)
        layout.addWidget(self._plot, 1)
        layout.addLayout(arrows)
        layout.addWidget(self._caption)
        self.setMinimumSize(300, 260)
        self._set_enabled(False)

    # ------------------------------------------------------------------ input
    def set_counts(self, counts) -> None:
        """Show a ``(K, K)`` matrix of move counts (None or an empty matrix clears)."""
        self._counts = np.zeros((0, 0), dtype=np.int64) if counts is None else np.asarray(counts)
        has = bool(self._counts.size > 0 and self._counts.sum() > 0)
        self._set_enabled(has)
        if has:
            moves = int(self._counts.sum())
            stay = float(np.trace(self._counts)) / moves
            self._caption.setText(f"{moves} moves from one time step to the next; {100 * stay:.0f}% of them stay "
                                  "in the same cell (the diagonal). Hover over a square for its numbers.")
        else:
            self._caption.setText("Transitions appear here once a model of patients over time is trained.")
        self._redraw()
        self._emit_flows()

    def show_arrows(self, n: int) -> None:
        """Ask for ``n`` arrows on the map (0 hides them)."""
        if n > 0:
            self.arrows_box.setValue(n)
        self.arrows_check.setChecked(n > 0)

    # ----------------------------------------------------------------- output
    def matrix(self) -> np.ndarray:
        """What the picture shows now: counts, or row shares."""
        c = self._counts.astype(float)
        if self.mode_box.currentData() == "share" and c.size:
            tot = c.sum(axis=1, keepdims=True)
            return np.divide(c, tot, out=np.zeros_like(c), where=tot > 0)
        return c

    def plot_widget(self):
        return self._plot

    # ---------------------------------------------------------------- drawing
    def _redraw(self) -> None:
        m = self.matrix()
        if not m.size:
            self.image.clear()
            self.plot_item.getViewBox().setLimits(xMin=None, xMax=None, yMin=None, yMax=None)
            return
        share = self.mode_box.currentData() == "share"
        if share:
            m = 100.0 * m  # percent: a colour bar in "x0.001" units reads badly
        hi = float(m.max()) or 1.0
        self.image.setImage(m, levels=(0.0, hi), autoLevels=False)
        self.image.setRect(QRectF(-0.5, -0.5, m.shape[1], m.shape[0]))
        self._colorbar.setLevels(values=(0.0, hi))
        self._colorbar.axis.setLabel("% of moves out of the cell" if share else "moves")
        vb = self.plot_item.getViewBox()
        vb.setLimits(xMin=-0.5, xMax=m.shape[1] - 0.5, yMin=-0.5, yMax=m.shape[0] - 0.5)
        self.plot_item.setRange(xRange=(-0.5, m.shape[1] - 0.5), yRange=(-0.5, m.shape[0] - 0.5), padding=0)

    def _emit_flows(self) -> None:
        on = self.arrows_check.isChecked() and self.arrows_check.isEnabled()
        self.flows_requested.emit(self.arrows_box.value() if on else 0)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.mode_box, self.arrows_check, self.arrows_box):
            w.setEnabled(on)

    def _on_scene_moved(self, scene_pos) -> None:
        if not self._counts.size or not self.plot_item.sceneBoundingRect().contains(scene_pos):
            return
        p = self.plot_item.vb.mapSceneToView(scene_pos)
        i, j = int(round(p.y())), int(round(p.x()))
        k = self._counts.shape[0]
        if not (0 <= i < k and 0 <= j < k):
            return
        out = int(self._counts[i].sum())
        share = self._counts[i, j] / out if out else 0.0
        text = (f"From cell {i} to cell {j}: {int(self._counts[i, j])} moves, "
                f"{100 * share:.1f}% of the {out} moves out of cell {i}")
        QToolTip.showText(self._plot.mapToGlobal(self._plot.mapFromScene(scene_pos)), text, self._plot)
