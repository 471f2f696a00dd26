"""One patient's variables over time, one small plot per variable sharing the time axis."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QLineEdit, QScrollArea, QSplitter,
                               QTableView, QVBoxLayout, QWidget)

from ..models import PatientListModel

__all__ = ["PatientPlotView"]

_ROW_HEIGHT = 110
_STRIP_HEIGHT = 80
_LINE = "#3b6ea5"
_STRIP = ("#d9c8e6", "#b79ccf")  # neighbouring stays alternate between two shades
_BUILD_BUDGET_S = 0.025  # plot creation per turn of the event loop (the window answers in between)


class PatientPlotView(QWidget):
    """Lists the patients of a time series and plots the chosen one's measurements.

    Only measured values are drawn (dots joined by a line); padding and unmeasured time
    points are left out. Plot items are created once per dataset and their data replaced
    when another patient is chosen. When map assignments are given, the top row is a strip
    of the map cells the patient passed through: one band per stay in a cell, labelled with
    the cell's number (a cell number is a name, not a measurement, so it gets no scale).

    Signals
    -------
    patient_selected(int)
        Index of the patient now shown.
    """

    patient_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ds = None
        self._bmu = None
        self._patient: int | None = None
        self._curves: list[pg.PlotDataItem] = []
        self._feature_plots: list[pg.PlotItem] = []
        self._titles: list[str] = []
        self._strip: pg.PlotItem | None = None
        self._strip_shown = False
        self._cell_bars: pg.BarGraphItem | None = None
        self._cell_texts: list[pg.TextItem] = []
        self._runs = (np.zeros(0), np.zeros(0), np.zeros(0, dtype=int))

        self._list_model = PatientListModel(parent=self)
        self._proxy = QSortFilterProxyModel(self)
        self._proxy.setSourceModel(self._list_model)
        self._proxy.setFilterKeyColumn(0)
        self._proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._filter = QLineEdit()
        self._filter.setPlaceholderText("Find patient…")
        self._filter.setToolTip("Type part of a patient identifier to narrow the list.")
        self._filter.setClearButtonEnabled(True)
        self._filter.textChanged.connect(self._proxy.setFilterFixedString)
        self._list = QTableView()
        self._list.setModel(self._proxy)
        self._list.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._list.verticalHeader().setVisible(False)
        self._list.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self._list.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        # Sized from the first rows only: measuring every patient's row (thousands of calls
        # into Python) took a quarter of a second each time new data arrived.
        self._list.horizontalHeader().setResizeContentsPrecision(100)
        self._list.selectionModel().currentRowChanged.connect(self._on_list_current_changed)

        self._layout = pg.GraphicsLayoutWidget()
        self._layout.setBackground("w")
        self._build_timer = QTimer(self)
        self._build_timer.setSingleShot(True)
        self._build_timer.setInterval(0)
        self._build_timer.timeout.connect(lambda: self._build_some(budget=_BUILD_BUDGET_S))
        # Linked views map ranges through their on-screen geometry, so while the layout is
        # still moving they pull each other's time range narrower: once it has settled (after
        # any resize), the whole stay is shown again.
        self._refit_timer = QTimer(self)
        self._refit_timer.setSingleShot(True)
        self._refit_timer.setInterval(0)
        self._refit_timer.timeout.connect(self._fit_time_axis)
        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setWidget(self._layout)
        self._title = QLabel("Choose a patient on the left to see their measurements over time.")
        self._title.setProperty("role", "hint")
        self._title.setWordWrap(True)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self._filter)
        left_layout.addWidget(self._list, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self._title)
        right_layout.addWidget(self._scroll, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([180, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(splitter)
        self.setMinimumSize(360, 240)

    # ------------------------------------------------------------------ input
    def set_dataset(self, dataset) -> None:
        """Show the patients of a time series (tables have no time axis: nothing to plot)."""
        self._ds = dataset if dataset is not None and dataset.is_series else None
        self._bmu = None
        self._patient = None
        self._list_model.set_dataset(self._ds)
        self._show_strip(False)
        self._plan_plots()
        if dataset is not None and not dataset.is_series:
            self._title.setText("These data have no time axis, so there is nothing to plot over time.")
        elif self._ds is not None and self._ds.n_samples:
            self.show_patient(0)

    def set_assignments(self, bmu) -> None:
        """Map cell of every patient step, ``(n_patients, n_steps)`` int, or None to hide."""
        self._bmu = None if bmu is None or self._ds is None else np.asarray(bmu)
        self._show_strip(self._bmu is not None)
        if self._patient is not None and self._strip_shown:  # the measurements stay as drawn
            n = int(self._ds.lengths[self._patient])
            self._show_cells(self._times(self._patient), self._bmu[self._patient, :n])

    def show_patient(self, index: int) -> None:
        """Plot patient ``index`` (0-based position in the dataset)."""
        ds = self._ds
        if ds is None or not 0 <= index < ds.n_samples:
            return
        self._patient = index
        n = int(ds.lengths[index])
        if self._strip_shown:
            self._show_cells(self._times(index), self._bmu[index, :n])
        for j in range(len(self._curves)):
            self._fill_curve(j)
        self._fit_time_axis()
        pid = ds.row_name(index)
        self._title.setText(f"Patient {pid}: {n} time steps")
        self._select_row(index)
        self.patient_selected.emit(index)

    def finish_plots(self) -> None:
        """Create the plots still waiting now instead of over the next turns of the event loop."""
        self._build_timer.stop()
        self._build_some(budget=None)

    # ----------------------------------------------------------------- output
    @property
    def current_patient(self) -> int | None:
        return self._patient

    @property
    def plots_ready(self) -> bool:
        """True once every variable of the dataset has its plot."""
        return len(self._feature_plots) == len(self._titles)

    def curve_data(self, feature: int) -> tuple[np.ndarray, np.ndarray]:
        """What the plot of one variable currently shows (times, values)."""
        self.finish_plots()
        x, y = self._curves[feature].getData()
        return (np.zeros(0) if x is None else np.asarray(x)), (np.zeros(0) if y is None else np.asarray(y))

    def cell_runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stays drawn in the cell strip: start time, duration and cell of each."""
        return self._runs

    @property
    def patient_count(self) -> int:
        return self._proxy.rowCount()

    def set_filter(self, text: str) -> None:
        self._filter.setText(text)

    @property
    def _plots(self) -> list[pg.PlotItem]:
        """The plots shown, top to bottom: the cell strip (when shown), then one per variable."""
        return ([self._strip] if self._strip_shown else []) + self._feature_plots

    # ---------------------------------------------------------------- drawing
    # Plot items are costly to create (tens of ms each), so they are made once and kept: a new
    # dataset with as many variables renames them, the cell strip is added to the layout or
    # taken out of it, and missing plots are created a few at a time between events so that
    # opening a project never holds the window for the whole set.
    def _plan_plots(self) -> None:
        ds = self._ds
        titles = []
        if ds is not None:
            for j, name in enumerate(ds.feature_names):
                unit = ds.units[j] if j < len(ds.units) else ""
                titles.append(f"{name} ({unit})" if unit else name)
        self._titles = titles
        while len(self._feature_plots) > len(titles):
            plot = self._feature_plots.pop()
            self._curves.pop()
            self._layout.ci.removeItem(plot)
        for plot, curve, title in zip(self._feature_plots, self._curves, titles):
            plot.setTitle(title, size="9pt", color="#37474f", justify="left")
            curve.setData([], [])
        self._label_time_axis()
        self._size_layout()
        self._build_timer.stop()
        self._build_some(budget=_BUILD_BUDGET_S)

    def _build_some(self, budget: float | None) -> None:
        """Create missing variable plots until ``budget`` seconds are spent (None: all)."""
        started = time.perf_counter()
        made = False
        while len(self._feature_plots) < len(self._titles):
            if budget is not None and made and time.perf_counter() - started > budget:
                self._build_timer.start()
                return
            j = len(self._feature_plots)
            plot = self._add_plot(j + 1, self._titles[j], self._feature_plots[0] if j else None)
            self._feature_plots.append(plot)
            plot.vb.sigResized.connect(lambda _vb: self._refit_timer.start())
            # No dynamic range limit: with one, every change of the value axis sets the dots
            # again (tens of ms per plot), and measured values never reach absurd magnitudes.
            self._curves.append(plot.plot(pen=pg.mkPen(_LINE, width=1.3), symbol="o", symbolSize=4,
                                          symbolBrush=_LINE, symbolPen=None, dynamicRangeLimit=None))
            self._fill_curve(j)
            if j == 0:
                if self._strip is not None:
                    self._strip.setXLink(plot)
                self._fit_time_axis()
            made = True
        if made:
            self._label_time_axis()

    def _label_time_axis(self) -> None:
        ds = self._ds
        for plot in self._feature_plots[:-1]:
            plot.showLabel("bottom", False)
        if ds is not None and self._feature_plots and self.plots_ready:
            time_label = ds.time_col or "time"
            self._feature_plots[-1].setLabel("bottom", f"{time_label} ({ds.time_unit})" if ds.time_unit
                                             else time_label)

    def _size_layout(self) -> None:
        rows = len(self._titles)
        self._layout.setMinimumHeight(_ROW_HEIGHT * rows + (_STRIP_HEIGHT if self._strip_shown else 0))

    def _fill_curve(self, j: int) -> None:
        """Give variable ``j``'s curve the measured values of the patient shown."""
        ds, index = self._ds, self._patient
        if ds is None or index is None or j >= len(self._curves):
            return
        n = int(ds.lengths[index])
        seen = ds.mask[index, :n, j]
        self._curves[j].setData(self._times(index)[seen], ds.values[index, :n, j][seen].astype(float))
        # Only the value axis follows the data by itself: the time axis is shared, and letting
        # every plot fit it would make each fit move all the others (quadratic in the plots).
        self._feature_plots[j].vb.enableAutoRange(x=False, y=True)

    def _fit_time_axis(self) -> None:
        """Show the chosen patient's whole stay on the shared time axis (set once, followed by all)."""
        if self._patient is None or not self._feature_plots:
            return
        times = self._times(self._patient)
        times = times[np.isfinite(times)]
        if times.size:
            gap = float(np.median(np.diff(times))) if times.size > 1 else 1.0
            self._feature_plots[0].setXRange(times[0] - gap / 2, times[-1] + gap / 2, padding=0.02)

    def _times(self, index: int) -> np.ndarray:
        ds = self._ds
        n = int(ds.lengths[index])
        return ds.times[index, :n] if ds.times is not None else np.arange(n, dtype=float)

    def _show_strip(self, show: bool) -> None:
        """Put the map-cell strip above the plots or take it out (created once, on first use)."""
        if show == self._strip_shown:
            return
        if show and self._strip is None:
            self._strip = self._make_strip()
        if show:
            self._layout.ci.addItem(self._strip, row=0, col=0)
            if self._feature_plots:
                self._strip.setXLink(self._feature_plots[0])
        else:
            self._layout.ci.removeItem(self._strip)
            for text in self._cell_texts:
                self._strip.removeItem(text)
            self._cell_texts = []
            self._runs = (np.zeros(0), np.zeros(0), np.zeros(0, dtype=int))
        self._strip_shown = show
        self._size_layout()

    def _make_strip(self) -> pg.PlotItem:
        plot = pg.PlotItem(enableMenu=False)
        self._style_plot(plot, "map cells")
        # The left axis stays (empty) so the strip lines up with the plots below it.
        plot.getAxis("left").setTicks([[]])
        plot.getAxis("left").setStyle(showValues=False)
        plot.getAxis("left").setPen(pg.mkPen(None))
        plot.showGrid(x=False, y=False)
        plot.setMouseEnabled(x=True, y=False)
        plot.setYRange(0, 1, padding=0)
        plot.setMaximumHeight(_STRIP_HEIGHT)
        self._cell_bars = pg.BarGraphItem(x0=[], y0=[], width=[], height=[], pen=pg.mkPen("w", width=1))
        plot.addItem(self._cell_bars)
        plot.vb.sigResized.connect(lambda _vb: self._label_cells())
        return plot

    def _show_cells(self, times: np.ndarray, nodes: np.ndarray) -> None:
        plot = self._strip
        for text in self._cell_texts:
            plot.removeItem(text)
        self._cell_texts = []
        n = nodes.size
        if n == 0:
            self._cell_bars.setOpts(x0=[], y0=[], width=[], height=[])
            self._runs = (np.zeros(0), np.zeros(0), np.zeros(0, dtype=int))
            return
        t = np.asarray(times, dtype=float)
        gap = float(np.median(np.diff(t))) if n > 1 else 1.0
        edges = np.concatenate([[t[0] - gap / 2], (t[:-1] + t[1:]) / 2, [t[-1] + gap / 2]])
        starts = np.concatenate([[0], np.flatnonzero(np.diff(nodes)) + 1])
        ends = np.concatenate([starts[1:], [n]])
        x0, width = edges[starts], edges[ends] - edges[starts]
        cells = nodes[starts].astype(int)
        brushes = [pg.mkBrush(_STRIP[i % 2]) for i in range(starts.size)]
        self._cell_bars.setOpts(x0=x0, y0=np.zeros(starts.size), width=width, height=np.ones(starts.size),
                                brushes=brushes)
        self._runs = (x0, width, cells)
        self._label_cells()

    def _label_cells(self) -> None:
        """Write each stay's cell number in its band where it fits at the strip's width now."""
        if not self._strip_shown:
            return
        plot = self._strip
        for text in self._cell_texts:
            plot.removeItem(text)
        self._cell_texts = []
        x0, width, cells = self._runs
        if not cells.size:
            return
        span = float(x0[-1] + width[-1] - x0[0])
        pixels = plot.vb.width() / span if plot.vb.width() > 0 and span > 0 else 0.0
        for x, w, cell in zip(x0, width, cells):
            room = w * pixels if pixels else (w / span) * 300.0
            if room >= 8.0 * len(str(cell)) + 6.0:  # a number only where it fits
                text = pg.TextItem(str(cell), color="#37474f", anchor=(0.5, 0.5))
                text.setPos(x + w / 2, 0.5)
                plot.addItem(text)
                self._cell_texts.append(text)

    def _add_plot(self, row: int, title: str, link_to) -> pg.PlotItem:
        plot = self._layout.addPlot(row=row, col=0, enableMenu=False)  # no menu: its widgets cost time
        self._style_plot(plot, title)
        if link_to is not None:
            plot.setXLink(link_to)
        return plot

    @staticmethod
    def _style_plot(plot: pg.PlotItem, title: str) -> None:
        plot.setMenuEnabled(False)
        plot.showGrid(x=True, y=True, alpha=0.12)
        plot.setTitle(title, size="9pt", color="#37474f", justify="left")
        plot.getAxis("left").setWidth(48)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setPen(pg.mkPen("#90a4ae"))
            plot.getAxis(axis).setTextPen(pg.mkPen("#37474f"))

    # ---------------------------------------------------------------- events
    def _select_row(self, index: int) -> None:
        source = self._list_model.index(index, 0)
        proxy_index = self._proxy.mapFromSource(source)
        if proxy_index.isValid() and self._list.currentIndex().row() != proxy_index.row():
            self._list.blockSignals(True)
            self._list.selectionModel().blockSignals(True)
            self._list.setCurrentIndex(proxy_index)
            self._list.selectionModel().blockSignals(False)
            self._list.blockSignals(False)

    def _on_list_current_changed(self, current, _previous) -> None:
        if current.isValid():
            source = self._proxy.mapToSource(current)
            if source.row() != self._patient:
                self.show_patient(source.row())
