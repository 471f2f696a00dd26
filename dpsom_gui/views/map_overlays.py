"""Items drawn on top of the map's cells: flow arrows, trails, soft-assignment heat, forecasts.

Each item is created once and given new data for every frame; ``paint`` draws everything
with a handful of ``QPainter`` calls (lines grouped by colour and transparency), so that
dozens of patients animate smoothly. Coordinates are those of
:meth:`core.grid.SOMGrid.positions` (x right, y down).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen, QPixmap, QPolygonF, QRadialGradient
from PySide6.QtWidgets import QGraphicsItem

__all__ = ["FlowArrowsItem", "TrailsItem", "HeatItem", "ForecastItem", "PATIENT_COLOURS", "patient_colour"]

#: Colours of patients' trails and markers (distinct, readable on the light map).
PATIENT_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
                   "#bcbd22", "#7f7f7f")

_ALPHA_LEVELS = 6


def patient_colour(index: int) -> str:
    return PATIENT_COLOURS[int(index) % len(PATIENT_COLOURS)]


class _MapItem(pg.GraphicsObject):
    """Base: an item covering the map's extent."""

    def __init__(self) -> None:
        super().__init__()
        self._rect = QRectF(0, 0, 1, 1)

    def set_extent(self, width: float, height: float) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(-1, -1, float(width) + 2, float(height) + 2)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._rect


def _trim(pieces: list[np.ndarray], start: float, end: float) -> list[np.ndarray]:
    """Shorten a chain of polyline pieces by ``start`` at its beginning and ``end`` at its end."""
    out = [np.asarray(p, dtype=float).copy() for p in pieces]
    if not out:
        return out
    first, last = out[0], out[-1]
    d = first[1] - first[0]
    n = float(np.hypot(*d))
    if n > start > 0:
        first[0] = first[0] + d / n * start
    d = last[-1] - last[-2]
    n = float(np.hypot(*d))
    if n > end > 0:
        last[-1] = last[-1] - d / n * end
    return out


