"""Patient trajectories on the map: drawable paths, jumps, transitions, dwell times, forecasts.

Assignments of a padded cohort are ``(n_patients, n_steps)`` node indices. ``lengths`` says
which steps are real: an int array ``(N,)`` of real steps per patient (padding at the end,
as in :class:`core.data.Dataset`), or a boolean ``(N, T)`` mask, or None when all are real.
Padding never counts: a transition is only counted between two consecutive real steps.
A stay far longer than the rest may fill several consecutive rows (its parts); functions
taking ``continues`` (``Dataset.continues``) also count the move from one part to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._common import as_bool_mask, as_sequences, check_nodes, step_mask
from .maps import NodeEnrichment, label_enrichment

__all__ = [
    "PathSegment",
    "node_path",
    "jump_lengths",
    "mean_jump", "local_move_share",
    "transition_matrix",
    "DwellTimes",
    "dwell_times",
    "enrichment_at_horizons",
    "forecast_state_accuracy",
]


@dataclass(frozen=True)
class PathSegment:
    """One continuous piece of a trajectory drawn on the map.

    Attributes
    ----------
    xy : ndarray of float64, shape ``(m, 2)``
        Points in the drawing coordinates of :meth:`SOMGrid.positions` (x right, y down).
    t : ndarray of float64, shape ``(m,)``
        Step index of every point; a point where the path leaves or re-enters the map at a
        toroidal seam gets the fractional time at which the straight step crosses the edge.
    """

    xy: np.ndarray
    t: np.ndarray


def _periodic_box(grid) -> tuple[np.ndarray, np.ndarray]:
    """Origin and period (x, y) of the torus in drawing coordinates; all centres lie inside."""
    if grid.topology == "rect":
        return np.array([0.0, 0.0]), np.array([float(grid.width), float(grid.height)])
    row_h = np.sqrt(3.0) / 2.0
    # Odd rows are shifted right by half a cell, so the vertical seam sits a quarter cell
    # outside the leftmost even-row centre and inside the rightmost odd-row cell.
    origin = np.array([0.25, 1.0 / np.sqrt(3.0) - row_h / 2.0])
    return origin, np.array([float(grid.width), grid.height * row_h])


def _unwrapped_targets(grid, src: np.ndarray, dst: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Drawing position of each ``dst`` node as reached from ``src`` by the shortest grid path.

    On a torus the copy of ``dst`` shifted by a whole period may be closer; ties prefer the
    copy that crosses fewer seams, then the shorter straight line.
    """
    h, w = grid.height, grid.width
    period = _periodic_box(grid)[1]
    rs, cs = np.divmod(src, w)
    rd, cd = np.divmod(dst, w)
    best = None
    best_key = None
    out = np.empty((src.size, 2))
    for sr in (0, -h, h):
        for sc in (0, -w, w):
            r2, c2 = rd + sr, cd + sc
            if grid.topology == "rect":
                dist = np.abs(r2 - rs) + np.abs(c2 - cs)
            else:
                x1 = cs - (rs - (rs & 1)) // 2
                x2 = c2 - (r2 - (r2 & 1)) // 2
                dist = np.maximum.reduce([np.abs(x1 - x2), np.abs(rs - r2), np.abs((-x1 - rs) - (-x2 - r2))])
            shift = np.array([np.sign(sc) * period[0], np.sign(sr) * period[1]])
            cand = pos[dst] + shift
            eucl = np.sqrt(((cand - pos[src]) ** 2).sum(axis=1))
            n_seams = (sr != 0) + (sc != 0)
            key = np.stack([dist, np.full(dist.shape, n_seams), eucl], axis=1)
            if best is None:
                best, best_key = cand.copy(), key
                out[:] = cand
                continue
            better = (key[:, 0] < best_key[:, 0]) | (
                (key[:, 0] == best_key[:, 0]) & ((key[:, 1] < best_key[:, 1]) | (
                    (key[:, 1] == best_key[:, 1]) & (key[:, 2] < best_key[:, 2] - 1e-12))))
            out[better] = cand[better]
            best_key[better] = key[better]
    return out


