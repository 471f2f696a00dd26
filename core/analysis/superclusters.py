"""Grouping the nodes of a map into a few "superclusters" (coarse health states).

Two methods: agglomerative clustering restricted to grid neighbours, which always gives
regions that are contiguous on the map, and k-means on the prototypes, which ignores the grid.
A silhouette score helps choose the number of groups. The agglomerative clustering (every
linkage), k-means and the silhouette are scikit-learn's; this module restricts them to the
map and names the results.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._common import as_bool_mask, as_matrix, factorize

__all__ = [
    "agglomerative_superclusters",
    "kmeans_superclusters",
    "silhouette_score",
    "suggest_n_superclusters",
]

_LINKAGES = ("ward", "average", "complete", "single")


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber groups 0..n-1 in order of their first node, so results are canonical."""
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    mapping = np.empty(labels.max() + 1, dtype=np.int64)
    mapping[np.unique(labels)[order]] = np.arange(order.size)
    return mapping[labels]


def _merge_sequence(x: np.ndarray, adjacency: np.ndarray, linkage: str) -> np.ndarray:
    """The ``(K - 1, 2)`` merges of agglomerative clustering restricted to grid neighbours.

    Ids ``>= K`` are earlier merges, as in scikit-learn's ``children_``. This is scikit-learn's
    tree with the grid as connectivity: Ward's criterion uses the groups' centroids, while
    average, complete and single linkage only look at the distances along grid edges that join
    the two groups (single linkage thus cuts the longest edges of the grid's minimum spanning
    tree). Building the whole tree once lets several cuts share it.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.cluster import linkage_tree, ward_tree

    graph = csr_matrix(adjacency)
    # scikit-learn would join the parts of a split grid with invented edges, which breaks the
    # promise that every group is a connected region; a SOMGrid is always in one piece.
    if connected_components(graph, directed=False)[0] != 1:
        raise InputError("the grid is not connected, so its nodes cannot be merged into regions")
    if linkage == "ward":
        children = ward_tree(x, connectivity=graph)[0]
    else:
        children = linkage_tree(x, connectivity=graph, linkage=linkage)[0]
    return np.asarray(children, dtype=np.int64)


def _cut(children: np.ndarray, k: int, n_clusters: int) -> np.ndarray:
    """Groups of the ``k`` nodes after the first ``k - n_clusters`` merges of ``children``."""
    parent = np.arange(2 * k - 1)
    for i, (a, b) in enumerate(children[: max(0, k - n_clusters)]):
        parent[a] = parent[b] = k + i
    root = np.arange(k)
    while True:
        up = parent[root]
        if np.array_equal(up, root):
            return _relabel(root)
        root = up


def _check_prototypes(prototypes, grid=None) -> np.ndarray:
    x = as_matrix(prototypes, "prototypes").astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError("prototypes contain NaN or infinite values; the model may have diverged")
    if grid is not None and x.shape[0] != grid.n_nodes:
        raise InputError(f"{x.shape[0]} prototypes for a grid of {grid.n_nodes} nodes")
    return x


def agglomerative_superclusters(prototypes, grid, n_clusters: int, linkage: str = "ward") -> np.ndarray:
    """Hierarchical clustering of the nodes that only ever merges grid-adjacent groups.

    Starting from one group per node, the two neighbouring groups whose merge costs least are
    joined until ``n_clusters`` remain. Because only neighbours merge, every supercluster is a
    connected region of the map (across the seam on a torus).

    Parameters
    ----------
    prototypes : ndarray, shape ``(K, d)``
    grid : SOMGrid
        Defines which nodes are neighbours.
    n_clusters : int
        1..K.
    linkage : {"ward", "average", "complete", "single"}
        Merge criterion, as scikit-learn's ``AgglomerativeClustering`` with the grid as
        connectivity. Ward (the default) minimises the growth of the within-group sum of
        squares; the others use the mean, largest or smallest prototype distance along the grid
        edges that join two groups (single linkage cuts the longest edges of the grid's minimum
        spanning tree). Memory grows with the number of grid edges, not ``K x K``.

    Returns
    -------
    ndarray of int64, shape ``(K,)``
        Supercluster of every node, numbered 0..n_clusters-1 in order of their first node.
    """
    x = _check_prototypes(prototypes, grid)
    k = x.shape[0]
    if linkage not in _LINKAGES:
        raise InputError(f"linkage must be one of {', '.join(_LINKAGES)}; got {linkage!r}")
    if not 1 <= int(n_clusters) <= k:
        raise InputError(f"n_clusters must be between 1 and the number of nodes ({k}); got {n_clusters}")
    if k == 1:
        return np.zeros(1, dtype=np.int64)
    return _cut(_merge_sequence(x, grid.adjacency(), linkage), k, int(n_clusters))


def kmeans_superclusters(prototypes, n_clusters: int, seed: int = 0, n_init: int = 10, max_iter: int = 300,
                         tol: float = 1e-10) -> np.ndarray:
    """k-means on the prototypes: scikit-learn's ``KMeans`` (k-means++ seeding, best of ``n_init``).

    Unlike :func:`agglomerative_superclusters` the grid is ignored, so groups need not be
    contiguous on the map; comparing the two shows how well the map's layout matches the
    latent geometry.

    Parameters
    ----------
    prototypes : ndarray, shape ``(K, d)``
    n_clusters : int
        1..K.
    seed : int
        Seed of the random generator; the same seed gives the same result.
    n_init : int
        Independent restarts; the one with the lowest within-cluster sum of squares wins.
    max_iter : int
    tol : float
        As scikit-learn's: stop when the centres move less than this, relative to the
        prototypes' variance.

    Returns
    -------
    ndarray of int64, shape ``(K,)``
        Group of every node, numbered in order of their first node.
    """
    x = _check_prototypes(prototypes)
    if not 1 <= int(n_clusters) <= x.shape[0]:
        raise InputError(f"n_clusters must be between 1 and the number of nodes ({x.shape[0]}); got {n_clusters}")
    if n_init < 1:
        raise InputError(f"n_init must be at least 1; got {n_init}")
    from sklearn.cluster import KMeans

    km = KMeans(int(n_clusters), n_init=int(n_init), max_iter=int(max_iter), tol=float(tol), random_state=seed)
    return _relabel(km.fit(x).labels_.astype(np.int64))


def silhouette_score(X, labels, sample_mask=None, chunk_size: int = 2048) -> float:
    """Mean silhouette coefficient with Euclidean distances (scikit-learn's ``silhouette_score``).

    For a sample, ``a`` is the mean distance to the other members of its group and ``b`` the
    smallest mean distance to another group; ``s = (b - a) / max(a, b)``, and ``s = 0`` for a
    sample alone in its group. scikit-learn works through the distances in blocks, so memory
    stays bounded (time is quadratic in ``n``); unknown labels and masks are handled here.

    Parameters
    ----------
    X : ndarray, shape ``(n, d)``
    labels : array-like, shape ``(n,)``
        Group of every sample; unknown labels are left out.
    sample_mask : ndarray of bool, shape ``(n,)``, optional
    chunk_size : int
        Unused (kept for callers that pass it; scikit-learn sizes its own blocks).

    Returns
    -------
    float
        In [-1, 1]; higher means tighter, better separated groups.
    """
    x = as_matrix(X, "X").astype(np.float64)
    lab = np.asarray(labels)
    if lab.shape != (x.shape[0],):
        raise InputError(f"labels must have one entry per row of X, shape ({x.shape[0]},); got {lab.shape}")
    valid = as_bool_mask(sample_mask, lab.shape)
    codes, _, _ = factorize(lab, valid)
    use = codes >= 0
    x, codes = x[use], codes[use]
    codes = np.unique(codes, return_inverse=True)[1].ravel()
    n = x.shape[0]
    n_groups = int(codes.max()) + 1 if n else 0
    if not 2 <= n_groups <= n - 1:
        raise InputError(f"the silhouette needs between 2 and n-1 groups; got {n_groups} groups for {n} samples")
    from sklearn.metrics import silhouette_score as _silhouette

    return float(_silhouette(x, codes, metric="euclidean"))


def suggest_n_superclusters(prototypes, grid, k_range=range(2, 11), method: str = "agglomerative",
                            linkage: str = "ward", seed: int = 0) -> tuple[int, dict[int, float]]:
    """Choose the number of superclusters by the silhouette of the prototypes.

    Parameters
    ----------
    prototypes : ndarray, shape ``(K, d)``
    grid : SOMGrid
    k_range : iterable of int
        Candidate numbers of groups; values outside 2..K-1 are skipped.
    method : {"agglomerative", "kmeans"}
    linkage : str
        For the agglomerative method.
    seed : int
        For k-means.

    Returns
    -------
    best_k : int
        The candidate with the highest silhouette (the smallest one on ties).
    scores : dict of int to float
        Silhouette of every candidate tried.
    """
    x = _check_prototypes(prototypes, grid)
    k = x.shape[0]
    ks = sorted({int(v) for v in k_range if 2 <= int(v) <= k - 1})
    if not ks:
        raise InputError(f"no usable number of superclusters in k_range for a map of {k} nodes (need 2..{k - 1})")
    if method == "agglomerative":
        if linkage not in _LINKAGES:
            raise InputError(f"linkage must be one of {', '.join(_LINKAGES)}; got {linkage!r}")
        children = _merge_sequence(x, grid.adjacency(), linkage)
        make = lambda n: _cut(children, k, n)  # noqa: E731
    elif method == "kmeans":
        make = lambda n: kmeans_superclusters(x, n, seed=seed)  # noqa: E731
    else:
        raise InputError(f"method must be 'agglomerative' or 'kmeans'; got {method!r}")
    scores = {}
    for n in ks:
        labels = make(n)
        scores[n] = silhouette_score(x, labels) if np.unique(labels).size >= 2 else float("nan")
    finite = {n: v for n, v in scores.items() if np.isfinite(v)}
    best = max(finite, key=lambda n: (finite[n], -n)) if finite else ks[0]
    return best, scores
