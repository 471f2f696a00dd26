"""The self-organising map drawn as coloured squares or hexagons with a colour bar."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolTip, QVBoxLayout, QWidget

from ._throttle import RedrawThrottle

__all__ = ["SomMapView", "LAYER_TITLES"]

#: Plain explanations of the layers the map can show.
LAYER_TITLES = {
    "umatrix": ("Distances between neighbours (U-matrix)",
                "How different each cell is from the cells next to it. Bright borders "
                "separate groups of similar health states."),
    "hits": ("Patients per cell (hit map)",
             "How many rows or patient time points fall into each cell."),
}

_MISSING = QColor(200, 205, 208)


class _CellsItem(pg.GraphicsObject):
    """Paints one filled polygon per node; colours change, geometry is built once."""

    def __init__(self) -> None:
        super().__init__()
        self._polygons: list[QPolygonF] = []
        self._brushes: list[QBrush] = []
        self._rect = QRectF(0, 0, 1, 1)
        self._selected: int | None = None
        self._pen = QPen(QColor(255, 255, 255, 200))
        self._pen.setCosmetic(True)
        self._pen.setWidthF(1.0)
        self._selected_pen = QPen(QColor(230, 80, 60))
        self._selected_pen.setCosmetic(True)
        self._selected_pen.setWidthF(2.5)

    def set_geometry(self, centres: np.ndarray, polygon: np.ndarray, extent: tuple[float, float]) -> None:
        self.prepareGeometryChange()
        self._polygons = [QPolygonF([QPointF(float(cx + px), float(cy + py)) for px, py in polygon])
                          for cx, cy in centres]
        self._brushes = [QBrush(_MISSING) for _ in self._polygons]
        self._rect = QRectF(0, 0, float(extent[0]), float(extent[1]))
        self.update()

    def set_colors(self, colors: list[QColor]) -> None:
        self._brushes = [QBrush(c) for c in colors]
        self.update()

    def set_selected(self, node: int | None) -> None:
        self._selected = node
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._rect

    def paint(self, painter: QPainter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(self._pen)
        for polygon, brush in zip(self._polygons, self._brushes):
            painter.setBrush(brush)
            painter.drawPolygon(polygon)
        if self._selected is not None and self._selected < len(self._polygons):
            painter.setPen(self._selected_pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPolygon(self._polygons[self._selected])


class SomMapView(QWidget):
    """Shows one value per map cell (U-matrix, hit map, ...) on the grid's own shape.

    Square or hexagonal cells come from :meth:`core.grid.SOMGrid.positions` and
    :meth:`~core.grid.SOMGrid.cell_polygon`; colours use the viridis map with a colour bar.
    New values are drawn at most ``hz`` times a second, always the latest.

    Signals
    -------
    node_clicked(int)
        The user clicked a cell; the node index (row-major).
    """

    node_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None, hz: float = 15.0) -> None:
        super().__init__(parent)
        self._grid = None
        self._layers: dict[str, np.ndarray] = {}
        self._current: str | None = None
        self._levels: tuple[float, float] | None = None
        self._levels_locked = False
        self._centres = np.zeros((0, 2))
        self._cmap = pg.colormap.get("viridis")

        self._layer_box = QComboBox()
        self._layer_box.setToolTip("Choose what the colours of the map show.")
        self._layer_box.currentIndexChanged.connect(self._on_layer_box_changed)
        self._caption = QLabel("No map yet: train a model to see it here.")
        self._caption.setProperty("role", "hint")
        self._caption.setWordWrap(True)

        self._plot = pg.GraphicsLayoutWidget()
        self._plot.setBackground("w")
        self._plot.ci.setContentsMargins(4, 4, 4, 4)
        self._viewbox = self._plot.addViewBox(row=0, col=0, lockAspect=True, enableMouse=False)
        self._viewbox.invertY(True)
        self._viewbox.setMenuEnabled(False)
        self._cells = _CellsItem()
        self._viewbox.addItem(self._cells)
        self._colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self._cmap, interactive=False,
                                         width=14, colorMapMenu=False, pen=pg.mkPen("#90a4ae"))
        self._colorbar.axis.setTextPen(pg.mkPen("#37474f"))
        self._colorbar.axis.setPen(pg.mkPen("#90a4ae"))
        self._plot.addItem(self._colorbar, row=0, col=1)
        self._plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._plot.scene().sigMouseMoved.connect(self._on_scene_moved)

        top = QHBoxLayout()
        top.addWidget(QLabel("Colour shows:"))
        top.addWidget(self._layer_box, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self._plot, 1)
        layout.addWidget(self._caption)
        self.setMinimumSize(260, 240)
        self._throttle = RedrawThrottle(self._redraw, hz, self)

    # ------------------------------------------------------------------ input
    def set_grid(self, grid) -> None:
        """Draw the cells of a :class:`core.grid.SOMGrid`; forgets all layers."""
        if grid == self._grid:
            self.clear_layers()
            return
        self._grid = grid
        self._centres = np.asarray(grid.positions(), dtype=float)
        width, height = grid.extent()
        self._cells.set_geometry(self._centres, np.asarray(grid.cell_polygon()), (width, height))
        self._viewbox.setRange(QRectF(0, 0, float(width), float(height)), padding=0.02)
        self.clear_layers()

    def set_layer(self, name: str, values, show: bool = False) -> None:
        """Give the values of a layer, shape ``(K,)``; redrawn on the next frame if shown."""
        values = np.asarray(values, dtype=float).reshape(-1)
        if self._grid is None or values.shape[0] != self._grid.n_nodes:
            raise ValueError(f"layer {name!r} has {values.shape[0]} values; the map has "
                             f"{0 if self._grid is None else self._grid.n_nodes} cells")
        new = name not in self._layers
        self._layers[name] = values
        if new:
            title = LAYER_TITLES.get(name, (name, ""))[0]
            self._layer_box.blockSignals(True)
            self._layer_box.addItem(title, name)
            self._layer_box.blockSignals(False)
        if show or self._current is None:
            self.show_layer(name)
        elif name == self._current:
            self._throttle.request()

    def show_layer(self, name: str) -> None:
        """Colour the map by an existing layer."""
        if name not in self._layers:
            raise KeyError(f"no layer {name!r}")
        if name != self._current:
            self._levels = None
        self._current = name
        index = self._layer_box.findData(name)
        if index != self._layer_box.currentIndex():
            self._layer_box.blockSignals(True)
            self._layer_box.setCurrentIndex(index)
            self._layer_box.blockSignals(False)
        self._caption.setText(LAYER_TITLES.get(name, ("", ""))[1])
        self._throttle.request()

    def clear_layers(self) -> None:
        self._layers.clear()
        self._current = None
        self._levels = None
        self._layer_box.clear()
        self._cells.set_selected(None)
        if self._grid is not None:
            self._cells.set_colors([_MISSING] * self._grid.n_nodes)

    def set_levels_locked(self, locked: bool) -> None:
        """While locked (during training) the colour range only widens, so colours do not
        flicker from frame to frame; unlocking fits it to the data again."""
        if bool(locked) == self._levels_locked:
            return
        self._levels_locked = bool(locked)
        if not locked and self._current is not None:
            self._throttle.request()  # the next frame fits the range to the data again

    def set_selected_node(self, node: int | None) -> None:
        self._cells.set_selected(node)

    def set_refresh_rate(self, hz: float) -> None:
        self._throttle.set_rate(hz)

    # ----------------------------------------------------------------- output
    @property
    def grid(self):
        return self._grid

    @property
    def current_layer(self) -> str | None:
        return self._current

    def layer_names(self) -> list[str]:
        return list(self._layers)

    def levels(self) -> tuple[float, float] | None:
        return self._levels

    def flush(self) -> None:
        """Draw pending changes now instead of on the next frame."""
        self._throttle.flush()

    def node_at(self, x: float, y: float) -> int | None:
        """Node under a point in map coordinates, or None outside the map."""
        if not len(self._centres):
            return None
        d = np.hypot(self._centres[:, 0] - x, self._centres[:, 1] - y)
        k = int(np.argmin(d))
        return k if d[k] <= 0.58 else None

    # ---------------------------------------------------------------- drawing
    def _redraw(self) -> None:
        if self._current is None or self._grid is None:
            return
        values = self._layers[self._current]
        finite = np.isfinite(values)
        if finite.any():
            lo, hi = float(values[finite].min()), float(values[finite].max())
            if self._levels_locked and self._levels is not None:
                lo, hi = min(lo, self._levels[0]), max(hi, self._levels[1])
            if hi <= lo:
                hi = lo + 1.0
            self._levels = (lo, hi)
        else:
            self._levels = (0.0, 1.0)
        lo, hi = self._levels
        scaled = np.clip((np.where(finite, values, lo) - lo) / (hi - lo), 0.0, 1.0)
        rgba = self._cmap.map(scaled, mode=pg.ColorMap.BYTE)
        colors = [QColor(int(r), int(g), int(b)) if ok else _MISSING
                  for (r, g, b, _a), ok in zip(rgba, finite)]
        self._cells.set_colors(colors)
        self._colorbar.setLevels(values=(lo, hi))

    # ---------------------------------------------------------------- events
    def _on_layer_box_changed(self, index: int) -> None:
        name = self._layer_box.itemData(index)
        if name is not None:
            self.show_layer(name)

    def _scene_to_node(self, scene_pos) -> int | None:
        if not self._viewbox.sceneBoundingRect().contains(scene_pos):
            return None
        point = self._viewbox.mapSceneToView(scene_pos)
        return self.node_at(point.x(), point.y())

    def _on_scene_clicked(self, event) -> None:
        node = self._scene_to_node(event.scenePos())
        if node is not None:
            self._cells.set_selected(node)
            self.node_clicked.emit(node)

    def _on_scene_moved(self, scene_pos) -> None:
        node = self._scene_to_node(scene_pos)
        if node is None or self._grid is None:
            return
        row, col = self._grid.coords(node)
        text = f"Cell {node} (row {int(row) + 1}, column {int(col) + 1})"
        if self._current is not None:
            value = self._layers[self._current][node]
            title = LAYER_TITLES.get(self._current, (self._current, ""))[0]
            text += f"\n{title}: {value:.3g}"
        QToolTip.showText(self._plot.mapToGlobal(self._plot.mapFromScene(scene_pos)), text, self._plot)
