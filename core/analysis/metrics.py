"""Clustering and map-quality metrics: NMI, AMI, ARI, purity, quantisation and topographic error.

Every function takes plain numpy arrays. Labels may be strings, integers, booleans or floats;
NaN, None and the empty string mean "unknown" and such samples are left out (the count is
reported by :func:`cluster_metrics` and :func:`count_missing_labels`). Arrays of any shape are
accepted, e.g. T-DPSOM assignments ``(n_patients, n_steps)``; pass ``sample_mask`` to leave out
padding steps.

Conventions follow METHOD.md section 2.11: entropies use the natural logarithm, and the NMI of
the paper is normalised by the geometric mean of the two entropies (scikit-learn's default is
the arithmetic mean; both are offered, section 5.10).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._common import DEFAULT_CHUNK, as_bool_mask, as_matrix, check_nodes, chunks_of, factorize, iter_slices

__all__ = [
    "nmi",
    "ami",
    "adjusted_rand_index",
    "purity",
    "mutual_information",
    "count_missing_labels",
    "best_matching_units",
    "quantisation_error",
    "topographic_error",
    "assignment_entropy",
    "cluster_metrics",
    "collapse_check",
]

_AVERAGES = ("geometric", "arithmetic", "min", "max")
_EPS = np.finfo(np.float64).eps
# exp() of anything below this underflows to zero in float64: such terms add nothing.
_LOG_UNDERFLOW = -746.0


# --------------------------------------------------------------------------- paired labels
class _Pairs:
    """Integer codes of two labelings over the samples where both are known.

    scikit-learn's metrics take such codes; what they do not handle (unknown labels of any
    type, masks, arrays of any shape) is sorted out here.
    """

    def __init__(self, labels_true, labels_pred, sample_mask=None):
        a, b = np.asarray(labels_true), np.asarray(labels_pred)
        if a.shape != b.shape:
            raise InputError(
                f"the two labelings have different shapes {a.shape} and {b.shape}; "
                "pass one label per sample in the same order"
            )
        valid = as_bool_mask(sample_mask, a.shape)
        ca, _, _ = factorize(a, valid)
        cb, _, _ = factorize(b, valid)
        use = (ca >= 0) & (cb >= 0)
        self.n_considered = int(a.size if valid is None else valid.sum())
        self.n_missing = self.n_considered - int(use.sum())
        self.true, self.pred = ca[use], cb[use]
        self.n = int(self.true.size)
        self.n_classes = int(np.unique(self.true).size)
        self.n_clusters = int(np.unique(self.pred).size)


def _sk():
    """scikit-learn's metrics, imported on first use (importing them takes about a second)."""
    from sklearn import metrics

    return metrics


def _nmi(p: _Pairs, average: str) -> float:
    if p.n == 0:
        return float("nan")
    return float(_sk().normalized_mutual_info_score(p.true, p.pred, average_method=average))


def _ami(p: _Pairs, average: str) -> float:
    """scikit-learn's ``adjusted_mutual_info_score``, with a faster expected value."""
    if p.n == 0:
        return float("nan")
    if p.n_classes == p.n_clusters == 1:
        return 1.0
    if p.n_classes == 1 or p.n_clusters == 1:
        return 0.0
    table = _sk().cluster.contingency_matrix(p.true, p.pred, sparse=True)
    mi = _sk().mutual_info_score(None, None, contingency=table)
    rows, cols = np.ravel(table.sum(axis=1)), np.ravel(table.sum(axis=0))
    emi = _expected_mi(rows, cols, p.n)
    h1, h2 = _entropy(rows, p.n), _entropy(cols, p.n)
    mean = {"geometric": np.sqrt(h1 * h2), "arithmetic": (h1 + h2) / 2.0, "min": min(h1, h2), "max": max(h1, h2)}
    # As scikit-learn: keep the sign, avoid 0/0 when the expectation equals the maximum.
    den = float(mean[average]) - emi
    den = min(den, -_EPS) if den < 0 else max(den, _EPS)
    return float((mi - emi) / den)


def _entropy(sizes: np.ndarray, n: int) -> float:
    q = sizes[sizes > 0] / n
    return float(-(q * np.log(q)).sum())


def _log_factorial(n) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(np.asarray(n, dtype=np.float64) + 1.0)


