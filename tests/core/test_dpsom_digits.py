"""DPSOM on scikit-learn's digits: clustering quality against k-means, and map topology.

The real 8x8 handwritten digits (1,797 images) ship with scikit-learn, so this runs offline.
"""

import numpy as np
import pytest

from core.analysis import cluster_metrics, neighbour_majority_agreement
from core.config import make_config

pytest.importorskip("sklearn")

import benchmarks.digits_quality as bench  # noqa: E402  (shares the exact settings with the benchmark)

SEED = 0


@pytest.fixture(scope="module")
def digits():
    return bench.load_digits_unit()


@pytest.fixture(scope="module")
def dpsom_bmu(digits):
    X, _ = digits
    return bench.fit_dpsom(X, SEED)[0]


@pytest.fixture(scope="module")
def kmeans(digits):
    X, y = digits
    return cluster_metrics(y, bench.kmeans_labels(X, SEED))


@pytest.mark.slow
def test_dpsom_clusters_digits_at_least_as_well_as_kmeans(digits, dpsom_bmu, kmeans):
    _, y = digits
    ours = cluster_metrics(y, dpsom_bmu)
    # No collapse: most nodes hold images (the few empty ones lie between two digits' regions).
    assert len(np.unique(dpsom_bmu)) >= 48
    # Over seeds 0-6 (benchmarks/digits_quality.py, two threads) DPSOM's NMI was 0.726-0.737
    # against 0.707-0.719 for k-means (best of 10 restarts), higher on every seed; its purity
    # 0.959-0.971 against 0.949-0.971, higher on six seeds (by 0.004-0.015) and lower on one
    # (0.959 against k-means' best, 0.971). Seed 0 gives 0.737/0.971 against 0.716/0.967.
    # Float rounding alone (another thread count) moves a run about as much as another seed
    # does, hence no margin demanded on NMI and a small one allowed on purity; a broken model
    # (no clustering loss, a collapsed map) lands far outside them, and the earlier KL weight
    # of 0.1 failed the NMI check (0.701).
    assert ours["nmi_geometric"] >= kmeans["nmi_geometric"]
    assert ours["purity"] >= kmeans["purity"] - 0.01
    assert ours["nmi_geometric"] > 0.7 and ours["purity"] > 0.94


@pytest.mark.slow
def test_map_has_topology_unlike_the_no_som_ablation(digits, dpsom_bmu):
    X, y = digits
    grid = make_config("dpsom", "quick").grid
    ablation_bmu = bench.fit_dpsom(X, SEED, ablation=True)[0]
    with_som = neighbour_majority_agreement(dpsom_bmu, y, grid)
    without = neighbour_majority_agreement(ablation_bmu, y, grid)
    # 10 digits on 64 nodes: random placement gives about 0.1; contiguous regions ~0.5.
    assert with_som > 0.25
    assert with_som > 2.0 * without
