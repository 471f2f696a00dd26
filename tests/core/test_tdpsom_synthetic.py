"""T-DPSOM on the synthetic ICU cohort: does the trained map find what the generator put in?

The cohort (``demo_icu("test")``: 300 patients, up to 72 hourly steps, 16 variables) has a
known hidden health state per step on a 3 x 3 lattice. One quick-preset model is trained per
module on the CPU (plus one with the smoothness loss switched off), with the default
preprocessing: z-scores, forward filling, then medians. The checks follow METHOD.md 7.13
and 8.3; every threshold sits well inside the values measured over several seeds.

The quick preset balances its loss weights so that the smoothness term, at its reference weight
1, matters (see :func:`core.config.make_config`); with the reference's balance it received
about 1/250 of the encoder's gradient and neither shortened jumps nor helped the map beyond
k-means.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import analysis as A
from core.data.demo import demo_icu
from core.data.preprocessing import Preprocessor
from core.model import TDPSOM
from core.workflow import propose_config

pytestmark = pytest.mark.slow

SEED = 0
HISTORY = 36  # forecast from the first 36 h of every stay that has at least 42 h
HORIZON = 6


class _Cohort:
    """The preprocessed test cohort and its ground truth."""

    def __init__(self) -> None:
        ds = demo_icu("test")
        self.dataset = ds
        pre = Preprocessor(scaling="zscore", clip_quantiles=None, ffill_limit=None, impute="median")
        self.X, self.mask = pre.fit_transform(ds)  # (N, T, D) float32, (N, T, D) bool
        self.lengths = ds.lengths  # (N,)
        self.steps = ds.step_mask  # (N, T) bool
        self.labels = ds.labels


def _train(cohort: _Cohort, smooth: float) -> TDPSOM:
    # What the app and dpsom train propose for this cohort (core.defaults), smoothness varied.
    config = propose_config(cohort.dataset, device="cpu").replace(**{"weights.smooth": smooth})
    # The quick networks are too small to gain from several threads, and on a shared CPU
    # extra threads wait on each other (ten times slower under load); one thread is fastest.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = TDPSOM(config=config, random_state=SEED)
        return model.fit(cohort.X, mask=cohort.mask, lengths=cohort.lengths)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cohort() -> _Cohort:
    return _Cohort()


@pytest.fixture(scope="module")
def model(cohort) -> TDPSOM:
    return _train(cohort, smooth=1.0)


@pytest.fixture(scope="module")
def bmu(model, cohort) -> np.ndarray:
    return model.predict(cohort.X, lengths=cohort.lengths)  # (N, T), -1 on padding


def kmeans(rows: np.ndarray, k: int, seed: int, n_init: int = 3, iters: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ starts; labels ``(n,)`` of the best of ``n_init`` runs."""
    rng = np.random.default_rng(seed)
    x = rows.astype(np.float64)
    sq = (x * x).sum(axis=1)
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        centres = [x[rng.integers(len(x))]]
        d2 = ((x - centres[0]) ** 2).sum(axis=1)
        for _ in range(1, k):
            centres.append(x[rng.choice(len(x), p=d2 / d2.sum())])
            d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(axis=1))
        c = np.array(centres)
        for _ in range(iters):
            dist = sq[:, None] - 2.0 * x @ c.T + (c * c).sum(axis=1)[None, :]
            labels = dist.argmin(axis=1)
            counts = np.bincount(labels, minlength=k)
            new = np.where(counts[:, None] > 0,
                           np.stack([np.bincount(labels, weights=x[:, j], minlength=k) for j in range(x.shape[1])], 1)
                           / np.maximum(counts, 1)[:, None], c)
            if np.allclose(new, c):
                break
            c = new
        dist = sq[:, None] - 2.0 * x @ c.T + (c * c).sum(axis=1)[None, :]
        labels = dist.argmin(axis=1)
        inertia = float(dist[np.arange(len(x)), labels].sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


@pytest.fixture(scope="module")
def kmeans_nmi(cohort, model) -> float:
    k = model.grid_.n_nodes
    labels = kmeans(cohort.X[cohort.steps], k, seed=SEED)
    return A.nmi(cohort.labels["state"][cohort.steps], labels)


def test_kmeans_helper_finds_separated_clusters():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=10.0, size=(5, 3))
    truth = rng.integers(0, 5, 500)
    labels = kmeans(centres[truth] + rng.normal(size=(500, 3)), 5, seed=0)
    assert A.nmi(truth, labels) > 0.99


def test_map_tracks_the_true_state(model, cohort, bmu, kmeans_nmi):
    score = A.nmi(cohort.labels["state"], bmu, sample_mask=cohort.steps)
    # Over seeds 0-3 and 2020: 0.55-0.56, k-means 0.49-0.50. A map that lost the state
    # (collapsed, or organised by patient instead) scores far lower.
    assert score > 0.45
    assert score > 0.8 * kmeans_nmi
    assert A.purity(cohort.labels["state"], bmu, sample_mask=cohort.steps) > 0.7  # 0.82-0.83; 9 states


