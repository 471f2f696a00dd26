"""Training straight from an on-disk cohort file, for cohorts larger than memory.

:class:`CohortRun` is the out-of-core sibling of :class:`~core.workflow.ModelRun`: the data
stay in the cohort file (:mod:`core.io.cohort_h5`), which the trainer reads batch by batch;
the project refers to the file by path and content hash instead of embedding it; the
assignments are computed chunk by chunk. It answers what the ``dpsom`` command needs to
train, checkpoint and resume (also as one process of a group, see :mod:`core.distributed`).
Opening such a project in the app or exporting from it reads the cohort into memory as an
ordinary dataset (through :meth:`core.io.cohort_h5.Cohort.to_dataset`).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .config import Config
from .io.cohort_h5 import Cohort
from .data.validation import check_grid_size
from .errors import InputError
from .io.project_h5 import Project, make_data_ref
from .model import DPSOM, TDPSOM
from .progress import TrainProgress
from .workflow import TrainingRun, assign, restore_estimator

__all__ = ["CohortRun", "prepare_cohort"]

#: Rows (or patients) per chunk when assigning the whole cohort after training.
_ASSIGN_CHUNK = 16384


class CohortRun(TrainingRun):
    """A DPSOM/T-DPSOM trained on a cohort file without loading it.

    Parameters
    ----------
    cohort : Cohort
        An open cohort file (model-space values; its preprocessing is kept in the project).
    config : Config
        ``config.model`` must suit the cohort (``tdpsom`` for series).
    """

    def __init__(self, cohort: Cohort, config: Config) -> None:
        self.cohort = cohort
        self.config = config
        self.estimator: DPSOM | TDPSOM | None = None
        self.metadata: dict = {}
        self.warnings: list[str] = []
        self.read_options: dict = {"path": str(cohort.path), "format": "cohort"}
        #: Cohorts are never copied into the project; it keeps a reference and a content hash.
        self.embed_data = False
        self._data_ref: dict | None = None
        self._cache: dict = {}

    @property
    def n_samples(self) -> int:
        return self.cohort.n_samples

    def validate(self) -> None:
        """Refuse a model that does not suit the cohort, or a grid larger than it (InputError)."""
        c = self.cohort
        if self.temporal != c.temporal:
            want = "patient time series (T-DPSOM)" if self.temporal else "a table (DPSOM)"
            raise InputError(f"the model needs {want}, but this cohort holds the other kind", path=str(c.path))
        n_points = int(c.lengths.sum()) if c.temporal else c.n_samples
        check_grid_size(n_points, self.config.grid, what=str(c.path),
                        unit="patient time steps" if c.temporal else "rows")

    # ------------------------------------------------------------------ training
    def iter_train(self, resume: bool = False, cluster=None) -> Iterator[TrainProgress]:
        """Train (or continue), yielding progress after every optimiser step; see ModelRun."""
        self._cache.clear()
        if resume and self.estimator is not None and self.estimator.is_fitted:
            gen = self.estimator.iter_fit(self.cohort, resume=True, cluster=cluster)
        else:
            self.validate()
            self.config.validate()
            self.estimator = (TDPSOM if self.temporal else DPSOM)(config=self.config)
            gen = self.estimator.iter_fit(self.cohort, cluster=cluster)
        yield from self._timed(gen)

    # ------------------------------------------------------------------ results
    def assignments(self) -> dict[str, np.ndarray]:
        """Best-matching nodes and soft assignments of the whole cohort, chunk by chunk.

        Returns
        -------
        dict
            As :meth:`core.workflow.ModelRun.assignments`: ``"bmu"`` ``(n,)`` or ``(N, T)``
            (-1 on padding), ``"proba"`` ``(n, K)`` or ``(N, T, K)``, and for T-DPSOM
            ``"next_node_pred"`` ``(N, T)``.
        """
        if "assignments" in self._cache:
            return self._cache["assignments"]
        est = self._fitted()
        parts: dict[str, list] = {}
        for _, x, _, lengths in self.cohort.iter_chunks(_ASSIGN_CHUNK):
            for k, v in assign(est, x, lengths).items():
                parts.setdefault(k, []).append(np.asarray(v))
        self._cache["assignments"] = {k: np.concatenate(v) for k, v in parts.items()}
        return self._cache["assignments"]

    # ------------------------------------------------------------------ projects
    def data_ref(self) -> dict:
        """Path, size and SHA-256 of the cohort file (hashed once per run)."""
        if self._data_ref is None:
            self._data_ref = make_data_ref(self.cohort.path)
        return self._data_ref

    def to_project(self, train_state: dict | None = None) -> Project:
        """The project for this run: model, training state, history, assignments, data reference."""
        est = self.estimator
        fitted = est is not None and est.is_fitted
        metadata = self._project_metadata()
        if fitted and train_state is None:
            train_state = est.get_train_state()
        return Project(
            config=self.config.to_dict(),
            dataset=None,
            data_ref=self.data_ref(),
            preprocessor=self.cohort.preprocessing,
            model_state=est.get_state() if fitted else None,
            train_state=train_state if fitted else None,
            history=list(est.history_) if fitted else [],
            assignments=self.assignments() if fitted else None,
            warnings=list(self.warnings),
            metadata=metadata,
        )

    @classmethod
    def from_project(cls, project: Project, cohort: Cohort, *, device: str | None = None) -> "CohortRun":
        """Rebuild a run from a loaded project and its (already checked) cohort file."""
        config = Config.from_dict(project.config)
        if device is not None:
            config = config.replace(**{"train.device": device})
        run = cls(cohort, config)
        run.metadata = dict(project.metadata)
        run.warnings = list(project.warnings)
        run._data_ref = project.data_ref
        if project.model_state is not None:
            run.estimator = restore_estimator(project, config)  # broken weights: one plain line
        return run


def prepare_cohort(dataset, path, scaling: str = "auto") -> tuple[str, str]:
    """Write ``dataset``, scaled, as a cohort file that training reads in shards.

    Parameters
    ----------
    dataset : Dataset
    path : path
        The cohort file to write (:mod:`core.io.cohort_h5`).
    scaling : {"auto", "zscore", "minmax", "robust", "none"}
        ``auto`` is resolved here, by the rule a new run uses, so that the cohort records the
        scaling it was really written with (its values are already scaled when trained on).

    Returns
    -------
    scaling : str
        The scaling written.
    why : str
        The reason for it, in words.
    """
    from .data.preprocessing import Preprocessor
    from .io.cohort_h5 import cohort_from_dataset
    from .workflow import DEFAULT_PREPROCESSING, propose_settings

    why = "as given"
    if scaling == "auto":
        proposal = propose_settings(dataset)
        scaling, why = proposal.preprocessing["scaling"], proposal.reasons[0]
    pre = Preprocessor(**dict(DEFAULT_PREPROCESSING, scaling=scaling)).fit(dataset)
    cohort_from_dataset(dataset, pre, path)
    return scaling, why
