"""The exploring part of the window: selected cells, journeys, transitions and map quality.

:class:`Exploration` creates those views and their docks, keeps one
:class:`~dpsom_gui.map_explorer.MapExplorer` for the current trained run, and routes events
between the session and the views (views never call each other): a selection on the map
fills the inspector, a chosen line shows that patient, the transition view's arrows are
drawn on the map, and the quality panel's requests run as background analyses.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject, Qt

from .analysis_workers import metrics_task, stability_task
from .map_explorer import MapExplorer
from .panels.metrics_panel import MetricsPanel
from .views.inspector_view import InspectorView
from .views.map_overlays import FlowArrowsItem
from .views.trajectory_view import TrajectoryView
from .views.transition_view import TransitionView
from .workers import loggable_traceback, split_failure

__all__ = ["Exploration"]

log = logging.getLogger(__name__)


class Exploration(QObject):
    """Owns the exploring views of a :class:`~dpsom_gui.main_window.MainWindow`.

    Parameters
    ----------
    window : MainWindow
        Supplies the session, the map, data and patient views, and ``add_dock``.

    Attributes
    ----------
    explorer : MapExplorer or None
        Computations for the current trained run.
    docks : dict of str to QDockWidget
        "inspector", "trajectories", "transitions", "metrics".
    """

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.map_view = window.map_view
        self.explorer: MapExplorer | None = None
        self.inspector = InspectorView()
        self.trajectories = TrajectoryView()
        self.transitions = TransitionView()
        self.metrics = MetricsPanel()
        self.flows_item = FlowArrowsItem()
        self.flows_item.setZValue(40)
        bottom, right = Qt.DockWidgetArea.BottomDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.docks = {
            "inspector": window.add_dock("inspector", "Selected cells", self.inspector, bottom),
            "trajectories": window.add_dock("trajectories", "Journeys over time", self.trajectories, right),
            "transitions": window.add_dock("transitions", "Moves between cells", self.transitions, bottom),
            "metrics": window.add_dock("metrics", "Map quality", self.metrics, bottom),
        }

    def attach(self) -> None:
        """Start following the session and the map (after the window's own handlers, so that
        the map already shows a new model's grid when the exploring views update)."""
        s = self.session
        s.model_changed.connect(self._on_session_model_changed)
        s.annotations_changed.connect(self._on_session_annotations_changed)
        s.analysis_started.connect(self._on_session_analysis_started)
        s.analysis_progress.connect(self._on_session_analysis_progress)
        s.analysis_finished.connect(self._on_session_analysis_finished)
        s.analysis_failed.connect(self._on_session_analysis_failed)
        s.analysis_cancelled.connect(self._on_session_analysis_cancelled)
        self.map_view.layer_requested.connect(self._on_map_layer_requested)
        self.map_view.selection_changed.connect(self._on_map_selection_changed)
        self.map_view.category_renamed.connect(self._on_map_category_renamed)
        self.inspector.row_activated.connect(self._on_inspector_row_activated)
        self.inspector.export_requested.connect(lambda: self._run_action("export_selection"))
        self.trajectories.patient_activated.connect(self._on_trajectories_patient_activated)
        self.trajectories.export_requested.connect(lambda: self._run_action("export_animation"))
        self.transitions.flows_requested.connect(self._on_transitions_flows_requested)
        self.metrics.metrics_requested.connect(self._on_metrics_metrics_requested)
        self.metrics.stability_requested.connect(self._on_metrics_stability_requested)
        self.metrics.stop_requested.connect(lambda: self.session.cancel_analysis())

    def arrange(self) -> None:
        """Put the docks beside part 1's (called once, before the saved layout is restored)."""
        w = self.window
        w.tabifyDockWidget(w.docks["patients"], self.docks["trajectories"])
        for name in ("inspector", "transitions", "metrics"):
            w.tabifyDockWidget(w.docks["losses"], self.docks[name])
        w.docks["patients"].raise_()
        w.docks["losses"].raise_()

    def _run_action(self, name: str) -> None:
        from . import actions

        getattr(actions, name)(self.window)

    # ------------------------------------------------------------ session events
    def _on_session_model_changed(self) -> None:
        s = self.session
        run = s.run
        explorer = None
        if run is not None and getattr(run, "is_fitted", False) and "bmu" in s.results and s.dataset is not None:
            explorer = MapExplorer(run, s.results, s.dataset)
        self.explorer = explorer
        try:
            self._refresh_views()
        except Exception as exc:  # noqa: BLE001 - a view that cannot follow must not stop the window
            log.warning("exploring views not updated:\n%s", loggable_traceback(exc))
            self.window.statusBar().showMessage("Some views could not show this model.", 8000)

    def _refresh_views(self) -> None:
        e, s = self.explorer, self.session
        self.map_view.set_layer_choices(e.layer_choices() if e is not None else [])
        self.map_view.set_node_describer(e.describe_node if e is not None else None)
        self.inspector.set_selection(None)
        series = e is not None and e.series
        self.trajectories.annotations = dict(s.annotations)
        self.trajectories.set_source(e if series else None)
        seed = s.config.train.seed if s.config is not None else 0
        self.metrics.set_labels(e.labels() if e is not None else [], seed=seed)
        self.metrics.set_trained(e is not None and e.can("stability"))
        if self.map_view.grid is not None:
            self.flows_item.set_extent(*self.map_view.grid.extent())
        self.transitions.set_counts(e.transition_counts() if series else None)

    def _on_session_annotations_changed(self, annotations: dict) -> None:
        self.trajectories.annotations = dict(annotations)

    # --------------------------------------------------------------- map events
    def _on_map_layer_requested(self, kind: str, option: str) -> None:
        e = self.explorer
        if e is None:
            return
        try:
            layer = e.layer(kind, option, self.session.annotations)
        except Exception as exc:  # noqa: BLE001 - e.g. a grid too small to group
            log.warning("map layer %s:%s not drawn:\n%s", kind, option, loggable_traceback(exc))
            self.window.statusBar().showMessage(f"This layer cannot be shown: {exc}", 8000)
            return
        self.map_view.set_map_layer(layer, show=True)
        if kind == "superclusters":
            self._save_groups(layer, list(layer.categories))

    def _save_groups(self, layer, names) -> None:
        groups = np.asarray(layer.extra.get("groups", layer.values)).astype(int).tolist()
        self.session.set_annotations(superclusters=groups, supercluster_names=list(names))

    def _on_map_category_renamed(self, name: str, index: int, text: str) -> None:
        e = self.explorer
        if e is None or not name.startswith("superclusters"):
            return
        layer = self.map_view.layer(name)
        names = list(layer.categories)
        names[index] = text
        self._save_groups(layer, names)
        self.map_view.set_map_layer(e.supercluster_layer(name.partition(":")[2], self.session.annotations))

    def _on_map_selection_changed(self, nodes: list) -> None:
        e = self.explorer
        self.inspector.set_selection(e.selection(nodes) if e is not None and nodes else None)
        if nodes:
            self.docks["inspector"].raise_()

    # --------------------------------------------------------- other view events
    def _on_inspector_row_activated(self, patient: int, step: int) -> None:
        w = self.window
        ds = self.session.dataset
        if ds is None:
            return
        if ds.is_series:
            w.patient_view.show_patient(patient)
            w.docks["patients"].raise_()
        self._show_in_data_view(patient, step)

    def _show_in_data_view(self, patient: int, step: int) -> None:
        """Select the data view's line of (patient, step), wherever sorting has moved it."""
        ds = self.session.dataset
        model = self.window.data_view.table_model
        if ds.is_series:
            real = ds.step_mask
            source_row = int(real[:patient].sum() + (real[patient, :step].sum() if step >= 0 else 0))
        else:
            source_row = int(patient)
        order = getattr(model, "_order", None)
        view_row = source_row if order is None else int(np.flatnonzero(order == source_row)[0])
        table = self.window.data_view.table
        table.selectRow(view_row)
        table.scrollTo(model.index(view_row, 0))

    def _on_trajectories_patient_activated(self, patient: int) -> None:
        self.window.patient_view.show_patient(patient)

    def _on_transitions_flows_requested(self, n: int) -> None:
        e = self.explorer
        if n <= 0 or e is None or not e.series or self.map_view.grid is None:
            self.map_view.remove_overlay(self.flows_item)
            self.flows_item.set_flows([])
            return
        self.flows_item.set_extent(*self.map_view.grid.extent())
        self.flows_item.set_flows(e.top_flows(n))
        self.map_view.add_overlay(self.flows_item)

    # --------------------------------------------------------------- analyses
    def _start(self, name: str, task) -> None:
        try:
            self.session.start_analysis(name, task)
        except Exception as exc:  # noqa: BLE001 - e.g. another analysis is running; said in the panel
            log.warning("analysis %s not started:\n%s", name, loggable_traceback(exc))
            self.metrics.show_message(name, str(exc))

    def _on_metrics_metrics_requested(self, label: str) -> None:
        if self.explorer is not None:
            self._start("metrics", metrics_task(self.explorer, label))

    def _on_metrics_stability_requested(self, seeds: list, label: str) -> None:
        if self.explorer is not None:
            self._start("stability", stability_task(self.session.run, seeds, label or None))

    def _on_session_analysis_started(self, name: str) -> None:
        self.metrics.set_busy(name)

    def _on_session_analysis_progress(self, name: str, value) -> None:
        if name == "stability":
            self.metrics.show_progress(value)

    def _on_session_analysis_finished(self, name: str, result) -> None:
        self.metrics.set_busy(None)
        if name == "metrics":
            self.metrics.show_metrics(result)
        elif name == "stability":
            self.metrics.show_stability(result)

    def _on_session_analysis_failed(self, name: str, failure) -> None:
        self.metrics.set_busy(None)
        message, details = split_failure(failure)
        self.metrics.show_message(name, f"This could not be computed: {message}")
        self.window.show_error("The analysis stopped", message, details)

    def _on_session_analysis_cancelled(self, name: str) -> None:
        self.metrics.set_busy(None)
        self.metrics.show_message(name, "Stopped before the end; nothing was changed.")
