"""A small cohort and a fake trained run with the whole surface the exploring views use
(decoded prototypes, latent points, forecasts, stability), so that the views are tested
on real computations from ``core.analysis`` without training a network."""

from __future__ import annotations

import types

import numpy as np
from gui_fakes import FakeEngine, fake_steps

from core.analysis import run_stability
from core.config import make_config
from core.data.dataset import Dataset
from core.grid import SOMGrid

FEATURES = ["heart_rate", "lactate", "creatinine"]
UNITS = ["bpm", "mmol/L", "mg/dL"]


def make_cohort(n=16, t=12, seed=3) -> Dataset:
    """Patients over time with outcomes; unequal stays (padding at the end)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(t // 2, t + 1, n)
    lengths[0] = t
    values = np.empty((n, t, 3), np.float32)
    drift = np.linspace(0, 1, t)[None, :]
    sick = rng.random(n) < 0.4
    values[..., 0] = 80 + 30 * sick[:, None] * drift + rng.normal(0, 3, (n, t))
    values[..., 1] = 1.2 + 3 * sick[:, None] * drift + rng.normal(0, 0.2, (n, t))
    values[..., 2] = 0.9 + 0.1 * rng.normal(0, 1, (n, t))
    times = np.tile(np.arange(t, dtype=float), (n, 1))
    death = np.zeros((n, t), np.float32)
    death[sick, -4:] = 1
    state = (sick[:, None] * 1 + (drift > 0.5) * 2).astype(np.float32) * np.ones((n, t), np.float32)
    apache = (10 + 15 * sick[:, None] * drift).astype(np.float32) * np.ones((n, t), np.float32)
    for i, length in enumerate(lengths):
        values[i, length:] = np.nan
        times[i, length:] = np.nan
        for a in (death, state, apache):
            a[i, length:] = np.nan
    mask = ~np.isnan(values)
    mask[1, 2, 1] = False  # one unmeasured lactate
    values[1, 2, 1] = np.nan
    return Dataset(values=values, mask=mask, feature_names=list(FEATURES), units=list(UNITS),
                   ids=np.array([f"P{i:03d}" for i in range(n)]), times=times, lengths=lengths,
                   labels={"death_24h": death, "apache_6": apache, "state": state}, id_col="patient_id",
                   time_col="hour", time_unit="h", source="test:cohort")


class FakeTrainedRun:
    """Stands in for a trained ``core.workflow.ModelRun`` on a 4 x 4 toroidal grid.

    Patients walk across the map one cell per step (so paths cross the torus seam); the soft
    assignment peaks on the walked cell; prototypes sit on a smooth 2-D sheet so that
    superclusters and U-matrix are meaningful; forecasts continue the walk.
    """

    temporal = True
    is_fitted = True
    is_complete = True

    def __init__(self, dataset=None, grid=None):
        self.dataset = dataset if dataset is not None else make_cohort()
        self.grid = grid or SOMGrid(4, 4, "rect", True)
        self.config = make_config("tdpsom", grid=self.grid)
        self.forecast_calls = []
        self.stability_calls = []
        k = self.grid.n_nodes
        rows, cols = np.divmod(np.arange(k), self.grid.width)
        self._protos = np.stack([np.cos(2 * np.pi * rows / self.grid.height), np.sin(2 * np.pi * rows / self.grid.height),
                                 np.cos(2 * np.pi * cols / self.grid.width), np.sin(2 * np.pi * cols / self.grid.width)],
                                axis=1)
        self._protos[: k // 2] += 0.4  # two halves differ, so superclusters have something to find
        self._protos[:, 0] += 0.3 * cols  # and the U-matrix is not flat
        n, t = self.dataset.values.shape[:2]
        start = (np.arange(n) * 5) % k
        step = np.where(np.arange(n) % 2 == 0, 1, self.grid.width)  # right, or down
        bmu = (start[:, None] + step[:, None] * np.arange(t)[None, :]) % k
        bmu[~self.dataset.step_mask] = -1
        self._bmu = bmu
        d = self.grid.distances()
        logits = -2.0 * d[np.maximum(bmu, 0)].astype(float)
        proba = np.exp(logits)
        proba /= proba.sum(axis=2, keepdims=True)
        proba[~self.dataset.step_mask] = 0
        self._proba = proba

    def results(self) -> dict:
        """What ``Session.results`` holds after training."""
        from core.analysis import hit_map, umatrix

        real = self._bmu[self.dataset.step_mask]
        return {"bmu": self._bmu.copy(), "proba": self._proba.copy(), "umatrix": umatrix(self._protos, self.grid),
                "hits": hit_map(real, self.grid.n_nodes),
                "next_node_pred": np.where(self._bmu >= 0, (self._bmu + 1) % self.grid.n_nodes, -1),
                "path_node": self.node_paths()}

    def assignments(self, dataset=None):
        r = self.results()
        return {"bmu": r["bmu"], "proba": r["proba"], "next_node_pred": r["next_node_pred"]}

    def node_paths(self):
        from core.analysis.paths import smoothed_paths

        return smoothed_paths(self._proba, self.dataset.lengths, self.grid.distances(),
                              continues=self.dataset.continues)

    def umatrix(self):
        return self.results()["umatrix"]

    def hits(self):
        return self.results()["hits"]

    def prototypes(self):
        return self._protos.copy()

    def decoded_prototypes(self):
        p = self._protos
        return np.stack([85 + 20 * p[:, 0], 2 + 1.5 * p[:, 2], 1 + 0.2 * p[:, 1]], axis=1)

    def latent(self):
        rng = np.random.default_rng(0)
        real = self._bmu[self.dataset.step_mask]
        return self._protos[real] + rng.normal(0, 0.05, (real.size, self._protos.shape[1]))

    def forecast(self, n_steps=6, *, patients=None, history=None, n_samples=0, random_state=None):
        patients = np.arange(self.dataset.n_samples) if patients is None else np.asarray(patients)
        self.forecast_calls.append((tuple(int(p) for p in patients), history, n_steps, n_samples))
        lens = np.minimum(self.dataset.lengths[patients], history or 10**9)
        last = self._bmu[patients, lens - 1]
        k = self.grid.n_nodes
        nodes = (last[:, None] + np.arange(1, n_steps + 1)[None, :]) % k
        dec = self.decoded_prototypes()
        features = dec[nodes]
        out = types.SimpleNamespace(nodes=nodes, features=features, start=lens.astype(np.int64),
                                    sample_nodes=None, sample_features=None, latent=None)
        if n_samples:
            rng = np.random.default_rng(random_state)
            jitter = rng.integers(0, 2, (len(patients), n_samples, n_steps))
            out.sample_nodes = (nodes[:, None, :] + jitter) % k
            out.sample_features = dec[out.sample_nodes] + rng.normal(0, 1, out.sample_nodes.shape + (dec.shape[1],))
        return out

    def stability(self, seeds=(1, 2, 3), *, label=None, callback=None):
        self.stability_calls.append((tuple(seeds), label))
        seeds = list(seeds)

        class P:
            def __init__(self, step):
                self.step, self.total_steps = step, 5

        def fit_predict(seed):
            index = seeds.index(seed)
            for step in range(1, 6):
                if callback is not None and callback(index, P(step)) is False:
                    break
            rng = np.random.default_rng(seed)
            flip = rng.random(self._bmu.shape) < 0.1
            return np.where(flip, (self._bmu + 1) % self.grid.n_nodes, self._bmu)

        labels = None if label is None else np.asarray(self.dataset.labels[label])
        return run_stability(fit_predict, seeds, grid=self.grid, labels=labels, sample_mask=self.dataset.step_mask,
                             on_error="record")


def make_explorer(run=None):
    from dpsom_gui.map_explorer import MapExplorer

    run = run or FakeTrainedRun()
    return MapExplorer(run, run.results())


class FakeTrainableRun(FakeTrainedRun):
    """:class:`FakeTrainedRun` that trains like ``ModelRun`` (fake steps) and saves to a project."""

    def __init__(self, dataset, config=None, preprocessing=None):
        grid = config.grid if config is not None else None
        super().__init__(dataset, grid)
        if config is not None:
            self.config = config
        self.preprocessing = preprocessing
        self._steps = 0
        self.is_complete = False

    @property
    def is_fitted(self):
        return self._steps > 0

    def iter_train(self, resume=False):
        for p in fake_steps(n_prototypes=self.grid.n_nodes, start_step=self._steps if resume else 0):
            self._steps = p.step
            yield p
        self.is_complete = True

    def validate(self):
        pass

    def estimate(self, stop=None):
        return {"seconds": 1.0, "memory_bytes": 2**20, "device": "cpu"}

    def to_project(self):
        from core.io.project_h5 import Project

        return Project(config=self.config.to_dict(), dataset=self.dataset, preprocessor=self.preprocessing,
                       model_state={"steps": np.array(self._steps)}, assignments=self.assignments(), history=[])

    @classmethod
    def from_project(cls, project):
        from core.config import Config

        run = cls(project.dataset, Config.from_dict(project.config), project.preprocessor)
        run._steps = int(project.model_state["steps"])
        run.is_complete = True
        return run


class ExploreEngine(FakeEngine):
    """An application engine whose demo is :func:`make_cohort` and whose runs are fake."""

    def make_run(self, dataset, config, preprocessing=None):
        run = FakeTrainableRun(dataset, config, preprocessing)
        self.runs.append(run)
        return run

    def run_from_project(self, project):
        run = FakeTrainableRun.from_project(project)
        self.runs.append(run)
        return run

    def propose_config(self, dataset, preset="quick"):
        return make_config("tdpsom", preset, grid=SOMGrid(4, 4, "rect", True))

    def demo(self, size="demo"):
        return make_cohort()
