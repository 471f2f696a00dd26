"""The batch-SOM refinement that ends the joint phase (``train.refine_sigma``): its update on a
hand-checked example, and what it does to a trained map."""

import math

import numpy as np
import pytest
import torch

from core.analysis.metrics import topographic_error
from core.config import make_config
from core.model import DPSOM
from core.training import _neighbourhood_means


def test_update_is_the_neighbourhood_weighted_mean_of_the_codes():
    # Three nodes on a line (grid distances 1 and 2), one-dimensional codes:
    # node 0 holds codes 0 and 2 (sum 2), node 1 holds 6, node 2 holds none.
    dist2 = torch.tensor([[0.0, 1.0, 4.0], [1.0, 0.0, 1.0], [4.0, 1.0, 0.0]], dtype=torch.float64)
    sums = torch.tensor([[2.0], [6.0], [0.0]], dtype=torch.float64)
    counts = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    protos = torch.tensor([[1.0], [5.0], [9.0]], dtype=torch.float64)
    out = _neighbourhood_means(sums, counts, dist2, 1.0, protos)
    e1, e2 = math.exp(-0.5), math.exp(-2.0)
    expected = [(2 + 6 * e1) / (2 + e1), (2 * e1 + 6) / (2 * e1 + 1), (2 * e2 + 6 * e1) / (2 * e2 + e1)]
    assert out[:, 0].tolist() == pytest.approx(expected, rel=1e-12)
    # A narrow neighbourhood is plain k-means: each node moves to its own codes' mean, and the
    # node without codes (and no weight near it) keeps its prototype.
    narrow = _neighbourhood_means(sums, counts, dist2, 0.01, protos)
    assert narrow[:, 0].tolist() == pytest.approx([1.0, 6.0, 9.0])
    assert protos[:, 0].tolist() == [1.0, 5.0, 9.0]  # the input is left as it was


def _fit(refine, x):
    cfg = make_config("dpsom", "quick", **{
        "grid.height": 5, "grid.width": 5, "network.hidden": (32,), "network.latent_dim": 4,
        "train.epochs_pretrain": 5, "train.som_init_epochs": (1,), "train.som_init_lrs": (0.1,),
        "train.epochs_joint": 3, "train.batch_size": 32, "train.seed": 3, "train.som_init": "kmeans_grid",
        "train.deterministic": True, "train.refine_sigma": refine})
    est = DPSOM(config=cfg)
    for _ in est.iter_fit(x):
        pass
    return est, cfg.grid


def test_refinement_orders_the_trained_map(one_thread):
    rng = np.random.default_rng(5)
    # A curved two-dimensional sheet in 8 features: a map can be ordered along it.
    u, v = rng.uniform(-1, 1, (2, 300))
    x = np.stack([u, v, u * v, u ** 2, np.sin(2 * u), np.cos(2 * v), u - v, u + v], axis=1)
    x = (x + 0.05 * rng.normal(size=x.shape)).astype(np.float32)
    plain, grid = _fit((), x)
    refined, _ = _fit((1.5, 0.7), x)
    z = refined.transform(x)
    assert np.allclose(plain.transform(x), z)  # the networks are the same; only the prototypes moved
    before = topographic_error(z, plain.prototypes_, grid)
    after = topographic_error(z, refined.prototypes_, grid)
    assert after < before - 0.1, (before, after)
    # The refined prototypes are where a last pass at the final width leaves them.
    nodes = torch.cdist(torch.as_tensor(z, dtype=torch.float64),
                        torch.as_tensor(refined.prototypes_, dtype=torch.float64)).argmin(1)
    protos = torch.as_tensor(refined.prototypes_, dtype=torch.float64)
    sums = torch.zeros_like(protos).index_add_(0, nodes, torch.as_tensor(z, dtype=torch.float64))
    counts = torch.bincount(nodes, minlength=grid.n_nodes).double()
    dist2 = torch.as_tensor(grid.distances(), dtype=torch.float64) ** 2
    again = _neighbourhood_means(sums, counts, dist2, 0.7, protos)
    assert torch.allclose(again, protos, atol=1e-3)
    # Most nodes still hold rows.
    assert len(np.unique(refined.predict(x))) >= 18


def test_refine_sigma_is_validated():
    with pytest.raises(ValueError, match="refine_sigma"):
        make_config("dpsom", "quick", **{"train.refine_sigma": (1.0,)})
    with pytest.raises(ValueError, match="refine_sigma"):
        make_config("dpsom", "quick", **{"train.refine_sigma": (1.0, 0.0)})
