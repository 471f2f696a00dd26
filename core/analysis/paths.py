"""Most probable node path of each patient under a prior of slow movement on the map.

The best-matching node of each step is chosen step by step, so a patient whose latent
position lies between two distant nodes hops between them from hour to hour. Decoding the
whole stay at once, with the soft assignments as emissions and a transition prior that
penalises every grid step beyond a direct neighbour, keeps a move only where the evidence
for it lasts (a hidden Markov model decoded by the Viterbi algorithm).

The transitions are a fixed grid prior, not the run's counted node transitions: those
counts come from the same hopping best-matching nodes and made the decoded paths gather on
half as many nodes (synthetic ICU cohort, seeds 1-3: effective nodes 26-33 -> 14-16).
"""

from __future__ import annotations

import numpy as np

from ._common import step_mask

__all__ = ["PATH_STIFFNESS", "grid_log_transitions", "smoothed_paths"]

#: Log-probability cost of each grid step beyond a direct neighbour. On the synthetic ICU
#: cohort (seeds 1-3, default training) 0.3 took the share of smooth steps from 0.84-0.87 to
#: 0.96-0.97 with NMI and purity no lower than the best-matching nodes' (0.1: 0.93-0.94;
#: 0.5: 0.97-0.98 but purity 0.002 lower on one seed; 1.0, without the jump term: 0.99 at
#: 0.004-0.009 less purity).
PATH_STIFFNESS = 0.3

# Patients decoded together are bounded so that one step's (patients, K, K) scores and the
# (patients, T, K) back-pointers stay near 32 MB and 100 MB.
_STEP_CELLS = 4_000_000
_BACK_CELLS = 25_000_000


def grid_log_transitions(distances: np.ndarray, stiffness: float = PATH_STIFFNESS) -> np.ndarray:
    """``log P(next node l | node k)`` ``(K, K)``, proportional to ``exp(-stiffness * max(0, d - 1))``.

    Staying and moving to a direct neighbour are equally likely a priori; rows sum to 1.
    """
    cost = np.maximum(np.asarray(distances, dtype=np.float64) - 1.0, 0.0)
    logits = -float(stiffness) * cost
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def smoothed_paths(proba, lengths, distances: np.ndarray, stiffness: float = PATH_STIFFNESS,
                   continues=None) -> np.ndarray:
    """Viterbi path of every patient through the map's nodes.

    Parameters
    ----------
    proba : array-like ``(N, T, K)``
        Soft assignments of each step (rows of real steps sum to 1); padding is ignored.
    lengths : None, int array ``(N,)`` or bool array ``(N, T)``
        Real steps per patient.
    distances : ndarray ``(K, K)``
        Grid distances between nodes (:meth:`core.grid.SOMGrid.distances`).
    stiffness : float
        Cost of each grid step beyond a neighbour, in log-probability; 0 gives back the
        best-matching nodes.
    continues : bool array ``(N,)``, optional
        True where a row continues the stay of the row before it
        (:attr:`core.data.dataset.Dataset.continues`): the parts of such a stay are decoded
        as one sequence, so the path runs on across the boundary between two parts.

    Returns
    -------
    ndarray ``(N, T)`` int64
        The decoded node of every real step, ``-1`` on padding.
    """
    p = np.asarray(proba)
    n, t, k = p.shape
    real = step_mask((n, t), lengths)
    log_t = grid_log_transitions(distances, stiffness)  # (K, K)
    out = np.full((n, t), -1, dtype=np.int64)
    rows, cols = np.nonzero(real)  # real steps, stay by stay and in time order within each
    stay_of_row = np.arange(n) if continues is None else np.cumsum(~np.asarray(continues, dtype=bool)) - 1
    if stay_of_row.shape != (n,):
        raise ValueError(f"continues must hold one flag per row ({n}); got shape {np.shape(continues)}")
    size = np.bincount(stay_of_row[rows], minlength=int(stay_of_row[-1]) + 1 if n else 0)  # steps per stay
    first = np.cumsum(size) - size  # index of each stay's first step in rows/cols
    # Longest stays first, so that each chunk is padded only to its own first stay's length.
    order = np.argsort(-size, kind="stable")
    order = order[size[order] > 0]
    a = 0
    while a < order.size:
        longest = int(size[order[a]])
        chunk = max(1, min(_STEP_CELLS // (k * k), _BACK_CELLS // (longest * k)))
        stays = order[a:a + chunk]
        a += chunk
        steps = size[stays]
        owner = np.repeat(np.arange(stays.size), steps)  # (M,) chunk-local stay of each step
        pos = np.arange(owner.size) - np.repeat(np.cumsum(steps) - steps, steps)  # place within the stay
        src = np.repeat(first[stays], steps) + pos
        r, c = rows[src], cols[src]
        log_e = np.zeros((stays.size, longest, k))
        log_e[owner, pos] = np.log(np.clip(np.asarray(p[r, c], dtype=np.float64), 1e-300, None))
        live = np.zeros((stays.size, longest), dtype=bool)
        live[owner, pos] = True
        out[r, c] = _viterbi(log_e, live, log_t)[owner, pos]
    return out


def _viterbi(log_e: np.ndarray, real: np.ndarray, log_t: np.ndarray) -> np.ndarray:
    """Decode ``log_e (n, T, K)`` emissions; steps after a patient's end leave its scores as they are."""
    n, t, k = log_e.shape
    score = log_e[:, 0].copy()  # (n, K); the uniform start adds a constant
    back = np.zeros((n, t, k), dtype=np.int32)
    keep = np.arange(k, dtype=np.int32)
    for s in range(1, t):
        cand = score[:, :, None] + log_t[None]  # (n, K from, K to)
        best = cand.argmax(axis=1).astype(np.int32)  # (n, K)
        new = np.take_along_axis(cand, best[:, None, :], axis=1)[:, 0] + log_e[:, s]
        live = real[:, s]
        score = np.where(live[:, None], new, score)
        back[:, s] = np.where(live[:, None], best, keep[None])
    path = np.full((n, t), -1, dtype=np.int64)
    node = score.argmax(axis=1)  # (n,)
    rows = np.arange(n)
    for s in range(t - 1, -1, -1):
        path[:, s] = np.where(real[:, s], node, -1)
        node = back[rows, s, node]
    return path
