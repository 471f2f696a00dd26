"""Superclusters: contiguity on the grid, agreement with scikit-learn, silhouette values."""

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics import silhouette_score as sk_silhouette

from core.analysis import (
    agglomerative_superclusters,
    kmeans_superclusters,
    silhouette_score,
    suggest_n_superclusters,
)
from core.errors import InputError
from core.grid import SOMGrid

GRIDS = [
    SOMGrid(5, 6, "rect", False),
    SOMGrid(6, 6, "rect", True),
    SOMGrid(5, 4, "hex", False),
    SOMGrid(6, 6, "hex", True),
]


def _is_contiguous(labels, grid):
    adj = grid.adjacency()
    for g in np.unique(labels):
        members = set(np.flatnonzero(labels == g).tolist())
        start = next(iter(members))
        seen, stack = {start}, [start]
        while stack:
            k = stack.pop()
            for n in np.flatnonzero(adj[k]):
                if int(n) in members and int(n) not in seen:
                    seen.add(int(n))
                    stack.append(int(n))
        if seen != members:
            return False
    return True


GRID_IDS = lambda g: f"{g.topology}-{'torus' if g.toroidal else 'flat'}"  # noqa: E731


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
@pytest.mark.parametrize("linkage", ["ward", "average", "complete", "single"])
def test_superclusters_are_contiguous_numbered_and_sklearns_with_grid_connectivity(grid, linkage):
    proto = np.random.default_rng(0).normal(size=(grid.n_nodes, 4))
    connectivity = grid.adjacency().astype(int)
    for n in (1, 2, 4, 7, 10):
        labels = agglomerative_superclusters(proto, grid, n, linkage)
        assert labels.shape == (grid.n_nodes,)
        assert sorted(np.unique(labels).tolist()) == list(range(n))
        assert labels[0] == 0
        assert _is_contiguous(labels, grid)
        ref = AgglomerativeClustering(n_clusters=n, connectivity=connectivity, linkage=linkage).fit_predict(proto)
        assert adjusted_rand_score(labels, ref) == 1.0


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
def test_kmeans_groups_ignore_the_grid(grid):
    # Plain k-means ignores the grid, so on noise its groups are typically not contiguous.
    proto = np.random.default_rng(0).normal(size=(grid.n_nodes, 4))
    assert not all(_is_contiguous(kmeans_superclusters(proto, n, seed=s), grid) for n in (4, 7) for s in (0, 1))


def test_single_linkage_cuts_the_longest_edges_of_the_minimum_spanning_tree():
    # An independent description of single linkage on a grid: weigh every grid edge by the
    # distance of its prototypes, keep the minimum spanning tree, drop its n - 1 longest edges.
    grid = SOMGrid(5, 6, "hex", False)
    proto = np.random.default_rng(2).normal(size=(grid.n_nodes, 2))
    rows, cols = np.nonzero(np.triu(grid.adjacency()))
    weights = np.linalg.norm(proto[rows] - proto[cols], axis=1)
    mst = minimum_spanning_tree(coo_matrix((weights, (rows, cols)), shape=(30, 30))).tocoo()
    order = np.argsort(mst.data)
    for n in (2, 4, 7):
        keep = order[: order.size - (n - 1)]
        forest = coo_matrix((np.ones(keep.size), (mst.row[keep], mst.col[keep])), shape=(30, 30))
        expected = connected_components(forest, directed=False)[1]
        mine = agglomerative_superclusters(proto, grid, n, "single")
        assert adjusted_rand_score(mine, expected) == 1.0


def test_torus_joins_groups_across_the_seam():
    # Columns 0 and 3 hold one kind of prototype, columns 1 and 2 another.
    col = np.tile(np.arange(4), 3)
    proto = np.where((col == 0) | (col == 3), 0.0, 10.0)[:, None] + 0.01 * np.arange(12)[:, None]
    torus = agglomerative_superclusters(proto, SOMGrid(3, 4, "rect", True), 2)
    assert torus.tolist() == [0, 1, 1, 0] * 3
    flat = agglomerative_superclusters(proto, SOMGrid(3, 4, "rect", False), 2)
    # On a flat map the two outer columns cannot join, so one side must absorb the middle.
    assert len(set(flat[[0, 3]].tolist())) == 2


def test_kmeans_recovers_blobs_is_seeded_and_matches_sklearn():
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0], [8, 0], [0, 8], [8, 8]], dtype=float)
    x = np.concatenate([c + rng.normal(scale=0.5, size=(16, 2)) for c in centres])
    truth = np.repeat(np.arange(4), 16)
    labels = kmeans_superclusters(x, 4, seed=0)
    assert adjusted_rand_score(labels, truth) == 1.0
    assert np.array_equal(labels, kmeans_superclusters(x, 4, seed=0))
    noise = rng.normal(size=(64, 3))
    mine = kmeans_superclusters(noise, 5, seed=1, n_init=20)
    ref = KMeans(5, n_init=20, random_state=0).fit(noise)
    inertia = sum(((noise[mine == g] - noise[mine == g].mean(axis=0)) ** 2).sum() for g in range(5))
    assert inertia <= ref.inertia_ * 1.02
    with pytest.raises(InputError, match="n_clusters"):
        kmeans_superclusters(x, 0)


@pytest.mark.parametrize("chunk", [1, 7, 2048])
def test_silhouette_equals_sklearn(chunk):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(90, 3))
    labels = rng.integers(0, 5, 90)
    labels[0] = 9  # a singleton group scores 0
    assert silhouette_score(x, labels, chunk_size=chunk) == pytest.approx(sk_silhouette(x, labels), abs=1e-10)
    names = np.array(["g%d" % v for v in labels], dtype=object)
    names[5] = None  # unknown group: left out
    keep = np.arange(90) != 5
    assert silhouette_score(x, names, chunk_size=chunk) == pytest.approx(
        sk_silhouette(x[keep], labels[keep]), abs=1e-10)


def test_silhouette_needs_two_to_n_minus_one_groups():
    x = np.arange(8.0)[:, None]
    with pytest.raises(InputError, match="between 2 and n-1"):
        silhouette_score(x, np.zeros(8))
    with pytest.raises(InputError, match="between 2 and n-1"):
        silhouette_score(x, np.arange(8))


def test_suggest_n_superclusters_finds_three_regions():
    grid = SOMGrid(6, 6, "rect", False)
    r, c = np.divmod(np.arange(36), 6)
    region = np.where(c < 2, 0, np.where(c < 4, 1, 2))
    proto = np.array([[0, 0], [10, 0], [5, 9]], dtype=float)[region]
    proto += np.random.default_rng(5).normal(scale=0.3, size=proto.shape)
    best, scores = suggest_n_superclusters(proto, grid, k_range=range(2, 7))
    assert best == 3 and set(scores) == {2, 3, 4, 5, 6}
    assert scores[3] == max(scores.values())
    best_km, _ = suggest_n_superclusters(proto, grid, k_range=range(2, 7), method="kmeans")
    assert best_km == 3
