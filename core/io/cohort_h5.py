"""Cohort files: model-ready training data on disk, read in shards larger than memory.

A cohort file is one HDF5 file holding the preprocessed (model-space) values of a table or
of patient time series, their observation mask, and optionally ids, times and labels. It is
written once (:class:`CohortWriter`, :func:`write_cohort`, :func:`cohort_from_dataset`) and
then read in contiguous shards (:meth:`Cohort.shard`), one per training process. A
:class:`CohortShard` serves batches of rows by reading whole blocks of consecutive rows and
keeping only one or two of them in memory, so memory is bounded by the block size, the
batch and the model, not by the cohort. ``docs/project-format.md`` ("Cohort files")
describes the layout on disk.

Reads stay local when batches are drawn from :meth:`CohortShard.epoch_order`: blocks in
random order, rows shuffled within each block. Any other order still returns correct rows,
only more slowly (each touched block is read whole).

Writing is atomic: the file is built under a temporary name in the target folder, flushed
to disk and renamed over the target, so ``path`` never holds a partial cohort.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote

import h5py
import numpy as np
import torch

from ..errors import InputError
from ..data.dataset import Dataset
from ..data.preprocessing import Preprocessor
from ._h5files import (HDF5_SIGNATURE, NotRegularFile, UnsafeFile, attr_str, fsync_path, inspect_file,
                       looks_like_hdf5, new_temp, one_line, read_head, read_text, room_problem, sync_folder)

__all__ = ["CohortWriter", "write_cohort", "cohort_from_dataset", "is_cohort_file", "Cohort",
           "CohortShard", "OutOfCoreArray", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "dpsom-cohort"
FORMAT_VERSION = 1

# Measured on 1e6 x 16 float32 with 30 % imputed cells: lzf reads 2x faster than gzip level 1
# (5.5 vs 2.6 M rows/s) for a 20 % larger file; the byte-shuffle filter slowed both down.
_COMPRESSION = "lzf"
_CHUNK_BYTES = 2 << 20  # aim for ~2 MiB of values per chunk of "x"
_VECTOR_CHUNK_ROWS = 1 << 17  # 1-D per-row arrays (lengths, ids, table labels)
_MIN_BLOCK_ROWS = 512  # default read block: at least a few typical batches
_CACHED_BLOCKS = 2
_LIBVER = ("v110", "v110")
_STR = h5py.string_dtype("utf-8")
_ROOM_MARGIN = 8 << 20  # metadata, and chunks HDF5 still holds in its cache, written at close


# ------------------------------------------------------------------------------ helpers
def _chunk_rows(row_bytes: int, target: int = _CHUNK_BYTES) -> int:
    return max(1, target // max(1, int(row_bytes)))


def _encode_name(name: str) -> str:
    """Label name -> legal HDF5 link name ('/' separates paths; '.' names the group)."""
    out = name.replace("%", "%25").replace("/", "%2F")
    if out.startswith("."):
        out = "%2E" + out[1:]
    return out


def _decode_name(name: str) -> str:
    return unquote(name)


def _preprocessing_dict(preprocessing) -> dict:
    """Accept None, {}, a fitted Preprocessor or its ``to_dict()``; return a JSON-able dict."""
    if preprocessing is None:
        return {}
    if isinstance(preprocessing, Preprocessor):
        preprocessing = preprocessing.to_dict()
    if not isinstance(preprocessing, dict):
        raise TypeError("preprocessing must be a fitted Preprocessor, its to_dict(), {} or None")
    return dict(preprocessing)


def _fitted_preprocessor(d: dict, feature_names: list[str], path) -> Preprocessor | None:
    """Rebuild the preprocessing of a cohort and check it covers exactly its features."""
    if not d:
        return None
    pre = Preprocessor.from_dict(d)
    if not hasattr(pre, "center_"):
        raise InputError("the cohort's preprocessing is not fitted; store a fitted "
                         "Preprocessor.to_dict(), or {} for values already in model space", path=path)
    if sorted(pre.feature_names_) != sorted(feature_names):
        raise InputError("the cohort's preprocessing was fitted on other features "
                         f"({', '.join(pre.feature_names_[:8])}); use the Preprocessor fitted on this data",
                         path=path)
    return pre


def _label_array(name: str, value, n_rows: int, per_step: tuple[int, ...], path) -> np.ndarray:
    """A label column as float64 or str, shape (n_rows,) or (n_rows, T)."""
    a = np.asarray(value)
    if a.shape[:1] != (n_rows,) or a.shape[1:] not in ((),) + ((per_step,) if per_step else ()):
        want = f"({n_rows},)" + (f" or ({n_rows}, {per_step[0]})" if per_step else "")
        raise InputError(f"label {name!r} has shape {a.shape}; expected {want}", path=path)
    if a.dtype.kind in "biuf":
        return a.astype(np.float64)
    if a.dtype.kind in "US":
        return a.astype(str)
    if a.dtype.kind == "O":
        flat = ["" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in a.ravel()]
        return np.array(flat, dtype=str).reshape(a.shape) if flat else np.zeros(a.shape, dtype=str)
    raise InputError(f"label {name!r} has dtype {a.dtype}; use numbers or strings", path=path)


def _read_str(ds: h5py.Dataset, budget: int) -> np.ndarray:
    """Variable-length UTF-8 strings as a numpy str array (at most ``budget`` bytes of text)."""
    values = read_text(ds, budget)
    return np.array(values.tolist(), dtype=str) if values.size else np.zeros(values.shape, dtype=str)


# ------------------------------------------------------------------------------- writing
class CohortWriter:
    """Write a cohort file piece by piece; memory is bounded by the pieces appended.

    Use it as a context manager: on a normal exit the file is completed and moved to
    ``path`` atomically; on an exception the temporary file is deleted and ``path`` is left
    as it was (absent, or the previous file).

    Parameters
    ----------
    path : str or path-like
        Target file; its folder must exist. An existing file is replaced on success.
    n_features : int
        ``D``, the number of feature columns.
    feature_names : sequence of str
        ``D`` names, in column order.
    temporal : bool
        False for a table (one sample per row), True for patient time series.
    n_steps : int, optional
        ``T``, the padded number of time steps (required when ``temporal``).
    preprocessing : Preprocessor or dict, optional
        The fitted preprocessing that produced the values (stored as ``to_dict()``, used by
        :meth:`Cohort.to_dataset` to return clinical units). None or ``{}``: the values
        are model-space already and are returned as they are.
    time_unit : str
        Unit of the optional ``times`` (series), e.g. ``"h"``.

    Examples
    --------
    >>> with CohortWriter("big.h5", n_features=3, feature_names=["a", "b", "c"]) as w:  # doctest: +SKIP
    ...     for x, m in pieces:
    ...         w.append(x, m)
    """

    def __init__(self, path, *, n_features: int, feature_names, temporal: bool = False,
                 n_steps: int | None = None, preprocessing=None, time_unit: str = "") -> None:
        self.path = Path(path)
        names = [str(n) for n in feature_names]
        if int(n_features) != n_features or n_features < 1:
            raise ValueError(f"n_features must be a positive whole number, got {n_features!r}")
        if len(names) != n_features:
            raise ValueError(f"{len(names)} feature names for {n_features} features")
        if temporal and (n_steps is None or int(n_steps) != n_steps or n_steps < 1):
            raise ValueError(f"a temporal cohort needs n_steps >= 1, got {n_steps!r}")
        self.temporal = bool(temporal)
        self.n_features = int(n_features)
        self.n_steps = int(n_steps) if self.temporal else None
        self.feature_names = names
        self.preprocessing = _preprocessing_dict(preprocessing)
        _fitted_preprocessor(self.preprocessing, names, self.path)
        self.time_unit = str(time_unit)
        self.n_samples = 0
        self._extras: tuple | None = None  # optional columns, fixed by the first append
        self._aborted = False
        directory = self.path.parent
        if not directory.is_dir():
            raise InputError(f"cannot write the cohort, the folder {directory} does not exist",
                             path=str(self.path))
        try:
            # Locked while it exists; temporary files that a killed writer left are removed.
            self._tmp, self._lock_fd = new_temp(self.path)
        except OSError as exc:
            raise InputError(f"cannot write the cohort ({one_line(exc)})", path=str(self.path)) from None
        try:
            self._file = h5py.File(self._tmp, "w", libver=_LIBVER, locking=False)
        except OSError as exc:
            _discard(None, self._tmp, self._lock_fd)
            raise InputError(f"cannot write the cohort ({one_line(exc)})", path=str(self.path)) from None
        self._finalizer = weakref.finalize(self, _discard, self._file, self._tmp, self._lock_fd)
        tail = (self.n_steps, self.n_features) if self.temporal else (self.n_features,)
        self._rows = _chunk_rows(4 * math.prod(tail))
        for name, dtype in (("x", np.float32), ("mask", bool)):
            self._file.create_dataset(name, shape=(0, *tail), maxshape=(None, *tail), dtype=dtype,
                                      chunks=(self._rows, *tail), compression=_COMPRESSION)
        if self.temporal:
            self._vector("lengths", np.int64)

    # -------------------------------------------------------------------- datasets
    def _vector(self, name: str, dtype, tail: tuple = ()) -> h5py.Dataset:
        rows = _VECTOR_CHUNK_ROWS if not tail else _chunk_rows(8 * math.prod(tail))
        options = {} if dtype is _STR else {"compression": _COMPRESSION}
        return self._file.create_dataset(name, shape=(0, *tail), maxshape=(None, *tail), dtype=dtype,
                                         chunks=(rows, *tail), **options)

    @staticmethod
    def _extend(ds: h5py.Dataset, start: int, values: np.ndarray) -> None:
        ds.resize(start + len(values), axis=0)
        ds[start:start + len(values)] = values

    # -------------------------------------------------------------------- public
    def append(self, x, mask, lengths=None, ids=None, labels=None, times=None, starts=None) -> None:
        """Append rows (tables) or patients (series) at the end of the cohort.

        Parameters
        ----------
        x : array_like of float, shape (b, D) or (b, T, D)
            Model-space values, exactly what the network is fed: imputed where not observed.
            Non-finite values are refused where ``mask`` is True and stored as 0.0 where it
            is False; padding steps are stored as 0.0.
        mask : array_like of bool, same shape
            True where the value was observed.
        lengths : array_like of int, shape (b,)
            Series only (required): real steps per patient, 1..T. ``mask`` must be False
            beyond them.
        ids : array_like, shape (b,), optional
            Row or patient ids, stored as text. Give them on every append or never.
        labels : dict of str to array_like, optional
            Outcome columns (numbers -> float64, otherwise text), shape ``(b,)`` or, for
            series, ``(b, T)``. The same names on every append.
        times : array_like of float, shape (b, T), optional
            Series only: time of every step (NaN on padding). On every append or never.
        starts : array_like of int, shape (b,), optional
            Series only: step of the patient's stay at which each row begins, for a stay kept
            in several rows (``Dataset.starts``). On every append or never.

        Raises
        ------
        InputError
            Shapes that do not fit the cohort, bad lengths, observed non-finite values, or
            ids/labels/times given inconsistently between appends (the message names the
            cohort row).
        """
        if self._file is None:
            raise ValueError(f"{self.path}: the cohort writer is closed")
        where = str(self.path)
        tail = (self.n_steps, self.n_features) if self.temporal else (self.n_features,)
        x = np.asarray(x, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        b = x.shape[0] if x.ndim else 0
        if x.shape[1:] != tail or x.ndim != len(tail) + 1:
            raise InputError(f"appended values have shape {x.shape}; expected (rows, {', '.join(map(str, tail))})",
                             path=where)
        if mask.shape != x.shape:
            raise InputError(f"appended mask has shape {mask.shape}, values {x.shape}", path=where)
        first = self.n_samples
        if self.temporal:
            if lengths is None:
                raise InputError("a temporal cohort needs the lengths (real steps) of the appended patients",
                                 path=where)
            lengths = np.asarray(lengths)
            if lengths.shape != (b,) or (b and not np.all(np.equal(np.mod(lengths, 1), 0))):
                raise InputError(f"lengths must be {b} whole numbers, got shape {lengths.shape}", path=where)
            lengths = lengths.astype(np.int64)
            bad = np.flatnonzero((lengths < 1) | (lengths > self.n_steps))
            if bad.size:
                raise InputError(f"patient index {first + bad[0]} has length {lengths[bad[0]]}; lengths must be "
                                 f"between 1 and {self.n_steps}", path=where)
            real = np.arange(self.n_steps)[None, :] < lengths[:, None]  # (b, T)
            late = np.flatnonzero((mask & ~real[:, :, None]).any(axis=(1, 2)))
            if late.size:
                raise InputError(f"patient index {first + late[0]} has observed values after its last step "
                                 f"({lengths[late[0]]}); check the lengths", path=where)
        elif lengths is not None:
            raise InputError("lengths are for temporal cohorts only", path=where)
        finite = np.isfinite(x)
        bad = np.argwhere(mask & ~finite)
        if bad.size:
            row, col = int(bad[0, 0]), int(bad[0, -1])
            raise InputError(f"row index {first + row}, feature {self.feature_names[col]!r}: an observed value is "
                             "NaN or infinite; model-space values must be finite (preprocess first)", path=where)
        fix = ~finite
        if self.temporal:
            fix |= ~real[:, :, None] & (x != 0)
        if fix.any():
            x = np.where(fix, np.float32(0.0), x)
        extras = {
            "ids": None if ids is None else np.asarray(ids).astype(str),
            "times": None if times is None else np.asarray(times, dtype=np.float64),
            "starts": None if starts is None else np.asarray(starts, dtype=np.int64),
            "labels": {str(k): _label_array(str(k), v, b, (self.n_steps,) if self.temporal else (), where)
                       for k, v in (labels or {}).items()},
        }
        if extras["ids"] is not None and extras["ids"].shape != (b,):
            raise InputError(f"ids must have shape ({b},), got {extras['ids'].shape}", path=where)
        if extras["times"] is not None and (not self.temporal or extras["times"].shape != (b, self.n_steps)):
            raise InputError(f"times must have shape ({b}, {self.n_steps}) and belong to a temporal cohort",
                             path=where)
        if extras["starts"] is not None and (not self.temporal or extras["starts"].shape != (b,)
                                             or (extras["starts"] < 0).any()):
            raise InputError(f"starts must be {b} step numbers >= 0 of a temporal cohort", path=where)
        self._check_extras(extras, where)
        # Stop before HDF5 meets a full disk: a write failing inside it can take the process down.
        self._ensure_room(x.nbytes + mask.nbytes + 8 * b * (2 + (self.n_steps or 1) * (1 + len(extras["labels"]))))
        f = self._file
        self._extend(f["x"], first, x)
        self._extend(f["mask"], first, mask)
        if self.temporal:
            self._extend(f["lengths"], first, lengths)
        if extras["ids"] is not None:
            self._extend(f["ids"], first, extras["ids"].astype(object))
        if extras["times"] is not None:
            self._extend(f["times"], first, extras["times"])
        if extras["starts"] is not None:
            self._extend(f["starts"], first, extras["starts"])
        for name, value in extras["labels"].items():
            ds = f["labels"][_encode_name(name)]
            self._extend(ds, first, value.astype(object) if value.dtype.kind == "U" else value)
        self.n_samples += b

    def _check_extras(self, extras: dict, where: str) -> None:
        """The first append fixes which optional columns exist; later ones must match."""
        kinds = {n: (v.dtype.kind == "U", v.ndim) for n, v in extras["labels"].items()}
        layout = (extras["ids"] is not None, extras["times"] is not None, kinds, extras["starts"] is not None)
        if self._extras is None:
            self._extras = layout
            if layout[3]:
                self._vector("starts", np.int64)
            if layout[0]:
                self._vector("ids", _STR)
            if layout[1]:
                self._vector("times", np.float64, (self.n_steps,))
            if kinds:
                self._file.create_group("labels", track_order=True)
                for name, (is_text, ndim) in kinds.items():
                    tail = (self.n_steps,) if ndim == 2 else ()
                    ds = self._vector(f"labels/{_encode_name(name)}", _STR if is_text else np.float64, tail)
                    ds.attrs["name"] = name
            return
        if layout != self._extras:
            raise InputError(f"rows from index {self.n_samples} on: ids, times, starts and label columns "
                             "(names, text or numbers, per row or per step) must be the same on every append",
                             path=where)

    def _ensure_room(self, nbytes: int) -> None:
        problem = room_problem(self._tmp, nbytes + _ROOM_MARGIN)
        if problem:
            self.abort()
            raise InputError(f"could not write the cohort: {problem}; nothing was written", path=str(self.path))

    def close(self) -> Path:
        """Complete the file and move it to ``path`` atomically.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        if self._aborted:
            raise ValueError(f"{self.path}: the cohort writer was aborted; nothing was written")
        if self._file is None:
            return self.path
        self._ensure_room(0)
        f = self._file
        try:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["version"] = FORMAT_VERSION
            f.attrs["temporal"] = self.temporal
            f.attrs["feature_names"] = json.dumps(self.feature_names)
            f.attrs["preprocessing"] = json.dumps(self.preprocessing)
            if "times" in f:
                f["times"].attrs["unit"] = self.time_unit
            f.close()
            fsync_path(self._tmp)
            os.replace(self._tmp, self.path)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise InputError(f"could not write the cohort ({one_line(exc)})", path=str(self.path)) from exc
            raise
        self._file = None
        self._finalizer.detach()
        os.close(self._lock_fd)
        sync_folder(self.path.parent)  # make the rename itself durable
        return self.path

    def abort(self) -> None:
        """Discard everything written so far; ``path`` is not touched."""
        self._file, self._aborted = None, True
        self._finalizer()

    def __enter__(self) -> "CohortWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _discard(file: h5py.File | None, tmp: Path, lock_fd: int | None = None) -> None:
    try:
        if file is not None:
            file.close()
    except Exception:
        pass
    try:
        os.unlink(tmp)
    except OSError:
        pass
    if lock_fd is not None:
        try:
            os.close(lock_fd)
        except OSError:
            pass