def _expected_mi(row_sums: np.ndarray, col_sums: np.ndarray, n: int, max_terms: int = 1 << 21) -> float:
    """Expected mutual information of two random labelings with fixed cluster sizes.

    The hypergeometric model of Vinh, Epps and Bailey (2010), as scikit-learn computes it. The
    contribution of a pair of clusters depends only on their two sizes, so equal sizes are
    grouped; within a pair, only the cell counts whose hypergeometric probability does not
    underflow are summed. On 1e6 samples this takes 0.3-2 s where scikit-learn's sum over
    every cell count takes 2-13 s (2 to 40 classes, 256 to 400 nodes; benchmarks/README.md).
    """
    a_vals, a_mult = np.unique(row_sums, return_counts=True)
    b_vals, b_mult = np.unique(col_sums, return_counts=True)
    A = np.repeat(a_vals, b_vals.size).astype(np.float64)
    B = np.tile(b_vals, a_vals.size).astype(np.float64)
    weight = np.repeat(a_mult, b_vals.size).astype(np.float64) * np.tile(b_mult, a_vals.size)
    N = float(n)
    lo = np.maximum(1.0, A + B - N)
    hi = np.minimum(A, B)
    keep = hi >= lo
    A, B, weight, lo, hi = A[keep], B[keep], weight[keep], lo[keep], hi[keep]
    # log of the constant part of the hypergeometric pmf
    const = (_log_factorial(A) + _log_factorial(B) + _log_factorial(N - A) + _log_factorial(N - B)
             - _log_factorial(N))

    def log_pmf(k, i=slice(None)):
        return (const[i] - _log_factorial(k) - _log_factorial(A[i] - k) - _log_factorial(B[i] - k)
                - _log_factorial(N - A[i] - B[i] + k))

    # The pmf is unimodal; shrink [lo, hi] to where it does not underflow, by bisection.
    mode = np.clip(np.floor((A + 1) * (B + 1) / (N + 2)), lo, hi)
    lo, hi = _shrink(lo, mode, log_pmf, left=True), _shrink(mode, hi, log_pmf, left=False)
    widths = (hi - lo + 1).astype(np.int64)
    total = 0.0
    log_n = np.log(N)
    start = 0
    while start < widths.size:
        csum = np.cumsum(widths[start:])
        stop = start + max(1, int(np.searchsorted(csum, max_terms, side="right")))
        idx = np.arange(start, stop)
        w = widths[idx]
        owner = np.repeat(idx, w)
        offsets = np.arange(int(w.sum())) - np.repeat(np.cumsum(w) - w, w)
        k = lo[owner] + offsets
        term = (k / N) * (np.log(k) + log_n - np.log(A[owner]) - np.log(B[owner])) * np.exp(log_pmf(k, owner))
        total += float((term * weight[owner]).sum())
        start = stop
    return total


def _shrink(lo, hi, log_pmf, left: bool):
    """Bisection for the first (left) or last (right) count with a non-underflowing pmf.

    The mode is the other end of the interval, so its pmf is representable; the search keeps
    the representable end of each bracket and moves the other one.
    """
    edge = lo if left else hi
    ok = log_pmf(edge) > _LOG_UNDERFLOW
    a, b = lo.copy(), hi.copy()
    for _ in range(64):
        active = (~ok) & (b - a > 1)
        if not active.any():
            break
        mid = np.floor((a + b) / 2)
        good = log_pmf(mid) > _LOG_UNDERFLOW
        keep, move = (active & good, active & ~good) if left else (active & ~good, active & good)
        b = np.where(keep, mid, b)
        a = np.where(move, mid, a)
    return np.where(ok, edge, b if left else a)




def _purity(p: _Pairs) -> float:
    if p.n == 0:
        return float("nan")
    table = _sk().cluster.contingency_matrix(p.true, p.pred, sparse=True)  # classes x clusters
    return float(table.max(axis=0).sum() / p.n)


def _check_average(average: str) -> None:
    if average not in _AVERAGES:
        raise InputError(f"average must be 'geometric', 'arithmetic', 'min' or 'max'; got {average!r}")


# ------------------------------------------------------------------------ label metrics
def count_missing_labels(labels, sample_mask=None) -> int:
    """Number of samples (within ``sample_mask``) whose label is NaN, None or empty.

    Parameters
    ----------
    labels : array-like, any shape
    sample_mask : ndarray of bool, same shape, optional

    Returns
    -------
    int
    """
    a = np.asarray(labels)
    return factorize(a, as_bool_mask(sample_mask, a.shape))[2]


