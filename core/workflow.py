"""From a :class:`~core.data.Dataset` to a trained, saved and explainable map.

:class:`ModelRun` is the one object the command line and the desktop app drive: it owns the
data, the fitted preprocessing (saved with the model, so prototypes come back in clinical
units) and the estimator, turns itself into a :class:`~core.io.project_h5.Project` and back,
and answers the questions views ask (assignments, U-matrix, hit counts, forecasts).
"""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from . import __version__
from .analysis import hit_map, transition_matrix, umatrix
from .analysis.paths import PATH_STIFFNESS, smoothed_paths
from .config import Config, make_config, suggest_series_batch  # noqa: F401 (make_config: doctests)
from .data.dataset import Dataset
from .data.preprocessing import Preprocessor
from .data.validation import check_grid_size
from .defaults import DataProfile, Proposal, propose, suggest_grid, suggest_scaling
from .errors import InputError, NotFittedError
from .grid import SOMGrid
from .io.project_h5 import Project
from .model import DPSOM, TDPSOM, Forecast
from .progress import TrainProgress
from .training import available_devices

__all__ = ["ModelRun", "TrainingRun", "assign", "restore_estimator", "propose_config",
           "propose_config_for_counts", "propose_settings", "suggest_grid", "suggest_series_batch",
           "available_devices", "DEFAULT_PREPROCESSING"]

#: Preprocessing used when none is chosen: the scaling of :func:`core.defaults.suggest_scaling`
#: ("auto": values in [0, 1] kept, image intensities to [0, 1], anything else z-scored), forward
#: fill without limit, medians.
DEFAULT_PREPROCESSING = {"scaling": "auto", "clip_quantiles": None, "ffill_limit": None, "impute": "median"}


def propose_settings(dataset: Dataset, preset: str = "quick", *, device: str = "auto",
                     model: str | None = None) -> Proposal:
    """Settings, preprocessing and reasons for ``dataset`` (the rule of :mod:`core.defaults`).

    Parameters
    ----------
    dataset : Dataset
    preset : {"quick", "paper"}
    device : str
        Saved in the configuration (``"auto"`` picks a GPU when there is one).
    model : {"dpsom", "tdpsom"}, optional
        Default: T-DPSOM for series, DPSOM for tables.

    Returns
    -------
    Proposal
    """
    return propose(DataProfile.from_dataset(dataset), preset, model=model, device=device)


def propose_config(dataset: Dataset, preset: str = "quick", *, device: str = "auto") -> Config:
    """Settings suited to ``dataset``: T-DPSOM for series, DPSOM for tables, a fitting grid.

    The configuration part of :func:`propose_settings`.

    Parameters
    ----------
    dataset : Dataset
    preset : {"quick", "paper"}
    device : str
        Saved in the configuration (``"auto"`` picks a GPU when there is one).

    Returns
    -------
    Config
    """
    return propose_settings(dataset, preset, device=device).config


def propose_config_for_counts(temporal: bool, n_samples: int, n_points: int, preset: str = "quick", *,
                              device: str = "auto") -> Config:
    """The proposal of :func:`propose_config` from counts alone, for data not held in memory.

    A cohort file read in shards (``dpsom train COHORT.h5``) gets the same settings as the
    same data loaded as a :class:`Dataset` (its values are already scaled).

    Parameters
    ----------
    temporal : bool
        Patient time series (T-DPSOM) rather than a table (DPSOM).
    n_samples : int
        Rows of a table, or patients of a cohort.
    n_points : int
        Points the map is fitted to: rows, or real time steps over all patients.
    preset : {"quick", "paper"}
    device : str
        Saved in the configuration (``"auto"`` picks a GPU when there is one).

    Returns
    -------
    Config
    """
    return propose(DataProfile.from_counts(temporal, n_samples, n_points), preset, device=device).config


