"""One HDF5 file per project: save, load and summarise everything a session needs.

With ``cohort_h5`` and their shared ``_h5files``, the only modules of the code base that
import h5py. A project holds the settings, the data (embedded, or a reference to the source
file with its checksum), the preprocessing parameters, the network and optimiser state
needed to resume training, the loss history, the cluster assignments and the user's
annotations. ``docs/project-format.md`` describes the layout on disk.

Saving and loading go through an in-memory mirror of the file (plain groups and numpy
arrays). Encoding a :class:`Project` into that mirror and decoding it back are pure Python;
h5py only copies the mirror to and from disk. A content checksum over the mirror is stored
in the root attributes and verified on every load, so damaged array data is reported
instead of silently loaded.

Guarantees
----------
* Saving is atomic: the project is written to a temporary file next to the target, flushed
  to disk and renamed over it. A failed or killed save leaves the previous file untouched.
* Loading never writes. Every problem (missing, foreign, truncated, damaged, newer format)
  raises :class:`core.errors.ProjectFileError` with one line naming the file.
* No pickle: only numeric arrays, UTF-8 strings and JSON text are stored.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import platform
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import unquote

import h5py
import numpy as np

from .. import __version__ as _APP_VERSION
from ..data.dataset import Dataset
from ..errors import ProjectFileError
from ._h5files import HDF5_SIGNATURE as _HDF5_SIGNATURE
from ._h5files import attr_str as _attr_str
from ._h5files import fsync_path as _fsync_path
from ._h5files import DatasetInfo, NotRegularFile, UnsafeFile, inspect_file, looks_like_hdf5, read_head
from ._h5files import new_temp, open_regular, read_attr, read_text, sync_folder
from ._h5files import one_line as _one_line

__all__ = [
    "Project",
    "save_project",
    "load_project",
    "project_summary",
    "make_data_ref",
    "check_data_ref",
    "data_ref_path",
    "FORMAT_NAME",
    "SCHEMA_VERSION",
]

FORMAT_NAME = "dpsom-studio-project"
SCHEMA_VERSION = 1

_CHECKSUM_ATTR = "content_sha256"
# HDF5 object formats of 1.10: metadata blocks carry their own checksums, and any
# HDF5 >= 1.10 (every h5py wheel since 2018) reads the file.
_LIBVER = ("v110", "v110")
_COMPRESS_ABOVE = 4096  # bytes; smaller arrays stay contiguous (chunking costs more than it saves)
_MAX_EXACT_INT = 2**53  # largest integer a float64 history column holds exactly


@dataclass
class Project:
    """Everything saved in, and loaded from, one project file.

    Attributes
    ----------
    config : dict
        ``core.config.Config.to_dict()``; a :class:`~core.config.Config` is accepted when
        saving and stored as its dict.
    dataset : Dataset or None
        The data, when embedded (``save_project(..., embed_data=True)``).
    data_ref : dict or None
        ``{"path": str, "sha256": str, "size": int}`` naming the source data when it is not
        embedded (see :func:`make_data_ref`, :func:`check_data_ref`). May also be kept
        alongside embedded data, as a record of where the data came from.
    column_roles : dict of str to str
        Source column name to its role ("id", "time", "feature", "label", "ignore", ...).
    preprocessor : dict or None
        JSON-compatible parameters of the fitted preprocessing.
    model_state, train_state : dict or None
        State trees: nested dicts with str keys (dots allowed) whose leaves are numpy arrays
        of any numeric, bool, bytes or string dtype, numpy scalars, or JSON values (int,
        float, str, bool, None, and lists of those). They round-trip exactly: same dtype,
        same values, same Python types. Tuples come back as lists; numpy scalars inside
        lists come back as Python numbers.
    history : list of dict
        One row per logged step, e.g. ``{"phase": "joint", "epoch": 3, "step": 120,
        "total": 1.2}``. Rows may have different keys. Numbers come back as Python
        ``int``/``float``/``bool`` according to their column.
    assignments : dict of str to ndarray, or None
        Per-point results such as ``"bmu"``, ``"proba"``, ``"next_node_pred"``.
    annotations : dict
        JSON: node names, superclusters, colours.
    warnings : list of str
        Messages about the data or the run, in plain words.
    metadata : dict
        Free JSON: seeds, library versions, device, durations.
    app_version, created, modified : str or None
        Filled by :func:`save_project` (ISO 8601 dates); ``created`` is kept across saves.
    """

    config: dict
    dataset: Dataset | None = None
    data_ref: dict | None = None
    column_roles: dict[str, str] = field(default_factory=dict)
    preprocessor: dict | None = None
    model_state: dict | None = None
    train_state: dict | None = None
    history: list[dict] = field(default_factory=list)
    assignments: dict[str, np.ndarray] | None = None
    annotations: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    app_version: str | None = None
    created: str | None = None
    modified: str | None = None


# ---------------------------------------------------------------------------- the mirror
@dataclass
class _Array:
    """A dataset in the mirror: a numeric/bool/bytes array, or an object array of str."""

    data: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Group:
    children: dict[str, "_Array | _Group"] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    ordered: bool = False  # keep the creation order of the children in the file


def _canonical_attr(value: Any) -> bytes:
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return json.dumps(value, sort_keys=True).encode("utf-8")


def _hash_strings(h: "hashlib._Hash", strings) -> None:
    """Feed text cells to ``h``, each as its UTF-8 length and bytes (so cell borders count)."""
    for s in strings:
        b = s.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)


def _combine_digests(entries: list[tuple[str, str]]) -> str:
    """One digest from per-object ``(path, digest)`` pairs, in sorted path order."""
    total = hashlib.sha256()
    for path, digest in sorted(entries):
        total.update(path.encode("utf-8") + b"\0" + digest.encode() + b"\n")
    return total.hexdigest()


def _hash_array(h: "hashlib._Hash", a: np.ndarray) -> None:
    h.update(repr(tuple(a.shape)).encode())
    if a.dtype == object:
        h.update(b"|str")
        _hash_strings(h, a.ravel())
    else:
        h.update(a.dtype.str.encode())
        h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


def _content_digest(root: _Group) -> str:
    """SHA-256 over every group's attributes and every dataset's dtype, shape and values.

    Independent of the order in which objects are stored: per-object digests are combined
    in sorted path order. The root's checksum attribute itself is left out.
    """
    entries: list[tuple[str, str]] = []

    def visit(obj: _Array | _Group, path: str) -> None:
        h = hashlib.sha256()
        for key in sorted(obj.attrs):
            if path == "/" and key == _CHECKSUM_ATTR:
                continue
            h.update(key.encode("utf-8") + b"\0" + _canonical_attr(obj.attrs[key]) + b"\0")
        if isinstance(obj, _Array):
            h.update(b"D")
            _hash_array(h, obj.data)
        else:
            h.update(b"G")
            for name, child in obj.children.items():
                visit(child, path.rstrip("/") + "/" + name)
        entries.append((path, h.hexdigest()))

    visit(root, "/")
    return _combine_digests(entries)


# ------------------------------------------------------------------------ names and JSON
def _encode_key(key: str) -> str:
    """Turn any str key into a legal HDF5 link name, reversibly (see :func:`_decode_key`).

    '/' separates HDF5 paths and '.'/'..' name the group itself, so those are
    percent-escaped, as are '%' and control characters. Dots inside names stay readable
    ("encoder.layers.0.weight").
    """
    if key == "":
        return "%"
    out = []
    for ch in key:
        if ch in "%/" or ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    name = "".join(out)
    if set(name) == {"."}:
        name = name.replace(".", "%2E")
    return name


def _decode_key(name: str) -> str:
    return "" if name == "%" else unquote(name, errors="strict")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-compatible")


def _dumps(value: Any, where: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot store {where}: {exc}") from None


def _json_array(value: Any, where: str) -> _Array:
    return _Array(np.array(_dumps(value, where), dtype=object), {"encoding": "json"})


#: Longest JSON text decoded. Decoding can take some 20 times the text's size (a list of
#: small numbers), and no document a project holds comes near this.
_MAX_JSON_TEXT = 64 << 20


def _loads(text: str) -> Any:
    if len(text) > _MAX_JSON_TEXT:
        raise ValueError(f"a JSON text of {len(text)} characters, far longer than this format writes")
    return json.loads(text)


def _json_value(node: _Array) -> Any:
    return _loads(_scalar_text(node))


def _scalar_text(node: _Array) -> str:
    text = node.data[()] if node.data.ndim == 0 else None
    if not isinstance(text, str):
        raise ValueError("expected a text value")
    return text


# ----------------------------------------------------------------------------- arrays
def _str_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


def _encode_array(value: Any, where: str) -> _Array:
    """Map a numpy array of (almost) any dtype onto something HDF5 stores exactly."""
    a = np.asarray(value)
    kind = a.dtype.kind
    if kind in "biufc" or kind == "S":
        if a.dtype.fields is not None:
            raise TypeError(f"cannot store {where}: structured arrays are not supported")
        return _Array(a)
    if kind == "U":
        return _Array(a.astype(object), {"encoding": "unicode", "numpy_dtype": a.dtype.str})
    if kind in "Mm":
        return _Array(a.view(np.int64), {"encoding": "datetime", "numpy_dtype": a.dtype.str})
    if kind == "O":
        if all(isinstance(v, str) for v in a.flat):
            return _Array(np.array([str(v) for v in a.flat], dtype=object).reshape(a.shape),
                          {"encoding": "str"})
        # Mixed object arrays (text with None/NaN for missing, numbers): one JSON value per cell.
        if any(isinstance(v, (dict, list, tuple)) for v in a.flat):
            raise TypeError(f"cannot store {where}: object arrays may hold only str, numbers and None")
        cells = [_dumps(v, where) for v in a.flat]
        return _Array(np.array(cells, dtype=object).reshape(a.shape), {"encoding": "json_cells"})
    raise TypeError(f"cannot store {where}: arrays of dtype {a.dtype} are not supported")


def _decode_array(node: _Array) -> np.ndarray:
    a = node.data
    encoding = node.attrs.get("encoding", "")
    if encoding == "":
        return a
    if encoding == "str":
        return a if a.dtype == object else a.astype(object)
    if encoding == "unicode":
        return a.astype(np.dtype(node.attrs["numpy_dtype"]))
    if encoding == "datetime":
        return a.view(np.dtype(node.attrs["numpy_dtype"]))
    if encoding == "json_cells":
        out = np.empty(a.shape, dtype=object)
        out.flat[:] = [json.loads(s) for s in a.flat] if a.size else []
        return out
    raise ValueError(f"unknown array encoding {encoding!r}")


# ------------------------------------------------------------------------- state trees
def _encode_tree(tree: dict, where: str) -> _Group:
    if not isinstance(tree, dict):
        raise TypeError(f"cannot store {where}: expected a dict, got {type(tree).__name__}")
    group = _Group(ordered=True)
    for key, value in tree.items():
        if not isinstance(key, str):
            raise TypeError(f"cannot store {where}: key {key!r} is not a string")
        path = f"{where}[{key!r}]"
        name = _encode_key(key)
        if isinstance(value, dict):
            group.children[name] = _encode_tree(value, path)
        elif isinstance(value, np.ndarray):
            node = _encode_array(value, path)
            node.attrs["kind"] = "array"
            group.children[name] = node
        elif isinstance(value, np.generic):
            node = _encode_array(np.asarray(value), path)
            node.attrs["kind"] = "scalar"
            group.children[name] = node
        else:
            node = _json_array(value, path)
            node.attrs["kind"] = "json"
            group.children[name] = node
    return group


def _decode_tree(group: _Group) -> dict:
    out: dict[str, Any] = {}
    for name, child in group.children.items():
        key = _decode_key(name)
        if isinstance(child, _Group):
            out[key] = _decode_tree(child)
            continue
        kind = child.attrs.get("kind")
        if kind == "array":
            out[key] = _decode_array(child)
        elif kind == "scalar":
            out[key] = _decode_array(child)[()]
        elif kind == "json":
            out[key] = _json_value(child)
        else:
            raise ValueError(f"unknown state-tree leaf kind {kind!r}")
    return out


# ----------------------------------------------------------------------------- history
def _history_kind(values: list) -> str:
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return "bool"
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
        return "int" if all(abs(int(v)) <= _MAX_EXACT_INT for v in values) else "json"
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
           for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "str"
    return "json"


def _encode_history(rows: list[dict]) -> _Group:
    if not isinstance(rows, (list, tuple)):
        raise TypeError(f"cannot store history: expected a list of dicts, got {type(rows).__name__}")
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"cannot store history row {i}: expected a dict, got {type(row).__name__}")
        for key in row:
            if not isinstance(key, str):
                raise TypeError(f"cannot store history row {i}: column name {key!r} is not a string")
            names.setdefault(key)
    n = len(rows)
    values, present_group, specs = _Group(), _Group(), []
    for name in names:
        present = np.array([name in row for row in rows], dtype=bool)
        cells = [row[name] for row in rows if name in row]
        kind = _history_kind(cells)
        if kind in ("bool", "int", "float"):
            column = np.full(n, np.nan, dtype=np.float64)
            column[present] = [float(v) for v in cells]
        else:
            encode = (lambda v: v) if kind == "str" else (lambda v: _dumps(v, f"history column {name!r}"))
            column = np.empty(n, dtype=object)
            column[:] = [encode(row[name]) if name in row else "" for row in rows]
        key = _encode_key(name)
        values.children[key] = _Array(column)
        if not present.all():
            present_group.children[key] = _Array(present)
        specs.append({"name": name, "kind": kind})
    group = _Group(attrs={"n_rows": n})
    group.children["columns"] = _json_array(specs, "history columns")
    group.children["values"] = values
    group.children["present"] = present_group
    return group


_HISTORY_DECODERS: dict[str, Callable[[Any], Any]] = {
    "float": float,
    "int": lambda v: int(v),
    "bool": lambda v: bool(v),
    "str": str,
    "json": json.loads,
}


def _decode_history(group: _Group) -> list[dict]:
    n = int(group.attrs["n_rows"])
    rows: list[dict] = [{} for _ in range(n)]
    values = group.children["values"]
    present_group = group.children["present"]
    for spec in _json_value(group.children["columns"]):
        name, kind = spec["name"], spec["kind"]
        key = _encode_key(name)
        column = values.children[key].data
        if column.shape != (n,):
            raise ValueError(f"history column {name!r} has {column.shape} entries for {n} rows")
        present_node = present_group.children.get(key)
        present = np.ones(n, dtype=bool) if present_node is None else present_node.data.astype(bool)
        convert = _HISTORY_DECODERS[kind]
        for i in np.flatnonzero(present):
            rows[i][name] = convert(column[i])
    return rows


# ----------------------------------------------------------------------------- dataset
def _file_name(text: Any) -> Any:
    """Only the file name of a path (POSIX or Windows); other values as they are."""
    if not isinstance(text, str):
        return text
    return text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or text


def _without_folders(metadata: dict) -> dict:
    """The metadata with the reader's path cut to the file name (the data are embedded)."""
    options = metadata.get("read_options") if isinstance(metadata, dict) else None
    if not isinstance(options, dict) or "path" not in options:
        return metadata
    return {**metadata, "read_options": {**options, "path": _file_name(options["path"])}}


