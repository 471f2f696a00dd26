"""Input checks and small array helpers shared by the analysis modules."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..errors import InputError

#: Rows per chunk whenever an ``(n, K)`` block would otherwise be built at once.
DEFAULT_CHUNK = 16384


def iter_slices(n: int, chunk_size: int = DEFAULT_CHUNK) -> Iterator[slice]:
    """Consecutive slices of ``range(n)`` with at most ``chunk_size`` items each."""
    chunk_size = max(int(chunk_size), 1)
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def as_bool_mask(mask, shape: tuple[int, ...], name: str = "sample_mask") -> np.ndarray | None:
    """``mask`` as a boolean array of ``shape``, or None when no mask was given."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool:
        raise InputError(f"{name} must be a boolean array (True = use this sample); got dtype {m.dtype}")
    if m.shape != tuple(shape):
        raise InputError(f"{name} has shape {m.shape} but the data has shape {tuple(shape)}; pass one flag per sample")
    return m


def step_mask(shape: tuple[int, int], lengths=None) -> np.ndarray:
    """Real (non-padding) steps of a padded ``(N, T)`` array.

    Parameters
    ----------
    shape : (int, int)
        ``(n_patients, n_steps)``.
    lengths : None, array of int ``(N,)`` or array of bool ``(N, T)``
        None means every step is real; integers give the number of real steps per patient
        (padding at the end); a boolean array is used as it is.

    Returns
    -------
    ndarray of bool, shape ``(N, T)``
    """
    n, t = shape
    if lengths is None:
        return np.ones((n, t), dtype=bool)
    arr = np.asarray(lengths)
    if arr.dtype == bool:
        return as_bool_mask(arr, (n, t), "lengths (as a step mask)")
    if arr.shape != (n,):
        raise InputError(f"lengths must hold one step count per patient, shape ({n},); got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError("lengths must be whole numbers of steps; found a fractional or missing value")
    elif arr.dtype.kind not in "iu":
        raise InputError(f"lengths must be integers; got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() > t):
        bad = int(np.flatnonzero((arr < 0) | (arr > t))[0])
        raise InputError(f"lengths[{bad}] = {arr[bad]} is outside 0..{t} (the number of steps)")
    return np.arange(t)[None, :] < arr[:, None]


def as_sequences(bmu, name: str = "bmu") -> np.ndarray:
    """A padded ``(N, T)`` integer array of node indices (1-D input becomes one sequence)."""
    a = np.asarray(bmu)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InputError(f"{name} must be (n_patients, n_steps); got shape {a.shape}")
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        a = np.where(finite, a, -1)
    elif a.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integer node indices; got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def check_nodes(bmu, n_nodes: int, name: str = "bmu", where=None) -> np.ndarray:
    """Integer node indices, checked against ``0 <= k < n_nodes`` (only where ``where`` is True)."""
    a = np.asarray(bmu)
    if a.dtype.kind == "f":
        sel = a if where is None else a[where]
        if not np.all(np.isfinite(sel)) or np.any(sel != np.round(sel)):
            raise InputError(f"{name} must hold whole node indices; found a fractional or missing value")
        a = np.where(np.isfinite(a), a, -1)
    elif a.dtype.kind not in "iub":
        raise InputError(f"{name} must hold integer node indices; got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    sel = a if where is None else a[where]
    if sel.size and (sel.min() < 0 or sel.max() >= n_nodes):
        flat = np.flatnonzero((sel < 0) | (sel >= n_nodes))[0]
        raise InputError(
            f"{name} holds node {int(sel.ravel()[flat])} at position {int(flat)}, outside 0..{n_nodes - 1}; "
            "check that the assignments come from a map with this many nodes"
        )
    return a


def missing_mask(labels: np.ndarray) -> np.ndarray:
    """True where a label is unknown: NaN, None, or the empty string."""
    a = np.asarray(labels)
    kind = a.dtype.kind
    if kind == "f" or kind == "c":
        return np.isnan(a)
    if kind in "US":
        return a == a.dtype.type("")
    if kind == "O":
        flat = a.ravel()
        out = np.fromiter((_is_missing(x) for x in flat), dtype=bool, count=flat.size)
        return out.reshape(a.shape)
    if kind == "M" or kind == "m":
        return np.isnat(a)
    return np.zeros(a.shape, dtype=bool)


def _is_missing(x) -> bool:
    if x is None:
        return True
    if isinstance(x, str):
        return x == ""
    try:
        return bool(x != x)
    except (TypeError, ValueError):  # pandas.NA and friends refuse to be truth-tested
        return True


def factorize(labels, valid=None) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes for a label array, with ``-1`` for missing or masked entries.

    Parameters
    ----------
    labels : array-like, any shape
        Strings, integers, booleans, floats (NaN = missing) or objects (None = missing).
    valid : ndarray of bool, same shape, optional
        Entries to consider at all (False entries get code -1 and are not counted as missing).

    Returns
    -------
    codes : ndarray of int64, same shape as ``labels``
        ``0..n_categories-1``, or -1.
    categories : ndarray, shape ``(n_categories,)``
        Sorted distinct labels (as strings when mixed types cannot be ordered).
    n_missing : int
        How many considered entries had no label.
    """
    a = np.asarray(labels)
    if a.ndim == 0:
        raise InputError("labels must be an array with one label per sample, not a single value")
    miss = missing_mask(a)
    use = ~miss if valid is None else (~miss & valid)
    n_missing = int(miss.sum()) if valid is None else int((miss & valid).sum())
    codes = np.full(a.shape, -1, dtype=np.int64)
    vals = a[use]
    if a.dtype.kind in "iub" and vals.size:
        v = vals.astype(np.int64)
        lo, hi = int(v.min()), int(v.max())
        if hi - lo <= 4 * v.size + 1024:
            # Counting sort: linear time for node indices and other compact integer codes.
            present = np.bincount(v - lo, minlength=hi - lo + 1) > 0
            lookup = np.cumsum(present) - 1
            codes[use] = lookup[v - lo]
            cats = np.flatnonzero(present) + lo
            return codes, cats.astype(a.dtype) if a.dtype.kind != "b" else cats.astype(bool), n_missing
    try:
        cats, inv = np.unique(vals, return_inverse=True)
    except TypeError:
        # Mixed types (e.g. 1 and "a") cannot be sorted together; compare their text instead.
        cats, inv = np.unique(vals.astype(str), return_inverse=True)
    codes[use] = inv.ravel()
    return codes, cats, n_missing


def as_matrix(x, name: str, ncols: int | None = None) -> np.ndarray:
    """A finite 2-D float array, with a clear message when it is not."""
    a = np.asarray(x)
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (rows x columns); got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise InputError(f"{name} must be numeric; got dtype {a.dtype}")
    if ncols is not None and a.shape[1] != ncols:
        raise InputError(f"{name} has {a.shape[1]} columns but {ncols} were expected")
    return a


def chunks_of(x, chunk_size: int = DEFAULT_CHUNK) -> Iterable[np.ndarray]:
    """Row blocks of an array, or the blocks of an iterable of arrays passed through."""
    if isinstance(x, np.ndarray) or (hasattr(x, "__array__") and not hasattr(x, "__next__")):
        a = np.asarray(x)
        if a.ndim != 2:
            raise InputError(f"expected a 2-D array (samples x nodes); got shape {a.shape}")
        return (a[s] for s in iter_slices(a.shape[0], chunk_size))
    if isinstance(x, (list, tuple)) and x and np.ndim(x[0]) == 1:
        return chunks_of(np.asarray(x), chunk_size)
    return iter(x)
