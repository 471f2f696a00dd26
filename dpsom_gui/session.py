"""The state of one open project and the only place that changes it."""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from .engine import Engine
from .settings import Preferences
from .workers import ImportWorker, TrainingWorker, WorkerThread

__all__ = ["Session", "TRAINING_STATES"]

log = logging.getLogger(__name__)

#: Values of :attr:`Session.state` (also what ``training_state_changed`` carries).
TRAINING_STATES = ("no_data", "idle", "running", "paused", "stopping")

_MODEL_WHY = {
    "tdpsom": "T-DPSOM is proposed because the data follow patients over time.",
    "dpsom": "DPSOM is proposed because the data have one row per sample, without a time axis.",
}


class Session(QObject):
    """Owns the dataset, the model run, the settings and the background workers.

    Views and panels never change these themselves: they call the session's methods and
    redraw when its signals arrive. Synchronous operations (open, save, start) raise
    their errors to the caller; background work reports through signals.

    Parameters
    ----------
    prefs : Preferences
        The user's preferences (refresh rate, autosave interval, recent files).
    engine : Engine, optional
        Access to :mod:`core`; tests pass one that makes fake runs.

    Signals
    -------
    project_loaded
        A project was created or opened: everything below may have changed.
    dataset_loaded(object)
        New data (a :class:`core.data.Dataset`, or None when cleared).
    config_changed(object)
        The settings to train with (:class:`core.config.Config`).
    model_changed
        Results of the run (U-matrix, hits, assignments) changed; see :meth:`map_layers`.
    live_map(object)
        A U-matrix ``(K,)`` computed from a prototype snapshot while training.
    training_progress(list)
        New :class:`core.progress.TrainProgress` records, oldest first.
    training_state_changed(str)
        One of :data:`TRAINING_STATES`.
    training_finished, training_cancelled, training_failed(str)
        Emitted after the training thread has ended; ``training_failed`` carries the message
        and technical details (see :func:`dpsom_gui.workers.split_failure`).
    import_started(str), import_progress(float), import_finished, import_failed(str)
        Background import of a file (path; share read; the failure text).
    dirty_changed(bool), path_changed(str)
        Unsaved changes, and the project file name.
    message(str)
        A short notice for the status bar (e.g. "Autosaved").
    annotations_changed(object)
        The project's annotations (supercluster grouping and names) changed; the new dict.
    analysis_started(str), analysis_progress(str, object)
        A background analysis ("metrics", "stability") began; its latest progress value.
    analysis_finished(str, object), analysis_failed(str, str), analysis_cancelled(str)
        Emitted after the analysis thread has ended: (name, result), (name, failure text),
        (name).
    """

    project_loaded = Signal()
    dataset_loaded = Signal(object)
    config_changed = Signal(object)
    model_changed = Signal()
    live_map = Signal(object)
    training_progress = Signal(object)
    training_state_changed = Signal(str)
    training_finished = Signal()
    training_cancelled = Signal()
    training_failed = Signal(str)
    import_started = Signal(str)
    import_progress = Signal(float)
    import_finished = Signal()
    import_failed = Signal(str)
    dirty_changed = Signal(bool)
    path_changed = Signal(str)
    message = Signal(str)
    annotations_changed = Signal(object)
    analysis_started = Signal(str)
    analysis_progress = Signal(str, object)
    analysis_finished = Signal(str, object)
    analysis_failed = Signal(str, str)
    analysis_cancelled = Signal(str)

    def __init__(self, prefs: Preferences, engine: Engine | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.prefs = prefs
        self.engine = engine or Engine()
        self.dataset = None
        self.run = None
        self.config = None
        self.preprocessing: dict | None = None
        self.column_roles: dict = {}
        self.history: list[dict] = []
        self.results: dict = {}
        #: JSON annotations saved with the project (``superclusters``, ``supercluster_names``).
        self.annotations: dict = {}
        self.path: str | None = None
        self.dirty = False
        self.state = "no_data"
        self._training: WorkerThread | None = None
        self._import: WorkerThread | None = None
        self._analysis: WorkerThread | None = None
        self._analysis_name = ""
        self._analysis_outcome: tuple[str, object] = ("cancelled", None)
        self._outcome: tuple[str, str] | None = None
        self._import_outcome: tuple[str, str] = ("cancelled", "")
        self._loaded_import: tuple | None = None
        self._pending_results: dict | None = None
        self._autosave = QTimer(self)
        self._autosave.timeout.connect(self._on_autosave_timeout)

    # ============================================================ properties
    @property
    def is_training(self) -> bool:
        return self._training is not None

    @property
    def is_importing(self) -> bool:
        return self._import is not None

    @property
    def is_analysing(self) -> bool:
        return self._analysis is not None

    @property
    def can_resume(self) -> bool:
        """A paused training, or a stopped one whose schedule is not complete."""
        if self.state == "paused":
            return True
        run = self.run
        if self.state != "idle" or run is None or not run.is_fitted or run.is_complete:
            return False
        # Changed settings mean a new model: resuming would train the old one.
        return self.config is None or self.config.to_dict() == run.config.to_dict()

    @property
    def title(self) -> str:
        """Project name for the window title."""
        return Path(self.path).name if self.path else "Untitled project"

    # ============================================================== project
    def new_project(self) -> None:
        """Forget data, model and file name."""
        self._require_idle("start a new project")
        self.cancel_analysis(wait=True)
        self.dataset = self.run = self.config = self.preprocessing = None
        self.column_roles, self.history, self.results, self.annotations = {}, [], {}, {}
        self._set_path(None)
        self._set_state("no_data")
        self._set_dirty(False)
        self.project_loaded.emit()
        self.dataset_loaded.emit(None)
        self.model_changed.emit()

    def open_project(self, path: str) -> None:
        """Load a project file; raises :class:`core.errors.ProjectFileError` if unreadable."""
        self._require_idle("open a project")
        self.cancel_analysis(wait=True)
        from core.config import Config

        started = time.perf_counter()
        project = self.engine.load_project(path)
        config = Config.from_dict(project.config)
        run = self.engine.run_from_project(project) if project.model_state else None
        self.dataset = project.dataset
        self.config = config
        self.run = run
        self.preprocessing = project.preprocessor
        self.column_roles = dict(project.column_roles or {})
        self.history = list(project.history or [])
        self.annotations = dict(project.annotations or {})
        self.results = self._results_of(run, project.assignments)
        self._set_path(str(path))
        self.prefs.add_recent_file(path)
        self._set_state("idle" if self.dataset is not None else "no_data")
        self._set_dirty(False)
        log.info("project opened in %.1f s (trained: %s)", time.perf_counter() - started,
                 bool(run is not None and run.is_fitted))
        self.project_loaded.emit()
        self.dataset_loaded.emit(self.dataset)
        self.config_changed.emit(self.config)
        self.model_changed.emit()

    def save_project(self, path: str | None = None) -> str:
        """Write the project (to ``path``, or its current file). While training, the
        checkpoint is written by the worker at the next step boundary."""
        path = str(path or self.path or "")
        if not path:
            raise ValueError("choose a file name first")
        if self.dataset is None:
            raise ValueError("there is nothing to save yet: import data first")
        if self._training is not None:
            self._training.worker.request_save(path)
            self.message.emit("Saving after the current training step…")
            return path
        self.engine.save_project(path, self._project())
        self._after_save(path)
        return path

    def _project(self):
        """A ``Project`` of the current state (never called while the model trains)."""
        if self.run is not None:
            project = self.run.to_project()
        else:
            project = self.engine.empty_project(self.config, self.dataset, self.preprocessing)
        if self.column_roles and not project.column_roles:
            project.column_roles = dict(self.column_roles)
        if self.history and not project.history:
            project.history = [dict(row) for row in self.history]
        if self.annotations:
            project.annotations = dict(self.annotations)
        return project

    def _after_save(self, path: str) -> None:
        self._set_path(path)
        self.prefs.add_recent_file(path)
        self._set_dirty(False)
        log.info("project saved")
        self.message.emit(f"Saved {Path(path).name}")

    # ================================================================= data
    def set_dataset(self, dataset, preprocessing: dict | None = None, column_roles: dict | None = None) -> None:
        """Use new data: proposes settings for it and drops any trained model."""
        self._require_idle("change the data")
        self.cancel_analysis(wait=True)
        self.dataset = dataset
        self.preprocessing = preprocessing
        self.column_roles = dict(column_roles or {})
        self.run, self.history, self.results, self.annotations = None, [], {}, {}
        self.config = self._on_preferred_device(self.engine.propose_config(dataset, "quick"))
        log.info("data loaded: shape %s", tuple(dataset.values.shape))
        self._set_state("idle")
        self._set_dirty(True)
        self.dataset_loaded.emit(dataset)
        self.config_changed.emit(self.config)
        self.model_changed.emit()

    def load_dataset(self, dataset, preprocessing: dict | None = None, column_roles: dict | None = None) -> None:
        """Start a new, unsaved project with these data."""
        self._require_idle("open new data")
        self._set_path(None)
        self.set_dataset(dataset, preprocessing, column_roles)
        self.project_loaded.emit()

    def open_demo(self, size: str = "demo") -> None:
        """Load the built-in synthetic ICU cohort as a new, unsaved project."""
        self.load_dataset(self.engine.demo(size))

    def import_file(self, path: str, options: dict | None = None, preprocessing: dict | None = None,
                    column_roles: dict | None = None) -> None:
        """Read a data file in the background; ``import_finished`` or ``import_failed`` follows."""
        self._require_idle("import data")
        if self._import is not None:
            raise RuntimeError("an import is already running")
        options = dict(options or {})
        engine = self.engine
        worker = ImportWorker(lambda report: engine.read_data(path, progress=report, **options))
        worker.progress.connect(self.import_progress)
        worker.loaded.connect(partial(self._on_import_loaded, preprocessing, column_roles))
        worker.failed.connect(self._on_import_failed)
        self._import = WorkerThread(worker, self)
        self._import.stopped.connect(self._on_import_stopped)
        self.import_started.emit(str(path))
        self._import.start()

    def _on_import_loaded(self, preprocessing, column_roles, dataset) -> None:
        self._import_outcome = ("finished", "")
        self._loaded_import = (dataset, preprocessing, column_roles)

    def _on_import_failed(self, text: str) -> None:
        self._import_outcome = ("failed", text)

    def _on_import_stopped(self) -> None:
        self._import = None
        outcome, text = self._import_outcome
        self._import_outcome = ("cancelled", "")
        loaded, self._loaded_import = self._loaded_import, None
        if outcome == "finished":
            self.load_dataset(*loaded)
            self.import_finished.emit()
        elif outcome == "failed":
            self.import_failed.emit(text)

    # ============================================================== settings
    def set_config(self, config) -> None:
        """Settings for the next training (ignored while a model trains). Settings that differ
        from a stopped run's make the next start a new training instead of a resume."""
        if self.is_training:
            return
        if self.config is None or config.to_dict() != self.config.to_dict():
            self.config = config
            self._set_dirty(self.dataset is not None or self.dirty)
            self.training_state_changed.emit(self.state)  # resumability may have changed

    def preset_config(self, model: str, preset: str):
        """Settings of a model kind and preset, sized for the current data."""
        if self.dataset is not None:
            proposed = self._on_preferred_device(self.engine.propose_config(self.dataset, preset))
            if proposed.model == model:
                return proposed
            return self._on_preferred_device(self.engine.make_config(model, preset, grid=proposed.grid))
        return self._on_preferred_device(self.engine.make_config(model, preset))

    def _on_preferred_device(self, config):
        """``config`` on the preferred device (``default_device``), or "auto" when this machine
        does not have that device."""
        wanted = self.prefs.default_device
        if wanted != "auto" and wanted not in {d.get("name") for d in self.devices()}:
            log.warning("preferred device %s is not available here; using automatic choice", wanted)
            wanted = "auto"
        return config if config.train.device == wanted else config.replace(**{"train.device": wanted})

    def model_suggestion(self) -> str:
        if self.dataset is None:
            return ""
        return _MODEL_WHY["tdpsom" if self.dataset.is_series else "dpsom"]

    def estimate(self, config=None) -> dict | None:
        """Time and memory a training with ``config`` would take, or None if unknown."""
        if self.dataset is None:
            return None
        try:
            return dict(self.engine.make_run(self.dataset, config or self.config, self.preprocessing).estimate())
        except Exception as exc:  # noqa: BLE001 - an estimate is a courtesy; never block the form
            log.warning("no estimate: %s", type(exc).__name__)
            return None

    def devices(self) -> list[dict]:
        try:
            return self.engine.available_devices()
        except Exception as exc:  # noqa: BLE001
            log.warning("device detection failed: %s", type(exc).__name__)
            return [{"name": "cpu", "label": "Processor (CPU)", "memory_bytes": 0}]

    # ============================================================== training
    def start_training(self, config=None) -> None:
        """Train a new model from scratch with ``config`` (default: the current settings)."""
        self._require_idle("start training")
        self.cancel_analysis(wait=True)
        if self.dataset is None:
            raise RuntimeError("import data before training")
        if config is not None:
            self.set_config(config)
        self.config.validate()
        run = self.engine.make_run(self.dataset, self.config, self.preprocessing)
        run.validate()  # data that cannot suit this model or grid is refused before starting
        self.prefs.set("default_device", self.config.train.device)  # proposed for the next data
        self.run = run
        self.history, self.results = [], {}
        self.model_changed.emit()
        self._start_worker(resume=False)

    def resume_training(self) -> None:
        """Continue a paused training, or a stopped one from its saved state."""
        if self.state == "paused":
            self._training.worker.resume()
            return
        if not self.can_resume:
            raise RuntimeError("there is no stopped training to resume")
        self._start_worker(resume=True)

    def pause_training(self) -> None:
        if self.state == "running":
            self._training.worker.pause()

    def cancel_training(self) -> None:
        """Stop at the next step boundary; the model keeps what it learnt."""
        if self._training is not None and self.state in ("running", "paused"):
            self._training.worker.cancel()
            self._set_state("stopping")

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop every background task and wait for it (bounded); True if all ended."""
        ok = True
        self._autosave.stop()
        for name in ("_training", "_import", "_analysis"):
            job = getattr(self, name)
            if job is not None:
                job.stopped.disconnect()
                ok = job.stop(timeout_ms) and ok
                setattr(self, name, None)
        if self.state in ("running", "paused", "stopping"):
            self._set_state("idle")
        return ok

    def _start_worker(self, resume: bool) -> None:
        self.cancel_analysis(wait=True)
        self._drop_groupings()  # training moves the prototypes: a saved grouping no longer fits
        run = self.run
        worker = TrainingWorker(
            partial(run.iter_train, resume=resume),
            emit_every=self.prefs.emit_every_steps,
            save=self._checkpoint,
            after=partial(self._results_of, run),
        )
        worker.progress.connect(self._on_worker_progress)
        worker.paused.connect(partial(self._set_state, "paused"))
        worker.resumed.connect(partial(self._set_state, "running"))
        worker.saved.connect(self._on_worker_saved)
        worker.save_failed.connect(self._on_worker_save_failed)
        worker.finished.connect(self._on_worker_finished)
        worker.cancelled.connect(partial(self._set_outcome, "cancelled", ""))
        worker.failed.connect(partial(self._set_outcome, "failed"))
        self._outcome = None
        self._training = WorkerThread(worker, self)
        self._training.stopped.connect(self._on_training_stopped)
        minutes = self.prefs.autosave_minutes
        if minutes > 0:
            self._autosave.start(minutes * 60_000)
        log.info("training %s (%s, grid %dx%d)", "resumed" if resume else "started", self.config.model,
                 self.config.grid.height, self.config.grid.width)
        self._set_state("running")
        self._training.start()

    def _checkpoint(self, path: str) -> None:
        """Runs in the training thread, between two steps."""
        self.engine.save_project(path, self._project())

    def _set_outcome(self, outcome: str, text: str) -> None:
        self._outcome = (outcome, text)

    def _on_worker_finished(self) -> None:
        # Delivered before the thread's own end, so the worker is still referenced here.
        self._pending_results = self._training.worker.result if self._training else None
        self._set_outcome("finished", "")

    def _on_worker_progress(self, records: list) -> None:
        for p in records:
            self.history.append({"phase": p.phase, "epoch": p.epoch, "step": p.step, **p.losses})
        snapshot = next((p.prototypes for p in reversed(records) if p.prototypes is not None), None)
        if snapshot is not None and self.run is not None:
            try:
                self.live_map.emit(np.asarray(self.engine.umatrix(snapshot, self.run.grid)))
            except Exception as exc:  # noqa: BLE001 - a missed frame must not stop training
                log.warning("live map skipped: %s", type(exc).__name__)
        if not self.dirty:
            self._set_dirty(True)
        self.training_progress.emit(records)

    def _on_training_stopped(self) -> None:
        self._autosave.stop()
        self._training = None
        outcome, text = self._outcome or ("cancelled", "")
        self._outcome = None
        self._set_state("idle")
        self._set_dirty(True)
        if outcome == "finished":
            self.results = self._pending_results or {}
        self._pending_results = None
        log.info("training ended: %s", outcome)
        if outcome == "finished":
            self.model_changed.emit()
            self.training_finished.emit()
        elif outcome == "failed":
            self.training_failed.emit(text)
        else:
            self.training_cancelled.emit()

    def _on_worker_saved(self, path: str) -> None:
        autosave = self.path is None and Path(path).parent == self.prefs.autosave_directory()
        if autosave:
            self.message.emit(f"Autosaved to {path}")
        else:
            self._after_save(path)

    def _on_worker_save_failed(self, text: str) -> None:
        self.message.emit("Saving failed: " + text.split("\n", 1)[0])

    def _on_autosave_timeout(self) -> None:
        if self._training is None:
            return
        path = self.path
        if path is None:
            folder = self.prefs.autosave_directory()
            folder.mkdir(parents=True, exist_ok=True)
            path = str(folder / f"untitled-{time.strftime('%Y%m%d-%H%M%S')}.h5")
        self._training.worker.request_save(path)

    # ============================================================ annotations
    def set_annotations(self, **changes) -> None:
        """Change the project's annotations (a value of None removes the key); marks the
        project unsaved and emits ``annotations_changed``."""
        new = dict(self.annotations)
        for key, value in changes.items():
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        if new != self.annotations:
            self.annotations = new
            self._set_dirty(True)
            self.annotations_changed.emit(dict(new))

    def _drop_groupings(self) -> None:
        if "superclusters" in self.annotations or "supercluster_names" in self.annotations:
            self.set_annotations(superclusters=None, supercluster_names=None)

    # ============================================================== analyses
    def start_analysis(self, name: str, task) -> None:
        """Run ``task(report)`` (see :class:`~dpsom_gui.analysis_workers.AnalysisWorker`) in
        the background; one analysis at a time, never while a model trains."""
        from .analysis_workers import AnalysisWorker

        self._require_idle("analyse the map")
        if self._analysis is not None:
            raise RuntimeError("another analysis is still running; wait for it or stop it first")
        worker = AnalysisWorker(task)
        worker.progress.connect(lambda value: self.analysis_progress.emit(name, value))
        worker.result.connect(lambda value: setattr(self, "_analysis_outcome", ("finished", value)))
        worker.failed.connect(lambda text: setattr(self, "_analysis_outcome", ("failed", text)))
        self._analysis_outcome = ("cancelled", None)
        self._analysis_name = name
        self._analysis = WorkerThread(worker, self)
        self._analysis.stopped.connect(self._on_analysis_stopped)
        log.info("analysis %s started", name)
        self.analysis_started.emit(name)
        self._analysis.start()

    def cancel_analysis(self, wait: bool = False) -> None:
        """Stop the running analysis at its next progress report (and wait for it if asked)."""
        job = self._analysis
        if job is None:
            return
        if wait:
            job.stop()
        else:
            job.worker.cancel()

    def _on_analysis_stopped(self) -> None:
        self._analysis = None
        name, (outcome, value) = self._analysis_name, self._analysis_outcome
        self._analysis_outcome = ("cancelled", None)
        log.info("analysis %s ended: %s", name, outcome)
        if outcome == "finished":
            self.analysis_finished.emit(name, value)
        elif outcome == "failed":
            self.analysis_failed.emit(name, str(value))
        else:
            self.analysis_cancelled.emit(name)

    # =============================================================== results
    def _results_of(self, run, stored=None) -> dict:
        """U-matrix, hits and assignments of a trained run (runs in the worker thread)."""
        if run is None or not run.is_fitted:
            return {}
        out = {"umatrix": np.asarray(run.umatrix()), "hits": np.asarray(run.hits())}
        assignments = stored if stored else run.assignments()
        out.update({k: np.asarray(v) for k, v in dict(assignments).items()})
        return out

    def map_layers(self) -> dict:
        """What the map can show: name -> ``(K,)`` values."""
        return {k: self.results[k] for k in ("umatrix", "hits") if k in self.results}

    # ============================================================== helpers
    def _require_idle(self, what: str) -> None:
        if self.is_training:
            raise RuntimeError(f"stop training before you {what}")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.training_state_changed.emit(state)

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirty_changed.emit(dirty)

    def _set_path(self, path: str | None) -> None:
        self.path = path
        self.path_changed.emit(path or "")
