"""The imported data: every row in a table, and a summary of each variable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QStyledItemDelegate, QTableView,
                               QTabWidget, QVBoxLayout, QWidget)

from ..models import HISTOGRAM_ROLE, DatasetTableModel, VariableSummaryModel

__all__ = ["DataView", "SparklineDelegate"]


class SparklineDelegate(QStyledItemDelegate):
    """Draws a histogram (``HISTOGRAM_ROLE`` counts) as small bars inside a table cell."""

    BAR = QColor("#2e7d6b")

    def paint(self, painter: QPainter, option, index) -> None:
        super().paint(painter, option, index)
        counts = index.data(HISTOGRAM_ROLE)
        if counts is None or len(counts) == 0:
            return
        counts = np.asarray(counts, dtype=float)
        top = counts.max()
        if top <= 0:
            return
        rect = option.rect.adjusted(4, 3, -4, -3)
        width = rect.width() / len(counts)
        painter.save()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.BAR)
        for i, c in enumerate(counts):
            h = rect.height() * c / top
            painter.drawRect(QRectF(rect.left() + i * width, rect.bottom() - h, max(1.0, width - 1), h))
        painter.restore()

    def sizeHint(self, option, index):  # noqa: N802
        size = super().sizeHint(option, index)
        size.setWidth(max(size.width(), 120))
        return size


class DataView(QWidget):
    """Shows a :class:`core.data.Dataset` as rows (lazily, through a model) and as a
    per-variable summary with a distribution sparkline.

    It emits no signals; :meth:`set_dataset` and :meth:`set_summaries` feed it.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table_model = DatasetTableModel(parent=self)
        self.summary_model = VariableSummaryModel(parent=self)

        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setDefaultSectionSize(110)
        self.table.horizontalHeader().setSortIndicatorShown(True)
        # Fixed row heights keep scrolling through a million rows instant.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)

        self.summary = QTableView()
        self.summary.setModel(self.summary_model)
        self.summary.setAlternatingRowColors(True)
        self.summary.setItemDelegateForColumn(VariableSummaryModel.HISTOGRAM_COLUMN, SparklineDelegate(self.summary))
        self.summary.verticalHeader().setVisible(False)
        self.summary.horizontalHeader().setStretchLastSection(True)
        header = self.summary.horizontalHeader()
        for column in range(VariableSummaryModel.HISTOGRAM_COLUMN):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)

        self._caption = QLabel("No data yet. Import a file or open the demo cohort.")
        self._caption.setProperty("role", "hint")

        self.tabs = QTabWidget()
        self.tabs.addTab(self.summary, "Variables")
        self.tabs.addTab(self.table, "All rows")
        self.tabs.setTabToolTip(0, "One line per measured variable: how often it is missing, its range "
                                   "and how its values are spread.")
        self.tabs.setTabToolTip(1, "Every row of the data (for time series: one row per patient and time "
                                   "point). Click a column title to sort.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self._caption)
        layout.addWidget(self.tabs, 1)
        self.setMinimumSize(320, 200)

    def set_dataset(self, dataset) -> None:
        """Show a dataset (None clears the view)."""
        self.table_model.set_dataset(dataset)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        if dataset is None:
            self._caption.setText("No data yet. Import a file or open the demo cohort.")
            self.summary_model.set_summaries([])
            return
        if dataset.is_series:
            what = (f"{dataset.n_patients} patients, {dataset.n_points} time points, "
                    f"{dataset.n_features} variables")
        else:
            what = f"{dataset.n_samples} rows, {dataset.n_features} variables"
        source = f" from {Path(dataset.source).name}" if dataset.source else ""
        self._caption.setText(what + source)

    def set_summaries(self, summaries) -> None:
        """Show :class:`dpsom_gui.data_summary.VariableSummary` items in the Variables tab."""
        self.summary_model.set_summaries(summaries)