def write_cohort(path, x, mask, lengths=None, *, feature_names, preprocessing=None, ids=None,
                 labels=None, times=None, time_unit: str = "") -> Path:
    """Write in-memory arrays as a cohort file (atomically).

    Parameters
    ----------
    path : str or path-like
    x : ndarray of float, shape (n, D) or (N, T, D)
        Model-space values (see :meth:`CohortWriter.append`).
    mask : ndarray of bool, same shape
    lengths : ndarray of int, shape (N,), optional
        Series: real steps per patient (default: all ``T``).
    feature_names : sequence of str
    preprocessing : Preprocessor or dict, optional
    ids : array_like, shape (n,) or (N,), optional
    labels : dict of str to array_like, optional
    times : ndarray of float, shape (N, T), optional
    time_unit : str

    Returns
    -------
    pathlib.Path
    """
    x = np.asarray(x)
    temporal = x.ndim == 3
    if temporal and lengths is None:
        lengths = np.full(x.shape[0], x.shape[1], dtype=np.int64)
    with CohortWriter(path, n_features=x.shape[-1], feature_names=feature_names, temporal=temporal,
                      n_steps=x.shape[1] if temporal else None, preprocessing=preprocessing,
                      time_unit=time_unit) as w:
        step = w._rows * 4
        for a in range(0, max(1, x.shape[0]), step):
            sl = slice(a, a + step)
            w.append(x[sl], np.asarray(mask)[sl], None if lengths is None else np.asarray(lengths)[sl],
                     ids=None if ids is None else np.asarray(ids)[sl],
                     labels={k: np.asarray(v)[sl] for k, v in (labels or {}).items()},
                     times=None if times is None else np.asarray(times)[sl])
    return Path(path)