def node_path(bmu_seq, grid, length: int | None = None) -> list[PathSegment]:
    """Drawable path of one patient's BMU sequence, split where it wraps around a torus.

    On a toroidal grid a step whose shortest grid path crosses the map's edge is drawn as two
    (or, across a corner, three) pieces: the first runs to the edge, the next starts from the
    opposite edge. A straight line across the whole map would be misleading (METHOD.md 3.5.5).
    On a flat grid the path is a single segment. Repeated nodes give repeated points, so that
    point ``i`` of an unsplit path is step ``i``.

    Parameters
    ----------
    bmu_seq : array-like of int, shape ``(T,)``
        Node per time step.
    grid : SOMGrid
    length : int, optional
        Number of real steps (the rest is padding and ignored).

    Returns
    -------
    list of PathSegment
        In time order; empty when there is no real step.
    """
    seq = np.asarray(bmu_seq)
    if seq.ndim != 1:
        raise InputError(f"node_path takes one patient's sequence (T,); got shape {seq.shape}")
    if length is not None:
        if not 0 <= int(length) <= seq.size:
            raise InputError(f"length {length} is outside 0..{seq.size}")
        seq = seq[: int(length)]
    seq = check_nodes(seq, grid.n_nodes, "bmu_seq")
    pos = grid.positions()
    if seq.size == 0:
        return []
    times = np.arange(seq.size, dtype=np.float64)
    if not grid.toroidal or seq.size == 1:
        return [PathSegment(pos[seq].copy(), times)]
    origin, period = _periodic_box(grid)
    src, dst = seq[:-1], seq[1:]
    target = _unwrapped_targets(grid, src, dst, pos)
    segments: list[PathSegment] = []
    xy, tt = [pos[seq[0]]], [0.0]
    for i in range(src.size):
        p, q = pos[src[i]], target[i]
        delta = q - p
        cuts = []
        for axis in (0, 1):
            if delta[axis] == 0:
                continue
            cell_p = np.floor((p[axis] - origin[axis]) / period[axis])
            cell_q = np.floor((q[axis] - origin[axis]) / period[axis])
            if cell_p != cell_q:
                edge = origin[axis] + max(cell_p, cell_q) * period[axis]
                cuts.append(float((edge - p[axis]) / delta[axis]))
        if not cuts:
            xy.append(pos[dst[i]])
            tt.append(i + 1.0)
            continue
        cuts.sort()
        if len(cuts) == 2 and cuts[1] - cuts[0] < 1e-9:
            cuts = cuts[:1]  # through a corner: both seams at once, no piece in between
        bounds = [0.0] + cuts + [1.0]
        for j in range(len(bounds) - 1):
            a, b = bounds[j], bounds[j + 1]
            mid = p + delta * (a + b) / 2.0
            shift = np.floor((mid - origin) / period) * period
            start, end = p + delta * a - shift, p + delta * b - shift
            if j > 0:
                segments.append(PathSegment(np.array(xy), np.array(tt)))
                xy, tt = [start], [i + a]
            if j == len(bounds) - 2:
                xy.append(pos[dst[i]])  # exact centre, free of rounding
                tt.append(i + 1.0)
            else:
                xy.append(end)
                tt.append(i + b)
    segments.append(PathSegment(np.array(xy), np.array(tt)))
    return segments