def _encode_dataset(ds: Dataset, source: str) -> _Group:
    group = _Group()
    group.children["values"] = _encode_array(ds.values, "dataset values")
    group.children["mask"] = _encode_array(ds.mask, "dataset mask")
    # "starts" exists only for stays kept in parts; files without it (all older ones) have
    # one row per patient.
    for name in ("ids", "times", "lengths", "starts"):
        value = getattr(ds, name)
        if value is not None:
            group.children[name] = _encode_array(value, f"dataset {name}")
    group.children["feature_names"] = _Array(_str_array(ds.feature_names), {"encoding": "str"})
    group.children["units"] = _Array(_str_array(ds.units), {"encoding": "str"})
    labels = _Group(ordered=True)
    for key, value in ds.labels.items():
        labels.children[_encode_key(str(key))] = _encode_array(value, f"label {key!r}")
    group.children["labels"] = labels
    meta = {
        "id_col": ds.id_col,
        "time_col": ds.time_col,
        "time_unit": ds.time_unit,
        "source": source,
        "warnings": list(ds.warnings),
    }
    group.children["meta"] = _json_array(meta, "dataset settings")
    return group


def _decode_dataset(group: _Group) -> Dataset:
    ch = group.children
    meta = _json_value(ch["meta"])

    def optional(name):
        return _decode_array(ch[name]) if name in ch else None

    labels = {_decode_key(k): _decode_array(v) for k, v in ch["labels"].children.items()}
    return Dataset(
        values=_decode_array(ch["values"]),
        mask=_decode_array(ch["mask"]),
        feature_names=[str(s) for s in _decode_array(ch["feature_names"])],
        units=[str(s) for s in _decode_array(ch["units"])],
        ids=optional("ids"),
        times=optional("times"),
        lengths=optional("lengths"),
        starts=optional("starts"),
        labels=labels,
        id_col=meta["id_col"],
        time_col=meta["time_col"],
        time_unit=meta["time_unit"],
        source=meta["source"],
        warnings=list(meta["warnings"]),
    )


