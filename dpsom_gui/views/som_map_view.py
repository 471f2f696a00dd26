"""The self-organising map drawn as coloured squares or hexagons with a colour bar and legend."""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (QComboBox, QGraphicsItem, QGraphicsRectItem, QHBoxLayout, QLabel, QToolTip, QVBoxLayout,
                               QWidget)

from ._throttle import RedrawThrottle
from .map_layers import LAYER_KINDS, LayerChoice, MapLayer, category_colour, layer_name, split_layer_name
from .map_legend import MISSING_COLOUR, SELECTED_COLOUR, MapLegend

__all__ = ["SomMapView", "LAYER_TITLES"]

#: Plain explanations of the layers every trained map has.
LAYER_TITLES = {k: LAYER_KINDS[k] for k in ("umatrix", "hits")}

_MISSING = QColor(MISSING_COLOUR)
log = logging.getLogger(__name__)


def _paler(colour: QColor, share) -> QColor:
    """``colour`` mixed with white as its category's ``share`` of the cell falls (mixed cells pale)."""
    if share is None or not np.isfinite(share):
        return colour
    keep = 0.3 + 0.7 * float(min(max(share, 0.0), 1.0))
    return QColor(*(int(round(255 - keep * (255 - c))) for c in (colour.red(), colour.green(), colour.blue())))


