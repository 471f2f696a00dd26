"""The progress record that training yields to whoever drives it (CLI, app, notebook)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

__all__ = ["TrainProgress", "PHASES", "PHASE_TITLES"]

#: Training phases in order (T-DPSOM adds "prediction").
PHASES = ("pretrain", "som_init", "joint", "prediction")

#: Plain-language phase names for people.
PHASE_TITLES = {
    "pretrain": "Learning the data (autoencoder pretraining)",
    "som_init": "Laying out the map (SOM initialisation)",
    "joint": "Training map and encoder together",
    "prediction": "Training the forecaster",
}


@dataclass(frozen=True)
class TrainProgress:
    """One report from :meth:`core.model.DPSOM.iter_fit`, after an optimiser step.

    Everything in it is a copy (floats and numpy arrays), so it can be handed to another
    thread while training continues.

    Attributes
    ----------
    phase : str
        One of :data:`PHASES`.
    phase_index, n_phases : int
        Position of the phase in this model's schedule.
    epoch, n_epochs : int
        Epoch within the phase (0-based) and the phase's epoch count.
    step : int
        Global optimiser step (counts every update of every phase), after this step.
    total_steps : int
        Steps the whole schedule will take (respecting ``max_steps``).
    losses : Mapping[str, float]
        Weighted loss terms of this step by name (``elbo``, ``cah``, ``som``, ``smooth``,
        ``pred``, ``init``, ...) and their sum ``total``.
    lr : float
        Learning rate used for this step.
    elapsed : float
        Seconds since training started (this call).
    end_of_epoch : bool
        True on the last step of an epoch.
    prototypes : ndarray or None
        ``(K, d)`` copy of the prototypes, attached every ``snapshot_every`` steps and at
        the end of every epoch; None otherwise.
    """

    phase: str
    phase_index: int
    n_phases: int
    epoch: int
    n_epochs: int
    step: int
    total_steps: int
    losses: Mapping[str, float] = field(default_factory=dict)
    lr: float = 0.0
    elapsed: float = 0.0
    end_of_epoch: bool = False
    prototypes: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "losses", MappingProxyType(dict(self.losses)))

    @property
    def fraction(self) -> float:
        """Share of the schedule done, in [0, 1]."""
        return min(1.0, self.step / self.total_steps) if self.total_steps else 1.0

    @property
    def eta(self) -> float | None:
        """Estimated seconds left, or None before a first estimate exists."""
        if self.step <= 0 or self.elapsed <= 0 or not self.total_steps:
            return None
        return self.elapsed / self.fraction * (1.0 - self.fraction)
