"""Per-node maps of a trained SOM: U-matrix, hits, component planes, label enrichment, Moran's I.

Every function returns one value per node, ``(K,)`` in row-major node order
(``k = row * width + col``), ready to be reshaped to ``(height, width)`` and drawn. Empty
nodes get NaN rather than 0, so that they can be shown as "no data" and never bias a summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._common import (DEFAULT_CHUNK, as_bool_mask, as_matrix, check_nodes, chunks_of, factorize, iter_slices,
                      missing_mask)
from .metrics import assignment_entropy

__all__ = [
    "umatrix",
    "hit_map",
    "soft_hit_map",
    "component_planes",
    "feature_plane",
    "NodeEnrichment",
    "label_enrichment",
    "wilson_interval",
    "node_entropy",
    "morans_i",
    "majority_labels",
    "neighbour_majority_agreement",
]


def _check_grid_rows(values: np.ndarray, grid, name: str) -> None:
    if values.shape[0] != grid.n_nodes:
        raise InputError(
            f"{name} has {values.shape[0]} rows but the {grid.height}x{grid.width} grid has {grid.n_nodes} nodes"
        )


def umatrix(prototypes, grid) -> np.ndarray:
    """Mean distance from each node's prototype to the prototypes of its grid neighbours.

    High values mark boundaries between regions of the latent space; low values mark
    homogeneous regions. Neighbours follow ``grid`` (4 for rect, 6 for hex; across the seam
    on a torus, not past the edge of a flat map).

    Parameters
    ----------
    prototypes : ndarray, shape ``(K, d)``
        Prototype vectors (latent), or decoded prototype profiles.
    grid : SOMGrid

    Returns
    -------
    ndarray of float64, shape ``(K,)``
    """
    proto = as_matrix(prototypes, "prototypes").astype(np.float64)
    _check_grid_rows(proto, grid, "prototypes")
    nb, mask = grid.neighbours, grid.neighbour_mask
    safe = np.where(mask, nb, 0)
    dist = np.sqrt(((proto[:, None, :] - proto[safe]) ** 2).sum(axis=2))  # (K, n_max)
    n = mask.sum(axis=1)
    return np.where(n > 0, (dist * mask).sum(axis=1) / np.maximum(n, 1), np.nan)


def hit_map(bmu, n_nodes: int, weights=None, sample_mask=None) -> np.ndarray:
    """Number of samples (or total weight) mapped to every node.

    Parameters
    ----------
    bmu : array-like of int, any shape
        Node index of each sample, e.g. ``(n,)`` or ``(n_patients, n_steps)``.
    n_nodes : int
    weights : array-like of float, same shape, optional
        Per-sample weights; counts when omitted.
    sample_mask : ndarray of bool, same shape, optional
        False entries (padding) are not counted.

    Returns
    -------
    ndarray, shape ``(n_nodes,)``
        int64 counts, or float64 sums of weights.
    """
    b = np.asarray(bmu)
    valid = as_bool_mask(sample_mask, b.shape)
    b = check_nodes(b, n_nodes, "bmu", where=valid)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != b.shape:
            raise InputError(f"weights have shape {w.shape} but bmu has shape {b.shape}")
    if valid is not None:
        b = b[valid]
        w = None if w is None else w[valid]
    out = np.bincount(b.ravel(), weights=None if w is None else w.ravel(), minlength=n_nodes)
    return out.astype(np.int64) if w is None else out


def soft_hit_map(proba, sample_mask=None, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Sum of soft assignments per node: the expected number of samples in each node.

    Parameters
    ----------
    proba : ndarray ``(n, K)`` or iterable of ``(n_i, K)`` chunks
        Soft assignments (rows sum to 1). A generator lets large cohorts stream through.
    sample_mask : ndarray of bool, shape ``(n,)``, optional
        Only with an array ``proba``: rows to include.
    chunk_size : int

    Returns
    -------
    ndarray of float64, shape ``(K,)``
    """
    if sample_mask is not None:
        p = as_matrix(proba, "proba")
        valid = as_bool_mask(sample_mask, (p.shape[0],))
        out = np.zeros(p.shape[1])
        for s in iter_slices(p.shape[0], chunk_size):
            out += p[s][valid[s]].sum(axis=0, dtype=np.float64)
        return out
    total = None
    for block in chunks_of(proba, chunk_size):
        b = np.asarray(block, dtype=np.float64)
        if b.ndim != 2:
            raise InputError(f"proba chunks must be 2-D (samples x nodes); got shape {b.shape}")
        s = b.sum(axis=0)
        if total is None:
            total = s
        elif s.shape != total.shape:
            raise InputError(f"proba chunks disagree on the number of nodes: {total.shape[0]} and {s.shape[0]}")
        else:
            total += s
    if total is None:
        raise InputError("no soft assignments were given (empty iterable)")
    return total


