"""Patients moving over the map through time: trails, soft assignment, forecasts, a linked plot."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QElapsedTimer, QItemSelection, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout, QGraphicsItem, QHBoxLayout,
                               QLabel, QLineEdit, QListWidget, QListWidgetItem, QMenu, QSlider,
                               QSpinBox, QSplitter, QToolButton, QVBoxLayout, QWidget, QWidgetAction)

from ..analysis_workers import AnalysisWorker, ForecastRequest, compute_forecast, forecast_task
from ..resources import icon
from ..workers import WorkerThread, split_failure
from .map_layers import label_title
from .map_overlays import ForecastItem, HeatItem, TrailsItem, patient_colour
from .som_map_view import SomMapView

__all__ = ["TrajectoryView", "SPEEDS", "MAX_FORECAST_PATIENTS", "FORECAST_SAMPLES", "MAX_PLOT_PATIENTS"]

#: Playback speeds offered, in time steps per second.
SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
#: Forecasts are computed for at most this many of the chosen patients (the first ones).
MAX_FORECAST_PATIENTS = 5
#: Sampled futures per forecast (their spread shows the uncertainty).
FORECAST_SAMPLES = 12
#: A cell gets a forecast ring when at least this share of the sampled futures reaches it.
RING_MIN_SHARE = 0.15
#: The linked plot shows the measurements of at most this many chosen patients (the first ones).
MAX_PLOT_PATIENTS = 10
#: What the "Smoothed path" option means, in the words of its tooltip.
SMOOTH_TIP = ("On: each patient follows their most likely route over the map, which moves to another cell "
              "only when the change lasts; a cell matched for a single step and then left is passed over. "
              "Off: the best-matching cell of every single step, with every back-and-forth jump.")
_SLIDER_SCALE = 10  # slider ticks per time step, so scrubbing is smooth
_MAP_MIN_HEIGHT = 120  # px; the map keeps its aspect and shrinks before anything overlaps
_KEPT_FORECASTS = 64  # computed forecasts kept for stepping back and forth

log = logging.getLogger(__name__)


def _shrinkable(box: QComboBox, characters: int = 8) -> None:
    """Let a combo box be narrower than its longest entry (the open list still shows it whole)."""
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(characters)


class TrajectoryView(QWidget):
    """Plays chosen patients' journeys over the map.

    Each patient is a coloured marker that moves from cell to cell with a fading trail (paths
    cross a toroidal map's edge as two pieces, never as a line across the map). By default it
    follows the patient's smoothed path (``MapExplorer.node_paths``); "Smoothed path" off
    shows the best-matching cell of every step instead. The soft
    assignment of the chosen patients at the current step glows in orange, and the model's
    forecast of the next steps is drawn ahead of each of the first patients: a dashed path
    and rings where sampled futures land (bigger rings: more samples). Below, the first
    variable plot shows the chosen patients' measurements with a cursor at the current time
    and the forecast ahead of it (line and 10-90 % band) for the first ten patients.

    A ``QTimer`` advances the time by wall clock at the chosen speed (steps per second);
    markers are created once and only their data change from frame to frame. Forecasts are
    computed on a worker thread (one at a time, the latest wish next), so playing never
    waits for the model; until a new one arrives the previous one stays drawn. What could
    not be computed is logged and named in a line under the map.

    The view draws what its *source* (a :class:`dpsom_gui.map_explorer.MapExplorer`) computes:
    tracks, soft assignments, forecasts and patient filters.

    Signals
    -------
    time_changed(float)
        The time index (in steps, fractional while playing) moved.
    playing_changed(bool)
    patients_changed(list)
        The chosen patients (dataset indices).
    patient_activated(int)
        A patient was double-clicked in the list (to show all their measurements elsewhere).
    export_requested
        The user asked to save the animation as a GIF.
    forecast_ready
        A forecast computed in the background has been drawn (or has failed) and its
        thread has ended.
    """

    time_changed = Signal(float)
    playing_changed = Signal(bool)
    patients_changed = Signal(list)
    patient_activated = Signal(int)
    export_requested = Signal()
    forecast_ready = Signal()

    def __init__(self, parent: QWidget | None = None, fps: float = 30.0) -> None:
        super().__init__(parent)
        self._source = None
        self._patients: list[int] = []
        self._tracks: list = []
        self._time = 0.0
        self._end = 0.0
        self._speed = 2.0
        self._forecast_step: int | None = None
        self._rendering = False
        self._forecast = None
        self._lines = np.zeros((0, 4))
        self._t0 = self._t1 = np.zeros(0)
        self._owner = np.zeros(0, dtype=int)
        self.frames_drawn = 0
        self._frames: OrderedDict = OrderedDict()  # ForecastRequest -> ForecastFrame
        self._wanted: ForecastRequest | None = None
        self._job: WorkerThread | None = None
        self._job_request: ForecastRequest | None = None
        self._job_outcome = None
        self._bands = (None, None)

        # ------------------------------------------------------------ patient picker
        self._search = QLineEdit()
        self._search.setPlaceholderText("Find patient by id…")
        self._search.setClearButtonEnabled(True)
        self._search.setToolTip("Type part of a patient identifier to narrow the list.")
        self._outcome_box = QComboBox()
        self._outcome_box.setToolTip("Only list patients in whom this outcome happened at some time.")
        self._node_box = QComboBox()
        self._node_box.addItem("anywhere on the map", "")
        self._node_box.addItem("through the cells selected on this map", "selected")
        self._node_box.setToolTip("Only list patients who passed through the cells you selected on the map "
                                  "above (click or drag on it).")
        for box in (self._outcome_box, self._node_box):
            _shrinkable(box)
        self._list = QListWidget()
        self._list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._list.setToolTip("Choose one or several patients (Ctrl or Shift to choose more). "
                              "Double-click to see all of a patient's measurements.")
        self._list_count = QLabel("")
        self._list_count.setProperty("role", "hint")
        self._list_count.setWordWrap(True)  # the hint before training is a sentence: wrap, never clip
        for widget in (self._search,):
            widget.textChanged.connect(self._on_filters_changed)
        self._outcome_box.currentIndexChanged.connect(self._on_filters_changed)
        self._node_box.currentIndexChanged.connect(self._on_filters_changed)
        self._list.itemSelectionChanged.connect(self._on_list_selection_changed)
        self._list.itemDoubleClicked.connect(lambda item: self.patient_activated.emit(int(item.data(Qt.ItemDataRole.UserRole))))
        picker = QWidget()
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        # Each field under its label: side by side they were cut in the dock beside the map.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        form.addRow(self._search)
        form.addRow("Who had", self._outcome_box)
        form.addRow("Passing", self._node_box)
        left = QVBoxLayout(picker)
        left.setContentsMargins(0, 0, 0, 0)
        left.addLayout(form)
        left.addWidget(self._list, 1)
        left.addWidget(self._list_count)

        # ------------------------------------------------------------------- map
        self.map = SomMapView(hz=fps)
        self.map.set_compact(True)
        # In a short dock the splitter gives the map less than its compact minimum height; a
        # taller minimum would make the map spill over the plot's variable chooser below it.
        self.map.setMinimumHeight(_MAP_MIN_HEIGHT)
        self._heat = HeatItem()
        self._heat.setZValue(10)
        self._trails = TrailsItem()
        self._trails.setZValue(20)
        self._forecast_item = ForecastItem()
        self._forecast_item.setZValue(25)
        self._markers = pg.ScatterPlotItem(size=14, pxMode=True, symbol="o", pen=pg.mkPen("w", width=1.5))
        self._markers.setZValue(30)
        self._brushes: list = []
        self.map.selection_changed.connect(lambda _nodes: self._on_filters_changed())
        self.map.layer_requested.connect(self._on_map_layer_requested)
        #: The project's annotations (saved supercluster names), kept up to date by the window.
        self.annotations: dict = {}

        # -------------------------------------------------------------- transport
        self.play_button = QToolButton()
        self.play_button.setCheckable(True)
        self.play_button.setIcon(icon("start"))
        self.play_button.setToolTip("Play or pause the journey (Space).")
        space = QShortcut(QKeySequence(Qt.Key.Key_Space), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        space.activated.connect(self.play_button.click)
        self.play_button.toggled.connect(self._on_play_button_toggled)
        self.back_button = QToolButton()
        self.back_button.setText("◀")
        self.back_button.setToolTip("One time step back.")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button = QToolButton()
        self.forward_button.setText("▶")
        self.forward_button.setToolTip("One time step forward.")
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Drag to move through time.")
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.speed_box = QComboBox()
        for s in SPEEDS:
            self.speed_box.addItem(f"{s:g}/s", s)
        self.speed_box.setCurrentIndex(SPEEDS.index(2.0))
        self.speed_box.setToolTip("Playing speed: how many time steps play per second.")
        self.speed_box.currentIndexChanged.connect(lambda i: self.set_speed(self.speed_box.itemData(i)))
        _shrinkable(self.speed_box, 3)
        self.slider.setMinimumWidth(70)
        # On a line of its own (one line always, so nothing below or above it moves): beside
        # the controls of a narrow dock it was cut to a few letters.
        self._time_label = QLabel("")
        self._time_label.setProperty("role", "hint")
        self.trail_box = QSpinBox()
        self.trail_box.setRange(1, 48)
        self.trail_box.setValue(6)
        self.trail_box.setSuffix(" steps")
        self.trail_box.setToolTip("How far back the fading trail reaches.")
        self.trail_box.valueChanged.connect(lambda _v: self._draw_frame())
        self.heat_check = QCheckBox("Soft assignment")
        self.heat_check.setChecked(True)
        self.heat_check.setToolTip("Glow over the cells the model finds likely for the chosen patients now "
                                   "(its soft assignment).")
        self.heat_check.toggled.connect(lambda _on: self._draw_frame())
        self.smooth_check = QCheckBox("Smoothed path")
        self.smooth_check.setChecked(True)
        self.smooth_check.setToolTip(SMOOTH_TIP)
        self.smooth_check.toggled.connect(self._on_smooth_toggled)
        self.forecast_check = QCheckBox("Forecast")
        self.forecast_check.setChecked(True)
        self.forecast_check.setToolTip(f"Draw the model's forecast of the next steps for the first "
                                       f"{MAX_FORECAST_PATIENTS} chosen patients: a dashed path and rings where "
                                       "sampled futures land. While the journey plays, the expected path is "
                                       "drawn alone; pause, step or scrub to see the sampled futures.")
        self.forecast_check.toggled.connect(lambda _on: self._draw_frame(force_forecast=True))
        self.horizon_box = QSpinBox()
        self.horizon_box.setRange(1, 24)
        self.horizon_box.setValue(6)
        self.horizon_box.setSuffix(" steps ahead")
        self.horizon_box.setToolTip("How many steps the forecast looks ahead.")
        self.horizon_box.valueChanged.connect(lambda _v: self._draw_frame(force_forecast=True))
        self.export_button = QToolButton()
        self.export_button.setText("GIF…")
        self.export_button.setToolTip("Save the animation from the first to the last step as an animated picture "
                                      "(GIF).")
        self.export_button.clicked.connect(self.export_requested)
        # The less used display settings sit in a menu, so the row fits a narrow dock.
        self.display_button = QToolButton()
        self.display_button.setText("Display")
        self.display_button.setToolTip("How long the trail is, the glow of the soft assignment, and how far "
                                       "the forecast looks ahead.")
        self.display_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        display = QWidget()
        display_form = QFormLayout(display)
        display_form.addRow("Trail", self.trail_box)
        display_form.addRow(self.heat_check)
        display_form.addRow("Forecast", self.horizon_box)
        menu = QMenu(self.display_button)
        action = QWidgetAction(menu)
        action.setDefaultWidget(display)
        menu.addAction(action)
        self.display_button.setMenu(menu)
        transport = QHBoxLayout()
        for w in (self.back_button, self.play_button, self.forward_button):
            transport.addWidget(w)
        transport.addWidget(self.slider, 1)
        transport.addWidget(self.speed_box)
        options = QHBoxLayout()
        options.addWidget(self.forecast_check)
        options.addStretch(1)
        options.addWidget(self.display_button)
        options.addWidget(self.export_button)

        # ------------------------------------------------------------ linked plot
        self.variable_box = QComboBox()
        _shrinkable(self.variable_box)
        self.variable_box.setToolTip("The measurement shown in the plot below the map.")
        self.variable_box.currentIndexChanged.connect(lambda _i: self._rebuild_curves())
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setMinimumHeight(90)
        self.plot.getAxis("left").setWidth(52)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(pg.mkPen("#90a4ae"))
            self.plot.getAxis(axis).setTextPen(pg.mkPen("#37474f"))
            # the moving cursor touches the axes every frame; a cached picture is a cheap blit
            self.plot.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#e6503c", width=1.5))
        self.plot.addItem(self.cursor)
        self._curves: list[pg.PlotDataItem] = []
        self._forecast_curves: list[pg.PlotDataItem] = []
        self._band_lo = pg.PlotCurveItem(pen=pg.mkPen(None))
        self._band_hi = pg.PlotCurveItem(pen=pg.mkPen(None))
        self._band = pg.FillBetweenItem(self._band_lo, self._band_hi, brush=pg.mkBrush(255, 109, 0, 50))
        for item in (self._band_lo, self._band_hi, self._band):
            self.plot.addItem(item)

        # ----------------------------------------------------------------- layout
        self.canvas = QSplitter(Qt.Orientation.Vertical)
        plot_box = self._plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_head = QHBoxLayout()
        plot_head.addWidget(QLabel("Plot:"))
        plot_head.addWidget(self.variable_box, 1)
        plot_layout.addLayout(plot_head)
        plot_layout.addWidget(self.plot, 1)
        self.canvas.addWidget(self.map)
        self.canvas.addWidget(plot_box)
        self.canvas.setStretchFactor(0, 3)
        self.canvas.setStretchFactor(1, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.canvas, 1)
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #b3473a;")
        self.notice.setVisible(False)
        right_layout.addWidget(self.notice)
        right_layout.addLayout(transport)
        time_row = QHBoxLayout()  # the time's text changes every step: the option sits at the far end
        time_row.addWidget(self._time_label, 1)
        time_row.addWidget(self.smooth_check)
        right_layout.addLayout(time_row)
        right_layout.addLayout(options)
        splitter = QSplitter()
        splitter.addWidget(picker)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([190, 520])
        picker.setMinimumWidth(120)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self.setMinimumSize(380, 340)

        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / max(1.0, fps)))
        self._timer.timeout.connect(self._on_timer_timeout)
        self._clock = QElapsedTimer()
        self._set_enabled(False)
        app = QCoreApplication.instance()
        if app is not None:  # a forecast thread must end before the application does
            app.aboutToQuit.connect(self.shutdown)

    # ==================================================================== input
    def set_source(self, source) -> None:
        """Show the patients of a :class:`~dpsom_gui.map_explorer.MapExplorer` (None clears)."""
        self.pause()
        self.shutdown()
        self._frames.clear()
        self._wanted = None
        self._show_notice("")
        self._source = source
        series = source is not None and source.series
        for item in (self._heat, self._trails, self._forecast_item, self._markers):
            self.map.remove_overlay(item)
        self._patients, self._tracks = [], []
        self.variable_box.blockSignals(True)
        self.variable_box.clear()
        self._outcome_box.blockSignals(True)
        self._outcome_box.clear()
        self._outcome_box.addItem("any outcome or none", "")
        if series:
            grid = source.grid
            self.map.set_grid(grid)
            self.map.set_layer_choices(source.layer_choices())
            if "umatrix" in source.results:
                self.map.set_map_layer(source.layer("umatrix"), show=True)
            else:
                self.map.set_map_layer(source.layer("hits"), show=True)
            width, height = grid.extent()
            for item in (self._heat, self._trails, self._forecast_item):
                item.set_extent(width, height)
            self._heat.set_geometry(grid.positions(), grid.cell_polygon())
            for item in (self._heat, self._trails, self._forecast_item, self._markers):
                self.map.add_overlay(item)
            ds = source.dataset
            for j, name in enumerate(ds.feature_names):
                unit = ds.units[j] if j < len(ds.units) else ""
                self.variable_box.addItem(f"{name} ({unit})" if unit else name, j)
            for name in source.labels():
                self._outcome_box.addItem(label_title(name), name)
        self.variable_box.blockSignals(False)
        self._outcome_box.blockSignals(False)
        self._set_enabled(series)
        self.smooth_check.setEnabled(bool(series) and source.node_paths() is not None)
        self._plot_box.setVisible(bool(series))  # no model yet: no empty axes under an empty map
        self._fill_list()
        if series and self._list.count():
            self.set_patients([int(self._list.item(0).data(Qt.ItemDataRole.UserRole))])
        else:
            self.set_patients([])
            self.map.set_grid(None)  # no model: neither the old map nor its axis names stay
            self.plot.setLabel("left", "")
            self.plot.setLabel("bottom", "")
            for item in (self._band_lo, self._band_hi):
                item.setData([], [])
        self.cursor.setVisible(series)

    def set_patients(self, patients) -> None:
        """Animate these patients (dataset indices); the list selection follows."""
        src = self._source
        patients = [int(p) for p in patients] if src is not None and src.series else []
        self._patients = patients
        self._load_tracks()
        self._end = float(max((t.length for t in self._tracks), default=1) - 1)
        self._forecast_step, self._forecast, self._bands = None, None, (None, None)
        self._forecast_item.set_forecasts([], [])
        for c in self._forecast_curves:
            c.setData([], [])
        self._brushes = [pg.mkBrush(patient_colour(i)) for i in range(len(patients))]
        self.slider.blockSignals(True)
        self.slider.setRange(0, int(round(self._end * _SLIDER_SCALE)))
        self.slider.blockSignals(False)
        self._select_in_list(patients)
        self._rebuild_curves()
        self.set_time(min(self._time, self._end))
        self.patients_changed.emit(list(patients))

    def _load_tracks(self) -> None:
        """The chosen patients' tracks and trail lines, along the smoothed path or hour by hour."""
        src = self._source
        self._tracks = [src.track(p, smoothed=self.smooth_check.isChecked()) for p in self._patients]
        owner, lines, t0, t1 = [], [], [], []
        for i, track in enumerate(self._tracks):
            lines.append(track.lines)
            t0.append(track.t0)
            t1.append(track.t1)
            owner.append(np.full(track.t0.size, i))
        self._lines = np.concatenate(lines) if lines else np.zeros((0, 4))
        self._t0 = np.concatenate(t0) if t0 else np.zeros(0)
        self._t1 = np.concatenate(t1) if t1 else np.zeros(0)
        self._owner = np.concatenate(owner).astype(int) if owner else np.zeros(0, dtype=int)

    def _on_smooth_toggled(self, _on: bool) -> None:
        if self._tracks:
            self._load_tracks()
            self._draw_frame(force_forecast=True)  # the dashed forecast starts at the drawn cell

    def set_time(self, t: float) -> None:
        """Move to time index ``t`` (in steps; clamped to the longest chosen stay)."""
        t = float(min(max(t, 0.0), self._end))
        self._time = t
        self.slider.blockSignals(True)
        self.slider.setValue(int(round(t * _SLIDER_SCALE)))
        self.slider.blockSignals(False)
        self._draw_frame()
        self.time_changed.emit(t)

    def step(self, n: int = 1) -> None:
        """Pause and move ``n`` whole steps (from the current step)."""
        self.pause()
        base = np.floor(self._time + 1e-9) if n > 0 else np.ceil(self._time - 1e-9)
        self.set_time(base + n)

    def set_speed(self, steps_per_second: float) -> None:
        self._speed = float(steps_per_second)
        index = self.speed_box.findData(self._speed)
        if index >= 0 and index != self.speed_box.currentIndex():
            self.speed_box.setCurrentIndex(index)

    def play(self) -> None:
        """Start playing from the current time (from the start when at the end)."""
        if not self._tracks:
            return
        if self._time >= self._end:
            self.set_time(0.0)
        if not self._timer.isActive():
            self._clock.start()
            self._timer.start()
            self._set_play_button(True)
            self.playing_changed.emit(True)

    def pause(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self._set_play_button(False)
            self.playing_changed.emit(False)
            self._draw_frame()

    def tick(self, seconds: float) -> None:
        """Advance the time as ``seconds`` of wall clock would while playing (the timer
        calls this with the measured time since its previous tick)."""
        t = self._time + float(seconds) * self._speed
        if t >= self._end:
            self.set_time(self._end)
            self.pause()
        else:
            self.set_time(t)

    # =================================================================== output
    @property
    def time(self) -> float:
        return self._time

    @property
    def end_time(self) -> float:
        return self._end

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def is_playing(self) -> bool:
        return self._timer.isActive()

    @property
    def patients(self) -> list[int]:
        return list(self._patients)

    def listed_patients(self) -> list[int]:
        return [int(self._list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self._list.count())]

    def marker_positions(self) -> np.ndarray:
        """Where the markers are drawn now, ``(n_patients, 2)`` map coordinates."""
        x, y = self._markers.getData()
        return np.column_stack([x, y]) if x is not None and len(x) else np.zeros((0, 2))

    @property
    def trails_item(self) -> TrailsItem:
        return self._trails

    @property
    def heat_item(self) -> HeatItem:
        return self._heat

    @property
    def forecast_item(self) -> ForecastItem:
        return self._forecast_item

    @property
    def forecast(self):
        """The forecast drawn now (:class:`~dpsom_gui.map_explorer.ForecastData`) or None."""
        return self._forecast

    def curve_data(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._curves[index].getData()
        return (np.zeros(0) if x is None else np.asarray(x)), (np.zeros(0) if y is None else np.asarray(y))

    def render_frames(self, fps: float = 10.0, max_frames: int = 200, start: float = 0.0,
                      stop: float | None = None) -> list[np.ndarray]:
        """Frames of the animation from ``start`` to ``stop`` (default: the end) at the current
        speed, as ``(H, W, 3)`` uint8 pictures of the map and plot; the time is restored after."""
        from PySide6.QtGui import QImage

        self.pause()
        stop = self._end if stop is None else min(stop, self._end)
        duration = max(0.0, (stop - start) / self._speed)
        n = int(min(max_frames, max(1, round(duration * fps) + 1)))
        saved = self._time
        frames = []
        self._rendering = True
        try:
            for t in np.linspace(start, stop, n):
                self.set_time(float(t))
                self.map.flush()
                image = self.canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
                h, w = image.height(), image.width()
                data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
                frames.append(data.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy())
        finally:
            self._rendering = False
        self.set_time(saved)
        return frames

    # ================================================================= drawing
    def _draw_frame(self, force_forecast: bool = False) -> None:
        self.frames_drawn += 1
        src = self._source
        if src is None or not self._tracks:
            self._markers.setData([])
            self._trails.set_lines(np.zeros((0, 4)), np.zeros(0), np.zeros(0))
            self._heat.set_values(np.zeros(0))
            self._forecast_item.set_forecasts([], [])
            self._time_label.setText("")
            return
        t = self._time
        lengths = np.array([tr.length for tr in self._tracks], dtype=float)
        tau = np.minimum(t, lengths - 1)
        positions = np.array([tr.position(x) for tr, x in zip(self._tracks, tau)])
        self._markers.setData(pos=positions, brush=self._brushes)

        trail = float(self.trail_box.value())
        if self._lines.size:
            tl = tau[self._owner]
            keep = (self._t0 < tl) & (self._t1 > tl - trail)
            lines = self._lines[keep].copy()
            a, b, tk = self._t0[keep], self._t1[keep], tl[keep]
            f = np.clip(np.where(b > a, (tk - a) / np.where(b > a, b - a, 1.0), 1.0), 0.0, 1.0)
            lines[:, 2] = lines[:, 0] + f * (lines[:, 2] - lines[:, 0])
            lines[:, 3] = lines[:, 1] + f * (lines[:, 3] - lines[:, 1])
            age = tk - np.minimum(b, tk)
            self._trails.set_lines(lines, self._owner[keep], np.clip(1.0 - age / trail, 0.08, 1.0))
        else:
            self._trails.set_lines(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

        step = int(np.floor(t + 1e-9))
        self._heat.setVisible(self.heat_check.isChecked())
        if self.heat_check.isChecked():
            self._heat.set_values(src.soft_at(self._patients, int(round(t))))
        self._update_forecast(step, force_forecast)
        x_time = self._time_axis_value(0, t)
        self.cursor.setValue(x_time)
        ds = src.dataset
        unit = f" {ds.time_unit}" if ds.time_unit else ""
        text = (f"{ds.time_col or 'time'} {self._time_axis_value(0, min(step, self._end)):.4g}{unit} · "
                f"step {step + 1} of {int(self._end) + 1}")
        if text != self._time_label.text():  # once per step, not per frame: a new text re-lays out the row
            self._time_label.setText(text)

    def _update_forecast(self, step: int, force: bool) -> None:
        src = self._source
        show = self.forecast_check.isChecked() and src.can("forecast")
        self._forecast_item.setVisible(show)
        self._band.setVisible(show)
        for c in self._forecast_curves:
            c.setVisible(show)
        if not show or not self.isVisible():
            self._forecast_step = None  # computed when shown again
            return
        if step == self._forecast_step and not force:
            return
        patients = tuple(self._patients[:MAX_FORECAST_PATIENTS])
        request = ForecastRequest(patients, step, self.horizon_box.value(), FORECAST_SAMPLES)
        if (self.is_playing or self._rendering) and request not in self._frames:
            # Sampled futures take longer than a frame: while the journey plays, the expected
            # path is drawn alone; pausing, stepping or scrubbing adds the samples.
            request = ForecastRequest(patients, step, self.horizon_box.value(), 0)
        self._forecast_step = step
        self._wanted = request
        if request in self._frames:
            self._frames.move_to_end(request)
            self._show_forecast(self._frames[request])
        elif self._rendering:  # a picture of this very frame is being taken: compute it here
            try:
                self._keep(compute_forecast(src, request))
            except Exception as exc:  # noqa: BLE001 - the frame is drawn without a forecast
                self._forecast_failed(str(exc) or type(exc).__name__, exc)
                return
            self._show_forecast(self._frames[request])
        elif self._job is None:
            self._start_job(request)

    # ------------------------------------------------------------ forecast jobs
    def _start_job(self, request: ForecastRequest) -> None:
        worker = AnalysisWorker(forecast_task(self._source, request))
        worker.result.connect(self._on_job_result)
        worker.failed.connect(self._on_job_failed)
        self._job_request, self._job_outcome = request, None
        self._job = WorkerThread(worker, self)
        self._job.stopped.connect(self._on_job_stopped)
        self._job.start()

    def _on_job_result(self, frame) -> None:
        self._job_outcome = ("done", frame)

    def _on_job_failed(self, failure) -> None:
        self._job_outcome = ("failed", failure)

    def _on_job_stopped(self) -> None:
        self._job = None
        outcome, self._job_outcome = self._job_outcome, None
        if outcome is not None and outcome[0] == "done":
            self._keep(outcome[1])
            if outcome[1].request == self._wanted:
                self._show_forecast(outcome[1])
        elif outcome is not None:
            message, details = split_failure(outcome[1])
            self._forecast_failed(message, details=details)
        wanted = self._wanted
        if (wanted is not None and wanted not in self._frames and wanted != self._job_request
                and self._source is not None and self.isVisible()):
            self._start_job(wanted)
            return
        self.forecast_ready.emit()

    def _keep(self, frame) -> None:
        self._frames[frame.request] = frame
        while len(self._frames) > _KEPT_FORECASTS:
            self._frames.popitem(last=False)

    def shutdown(self) -> None:
        """Stop a forecast still being computed and wait for its thread (bounded)."""
        if self._job is not None:
            job, self._job = self._job, None
            job.stopped.disconnect(self._on_job_stopped)
            job.stop(10000)

    def _forecast_failed(self, message: str, exc: BaseException | None = None, details: str = "") -> None:
        if exc is not None:
            log.error("journeys: the forecast could not be computed", exc_info=exc)
        else:
            log.error("journeys: the forecast could not be computed: %s\n%s", message, details)
        self._show_notice(f"The forecast could not be drawn: {message}")

    def _show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setToolTip("Details are in the log file (Help ▸ About shows where)." if text else "")
        self.notice.setVisible(bool(text))

    def _show_forecast(self, frame) -> None:
        src = self._source
        fc = frame.data
        self._forecast = fc
        self._bands = (frame.band_lower, frame.band_upper)
        if self.notice.text().startswith("The forecast"):
            self._show_notice("")
        paths, rings = [], []
        centres = src.grid.positions()
        if fc is not None:
            step = frame.request.step
            for i, p in enumerate(frame.request.patients):
                if i >= len(self._tracks):
                    break
                track = self._tracks[i]
                current = int(track.nodes[min(step, track.length - 1)])
                paths.append((i, src.forecast_pieces(current, fc.nodes[i])))
                if fc.sample_nodes is not None:
                    s = fc.sample_nodes[i]
                    for h in range(s.shape[1]):
                        nodes, counts = np.unique(s[:, h], return_counts=True)
                        for node, c in zip(nodes, counts):
                            if c / s.shape[0] >= RING_MIN_SHARE:
                                rings.append((i, *centres[int(node)], c / s.shape[0]))
        self._forecast_item.set_forecasts(paths, rings)
        self._draw_forecast_curves(fc)

    def _draw_forecast_curves(self, fc) -> None:
        j = self.variable_box.currentData()
        if fc is None or j is None:
            for c in self._forecast_curves:
                c.setData([], [])
            self._band_lo.setData([], [])
            self._band_hi.setData([], [])
            return
        for i, curve in enumerate(self._forecast_curves):
            if i >= fc.features.shape[0]:
                curve.setData([], [])
                continue
            start = int(fc.start[i])
            xs = np.array([self._time_axis_value(i, start - 1 + h) for h in range(fc.features.shape[1] + 1)])
            last = self._last_value(i, start - 1, j)
            curve.setData(xs, np.concatenate([[last], fc.features[i, :, j]]))
            if i == 0:
                lower, upper = self._bands
                if lower is not None and j < len(lower):
                    self._band_lo.setData(xs, lower[j])
                    self._band_hi.setData(xs, upper[j])
                else:
                    self._band_lo.setData([], [])
                    self._band_hi.setData([], [])

    def _last_value(self, i: int, step: int, j: int) -> float:
        ds = self._source.dataset
        p = self._patients[i]
        step = max(0, min(step, int(ds.lengths[p]) - 1))
        seen = np.flatnonzero(ds.mask[p, : step + 1, j])
        return float(ds.values[p, seen[-1], j]) if seen.size else np.nan

    def _time_axis_value(self, i: int, t: float) -> float:
        """The data's time at fractional step ``t`` of chosen patient ``i`` (steps extrapolate)."""
        if not self._patients:
            return float(t)
        ds = self._source.dataset
        p = self._patients[i]
        if ds.times is None:
            return float(t)
        n = int(ds.lengths[p])
        times = np.asarray(ds.times[p, :n], dtype=float)
        if n < 2:
            return float(times[0] + t) if n else float(t)
        dt = float(np.median(np.diff(times)))
        if t <= n - 1:
            return float(np.interp(t, np.arange(n), times))
        return float(times[-1] + (t - (n - 1)) * dt)

    def _rebuild_curves(self) -> None:
        for c in self._curves + self._forecast_curves:
            self.plot.removeItem(c)
        self._curves, self._forecast_curves = [], []
        src = self._source
        j = self.variable_box.currentData()
        if src is None or j is None:
            return
        ds = src.dataset
        shown = self._patients[:MAX_PLOT_PATIENTS]
        dots = len(shown) <= 5  # markers on every measurement only while few lines share the plot
        for i, p in enumerate(shown):
            n = int(ds.lengths[p])
            seen = ds.mask[p, :n, j]
            times = ds.times[p, :n] if ds.times is not None else np.arange(n, dtype=float)
            colour = patient_colour(i)
            curve = self.plot.plot(times[seen], ds.values[p, :n, j][seen].astype(float),
                                   pen=pg.mkPen(colour, width=1.5), symbol="o" if dots else None, symbolSize=4,
                                   symbolBrush=colour, symbolPen=None)
            self._curves.append(curve)
            if i < MAX_FORECAST_PATIENTS:
                self._forecast_curves.append(self.plot.plot([], [], pen=pg.mkPen(colour, width=2,
                                                                                 style=Qt.PenStyle.DashLine)))
        unit = ds.units[j] if j < len(ds.units) else ""
        self.plot.setLabel("left", f"{ds.feature_names[j]} ({unit})" if unit else ds.feature_names[j])
        tl = ds.time_col or "time"
        self.plot.setLabel("bottom", f"{tl} ({ds.time_unit})" if ds.time_unit else tl)
        self._forecast_step = None
        self._draw_frame()
        if self._forecast is not None:
            self._draw_forecast_curves(self._forecast)

    # ================================================================== picker
    def _fill_list(self) -> None:
        self._list.blockSignals(True)
        self._list.clear()
        src = self._source
        if src is not None and src.series:
            nodes = self.map.selected_nodes() if self._node_box.currentData() == "selected" else None
            if nodes is not None and not nodes:
                nodes = None
            matching = src.patients_matching(self._search.text().strip(), self._outcome_box.currentData() or "",
                                             nodes)
            ids = src.patient_ids()
            lengths = src.dataset.lengths
            for p in matching:
                item = QListWidgetItem(f"{ids[p]}  ·  {int(lengths[p])} steps")
                item.setData(Qt.ItemDataRole.UserRole, int(p))
                self._list.addItem(item)
                if int(p) in self._patients:
                    item.setSelected(True)
            self._list_count.setText(f"{len(matching)} of {len(ids)} patients listed")
        else:
            self._list_count.setText("Patients appear here once a model of time series is trained.")
        self._list.blockSignals(False)

    def _select_in_list(self, patients) -> None:
        # One selection change for the whole list: selecting item by item costs a selection
        # update per listed patient (1.5 s for 2,000 patients, on the GUI thread).
        rows = {}
        for i in range(self._list.count()):
            rows[int(self._list.item(i).data(Qt.ItemDataRole.UserRole))] = i
        selection = QItemSelection()
        model = self._list.model()
        for p in patients:
            row = rows.get(int(p))
            if row is not None:
                selection.select(model.index(row, 0), model.index(row, 0))
        self._list.blockSignals(True)
        self._list.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self._list.blockSignals(False)

    def _on_filters_changed(self, *_args) -> None:
        self._fill_list()

    def _on_list_selection_changed(self) -> None:
        chosen = [int(item.data(Qt.ItemDataRole.UserRole)) for item in self._list.selectedItems()]
        order = {p: i for i, p in enumerate(self.listed_patients())}
        chosen.sort(key=lambda p: order.get(p, 0))
        if chosen and chosen != self._patients:
            self.set_patients(chosen)

    # ================================================================== events
    def _on_timer_timeout(self) -> None:
        elapsed = self._clock.restart() / 1000.0
        self.tick(elapsed)

    def _on_map_layer_requested(self, kind: str, option: str) -> None:
        if self._source is not None:
            try:
                layer = self._source.layer(kind, option, self.annotations)
            except Exception as exc:  # noqa: BLE001 - the background stays as it was, and we say so
                log.error("journeys: the map layer %s:%s could not be computed", kind, option, exc_info=exc)
                self._show_notice(f"The map colours could not be changed: {exc or type(exc).__name__}")
                return
            self._show_notice("")
            self.map.set_map_layer(layer, show=True)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.pause()
        self.shutdown()
        super().closeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._tracks:
            self._draw_frame(force_forecast=True)

    def _on_play_button_toggled(self, on: bool) -> None:
        if on and not self.is_playing:
            self.play()
        elif not on and self.is_playing:
            self.pause()

    def _set_play_button(self, playing: bool) -> None:
        self.play_button.blockSignals(True)
        self.play_button.setChecked(playing)
        self.play_button.setIcon(icon("pause" if playing else "start"))
        self.play_button.blockSignals(False)

    def _on_slider_value_changed(self, value: int) -> None:
        self.pause()
        self.set_time(value / _SLIDER_SCALE)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.play_button, self.back_button, self.forward_button, self.slider, self.speed_box,
                  self.export_button, self._search, self._outcome_box, self._node_box):
            w.setEnabled(on)
