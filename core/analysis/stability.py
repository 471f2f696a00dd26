"""How reproducible a map is across training runs (seeds).

Two questions: do runs put the same samples together (pairwise adjusted Rand index of the
assignments), and do they keep the same samples near or far apart on the map (correlation of
grid distances)? The second is insensitive to the rotations, reflections and translations of
the torus that make node indices of different runs incomparable.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ._common import as_bool_mask, check_nodes
from .metrics import adjusted_rand_index, collapse_check

__all__ = ["assignment_agreement", "node_position_agreement", "run_stability"]


def _stack_runs(bmus: Sequence, sample_mask=None, n_nodes: int | None = None) -> np.ndarray:
    if len(bmus) < 2:
        raise InputError(f"stability needs at least two runs; got {len(bmus)}")
    runs = [np.asarray(b) for b in bmus]
    shape = runs[0].shape
    for i, r in enumerate(runs):
        if r.shape != shape:
            raise InputError(f"run {i} has assignments of shape {r.shape}, run 0 of shape {shape}; "
                             "all runs must assign the same samples")
    valid = as_bool_mask(sample_mask, shape)
    out = np.stack([r.ravel() if valid is None else r[valid] for r in runs])
    if n_nodes is not None:
        out = check_nodes(out, n_nodes, "bmu")
    return out


def _summary(matrix: np.ndarray) -> dict:
    iu = np.triu_indices(matrix.shape[0], 1)
    vals = matrix[iu]
    finite = vals[np.isfinite(vals)]
    return {
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "std": float(finite.std()) if finite.size else float("nan"),
        "matrix": matrix,
        "n_runs": int(matrix.shape[0]),
    }


def assignment_agreement(bmus: Sequence, sample_mask=None) -> dict:
    """Pairwise adjusted Rand index between the assignments of several runs.

    Parameters
    ----------
    bmus : sequence of arrays of int, each of the same shape (``(n,)`` or ``(N, T)``)
        Node assignments of the same samples by different runs.
    sample_mask : ndarray of bool, same shape, optional
        Samples to compare (padding excluded).

    Returns
    -------
    dict
        ``mean`` and ``std`` over the run pairs, ``matrix`` ``(R, R)`` with 1 on the
        diagonal, ``n_runs``. 1 means every run grouped the samples identically.
    """
    runs = _stack_runs(bmus, sample_mask)
    r = runs.shape[0]
    m = np.eye(r)
    for i in range(r):
        for j in range(i + 1, r):
            m[i, j] = m[j, i] = adjusted_rand_index(runs[i], runs[j])
    return _summary(m)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / den) if den > 0 else float("nan")


def node_position_agreement(bmus: Sequence, grid, n_pairs: int = 100_000, seed: int = 0,
                            method: str = "spearman", sample_mask=None) -> dict:
    """Agreement of the map layouts of several runs, via grid distances between samples.

    For a random (seeded) set of sample pairs ``(i, j)``, each run gives the grid distance
    between the nodes of ``i`` and ``j``. Two runs agree on the layout when these distances
    correlate: samples close on one map are close on the other. Unlike comparing node
    indices, this does not care whether one map is a rotated, mirrored or (on a torus)
    shifted copy of the other. The same pairs are used for every pair of runs.

    Parameters
    ----------
    bmus : sequence of arrays of int, each of the same shape
        Node assignments of the same samples by different runs on the same grid.
    grid : SOMGrid
    n_pairs : int
        Number of random sample pairs (pairs of a sample with itself are excluded).
    seed : int
        Seed for drawing the pairs.
    method : {"spearman", "pearson"}
        Rank correlation (default; robust to how distances are scaled) or linear.
    sample_mask : ndarray of bool, same shape, optional

    Returns
    -------
    dict
        ``mean``, ``std``, ``matrix`` ``(R, R)`` of correlations (1 on the diagonal; NaN
        when a run puts every sampled pair at one distance, e.g. a collapsed map),
        ``n_runs``, ``n_pairs``.
    """
    if method not in ("spearman", "pearson"):
        raise InputError(f"method must be 'spearman' or 'pearson'; got {method!r}")
    runs = _stack_runs(bmus, sample_mask, grid.n_nodes)
    n = runs.shape[1]
    if n < 2:
        raise InputError("node_position_agreement needs at least two samples")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=int(n_pairs))
    j = (i + rng.integers(1, n, size=int(n_pairs))) % n  # never equal to i
    dist = grid.distances()
    d = np.stack([dist[r[i], r[j]] for r in runs]).astype(np.float64)
    if method == "spearman":
        from scipy.stats import rankdata

        d = rankdata(d, axis=1)  # ties share their mean rank
    r_count = runs.shape[0]
    m = np.eye(r_count)
    for a in range(r_count):
        for b in range(a + 1, r_count):
            m[a, b] = m[b, a] = _corr(d[a], d[b])
    out = _summary(m)
    out["n_pairs"] = int(n_pairs)
    return out


def run_stability(fit_predict: Callable[[int], np.ndarray], seeds: Sequence[int], grid=None, labels=None,
                  sample_mask=None, n_pairs: int = 100_000, on_error: str = "raise") -> dict:
    """Fit the same model with several seeds and summarise how much the results agree.

    Parameters
    ----------
    fit_predict : callable ``seed -> bmu``
        Trains a model with the given seed and returns the node assignment of a fixed set of
        samples (same shape every time). The estimator lives in the caller, so this module
        stays free of any deep-learning framework.
    seeds : sequence of int
    grid : SOMGrid, optional
        Enables the layout agreement and the per-run collapse check.
    labels : array-like, optional
        Same shape as the assignments; adds a per-run AMI to the collapse check.
    sample_mask : ndarray of bool, optional
        Samples to compare (padding excluded).
    n_pairs : int
        For :func:`node_position_agreement`.
    on_error : {"raise", "record"}
        "record" keeps going when a run fails and lists the failure, instead of dropping it
        silently (METHOD.md section 5, item 14).

    Returns
    -------
    dict
        ``seeds`` (the successful ones), ``bmus`` (their assignments), ``failed``
        (``{seed: message}``), ``nodes_used`` (per run), ``assignment`` (see
        :func:`assignment_agreement`, or None with fewer than two runs), ``layout`` (see
        :func:`node_position_agreement`, None without grid) and ``collapse``
        (``{seed: (collapsed, message)}``, with a grid).
    """
    if on_error not in ("raise", "record"):
        raise InputError(f"on_error must be 'raise' or 'record'; got {on_error!r}")
    ok_seeds, bmus, failed = [], [], {}
    for s in seeds:
        try:
            bmus.append(np.asarray(fit_predict(s)))
            ok_seeds.append(s)
        except Exception as err:  # noqa: BLE001 - reported to the caller, never hidden
            if on_error == "raise":
                raise
            failed[s] = f"{type(err).__name__}: {err}"
    valid = None if sample_mask is None else np.asarray(sample_mask)
    used = [int(np.unique(b if valid is None else b[valid]).size) for b in bmus]
    out = {"seeds": ok_seeds, "bmus": bmus, "failed": failed, "nodes_used": used,
           "assignment": None, "layout": None, "collapse": {}}
    if grid is not None:
        out["collapse"] = {s: collapse_check(b, grid.n_nodes, labels, sample_mask) for s, b in zip(ok_seeds, bmus)}
    if len(bmus) >= 2:
        out["assignment"] = assignment_agreement(bmus, sample_mask)
        if grid is not None:
            out["layout"] = node_position_agreement(bmus, grid, n_pairs=n_pairs, sample_mask=sample_mask)
    return out