class TrainingRun:
    """What every run shares: the model kind, fitted and complete states, step limits, extensions.

    Subclasses hold ``config``, ``estimator`` and a ``_cache`` of derived results, and say how
    many samples (or patients) they train on.
    """

    config: Config
    estimator: "DPSOM | TDPSOM | None"
    metadata: dict
    read_options: dict | None
    _cache: dict

    @property
    def n_samples(self) -> int:
        """Samples (tables) or patients (series) the run trains on."""
        raise NotImplementedError

    @property
    def temporal(self) -> bool:
        return self.config.model == "tdpsom"

    @property
    def grid(self) -> SOMGrid:
        return self.config.grid

    @property
    def is_fitted(self) -> bool:
        """True once training has taken at least one step (or a trained model was loaded)."""
        return self.estimator is not None and self.estimator.is_fitted and self.estimator.n_iter_ > 0

    @property
    def is_complete(self) -> bool:
        """True when the whole schedule has run."""
        est = self.estimator
        return est is not None and est.is_fitted and est.schedule_complete(self.n_samples)

    def set_max_steps(self, max_steps: int | None) -> None:
        """Stop training once ``max_steps`` optimiser steps have run in all (None: no limit)."""
        self.config = self.config.replace(**{"train.max_steps": max_steps})
        est = self.estimator
        if est is not None and est.is_fitted:
            est.reschedule(self.config)
        self._cache.clear()

    def extend(self, epochs_joint: int) -> None:
        """Set the joint phase to ``epochs_joint`` epochs in all, reopening a finished schedule."""
        est = self._fitted()
        if epochs_joint < 1:
            raise InputError(f"epochs must be at least 1; got {epochs_joint}")
        self.config = self.config.replace(**{"train.epochs_joint": int(epochs_joint)})
        est.reschedule(self.config)
        self._cache.clear()

    def _fitted(self):
        if self.estimator is None or not self.estimator.is_fitted:
            raise NotFittedError("this model has not been trained yet")
        return self.estimator

    def _timed(self, gen: Iterator[TrainProgress]) -> Iterator[TrainProgress]:
        """Pass on a training generator's progress, keeping derived results fresh and
        recording the device and the time spent when it stops."""
        started = time.time()
        try:
            for progress in gen:
                self._cache.clear()
                yield progress
        finally:
            gen.close()
            self._cache.clear()
            if self.estimator is not None and self.estimator.is_fitted:
                self.metadata["device"] = str(self.estimator.device_)
                self.metadata["train_seconds"] = self.metadata.get("train_seconds", 0.0) + time.time() - started

    def _project_metadata(self) -> dict:
        """The run's metadata as a project stores it: how the data were read and the settings."""
        metadata = dict(self.metadata)
        if self.read_options is not None:
            metadata["read_options"] = dict(self.read_options)
        metadata.update({"seed": self.config.train.seed, "parity": self.config.parity, "preset": self.config.preset,
                         "model": self.config.model, "engine_version": __version__})
        return metadata


