"""The legend under the map: what grey and the red outline mean, and named categories."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem,
                               QVBoxLayout, QWidget)

__all__ = ["MapLegend", "swatch_icon", "MISSING_COLOUR", "SELECTED_COLOUR"]

#: Fill of cells without data, and the outline of selected cells.
MISSING_COLOUR = "#c8cdd0"
SELECTED_COLOUR = "#e6503c"


def swatch_icon(colour: str, outline: str | None = None, size: int = 14) -> QIcon:
    """A small square of ``colour`` (with an optional outline colour) as an icon."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(outline or colour))
    if outline:
        from PySide6.QtGui import QPainter

        painter = QPainter(pixmap)
        painter.fillRect(3, 3, size - 6, size - 6, QColor(colour))
        painter.end()
    return QIcon(pixmap)


def _swatch_label(colour: str, text: str, outline: str | None = None) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(4)
    icon = QLabel()
    icon.setPixmap(swatch_icon(colour, outline).pixmap(14, 14))
    layout.addWidget(icon)
    layout.addWidget(QLabel(text))
    return box


class MapLegend(QWidget):
    """Explains the map's colours that the colour bar does not: empty cells, the selection
    outline, and, for a grouped map, one coloured, renameable entry per group.

    Signals
    -------
    category_renamed(int, str)
        The user gave category ``index`` a new name (already stripped, never empty).
    """

    category_renamed = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._names: list[str] = []
        self._colours: list[str] = []
        self._editable = True
        self.categories = QListWidget()
        self.categories.setFlow(QListView.Flow.LeftToRight)
        self.categories.setWrapping(True)
        self.categories.setResizeMode(QListView.ResizeMode.Adjust)
        self.categories.setSpacing(2)
        self.categories.setIconSize(QSize(14, 14))
        self.categories.setMaximumHeight(58)
        self.categories.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                        | QAbstractItemView.EditTrigger.SelectedClicked
                                        | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.categories.setToolTip("Double-click a name to rename the group; the names are saved with the project.")
        self.categories.itemChanged.connect(self._on_categories_item_changed)
        self.categories.setVisible(False)
        fixed = QHBoxLayout()
        fixed.setContentsMargins(0, 0, 0, 0)
        fixed.setSpacing(12)
        fixed.addWidget(_swatch_label(MISSING_COLOUR, "no data"))
        fixed.addWidget(_swatch_label("#ffffff", "selected", SELECTED_COLOUR))
        fixed.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.categories)
        layout.addLayout(fixed)

    def set_categories(self, names, colours, editable: bool = True) -> None:
        """Show one entry per category (None or empty hides the list)."""
        names = list(names or [])
        colours = list(colours or [])
        shown = (self.category_names(), self._colours, self._editable)
        self._names, self._colours, self._editable = list(names), colours, editable
        if shown == (names, colours, editable):
            return  # e.g. just renamed in place: rebuilding would pull the list from under its editor
        self.categories.blockSignals(True)
        self.categories.clear()
        for name, colour in zip(names, colours):
            item = QListWidgetItem(swatch_icon(colour), name)
            flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            if editable:
                flags |= Qt.ItemFlag.ItemIsEditable
            item.setFlags(flags)
            self.categories.addItem(item)
        self.categories.blockSignals(False)
        self.categories.setVisible(bool(names))

    def category_names(self) -> list[str]:
        return [self.categories.item(i).text() for i in range(self.categories.count())]

    def _on_categories_item_changed(self, item: QListWidgetItem) -> None:
        index = self.categories.row(item)
        text = item.text().strip()
        if not text or not 0 <= index < len(self._names):
            self.categories.blockSignals(True)
            item.setText(self._names[index] if 0 <= index < len(self._names) else "")
            self.categories.blockSignals(False)
            return
        if text != self._names[index]:
            self._names[index] = text
            self.category_renamed.emit(index, text)