class _CellsItem(pg.GraphicsObject):
    """Paints one filled polygon per node; colours change, geometry is built once.

    A left-button drag calls ``on_drag(start, end, finished, modifiers)`` with points in map
    coordinates, so the view can draw a rubber band and select the cells inside it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._polygons: list[QPolygonF] = []
        self._brushes: list[QBrush] = []
        self._rect = QRectF(0, 0, 1, 1)
        self._selected: set[int] = set()
        self.on_drag = None
        self._pen = QPen(QColor(255, 255, 255, 200))
        self._pen.setCosmetic(True)
        self._pen.setWidthF(1.0)
        self._selected_pen = QPen(QColor(SELECTED_COLOUR))
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

    def set_selected(self, nodes) -> None:
        self._selected = {int(k) for k in nodes}
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._rect

    def paint(self, painter: QPainter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(self._pen)
        for polygon, brush in zip(self._polygons, self._brushes):
            painter.setBrush(brush)
            painter.drawPolygon(polygon)
        painter.setPen(self._selected_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for k in sorted(self._selected):
            if k < len(self._polygons):
                painter.drawPolygon(self._polygons[k])

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph override
        if ev.button() != Qt.MouseButton.LeftButton or self.on_drag is None:
            ev.ignore()
            return
        ev.accept()
        self.on_drag(ev.buttonDownPos(), ev.pos(), ev.isFinish(), ev.modifiers())


class SomMapView(QWidget):
    """Shows one value per map cell (U-matrix, hit map, a variable, an outcome, groups...)
    on the grid's own shape, with a colour bar (its unit written beside it) and a legend.

    Square or hexagonal cells come from :meth:`core.grid.SOMGrid.positions` and
    :meth:`~core.grid.SOMGrid.cell_polygon`. New values are drawn at most ``hz`` times a
    second, always the latest. Cells are selected by clicking (Ctrl or Shift adds) or by
    dragging a rectangle; the selection is outlined. Hovering shows a summary of the cell
    (from :meth:`set_node_describer`, or its value). Other items (trajectories, flow
    arrows) can be drawn on top with :meth:`add_overlay`.

    The "Colour shows" menu lists the kinds given to :meth:`set_layer_choices` (plus any
    layer set directly); choosing one that has not been computed yet emits
    ``layer_requested`` and the owner answers with :meth:`set_map_layer`.

    Signals
    -------
    node_clicked(int)
        The user clicked a cell; the node index (row-major).
    selection_changed(list)
        The user changed the selected cells (sorted node indices; empty when cleared).
    layer_requested(str, str)
        The user chose a layer kind and option that the view does not hold yet.
    category_renamed(str, int, str)
        The user renamed a category of a grouped layer: (layer name, index, new name).
    """

    node_clicked = Signal(int)
    selection_changed = Signal(list)
    layer_requested = Signal(str, str)
    category_renamed = Signal(str, int, str)

    def __init__(self, parent: QWidget | None = None, hz: float = 15.0) -> None:
        super().__init__(parent)
        self._grid = None
        self._layers: dict[str, MapLayer] = {}
        self._choices: dict[str, LayerChoice] = {}
        self._last_option: dict[str, str] = {}
        self._current: str | None = None
        self._levels: tuple[float, float] | None = None
        self._levels_locked = False
        self._selected: list[int] = []
        self._describer = None
        self._failed_descriptions: set[int] = set()
        self._centres = np.zeros((0, 2))
        self._cmaps: dict[str, pg.ColorMap] = {}

        self._layer_box = QComboBox()
        self._layer_box.setToolTip("Choose what the colours of the map show.")
        self._layer_box.currentIndexChanged.connect(self._on_layer_box_changed)
        self._option_box = QComboBox()
        self._option_box.setToolTip("Choose which variable, outcome or number of groups to show.")
        self._option_box.currentIndexChanged.connect(self._on_option_box_changed)
        self._option_box.setVisible(False)
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
        # Cached as a picture: overlays animating on top then cost a blit, not 100s of polygons.
        self._cells.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._cells.on_drag = self._on_cells_drag
        self._viewbox.addItem(self._cells)
        self._band = QGraphicsRectItem()
        band_pen = QPen(QColor(SELECTED_COLOUR))
        band_pen.setCosmetic(True)
        band_pen.setStyle(Qt.PenStyle.DashLine)
        self._band.setPen(band_pen)
        self._band.setBrush(QBrush(QColor(230, 80, 60, 40)))
        self._band.setZValue(50)
        self._band.setVisible(False)
        self._viewbox.addItem(self._band)
        self._colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self._cmap("viridis"), interactive=False,
                                         width=14, colorMapMenu=False, pen=pg.mkPen("#90a4ae"))
        self._colorbar.axis.setTextPen(pg.mkPen("#37474f"))
        self._colorbar.axis.setPen(pg.mkPen("#90a4ae"))
        self._colorbar.axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._plot.addItem(self._colorbar, row=0, col=1)
        self._plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._plot.scene().sigMouseMoved.connect(self._on_scene_moved)
        self.legend = MapLegend()
        self.legend.category_renamed.connect(self._on_legend_category_renamed)

        for box in (self._layer_box, self._option_box):
            # Narrow docks: the boxes shrink below their longest entry instead of clipping the row.
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(10)
        self._layer_label = QLabel("Colour shows:")
        top = QHBoxLayout()
        top.addWidget(self._layer_label)
        top.addWidget(self._layer_box, 2)
        top.addWidget(self._option_box, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self._plot, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self._caption)
        self.setMinimumSize(260, 240)
        self._throttle = RedrawThrottle(self._redraw, hz, self)

    # ------------------------------------------------------------------ input
    def set_grid(self, grid) -> None:
        """Draw the cells of a :class:`core.grid.SOMGrid` (None: no cells); forgets all layers
        and the selection."""
        if grid is None:  # new data without a model: nothing of the old map may stay drawn
            self._grid = None
            self._centres = np.zeros((0, 2))
            self._cells.set_geometry(self._centres, np.zeros((0, 2)), (1.0, 1.0))
            self.clear_layers()
            return
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
        """Give the values of a layer, shape ``(K,)``, titled from its kind; redrawn on the
        next frame if shown."""
        kind = split_layer_name(name)[0]
        old = self._layers.get(name)
        title, explanation = LAYER_KINDS.get(kind, (name, ""))
        if old is not None:
            layer = MapLayer(name, np.asarray(values, dtype=float).reshape(-1), old.title, old.explanation,
                             old.unit, old.counts, old.categories, old.colormap, old.extra)
        else:
            layer = MapLayer(name, np.asarray(values, dtype=float).reshape(-1), title, explanation)
        self.set_map_layer(layer, show)

    def set_map_layer(self, layer: MapLayer, show: bool = False) -> None:
        """Hold a :class:`MapLayer`; show it now if ``show`` or if nothing is shown yet."""
        values = np.asarray(layer.values, dtype=float).reshape(-1)
        if self._grid is None or values.shape[0] != self._grid.n_nodes:
            raise ValueError(f"layer {layer.name!r} has {values.shape[0]} values; the map has "
                             f"{0 if self._grid is None else self._grid.n_nodes} cells")
        self._layers[layer.name] = layer
        self._ensure_kind_entry(layer.kind)
        if show or self._current is None:
            self.show_layer(layer.name)
        elif layer.name == self._current:
            self._update_legend()
            self._throttle.request()

    def set_layer_choices(self, choices) -> None:
        """Offer these :class:`LayerChoice` kinds in the menu (in order), computed or not."""
        self._choices = {c.kind: c for c in choices}
        self._rebuild_layer_box()

    def show_layer(self, name: str) -> None:
        """Colour the map by a layer the view holds."""
        if name not in self._layers:
            raise KeyError(f"no layer {name!r}")
        if name != self._current:
            self._levels = None
        self._current = name
        kind, option = split_layer_name(name)
        self._last_option[kind] = option
        self._sync_boxes()
        layer = self._layers[name]
        self._caption.setText(layer.explanation or LAYER_KINDS.get(kind, ("", ""))[1])
        self._update_legend()
        self._throttle.request()

    def clear_layers(self) -> None:
        self._layers.clear()
        self._current = None
        self._levels = None
        self._last_option.clear()
        self._rebuild_layer_box()
        self.set_selected_nodes([])
        self._update_legend()  # nothing shown: no colour bar with an old scale either
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
        self.set_selected_nodes([] if node is None else [node])

    def set_selected_nodes(self, nodes) -> None:
        """Outline these cells (does not emit ``selection_changed``)."""
        self._selected = sorted({int(k) for k in nodes})
        self._cells.set_selected(self._selected)

    def set_node_describer(self, describe) -> None:
        """``describe(node, layer) -> str`` gives the hover text (None: the cell and its value)."""
        self._describer = describe
        self._failed_descriptions: set[int] = set()

    def choose_layer(self, kind: str, option: str | None = None) -> None:
        """Do what choosing ``kind`` (and ``option``) in the menus does: show it if held,
        otherwise ask for it with ``layer_requested``."""
        if option is None:
            choice = self._choices.get(kind)
            option = self._last_option.get(kind, choice.options[0][0] if choice and choice.options else "")
        self._ensure_kind_entry(kind)
        self._request(kind, option)

    def select(self, nodes) -> None:
        """Select these cells as a user would (emits ``selection_changed`` when it changes)."""
        self._user_selects(nodes)

    def set_compact(self, compact: bool) -> None:
        """Hide the legend, the caption and the menu's label (where the map is a background for
        other drawings)."""
        self.legend.setVisible(not compact)
        self._caption.setVisible(not compact)
        self._layer_label.setVisible(not compact)
        self.setMinimumSize(*((200, 200) if compact else (260, 240)))

    def set_refresh_rate(self, hz: float) -> None:
        self._throttle.set_rate(hz)

    def add_overlay(self, item) -> None:
        """Draw a graphics item on top of the cells (map coordinates of ``SOMGrid.positions``)."""
        if item.scene() is None:
            self._viewbox.addItem(item)

    def remove_overlay(self, item) -> None:
        if item.scene() is not None:
            self._viewbox.removeItem(item)

    # ----------------------------------------------------------------- output
    @property
    def grid(self):
        return self._grid

    @property
    def current_layer(self) -> str | None:
        return self._current

    def layer(self, name: str) -> MapLayer:
        return self._layers[name]

    def layer_names(self) -> list[str]:
        return list(self._layers)

    def levels(self) -> tuple[float, float] | None:
        return self._levels

    def selected_nodes(self) -> list[int]:
        return list(self._selected)

    def plot_widget(self) -> pg.GraphicsLayoutWidget:
        """The drawing area alone (map and colour bar), e.g. for pictures."""
        return self._plot

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

    def nodes_in_rect(self, rect: QRectF) -> list[int]:
        """Nodes whose centre lies inside ``rect`` (map coordinates)."""
        r = rect.normalized()
        c = self._centres
        inside = (c[:, 0] >= r.left()) & (c[:, 0] <= r.right()) & (c[:, 1] >= r.top()) & (c[:, 1] <= r.bottom())
        return [int(k) for k in np.flatnonzero(inside)]

    def map_to_widget(self, x: float, y: float):
        """Where map point (x, y) lies in the drawing area's widget coordinates (for tests)."""
        return self._plot.mapFromScene(self._viewbox.mapViewToScene(QPointF(x, y)))

    # ---------------------------------------------------------------- drawing
    def _cmap(self, name: str) -> pg.ColorMap:
        if name not in self._cmaps:
            try:
                self._cmaps[name] = pg.colormap.get(name)
            except Exception as exc:  # noqa: BLE001 - an unknown map name falls back to viridis
                log.warning("map: colour map %r is not available (%s); viridis is used instead", name, exc)
                self._cmaps[name] = pg.colormap.get("viridis")
        return self._cmaps[name]

    def _redraw(self) -> None:
        if self._current is None or self._grid is None:
            return
        layer = self._layers[self._current]
        values = np.asarray(layer.values, dtype=float)
        finite = np.isfinite(values)
        if layer.is_categorical:
            self._levels = (0.0, float(max(len(layer.categories) - 1, 1)))
            share = layer.extra.get("share")
            colors = [_paler(QColor(category_colour(int(v))), None if share is None else share[i]) if ok
                      else _MISSING for i, (v, ok) in enumerate(zip(values, finite))]
            self._cells.set_colors(colors)
            return
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
        cmap = self._cmap(layer.colormap)
        rgba = cmap.map(scaled, mode=pg.ColorMap.BYTE)
        colors = [QColor(int(r), int(g), int(b)) if ok else _MISSING
                  for (r, g, b, _a), ok in zip(rgba, finite)]
        self._cells.set_colors(colors)
        self._colorbar.setColorMap(cmap)
        self._colorbar.setLevels(values=(lo, hi))

    def _update_legend(self) -> None:
        layer = self._layers.get(self._current) if self._current else None
        categorical = layer is not None and layer.is_categorical
        self._colorbar.setVisible(layer is not None and not categorical)
        if categorical:
            names = list(layer.categories)
            self.legend.set_categories(names, [category_colour(i) for i in range(len(names))],
                                       editable=layer.kind == "superclusters")
        else:
            self.legend.set_categories([], [])
        self._colorbar.axis.setLabel(layer.colour_bar_label() if layer is not None and not categorical else "")

    # ------------------------------------------------------------- the menus
    def _ensure_kind_entry(self, kind: str) -> None:
        if self._layer_box.findData(kind) < 0:
            self._layer_box.blockSignals(True)
            self._layer_box.addItem(self._choices[kind].title if kind in self._choices
                                    else LAYER_KINDS.get(kind, (kind, ""))[0], kind)
            self._layer_box.setItemData(self._layer_box.count() - 1, LAYER_KINDS.get(kind, ("", ""))[1],
                                        Qt.ItemDataRole.ToolTipRole)
            self._layer_box.blockSignals(False)

    def _rebuild_layer_box(self) -> None:
        self._layer_box.blockSignals(True)
        self._layer_box.clear()
        self._layer_box.blockSignals(False)
        for kind in self._choices:
            self._ensure_kind_entry(kind)
        for name in self._layers:
            self._ensure_kind_entry(split_layer_name(name)[0])
        self._sync_boxes()

    def _sync_boxes(self) -> None:
        kind, option = split_layer_name(self._current) if self._current else ("", "")
        self._layer_box.blockSignals(True)
        self._layer_box.setCurrentIndex(self._layer_box.findData(kind) if kind else -1)
        self._layer_box.blockSignals(False)
        options = self._choices[kind].options if kind in self._choices else ()
        self._option_box.blockSignals(True)
        self._option_box.clear()
        for value, text in options:
            self._option_box.addItem(text, value)
        self._option_box.setCurrentIndex(max(0, self._option_box.findData(option)))
        self._option_box.blockSignals(False)
        self._option_box.setVisible(bool(options))

    def _request(self, kind: str, option: str) -> None:
        name = layer_name(kind, option)
        if name in self._layers:
            self.show_layer(name)
        else:
            self.layer_requested.emit(kind, option)
            if name not in self._layers:  # nobody answered: keep the menus truthful
                self._sync_boxes()

    def _on_layer_box_changed(self, index: int) -> None:
        kind = self._layer_box.itemData(index)
        if kind is None:
            return
        choice = self._choices.get(kind)
        option = self._last_option.get(kind)
        if option is None:
            option = choice.options[0][0] if choice is not None and choice.options else ""
        self._request(kind, option)

    def _on_option_box_changed(self, index: int) -> None:
        kind = self._layer_box.currentData()
        option = self._option_box.itemData(index)
        if kind is not None and option is not None:
            self._request(kind, option)

    def _on_legend_category_renamed(self, index: int, name: str) -> None:
        if self._current is not None:
            self.category_renamed.emit(self._current, index, name)

    # ---------------------------------------------------------------- events
    def _scene_to_node(self, scene_pos) -> int | None:
        if not self._viewbox.sceneBoundingRect().contains(scene_pos):
            return None
        point = self._viewbox.mapSceneToView(scene_pos)
        return self.node_at(point.x(), point.y())

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        node = self._scene_to_node(event.scenePos())
        adding = bool(event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier))
        if node is None:
            if not adding and self._selected and self._viewbox.sceneBoundingRect().contains(event.scenePos()):
                self._user_selects([])
            return
        if adding:
            chosen = set(self._selected) ^ {node}
        else:
            chosen = {node}
        self._user_selects(chosen)
        self.node_clicked.emit(node)

    def _on_cells_drag(self, start, end, finished: bool, modifiers) -> None:
        rect = QRectF(start, end).normalized()
        self._band.setRect(rect)
        self._band.setVisible(not finished)
        if finished:
            nodes = set(self.nodes_in_rect(rect))
            if modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
                nodes |= set(self._selected)
            self._user_selects(nodes)

    def _user_selects(self, nodes) -> None:
        nodes = sorted({int(k) for k in nodes})
        if nodes != self._selected:
            self.set_selected_nodes(nodes)
            self.selection_changed.emit(list(nodes))

    def describe(self, node: int) -> str:
        """The hover text of a cell."""
        layer = self._layers.get(self._current) if self._current else None
        problem = ""
        if self._describer is not None:
            try:
                return self._describer(node, layer)
            except Exception as exc:  # noqa: BLE001 - a tooltip must never break the map; say what is missing
                if node not in self._failed_descriptions:  # once per cell, not on every mouse move
                    self._failed_descriptions.add(node)
                    log.error("map: the summary of cell %d could not be computed", node, exc_info=exc)
                problem = f"\n(The summary of this cell could not be computed: {exc or type(exc).__name__})"
        row, col = self._grid.coords(node)
        text = f"Cell {node} (row {int(row) + 1}, column {int(col) + 1})"
        if layer is not None:
            text += f"\n{layer.title}: {layer.format_value(float(layer.values[node]))}"
            if layer.counts is not None:
                text += f"\nPoints in this cell: {int(layer.counts[node])}"
        return text + problem

    def _on_scene_moved(self, scene_pos) -> None:
        node = self._scene_to_node(scene_pos)
        if node is None or self._grid is None:
            return
        QToolTip.showText(self._plot.mapToGlobal(self._plot.mapFromScene(scene_pos)), self.describe(node), self._plot)