def cohort_from_dataset(dataset: Dataset, preprocessor: Preprocessor, path) -> Path:
    """Preprocess a :class:`Dataset` and write it as a cohort file.

    Rows (tables) or patients (series) are transformed and written a piece at a time, so
    the extra memory is one piece, not a second copy of the data.

    Parameters
    ----------
    dataset : Dataset
        Table ``(n, D)`` or series ``(N, T, D)`` in clinical units; ids, times and labels
        are carried along.
    preprocessor : Preprocessor
        Fitted (see :meth:`Preprocessor.fit`); stored in the file.
    path : str or path-like

    Returns
    -------
    pathlib.Path
    """
    temporal = dataset.is_series
    with CohortWriter(path, n_features=dataset.n_features, feature_names=dataset.feature_names,
                      temporal=temporal, n_steps=dataset.values.shape[1] if temporal else None,
                      preprocessing=preprocessor, time_unit=dataset.time_unit) as w:
        step = w._rows * 4
        for a in range(0, max(1, dataset.n_samples), step):
            part = dataset.subset(np.arange(a, min(a + step, dataset.n_samples)))
            x, m = preprocessor.transform(part)
            w.append(x, m, part.lengths if temporal else None, ids=part.ids, labels=part.labels,
                     times=part.times if temporal else None, starts=part.starts)
    return Path(path)