def mutual_information(labels_true, labels_pred, sample_mask=None) -> float:
    """Mutual information (nats) between two labelings of the same samples.

    Parameters
    ----------
    labels_true, labels_pred : array-like, same shape
    sample_mask : ndarray of bool, same shape, optional
        Samples to use (e.g. the real steps of padded series).

    Returns
    -------
    float
    """
    p = _Pairs(labels_true, labels_pred, sample_mask)
    if p.n == 0 or p.n_classes <= 1 or p.n_clusters <= 1:
        return 0.0
    return float(_sk().mutual_info_score(p.true, p.pred))


def nmi(labels_true, labels_pred, average: str = "geometric", sample_mask=None) -> float:
    """Normalised mutual information between a label and a clustering (e.g. the BMU).

    ``NMI = I(Y; C) / mean(H(Y), H(C))`` with natural-log entropies. With
    ``average="geometric"`` this is the paper's NMI; ``average="arithmetic"`` equals
    scikit-learn's default (this is scikit-learn's ``normalized_mutual_info_score`` on the
    labelled samples).

    Parameters
    ----------
    labels_true : array-like, any shape
        Class labels; NaN/None/"" entries are left out.
    labels_pred : array-like, same shape
        Cluster labels, e.g. BMU indices ``(n,)`` or ``(n_patients, n_steps)``.
    average : {"geometric", "arithmetic", "min", "max"}
        How the two entropies are combined in the denominator.
    sample_mask : ndarray of bool, same shape, optional
        Samples to use; False entries (padding) never count.

    Returns
    -------
    float
        In [0, 1]. 1.0 when both labelings have a single class (as scikit-learn), 0.0 when
        only one of them has; NaN when no labelled sample remains.
    """
    _check_average(average)
    return _nmi(_Pairs(labels_true, labels_pred, sample_mask), average)


def ami(labels_true, labels_pred, average: str = "arithmetic", sample_mask=None) -> float:
    """Adjusted mutual information: mutual information corrected for chance.

    ``AMI = (I - E[I]) / (mean(H(Y), H(C)) - E[I])`` where ``E[I]`` is the exact expected
    mutual information under the hypergeometric (permutation) model: scikit-learn's
    ``adjusted_mutual_info_score`` with the same ``average_method`` on the labelled samples.

    Parameters
    ----------
    labels_true, labels_pred : array-like, same shape
        As in :func:`nmi`.
    average : {"arithmetic", "geometric", "min", "max"}
    sample_mask : ndarray of bool, same shape, optional

    Returns
    -------
    float
        About 0 for random labelings, 1 for identical ones; NaN when no labelled sample remains.
    """
    _check_average(average)
    return _ami(_Pairs(labels_true, labels_pred, sample_mask), average)


def adjusted_rand_index(labels_a, labels_b, sample_mask=None) -> float:
    """Adjusted Rand index (Hubert and Arabie) between two labelings.

    Parameters
    ----------
    labels_a, labels_b : array-like, same shape
    sample_mask : ndarray of bool, same shape, optional

    Returns
    -------
    float
        1 for identical partitions (up to renaming), about 0 for random ones, can be negative;
        NaN when no labelled sample remains.
    """
    p = _Pairs(labels_a, labels_b, sample_mask)
    if p.n == 0:
        return float("nan")
    return float(_sk().adjusted_rand_score(p.true, p.pred))


def purity(labels_true, labels_pred, sample_mask=None) -> float:
    """Cluster purity: each cluster votes for its majority class (METHOD.md section 2.11).

    ``purity = (1/n) * sum_c max_y n_{c,y}``. It rises with the number of clusters, so read it
    together with NMI/AMI.

    Parameters
    ----------
    labels_true : array-like
        Class labels.
    labels_pred : array-like, same shape
        Cluster labels (BMU indices).
    sample_mask : ndarray of bool, same shape, optional

    Returns
    -------
    float
        In (0, 1]; NaN when no labelled sample remains.
    """
    return _purity(_Pairs(labels_true, labels_pred, sample_mask))