def test_current_score_is_explained_better_than_the_day_ahead(cohort, bmu):
    def nmi_at(h):
        label = cohort.labels[f"apache_{h}"]
        return A.nmi(label, bmu, sample_mask=cohort.steps & ~np.isnan(label))

    now, day = nmi_at(0), nmi_at(24)
    assert now > day + 0.05  # 0.25-0.26 against 0.15 over seeds


def test_map_beats_kmeans_on_the_true_state(cohort, bmu, kmeans_nmi):
    # k-means sees each step's features alone; the map's encoder learnt from the smoothness
    # term which directions of change are slow (the state) and which are hour-to-hour noise.
    # Over seeds: 0.55-0.56 against 0.49-0.50.
    assert A.nmi(cohort.labels["state"], bmu, sample_mask=cohort.steps) > kmeans_nmi + 0.02


def test_smoothness_shortens_jumps(model, cohort, bmu):
    rough = _train(cohort, smooth=0.0)
    rough_bmu = rough.predict(cohort.X, lengths=cohort.lengths)
    smooth_jump = A.mean_jump(bmu, cohort.lengths, model.grid_)
    rough_jump = A.mean_jump(rough_bmu, cohort.lengths, rough.grid_)
    assert smooth_jump < 0.85 * rough_jump  # 0.66-0.75 against 1.02-1.22 over seeds


def test_forecast_beats_the_same_state_baseline(model, cohort, bmu):
    sel = cohort.lengths >= HISTORY + HORIZON
    assert sel.sum() > 100
    X, lengths = cohort.X[sel], cohort.lengths[sel]
    truth = X[:, HISTORY:HISTORY + HORIZON]  # (n, 6, D) standardised
    observed = cohort.mask[sel, HISTORY:HISTORY + HORIZON]  # only measured values count
    forecast = model.forecast(X, HORIZON, lengths=lengths, history=HISTORY)
    assert forecast.features.shape == truth.shape
    assert (forecast.start == HISTORY).all()

    # Same state: decode the last history step's latent and hold it for all six steps.
    last = model.decode(model.transform(X, lengths=lengths)[:, HISTORY - 1])  # (n, D)
    baseline = np.repeat(last[:, None], HORIZON, axis=1)

    mse = float(((forecast.features - truth) ** 2)[observed].mean())
    base_mse = float(((baseline - truth) ** 2)[observed].mean())
    # Ratio 0.88-0.92 over seeds: the LSTM's mean path anticipates drift and averages out the
    # hour-to-hour noise of the last observed step.
    assert mse < 0.97 * base_mse

    # Unrolled-state accuracy: the forecast node equals the node of the true encoding.
    acc = A.forecast_state_accuracy(forecast.nodes, bmu[sel, HISTORY:HISTORY + HORIZON])
    assert acc > 10.0 / model.grid_.n_nodes  # 0.41-0.43 against chance 1/64


def test_severity_forms_a_smooth_region_on_the_map(model, cohort, bmu):
    grid = model.grid_
    enr = A.label_enrichment(bmu, cohort.labels["severity"], grid.n_nodes, sample_mask=cohort.steps)
    # Clean settings: no self-weight, empty nodes left out; centred on the mean over all steps.
    moran = A.morans_i(enr.mean, grid, counts=enr.count, global_mean=enr.global_mean)
    assert moran > 0.3  # 0.45-0.54 over seeds; about -1/63 for a random placement

    shuffled = np.random.default_rng(0).permutation(grid.n_nodes)
    assert A.morans_i(enr.mean[shuffled], grid, counts=enr.count[shuffled], global_mean=enr.global_mean) < 0.15


def test_transitions_stay_on_the_node_or_move_to_a_neighbour(model, cohort, bmu):
    grid = model.grid_
    k = grid.n_nodes
    counts = A.transition_matrix(bmu, cohort.lengths, k, normalize=False).astype(np.float64)  # (K, K)
    near = grid.distances() <= 1  # self or one of the 4 neighbours
    share = counts[near].sum() / counts.sum()
    # Chance: the next node drawn from the overall node frequencies, whatever the current one.
    freq = np.bincount(bmu[cohort.steps], minlength=k) / cohort.steps.sum()
    chance = float(freq @ near @ freq)
    assert share > 0.6 and share > 4.0 * chance  # 0.83-0.84 against 0.11-0.14

    # Among real moves, neighbours are still strongly preferred (0.51-0.54 against 0.08-0.10).
    moves = counts.copy()
    np.fill_diagonal(moves, 0.0)
    pairs = np.outer(freq, freq)
    np.fill_diagonal(pairs, 0.0)
    neighbour = grid.distances() == 1
    assert moves[neighbour].sum() / moves.sum() > 4.0 * pairs[neighbour].sum() / pairs.sum()
