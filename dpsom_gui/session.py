"""The state of one open project and the only place that changes it."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from .engine import Engine
from .settings import Preferences
from .workers import Failure, ImportWorker, TrainingWorker, WorkerThread

__all__ = ["Session", "TrainingState", "TRAINING_STATES", "ProjectExtras"]

log = logging.getLogger(__name__)


class TrainingState(str, Enum):
    """What the session is doing with its model (:attr:`Session.state`).

    A ``str`` subclass, so ``state == "idle"`` keeps working where plain names are used.
    """

    NO_DATA = "no_data"
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:  # equal to its name as a string, so it must hash like one
        return str.__hash__(self.value)


#: Names of the :class:`TrainingState` values, in order.
TRAINING_STATES = tuple(state.value for state in TrainingState)


@dataclass(frozen=True)
class ProjectExtras:
    """What a checkpoint written by the training thread needs from the GUI thread's state.

    Taken on the GUI thread when the save is requested, and never changed afterwards, so the
    training thread does not read ``history``, ``annotations`` or ``column_roles`` while the
    GUI thread changes them.
    """

    column_roles: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    history: tuple = ()
    annotations: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class _Loaded:
    """A project or the demo read in the background, ready to be shown on the GUI thread."""

    dataset: object
    config: object
    run: object = None
    results: dict = field(default_factory=dict)
    preprocessing: dict | None = None
    column_roles: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    annotations: dict = field(default_factory=dict)
    path: str | None = None

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
    training_state_changed(object)
        The new :class:`TrainingState`.
    training_finished, training_cancelled, training_failed(object)
        Emitted after the training thread has ended; ``training_failed`` carries a
        :class:`dpsom_gui.workers.Failure` (message and technical details).
    import_started(str), import_progress(float), import_finished, import_failed(object)
        Background import of a file (path; share read; the :class:`~dpsom_gui.workers.Failure`).
    loading_started(str), loading_failed(object), loading_ended
        A project or the demo being read in the background (what, in words; the
        :class:`~dpsom_gui.workers.Failure`). ``loading_ended`` always comes last, after
        ``project_loaded`` or ``loading_failed``, also when the loading was stopped.
    dirty_changed(bool), path_changed(str)
        Unsaved changes, and the project file name.
    message(str)
        A short notice for the status bar (e.g. "Autosaved").
    annotations_changed(object)
        The project's annotations (supercluster grouping and names) changed; the new dict.
    analysis_started(str), analysis_progress(str, object)
        A background analysis ("metrics", "stability") began; its latest progress value.
    analysis_finished(str, object), analysis_failed(str, object), analysis_cancelled(str)
        Emitted after the analysis thread has ended: (name, result), (name, :class:`~dpsom_gui.workers.Failure`),
        (name).
    """

    project_loaded = Signal()
    dataset_loaded = Signal(object)
    config_changed = Signal(object)
    model_changed = Signal()
    live_map = Signal(object)
    training_progress = Signal(object)
    training_state_changed = Signal(object)
    training_finished = Signal()
    training_cancelled = Signal()
    training_failed = Signal(object)
    import_started = Signal(str)
    import_progress = Signal(float)
    import_finished = Signal()
    import_failed = Signal(object)
    loading_started = Signal(str)
    loading_failed = Signal(object)
    loading_ended = Signal()
    dirty_changed = Signal(bool)
    path_changed = Signal(str)
    message = Signal(str)
    annotations_changed = Signal(object)
    analysis_started = Signal(str)
    analysis_progress = Signal(str, object)
    analysis_finished = Signal(str, object)
    analysis_failed = Signal(str, object)
    analysis_cancelled = Signal(str)

    def __init__(self, prefs: Preferences, engine: Engine | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.prefs = prefs
        self.engine = engine or Engine()
        self.dataset = None
        self.run = None
        self.config = None
        self.preprocessing: dict | None = None
        self.scaling_reason = ""  # why the rule chose the scaling, when the user left it automatic
        self.column_roles: dict = {}
        self.history: list[dict] = []
        self.results: dict = {}
        #: JSON annotations saved with the project (``superclusters``, ``supercluster_names``).
        self.annotations: dict = {}
        self.path: str | None = None
        self.dirty = False
        self.state = TrainingState.NO_DATA
        self._training: WorkerThread | None = None
        self._import: WorkerThread | None = None
        self._load: WorkerThread | None = None
        self._load_outcome: tuple[str, object] = ("cancelled", None)
        self._analysis: WorkerThread | None = None
        self._analysis_name = ""
        self._analysis_outcome: tuple[str, object] = ("cancelled", None)
        self._outcome: tuple[str, Failure | None] | None = None
        self._import_outcome: tuple[str, Failure | None] = ("cancelled", None)
        self._loaded_import: tuple | None = None
        self._pending_results: dict | None = None
        #: The OS lock on the project file while this session trains it (another process
        #: training the same project is refused, and the other way round).
        self._lock = None
        #: A new training over a saved project autosaves next to it (``NAME.unfinished.h5``)
        #: until the user saves: a crash mid-run must not cost the saved model.
        self._keep_saved = False
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
    def is_loading(self) -> bool:
        """A project or the demo is being read in the background."""
        return self._load is not None

    @property
    def is_trained(self) -> bool:
        """The session holds a model that has learnt something (finished or not)."""
        return self.run is not None and bool(getattr(self.run, "is_fitted", False))

    @property
    def can_resume(self) -> bool:
        """A paused training, or a stopped one whose schedule is not complete."""
        if self.state == TrainingState.PAUSED:
            return True
        run = self.run
        if self.state != TrainingState.IDLE or run is None or not run.is_fitted or run.is_complete:
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
        self.scaling_reason = ""
        self.column_roles, self.history, self.results, self.annotations = {}, [], {}, {}
        self._set_path(None)
        self._set_state(TrainingState.NO_DATA)
        self._set_dirty(False)
        self.project_loaded.emit()
        self.dataset_loaded.emit(None)
        self.model_changed.emit()

    def open_project(self, path: str) -> None:
        """Load a project file now (blocking); raises :class:`core.errors.ProjectFileError`
        if unreadable. The window uses :meth:`open_project_in_background`."""
        self._require_idle("open a project")
        self._apply_loaded(self._read_project(str(path)))

    def open_project_in_background(self, path: str) -> None:
        """Read a project file on a worker thread; ``project_loaded`` (or ``loading_failed``)
        and then ``loading_ended`` follow. The current project stays until the file is read."""
        self._require_idle("open a project")
        path = str(path)
        self._start_loading(f"Opening {Path(path).name}…", lambda report: self._read_project(path))

    def _read_project(self, path: str) -> _Loaded:
        """Everything slow about opening a project (file, model, map layers); thread-safe:
        touches no session state."""
        from core.config import Config

        started = time.perf_counter()
        project = self.engine.load_project(path)
        config = Config.from_dict(project.config)
        run = self.engine.run_from_project(project) if project.model_state else None
        results = self._results_of(run, project.assignments)
        log.info("project read in %.1f s (trained: %s)", time.perf_counter() - started,
                 bool(run is not None and run.is_fitted))
        return _Loaded(dataset=project.dataset, config=config, run=run, results=results,
                       preprocessing=project.preprocessor, column_roles=dict(project.column_roles or {}),
                       history=list(project.history or []), annotations=dict(project.annotations or {}),
                       path=path)

    def _apply_loaded(self, loaded: _Loaded) -> None:
        self.cancel_analysis(wait=True)
        self.dataset = loaded.dataset
        self.config = loaded.config
        self.run = loaded.run
        self.preprocessing = loaded.preprocessing
        self.scaling_reason = ""
        self.column_roles = dict(loaded.column_roles)
        self.history = list(loaded.history)
        self.annotations = dict(loaded.annotations)
        self.results = dict(loaded.results)
        self._set_path(loaded.path)
        self.prefs.add_recent_file(loaded.path)
        self._set_state(TrainingState.IDLE if self.dataset is not None else TrainingState.NO_DATA)
        self._set_dirty(False)
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
            self._training.worker.request_save(path, self._extras())
            self.message.emit("Saving after the current training step…")
            return path
        self.engine.save_project(path, self._project(self._extras()))
        self._after_save(path)
        return path

    def _extras(self) -> ProjectExtras:
        """An immutable copy of the GUI thread's part of the project (see :class:`ProjectExtras`)."""
        return ProjectExtras(column_roles=MappingProxyType(copy.deepcopy(self.column_roles)),
                             history=tuple(MappingProxyType(dict(row)) for row in self.history),
                             annotations=MappingProxyType(copy.deepcopy(self.annotations)))

    def _project(self, extras: ProjectExtras):
        """A ``Project`` of the model (owned by whichever thread calls this) and ``extras``."""
        if self.run is not None:
            project = self.run.to_project()
        else:
            project = self.engine.empty_project(self.config, self.dataset, self.preprocessing)
        if extras.column_roles and not project.column_roles:
            project.column_roles = copy.deepcopy(dict(extras.column_roles))
        if extras.history and not project.history:
            project.history = [dict(row) for row in extras.history]
        if extras.annotations:
            project.annotations = copy.deepcopy(dict(extras.annotations))
        return project

    def _after_save(self, path: str) -> None:
        from core.io.outputs import unfinished_path

        # The user's own save supersedes the autosaves of this run.
        self._keep_saved = False
        unfinished_path(path).unlink(missing_ok=True)
        self._set_path(path)
        self.prefs.add_recent_file(path)
        self._set_dirty(False)
        log.info("project saved")
        self.message.emit(f"Saved {Path(path).name}")

    # ================================================================= data
    def set_dataset(self, dataset, preprocessing: dict | None = None, column_roles: dict | None = None,
                    config=None, changed: bool = True) -> None:
        """Use new data: proposes settings for it (unless ``config`` is given) and drops any
        trained model. ``changed=False`` for data that need no saving (the demo)."""
        self._require_idle("change the data")
        self.cancel_analysis(wait=True)
        self.dataset = dataset
        # An automatic scaling is resolved now, by core's rule, so that the project records
        # the scaling really used and the user can be told why (None stays None: a run then
        # applies the same rule).
        resolved, self.scaling_reason = self.engine.resolve_preprocessing(dataset, preprocessing)
        self.preprocessing = None if preprocessing is None else resolved
        self.column_roles = dict(column_roles or {})
        self.run, self.history, self.results, self.annotations = None, [], {}, {}
        self.config = config if config is not None else \
            self._on_preferred_device(self.engine.propose_config(dataset, "quick"))
        log.info("data loaded: shape %s", tuple(dataset.values.shape))
        self._set_state(TrainingState.IDLE)
        self._set_dirty(changed)
        self.dataset_loaded.emit(dataset)
        self.config_changed.emit(self.config)
        self.model_changed.emit()

    def load_dataset(self, dataset, preprocessing: dict | None = None, column_roles: dict | None = None,
                     config=None, changed: bool = True) -> None:
        """Start a new, unsaved project with these data."""
        self._require_idle("open new data")
        self._set_path(None)
        self.set_dataset(dataset, preprocessing, column_roles, config=config, changed=changed)
        self.project_loaded.emit()

    def open_demo(self, size: str = "demo") -> None:
        """Load the built-in synthetic ICU cohort now (blocking) as a new project. Nothing
        needs saving until the user changes something: the demo can always be made again."""
        self._require_idle("open the demo")
        dataset, config = self._read_demo(size)
        self.load_dataset(dataset, config=config, changed=False)

    def open_demo_in_background(self, size: str = "demo") -> None:
        """:meth:`open_demo` with the cohort made on a worker thread (signals as for
        :meth:`open_project_in_background`)."""
        self._require_idle("open the demo")
        self._start_loading("Opening the demo cohort…", lambda report: self._read_demo(size))

    def _read_demo(self, size: str):
        dataset = self.engine.demo(size)
        return dataset, self.engine.propose_config(dataset, "quick")

    def start_new_run_project(self) -> None:
        """Keep the data and settings in a new, unsaved project without the trained model
        (so that the current project file keeps its map)."""
        self._require_idle("start a new project")
        self.cancel_analysis(wait=True)
        config = self.config
        self._set_path(None)
        self.set_dataset(self.dataset, self.preprocessing, self.column_roles, config=config)
        self.project_loaded.emit()

    def _start_loading(self, what: str, read) -> None:
        if self._load is not None or self._import is not None:
            raise RuntimeError("a file is already being read; wait for it first")
        worker = ImportWorker(read)
        worker.loaded.connect(lambda value: setattr(self, "_load_outcome", ("loaded", value)))
        worker.failed.connect(lambda failure: setattr(self, "_load_outcome", ("failed", failure)))
        self._load_outcome = ("cancelled", None)
        self._load = WorkerThread(worker, self)
        self._load.stopped.connect(self._on_load_stopped)
        log.info("loading in the background")
        self.loading_started.emit(what)
        self._load.start()

    def _on_load_stopped(self) -> None:
        self._load = None
        outcome, value = self._load_outcome
        self._load_outcome = ("cancelled", None)
        try:
            if outcome == "loaded":
                if isinstance(value, _Loaded):
                    self._apply_loaded(value)
                else:
                    dataset, config = value
                    self.load_dataset(dataset, config=config, changed=False)
            elif outcome == "failed":
                self.loading_failed.emit(value)
        except Exception as exc:  # noqa: BLE001 - e.g. the views refuse the data; reported like a read error
            self.loading_failed.emit(Failure.from_exception(exc))
        finally:
            self.loading_ended.emit()

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
        self._import_outcome = ("finished", None)
        self._loaded_import = (dataset, preprocessing, column_roles)

    def _on_import_failed(self, failure: Failure) -> None:
        self._import_outcome = ("failed", failure)

    def _on_import_stopped(self) -> None:
        self._import = None
        outcome, failure = self._import_outcome
        self._import_outcome = ("cancelled", None)
        loaded, self._loaded_import = self._loaded_import, None
        if outcome == "finished":
            self.load_dataset(*loaded)
            self.import_finished.emit()
        elif outcome == "failed":
            self.import_failed.emit(failure)

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

    def grid_advice(self, config) -> tuple[str, str, object]:
        """How well the map size of ``config`` suits the data: ``(level, text, proposal)``.

        ``level`` is ``""`` (fine; ``text`` says what the data suggest), ``"warning"`` (more
        cells than the data can fill: many would stay empty or hold one patient) or
        ``"error"`` (more cells than points: training would be refused). ``proposal`` is the
        grid :mod:`core` proposes for these data (None without data).
        """
        ds = self.dataset
        if ds is None or config is None:
            return "", "", None
        proposal = self.engine.propose_config(ds, config.preset).grid
        grid = config.grid
        cells, suggested = grid.height * grid.width, proposal.height * proposal.width
        if ds.is_series:
            what = f"{ds.n_patients:,} patients, {ds.n_points:,} time points"
        else:
            what = f"{ds.n_points:,} rows"
        problem = self.engine.grid_problem(ds.n_points, grid, "time points" if ds.is_series else "rows")
        if problem:
            return "error", problem, proposal
        if cells > 2 * suggested:
            return ("warning", f"{grid.height}x{grid.width} = {cells:,} cells for {what}. Many cells will stay "
                    f"empty or hold a single patient, and the map becomes hard to read. These data suggest "
                    f"{proposal.height}x{proposal.width}.", proposal)
        return "", f"These data ({what}) suggest {proposal.height}x{proposal.width}.", proposal

    def settings_reasons(self, config=None) -> list[str]:
        """The rule's reason for each setting it chose from these data, for ``config``'s preset
        (default the session's); empty without data."""
        config = config if config is not None else self.config
        if self.dataset is None or config is None:
            return []
        return list(self.engine.propose_settings(self.dataset, config.preset).reasons)

    def model_suggestion(self) -> str:
        """Why the model kind was proposed, and for an automatic scaling which one the rule
        chose and why (shown in the training panel)."""
        if self.dataset is None:
            return ""
        why = _MODEL_WHY["tdpsom" if self.dataset.is_series else "dpsom"]
        if self.scaling_reason:
            why += f" Scaling, chosen from the data: {self.scaling_reason}."
        return why

    def estimate(self, config=None, stop=None) -> dict | None:
        """Time and memory a training with ``config`` would take, or None if unknown or stopped
        (``stop``: asked between the probe's steps, see :func:`core.estimate.estimate_training`)."""
        from core.estimate import EstimateStopped

        if self.dataset is None or not self.engine.is_ready():
            return None
        try:
            return dict(self.engine.make_run(self.dataset, config or self.config, self.preprocessing).estimate(stop))
        except EstimateStopped:
            return None
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
        if self.state == TrainingState.PAUSED:
            self._training.worker.resume()
            return
        if not self.can_resume:
            raise RuntimeError("there is no stopped training to resume")
        self._start_worker(resume=True)

    def pause_training(self) -> None:
        if self.state == TrainingState.RUNNING:
            self._training.worker.pause()

    def cancel_training(self) -> None:
        """Stop at the next step boundary; the model keeps what it learnt."""
        if self._training is not None and self.state in (TrainingState.RUNNING, TrainingState.PAUSED):
            self._training.worker.cancel()
            self._set_state(TrainingState.STOPPING)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop every background task and wait for it (bounded); True if all ended."""
        ok = True
        self._autosave.stop()
        loading = self._load is not None
        for name in ("_training", "_import", "_analysis", "_load"):
            job = getattr(self, name)
            if job is not None:
                job.stopped.disconnect()
                ok = job.stop(timeout_ms) and ok
                setattr(self, name, None)
        self._release_lock()
        if self.state in (TrainingState.RUNNING, TrainingState.PAUSED, TrainingState.STOPPING):
            self._set_state(TrainingState.IDLE)
        if loading:
            self.loading_ended.emit()  # whoever waits for the file hears that it will not come
        return ok

    def _start_worker(self, resume: bool) -> None:
        from core.runs import ProjectTraining

        self._release_lock()
        # The lock and the checkpoint rule of 'dpsom train' and 'dpsom resume'.
        target = ProjectTraining(self.path, resume=resume) if self.path else None
        if target is not None:
            self._lock = target.acquire()  # ProjectBusy: another process trains it
        self._keep_saved = target is not None and target.keeps_existing
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
        worker.paused.connect(partial(self._set_state, TrainingState.PAUSED))
        worker.resumed.connect(partial(self._set_state, TrainingState.RUNNING))
        worker.saved.connect(self._on_worker_saved)
        worker.save_failed.connect(self._on_worker_save_failed)
        worker.finished.connect(self._on_worker_finished)
        worker.cancelled.connect(partial(self._set_outcome, "cancelled", None))
        worker.failed.connect(partial(self._set_outcome, "failed"))
        self._outcome = None
        self._training = WorkerThread(worker, self)
        self._training.stopped.connect(self._on_training_stopped)
        minutes = self.prefs.autosave_minutes
        if minutes > 0:
            self._autosave.start(minutes * 60_000)
        log.info("training %s (%s, grid %dx%d)", "resumed" if resume else "started", self.config.model,
                 self.config.grid.height, self.config.grid.width)
        self._set_state(TrainingState.RUNNING)
        self._training.start()

    def _checkpoint(self, path: str, extras: ProjectExtras) -> None:
        """Runs in the training thread, between two steps: reads the model, which that thread
        owns while it trains, and ``extras``, the snapshot taken when the save was asked for."""
        self.engine.save_project(path, self._project(extras))

    def _set_outcome(self, outcome: str, failure: Failure | None) -> None:
        self._outcome = (outcome, failure)

    def _on_worker_finished(self) -> None:
        # Delivered before the thread's own end, so the worker is still referenced here.
        self._pending_results = self._training.worker.result if self._training else None
        self._set_outcome("finished", None)

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

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _on_training_stopped(self) -> None:
        self._release_lock()
        self._autosave.stop()
        self._training = None
        outcome, failure = self._outcome or ("cancelled", None)
        self._outcome = None
        self._set_state(TrainingState.IDLE)
        self._set_dirty(True)
        if outcome == "finished":
            self.results = self._pending_results or {}
        self._pending_results = None
        log.info("training ended: %s", outcome)
        if outcome == "finished":
            self.model_changed.emit()
            self.training_finished.emit()
        elif outcome == "failed":
            self.training_failed.emit(failure)
        else:
            self.training_cancelled.emit()

    def _on_worker_saved(self, path: str) -> None:
        from core.io.outputs import unfinished_path

        autosave = (self.path is None and Path(path).parent == self.prefs.autosave_directory()) or (
            self.path is not None and Path(path) == unfinished_path(self.path))
        if autosave:
            self.message.emit(f"Autosaved to {path}")
        else:
            self._after_save(path)

    def _on_worker_save_failed(self, failure: Failure) -> None:
        self.message.emit("Saving failed: " + failure.message.split("\n", 1)[0])

    def _on_autosave_timeout(self) -> None:
        if self._training is None:
            return
        from core.io.outputs import unfinished_path

        path = str(unfinished_path(self.path)) if self.path and self._keep_saved else self.path
        if path is None:
            folder = self.prefs.autosave_directory()
            folder.mkdir(parents=True, exist_ok=True)
            path = str(folder / f"untitled-{time.strftime('%Y%m%d-%H%M%S')}.h5")
        self._training.worker.request_save(path, self._extras())

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
        worker.failed.connect(lambda failure: setattr(self, "_analysis_outcome", ("failed", failure)))
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
            self.analysis_failed.emit(name, value)
        else:
            self.analysis_cancelled.emit(name)

    # =============================================================== results
    def _results_of(self, run, stored=None) -> dict:
        """U-matrix, hits and assignments of a trained run, and a T-DPSOM run's smoothed node
        paths (runs in the worker thread: the paths of 2,000 patients take seconds)."""
        if run is None or not run.is_fitted:
            return {}
        out = {"umatrix": np.asarray(run.umatrix()), "hits": np.asarray(run.hits())}
        assignments = stored if stored else run.assignments()
        out.update({k: np.asarray(v) for k, v in dict(assignments).items()})
        if getattr(run, "temporal", False) and "proba" in out:  # older projects may hold the nodes alone
            out["path_node"] = np.asarray(run.node_paths())
        return out

    def map_layers(self) -> dict:
        """What the map can show: name -> ``(K,)`` values."""
        return {k: self.results[k] for k in ("umatrix", "hits") if k in self.results}

    # ============================================================== helpers
    def _require_idle(self, what: str) -> None:
        if self.is_training:
            raise RuntimeError(f"stop training before you {what}")
        if self.is_loading:
            raise RuntimeError(f"wait until the file is read before you {what}")

    def _set_state(self, state: TrainingState) -> None:
        state = TrainingState(state)
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
