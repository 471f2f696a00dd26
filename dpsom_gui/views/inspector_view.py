"""The selected cells up close: their patients, their profile against the cohort, their outcomes."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableView,
                               QTableWidget, QTableWidgetItem, QTabWidget, QToolTip, QVBoxLayout, QWidget)

from ..models import DataFrameModel

__all__ = ["InspectorView"]

_MEASURED = "#3b6ea5"
_MODEL = "#e6503c"


def _fmt(value: float, unit: str = "") -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.3g}"
    return f"{text} {unit}" if unit else text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _category(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class InspectorView(QWidget):
    """Shows what is in the cells selected on the map.

    * **Patients**: one line per time point (or row) in the cells, with its cell, how sure
      the model is, and the outcomes. Choosing a line shows that patient elsewhere.
    * **Profile**: for every variable, how far the cells' patients are from the whole cohort,
      in cohort standard deviations: bars for the measured values, red dots for the cells'
      typical profile as the model pictures it. Hover for the values in clinical units.
    * **Outcomes**: rate or mean of every outcome in the cells with its 95 % interval,
      beside the cohort's; intervals count patients (a patient's hours are not independent),
      and categories (a health state) show their commonest values and shares, never a mean.

    It is fed a :class:`~dpsom_gui.map_explorer.SelectionSummary` by :meth:`set_selection`.

    Signals
    -------
    row_activated(int, int)
        A line was chosen: (patient or row index in the data, time step or -1).
    export_requested
        The user asked to save the lines of the selection as CSV.
    """

    row_activated = Signal(int, int)
    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._summary = None
        self._title = QLabel("Select cells on the map (click, Ctrl+click, or drag a rectangle) to see "
                             "their patients here.")
        self._title.setWordWrap(True)
        self._title.setProperty("role", "hint")
        self.export_button = QPushButton("Export these lines…")
        self.export_button.setToolTip("Save the lines of the selected cells (cell, certainty, patient and time) "
                                      "as a CSV file for a spreadsheet.")
        self.export_button.clicked.connect(self.export_requested)
        self.export_button.setEnabled(False)

        self.table_model = DataFrameModel(parent=self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setToolTip("Choose a line to show that patient's measurements.")
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_changed)

        self.profile_plot = pg.PlotWidget(background="w")
        self.profile_plot.setMenuEnabled(False)
        self.profile_plot.setMouseEnabled(False, False)
        self.profile_plot.hideButtons()
        self.profile_plot.showGrid(x=True, alpha=0.2)
        self.profile_plot.setLabel("bottom", "difference from all patients (standard deviations)")
        self.profile_plot.addItem(pg.InfiniteLine(0, angle=90, pen=pg.mkPen("#90a4ae")))
        for axis in ("left", "bottom"):
            self.profile_plot.getAxis(axis).setPen(pg.mkPen("#90a4ae"))
            self.profile_plot.getAxis(axis).setTextPen(pg.mkPen("#37474f"))
        self._bars = pg.BarGraphItem(x0=[], y=[], height=0.6, width=[], brush=_MEASURED, pen=None)
        self._dots = pg.ScatterPlotItem(size=9, symbol="o", brush=pg.mkBrush(_MODEL), pen=pg.mkPen("w"))
        self.profile_plot.addItem(self._bars)
        self.profile_plot.addItem(self._dots)
        self.profile_plot.scene().sigMouseMoved.connect(self._on_profile_mouse_moved)
        profile_box = QWidget()
        profile_layout = QVBoxLayout(profile_box)
        profile_layout.setContentsMargins(0, 0, 0, 0)
        key = QLabel(f'<span style="color:{_MEASURED}">■</span> measured in these cells &nbsp; '
                     f'<span style="color:{_MODEL}">●</span> the cells\' typical profile (model)')
        key.setProperty("role", "hint")
        profile_layout.addWidget(key)
        profile_layout.addWidget(self.profile_plot, 1)

        self.outcome_table = QTableWidget(0, 5)
        self.outcome_table.setHorizontalHeaderLabels(["Outcome", "In these cells", "95% interval or shares",
                                                      "All patients", "Based on"])
        tips = ["What happened (the model never saw it).",
                "Share of time points with the outcome (or its mean) in the selected cells; for a "
                "category, the most frequent one and its share.",
                "Range that holds the true value with 95% confidence. It counts patients, not hours: "
                "a patient's hours are alike, so ten patients give a wide range however long they stayed. "
                "For a category: the shares of the commonest categories.",
                "The same figure over the whole cohort, for comparison.",
                "How many patients and time points with a known outcome the figure rests on."]
        for c, tip in enumerate(tips):
            self.outcome_table.horizontalHeaderItem(c).setToolTip(tip)
        self.outcome_note = QLabel("Intervals count patients: the hours of one patient are not independent "
                                   "evidence.")
        self.outcome_note.setProperty("role", "hint")
        self.outcome_note.setWordWrap(True)
        self.outcome_table.verticalHeader().setVisible(False)
        self.outcome_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.outcome_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Patients")
        self.tabs.addTab(profile_box, "Profile")
        outcome_box = QWidget()
        outcome_layout = QVBoxLayout(outcome_box)
        outcome_layout.setContentsMargins(0, 0, 0, 0)
        outcome_layout.addWidget(self.outcome_table, 1)
        outcome_layout.addWidget(self.outcome_note)
        self.tabs.addTab(outcome_box, "Outcomes")
        self.tabs.setTabToolTip(0, "Every time point (or row) in the selected cells.")
        self.tabs.setTabToolTip(1, "How the selected cells' patients differ from all patients, variable by variable.")
        self.tabs.setTabToolTip(2, "How often each outcome happened in the selected cells.")

        head = QHBoxLayout()
        head.addWidget(self._title, 1)
        head.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(head)
        layout.addWidget(self.tabs, 1)
        self.setMinimumSize(320, 240)

    # ------------------------------------------------------------------ input
    def set_selection(self, summary) -> None:
        """Show a :class:`~dpsom_gui.map_explorer.SelectionSummary` (None or no cells clears)."""
        self._summary = summary if summary is not None and summary.nodes else None
        s = self._summary
        self.export_button.setEnabled(s is not None and s.n_points > 0)
        if s is None:
            self._title.setText("Select cells on the map (click, Ctrl+click, or drag a rectangle) to see "
                                "their patients here.")
            self.table_model.set_frame(None)
            self._bars.setOpts(x0=[], y=[], width=[])
            self._dots.setData([], [])
            self.outcome_table.setRowCount(0)
            return
        cells = f"cell {s.nodes[0]}" if len(s.nodes) == 1 else f"{len(s.nodes)} cells"
        series = bool((s.step >= 0).any())
        who = f"{_count(s.n_patients, 'patient')}, {_count(s.n_points, 'time point')}" if series \
            else _count(s.n_points, "row")
        self._title.setText(f"Selected: {cells}, {who}.")
        self.table_model.set_frame(s.frame)
        self._show_profile(s.profile)
        self._show_outcomes(s.outcomes)

    # ----------------------------------------------------------------- output
    @property
    def summary(self):
        return self._summary

    def profile_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Bar lengths (measured) and dot positions (model), one per variable (z units)."""
        widths = np.asarray(self._bars.opts.get("width", []), dtype=float)
        x, _ = self._dots.getData()
        return widths, (np.zeros(0) if x is None else np.asarray(x))

    def outcome_cells(self) -> list[list[str]]:
        t = self.outcome_table
        return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]

    def select_line(self, row: int) -> None:
        """Choose line ``row`` of the patients table (as a click would)."""
        self.tabs.setCurrentIndex(0)
        self.table.selectRow(row)

    # ---------------------------------------------------------------- drawing
    def _show_profile(self, rows) -> None:
        names = [r.name for r in rows]
        y = np.arange(len(rows), dtype=float)[::-1]
        measured = np.array([r.z_measured for r in rows], dtype=float)
        model = np.array([r.z_model for r in rows], dtype=float)
        self._bars.setOpts(x0=np.zeros(len(rows)), y=y, width=np.nan_to_num(measured), height=0.6)
        finite = np.isfinite(model)
        self._dots.setData(model[finite], y[finite])
        self.profile_plot.getAxis("left").setTicks([[(float(yy), n) for yy, n in zip(y, names)]])
        span = np.nanmax(np.abs(np.concatenate([measured, model, [1.0]])))
        self.profile_plot.setXRange(-span * 1.1, span * 1.1, padding=0)
        self.profile_plot.setYRange(-0.7, len(rows) - 0.3, padding=0)

    def _show_outcomes(self, rows) -> None:
        t = self.outcome_table
        t.setRowCount(len(rows))
        series = self._summary is not None and bool((self._summary.step >= 0).any())
        for r, o in enumerate(rows):
            if o.kind == "categorical":
                here = (f"{_category(o.mean)} ({100 * o.categories[0][1]:.0f}%)" if o.categories else "–")
                ci = ", ".join(f"{_category(v)}: {100 * share:.0f}%" for v, share in o.categories[:3])
                cohort = _category(o.cohort_mean)
            elif o.kind == "binary":
                here, ci = f"{100 * o.mean:.1f}%" if np.isfinite(o.mean) else "–", \
                    f"{100 * o.lower:.1f}–{100 * o.upper:.1f}%" if np.isfinite(o.lower) else "–"
                cohort = f"{100 * o.cohort_mean:.1f}%"
            else:
                here, ci = _fmt(o.mean), f"{_fmt(o.lower)} – {_fmt(o.upper)}" if np.isfinite(o.lower) else "–"
                cohort = _fmt(o.cohort_mean)
            basis = (f"{_count(o.n_patients, 'patient')}, {o.count} points" if series and o.n_patients
                     else _count(o.count, "row"))
            for c, text in enumerate((o.title, here, ci, cohort, basis)):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                t.setItem(r, c, item)
        t.resizeColumnsToContents()
        t.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.outcome_note.setVisible(series)

    # ---------------------------------------------------------------- events
    def _on_table_current_changed(self, current, _previous) -> None:
        s = self._summary
        if s is None or not current.isValid() or current.row() >= s.n_points:
            return
        self.row_activated.emit(int(s.patient[current.row()]), int(s.step[current.row()]))

    def _on_profile_mouse_moved(self, scene_pos) -> None:
        s = self._summary
        if s is None or not s.profile:
            return
        point = self.profile_plot.getPlotItem().vb.mapSceneToView(scene_pos)
        index = len(s.profile) - 1 - int(round(point.y()))
        if not 0 <= index < len(s.profile):
            return
        r = s.profile[index]
        text = (f"{r.name}: measured mean {_fmt(r.measured, r.unit)} in these cells "
                f"({r.n_measured} values)\nall patients: mean {_fmt(r.cohort_mean, r.unit)}, "
                f"median {_fmt(r.cohort_median, r.unit)}")
        if np.isfinite(r.model):
            text += f"\nthe cells' typical profile (model): {_fmt(r.model, r.unit)}"
        QToolTip.showText(self.profile_plot.mapToGlobal(self.profile_plot.mapFromScene(scene_pos)), text,
                          self.profile_plot)