# ----------------------------------------------------------------------------- project
def _library_versions() -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
    }
    # Metadata lookup only: importing torch here would cost seconds and could fail.
    for dist in ("torch", "pandas"):
        try:
            versions[dist] = _metadata.version(dist)
        except Exception:
            pass
    return versions


def _encode_project(project: Project, *, embed_data: bool, created: str, modified: str,
                    data_ref: dict | None) -> _Group:
    config = project.config.to_dict() if hasattr(project.config, "to_dict") else project.config
    if not isinstance(config, dict):
        raise TypeError(f"cannot store config: expected a dict, got {type(config).__name__}")
    root = _Group()
    root.attrs.update({
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "app_version": _APP_VERSION,
        "created": created,
        "modified": modified,
        "libraries": json.dumps(_library_versions(), sort_keys=True),
        "data_embedded": bool(embed_data and project.dataset is not None),
    })
    embedded = bool(embed_data and project.dataset is not None)
    metadata = project.metadata
    if embedded:
        # The data travel inside the file, so where they were read from (a folder with the
        # user's name in it) is not needed: keep only the file name.
        metadata = _without_folders(metadata)
        if isinstance(data_ref, dict):
            data_ref = {**data_ref, "path": _file_name(data_ref.get("path"))}
    docs = _Group()
    docs.children["config"] = _json_array(config, "config")
    docs.children["column_roles"] = _json_array(dict(project.column_roles), "column roles")
    docs.children["annotations"] = _json_array(project.annotations, "annotations")
    docs.children["warnings"] = _json_array([str(w) for w in project.warnings], "warnings")
    docs.children["metadata"] = _json_array(metadata, "metadata")
    if project.preprocessor is not None:
        docs.children["preprocessor"] = _json_array(project.preprocessor, "preprocessor")
    if data_ref is not None:
        docs.children["data_ref"] = _json_array(data_ref, "data reference")
    root.children["json"] = docs
    if embed_data and project.dataset is not None:
        root.children["dataset"] = _encode_dataset(project.dataset, _file_name(project.dataset.source))
    for name in ("model_state", "train_state"):
        tree = getattr(project, name)
        if tree is not None:
            root.children[name] = _encode_tree(tree, name)
    root.children["history"] = _encode_history(project.history)
    if project.assignments is not None:
        if not isinstance(project.assignments, dict):
            raise TypeError("cannot store assignments: expected a dict of arrays")
        arrays = {str(k): np.asarray(v) for k, v in project.assignments.items()}
        root.children["assignments"] = _encode_tree(arrays, "assignments")
    return root