# --------------------------------------------------------------------- map-quality metrics
def best_matching_units(latent, prototypes, n_best: int = 1, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Indices of the nearest prototypes (Euclidean) for every latent point.

    Parameters
    ----------
    latent : ndarray, shape ``(n, d)``
    prototypes : ndarray, shape ``(K, d)``
    n_best : int
        1 for the BMU; 2 also returns the second-best node.
    chunk_size : int
        Rows processed at once; memory is ``chunk_size x K`` floats.

    Returns
    -------
    ndarray of int64, shape ``(n,)`` when ``n_best == 1``, else ``(n, n_best)`` sorted by distance.
    """
    proto = as_matrix(prototypes, "prototypes").astype(np.float64)
    z = as_matrix(latent, "latent", proto.shape[1])
    k = proto.shape[0]
    if not 1 <= n_best <= k:
        raise InputError(f"n_best must be between 1 and the number of prototypes ({k}); got {n_best}")
    sq_p = (proto**2).sum(axis=1)
    out = np.empty((z.shape[0], n_best), dtype=np.int64)
    for s in iter_slices(z.shape[0], chunk_size):
        zc = z[s].astype(np.float64)
        # ||z||^2 is the same for every node and does not change the ranking.
        d = sq_p[None, :] - 2.0 * zc @ proto.T
        if n_best == 1:
            out[s, 0] = np.argmin(d, axis=1)
        elif n_best == 2:
            # Two argmins are much cheaper than a partial sort over K columns.
            rows = np.arange(d.shape[0])
            first = np.argmin(d, axis=1)
            d[rows, first] = np.inf
            out[s, 0], out[s, 1] = first, np.argmin(d, axis=1)
        else:
            part = np.argpartition(d, n_best - 1, axis=1)[:, :n_best]
            order = np.argsort(np.take_along_axis(d, part, axis=1), axis=1, kind="stable")
            out[s] = np.take_along_axis(part, order, axis=1)
    return out[:, 0] if n_best == 1 else out


def quantisation_error(latent, prototypes, bmu=None, sample_mask=None, chunk_size: int = DEFAULT_CHUNK) -> float:
    """Mean Euclidean distance from each latent point to its BMU prototype.

    Parameters
    ----------
    latent : ndarray, shape ``(n, d)``
    prototypes : ndarray, shape ``(K, d)``
    bmu : ndarray of int, shape ``(n,)``, optional
        Assignments to use; computed as the nearest prototype when omitted. Passing the
        model's own BMUs (e.g. from a posterior sample) measures the error of that choice.
    sample_mask : ndarray of bool, shape ``(n,)``, optional
    chunk_size : int

    Returns
    -------
    float
    """
    proto = as_matrix(prototypes, "prototypes").astype(np.float64)
    z = as_matrix(latent, "latent", proto.shape[1])
    valid = as_bool_mask(sample_mask, (z.shape[0],))
    if bmu is None:
        idx = np.flatnonzero(valid) if valid is not None else None
        zz = z if idx is None else z[idx]
        bmu_v = best_matching_units(zz, proto, chunk_size=chunk_size)
    else:
        b = np.asarray(bmu)
        if b.shape != (z.shape[0],):
            raise InputError(f"bmu must have one node per latent row, shape ({z.shape[0]},); got {b.shape}")
        b = check_nodes(b, proto.shape[0], "bmu", where=valid)
        zz = z if valid is None else z[valid]
        bmu_v = b if valid is None else b[valid]
    if zz.shape[0] == 0:
        return float("nan")
    total = 0.0
    for s in iter_slices(zz.shape[0], chunk_size):
        diff = zz[s].astype(np.float64) - proto[bmu_v[s]]
        total += float(np.sqrt((diff**2).sum(axis=1)).sum())
    return total / zz.shape[0]


def topographic_error(latent, prototypes, grid, sample_mask=None, chunk_size: int = DEFAULT_CHUNK) -> float:
    """Share of points whose best and second-best prototypes are not grid neighbours.

    Parameters
    ----------
    latent : ndarray, shape ``(n, d)``
    prototypes : ndarray, shape ``(K, d)``
    grid : SOMGrid
        Its neighbourhood (rect/hex, flat/toroidal) decides what "adjacent" means.
    sample_mask : ndarray of bool, shape ``(n,)``, optional
    chunk_size : int

    Returns
    -------
    float
        In [0, 1]; 0 means the map preserves local topology perfectly.
    """
    proto = as_matrix(prototypes, "prototypes")
    if proto.shape[0] != grid.n_nodes:
        raise InputError(f"{proto.shape[0]} prototypes for a grid of {grid.n_nodes} nodes")
    z = as_matrix(latent, "latent", proto.shape[1])
    valid = as_bool_mask(sample_mask, (z.shape[0],))
    if valid is not None:
        z = z[valid]
    if z.shape[0] == 0:
        return float("nan")
    adj = grid.adjacency()
    errors = 0
    for s in iter_slices(z.shape[0], chunk_size):
        two = best_matching_units(z[s], proto, n_best=2, chunk_size=chunk_size)
        errors += int((~adj[two[:, 0], two[:, 1]]).sum())
    return errors / z.shape[0]


def assignment_entropy(proba, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Entropy (nats) of each sample's soft assignment over the nodes.

    Parameters
    ----------
    proba : ndarray ``(n, K)`` or iterable of ``(n_i, K)`` chunks
        Rows sum to 1 (the model's ``predict_proba``). A generator of chunks lets very large
        cohorts be processed without holding all probabilities at once.
    chunk_size : int

    Returns
    -------
    ndarray of float64, shape ``(n,)``
        0 for a certain assignment, ``log(K)`` for a uniform one.
    """
    parts = []
    for block in chunks_of(proba, chunk_size):
        p = np.asarray(block, dtype=np.float64)
        if p.ndim != 2:
            raise InputError(f"proba chunks must be 2-D (samples x nodes); got shape {p.shape}")
        logp = np.zeros_like(p)
        np.log(p, out=logp, where=p > 0)
        parts.append(-np.einsum("ij,ij->i", p, logp))
    return np.concatenate(parts) if parts else np.zeros(0)


# ---------------------------------------------------------------------------- bundles
def cluster_metrics(labels, bmu, sample_mask=None) -> dict:
    """NMI (both normalisations), AMI and purity of an assignment against one label.

    Parameters
    ----------
    labels : array-like, any shape
        Class labels; unknown ones (NaN/None/"") are left out and counted.
    bmu : array-like, same shape
        Node index of every sample.
    sample_mask : ndarray of bool, same shape, optional
        Samples to consider (e.g. real steps of padded series).

    Returns
    -------
    dict
        ``nmi_geometric``, ``nmi_arithmetic``, ``ami``, ``purity`` (floats), ``n_samples``
        (labelled samples used), ``n_missing_labels`` (samples left out for want of a label),
        ``n_classes`` and ``n_clusters_used``.
    """
    p = _Pairs(labels, bmu, sample_mask)
    return {
        "nmi_geometric": _nmi(p, "geometric"),
        "nmi_arithmetic": _nmi(p, "arithmetic"),
        "ami": _ami(p, "arithmetic"),
        "purity": _purity(p),
        "n_samples": p.n,
        "n_missing_labels": p.n_missing,
        "n_classes": p.n_classes,
        "n_clusters_used": p.n_clusters,
    }


def collapse_check(bmu, n_nodes: int, labels=None, sample_mask=None, min_node_fraction: float = 0.05,
                   min_ami: float = 0.01) -> tuple[bool, str]:
    """Detect a collapsed map (METHOD.md section 5, item 14).

    A run is flagged when fewer than ``min_node_fraction`` of the nodes receive any sample,
    or, when labels are given, when the AMI of the assignment is near zero.

    Parameters
    ----------
    bmu : array-like of int, any shape
        Node index of every sample.
    n_nodes : int
        Number of nodes of the map (K).
    labels : array-like, same shape, optional
        A label that the map is expected to carry information about.
    sample_mask : ndarray of bool, same shape, optional
    min_node_fraction : float
        Smallest acceptable share of used nodes (default 5 %).
    min_ami : float
        Smallest acceptable AMI (default 0.01).

    Returns
    -------
    collapsed : bool
    message : str
        A plain sentence stating what was measured, for the run log or the GUI.
    """
    b = np.asarray(bmu)
    valid = as_bool_mask(sample_mask, b.shape)
    b = check_nodes(b, n_nodes, "bmu", where=valid)
    used_nodes = np.unique(b if valid is None else b[valid])
    frac = used_nodes.size / n_nodes
    problems = []
    if frac < min_node_fraction:
        problems.append(
            f"only {used_nodes.size} of {n_nodes} nodes ({100 * frac:.1f} %) receive samples "
            f"(threshold {100 * min_node_fraction:.0f} %)"
        )
    detail = f"{used_nodes.size} of {n_nodes} nodes used"
    if labels is not None:
        score = ami(labels, b, sample_mask=sample_mask)
        detail += f", AMI {score:.3f}"
        if not np.isnan(score) and score < min_ami:
            problems.append(f"the AMI with the label is {score:.3f} (threshold {min_ami})")
    if problems:
        return True, "The map looks collapsed: " + "; ".join(problems) + ". Try another seed or weaker clustering loss."
    return False, f"No collapse detected ({detail})."
