"""Training into a project file: new runs, the project lock, checkpoints, the final save, resuming.

The application layer that the ``dpsom`` command and the desktop app share. A
:class:`ProjectTraining` holds a project's training lock and decides where checkpoints go:
a run over an existing project writes its checkpoints to a sibling file
(:func:`core.io.outputs.unfinished_path`), so the saved project stays as it is until the new
run is complete. :meth:`ProjectTraining.train` drives a run, reporting every optimiser step
to a callback and saving a checkpoint every ``autosave`` seconds, also as one process of a
group (:mod:`core.distributed`, where rank 0 writes and holds the locks).

Examples
--------
>>> from core.data.demo import demo_table
>>> run, proposal = new_run(demo_table(), TrainOptions(grid=(3, 3), max_steps=5))  # doctest: +SKIP
>>> with ProjectTraining("run.h5") as target:  # doctest: +SKIP
...     result = target.train(run, autosave=60.0, on_progress=lambda p: print(p.step))
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import InputError

if TYPE_CHECKING:  # the engine loads with the first run, not with this module
    from .cohort_run import CohortRun
    from .config import Config
    from .data.dataset import Dataset
    from .defaults import Proposal
    from .distributed import Cluster
    from .io.cohort_h5 import Cohort
    from .io.project_h5 import Project
    from .progress import TrainProgress
    from .workflow import ModelRun, TrainingRun

__all__ = ["TrainOptions", "TrainResult", "TrainingInterrupted", "ProjectTraining", "new_run", "new_cohort_run",
           "load_run", "save_run", "prepare_resume", "open_cluster", "local_group_command", "describe_device"]


def _is_main_process() -> bool:
    # Before a group is joined, torchrun's environment says which process this is.
    return os.environ.get("RANK", "0") == "0"


# --------------------------------------------------------------------------- new runs
@dataclass(frozen=True)
class TrainOptions:
    """A user's choices for a new run; ``None`` keeps what the data-driven proposal says.

    Attributes
    ----------
    model : {"dpsom", "tdpsom"}, optional
        Default: T-DPSOM for time series, DPSOM for tables.
    preset : {"quick", "paper"}
    grid : (int, int), optional
        Map height and width.
    topology : {"rect", "hex"}, optional
    toroidal, parity : bool, optional
    epochs, batch_size, latent_dim, max_steps : int, optional
        Joint-training epochs, batch size, latent dimension, and a step limit for a trial.
    scaling : {"auto", "zscore", "minmax", "robust", "none"}
        ``auto`` takes the proposal's scaling.
    seed : int
    device : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    deterministic : bool
        Repeatable results on the CPU (slower).
    distributed : bool
        The run trains in a process group, which checks the device when it is joined.
    """

    model: str | None = None
    preset: str = "quick"
    grid: tuple[int, int] | None = None
    topology: str | None = None
    toroidal: bool | None = None
    parity: bool | None = None
    epochs: int | None = None
    batch_size: int | None = None
    latent_dim: int | None = None
    max_steps: int | None = None
    scaling: str = "auto"
    seed: int = 2020
    device: str = "auto"
    deterministic: bool = False
    distributed: bool = False

    def settings(self, proposed: "Config", model: str) -> "Config":
        """``proposed`` with these choices applied and checked.

        Raises
        ------
        InputError
            A value the configuration refuses, or a device that is not there.
        """
        cfg = proposed
        if self.parity is not None and self.parity != cfg.parity:
            from .config import make_config

            # Parity changes the preset's defaults as a whole; the proposed size and batch stay.
            cfg = make_config(model, self.preset, parity=self.parity).replace(
                **{"grid.height": cfg.grid.height, "grid.width": cfg.grid.width, "train.device": self.device,
                   "train.batch_size": cfg.train.batch_size})
        changes: dict = {"train.seed": self.seed, "train.deterministic": bool(self.deterministic)}
        if self.grid:
            changes["grid.height"], changes["grid.width"] = self.grid
        for key, value in (("grid.topology", self.topology), ("grid.toroidal", self.toroidal)):
            if value is not None:
                changes[key] = value
        for key, value in (("train.epochs_joint", self.epochs), ("train.batch_size", self.batch_size),
                           ("network.latent_dim", self.latent_dim), ("train.max_steps", self.max_steps)):
            if value:
                changes[key] = value
        try:
            cfg = cfg.replace(**changes).validate()
            if not self.distributed:
                from .training import select_device

                select_device(self.device)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        return cfg


def new_run(dataset: "Dataset", options: TrainOptions, *, read_options: dict | None = None,
            embed: bool = True) -> tuple["ModelRun", "Proposal"]:
    """A checked, untrained run for ``dataset`` with the proposal's settings and ``options``.

    Parameters
    ----------
    dataset : Dataset
    options : TrainOptions
    read_options : dict, optional
        Reader arguments (``path`` included) that read ``dataset`` again; saved with the project.
    embed : bool
        Store the data inside the project (True) or only a reference with a content hash.

    Returns
    -------
    run : ModelRun
    proposal : Proposal
        The settings chosen from the data and why (options given take precedence).

    Raises
    ------
    InputError
        Options the configuration refuses, or data that does not suit the model or grid.
    """
    from .workflow import ModelRun, propose_settings

    model = options.model or ("tdpsom" if dataset.is_series else "dpsom")
    proposal = propose_settings(dataset, options.preset, device=options.device, model=model)
    cfg = options.settings(proposal.config, model)
    scaling = proposal.preprocessing["scaling"] if options.scaling == "auto" else options.scaling
    run = ModelRun(dataset, cfg, {"scaling": scaling})
    run.read_options = read_options
    run.embed_data = embed
    run.validate()
    return run, proposal


def new_cohort_run(cohort: "Cohort", options: TrainOptions) -> "CohortRun":
    """A checked, untrained run that reads ``cohort`` in shards, never loading it whole.

    It gets the settings the same data would get loaded as a :class:`Dataset`. The cohort
    stays open for training; the caller closes it.

    Raises
    ------
    InputError
        Options the configuration refuses, or a grid larger than the cohort.
    """
    from .cohort_run import CohortRun
    from .workflow import propose_config_for_counts

    model = options.model or ("tdpsom" if cohort.temporal else "dpsom")
    n_points = int(cohort.lengths.sum()) if cohort.temporal else cohort.n_samples
    proposed = propose_config_for_counts(cohort.temporal, cohort.n_samples, n_points, options.preset,
                                         device=options.device)
    run = CohortRun(cohort, options.settings(proposed, model))
    run.validate()
    return run


# --------------------------------------------------------------------------- projects
def load_run(path: str | os.PathLike, *, lazy_cohort: bool = False) -> tuple["Project", "TrainingRun"]:
    """Load a project and rebuild its run.

    Parameters
    ----------
    path : path
    lazy_cohort : bool
        A project trained from a cohort file keeps it on disk (a :class:`CohortRun`) instead
        of reading it into memory: what resuming such a run needs.

    Returns
    -------
    project : Project
    run : ModelRun or CohortRun

    Raises
    ------
    ProjectFileError
        The file is missing, foreign or damaged.
    InputError
        A broken model or data reference; the message names the project.
    """
    try:
        return _load_run(str(path), lazy_cohort)
    except InputError as exc:
        raise exc if exc.path else InputError(str(exc), path=str(path)) from None


def _load_run(path: str, lazy_cohort: bool):
    from .io.project_h5 import check_data_ref, data_ref_path, load_project
    from .workflow import ModelRun

    project = load_project(path)
    base = Path(path).resolve().parent
    options = (project.metadata or {}).get("read_options") or {}
    if lazy_cohort and project.dataset is None and options.get("format") == "cohort":
        from .cohort_run import CohortRun
        from .io.cohort_h5 import Cohort

        problem = check_data_ref(project, base_dir=base)
        if problem:
            raise InputError(problem)
        # The verified path, never the one among the reader options.
        return project, CohortRun.from_project(project, Cohort(data_ref_path(project, base_dir=base)))
    return project, ModelRun.from_project(project, base_dir=base)


def save_run(path: str | os.PathLike, run: "TrainingRun", cluster: "Cluster | None" = None) -> None:
    """Write the run's project atomically; in a process group every rank calls this, rank 0 writes.

    Raises
    ------
    ProjectFileError, OutputPathError
        The file cannot be written (one line naming it); the previous file stays.
    """
    from .io.outputs import writing
    from .io.project_h5 import save_project

    if cluster is None or not cluster.distributed:
        with writing("the project", path):
            save_project(path, run.to_project(), embed_data=run.embed_data)
        return
    # Gathering the per-rank training state is a collective; the writing is rank 0's alone.
    state = run.estimator.get_train_state() if run.is_fitted else None
    if cluster.is_main:
        with writing("the project", path):
            save_project(path, run.to_project(train_state=state), embed_data=run.embed_data)
    cluster.barrier()


def prepare_resume(run: "TrainingRun", *, device: str | None = None, epochs: int | None = None,
                   max_steps: int | None = None) -> None:
    """Set up a loaded, trained run to continue: another device, a longer schedule, a step limit.

    Parameters
    ----------
    run : ModelRun or CohortRun
        Holding a trained model (see :func:`load_run`).
    device : str, optional
        Replaces the saved device choice.
    epochs : int, optional
        Joint-training epochs in all; reopens a finished schedule.
    max_steps : int, optional
        Stop once the run reaches this many steps in all. A limit saved by an earlier trial
        is dropped: only this one applies.

    Raises
    ------
    InputError
        A device that is not there.
    """
    if device:
        from .training import select_device

        try:
            select_device(device)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        run.config = run.config.replace(**{"train.device": device})
    if epochs:
        run.extend(epochs)
    run.set_max_steps(max_steps)


# --------------------------------------------------------------------------- process groups
def open_cluster(distributed: bool, device: str | None = "auto") -> "Cluster":
    """This process's group: joined from torchrun's environment when ``distributed``, else one process.

    Raises
    ------
    InputError
        Not started by torchrun, or the device asked for is not there.
    """
    from .distributed import Cluster

    if not distributed:
        return Cluster.single()
    try:
        return Cluster.from_env(device or "auto")
    except ValueError as exc:
        raise InputError(str(exc)) from None


def local_group_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """The command that runs ``dpsom ARGV`` as a group of ``nproc`` processes on this machine.

    Parameters
    ----------
    nproc : int
        Processes to start (one per GPU, or CPU processes).
    argv : sequence of str
        The ``dpsom`` arguments; ``--nproc N`` among them is dropped and ``--distributed``
        added, so that each started process joins the group.

    Returns
    -------
    list of str
        A ``torch.distributed.run`` (torchrun) command line for :func:`subprocess.call`.
    """
    # torchrun's own parser would also take --nproc, as an abbreviation of its --nproc-per-node.
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "core.cli", *rest]
    if "--distributed" not in rest:
        cmd.append("--distributed")
    return cmd


def describe_device(cluster: "Cluster", config: "Config") -> str:
    """Where the run trains, in words: the device, or the processes of the group."""
    if cluster.distributed:
        return f"{cluster.world_size} processes ({cluster.backend}, device {cluster.device})"
    from .training import select_device

    return f"device {select_device(config.train.device)}"


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainResult:
    """Where a finished call of :meth:`ProjectTraining.train` left the run.

    Attributes
    ----------
    path : Path
        The saved project.
    step : int
        Optimiser steps the model has taken in all.
    total_steps : int
        Steps of the whole schedule, ignoring any step limit.
    """

    path: Path
    step: int
    total_steps: int

    @property
    def complete(self) -> bool:
        """True when the whole schedule has run (False: a step limit stopped it)."""
        return self.step >= self.total_steps


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl+C) at a step boundary.

    Attributes
    ----------
    checkpoint : Path
        The file that holds the run's progress (resume from it).
    saved : bool
        The progress up to the interrupt was saved there. In a process group nothing is
        saved (the other processes are stopping too): the last checkpoint stands.
    distributed : bool
        The run trained in a process group.
    """

    def __init__(self, checkpoint: Path, *, saved: bool, distributed: bool) -> None:
        super().__init__(str(checkpoint))
        self.checkpoint, self.saved, self.distributed = checkpoint, saved, distributed