def component_planes(decoded) -> np.ndarray:
    """One map per feature from the decoded prototype profiles.

    Parameters
    ----------
    decoded : ndarray, shape ``(K, D)``
        Prototype profiles decoded into feature space (ideally in original units).

    Returns
    -------
    ndarray, shape ``(D, K)``
        Row ``j`` is the map of feature ``j``; reshape to ``(D, height, width)`` to draw.
    """
    return np.ascontiguousarray(as_matrix(decoded, "decoded").T)


def feature_plane(decoded, feature_index: int) -> np.ndarray:
    """The map of one feature: ``decoded[:, feature_index]``, shape ``(K,)``.

    Parameters
    ----------
    decoded : ndarray, shape ``(K, D)``
    feature_index : int
        Column of the feature (negative values count from the end).
    """
    d = as_matrix(decoded, "decoded")
    if not -d.shape[1] <= feature_index < d.shape[1]:
        raise InputError(f"feature index {feature_index} is out of range for {d.shape[1]} features")
    return d[:, feature_index].copy()


# ------------------------------------------------------------------------- enrichment
@dataclass(frozen=True)
class NodeEnrichment:
    """Per-node summary of one label over the samples mapped to each node.

    Attributes
    ----------
    mean : ndarray of float64, shape ``(K,)``
        Mean label (the event rate for 0/1 labels); NaN for nodes without labelled samples.
    count : ndarray of int64, shape ``(K,)``
        Labelled samples per node.
    lower, upper : ndarray of float64, shape ``(K,)``
        Confidence interval of the mean: Wilson score interval for 0/1 labels, Student-t
        interval otherwise (NaN with fewer than 2 samples).
    std : ndarray of float64, shape ``(K,)``
        Sample standard deviation (ddof=1), NaN with fewer than 2 samples.
    kind : str
        "binary" or "continuous".
    confidence : float
        Coverage of the interval, e.g. 0.95.
    n_missing : int
        Samples left out because their label was unknown.
    global_mean : float
        Mean over all labelled samples (the centre for :func:`morans_i`).
    """

    mean: np.ndarray
    count: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    std: np.ndarray
    kind: str
    confidence: float
    n_missing: int
    global_mean: float


