"""The main window: composes the start page, the views, the training panel and the menus."""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QApplication, QDockWidget, QLabel, QMainWindow, QProgressBar, QStackedWidget,
                               QToolBar, QWidget)

from . import actions
from .background import BackgroundCall
from .data_summary import summarise_variables
from .dialogs.error_dialog import ErrorDialog
from .exploring_views import Exploration
from .panels.start_panel import StartPanel
from .panels.training_panel import TrainingPanel
from .resources import icon
from .session import Session, TrainingState
from .settings import Preferences
from .views.data_view import DataView
from .views.loss_view import LossView
from .views.patient_plot_view import PatientPlotView
from .views.som_map_view import SomMapView
from .workers import split_failure

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)

#: Seconds after a project or the demo opened before the estimate's probe starts.
_SETTLE_S = 1.5

_NON_LOSS_KEYS = {"phase", "epoch", "step", "lr", "elapsed", "end_of_epoch", "n_epochs", "time"}


class _HistoryRecord:
    """A saved history row seen through the attributes the loss view reads."""

    __slots__ = ("phase", "step", "losses")

    def __init__(self, row: dict) -> None:
        self.phase = str(row.get("phase", ""))
        self.step = int(row.get("step", 0))
        self.losses = {k: float(v) for k, v in row.items()
                       if k not in _NON_LOSS_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}