class ProjectTraining:
    """Training into one project file, under its training lock.

    Parameters
    ----------
    project : path
        The project to write (it need not exist yet).
    resume : bool
        Continue the run saved in ``project``: checkpoints go to the project itself, and the
        lock is taken only when the file exists (without it, loading says what is wrong).
        Otherwise a new run over an existing project writes its checkpoints to
        ``checkpoint``, a sibling file, and replaces the project only once complete.

    Attributes
    ----------
    project, checkpoint : Path

    Raises
    ------
    ProjectBusy
        From :meth:`acquire` (and ``with``): another process, or another run in this one,
        trains the project.

    Examples
    --------
    >>> with ProjectTraining("run.h5") as target:  # doctest: +SKIP
    ...     target.train(run, autosave=300.0)
    """

    def __init__(self, project: str | os.PathLike, *, resume: bool = False) -> None:
        from .io.outputs import unfinished_path

        self.project = Path(project)
        self.resume = resume
        self.checkpoint = unfinished_path(self.project) if not resume and self.project.exists() else self.project
        self._locks: contextlib.ExitStack | None = None

    @property
    def keeps_existing(self) -> bool:
        """True when an existing project stays unchanged until the new run is complete."""
        return self.checkpoint != self.project

    @property
    def held(self) -> bool:
        return self._locks is not None

    def acquire(self) -> "ProjectTraining":
        """Take the training lock of the project and its checkpoint file.

        In a process group rank 0 holds the locks for the group (every rank taking them would
        lock each other out). Under the lock, temporary files that a killed save of the
        project left behind are removed.
        """
        from .io.outputs import ProjectLock, sweep_stale_temps

        if self._locks is not None:
            return self
        stack = contextlib.ExitStack()
        if _is_main_process() and (not self.resume or self.project.is_file()):
            with stack:  # a lock refused releases those already taken
                for path in dict.fromkeys((self.project, self.checkpoint)):
                    stack.enter_context(ProjectLock(path))
                    sweep_stale_temps(path)
                stack = stack.pop_all()
        self._locks = stack
        return self

    def release(self) -> None:
        locks, self._locks = self._locks, None
        if locks is not None:
            locks.close()

    def __enter__(self) -> "ProjectTraining":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def train(self, run: "TrainingRun", *, autosave: float = 300.0, cluster: "Cluster | None" = None,
              on_progress: Callable[["TrainProgress"], None] | None = None,
              on_checkpoint: Callable[[Path], None] | None = None) -> TrainResult:
        """Train ``run`` (continue it when resuming), checkpoint it, and save the project.

        Parameters
        ----------
        run : ModelRun or CohortRun
        autosave : float
            Seconds between checkpoints to :attr:`checkpoint` (0: only at the end).
        cluster : Cluster, optional
            The process group this process trains in (default: one process). Every rank calls
            this; rank 0 writes, and the group is left at the end.
        on_progress : callable, optional
            Called with each :class:`~core.progress.TrainProgress`, after every optimiser step.
        on_checkpoint : callable, optional
            Called with the checkpoint's path after each checkpoint is written.

        Returns
        -------
        TrainResult

        Raises
        ------
        TrainingInterrupted
            On Ctrl+C (``KeyboardInterrupt``), after saving the progress to the checkpoint.
        TrainingDiverged, OutputPathError
            Training failed, or the project could not be written.
        """
        from .distributed import Cluster

        cluster = cluster or Cluster.single()
        self._train_steps(run, cluster, autosave, on_progress, on_checkpoint)
        save_run(self.project, run, cluster)
        if cluster.is_main and self.keeps_existing:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.checkpoint)
        result = TrainResult(self.project, *_schedule_position(run))
        if cluster.distributed:
            import gc

            run.estimator.trainer_.leave_group()
            gc.collect()  # the DDP reducer goes now, while the group it uses still exists
            cluster.barrier()
        cluster.close()
        return result

    def _train_steps(self, run, cluster, autosave: float, on_progress, on_checkpoint) -> None:
        last_save = time.monotonic()
        gen = run.iter_train(resume=self.resume, cluster=cluster)
        try:
            for p in gen:
                if on_progress is not None:
                    on_progress(p)
                due = autosave > 0 and time.monotonic() - last_save >= autosave
                # Rank 0's clock decides, so that every rank joins the same checkpoint.
                if cluster.agree(due):
                    save_run(self.checkpoint, run, cluster)
                    last_save = time.monotonic()
                    if on_checkpoint is not None and cluster.is_main:
                        on_checkpoint(self.checkpoint)
        except KeyboardInterrupt:
            gen.close()
            # In a group the other processes are being stopped too; a checkpoint needs them all.
            saved = not cluster.distributed and run.is_fitted
            if saved:
                save_run(self.checkpoint, run)
            raise TrainingInterrupted(self.checkpoint, saved=saved, distributed=cluster.distributed) from None
        finally:
            gen.close()


def _schedule_position(run: "TrainingRun") -> tuple[int, int]:
    """Steps taken, and steps of the whole schedule without a step limit."""
    from .training import schedule_steps

    whole = schedule_steps(run.config.replace(**{"train.max_steps": None}), run.n_samples, run.estimator.world_size_)
    return int(run.estimator.n_iter_), whole