def _load_v1(root: _Group) -> Project:
    docs = root.children["json"]

    def doc(name: str, default: Any = None) -> Any:
        return _json_value(docs.children[name]) if name in docs.children else default

    ch = root.children
    assignments = None
    if "assignments" in ch:
        assignments = _decode_tree(ch["assignments"])
        if not all(isinstance(v, np.ndarray) for v in assignments.values()):
            raise ValueError("assignments hold something other than arrays")
    project = Project(
        config=doc("config"),
        dataset=_decode_dataset(ch["dataset"]) if "dataset" in ch else None,
        data_ref=doc("data_ref"),
        column_roles=doc("column_roles", {}),
        preprocessor=doc("preprocessor"),
        model_state=_decode_tree(ch["model_state"]) if "model_state" in ch else None,
        train_state=_decode_tree(ch["train_state"]) if "train_state" in ch else None,
        history=_decode_history(ch["history"]),
        assignments=assignments,
        annotations=doc("annotations", {}),
        warnings=list(doc("warnings", [])),
        metadata=doc("metadata", {}),
        app_version=_attr_str(root.attrs.get("app_version")),
        created=_attr_str(root.attrs.get("created")),
        modified=_attr_str(root.attrs.get("modified")),
    )
    if not isinstance(project.config, dict):
        raise ValueError("the settings are missing")
    return project


def _summary_v1(f: h5py.File, text_budget: int) -> dict[str, Any]:
    docs = f["json"]

    def doc(name: str) -> Any:
        return _loads(str(read_text(docs[name], text_budget)[()])) if name in docs else None

    out: dict[str, Any] = {"config": doc("config"), "data_ref": doc("data_ref")}
    if "dataset" in f:
        d = f["dataset"]
        shape = tuple(int(s) for s in d["values"].shape)
        meta = _loads(str(read_text(d["meta"], text_budget)[()]))
        out["data"] = {
            "kind": "series" if len(shape) == 3 else "table",
            "shape": shape,
            "n_features": shape[-1],
            "source": meta.get("source", "") if isinstance(meta, dict) else "",
            "labels": [_decode_key(k) for k in d["labels"]] if "labels" in d else [],
        }
    else:
        out["data"] = None
    out["trained"] = "model_state" in f
    out["has_train_state"] = "train_state" in f
    out["history_rows"] = int(f["history"].attrs["n_rows"])
    out["assignments"] = [_decode_key(k) for k in f["assignments"]] if "assignments" in f else []
    return out


# One entry per format version ever written; old ones are kept so old files keep loading.
_LOADERS: dict[int, Callable[[_Group], Project]] = {1: _load_v1}
_SUMMARIES: dict[int, Callable[[h5py.File, int], dict]] = {1: _summary_v1}


# ------------------------------------------------------------------------ HDF5 copying
def _write_group(target: h5py.Group, group: _Group) -> None:
    for key, value in group.attrs.items():
        target.attrs[key] = value
    for name, child in group.children.items():
        if isinstance(child, _Group):
            _write_group(target.create_group(name, track_order=True if child.ordered else None), child)
        else:
            _write_array(target, name, child)


