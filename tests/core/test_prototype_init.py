"""k-means starting prototypes (train.som_init = "kmeans"): scikit-learn's k-means, seeded
from the trainer's generator so that a run repeats exactly."""

import numpy as np
import torch

from core.config import make_config
from core.model import DPSOM
from core.training import _kmeans


def test_kmeans_finds_the_blob_centres_and_follows_the_generator():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z = torch.tensor(np.concatenate([c + 0.1 * rng.normal(size=(50, 2)) for c in centres]), dtype=torch.float32)
    found = _kmeans(z, 3, torch.Generator().manual_seed(1)).numpy()
    assert found.shape == (3, 2) and found.dtype == np.float32
    order = np.argsort(found[:, 0] + 2 * found[:, 1])
    assert np.allclose(found[order], centres, atol=0.1)
    again = _kmeans(z, 3, torch.Generator().manual_seed(1)).numpy()
    assert np.array_equal(found, again)


def test_training_with_kmeans_start_repeats_exactly():
    cfg = make_config("dpsom", "quick", **{
        "grid.height": 3, "grid.width": 3, "network.hidden": (16,), "network.latent_dim": 3,
        "train.epochs_pretrain": 1, "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,),
        "train.epochs_joint": 1, "train.batch_size": 50, "train.seed": 4, "train.som_init": "kmeans",
        "train.deterministic": True})
    x = np.random.default_rng(1).normal(size=(150, 6)).astype(np.float32)
    runs = []
    for _ in range(2):
        est = DPSOM(config=cfg)
        for _ in est.iter_fit(x):
            pass
        runs.append(est.prototypes_)
    assert np.isfinite(runs[0]).all() and np.array_equal(runs[0], runs[1])


def test_centres_placed_on_the_grid_keep_its_order():
    """k-means centres shuffled at random are matched back to the grid's PCA plane one-to-one."""
    from core.grid import SOMGrid
    from core.training import _pca_plane, _place_on_grid

    grid = SOMGrid(4, 4, "rect", False)
    rng = np.random.default_rng(2)
    z = torch.tensor(rng.normal(size=(400, 3)) * np.array([3.0, 1.5, 0.1]), dtype=torch.float64)
    plane = _pca_plane(z.sum(0), z.T @ z, float(len(z)), grid)
    centres = plane[torch.as_tensor(rng.permutation(16))] + 0.01
    placed = _place_on_grid(centres, plane)
    assert torch.allclose(placed, plane + 0.01, atol=1e-6)  # each centre back on its own node
    assert sorted(map(tuple, placed.numpy().round(5))) == sorted(map(tuple, centres.numpy().round(5)))


def test_kmeans_grid_start_trains_and_falls_back_to_the_plane_on_tiny_data():
    base = {"network.hidden": (16,), "network.latent_dim": 3, "train.epochs_pretrain": 1,
            "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,), "train.epochs_joint": 1,
            "train.batch_size": 20, "train.seed": 4, "train.som_init": "kmeans_grid"}
    x = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    for side in (3, 7):  # 9 nodes: k-means; 49 nodes > 40 rows: the PCA plane alone
        cfg = make_config("dpsom", "quick", **base, **{"grid.height": side, "grid.width": side})
        est = DPSOM(config=cfg)
        for _ in est.iter_fit(x):
            pass
        assert est.prototypes_.shape == (side * side, 3) and np.isfinite(est.prototypes_).all()