# ------------------------------------------------------------------------------- reading
def is_cohort_file(path) -> bool:
    """True when ``path`` is a cohort file (reads only the header and root attributes).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    bool
        False for missing files, folders, non-HDF5 files and other HDF5 files (projects).
    """
    try:
        head = read_head(Path(path), len(HDF5_SIGNATURE))
        if not looks_like_hdf5(head, Path(path)):
            return False
        with h5py.File(path, "r", locking=False) as f:
            return attr_str(f.attrs.get("format")) == FORMAT_NAME
    except Exception:
        return False


class Cohort:
    """A cohort file opened read-only and checked.

    Parameters
    ----------
    path : str or path-like

    Raises
    ------
    InputError
        Naming the file: missing, not HDF5, not a cohort, written by a newer version,
        datasets missing or of inconsistent shapes, lengths out of range.

    Examples
    --------
    >>> with Cohort("big.h5") as cohort:                       # doctest: +SKIP
    ...     shard = cohort.shard(rank, world_size, device="cuda")
    """

    def __init__(self, path) -> None:
        self._path = Path(path)
        self._file, self._size = _open_cohort(self._path)
        try:
            self._validate()
        except BaseException:
            self._file.close()
            raise
        self._ids: np.ndarray | None = None

    def _validate(self) -> None:
        f, where = self._file, str(self._path)

        def fail(what: str):
            raise InputError(f"the cohort file is inconsistent: {what}; write it again", path=where)

        for name in ("x", "mask"):
            if not isinstance(f.get(name), h5py.Dataset):
                fail(f"the dataset {name!r} is missing")
        try:
            self._temporal = bool(f.attrs["temporal"])
            self._names = [str(n) for n in json.loads(attr_str(f.attrs["feature_names"]))]
            self._pre = json.loads(attr_str(f.attrs.get("preprocessing")) or "{}")
        except (KeyError, ValueError, TypeError) as exc:
            fail(f"a root attribute is missing or unreadable ({one_line(exc)})")
        x, m = f["x"], f["mask"]
        if x.ndim != (3 if self._temporal else 2):
            fail(f"'x' has shape {x.shape}, expected {'(N, T, D)' if self._temporal else '(n, D)'}")
        if x.dtype.kind != "f":
            fail(f"'x' has dtype {x.dtype}, expected float32")
        if m.shape != x.shape:
            fail(f"'mask' has shape {m.shape} but 'x' has {x.shape}")
        if len(self._names) != x.shape[-1]:
            fail(f"{len(self._names)} feature names for {x.shape[-1]} features")
        if not isinstance(self._pre, dict):
            fail("the preprocessing attribute is not a JSON object")
        _fitted_preprocessor(self._pre, self._names, where)
        n = x.shape[0]
        self._lengths = None
        if self._temporal:
            if not isinstance(f.get("lengths"), h5py.Dataset):
                fail("the dataset 'lengths' is missing")
            if f["lengths"].shape != (n,):
                fail(f"'lengths' has shape {f['lengths'].shape} for {n} patients")
            self._lengths = np.asarray(f["lengths"][()], dtype=np.int64)
            bad = np.flatnonzero((self._lengths < 1) | (self._lengths > x.shape[1]))
            if bad.size:
                fail(f"patient index {bad[0]} has length {self._lengths[bad[0]]}, outside 1..{x.shape[1]}")
        if "ids" in f and f["ids"].shape != (n,):
            fail(f"'ids' has shape {f['ids'].shape} for {n} rows")
        if "starts" in f and (f["starts"].shape != (n,) or f["starts"].dtype.kind not in "iu"
                              or (np.asarray(f["starts"][()]) < 0).any()):
            fail(f"'starts' should be {n} step numbers >= 0 (shape {f['starts'].shape}, type {f['starts'].dtype})")
        if "times" in f and f["times"].shape != x.shape[:2]:
            fail(f"'times' has shape {f['times'].shape}, expected {x.shape[:2]}")
        for key, ds in f.get("labels", {}).items():
            if ds.shape[:1] != (n,) or ds.shape[1:] not in ((), x.shape[1:2] if self._temporal else ()):
                fail(f"label {_decode_name(key)!r} has shape {ds.shape} for {n} rows")

    # -------------------------------------------------------------------- properties
    @property
    def path(self) -> Path:
        """The cohort file."""
        return self._path

    @property
    def temporal(self) -> bool:
        """True for patient time series."""
        return self._temporal

    @property
    def n_samples(self) -> int:
        """Rows of a table, or patients of a series."""
        return int(self._file["x"].shape[0])

    @property
    def n_features(self) -> int:
        return int(self._file["x"].shape[-1])

    @property
    def n_steps(self) -> int | None:
        """``T`` for series, None for tables."""
        return int(self._file["x"].shape[1]) if self._temporal else None

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    @property
    def preprocessing(self) -> dict:
        """The stored ``Preprocessor.to_dict()``; ``{}`` when values were stored as given."""
        return json.loads(json.dumps(self._pre))

    @property
    def lengths(self) -> np.ndarray | None:
        """Series: real steps per patient, int64 ``(N,)``; None for tables."""
        return None if self._lengths is None else self._lengths.copy()

    @property
    def ids(self) -> np.ndarray | None:
        """Row or patient ids as str ``(n,)`` (read on first use), or None."""
        if "ids" not in self._file:
            return None
        if self._ids is None:
            self._ids = _read_str(self._file["ids"], self._size)
        return self._ids.copy()

    @property
    def chunk_rows(self) -> int:
        """Rows per HDF5 chunk of ``x``: the unit in which the file is read."""
        return int(self._file["x"].chunks[0]) if self._file["x"].chunks else max(1, self.n_samples)

    # -------------------------------------------------------------------- access
    def shard(self, rank: int, world_size: int, *, device="cpu", block_rows: int | None = None) -> "CohortShard":
        """The contiguous share of rows for one of ``world_size`` training processes.

        Shards cover the rows in order without overlap; their sizes differ by at most one.

        Parameters
        ----------
        rank : int
            0 .. world_size - 1.
        world_size : int
            Number of processes, >= 1.
        device : str or torch.device
            Where :meth:`CohortShard.rows` puts the batches.
        block_rows : int, optional
            Rows per read block (default: whole chunks, at least 512 rows).

        Returns
        -------
        CohortShard
        """
        if isinstance(world_size, bool) or int(world_size) != world_size or world_size < 1:
            raise ValueError(f"world_size must be a whole number >= 1, got {world_size!r}")
        if isinstance(rank, bool) or int(rank) != rank or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..{int(world_size) - 1}, got {rank!r}")
        base, extra = divmod(self.n_samples, int(world_size))
        start = int(rank) * base + min(int(rank), extra)
        stop = start + base + (1 if rank < extra else 0)
        return CohortShard(self, start, stop, device=device, block_rows=block_rows)

    def iter_chunks(self, rows: int | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]]:
        """Walk through the cohort in order, a piece at a time.

        Parameters
        ----------
        rows : int, optional
            Rows (patients) per piece; default one HDF5 chunk.

        Yields
        ------
        start : int
            Index of the piece's first row.
        x : ndarray of float32, shape (b, D) or (b, T, D)
        mask : ndarray of bool, same shape
        lengths : ndarray of int64, shape (b,), or None for tables
        """
        rows = self.chunk_rows if rows is None else int(rows)
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        x, m = self._file["x"], self._file["mask"]
        for a in range(0, self.n_samples, rows):
            b = min(a + rows, self.n_samples)
            yield a, x[a:b], m[a:b], None if self._lengths is None else self._lengths[a:b].copy()

    def to_dataset(self) -> Dataset:
        """The whole cohort in memory, in clinical units.

        Values are mapped back through the stored preprocessing (clipping is not undone)
        and set to NaN where not observed and on padding steps. Ids, times and labels are
        restored; units come from the preprocessing. Only for cohorts that fit in memory.

        Returns
        -------
        Dataset
        """
        f = self._file
        pre = _fitted_preprocessor(self._pre, self._names, str(self._path))
        values = np.empty(f["x"].shape, dtype=np.float32)
        mask = np.empty(f["mask"].shape, dtype=bool)
        if pre is not None:
            cols = np.array([pre.feature_names_.index(n) for n in self._names], dtype=np.int64)
            scale, center = pre.scale_[cols], pre.center_[cols]
        for a, x, m, _ in self.iter_chunks():
            b = a + len(x)
            v = x.astype(np.float64) * scale + center if pre is not None else x
            values[a:b] = np.where(m, v, np.nan)
            mask[a:b] = m
        units = [""] * self.n_features
        if pre is not None:
            by_name = dict(zip(pre.feature_names_, pre.units_))
            units = [by_name.get(n, "") for n in self._names]
        labels = {}
        for key, ds in f.get("labels", {}).items():
            name = attr_str(ds.attrs.get("name")) or _decode_name(key)
            labels[name] = _read_str(ds, self._size) if h5py.check_string_dtype(ds.dtype) else np.asarray(ds[()])
        times = np.asarray(f["times"][()]) if "times" in f else None
        starts = np.asarray(f["starts"][()], dtype=np.int64) if "starts" in f else None
        return Dataset(values=values, mask=mask, feature_names=self.feature_names, units=units, ids=self.ids,
                       times=times, lengths=self.lengths, labels=labels, starts=starts,
                       time_unit=attr_str(f["times"].attrs.get("unit", "")) if "times" in f else "",
                       source=str(self._path))

    def content_hash(self) -> str:
        """SHA-256 (hex) of the file's bytes, read in 1 MiB pieces."""
        h = hashlib.sha256()
        with open(self._path, "rb") as fh:
            for piece in iter(lambda: fh.read(1 << 20), b""):
                h.update(piece)
        return h.hexdigest()

    def close(self) -> None:
        """Close the file; shards opened from it stay usable."""
        self._file.close()

    def __enter__(self) -> "Cohort":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        shape = f"{self.n_samples} x {self.n_steps} x {self.n_features}" if self._temporal \
            else f"{self.n_samples} x {self.n_features}"
        return f"Cohort({str(self._path)!r}, {'series' if self._temporal else 'table'} {shape})"


