"""Grouping the nodes of a map into a few "superclusters" (coarse health states).

Two methods: agglomerative clustering restricted to grid neighbours, which always gives
regions that are contiguous on the map, and k-means on the prototypes, which ignores the grid.
A silhouette score (own implementation) helps choose the number of groups.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..errors import InputError
from ._common import as_bool_mask, as_matrix, factorize, iter_slices

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


def _merge_sequence(x: np.ndarray, adjacency: np.ndarray, linkage: str, stop_at: int) -> list[tuple[int, int]]:
    """Greedy merges of adjacent clusters until ``stop_at`` clusters remain.

    Ward uses the increase in within-cluster sum of squares,
    ``n_a n_b / (n_a + n_b) * ||c_a - c_b||^2``, from running centroids. The other linkages
    keep the full cluster-distance matrix and update it with the Lance-Williams formulas.
    """
    k = x.shape[0]
    size = np.ones(k)
    nbrs = [set(np.flatnonzero(adjacency[i]).tolist()) - {i} for i in range(k)]
    version = np.zeros(k, dtype=np.int64)
    active = np.ones(k, dtype=bool)
    if linkage == "ward":
        cent = x.astype(np.float64).copy()

        def dist(a, b):
            diff = cent[a] - cent[b]
            return size[a] * size[b] / (size[a] + size[b]) * float(diff @ diff)
    else:
        sq = (x**2).sum(axis=1)
        full = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))

        def dist(a, b):
            return float(full[a, b])

    heap = [(dist(a, b), a, b, 0, 0) for a in range(k) for b in nbrs[a] if a < b]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    n_active = k
    while n_active > stop_at and heap:
        _, a, b, va, vb = heapq.heappop(heap)
        if not (active[a] and active[b]) or version[a] != va or version[b] != vb:
            continue
        # b joins a
        if linkage == "ward":
            cent[a] = (size[a] * cent[a] + size[b] * cent[b]) / (size[a] + size[b])
        else:
            if linkage == "single":
                row = np.minimum(full[a], full[b])
            elif linkage == "complete":
                row = np.maximum(full[a], full[b])
            else:
                row = (size[a] * full[a] + size[b] * full[b]) / (size[a] + size[b])
            full[a, :], full[:, a] = row, row
            full[a, a] = 0.0
        size[a] += size[b]
        active[b] = False
        for c in nbrs[b]:
            nbrs[c].discard(b)
            if c != a:
                nbrs[c].add(a)
        nbrs[a] = (nbrs[a] | nbrs[b]) - {a, b}
        nbrs[b] = set()
        version[a] += 1
        for c in nbrs[a]:
            lo, hi = (a, c) if a < c else (c, a)
            heapq.heappush(heap, (dist(lo, hi), lo, hi, int(version[lo]), int(version[hi])))
        merges.append((a, b))
        n_active -= 1
    return merges


def _cut(merges: list[tuple[int, int]], k: int, n_clusters: int) -> np.ndarray:
    parent = np.arange(k)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in merges[: k - n_clusters]:
        parent[find(b)] = find(a)
    roots = np.array([find(i) for i in range(k)])
    return _relabel(roots)


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
        Merge criterion. Ward (the default) minimises the growth of the within-group sum of
        squares; the others use the mean, largest or smallest prototype distance and keep a
        ``K x K`` matrix (fine for maps up to a few thousand nodes).

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
    merges = _merge_sequence(x, grid.adjacency(), linkage, int(n_clusters))
    if len(merges) < k - n_clusters:
        raise InputError("the grid is not connected, so it cannot be merged into that few superclusters")
    return _cut(merges, k, int(n_clusters))


def _kmeans_once(x: np.ndarray, n_clusters: int, rng: np.random.Generator, max_iter: int, tol: float):
    n = x.shape[0]
    centres = np.empty((n_clusters, x.shape[1]))
    centres[0] = x[rng.integers(n)]
    closest = ((x - centres[0]) ** 2).sum(axis=1)
    for c in range(1, n_clusters):
        # k-means++: next centre drawn with probability proportional to squared distance.
        total = closest.sum()
        idx = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
        centres[c] = x[idx]
        closest = np.minimum(closest, ((x - centres[c]) ** 2).sum(axis=1))
    labels = np.zeros(n, dtype=np.int64)
    for it in range(max_iter):
        d = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new = d.argmin(axis=1)
        counts = np.bincount(new, minlength=n_clusters)
        for c in np.flatnonzero(counts == 0):
            # An empty cluster takes the point worst served by its current centre.
            far = int(np.argmax(d[np.arange(n), new]))
            new[far] = c
            d[far] = 0.0
            counts = np.bincount(new, minlength=n_clusters)
        moved = centres.copy()
        for c in range(n_clusters):
            centres[c] = x[new == c].mean(axis=0)
        shift = float(((centres - moved) ** 2).sum())
        if it > 0 and (np.array_equal(new, labels) or shift <= tol):
            labels = new
            break
        labels = new
    inertia = float(((x - centres[labels]) ** 2).sum())
    return labels, inertia


def kmeans_superclusters(prototypes, n_clusters: int, seed: int = 0, n_init: int = 10, max_iter: int = 300,
                         tol: float = 1e-10) -> np.ndarray:
    """k-means on the prototypes (k-means++ seeding, Lloyd iterations, best of ``n_init``).

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
        Stop when the centres move less than this (sum of squared shifts).

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
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(int(n_init)):
        labels, inertia = _kmeans_once(x, int(n_clusters), rng, int(max_iter), float(tol))
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return _relabel(best)


def silhouette_score(X, labels, sample_mask=None, chunk_size: int = 2048) -> float:
    """Mean silhouette coefficient with Euclidean distances.

    For a sample, ``a`` is the mean distance to the other members of its group and ``b`` the
    smallest mean distance to another group; ``s = (b - a) / max(a, b)``, and ``s = 0`` for a
    sample alone in its group. Computed in blocks of ``chunk_size`` rows, so memory is
    ``chunk_size x n`` rather than ``n x n`` (time is still quadratic in ``n``).

    Parameters
    ----------
    X : ndarray, shape ``(n, d)``
    labels : array-like, shape ``(n,)``
        Group of every sample; unknown labels are left out.
    sample_mask : ndarray of bool, shape ``(n,)``, optional
    chunk_size : int

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
    order = np.argsort(codes, kind="stable")
    x, codes = x[order], codes[order]
    sizes = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sq = (x**2).sum(axis=1)
    s = np.empty(n)
    for sl in iter_slices(n, chunk_size):
        d = np.sqrt(np.maximum(sq[sl, None] + sq[None, :] - 2.0 * x[sl] @ x.T, 0.0))
        rows = np.arange(sl.stop - sl.start)
        d[rows, rows + sl.start] = 0.0
        group_sums = np.add.reduceat(d, starts, axis=1)  # (chunk, n_groups)
        own = codes[sl]
        own_size = sizes[own]
        a = group_sums[rows, own] / np.maximum(own_size - 1, 1)
        means = group_sums / sizes[None, :]
        means[rows, own] = np.inf
        b = means.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            val = (b - a) / np.maximum(a, b)
        s[sl] = np.where((own_size > 1) & np.isfinite(val), val, 0.0)
    return float(s.mean())


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
        merges = _merge_sequence(x, grid.adjacency(), linkage, ks[0])
        make = lambda n: _cut(merges, k, n)  # noqa: E731
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