class FlowArrowsItem(_MapItem):
    """Arrows for the most frequent moves between cells; width grows with the number of moves.

    A move across a torus seam is drawn as two pieces (out at one edge, in at the other),
    with the arrowhead on the last piece. Opposite moves are offset sideways so both show.
    """

    COLOUR = QColor(255, 255, 255, 235)
    OUTLINE = QColor(33, 33, 33, 220)

    def __init__(self) -> None:
        super().__init__()
        self._paths: list[tuple[QPainterPath, float, QPolygonF]] = []

    def set_flows(self, flows) -> None:
        """``flows``: objects with ``count`` and ``pieces`` (list of ``(m, 2)`` arrays)."""
        self._paths = []
        flows = list(flows)
        top = max((f.count for f in flows), default=1)
        for f in flows:
            pieces = [np.asarray(p, dtype=float) for p in f.pieces if len(p) >= 2]
            if not pieces:
                continue
            d = pieces[0][-1] - pieces[0][0]
            n = float(np.hypot(*d)) or 1.0
            normal = np.array([-d[1], d[0]]) / n * 0.09
            pieces = _trim([p + normal for p in pieces], 0.14, 0.14)
            path = QPainterPath()
            for p in pieces:
                path.moveTo(QPointF(*p[0]))
                for q in p[1:]:
                    path.lineTo(QPointF(*q))
            width = 1.0 + 3.0 * f.count / top
            tip, back = pieces[-1][-1], pieces[-1][-2]
            u = tip - back
            un = float(np.hypot(*u)) or 1.0
            u = u / un
            size = 0.14 + 0.03 * width
            side = np.array([-u[1], u[0]]) * size * 0.55
            base = tip - u * size
            head = QPolygonF([QPointF(*tip), QPointF(*(base + side)), QPointF(*(base - side))])
            self._paths.append((path, width, head))
        self.update()

    def flow_count(self) -> int:
        return len(self._paths)

    def paint(self, painter: QPainter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        # White arrows with a dark rim stay visible on light and dark cells alike.
        outline = QPen(self.OUTLINE)
        outline.setCosmetic(True)
        outline.setWidthF(1.2)
        for path, width, head in self._paths:
            for colour, extra in ((self.OUTLINE, 2.4), (self.COLOUR, 0.0)):
                pen = QPen(colour)
                pen.setCosmetic(True)
                pen.setWidthF(width + extra)
                pen.setCapStyle(Qt.PenCapStyle.FlatCap)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(path)
            painter.setPen(outline)
            painter.setBrush(QBrush(self.COLOUR))
            painter.drawPolygon(head)


class TrailsItem(_MapItem):
    """Fading trails: line pieces, each with a colour index and an opacity in [0, 1].

    Pieces are grouped into a few opacity levels per colour and drawn with one
    ``drawLines`` call per group.
    """

    def __init__(self, width: float = 3.0) -> None:
        super().__init__()
        self._groups: list[tuple[QPen, list[QLineF]]] = []
        self._width = width
        self.n_lines = 0

    def set_lines(self, lines: np.ndarray, colour_index: np.ndarray, opacity: np.ndarray) -> None:
        """``lines`` ``(L, 4)`` as (x0, y0, x1, y1); ``colour_index`` and ``opacity`` ``(L,)``."""
        lines = np.asarray(lines, dtype=float).reshape(-1, 4)
        self.n_lines = lines.shape[0]
        level = np.clip(np.ceil(np.asarray(opacity, float) * _ALPHA_LEVELS), 1, _ALPHA_LEVELS).astype(int)
        colour = np.asarray(colour_index, dtype=int) % len(PATIENT_COLOURS)
        keys = colour * (_ALPHA_LEVELS + 1) + level
        self._groups = []
        for key in np.unique(keys):
            colour, lv = divmod(int(key), _ALPHA_LEVELS + 1)
            c = QColor(patient_colour(colour))
            c.setAlpha(int(255 * lv / _ALPHA_LEVELS))
            pen = QPen(c)
            pen.setCosmetic(True)
            pen.setWidthF(self._width)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            self._groups.append((pen, [QLineF(*row) for row in lines[keys == key]]))
        self.update()

    def paint(self, painter: QPainter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for pen, lines in self._groups:
            painter.setPen(pen)
            painter.drawLines(lines)


class HeatItem(_MapItem):
    """A soft glow on the cells the model finds likely: a blurred disc per cell whose size and
    strength grow with the probability, so the map's own colours stay visible around it.

    The disc is one pre-drawn sprite, scaled and faded per cell, and the item is cached as a
    picture that is only redrawn when the probabilities change (once per time step).
    """

    def __init__(self, colour: str = "#ff6d00") -> None:
        super().__init__()
        self._centres = np.zeros((0, 2))
        self._alpha = np.zeros(0)
        self._radius = 0.5
        self._sprite = self._make_sprite(QColor(colour))
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    @staticmethod
    def _make_sprite(colour: QColor, size: int = 64) -> QPixmap:
        sprite = QPixmap(size, size)
        sprite.fill(Qt.GlobalColor.transparent)
        painter = QPainter(sprite)
        gradient = QRadialGradient(QPointF(size / 2, size / 2), size / 2)
        outer = QColor(colour)
        outer.setAlpha(0)
        gradient.setColorAt(0.0, colour)
        gradient.setColorAt(0.55, colour)
        gradient.setColorAt(1.0, outer)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(gradient))
        painter.drawEllipse(QRectF(0, 0, size, size))
        painter.end()
        return sprite

    def set_geometry(self, centres: np.ndarray, polygon: np.ndarray) -> None:
        self._centres = np.asarray(centres, dtype=float)
        self._radius = float(np.hypot(*np.asarray(polygon, float).T).min())  # the cell's inner radius
        self._alpha = np.zeros(len(self._centres))
        self.update()

    def set_values(self, values: np.ndarray) -> None:
        """Probabilities ``(K,)``; the largest is drawn biggest and most opaque."""
        v = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
        top = v.max() if v.size else 0.0
        alpha = v / top * 0.75 if top > 0 else np.zeros_like(v)
        if alpha.shape != self._alpha.shape or not np.array_equal(alpha, self._alpha):
            self._alpha = alpha
            self.update()

    def opacity_of(self, node: int) -> float:
        return float(self._alpha[node]) if node < self._alpha.size else 0.0

    def paint(self, painter: QPainter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        source = QRectF(self._sprite.rect())
        for (x, y), a in zip(self._centres, self._alpha):
            if a < 0.03:
                continue
            r = self._radius * (0.35 + 0.65 * a / 0.75)
            painter.setOpacity(float(a))
            painter.drawPixmap(QRectF(float(x) - r, float(y) - r, 2 * r, 2 * r), self._sprite, source)
        painter.setOpacity(1.0)


class ForecastItem(_MapItem):
    """The forecast path ahead of each patient (dashed) and where sampled futures land
    (rings sized by how many samples reach each cell)."""

    def __init__(self) -> None:
        super().__init__()
        self._paths: list[tuple[QPen, QPainterPath]] = []
        self._rings: list[tuple[QColor, QPointF, float]] = []

    def set_forecasts(self, paths, rings) -> None:
        """``paths``: ``(colour_index, pieces)``; ``rings``: ``(colour_index, x, y, share)``."""
        self._paths = []
        for colour, pieces in paths:
            pen = QPen(QColor(patient_colour(colour)))
            pen.setCosmetic(True)
            pen.setWidthF(2.0)
            pen.setStyle(Qt.PenStyle.DashLine)
            path = QPainterPath()
            for p in pieces:
                p = np.asarray(p, float)
                if len(p) < 2:
                    continue
                path.moveTo(QPointF(*p[0]))
                for q in p[1:]:
                    path.lineTo(QPointF(*q))
            self._paths.append((pen, path))
        self._rings = []
        for colour, x, y, share in rings:
            c = QColor(patient_colour(colour))
            c.setAlpha(150)
            self._rings.append((c, QPointF(float(x), float(y)), 0.08 + 0.3 * float(share)))
        self.update()

    @property
    def n_paths(self) -> int:
        return len(self._paths)

    @property
    def n_rings(self) -> int:
        return len(self._rings)

    def paint(self, painter: QPainter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for colour, centre, radius in self._rings:
            pen = QPen(colour)
            pen.setCosmetic(True)
            pen.setWidthF(1.5)
            painter.setPen(pen)
            painter.drawEllipse(centre, radius, radius)
        for pen, path in self._paths:
            painter.setPen(pen)
            painter.drawPath(path)