class ModelRun(TrainingRun):
    """Data, preprocessing and a DPSOM/T-DPSOM estimator, trained together and saved together.

    Parameters
    ----------
    dataset : Dataset
        Raw data in clinical units (labels ride along, never trained on).
    config : Config
    preprocessing : dict, optional
        Preprocessor options (``scaling``, ``clip_quantiles``, ``ffill_limit``, ``impute``),
        or a fitted preprocessor's ``to_dict()`` as stored in a project.

    Examples
    --------
    >>> from core.data.demo import demo_table
    >>> ds = demo_table()
    >>> run = ModelRun(ds, make_config("dpsom", "quick", **{"grid.height": 4, "grid.width": 4,
    ...                                                    "train.max_steps": 5}))
    >>> for progress in run.iter_train():
    ...     pass
    >>> run.assignments()["bmu"].shape
    (1500,)
    """

    def __init__(self, dataset: Dataset, config: Config, preprocessing: dict | None = None) -> None:
        self.dataset = dataset
        self.config = config
        prep = dict(DEFAULT_PREPROCESSING)
        prep.update(preprocessing or {})
        self._prep_options = prep
        self.preprocessor: Preprocessor | None = None
        if prep.get("format") == "dpsom-preprocessor" and "center" in prep:  # a fitted, saved one
            self.preprocessor = Preprocessor.from_dict(prep)
        self.estimator: DPSOM | TDPSOM | None = None
        self._cache: dict = {}
        self.warnings: list[str] = list(dataset.warnings)
        self.metadata: dict = {}
        #: Reader arguments (path included) that re-create ``dataset`` from its file; saved with
        #: the project so that a project which only references its data can read it again.
        self.read_options: dict | None = None
        #: Store the data inside the project (True) or only a reference with a content hash.
        self.embed_data: bool = True

    @property
    def n_samples(self) -> int:
        return self.dataset.n_samples

    # ------------------------------------------------------------------ data
    def validate(self) -> None:
        """Refuse data that does not suit the model or the grid (raises InputError)."""
        ds = self.dataset
        if self.temporal and not ds.is_series:
            raise InputError("T-DPSOM needs patient time series; this data is a table (choose DPSOM, "
                             "or give the id and time columns when importing)")
        if not self.temporal and ds.is_series:
            raise InputError("this data is a patient time series; choose T-DPSOM, or DPSOM treats every "
                             "patient hour as a separate sample only when imported as a table")
        unit = "patient time steps" if ds.is_series else "rows"
        check_grid_size(ds.n_points, self.grid, what=_describe(ds), unit=unit)

    def model_inputs(self, dataset: Dataset | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Preprocessed ``(X, mask, lengths)`` for ``dataset`` (default: the run's own data)."""
        ds = self.dataset if dataset is None else dataset
        if self.preprocessor is None:
            raise NotFittedError("the preprocessing is not fitted yet; train first")
        X, mask = self.preprocessor.transform(ds)
        return X, mask, (ds.lengths if ds.is_series else None)

    # ------------------------------------------------------------------ training
    def iter_train(self, resume: bool = False, cluster=None) -> Iterator[TrainProgress]:
        """Train (or continue training), yielding progress after every optimiser step.

        Closing the generator stops at a step boundary; ``iter_train(resume=True)`` then
        continues exactly where it stopped, also after saving and reopening the project.
        ``cluster`` (a :class:`core.distributed.Cluster`) trains as one process of a group,
        on this process's shard of the data.
        """
        self._cache.clear()
        if resume and self.estimator is not None and self.estimator.is_fitted:
            X, mask, lengths = self.model_inputs()
            gen = self.estimator.iter_fit(X, mask=mask, lengths=lengths, resume=True, cluster=cluster)
        else:
            self.validate()
            self.config.validate()
            opts = {k: self._prep_options.get(k) for k in DEFAULT_PREPROCESSING}
            if opts["scaling"] in (None, "auto"):
                opts["scaling"] = suggest_scaling(DataProfile.from_dataset(self.dataset))[0]
            self.preprocessor = Preprocessor(**opts).fit(self.dataset)
            X, mask, lengths = self.model_inputs()
            cls = TDPSOM if self.temporal else DPSOM
            self.estimator = cls(config=self.config)
            gen = self.estimator.iter_fit(X, mask=mask, lengths=lengths, cluster=cluster)
        yield from self._timed(gen)

    # ------------------------------------------------------------------ results
    def assignments(self, dataset: Dataset | None = None) -> dict[str, np.ndarray]:
        """Best-matching nodes and soft assignments of every row or patient step.

        Returns
        -------
        dict
            ``"bmu"``: ``(n,)`` or ``(N, T)`` int (``-1`` on padding); ``"proba"``: ``(n, K)``
            or ``(N, T, K)``; T-DPSOM also ``"next_node_pred"`` ``(N, T)``.
        """
        if dataset is None and "assignments" in self._cache:
            return self._cache["assignments"]
        X, mask, lengths = self.model_inputs(dataset)
        out = assign(self._fitted(), X, lengths)
        if dataset is None:
            self._cache["assignments"] = out
        return out

    def node_paths(self, stiffness: float = PATH_STIFFNESS) -> np.ndarray:
        """T-DPSOM: each patient's most probable node path ``(N, T)`` (``-1`` on padding).

        Decoded from the soft assignments over the whole stay, under a prior that charges
        every grid step beyond a neighbour (:func:`core.analysis.paths.smoothed_paths`); it
        leaves out the hour-to-hour hops of the best-matching nodes, which stay in
        ``assignments()["bmu"]``. A stay kept in several rows is decoded as one sequence, so
        its path runs on from one part to the next.
        """
        if not self.temporal:
            raise InputError("node paths need a T-DPSOM model trained on time series")
        key = ("node_paths", float(stiffness))
        if key not in self._cache:
            self._cache[key] = smoothed_paths(self.assignments()["proba"], self.dataset.lengths,
                                              self.grid.distances(), stiffness, continues=self.dataset.continues)
        return self._cache[key]

    def latent(self) -> np.ndarray:
        """Posterior means of every real point, ``(n_points, d)``."""
        est = self._fitted()
        X, _, lengths = self.model_inputs()
        if self.temporal:
            return est.transform(X, lengths=lengths)[self.dataset.step_mask]
        return est.transform(X)

    def prototypes(self) -> np.ndarray:
        """Prototype vectors ``(K, d)`` in latent space."""
        return self._fitted().prototypes_

    def decoded_prototypes(self) -> np.ndarray:
        """Every node's profile ``(K, D)`` in the features' original (clinical) units."""
        return self.preprocessor.inverse_transform(self._fitted().decoded_prototypes())

    def umatrix(self) -> np.ndarray:
        """Mean latent distance of each node to its grid neighbours ``(K,)``."""
        return umatrix(self.prototypes(), self.grid)

    def hits(self) -> np.ndarray:
        """Number of rows (or patient steps) whose best-matching node is each node ``(K,)``."""
        bmu = self.assignments()["bmu"]
        return hit_map(bmu[bmu >= 0], self.grid.n_nodes)

    def forecast(self, n_steps: int = 6, *, patients=None, history: int | None = None,
                 n_samples: int = 0, random_state: int | None = None) -> Forecast:
        """T-DPSOM forecast of the next ``n_steps`` steps; features in clinical units.

        Forecast nodes use the node transitions of this run's whole data set
        (see :meth:`core.model.TDPSOM.forecast`).
        """
        est = self._fitted()
        if not self.temporal:
            raise InputError("forecasts need a T-DPSOM model trained on time series")
        ds = self.dataset if patients is None else self.dataset.subset(np.asarray(patients))
        X, _, lengths = self.model_inputs(ds)
        counts = self._cache.get("transition_counts")
        if counts is None:  # the journeys view asks again at every patient it animates
            counts = self._cache["transition_counts"] = transition_matrix(
                self.assignments()["bmu"], self.dataset.lengths, self.grid.n_nodes, normalize=False,
                continues=self.dataset.continues)
        f = est.forecast(X, n_steps, lengths=lengths, history=history, n_samples=n_samples,
                         random_state=random_state, transitions=counts)
        f.features = self.preprocessor.inverse_transform(f.features)
        if f.sample_features is not None:
            f.sample_features = self.preprocessor.inverse_transform(f.sample_features)
        return f

    def stability(self, seeds=(1, 2, 3), *, label: str | None = None, callback=None) -> dict:
        """Train afresh with several seeds and report how much the maps agree.

        Every run uses this run's configuration and preprocessing; only the seed changes.
        Agreement of assignments is the adjusted Rand index between runs; agreement of the
        layout compares grid distances between the nodes of the same pairs of points.

        Parameters
        ----------
        seeds : sequence of int
        label : str, optional
            A label whose AMI flags collapsed runs.
        callback : callable, optional
            Called with ``(seed_index, progress)`` during each training; returning False
            stops that run early.

        Returns
        -------
        dict
            As :func:`core.analysis.run_stability`.
        """
        from .analysis import run_stability

        if self.preprocessor is None:
            opts = {k: self._prep_options.get(k) for k in DEFAULT_PREPROCESSING}
            if opts["scaling"] in (None, "auto"):
                opts["scaling"] = suggest_scaling(DataProfile.from_dataset(self.dataset))[0]
            self.preprocessor = Preprocessor(**opts).fit(self.dataset)
        X, mask, lengths = self.model_inputs()
        valid = self.dataset.step_mask
        seeds = list(seeds)

        def fit_predict(seed: int) -> np.ndarray:
            cfg = self.config.replace(**{"train.seed": int(seed)})
            est = (TDPSOM if self.temporal else DPSOM)(config=cfg)
            index = seeds.index(seed)
            for progress in est.iter_fit(X, mask=mask, lengths=lengths):
                if callback is not None and callback(index, progress) is False:
                    break
            return est.predict(X, lengths=lengths) if self.temporal else est.predict(X)

        labels = None if label is None else np.asarray(self.dataset.labels[label])
        return run_stability(fit_predict, seeds, grid=self.grid, labels=labels,
                             sample_mask=valid if self.temporal else None, on_error="record")

    # ------------------------------------------------------------------ estimates
    def estimate(self, stop=None) -> dict:
        """Time and memory needed to train, before starting (:func:`core.estimate.estimate_training`).

        Parameters
        ----------
        stop : callable, optional
            Ends the probe early with :class:`core.estimate.EstimateStopped` once it returns True.

        Returns
        -------
        dict
            ``seconds`` (float), ``memory_bytes`` (int), ``device`` (str), ``steps`` (int),
            ``parameters`` (int), ``per_step`` (dict), ``method`` (str).
        """
        from .estimate import estimate_training

        ds = self.dataset
        observed = ds.values[ds.mask]
        unit = observed.size > 0 and float(observed.min()) >= 0.0 and float(observed.max()) <= 1.0
        scaling = self._prep_options.get("scaling")
        if scaling in (None, "auto"):
            scaling = suggest_scaling(DataProfile.from_dataset(ds))[0]
        bernoulli = self.config.network.likelihood == "bernoulli" or (
            self.config.network.likelihood == "auto" and (scaling == "minmax" or (scaling == "none" and unit)))
        return estimate_training(self.config, n_features=ds.n_features, n_samples=ds.n_samples,
                                 n_points=ds.n_points, mean_length=float(ds.lengths.mean()) if ds.is_series else None,
                                 likelihood="bernoulli" if bernoulli else "gaussian",
                                 data_bytes=ds.values.nbytes, stop=stop)

    # ------------------------------------------------------------------ projects
    def to_project(self, train_state: dict | None = None) -> Project:
        """Everything needed to reopen, explain and resume this run.

        ``train_state`` is the estimator's training state when the caller already took it (in a
        process group that is a collective every process joins; see the ``dpsom`` command).
        """
        est = self.estimator
        fitted = est is not None and est.is_fitted
        assignments = None
        if fitted and self.preprocessor is not None:
            a = self.assignments()
            assignments = {k: np.asarray(v) for k, v in a.items()}
        metadata = self._project_metadata()
        return Project(
            config=self.config.to_dict(),
            dataset=self.dataset,
            preprocessor=self.preprocessor.to_dict() if self.preprocessor is not None else dict(self._prep_options),
            model_state=est.get_state() if fitted else None,
            train_state=(train_state if train_state is not None else est.get_train_state()) if fitted else None,
            history=list(est.history_) if fitted else [],
            assignments=assignments,
            warnings=list(self.warnings),
            metadata=metadata,
        )

    @classmethod
    def from_project(cls, project: Project, *, device: str | None = None, base_dir=None) -> "ModelRun":
        """Rebuild a run from a loaded project (trained, partly trained or untrained).

        Parameters
        ----------
        project : Project
        device : str, optional
            Train or infer on this device instead of the saved choice.
        base_dir : path, optional
            Folder against which a relative data reference is resolved (the project's folder).

        Raises
        ------
        InputError
            The project only references its data and that file is missing or has changed.
        """
        dataset = project.dataset
        read_options = (project.metadata or {}).get("read_options")
        if dataset is None:
            dataset = _read_referenced(project, read_options, base_dir)
        try:
            # Settings no run could have saved (a damaged or crafted file) are refused here, in
            # one line, rather than wherever training or inference first trips over them.
            config = Config.from_dict(project.config).validate()
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InputError(f"the project's settings are not valid ({exc}); the project is damaged, open a "
                             "backup or train it again") from None
        if device is not None:
            config = config.replace(**{"train.device": device})
        run = cls(dataset, config, project.preprocessor)
        run.read_options = read_options
        run.embed_data = project.dataset is not None
        run.warnings = list(project.warnings)
        run.metadata = dict(project.metadata)
        if project.model_state is not None:
            run.estimator = restore_estimator(project, config)
            if run.estimator.n_features_in_ != dataset.n_features:
                raise InputError(f"the saved model reads {run.estimator.n_features_in_} features but the data have "
                                 f"{dataset.n_features}; the project is damaged, train it again or open a backup")
            if project.assignments:
                saved = {k: np.asarray(v) for k, v in project.assignments.items()}
                _check_saved_assignments(saved, dataset, config.grid.n_nodes)
                run._cache["assignments"] = saved
        return run


def restore_estimator(project: Project, config: Config) -> "DPSOM | TDPSOM":
    """The fitted estimator saved in a project, refused in one plain line when it is broken.

    Parameters
    ----------
    project : Project
        With ``model_state`` set.
    config : Config
        The run's settings (the saved ones, device possibly overridden).

    Returns
    -------
    DPSOM or TDPSOM

    Raises
    ------
    InputError
        The weights or prototypes hold NaN or infinite values, are missing, or do not have
        the shapes the settings give the network; the message names the broken part.
    """
    state = dict(project.model_state)
    weights = state.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise InputError("the saved model has no weights; the project is damaged, train it again or open a backup")
    for name, value in weights.items():
        a = np.asarray(value)
        if a.dtype.kind not in "biufc":
            raise InputError(f"the saved model's {_part(name)} is not numeric; the project is damaged, train it "
                             "again or open a backup")
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise InputError(f"the saved model's {_part(name)} hold NaN or infinite values, so every point would "
                             "land on one node; train the map again or open a backup")
    state["config"] = config.to_dict()
    est_cls = TDPSOM if config.model == "tdpsom" else DPSOM
    try:
        return est_cls.from_state(state, project.train_state)
    except InputError:
        raise
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"the saved model does not fit its settings ({_state_mismatch(exc)}); the project is "
                         "damaged, train it again or open a backup") from None


def _part(name: str) -> str:
    """A weight's name as a person reads it in a message."""
    return "prototypes" if name.split(".")[-1] == "prototypes" else f"weight {name!r}"


def _state_mismatch(exc: BaseException) -> str:
    """One plain clause from torch's (multi-line) complaint about a state that does not fit."""
    import re

    text = str(exc)
    found = re.search(r"size mismatch for ([\w.]+): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) "
                      r"from checkpoint, the shape in current model is torch\.Size\(\[([\d, ]*)\]\)", text)
    if found:
        name, saved, wanted = found.groups()
        return f"{_part(name)} has shape ({saved}) where the settings need ({wanted})"
    missing = re.search(r'Missing key\(s\) in state_dict: "([^"]+)"', text)
    if missing:
        return f"{_part(missing.group(1))} is missing"
    unexpected = re.search(r'Unexpected key\(s\) in state_dict: "([^"]+)"', text)
    if unexpected:
        return f"{_part(unexpected.group(1))} is not part of this model"
    if isinstance(exc, KeyError):
        return f"{exc.args[0]!r} is missing"
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _check_saved_assignments(saved: dict[str, np.ndarray], dataset: Dataset, n_nodes: int) -> None:
    """Saved assignments must cover every row (or patient step) of the data and name real nodes."""
    rows = dataset.values.shape[:-1]
    unit = "patient steps" if dataset.is_series else "rows"
    for name, a in saved.items():
        want = {"bmu": rows, "next_node_pred": rows, "proba": (*rows, n_nodes)}.get(name)
        if want is not None and a.shape != want:
            raise InputError(f"the saved assignments '{name}' have shape {a.shape} but the data need {want} "
                             f"({unit} x nodes); the project is damaged, train it again or open a backup")
        if name in ("bmu", "next_node_pred") and a.size and (a.dtype.kind not in "iu" or a.min() < -1
                                                             or a.max() >= n_nodes):
            raise InputError(f"the saved assignments '{name}' name nodes outside the map's 0..{n_nodes - 1}; the "
                             "project is damaged, train it again or open a backup")
        if name == "proba" and not np.isfinite(a).all():
            raise InputError("the saved assignment probabilities hold NaN or infinite values; the project is "
                             "damaged, train it again or open a backup")


def assign(est: DPSOM | TDPSOM, X: np.ndarray, lengths: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Assignments of model-space data by a fitted estimator.

    Parameters
    ----------
    est : DPSOM or TDPSOM
    X : ndarray
        ``(n, D)``, or ``(N, T, D)`` for T-DPSOM, already preprocessed.
    lengths : ndarray of int, optional
        T-DPSOM: real steps per patient.

    Returns
    -------
    dict
        As :meth:`ModelRun.assignments`: ``"bmu"``, ``"proba"`` and, for T-DPSOM, ``"next_node_pred"``.
    """
    if isinstance(est, TDPSOM):
        return {"bmu": est.predict(X, lengths=lengths), "proba": est.predict_proba(X, lengths=lengths),
                "next_node_pred": est.predict_next(X, lengths=lengths)}
    return {"bmu": est.predict(X), "proba": est.predict_proba(X)}


def _read_referenced(project: Project, read_options: dict | None, base_dir) -> Dataset:
    """Read the data a project refers to (not embedded), after checking its content hash.

    Exactly the path that was verified is read: the reference's own path. A path saved
    among the reader options is not used (it could name another file).
    """
    from .io.project_h5 import check_data_ref, data_ref_path
    from .data.readers import read_data

    if project.data_ref is None or not read_options:
        raise InputError("this project holds neither its data nor a reference to it; import the data again")
    problem = check_data_ref(project, base_dir=base_dir)
    if problem:
        raise InputError(problem)
    path = data_ref_path(project, base_dir=base_dir)
    options = {k: v for k, v in read_options.items() if k != "path"}
    if options.get("format") == "cohort":
        from .io.cohort_h5 import Cohort

        with Cohort(path) as cohort:
            return cohort.to_dataset()
    try:
        return read_data(path, **options)
    except TypeError as exc:  # reader options this version does not know: a damaged or foreign project
        raise InputError(f"the project's reader options for {path.name} are not understood ({exc})") from None


def _describe(ds: Dataset) -> str:
    src = ds.source or "The data"
    return "The demo data" if src.startswith("demo:") else src