def _open_cohort(path: Path) -> tuple[h5py.File, int]:
    """Open and check a cohort file; return it with its size in bytes."""
    where = str(path)
    try:
        head = read_head(path, len(HDF5_SIGNATURE))
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("no such cohort file; write one with `dpsom prepare`", path=where) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a cohort file", path=where) from None
    except NotRegularFile as exc:
        raise InputError(f"not a regular file ({exc.kind}); choose a cohort file (.h5)", path=where) from None
    except OSError as exc:
        raise InputError(f"the cohort file cannot be opened ({one_line(exc)})", path=where) from None
    if not looks_like_hdf5(head, path):
        raise InputError("not a cohort file (not an HDF5 file); write one with `dpsom prepare`", path=where)
    try:
        f = h5py.File(path, "r", locking=False)
    except Exception as exc:
        raise InputError(f"the cohort file is damaged or incomplete ({one_line(exc)})", path=where) from None
    try:
        fmt = attr_str(f.attrs.get("format"))
        version = f.attrs.get("version")
        if fmt != FORMAT_NAME:
            what = "a DPSOM Studio project" if fmt == "dpsom-studio-project" else "an HDF5 file"
            raise InputError(f"{what}, not a cohort file (format attribute {fmt!r}); write one with "
                             "`dpsom prepare`", path=where)
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise InputError("the cohort file has no valid format version", path=where) from None
        if version > FORMAT_VERSION:
            raise InputError(f"written by a newer version (cohort format {version}); update the app",
                             path=where)
        if version < 1:
            raise InputError(f"unknown cohort format version {version}", path=where)
        try:
            inspect_file(f, size)
        except UnsafeFile as exc:
            raise InputError(f"not opened: {exc}; DPSOM Studio never writes this", path=where) from None
        except Exception as exc:
            raise InputError(f"the cohort file is damaged ({one_line(exc)})", path=where) from None
    except BaseException:
        f.close()
        raise
    return f, size