def wilson_interval(successes, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion.

    Parameters
    ----------
    successes, n : array-like
        Number of events and of trials (same shape); NaN bounds where ``n == 0``.
    confidence : float

    Returns
    -------
    lower, upper : ndarray of float64
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    from scipy.special import ndtri  # the normal quantile

    z = float(ndtri(0.5 + confidence / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lower = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    upper = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return lower, upper


def _numeric_label(label_values, positive, name: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """Float values and the missing mask for a label of any dtype."""
    a = np.asarray(label_values)
    miss = missing_mask(a)
    if positive is not None:
        vals = np.zeros(a.shape)
        vals[~miss] = (a[~miss] == positive).astype(np.float64)
        return vals, miss
    if a.dtype.kind in "biuf":
        return a.astype(np.float64), miss
    if a.dtype.kind == "O":
        try:
            vals = np.where(miss, np.nan, a).astype(np.float64)
            return vals, miss
        except (TypeError, ValueError):
            pass
    raise InputError(
        f"{name} is not numeric (dtype {a.dtype}); pass positive=<value> to map the share of that "
        "category, or convert the label to numbers first"
    )


def label_enrichment(bmu, label_values, n_nodes: int, sample_mask=None, kind: str = "auto",
                     confidence: float = 0.95, positive=None) -> NodeEnrichment:
    """Mean, count and confidence interval of a label in every node.

    The label is any outcome (mortality, a score, a class indicator); it was never used in
    training. Samples with unknown labels (NaN/None/"") are left out and counted.

    Parameters
    ----------
    bmu : array-like of int, any shape
        Node of each sample, ``(n,)`` or ``(n_patients, n_steps)``.
    label_values : array-like, same shape
        Numeric label, or any label together with ``positive``.
    n_nodes : int
    sample_mask : ndarray of bool, same shape, optional
        False entries (padding) never count.
    kind : {"auto", "binary", "continuous"}
        "auto" chooses "binary" when every known value is 0 or 1.
    confidence : float
        Interval coverage, default 0.95.
    positive : object, optional
        Treat the label as the indicator ``label == positive`` (e.g. ``positive="died"``).

    Returns
    -------
    NodeEnrichment

    Notes
    -----
    The binary interval is Wilson's score interval, which behaves well for small counts and
    rates near 0 or 1. The continuous interval is ``mean +- t_{(1+c)/2, n-1} * s / sqrt(n)``.
    """
    b = np.asarray(bmu)
    vals, miss = _numeric_label(label_values, positive)
    if vals.shape != b.shape:
        raise InputError(f"the label has shape {vals.shape} but the assignments have shape {b.shape}")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be between 0 and 1; got {confidence}")
    valid = as_bool_mask(sample_mask, b.shape)
    use = ~miss if valid is None else (~miss & valid)
    n_missing = int(miss.sum() if valid is None else (miss & valid).sum())
    b = check_nodes(b, n_nodes, "bmu", where=use)[use]
    x = vals[use]
    if kind == "auto":
        kind = "binary" if x.size and np.all((x == 0) | (x == 1)) else "continuous"
    if kind not in ("binary", "continuous"):
        raise InputError(f"kind must be 'auto', 'binary' or 'continuous'; got {kind!r}")
    if kind == "binary" and x.size and not np.all((x == 0) | (x == 1)):
        raise InputError("kind='binary' needs a 0/1 label; found other values")
    count = np.bincount(b, minlength=n_nodes).astype(np.int64)
    sums = np.bincount(b, weights=x, minlength=n_nodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, sums / count, np.nan)
        # Two passes (deviations from the node mean) avoid cancellation in the variance.
        ss = np.bincount(b, weights=(x - mean[b]) ** 2, minlength=n_nodes)
        std = np.where(count > 1, np.sqrt(ss / np.maximum(count - 1, 1)), np.nan)
    if kind == "binary":
        lower, upper = wilson_interval(sums, count, confidence)
    else:
        from scipy.special import stdtrit  # Student's t quantile

        tq = stdtrit(np.where(count > 1, count - 1.0, np.nan), 0.5 + confidence / 2.0)
        half = tq * std / np.sqrt(np.maximum(count, 1))
        lower = np.where(count > 1, mean - half, np.nan)
        upper = np.where(count > 1, mean + half, np.nan)
    gm = float(x.mean()) if x.size else float("nan")
    return NodeEnrichment(mean, count, lower, upper, std, kind, float(confidence), n_missing, gm)


def node_entropy(bmu, proba_or_entropy, n_nodes: int, sample_mask=None) -> np.ndarray:
    """Mean assignment entropy of the samples in every node.

    Parameters
    ----------
    bmu : array-like of int, shape ``(n,)``
    proba_or_entropy : ndarray ``(n, K)`` soft assignments, or ``(n,)`` precomputed entropies
    n_nodes : int
    sample_mask : ndarray of bool, shape ``(n,)``, optional

    Returns
    -------
    ndarray of float64, shape ``(n_nodes,)``
        Mean entropy in nats; NaN for empty nodes. High values mark nodes where the model is
        unsure which state a sample belongs to.
    """
    b = np.asarray(bmu).ravel()
    pe = np.asarray(proba_or_entropy)
    ent = assignment_entropy(pe) if pe.ndim == 2 else pe.astype(np.float64).ravel()
    if ent.shape != b.shape:
        raise InputError(f"{ent.shape[0]} entropies (or probability rows) for {b.shape[0]} assignments")
    valid = as_bool_mask(None if sample_mask is None else np.asarray(sample_mask).ravel(), b.shape)
    b = check_nodes(b, n_nodes, "bmu", where=valid)
    if valid is not None:
        b, ent = b[valid], ent[valid]
    count = np.bincount(b, minlength=n_nodes)
    sums = np.bincount(b, weights=ent, minlength=n_nodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, sums / count, np.nan)


# ---------------------------------------------------------------------- spatial statistics
def morans_i(node_values, grid, counts=None, weights="exp", global_mean=None, self_weight: bool = False,
             empty_as_zero: bool = False) -> float:
    """Moran's I spatial autocorrelation of a per-node value on the grid (METHOD.md 3.5.2).

    ``I = (n / sum_jl w_jl) * sum_jl w_jl (v_j - c)(v_l - c) / sum_j (v_j - c)^2``

    Positive when neighbouring nodes carry similar values (a smooth map), near
    ``-1/(n-1)`` for random placement, negative for a checkerboard.

    Parameters
    ----------
    node_values : array-like of float, shape ``(K,)``
        E.g. ``label_enrichment(...).mean``; NaN marks an empty node.
    grid : SOMGrid
        Supplies the grid distances (toroidal wrap included).
    counts : array-like of int, shape ``(K,)``, optional
        Samples per node; nodes with count 0 are empty.
    weights : "exp", "adjacency" or ndarray ``(K, K)``
        ``"exp"``: ``w_jl = exp(-grid distance)`` as in the reference; ``"adjacency"``: 1 for
        grid neighbours, 0 otherwise; or any symmetric matrix.
    global_mean : float, optional
        Centre ``c``; the reference centres on the mean label over all samples
        (``NodeEnrichment.global_mean``). Default: mean of the used node values.
    self_weight : bool
        Keep ``w_jj`` (1 for "exp") as the reference training script did. Default False
        (the notebook's and our choice, METHOD.md section 5.11).
    empty_as_zero : bool
        Give empty nodes the value 0 and keep them, as the reference did. Default False:
        empty nodes are left out, so ``n`` counts the non-empty nodes.

    Returns
    -------
    float
        NaN when fewer than two nodes remain or all values are equal to the centre.

    Notes
    -----
    The reference variant is ``morans_i(v, grid, counts, global_mean=g, self_weight=True,
    empty_as_zero=True)``.
    """
    v = np.asarray(node_values, dtype=np.float64).ravel()
    k = grid.n_nodes
    if v.shape != (k,):
        raise InputError(f"node_values has {v.size} entries for a grid of {k} nodes")
    empty = np.isnan(v)
    if counts is not None:
        c = np.asarray(counts).ravel()
        if c.shape != (k,):
            raise InputError(f"counts has {c.size} entries for a grid of {k} nodes")
        empty |= c <= 0
    if isinstance(weights, str):
        if weights == "exp":
            w = np.exp(-grid.distances().astype(np.float64))
        elif weights == "adjacency":
            w = grid.adjacency().astype(np.float64)
        else:
            raise InputError(f"weights must be 'exp', 'adjacency' or a ({k}, {k}) matrix; got {weights!r}")
    else:
        w = np.array(weights, dtype=np.float64)
        if w.shape != (k, k):
            raise InputError(f"the weight matrix must be ({k}, {k}); got {w.shape}")
    if not self_weight:
        np.fill_diagonal(w, 0.0)
    if empty_as_zero:
        v = np.where(empty, 0.0, v)
        keep = np.ones(k, dtype=bool)
    else:
        keep = ~empty
    x = v[keep]
    w = w[np.ix_(keep, keep)]
    n = x.size
    centre = float(x.mean()) if global_mean is None and n else global_mean
    if n < 2 or w.sum() == 0:
        return float("nan")
    dev = x - centre
    denom = float(dev @ dev)
    if denom == 0:
        return float("nan")
    return float(n / w.sum() * (dev @ w @ dev) / denom)


def majority_labels(bmu, labels, n_nodes: int, sample_mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The most frequent label in every node.

    Parameters
    ----------
    bmu : array-like of int, any shape
    labels : array-like, same shape
        Any labels; unknown ones are ignored.
    n_nodes : int
    sample_mask : ndarray of bool, same shape, optional

    Returns
    -------
    codes : ndarray of int64, shape ``(n_nodes,)``
        Index into ``categories`` of the majority label, -1 for nodes without labelled samples.
        Ties go to the first category in sorted order.
    categories : ndarray, shape ``(C,)``
        The distinct labels, sorted.
    share : ndarray of float64, shape ``(n_nodes,)``
        Fraction of the node's labelled samples that carry the majority label (NaN if empty).
    """
    b = np.asarray(bmu)
    lab = np.asarray(labels)
    if lab.shape != b.shape:
        raise InputError(f"labels have shape {lab.shape} but the assignments have shape {b.shape}")
    valid = as_bool_mask(sample_mask, b.shape)
    codes, cats, _ = factorize(lab, valid)
    use = codes >= 0
    b = check_nodes(b, n_nodes, "bmu", where=use)
    n_cat = max(len(cats), 1)
    table = np.bincount(b[use] * n_cat + codes[use], minlength=n_nodes * n_cat).reshape(n_nodes, n_cat)
    tot = table.sum(axis=1)
    maj = np.where(tot > 0, table.argmax(axis=1), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tot > 0, table.max(axis=1) / tot, np.nan)
    return maj.astype(np.int64), cats, share


def neighbour_majority_agreement(bmu, labels, grid, sample_mask=None) -> float:
    """Fraction of neighbouring node pairs whose majority labels agree (METHOD.md 7.12).

    A map with topology puts similar samples in neighbouring nodes, so the majority-label map
    forms contiguous regions and this fraction is high; without the SOM loss it drops.

    Parameters
    ----------
    bmu : array-like of int, any shape
    labels : array-like, same shape
    grid : SOMGrid
    sample_mask : ndarray of bool, same shape, optional

    Returns
    -------
    float
        Over all grid-neighbour pairs in which both nodes hold labelled samples; NaN if none.
    """
    maj, _, _ = majority_labels(bmu, labels, grid.n_nodes, sample_mask)
    adj = np.triu(grid.adjacency(), 1) | np.triu(grid.adjacency().T, 1)
    j, k = np.nonzero(adj)
    both = (maj[j] >= 0) & (maj[k] >= 0)
    if not both.any():
        return float("nan")
    return float((maj[j][both] == maj[k][both]).mean())
