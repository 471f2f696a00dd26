"""Small data sets, fake training runs and a short training schedule for the desktop
application's tests."""

from __future__ import annotations

import time

import numpy as np

from core.config import make_config
from core.data.dataset import Dataset
from core.grid import SOMGrid
from core.progress import TrainProgress
from dpsom_gui.engine import Engine

# ---------------------------------------------------------------------- data
def make_table(n=60, seed=0) -> Dataset:
    """A small table: 4 features in clinical-looking ranges, a few values missing."""
    rng = np.random.default_rng(seed)
    values = np.column_stack([
        rng.normal(80, 12, n), rng.normal(120, 15, n), rng.normal(37, 0.6, n), rng.normal(1.0, 0.3, n),
    ]).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan
    return Dataset(values=values, mask=~np.isnan(values),
                   feature_names=["heart_rate", "sys_bp", "temperature", "lactate"],
                   units=["bpm", "mmHg", "°C", "mmol/L"],
                   ids=np.arange(n), labels={"died": (rng.random(n) < 0.2).astype(float)},
                   source="test:table")


def make_series(n=12, t=10, seed=0) -> Dataset:
    """A small patient time series with unequal lengths (padding at the end)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (n, 1, 3))
    drift = np.linspace(0, 1, t)[None, :, None]
    values = (base + drift + rng.normal(0, 0.1, (n, t, 3))).astype(np.float32)
    values = values * np.array([10, 15, 0.5], np.float32) + np.array([80, 120, 37], np.float32)
    lengths = rng.integers(t // 2, t + 1, n)
    lengths[0] = t
    times = np.tile(np.arange(t, dtype=float), (n, 1))
    for i, length in enumerate(lengths):
        values[i, length:] = np.nan
        times[i, length:] = np.nan
    mask = ~np.isnan(values)
    return Dataset(values=values, mask=mask, feature_names=["heart_rate", "sys_bp", "temperature"],
                   units=["bpm", "mmHg", "°C"], ids=np.array([f"p{i:03d}" for i in range(n)]),
                   times=times, lengths=lengths, id_col="patient", time_col="hour", time_unit="h",
                   source="test:series")








# ------------------------------------------------------------ fake training
PHASE_STEPS = (("pretrain", 2, 5), ("som_init", 1, 5), ("joint", 2, 5))


def fake_steps(*, n_prototypes=16, latent=4, delay=0.0, fail_at=None, start_step=0,
               phases=PHASE_STEPS, snapshot_every=5, seed=0):
    """A generator shaped like ``ModelRun.iter_train``: yields TrainProgress, can fail.

    ``phases`` lists (phase, epochs, steps per epoch). Prototypes are attached every
    ``snapshot_every`` steps.
    """
    rng = np.random.default_rng(seed)
    total = sum(e * s for _, e, s in phases)
    step = 0
    started = time.perf_counter()
    for index, (phase, epochs, per_epoch) in enumerate(phases):
        for epoch in range(epochs):
            for i in range(per_epoch):
                step += 1
                if step <= start_step:
                    continue
                if fail_at is not None and step == fail_at:
                    raise RuntimeError("the loss became NaN at step %d" % step)
                if delay:
                    time.sleep(delay)
                loss = float(np.exp(-step / 10) + 0.1)
                losses = {"elbo": loss, "total": loss * 1.5}
                if phase != "pretrain":
                    losses.update(cah=loss / 3, som=loss / 4)
                yield TrainProgress(
                    phase=phase, phase_index=index, n_phases=len(phases), epoch=epoch,
                    n_epochs=epochs, step=step, total_steps=total, losses=losses, lr=1e-3,
                    elapsed=time.perf_counter() - started, end_of_epoch=i == per_epoch - 1,
                    prototypes=(rng.normal(size=(n_prototypes, latent)) if step % snapshot_every == 0
                                else None))


class FakeRun:
    """Stands in for ``core.workflow.ModelRun`` in GUI tests (same public surface)."""

    def __init__(self, dataset, config=None, preprocessing=None, **fake_options):
        self.dataset = dataset
        self.config = config or make_config("tdpsom" if dataset.is_series else "dpsom",
                                            grid=SOMGrid(4, 4, "rect", False))
        self.preprocessing = preprocessing
        self.grid = self.config.grid
        self.is_complete = False
        self.fake_options = fake_options
        self.resumed_from = []
        self._done_steps = 0

    def iter_train(self, resume=False):
        self.resumed_from.append(self._done_steps if resume else 0)
        start = self._done_steps if resume else 0
        for p in fake_steps(n_prototypes=self.grid.n_nodes, start_step=start, **self.fake_options):
            self._done_steps = p.step
            yield p
        self.is_complete = True

    @property
    def is_fitted(self):
        """As ``ModelRun``: True once at least one step has run."""
        return self._done_steps > 0

    def validate(self):
        if (self.config.model == "tdpsom") != self.dataset.is_series:
            from core.errors import InputError

            raise InputError("the model does not suit these data")

    def umatrix(self):
        k = np.arange(self.grid.n_nodes, dtype=float)
        return np.sin(k / 3.0) + k / self.grid.n_nodes

    def hits(self):
        return np.arange(self.grid.n_nodes) % 5

    def assignments(self):
        n = self.dataset.n_samples
        k = self.grid.n_nodes
        if self.dataset.is_series:
            t = self.dataset.values.shape[1]
            bmu = (np.arange(n * t).reshape(n, t)) % k
            return {"bmu": bmu, "proba": np.full((n, t, k), 1.0 / k)}
        return {"bmu": np.arange(n) % k, "proba": np.full((n, k), 1.0 / k)}

    def estimate(self, stop=None):
        return {"seconds": 42.0, "memory_bytes": 300 * 2**20, "device": "cpu"}


class FakeProjectRun(FakeRun):
    """A fake run that also round-trips through a real project file."""

    def to_project(self):
        from core.io.project_h5 import Project

        return Project(config=self.config.to_dict(), dataset=self.dataset, preprocessor=self.preprocessing,
                       model_state={"done_steps": np.array(self._done_steps), "complete": np.array(self.is_complete)},
                       assignments=self.assignments() if self.is_fitted else None,
                       history=[])

    @classmethod
    def from_project(cls, project, **options):
        from core.config import Config

        run = cls(project.dataset, Config.from_dict(project.config), project.preprocessor, **options)
        run._done_steps = int(project.model_state["done_steps"])
        run.is_complete = bool(project.model_state["complete"])
        return run


class FakeEngine(Engine):
    """The application's engine with fake training and a small demo; files are real."""

    def __init__(self, **run_options):
        self.run_options = dict(run_options)
        self.runs = []

    def make_run(self, dataset, config, preprocessing=None):
        run = FakeProjectRun(dataset, config, preprocessing, **self.run_options)
        self.runs.append(run)
        return run

    def run_from_project(self, project):
        run = FakeProjectRun.from_project(project, **self.run_options)
        self.runs.append(run)
        return run

    def propose_config(self, dataset, preset="quick"):
        model = "tdpsom" if dataset.is_series else "dpsom"
        return make_config(model, preset, grid=SOMGrid(4, 4, "rect", False))

    def available_devices(self):
        return [{"name": "cpu", "label": "Processor (CPU)", "memory_bytes": 0}]

    def is_ready(self):
        return True  # fake runs need no training stack

    def demo(self, size="demo"):
        return make_series()


# ------------------------------------------------------------------ settings
def set_tiny_schedule(panel, epochs=(2, 2, 1), seed=7):
    """A 4x4 flat map and a few dozen steps, set through the training panel's own controls.

    ``epochs`` are the pretraining, joint and prediction epochs.
    """
    b = panel.binder
    pretrain, joint, pred = epochs
    for name, value in (("grid.height", 4), ("grid.width", 4), ("train.epochs_pretrain", pretrain),
                        ("train.epochs_joint", joint), ("train.epochs_pred", pred), ("train.batch_size", 100),
                        ("train.seed", seed)):
        b.widget(name).setValue(value)
    b.widget("grid.toroidal").setCurrentIndex(b.widget("grid.toroidal").findData(False))
