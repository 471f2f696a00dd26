"""Qt item models over numpy/pandas data, so tables of any length stay fast.

Views ask the model only for the cells they show; nothing is copied into widgets. A time
series is shown "long": one row per real patient step.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

__all__ = ["DatasetTableModel", "DataFrameModel", "VariableSummaryModel", "PatientListModel",
           "HISTOGRAM_ROLE", "format_value"]

#: Item role holding a variable's histogram counts (ndarray) for the sparkline delegate.
HISTOGRAM_ROLE = Qt.ItemDataRole.UserRole + 1

_MISSING_TEXT = ""


def format_value(value) -> str:
    """A number as a short string; empty for missing values."""
    if value is None:
        return _MISSING_TEXT
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return _MISSING_TEXT
        return f"{value:.4g}"
    return str(value)


class DatasetTableModel(QAbstractTableModel):
    """Rows of a :class:`core.data.Dataset`: table rows, or real patient steps of a series.

    Columns: id (when present), time (series), every feature (header shows the unit) and
    every label. Missing values are empty cells. Sorting reorders an index, not the data.
    """

    def __init__(self, dataset=None, parent=None) -> None:
        super().__init__(parent)
        self._ds = None
        self._rows = np.zeros(0, dtype=np.int64)
        self._steps = None
        self._order = np.zeros(0, dtype=np.int64)
        self._columns: list[tuple[str, str, object]] = []
        if dataset is not None:
            self.set_dataset(dataset)

    def set_dataset(self, dataset) -> None:
        self.beginResetModel()
        self._ds = dataset
        if dataset is None:
            self._rows = np.zeros(0, dtype=np.int64)
            self._steps = None
            self._columns = []
        else:
            if dataset.is_series:
                patient, step = np.nonzero(dataset.step_mask)
                self._rows, self._steps = patient.astype(np.int64), step.astype(np.int64)
            else:
                self._rows, self._steps = np.arange(dataset.n_samples, dtype=np.int64), None
            self._columns = self._make_columns(dataset)
        self._order = np.arange(len(self._rows), dtype=np.int64)
        self.endResetModel()

    def _make_columns(self, ds) -> list[tuple[str, str, object]]:
        cols: list[tuple[str, str, object]] = []
        if ds.ids is not None:
            cols.append((ds.id_col or ("patient" if ds.is_series else "id"), "id", None))
        if ds.is_series and ds.times is not None:
            unit = f" ({ds.time_unit})" if ds.time_unit else ""
            cols.append(((ds.time_col or "time") + unit, "time", None))
        for j, name in enumerate(ds.feature_names):
            unit = ds.units[j] if j < len(ds.units) else ""
            cols.append((f"{name} ({unit})" if unit else name, "feature", j))
        for name in ds.labels:
            cols.append((name, "label", name))
        return cols

    # ---------------------------------------------------------------- Qt API
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self._columns[section][0] if section < len(self._columns) else None
        return str(int(self._order[section]) + 1) if section < len(self._order) else None

    def raw_value(self, row: int, column: int):
        """The value behind a cell (numpy scalar or str), before formatting."""
        r = int(self._order[row])
        patient = int(self._rows[r])
        step = None if self._steps is None else int(self._steps[r])
        _, kind, key = self._columns[column]
        ds = self._ds
        if kind == "id":
            return ds.ids[patient]
        if kind == "time":
            return ds.times[patient, step]
        if kind == "feature":
            v = ds.values[patient, key] if step is None else ds.values[patient, step, key]
            observed = ds.mask[patient, key] if step is None else ds.mask[patient, step, key]
            return v if observed else np.nan
        label = ds.labels[key]
        return label[patient] if step is None or label.ndim == 1 else label[patient, step]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return format_value(self.raw_value(index.row(), index.column()))
        if role == Qt.ItemDataRole.TextAlignmentRole:
            kind = self._columns[index.column()][1]
            if kind in ("feature", "time"):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if self._ds is None or not 0 <= column < len(self._columns):
            return
        self.layoutAboutToBeChanged.emit()
        keys = self._column_array(column)
        if keys.dtype.kind in "fiu":
            keys = keys.astype(float)
            nan_last = np.where(np.isnan(keys), np.inf if order == Qt.SortOrder.AscendingOrder else -np.inf, keys)
            idx = np.argsort(nan_last, kind="stable")
        else:
            idx = np.argsort(keys.astype(str), kind="stable")
        if order == Qt.SortOrder.DescendingOrder:
            idx = idx[::-1]
        self._order = idx.astype(np.int64)
        self.layoutChanged.emit()

    def _column_array(self, column: int) -> np.ndarray:
        _, kind, key = self._columns[column]
        ds, p, s = self._ds, self._rows, self._steps
        if kind == "id":
            return np.asarray(ds.ids)[p]
        if kind == "time":
            return ds.times[p, s]
        if kind == "feature":
            v = ds.values[p, key] if s is None else ds.values[p, s, key]
            m = ds.mask[p, key] if s is None else ds.mask[p, s, key]
            return np.where(m, v, np.nan)
        label = np.asarray(ds.labels[key])
        return label[p] if s is None or label.ndim == 1 else label[p, s]


class DataFrameModel(QAbstractTableModel):
    """A read-only view of a pandas DataFrame (the import preview)."""

    def __init__(self, frame=None, parent=None) -> None:
        super().__init__(parent)
        self._frame = frame

    def set_frame(self, frame) -> None:
        self.beginResetModel()
        self._frame = frame
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() or self._frame is None else len(self._frame)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() or self._frame is None else len(self._frame.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole or self._frame is None:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return str(self._frame.columns[section])
        return str(section + 1)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        value = self._frame.iat[index.row(), index.column()]
        try:
            missing = value is None or (isinstance(value, float) and np.isnan(value))
        except TypeError:
            missing = False
        return "" if missing else format_value(value)


class VariableSummaryModel(QAbstractTableModel):
    """One row per variable: name, unit, missing share, minimum, median, maximum, histogram."""

    HEADERS = ("Variable", "Unit", "Missing", "Minimum", "Median", "Maximum", "Distribution")
    TOOLTIPS = (
        "Name of the measured variable.",
        "Unit of measurement, as given in the data.",
        "Share of rows or time points where this variable was not measured.",
        "Smallest measured value.",
        "Middle value: half of the measurements are below it.",
        "Largest measured value.",
        "How the measured values are spread between the minimum and the maximum.",
    )
    HISTOGRAM_COLUMN = 6

    def __init__(self, summaries=None, parent=None) -> None:
        super().__init__(parent)
        self._items = list(summaries or [])

    def set_summaries(self, summaries) -> None:
        self.beginResetModel()
        self._items = list(summaries)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.TOOLTIPS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        s = self._items[index.row()]
        col = index.column()
        if role == HISTOGRAM_ROLE and col == self.HISTOGRAM_COLUMN:
            return s.counts
        if role == Qt.ItemDataRole.DisplayRole:
            return (s.name, s.unit, f"{s.missing_share:.0%}", format_value(s.minimum),
                    format_value(s.median), format_value(s.maximum), None)[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and 2 <= col <= 5:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and col == 2:
            return f"{s.n_observed} measured values"
        return None


class PatientListModel(QAbstractTableModel):
    """Patients of a time series: id and number of time steps."""

    HEADERS = ("Patient", "Time steps")

    def __init__(self, dataset=None, parent=None) -> None:
        super().__init__(parent)
        self._ids: list[str] = []
        self._lengths = np.zeros(0, dtype=np.int64)
        if dataset is not None:
            self.set_dataset(dataset)

    def set_dataset(self, dataset) -> None:
        self.beginResetModel()
        if dataset is None or not dataset.is_series:
            self._ids, self._lengths = [], np.zeros(0, dtype=np.int64)
        else:
            self._ids = dataset.row_names()  # a stay kept in parts: "id (part k of n)"
            self._lengths = np.asarray(dataset.lengths, dtype=np.int64)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        return self._ids[index.row()] if index.column() == 0 else str(int(self._lengths[index.row()]))