def _write_array(target: h5py.Group, name: str, node: _Array) -> None:
    data = node.data
    is_text = data.dtype == object
    dtype = h5py.string_dtype("utf-8") if is_text else data.dtype
    nbytes = data.size * 16 if is_text else data.nbytes
    options: dict[str, Any] = {}
    if data.ndim >= 1 and data.size > 0 and nbytes > _COMPRESS_ABOVE:
        options = {"chunks": True, "compression": "gzip", "compression_opts": 4, "shuffle": not is_text}
    ds = target.create_dataset(name, data=data, dtype=dtype, **options)
    for key, value in node.attrs.items():
        ds.attrs[key] = value


def _read_group(source: h5py.Group, text_budget: int) -> _Group:
    """Copy a group into the mirror; only after :func:`_inspect` has passed the file."""
    group = _Group(attrs={k: read_attr(source, k) for k in source.attrs})
    for name in source:
        link = source.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise ValueError(f"unexpected link {name!r}")
        obj = source[name]
        if isinstance(obj, h5py.Group):
            group.children[name] = _read_group(obj, text_budget)
        elif isinstance(obj, h5py.Dataset):
            group.children[name] = _Array(_read_data(obj, text_budget), {k: read_attr(obj, k) for k in obj.attrs})
        else:
            raise ValueError(f"unexpected object {name!r}")
    return group


def _read_data(ds: h5py.Dataset, text_budget: int) -> np.ndarray:
    info = h5py.check_string_dtype(ds.dtype)
    if info is not None and info.length is None:
        return read_text(ds, text_budget)
    return np.asarray(ds[()])


# ----------------------------------------------------------------- checks before reading
_SLICE_BYTES = 4 << 20  # values read at a time while the checksum is verified