class MainWindow(QMainWindow):
    """DPSOM Studio's window. It only composes: the session holds the state, the views
    draw, and the menu actions live in :mod:`dpsom_gui.actions`.

    Parameters
    ----------
    session : Session
    prefs : Preferences
    log_path : str, optional
        Shown in error messages so users can send the log along.
    """

    def __init__(self, session: Session, prefs: Preferences, log_path: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.prefs = prefs
        self.log_path = log_path
        self.import_dialog = None
        self.error_dialogs: list[ErrorDialog] = []
        self._workspace_shown = False
        self.setWindowTitle("DPSOM Studio")
        self.setWindowIcon(icon("app"))
        self.setDockNestingEnabled(True)

        # ----------------------------------------------------------- widgets
        hz = prefs.refresh_hz
        self.start_panel = StartPanel()
        self.map_view = SomMapView(hz=hz)
        self.loss_view = LossView(hz=hz, log_scale=prefs.get("loss_log_scale"), detailed=prefs.get("loss_detailed"))
        self.data_view = DataView()
        self.patient_view = PatientPlotView()
        from core.config import make_config

        self.training_panel = TrainingPanel(make_config())
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_panel)
        self.stack.addWidget(self.map_view)
        self.setCentralWidget(self.stack)

        self.docks = {
            "training": self._dock("training", "Training", self.training_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
            "losses": self._dock("losses", "Training curves", self.loss_view, Qt.DockWidgetArea.BottomDockWidgetArea),
            "data": self._dock("data", "Data", self.data_view, Qt.DockWidgetArea.BottomDockWidgetArea),
            "patients": self._dock("patients", "Patients over time", self.patient_view,
                                   Qt.DockWidgetArea.RightDockWidgetArea),
        }
        self.tabifyDockWidget(self.docks["losses"], self.docks["data"])
        self.exploration = Exploration(self)
        self.exploration.arrange()
        self.docks["losses"].raise_()
        for dock in self.all_docks():
            dock.setVisible(False)

        # ----------------------------------------------------- menus, toolbar
        self.actions = actions.build_actions(self)
        toolbar = QToolBar("Main")
        toolbar.setObjectName("toolbar_main")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in ("open", "import", "save", None, "start", "pause", "stop"):
            toolbar.addSeparator() if name is None else toolbar.addAction(self.actions[name])
        self.addToolBar(toolbar)
        self.menuBar().insertMenu(self.menuBar().actions()[1], self._view_menu())
        self._state_label = QLabel("")
        self.statusBar().addPermanentWidget(self._state_label)
        self.busy_bar = QProgressBar()  # moves without a known end while a file is read
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(160)
        self.busy_bar.setVisible(False)
        self.statusBar().addPermanentWidget(self.busy_bar)

        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(300)
        self._estimate_timer.timeout.connect(self._on_estimate_timer_timeout)
        # The estimate probes a few training steps (up to seconds) and the variable summary
        # reads every value: both run off the GUI thread so the window never freezes.
        self.estimator = BackgroundCall("training-estimate", self)
        self.estimator.done.connect(self._on_estimator_done)
        self._loaded_at = 0.0
        self.summariser = BackgroundCall("variable-summary", self)
        self.summariser.done.connect(self._on_summariser_done)

        self._connect()
        self.exploration.attach()
        # Devices are handed over by whoever loaded the engine (app.main, behind its splash
        # screen): a window made without it (tests) must not import PyTorch here.
        self.refresh_recent_files()
        self._update_title()
        self._update_actions()
        geometry = prefs.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:  # never taller or wider than the screen: the status bar must stay in view
            room = self.screen().availableGeometry() if self.screen() is not None else None
            self.resize(min(1280, room.width()) if room else 1280, min(820, room.height()) if room else 820)

    def all_docks(self) -> list[QDockWidget]:
        """Every dock: the window's own and the exploring views'."""
        return list(self.docks.values()) + list(self.exploration.docks.values())

    def add_dock(self, name: str, title: str, widget: QWidget, area) -> QDockWidget:
        """A closable, movable dock named ``dock_<name>`` holding ``widget``."""
        return self._dock(name, title, widget, area)

    def _dock(self, name: str, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _view_menu(self):
        from PySide6.QtWidgets import QMenu

        menu = QMenu("&View", self)
        for dock in self.all_docks():
            menu.addAction(dock.toggleViewAction())
        return menu

    def _connect(self) -> None:
        s, p = self.session, self.training_panel
        s.project_loaded.connect(self._on_session_project_loaded)
        s.dataset_loaded.connect(self._on_session_dataset_loaded)
        s.config_changed.connect(self._on_session_config_changed)
        s.model_changed.connect(self._on_session_model_changed)
        s.live_map.connect(self._on_session_live_map)
        s.training_progress.connect(self._on_session_training_progress)
        s.training_state_changed.connect(self._on_session_training_state_changed)
        s.training_finished.connect(self._on_session_training_finished)
        s.training_cancelled.connect(self._on_session_training_cancelled)
        s.training_failed.connect(self._on_session_training_failed)
        s.import_failed.connect(self._on_session_import_failed)
        s.loading_started.connect(self._on_session_loading_started)
        s.loading_failed.connect(self._on_session_loading_failed)
        s.loading_ended.connect(self._on_session_loading_ended)
        s.dirty_changed.connect(self._update_title)
        s.dirty_changed.connect(self._on_session_dirty_changed)
        s.path_changed.connect(self._update_title)
        s.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        p.config_changed.connect(self._on_panel_config_changed)
        p.preset_requested.connect(self._on_panel_preset_requested)
        p.start_requested.connect(lambda config: actions.start_training(self, config))
        p.resume_requested.connect(lambda: actions.start_or_resume(self))
        p.pause_requested.connect(s.pause_training)
        p.cancel_requested.connect(s.cancel_training)
        self.loss_view.log_scale_changed.connect(lambda on: self.prefs.set("loss_log_scale", on))
        self.loss_view.detailed_changed.connect(lambda on: self.prefs.set("loss_detailed", on))
        self.start_panel.open_requested.connect(lambda: actions.open_project(self))
        self.start_panel.import_requested.connect(lambda: actions.import_data(self))
        self.start_panel.demo_requested.connect(lambda: actions.open_demo(self))
        self.start_panel.recent_requested.connect(lambda path: actions.open_project(self, path))

    # ------------------------------------------------------------ helpers
    def show_workspace(self) -> None:
        """Leave the start page for the map and the docks (restoring the saved layout once)."""
        self.stack.setCurrentWidget(self.map_view)
        if self._workspace_shown:
            return
        self._workspace_shown = True
        for dock in self.all_docks():
            dock.setVisible(True)
        self.docks["patients"].raise_()
        self.docks["losses"].raise_()
        state = self.prefs.window_state()
        if state is not None:
            self.restoreState(state)
        else:
            # The curves need less height than the settings beside the map: on a 800 px screen
            # an even split left the training settings three rows to scroll through.
            self.resizeDocks([self.docks["losses"]], [max(200, self.height() // 4)], Qt.Orientation.Vertical)

    def show_error(self, title: str, message: str, details: str = "") -> ErrorDialog:
        """A non-modal message with details on demand and the log file's location."""
        dialog = ErrorDialog(title, message, details, self.log_path, self)
        dialog.finished.connect(lambda *_: self.error_dialogs.remove(dialog) if dialog in self.error_dialogs else None)
        self.error_dialogs.append(dialog)
        dialog.show()
        return dialog

    def refresh_recent_files(self) -> None:
        files = self.prefs.recent_files()
        self.start_panel.set_recent_files(files)
        self.recent_menu.clear()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, p=path: actions.open_project(self, p))
        self.recent_menu.setEnabled(bool(files))

    def set_devices(self, devices: list[dict]) -> None:
        """Offer the devices found once the engine is ready, and estimate the training now
        that it costs nothing on the GUI thread."""
        self.training_panel.set_devices(devices)
        self._estimate_timer.start()

    def apply_preferences(self) -> None:
        for view in (self.map_view, self.loss_view):
            view.set_refresh_rate(self.prefs.refresh_hz)
        self.refresh_recent_files()

    def _update_title(self, *_args) -> None:
        self.setWindowTitle(f"{self.session.title}[*] — DPSOM Studio")
        self.setWindowModified(self.session.dirty)

    def _update_actions(self) -> None:
        s = self.session
        state, loading = s.state, s.is_loading
        busy = state in (TrainingState.RUNNING, TrainingState.PAUSED, TrainingState.STOPPING)
        self.actions["start"].setEnabled(not loading and state in (TrainingState.IDLE, TrainingState.PAUSED))
        self.actions["pause"].setEnabled(state == TrainingState.RUNNING)
        self.actions["stop"].setEnabled(state in (TrainingState.RUNNING, TrainingState.PAUSED))
        for name in ("new", "open", "import", "demo"):
            self.actions[name].setEnabled(state != TrainingState.STOPPING and not loading)
        for name in ("save", "save_as"):
            self.actions[name].setEnabled(s.dataset is not None and state != TrainingState.STOPPING and not loading)
        self.training_panel.set_state(TrainingState.NO_DATA if loading else state)
        self.training_panel.set_resumable(s.can_resume)
        self._state_label.setText({"running": "Training…", "paused": "Training paused",
                                   "stopping": "Stopping…"}.get(state, ""))
        self.map_view.set_levels_locked(busy)

    # ------------------------------------------------------- session events
    def _on_session_project_loaded(self) -> None:
        self._loaded_at = time.monotonic()
        if self.session.dataset is None:
            self.stack.setCurrentWidget(self.start_panel)
            for dock in self.all_docks():
                dock.setVisible(False)
            self._workspace_shown = False
        else:
            self.show_workspace()
        self.loss_view.clear()
        # A saved project keeps one row per pass over the data (core's history), not every step.
        self.loss_view.append([_HistoryRecord(row) for row in self.session.history], per_pass=True)
        self.loss_view.flush()
        self._show_run_status()
        self.refresh_recent_files()
        self._update_actions()

    def _on_session_dataset_loaded(self, dataset) -> None:
        self.data_view.set_dataset(dataset)
        self.data_view.set_summaries([])
        if dataset is not None:
            self.summariser.request(dataset, partial(summarise_variables, dataset))
        self.patient_view.set_dataset(dataset)
        self.training_panel.set_suggestion(self.session.model_suggestion(), self.session.settings_reasons())
        self._update_actions()

    def _show_run_status(self) -> None:
        """What the training panel says about a model that was not trained in this sitting."""
        run, panel = self.session.run, self.training_panel
        if not self.session.is_trained:
            panel.reset_progress()
        elif getattr(run, "is_complete", False):
            panel.reset_progress("Trained model loaded: training had finished.", fraction=1.0)
        else:
            panel.reset_progress("Partly trained model loaded. Press Resume (F5) to continue training.")

    def _on_session_config_changed(self, config) -> None:
        self.training_panel.set_config(config)
        self.training_panel.set_suggestion(self.session.model_suggestion(), self.session.settings_reasons(config))
        self.training_panel.set_grid_advice(*self.session.grid_advice(config))
        if not self.session.results:
            self.map_view.set_grid(config.grid)
        self._estimate_timer.start()

    def _on_session_model_changed(self) -> None:
        s = self.session
        grid = s.run.grid if s.run is not None else (s.config.grid if s.config is not None else None)
        if grid is not None:
            self.map_view.set_grid(grid)
            for name, values in s.map_layers().items():
                self.map_view.set_layer(name, values)
            self.map_view.flush()
        bmu = s.results.get("bmu")
        series = s.dataset is not None and s.dataset.is_series
        self.patient_view.set_assignments(bmu if series and bmu is not None and bmu.ndim == 2 else None)
        if not s.history and s.state == "running":
            self.loss_view.clear()
        self._update_actions()

    def _on_session_live_map(self, values) -> None:
        self.map_view.set_layer("umatrix", values)

    def _on_session_training_progress(self, records) -> None:
        self.loss_view.append(records)
        self.training_panel.set_progress(records[-1])

    def _on_session_training_state_changed(self, state: str) -> None:
        if state == "running" and not self.session.history:
            self.loss_view.clear()
            self.training_panel.reset_progress("Starting…")
        self._update_actions()

    def _on_session_training_finished(self) -> None:
        self.training_panel.set_message("Training finished. Save the project to keep the model.")
        self.statusBar().showMessage("Training finished", 8000)

    def _on_session_dirty_changed(self, dirty: bool) -> None:
        # The plea to save must not outlive the save it asks for.
        s = self.session
        if not dirty and s.path and s.is_trained and not s.is_training:
            self.training_panel.set_message(f"Training finished. The model is saved in {Path(s.path).name}.")

    def _on_session_training_cancelled(self) -> None:
        self.training_panel.set_message("Training stopped. Press Resume (F5) to continue it.")

    def _on_session_training_failed(self, failure) -> None:
        message, details = split_failure(failure)
        self.training_panel.set_message("Training stopped because of a problem.")
        self.show_error("Training stopped", message + " What the model learnt up to the last "
                        "completed step is kept.", details)

    def _on_session_import_failed(self, failure) -> None:
        message, details = split_failure(failure)
        self.show_error("The data could not be imported", message, details)

    def _on_session_loading_started(self, what: str) -> None:
        self._loaded_at = time.monotonic()
        self.start_panel.set_busy(what)
        self.training_panel.set_message(what)  # in view when the workspace hides the start page
        self.busy_bar.setVisible(True)
        self.statusBar().showMessage(what)
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        self._update_actions()

    def _on_session_loading_failed(self, failure) -> None:
        message, details = split_failure(failure)
        self.show_error("The file could not be opened", message, details)

    def _on_session_loading_ended(self) -> None:
        self._loaded_at = time.monotonic()
        self._estimate_timer.start()
        self.start_panel.set_busy(None)
        self.busy_bar.setVisible(False)
        self.statusBar().clearMessage()
        QApplication.restoreOverrideCursor()
        self._update_actions()

    # --------------------------------------------------------- panel events
    def _on_panel_config_changed(self, config) -> None:
        self.session.set_config(config)
        self.training_panel.set_grid_advice(*self.session.grid_advice(config))
        if not self.session.results:
            self.map_view.set_grid(config.grid)
        self._estimate_timer.start()

    def _on_panel_preset_requested(self, model: str, preset: str) -> None:
        self.training_panel.set_config(self.session.preset_config(model, preset))

    def _on_estimate_timer_timeout(self) -> None:
        s = self.session
        if s.is_training or s.is_loading or s.dataset is None or not s.engine.is_ready():
            return  # after loading, _on_session_loading_ended asks again
        # The probe trains a few steps: started while the new project's views are first
        # drawn, it slowed their drawing several-fold on a 2-core machine.
        wait = _SETTLE_S - (time.monotonic() - self._loaded_at)
        if wait <= 0 and not self.patient_view.plots_ready:
            wait = 0.2  # its plots are still being made, a few per turn of the event loop
        if wait > 0:
            QTimer.singleShot(int(wait * 1000) + 1, self._estimate_timer.start)
            return
        config = self.training_panel.config()
        self.training_panel.set_estimating()
        self.estimator.request((s.dataset, config.to_dict()),
                               partial(s.estimate, config, stop=self.estimator.should_stop))

    def _on_estimator_done(self, tag, estimate) -> None:
        dataset, settings = tag
        if dataset is self.session.dataset and settings == self.training_panel.config().to_dict() \
                and not self.session.is_training:
            self.training_panel.set_estimate(estimate)

    def _on_summariser_done(self, dataset, summaries) -> None:
        if dataset is self.session.dataset and summaries is not None:
            self.data_view.set_summaries(summaries)

    # --------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.session.is_training:
            if not actions.ask_stop_training(self):
                event.ignore()
                return
            self.session.shutdown()
        if self.session.dirty and self.session.dataset is not None:
            answer = actions.ask_save_changes(self)
            if answer == "cancel" or (answer == "save" and not actions.save_project(self)):
                event.ignore()
                return
        self.session.shutdown()
        if self._workspace_shown:
            self.prefs.save_window(self.saveGeometry(), self.saveState())
        else:
            self.prefs.save_window(self.saveGeometry(), self.prefs.window_state() or self.saveState())
        self.prefs.sync()
        for dialog in list(self.error_dialogs):
            dialog.close()
        log.info("window closed")
        event.accept()