# -------------------------------------------------------------------------- block reading
def _block_bounds(start: int, stop: int, block_rows: int) -> np.ndarray:
    """Local block boundaries of rows [start, stop), cut at absolute multiples of block_rows.

    Aligning to absolute multiples keeps every block inside whole chunks of the file when
    ``block_rows`` is a multiple of the chunk size, whichever shard it belongs to. A piece
    shorter than half a block at either end joins its neighbour, so every block of a shard
    longer than one block holds between ``block_rows / 2`` and ``1.5 * block_rows`` rows.
    """
    if stop <= start:
        return np.zeros(1, dtype=np.int64)
    first = (start // block_rows + 1) * block_rows
    cuts = list(range(first, stop, block_rows))
    if cuts and cuts[0] - start < block_rows / 2:
        cuts.pop(0)
    if cuts and stop - cuts[-1] < block_rows / 2:
        cuts.pop()
    return np.array([start, *cuts, stop], dtype=np.int64) - start


class _BlockReader:
    """Gather rows of some HDF5 datasets by reading whole blocks, keeping the latest ones.

    ``bounds`` are local block boundaries; local row ``r`` is dataset row ``offset + r``.
    """

    def __init__(self, datasets: list[h5py.Dataset], offset: int, bounds: np.ndarray,
                 cached: int = _CACHED_BLOCKS) -> None:
        self.datasets, self.offset, self.bounds = datasets, offset, bounds
        self.cached = cached
        self.cache: OrderedDict[int, list[np.ndarray]] = OrderedDict()
        self.blocks_read = 0
        self.bytes_read = 0

    def _block(self, b: int) -> list[np.ndarray]:
        if b in self.cache:
            self.cache.move_to_end(b)
            return self.cache[b]
        # Drop the oldest block before reading, so that at most `cached` blocks are alive.
        while len(self.cache) >= self.cached:
            self.cache.popitem(last=False)
        lo, hi = self.offset + int(self.bounds[b]), self.offset + int(self.bounds[b + 1])
        arrays = [ds[lo:hi] for ds in self.datasets]
        self.blocks_read += 1
        self.bytes_read += sum(a.nbytes for a in arrays)
        self.cache[b] = arrays
        return arrays

    def gather(self, idx: np.ndarray) -> list[np.ndarray]:
        """Rows ``idx`` (local, any order) of every dataset, in the order asked."""
        outs = [np.empty((len(idx), *ds.shape[1:]), dtype=ds.dtype) for ds in self.datasets]
        if len(idx) == 0:
            return outs
        n = int(self.bounds[-1])
        if idx.min() < 0 or idx.max() >= n:
            raise IndexError(f"row index out of range 0..{n - 1}")
        blk = np.searchsorted(self.bounds, idx, side="right") - 1
        order = np.argsort(blk, kind="stable")
        touched, first = np.unique(blk[order], return_index=True)
        groups = dict(zip(touched.tolist(), np.split(order, first[1:])))
        # Blocks in the cache first (before reading can evict them); the block of the last
        # row asked for is used last so that it stays cached for the next batch.
        tail = int(blk[-1])
        plan = sorted(groups, key=lambda b: (b not in self.cache, b == tail))
        for b in plan:
            sel = groups[b]
            local = idx[sel] - self.bounds[b]
            for out, arr in zip(outs, self._block(b)):
                out[sel] = arr[local]
        return outs

    def invalidate(self, lo: int, hi: int) -> None:
        """Forget cached blocks that overlap local rows [lo, hi)."""
        for b in list(self.cache):
            if self.bounds[b] < hi and self.bounds[b + 1] > lo:
                del self.cache[b]


def _as_index(idx) -> np.ndarray:
    if isinstance(idx, torch.Tensor):
        return idx.detach().to("cpu", torch.int64).numpy().reshape(-1)
    return np.asarray(idx, dtype=np.int64).reshape(-1)


def _block_order(bounds: np.ndarray, generator: torch.Generator, shuffle: bool) -> torch.Tensor:
    n = int(bounds[-1])
    if not shuffle or n == 0:
        return torch.arange(n, dtype=torch.int64)
    sizes = torch.as_tensor(np.diff(bounds))
    dev = generator.device
    rank = torch.randperm(len(sizes), generator=generator, device=dev).cpu()  # block -> position
    key = torch.repeat_interleave(rank, sizes).to(torch.float64)
    # rank + u with u in [0, 1): sorting groups the rows of each block, in random order inside.
    key += torch.rand(n, generator=generator, device=dev, dtype=torch.float64).cpu()
    return torch.argsort(key, stable=True)


class CohortShard:
    """Rows ``[start, stop)`` of a cohort as a training-data source.

    Duck-types the in-memory training data the trainer reads: ``n_samples``, ``temporal``,
    ``step_mask``, ``device``, :meth:`rows`, :meth:`epoch_order` and :meth:`new_store`.
    Row numbers are local to the shard (0 .. n_samples - 1). It opens its own read-only
    handle on the file. Memory: the step mask (series), the lengths, and at most
    ``2 x block_rows`` rows of values and mask besides the batch being returned.

    Usually made by :meth:`Cohort.shard`.

    Parameters
    ----------
    cohort : Cohort
    start, stop : int
        Rows (patients) of the cohort in this shard.
    device : str or torch.device
    block_rows : int, optional
        Rows per read block (default: whole chunks, at least 512 rows).

    Attributes
    ----------
    start, stop : int
    block_rows : int
    """

    def __init__(self, cohort: Cohort, start: int, stop: int, *, device="cpu",
                 block_rows: int | None = None) -> None:
        if not 0 <= start <= stop <= cohort.n_samples:
            raise ValueError(f"rows {start}..{stop} are outside the cohort's 0..{cohort.n_samples}")
        chunk = cohort.chunk_rows
        if block_rows is None:
            block_rows = chunk * max(1, -(-_MIN_BLOCK_ROWS // chunk))
        if int(block_rows) != block_rows or block_rows < 1:
            raise ValueError(f"block_rows must be a whole number >= 1, got {block_rows!r}")
        self.path = cohort.path
        self.start, self.stop, self.block_rows = int(start), int(stop), int(block_rows)
        self._temporal = cohort.temporal
        self._device = torch.device(device)
        self._file = h5py.File(self.path, "r", locking=False)
        self._closer = weakref.finalize(self, self._file.close)
        self._bounds = _block_bounds(self.start, self.stop, self.block_rows)
        self._reader = _BlockReader([self._file["x"], self._file["mask"]], self.start, self._bounds)
        self._lengths = None
        self._sm_np = None
        self._step_mask = None
        if self._temporal:
            self._lengths = cohort.lengths[self.start:self.stop]
            self._sm_np = np.arange(cohort.n_steps)[None, :] < self._lengths[:, None]  # (n, T)
            self._step_mask = torch.from_numpy(self._sm_np).to(self._device)

    # -------------------------------------------------------------------- interface
    @property
    def n_samples(self) -> int:
        """Rows (tables) or patients (series) in this shard."""
        return self.stop - self.start

    @property
    def temporal(self) -> bool:
        return self._temporal

    @property
    def step_mask(self) -> torch.Tensor | None:
        """Series: bool ``(n, T)`` on the device, True on real steps; None for tables."""
        return self._step_mask

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def n_blocks(self) -> int:
        """Number of read blocks in the shard."""
        return len(self._bounds) - 1

    @property
    def block_bounds(self) -> np.ndarray:
        """Local row boundaries of the read blocks, int64 ``(n_blocks + 1,)``."""
        return self._bounds.copy()

    @property
    def bytes_read(self) -> int:
        """Bytes of values and mask read from the file so far (diagnostics)."""
        return self._reader.bytes_read

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The rows of a batch, on the device.

        Parameters
        ----------
        idx : LongTensor, shape (B,)
            Local row (patient) numbers, any order, any device.

        Returns
        -------
        x : Tensor of float32
            Tables: ``(B, D)``. Series: the real steps of the patients, ``(S, D)`` in
            (patient, time) order, i.e. ``X[idx][sm]``.
        m : Tensor of bool, same shape as ``x``
            Observation mask.
        sm : Tensor of bool ``(B, T)`` or None
            Series: ``step_mask[idx]``; None for tables.
        """
        local = _as_index(idx)
        x, m = self._reader.gather(local)
        if not self._temporal:
            return torch.from_numpy(x).to(self._device), torch.from_numpy(m).to(self._device), None
        real = self._sm_np[local]  # (B, T)
        sm = self._step_mask[torch.from_numpy(local).to(self._device)]
        return torch.from_numpy(x[real]).to(self._device), torch.from_numpy(m[real]).to(self._device), sm

    def epoch_order(self, generator: torch.Generator, shuffle: bool = True) -> torch.LongTensor:
        """Order of the rows for one epoch that keeps reads local.

        Parameters
        ----------
        generator : torch.Generator
            Source of randomness (CPU or device); the order depends only on its state.
        shuffle : bool
            False: ``arange(n)``.

        Returns
        -------
        LongTensor, shape (n,), on the CPU
            A permutation: the read blocks in random order, rows shuffled inside each block.
        """
        return _block_order(self._bounds, generator, shuffle)

    def new_store(self, tail_shape: tuple = (), dtype: torch.dtype = torch.float32, *,
                  directory=None) -> "OutOfCoreArray":
        """An on-disk array with one entry per shard row, read with the shard's blocks.

        Parameters
        ----------
        tail_shape : tuple of int
            Shape of one entry, e.g. ``(K,)`` for a target distribution over ``K`` nodes
            (tables) or ``(T, K)`` (series).
        dtype : torch.dtype
        directory : path-like, optional
            Folder for the temporary file (default: the system's temporary folder).

        Returns
        -------
        OutOfCoreArray
            Shape ``(n_samples, *tail_shape)``, zero-filled; deleted on close.
        """
        return OutOfCoreArray((self.n_samples, *tail_shape), dtype, self._bounds, self._device,
                              directory=directory)

    def close(self) -> None:
        """Release the file handle and the cached blocks."""
        self._reader.cache.clear()
        self._closer()

    def __enter__(self) -> "CohortShard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"CohortShard({str(self.path)!r}, rows {self.start}..{self.stop}, "
                f"{self.n_blocks} blocks of {self.block_rows})")


class OutOfCoreArray:
    """A temporary on-disk array ``(n, *tail)`` written in slices and read by row index.

    Backed by an uncompressed HDF5 file in a temporary folder, deleted by :meth:`close` or
    when the object is garbage collected. Reads use the same blocks and small cache as
    :meth:`CohortShard.rows`, so they are cheap in a block-shuffled order.

    Parameters
    ----------
    shape : tuple of int
        ``(n, *tail)``.
    dtype : torch.dtype
    bounds : ndarray of int64
        Block boundaries over the ``n`` rows.
    device : torch.device
        Where reads are returned.
    directory : path-like, optional
    """

    def __init__(self, shape: tuple, dtype: torch.dtype, bounds: np.ndarray, device, *, directory=None) -> None:
        try:
            np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        except TypeError:
            raise ValueError(f"dtype {dtype} cannot be stored; use a float or integer dtype") from None
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.device = torch.device(device)
        fd, name = tempfile.mkstemp(suffix=".h5", prefix="dpsom-store-", dir=directory)
        os.close(fd)
        self._path = Path(name)
        self._file = h5py.File(self._path, "w", libver=_LIBVER, locking=False)
        self._finalizer = weakref.finalize(self, _discard, self._file, self._path)
        # Uncompressed chunks: slices map straight to byte ranges, and rows never written
        # read as 0 without taking disk space.
        row_bytes = np_dtype.itemsize * math.prod(self.shape[1:])
        chunks = (min(max(1, self.shape[0]), _chunk_rows(row_bytes, 1 << 20)), *self.shape[1:]) \
            if math.prod(self.shape) else None
        self._ds = self._file.create_dataset("a", shape=self.shape, dtype=np_dtype, chunks=chunks)
        self._reader = _BlockReader([self._ds], 0, bounds)

    def __len__(self) -> int:
        return self.shape[0]

    def __setitem__(self, key: slice, value) -> None:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("write contiguous slices only: store[a:b] = values")
        lo, hi, _ = key.indices(self.shape[0])
        hi = max(lo, hi)
        if isinstance(value, torch.Tensor):
            value = value.detach().to("cpu", self.dtype).numpy()
        value = np.asarray(value, dtype=self._ds.dtype)
        want = (hi - lo, *self.shape[1:])
        if value.shape != want:
            raise ValueError(f"values of shape {value.shape} for slice {lo}:{hi}, expected {want}")
        self._ds[lo:hi] = value
        self._reader.invalidate(lo, hi)

    def __getitem__(self, key) -> torch.Tensor:
        """``store[idx]`` (LongTensor/array of rows, any order) or ``store[a:b]``; on the device."""
        if isinstance(key, slice):
            lo, hi, step = key.indices(self.shape[0])
            key = np.arange(lo, hi, step)
        (out,) = self._reader.gather(_as_index(key))
        return torch.from_numpy(out).to(self.device)

    def close(self) -> None:
        """Delete the temporary file."""
        self._reader.cache.clear()
        self._finalizer()

    def __enter__(self) -> "OutOfCoreArray":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