def _memory_budget() -> int:
    """The most memory a project may declare: half of this computer's physical memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _row_slices(info: DatasetInfo) -> Iterator[slice]:
    """Slices along the first axis of about ``_SLICE_BYTES``, in whole chunks."""
    n = info.shape[0]
    row = max(1, info.nbytes // max(1, n))
    rows = max(1, _SLICE_BYTES // row)
    if info.chunks:
        rows = max(info.chunks[0], rows // info.chunks[0] * info.chunks[0])
    for a in range(0, n, rows):
        yield slice(a, min(n, a + rows))


def _stream_digest(f: h5py.File, infos: dict[str, DatasetInfo], text_budget: int) -> str:
    """:func:`_content_digest` of the file's content, read a slice at a time.

    Gives the same digest as hashing the mirror, with memory bounded by the slices, so a
    damaged file is refused before its arrays are held in memory.
    """
    entries: list[tuple[str, str]] = []

    def attrs_into(h: "hashlib._Hash", obj, path: str) -> None:
        for key in sorted(obj.attrs):
            if path == "/" and key == _CHECKSUM_ATTR:
                continue
            h.update(key.encode("utf-8") + b"\0" + _canonical_attr(read_attr(obj, key)) + b"\0")

    def visit(group: h5py.Group, path: str) -> None:
        h = hashlib.sha256()
        attrs_into(h, group, path)
        h.update(b"G")
        entries.append((path, h.hexdigest()))
        for name in group:
            child = path.rstrip("/") + "/" + name
            obj = group[name]
            if isinstance(obj, h5py.Group):
                visit(obj, child)
                continue
            info = infos[child]
            h = hashlib.sha256()
            attrs_into(h, obj, child)
            h.update(b"D")
            h.update(repr(info.shape).encode())
            if info.text:
                h.update(b"|str")
            else:
                h.update(np.dtype(info.dtype).str.encode())
            pieces = (slice(None),) if not info.shape else _row_slices(info)
            for sl in pieces:
                if info.text:
                    _hash_strings(h, read_text(obj, text_budget, sl).ravel())
                else:
                    part = np.asarray(obj[()] if not info.shape else obj[sl])
                    h.update(np.ascontiguousarray(part).reshape(-1).view(np.uint8))
            entries.append((child, h.hexdigest()))

    visit(f, "/")
    return _combine_digests(entries)


def _json_doc(f: h5py.File, name: str, text_budget: int) -> Any:
    ds = f.get(name)
    return None if ds is None else _loads(str(read_text(ds, text_budget)[()]))


def _check_v1(f: h5py.File, infos: dict[str, DatasetInfo], text_budget: int) -> None:
    """Shapes and types every format-1 dataset must have, checked before values are read.

    The embedded data fix the rows ``n`` (or patients ``N``), steps ``T`` and features
    ``D``; the settings fix the map's ``K`` nodes; the history fixes its rows. Every
    other dataset of those parts must agree, so no declared size runs away on its own.
    """

    def fail(what: str):
        raise UnsafeFile(what)

    def expect(path: str, shape: tuple | None = None, kinds: str | None = None, text: bool | None = None):
        info = infos.get(path)
        if info is None:
            return None
        if shape is not None and info.shape != shape:
            fail(f"{path} has shape {info.shape}, expected {shape}")
        if text is not None and info.text != text:
            fail(f"{path} should {'' if text else 'not '}hold text")
        if kinds is not None and (info.text or info.dtype.kind not in kinds):
            fail(f"{path} has type {info.dtype}, which this format never writes there")
        return info

    for path, info in infos.items():
        if path.startswith("/json/") and (not info.text or info.shape != ()):
            fail(f"{path} should be one JSON text")
    if "/json/config" not in infos:
        fail("/json/config (the settings) is missing")
    hist = f.get("history")
    if not isinstance(hist, h5py.Group) or "n_rows" not in hist.attrs:
        fail("/history (the loss history) is missing")
    n_rows = hist.attrs["n_rows"]
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 0:
        fail("/history has no valid number of rows")
    columns = [p for p in infos if p.startswith(("/history/values/", "/history/present/"))]
    if not columns and n_rows > 10_000:
        fail(f"/history declares {int(n_rows)} rows without any column")
    for path in columns:
        expect(path, shape=(int(n_rows),), kinds="b" if path.startswith("/history/present/") else None)
    values = infos.get("/dataset/values")
    if "dataset" in f:
        if values is None or len(values.shape) not in (2, 3):
            fail("/dataset/values should be (rows, features) or (patients, steps, features)")
        expect("/dataset/values", kinds="f")
        shape = values.shape
        rows, d = shape[:-1], shape[-1]
        expect("/dataset/mask", shape=shape, kinds="b")
        if "/dataset/mask" not in infos:
            fail("/dataset/mask is missing")
        for name in ("feature_names", "units"):
            expect(f"/dataset/{name}", shape=(d,), text=True)
        expect("/dataset/ids", shape=rows[:1])
        expect("/dataset/lengths", shape=rows[:1] if len(rows) == 2 else (-1,), kinds="iu")
        expect("/dataset/starts", shape=rows[:1] if len(rows) == 2 else (-1,), kinds="iu")
        expect("/dataset/times", shape=rows if len(rows) == 2 else (-1,), kinds="f")
        expect("/dataset/meta", shape=(), text=True)
        for path in infos:
            if path.startswith("/dataset/labels/"):
                expect(path, shape=rows)
    config = _json_doc(f, "json/config", text_budget)
    grid = config.get("grid") if isinstance(config, dict) else None
    k = None
    if isinstance(grid, dict) and isinstance(grid.get("height"), int) and isinstance(grid.get("width"), int):
        k = grid["height"] * grid["width"]
    rows = values.shape[:-1] if "dataset" in f else None
    for name, extra in (("bmu", 0), ("next_node_pred", 0), ("proba", 1)):
        info = infos.get(f"/assignments/{name}")
        if info is None:
            continue
        want_rank = (len(rows) if rows is not None else len(info.shape) - extra) + extra
        if len(info.shape) != want_rank or (rows is not None and info.shape[:len(rows)] != rows):
            fail(f"/assignments/{name} has shape {info.shape}, which does not fit the data {rows}")
        if extra and k is not None and info.shape[-1] != k:
            fail(f"/assignments/{name} has {info.shape[-1]} nodes, but the map has {k}")
    declared = sum(info.nbytes for info in infos.values())
    budget = _memory_budget()
    if declared > budget:
        fail(f"opening it would take {declared / 2**30:.1f} GB of memory, more than this computer can spare "
             f"({budget / 2**30:.1f} GB)")


# What each format version's datasets may declare, checked before anything is read.
_CHECKS: dict[int, Callable[[h5py.File, dict[str, DatasetInfo], int], None]] = {1: _check_v1}


# --------------------------------------------------------------------------- save/load
def _now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def save_project(path: str | os.PathLike, project: Project, *, embed_data: bool = True) -> Path:
    """Write ``project`` to ``path`` atomically.

    Parameters
    ----------
    path : str or path-like
        Target file (conventionally ``*.h5``). Its folder must exist. An existing file is
        replaced only once the new one is completely on disk.
    project : Project
        What to save. On success its ``app_version``, ``created`` (kept when already set)
        and ``modified`` fields are updated, and ``data_ref`` is filled in when
        ``embed_data`` is False and a reference had to be computed.
    embed_data : bool
        Store the dataset inside the project (default). When False, only a reference to
        the source data is stored: ``project.data_ref`` if set, otherwise one computed by
        :func:`make_data_ref` from ``project.dataset.source`` when that names an existing
        file or folder.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        When a field holds something that cannot be stored (the message names it); nothing
        is written then.
    ValueError
        ``embed_data=False`` without any way to reference the data.
    ProjectFileError
        The file could not be written (folder missing, disk full, permission denied). The
        previous file at ``path``, if any, is left as it was.
    """
    path = Path(path)
    data_ref = project.data_ref
    if not embed_data and data_ref is None and project.dataset is not None:
        source = project.dataset.source
        if source and Path(source).exists():
            data_ref = make_data_ref(source)
        else:
            raise ValueError(
                "embed_data=False needs project.data_ref (see make_data_ref) or a dataset whose "
                f"source is an existing file; source is {source!r}"
            )
    modified = _now_iso()
    created = project.created or modified
    root = _encode_project(project, embed_data=embed_data, created=created, modified=modified,
                           data_ref=data_ref)
    root.attrs[_CHECKSUM_ATTR] = _content_digest(root)
    _atomic_write(path, root)
    project.app_version, project.created, project.modified = _APP_VERSION, created, modified
    project.data_ref = data_ref
    return path


def _atomic_write(path: Path, root: _Group) -> None:
    """Write the mirror to ``path`` so that it holds either the old or the new project.

    HDF5 builds the file in memory first; only plain writes of finished bytes then touch
    the disk. A full disk, a quota or a file-size limit therefore fails a plain
    ``os.write`` (one clean error, the temporary file removed) instead of failing inside
    HDF5 half-way through its own bookkeeping.
    """
    directory = path.parent
    if not directory.is_dir():
        raise ProjectFileError(f"{path}: cannot save, the folder {directory} does not exist")
    image = io.BytesIO()
    with h5py.File(image, "w", libver=_LIBVER, locking=False) as f:
        _write_group(f, root)
    data = image.getbuffer()
    try:
        _check_free_space(path, len(data))
        # The name matches the '*.h5.tmp*' ignore pattern and sorts next to the project;
        # temporary files that a killed save left are removed here.
        tmp, fd = new_temp(path)
        try:
            try:
                os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
            except (OSError, AttributeError):
                pass  # no previous file, or a file system without modes: keep the defaults
            _write_all(fd, data)
            _fsync_path(tmp)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        finally:
            os.close(fd)  # releases the temporary file's lock
    except OSError as exc:
        if isinstance(exc, ProjectFileError):
            raise
        raise ProjectFileError(f"{path}: could not save the project ({_write_problem(exc)}); {_kept(path)}") \
            from exc
    finally:
        data.release()
        image.close()
    sync_folder(directory)  # make the rename itself durable


def _write_all(fd: int, data: memoryview) -> None:
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:written + (8 << 20)])


def _check_free_space(path: Path, size: int) -> None:
    """Refuse before writing when the disk plainly lacks room for ``size`` bytes."""
    try:
        st = os.statvfs(path.parent)
    except (OSError, AttributeError):
        return
    free = st.f_bavail * st.f_frsize
    if free < size:
        raise ProjectFileError(f"{path}: could not save the project: the disk is full ({free / 1e6:.1f} MB free, "
                               f"{size / 1e6:.1f} MB needed); {_kept(path)}. Free some space and save again")


def _kept(path: Path) -> str:
    return "the previous version of the file is unchanged" if path.exists() else "nothing was written"


def _write_problem(exc: OSError) -> str:
    """What went wrong with a write: the system's words, then what it means for the user."""
    said = exc.strerror or _one_line(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{said}: the disk is full or the quota is used up; free some space and save again"
    if exc.errno == errno.EFBIG:
        return f"{said}: the file would be larger than this system allows"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{said}: no permission to write in this folder"
    return _one_line(exc)


@contextmanager
def _open_project(path: Path) -> Iterator[tuple[h5py.File, int, dict[str, DatasetInfo], int]]:
    """Open a project read-only after checking it is one we can read and that its
    structure holds nothing unsafe; yield (file, version, dataset infos, text budget)."""
    try:
        head = read_head(path, len(_HDF5_SIGNATURE))
        size = path.stat().st_size
    except FileNotFoundError:
        raise ProjectFileError(f"{path}: no such project file") from None
    except IsADirectoryError:
        raise ProjectFileError(f"{path}: is a folder, not a project file") from None
    except NotRegularFile as exc:
        raise ProjectFileError(f"{exc}; choose a project file (.h5)") from None
    except OSError as exc:
        raise ProjectFileError(f"{path}: cannot be opened ({_one_line(exc)})") from None
    if not looks_like_hdf5(head, path):
        raise ProjectFileError(f"{path}: not a DPSOM Studio project (not an HDF5 file)")
    try:
        f = h5py.File(path, "r", locking=False)
    except Exception as exc:
        raise ProjectFileError(
            f"{path}: the project file is damaged or incomplete and cannot be opened ({_one_line(exc)})"
        ) from None
    with f:
        try:
            fmt = _attr_str(f.attrs.get("format"))
            version = f.attrs.get("schema_version")
        except Exception as exc:
            raise ProjectFileError(f"{path}: the project file is damaged ({_one_line(exc)})") from None
        if fmt != FORMAT_NAME:
            raise ProjectFileError(f"{path}: an HDF5 file, but not a DPSOM Studio project")
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise ProjectFileError(f"{path}: the project file has no valid format version") from None
        if version > SCHEMA_VERSION:
            raise ProjectFileError(
                f"{path}: created by a newer DPSOM Studio (format {version}); update the app"
            )
        if version not in _LOADERS:
            raise ProjectFileError(f"{path}: unknown project format version {version}")
        try:
            infos = inspect_file(f, size)
            _CHECKS[version](f, infos, size)
        except UnsafeFile as exc:
            raise ProjectFileError(f"{path}: not opened: {exc}; DPSOM Studio never writes this") from None
        except Exception as exc:
            raise ProjectFileError(f"{path}: the project file is damaged ({_one_line(exc)})") from None
        yield f, version, infos, size


def load_project(path: str | os.PathLike) -> Project:
    """Read a project file written by :func:`save_project` (any format version so far).

    Before any array is read, the file's structure is checked (:func:`_open_project`):
    nothing outside the file is followed and no declared size exceeds what the file and
    the project's own dimensions allow. The content checksum is then verified a slice at
    a time, and only then are the values read.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Project
        With ``dataset`` None when the data was saved as a reference; use
        :func:`check_data_ref` to learn whether the referenced data is still there.

    Raises
    ------
    ProjectFileError
        One line naming the file: missing, not a regular file, not HDF5, foreign HDF5,
        truncated or damaged (including a content checksum mismatch), holding links,
        external or virtual storage or sizes a project never has, or written by a newer
        version of the app. The file is never modified.
    """
    path = Path(path)
    with _open_project(path) as (f, version, infos, size):
        stored = _attr_str(f.attrs.get(_CHECKSUM_ATTR))
        if stored is None:
            raise ProjectFileError(f"{path}: the project file is damaged (its content checksum is missing)")
        try:
            digest = _stream_digest(f, infos, size)
        except UnsafeFile as exc:
            raise ProjectFileError(f"{path}: not opened: {exc}; DPSOM Studio never writes this") from None
        except Exception as exc:
            raise ProjectFileError(f"{path}: the project file is damaged ({_one_line(exc)})") from None
        if stored != digest:
            raise ProjectFileError(
                f"{path}: the project file is damaged (content checksum mismatch); restore it from a backup"
            )
        try:
            root = _read_group(f, size)
        except Exception as exc:
            raise ProjectFileError(f"{path}: the project file is damaged ({_one_line(exc)})") from None
    try:
        return _LOADERS[version](root)
    except Exception as exc:
        raise ProjectFileError(
            f"{path}: the project file is damaged or inconsistent ({type(exc).__name__}: {_one_line(exc)})"
        ) from None


def project_summary(path: str | os.PathLike) -> dict[str, Any]:
    """What a project holds, read cheaply: root attributes, settings and sizes, no arrays.

    Meant for ``dpsom info`` and the recent-files list. The file's structure is checked as
    by :func:`load_project` (nothing outside the file is followed, no declared size
    beyond what the project allows); the content checksum is not verified here (that
    needs all the data); :func:`load_project` does. Text values longer than
    ``SUMMARY_TEXT_LIMIT`` characters are cut, ending in "…".

    Returns
    -------
    dict
        ``path``, ``file_size`` (bytes), ``format``, ``schema_version``, ``app_version``,
        ``created``, ``modified``, ``libraries`` (dict of versions), ``config`` (dict),
        ``data`` (None, or ``kind`` "table"/"series", ``shape``, ``n_features``, ``source``,
        ``labels``), ``data_ref`` (dict or None), ``trained`` (model state present),
        ``has_train_state``, ``history_rows`` and ``assignments`` (list of names).

    Raises
    ------
    ProjectFileError
        As :func:`load_project`, for files that cannot be opened, are not projects, or
        hold what a project never holds.
    """
    path = Path(path)
    with _open_project(path) as (f, version, infos, size):
        try:
            attrs = f.attrs
            libraries = _loads(_attr_str(attrs.get("libraries")) or "{}")
            out: dict[str, Any] = {
                "path": str(path),
                "file_size": size,
                "format": FORMAT_NAME,
                "schema_version": version,
                "app_version": _attr_str(attrs.get("app_version")),
                "created": _attr_str(attrs.get("created")),
                "modified": _attr_str(attrs.get("modified")),
                "libraries": libraries if isinstance(libraries, dict) else {},
            }
            out.update(_SUMMARIES[version](f, size))
        except Exception as exc:
            raise ProjectFileError(f"{path}: the project file is damaged ({_one_line(exc)})") from None
    return cut_text(out)


#: Longest text a summary shows of any one value.
SUMMARY_TEXT_LIMIT = 200


def cut_text(value: Any, limit: int = SUMMARY_TEXT_LIMIT, _depth: int = 0) -> Any:
    """``value`` with every string longer than ``limit`` cut (ending in "…"), and lists or
    dicts longer than ``limit`` items shortened, recursively, for showing to a person."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if _depth > 20:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())
        out = {cut_text(str(k), limit): cut_text(v, limit, _depth + 1) for k, v in items[:limit]}
        if len(items) > limit:
            out["…"] = f"{len(items) - limit} more"
        return out
    if isinstance(value, (list, tuple)):
        out = [cut_text(v, limit, _depth + 1) for v in value[:limit]]
        if len(value) > limit:
            out.append(f"… {len(value) - limit} more")
        return tuple(out) if isinstance(value, tuple) else out
    return value


# ------------------------------------------------------------------------ data references
def _hash_source(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    if path.is_dir():
        # A folder of files (PhysioNet style): names and contents, in a stable order. Only
        # regular files count; pipes and devices inside are left out (never opened).
        files = sorted(p for p in path.rglob("*") if p.is_file())
        size = 0
        for p in files:
            rel = p.relative_to(path).as_posix().encode("utf-8")
            h.update(len(rel).to_bytes(8, "little") + rel)
            size += _hash_file_into(h, p)
        return h.hexdigest(), size
    size = _hash_file_into(h, path)
    return h.hexdigest(), size


def _hash_file_into(h: "hashlib._Hash", path: Path) -> int:
    size = 0
    fd = open_regular(path)  # a pipe or a device is refused here, never read
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size


def make_data_ref(path: str | os.PathLike) -> dict[str, Any]:
    """Describe a data file (or folder of files) so a project can refer to it.

    Parameters
    ----------
    path : str or path-like
        The source data: a regular file, or a folder whose regular files are all hashed.

    Returns
    -------
    dict
        ``{"path": absolute path (str), "sha256": hex digest (str), "size": bytes (int)}``.

    Raises
    ------
    OSError
        The path is missing or unreadable; ``NotRegularFile`` for a pipe or a device.
    """
    p = Path(path).resolve()
    digest, size = _hash_source(p)
    return {"path": str(p), "sha256": digest, "size": size}


def data_ref_path(project: Project, *, base_dir: str | os.PathLike | None = None) -> Path | None:
    """The one path a project's data reference names: the path that
    :func:`check_data_ref` verifies and the only one the data may be read from.

    A relative reference is resolved against ``base_dir`` (the project's folder). None
    when the project has no reference.
    """
    ref = project.data_ref
    if ref is None:
        return None
    if not isinstance(ref, dict) or not isinstance(ref.get("path"), str) or not ref["path"]:
        raise ProjectFileError("the project's data reference names no file")
    p = Path(ref["path"])
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def check_data_ref(project: Project, *, base_dir: str | os.PathLike | None = None) -> str | None:
    """Say whether the data a project refers to is still where it was, and unchanged.

    Parameters
    ----------
    project : Project
        A loaded project; only ``project.data_ref`` is used.
    base_dir : str or path-like, optional
        Folder that a relative reference path is resolved against (usually the project's
        folder); the current folder otherwise.

    Returns
    -------
    str or None
        None when there is no reference or the data matches it; otherwise one sentence
        for the user saying what is wrong and what to do. A pipe, a device or anything
        else that is not a regular file (or a folder of them) is reported, never read.
    """
    try:
        p = data_ref_path(project, base_dir=base_dir)
    except ProjectFileError as exc:
        return f"{exc}; load the data again"
    if p is None:
        return None
    ref = project.data_ref
    if not p.exists():
        return f"the data {p} referenced by this project is missing; locate it, or load the data again"
    try:
        expected = int(ref.get("size", -1))
    except (TypeError, ValueError):
        expected = -1
    try:
        if p.is_file() and p.stat().st_size != expected:
            return f"the data {p} has changed since the project was saved (different size)"
        digest, size = _hash_source(p)
    except NotRegularFile as exc:
        return f"the data {p} referenced by this project is not a regular file ({exc.kind}); locate the data file"
    except OSError as exc:
        return f"the data {p} referenced by this project cannot be read ({_one_line(exc)})"
    if size != expected or digest != ref.get("sha256"):
        return f"the data {p} has changed since the project was saved (different contents)"
    return None