def _real_transitions(bmu, lengths, n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequences, step mask and the mask of real steps t -> t+1 (both ends real)."""
    seq = as_sequences(bmu)
    real = step_mask(seq.shape, lengths)
    seq = check_nodes(seq, n_nodes, "bmu", where=real)
    pair = real[:, :-1] & real[:, 1:]
    return seq, real, pair


def _across_parts(seq: np.ndarray, real: np.ndarray, continues) -> tuple[np.ndarray, np.ndarray]:
    """Nodes of the moves from the last real step of a row to the first step of the next row
    that continues the same stay (a stay kept in parts, see ``Dataset.continues``)."""
    if continues is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cont = np.asarray(continues, dtype=bool)
    if cont.shape != (seq.shape[0],):
        raise InputError(f"continues must hold one flag per row, shape ({seq.shape[0]},); got {cont.shape}")
    rows = np.flatnonzero(cont[1:] & real[1:, 0] & real[:-1].any(axis=1)) + 1
    last = real.shape[1] - 1 - np.argmax(real[rows - 1, ::-1], axis=1)
    return seq[rows - 1, last].astype(np.int64), seq[rows, 0].astype(np.int64)


def jump_lengths(bmu, lengths, grid) -> np.ndarray:
    """Grid distance travelled at every step of every patient.

    Parameters
    ----------
    bmu : array-like of int, shape ``(N, T)``
    lengths : None, int array ``(N,)`` or bool array ``(N, T)``
        Real steps (see the module notes).
    grid : SOMGrid
        Distances are path lengths on the grid (with wrap-around on a torus).

    Returns
    -------
    ndarray of float64, shape ``(N, T - 1)``
        Entry ``[i, t]`` is the distance from step t to t+1; NaN where either is padding.
    """
    seq, _, pair = _real_transitions(bmu, lengths, grid.n_nodes)
    dist = grid.distances()
    a = np.where(pair, seq[:, :-1], 0)
    b = np.where(pair, seq[:, 1:], 0)
    return np.where(pair, dist[a, b].astype(np.float64), np.nan)


def mean_jump(bmu, lengths, grid, continues=None) -> float:
    """Mean grid distance per real step t -> t+1 (METHOD.md 3.5.6); NaN without any step.

    Parameters
    ----------
    bmu : array-like of int, shape ``(N, T)``
    lengths : None, int array ``(N,)`` or bool array ``(N, T)``
    grid : SOMGrid
    continues : array of bool ``(N,)``, optional
        True where a row continues the stay of the row before (``Dataset.continues``): the
        move from that row's last real step to this row's first step counts too.

    Returns
    -------
    float
        Smaller with a stronger smoothness loss.
    """
    jumps = _step_distances(bmu, lengths, grid, continues)
    return float(jumps.mean()) if jumps.size else float("nan")


def local_move_share(bmu, lengths, grid, continues=None) -> float:
    """Share of real steps t -> t+1 that stay on the node or move to a grid neighbour.

    Parameters are those of :func:`mean_jump`. Returns NaN without any step. The share a
    clinician reads as "how smooth the journeys are": 1 when no step skips a cell.
    """
    jumps = _step_distances(bmu, lengths, grid, continues)
    return float((jumps <= 1.0).mean()) if jumps.size else float("nan")


def _step_distances(bmu, lengths, grid, continues) -> np.ndarray:
    """Grid distance of every real step, the moves between the parts of a stay included ``(M,)``."""
    j = jump_lengths(bmu, lengths, grid)
    seq, real_steps, _ = _real_transitions(bmu, lengths, grid.n_nodes)
    a, b = _across_parts(seq, real_steps, continues)
    return np.concatenate([j[~np.isnan(j)], grid.distances()[a, b].astype(np.float64)])


def transition_matrix(bmu, lengths, n_nodes: int, normalize: bool = True, smoothing: float = 0.0,
                      continues=None) -> np.ndarray:
    """Empirical transitions between nodes from one step to the next (METHOD.md 3.5.6).

    Parameters
    ----------
    bmu : array-like of int, shape ``(N, T)``
    lengths : None, int array ``(N,)`` or bool array ``(N, T)``
    n_nodes : int
    normalize : bool
        Divide every row by its total, giving ``P(node at t+1 | node at t)``.
    smoothing : float
        Add-lambda smoothing applied to rows that have at least one transition (rows of nodes
        never left stay zero: there is no evidence about them).
    continues : array of bool ``(N,)``, optional
        True where a row continues the stay of the row before (``Dataset.continues``): the
        move from that row's last real step to this row's first step counts too.

    Returns
    -------
    ndarray, shape ``(K, K)``
        int64 counts when ``normalize`` is False and ``smoothing`` is 0, else float64.
        Entry ``[j, k]`` counts (or is the probability of) moves from j to k.
    """
    seq, real, pair = _real_transitions(bmu, lengths, n_nodes)
    a, b = seq[:, :-1][pair], seq[:, 1:][pair]
    if continues is not None:
        a2, b2 = _across_parts(seq, real, continues)
        a, b = np.concatenate([a, a2]), np.concatenate([b, b2])
    counts = np.bincount(a * n_nodes + b, minlength=n_nodes * n_nodes).reshape(n_nodes, n_nodes)
    if not normalize and smoothing == 0:
        return counts.astype(np.int64)
    if smoothing < 0:
        raise InputError(f"smoothing must be >= 0; got {smoothing}")
    c = counts.astype(np.float64)
    seen = c.sum(axis=1) > 0
    c[seen] += smoothing
    if not normalize:
        return c
    tot = c.sum(axis=1, keepdims=True)
    return np.divide(c, tot, out=np.zeros_like(c), where=tot > 0)


@dataclass(frozen=True)
class DwellTimes:
    """How long patients stay in a node before moving on.

    Attributes
    ----------
    mean : ndarray of float64, shape ``(K,)``
        Mean run length in steps per node; NaN for nodes never visited.
    n_runs : ndarray of int64, shape ``(K,)``
        Number of visits (runs) per node.
    run_node, run_patient, run_start, run_length : ndarray of int64, shape ``(R,)``
        Every run: its node, patient (row), first step and number of steps, in patient and
        time order. Runs cut by the start or end of a stay are included as observed
        (they are censored, so means are lower bounds of the true dwell time).
    """

    mean: np.ndarray
    n_runs: np.ndarray
    run_node: np.ndarray
    run_patient: np.ndarray
    run_start: np.ndarray
    run_length: np.ndarray


def dwell_times(bmu, lengths, n_nodes: int) -> DwellTimes:
    """Runs of consecutive real steps in the same node, summarised per node.

    Parameters
    ----------
    bmu : array-like of int, shape ``(N, T)``
    lengths : None, int array ``(N,)`` or bool array ``(N, T)``
    n_nodes : int

    Returns
    -------
    DwellTimes
    """
    seq, real, _ = _real_transitions(bmu, lengths, n_nodes)
    n, t = seq.shape
    prev_real = np.zeros_like(real)
    prev_real[:, 1:] = real[:, :-1]
    prev_node = np.full_like(seq, -1)
    prev_node[:, 1:] = seq[:, :-1]
    starts = real & ~(prev_real & (prev_node == seq))
    flat_real = real.ravel()
    run_id = np.cumsum(starts.ravel()) - 1
    ids = run_id[flat_real]
    run_length = np.bincount(ids, minlength=int(starts.sum())).astype(np.int64)
    start_flat = np.flatnonzero(starts.ravel())
    run_patient, run_start = np.divmod(start_flat, t)
    run_node = seq.ravel()[start_flat]
    n_runs = np.bincount(run_node, minlength=n_nodes).astype(np.int64)
    total = np.bincount(run_node, weights=run_length, minlength=n_nodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_runs > 0, total / n_runs, np.nan)
    return DwellTimes(mean, n_runs, run_node.astype(np.int64), run_patient.astype(np.int64),
                      run_start.astype(np.int64), run_length)


def enrichment_at_horizons(bmu, lengths, labels: dict, n_nodes: int, confidence: float = 0.95,
                           kind: str = "auto") -> dict[str, NodeEnrichment]:
    """Per-node enrichment of several time-indexed labels over real patient steps only.

    Typical labels are the score now and at later horizons (``full_score_1``, ``_6``, ...),
    or death within 6/24 h: the node summary of a label measured h hours ahead shows which
    states precede deterioration.

    Parameters
    ----------
    bmu : array-like of int, shape ``(N, T)``
    lengths : None, int array ``(N,)`` or bool array ``(N, T)``
    labels : dict of str to array
        Each ``(N, T)`` (one value per step) or ``(N,)`` (one per patient, repeated over
        that patient's steps, e.g. in-ICU death). NaN where unknown.
    n_nodes : int
    confidence : float
    kind : {"auto", "binary", "continuous"}

    Returns
    -------
    dict of str to NodeEnrichment
        Same keys as ``labels``.
    """
    seq = as_sequences(bmu)
    real = step_mask(seq.shape, lengths)
    out = {}
    for name, values in labels.items():
        v = np.asarray(values)
        if v.shape == (seq.shape[0],):
            v = np.repeat(v[:, None], seq.shape[1], axis=1)
        if v.shape != seq.shape:
            raise InputError(
                f"label {name!r} has shape {v.shape}; expected {seq.shape} (per step) or ({seq.shape[0]},) (per patient)"
            )
        try:
            out[name] = label_enrichment(seq, v, n_nodes, sample_mask=real, kind=kind, confidence=confidence)
        except InputError as err:
            raise InputError(f"label {name!r}: {err}") from err
    return out


def forecast_state_accuracy(pred_bmu, true_bmu, sample_mask=None, per_step: bool = False):
    """Share of forecast steps whose predicted node equals the node of the true encoding.

    This is the "unrolled-state accuracy" of METHOD.md 3.5.3.

    Parameters
    ----------
    pred_bmu, true_bmu : array-like of int, same shape, e.g. ``(N, H)`` for H forecast steps
    sample_mask : ndarray of bool, same shape, optional
        Steps to score (e.g. forecasts that have a true step to compare with).
    per_step : bool
        Also return the accuracy at every horizon (needs 2-D input).

    Returns
    -------
    float, or (float, ndarray of float64 ``(H,)``) when ``per_step`` is True
        NaN where no step is scored.
    """
    p, t = np.asarray(pred_bmu), np.asarray(true_bmu)
    if p.shape != t.shape:
        raise InputError(f"predicted and true nodes have different shapes {p.shape} and {t.shape}")
    valid = as_bool_mask(sample_mask, p.shape)
    if valid is None:
        valid = np.ones(p.shape, dtype=bool)
    hit = (p == t) & valid
    overall = float(hit.sum() / valid.sum()) if valid.any() else float("nan")
    if not per_step:
        return overall
    if p.ndim != 2:
        raise InputError(f"per_step needs (n_patients, n_horizons) arrays; got shape {p.shape}")
    n_valid = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        steps = np.where(n_valid > 0, hit.sum(axis=0) / n_valid, np.nan)
    return overall, steps
