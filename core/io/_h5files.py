"""Small pieces both kinds of HDF5 file (projects and cohort files) need.

Recognising an HDF5 file from its first bytes without blocking on pipes or devices,
checking a file's structure before any value is read (nothing outside the file is
followed, no declared size exceeds what the file can hold), reading text attributes,
turning an error into one line for a message, and the temporary files of atomic writes.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from h5py import h5a, h5d, h5o, h5z

#: The first eight bytes of an HDF5 file without a user block.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def looks_like_hdf5(head: bytes, path: Path) -> bool:
    """Whether the file at ``path``, which starts with ``head``, is an HDF5 file.

    The signature usually opens the file; after a user block it sits further in, which
    h5py checks (any error there counts as "not HDF5").
    """
    if head == HDF5_SIGNATURE:
        return True
    try:
        return bool(h5py.is_hdf5(path))
    except Exception:
        return False


def attr_str(value: Any) -> str | None:
    """A text attribute as str (h5py returns bytes or str depending on how it was written)."""
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line error."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def fsync_path(path: Path, *, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to the disk."""
    fd = os.open(path, os.O_RDONLY if directory else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: Path) -> None:
    """Make a rename into ``folder`` durable, where the file system allows it."""
    try:
        fsync_path(folder, directory=True)
    except OSError:
        pass


# ------------------------------------------------------------------------ regular files
class NotRegularFile(OSError):
    """The path names something other than a regular file (a FIFO, a device, a socket).

    ``kind`` says what it is, in words ("a named pipe").
    """

    def __init__(self, path, kind: str) -> None:
        super().__init__(f"{path} is not a regular file ({kind})")
        self.kind = kind


def read_head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a regular file, without ever blocking.

    The file is opened non-blocking and checked with ``fstat`` on the same descriptor, so a
    FIFO or a device such as ``/dev/zero`` is refused instead of hanging or being read
    without end.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, NotRegularFile, OSError
    """
    fd = open_regular(path)
    try:
        return os.read(fd, n)
    finally:
        os.close(fd)


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path`` once it is known to be a regular file (symlinks
    to one are followed); see :func:`read_head` for the errors."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "is a folder", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
    except BaseException:
        os.close(fd)
        raise
    return fd


def file_kind(mode: int) -> str:
    """A person's name for the kind of file ``mode`` (from ``stat``) describes."""
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a plain file"


# ------------------------------------------------------------- temporary files of saves
# A save writes "<name>.tmp<8 hex digits>" next to its target and holds an exclusive
# lock on it while it exists; a lock that can be taken belongs to a save that died.
_TMP_SUFFIX = re.compile(r"\.tmp[0-9a-f]{8}$")


def new_temp(target: Path) -> tuple[Path, int]:
    """Create the temporary file of a save of ``target``, locked; return (path, fd).

    Stale temporary files of the same target, left by a save that was killed, are
    removed first. Close the descriptor (which releases the lock) only after the
    temporary file has been renamed or deleted.
    """
    remove_stale_temps(target)
    while True:
        tmp = target.parent / f"{target.name}.tmp{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
        except FileExistsError:
            continue
        _lock(fd, blocking=True)
        return tmp, fd


def room_problem(path: Path, nbytes: int) -> str | None:
    """Why ``nbytes`` more cannot be written to the file ``path`` (None when they can).

    Checks the free space of its disk and the process's file-size limit, so that a
    writer can stop cleanly before a write fails inside HDF5.
    """
    try:
        st = os.statvfs(path.parent)
        free = st.f_bavail * st.f_frsize
    except (OSError, AttributeError):
        free = None
    if free is not None and free < nbytes:
        return f"the disk is full ({free / 1e6:.1f} MB free, {nbytes / 1e6:.1f} MB more needed)"
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and path.stat().st_size + nbytes > limit:
            return "the file would be larger than this system allows"
    except (ImportError, OSError, ValueError):
        pass
    return None


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete ``<target>.tmp*`` files that no running save holds; return what was removed."""
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(target.name) or not _TMP_SUFFIX.fullmatch(name[len(target.name):]):
            continue
        stale = target.parent / name
        try:
            fd = os.open(stale, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode) or not _lock(fd, blocking=False):
                continue  # not ours, or a save in progress
            os.unlink(stale)
            removed.append(stale)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _lock(fd: int, *, blocking: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): never take another save's file for stale
        return blocking
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


# ------------------------------------------------------------------- structure checks
class UnsafeFile(ValueError):
    """A file holds something its format never contains and that is not read: links to
    other files, values stored outside the file, sizes its bytes cannot hold."""


#: Filters the app writes: deflate and shuffle (projects), LZF (cohorts), and the
#: Fletcher-32 checksum. Anything else would need a plugin the app does not ship.
_FILTERS = {h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE, h5z.FILTER_FLETCHER32, h5z.FILTER_LZF}
#: DEFLATE cannot expand data more than about 1032-fold (LZF far less), so a chunked
#: dataset whose declared size exceeds this multiple of its stored bytes is not real.
_MAX_EXPANSION = 1040
_MAX_OBJECTS = 50_000
_MAX_ATTRS = 256  # per object; the formats write at most a handful
_MAX_ATTR_CELLS = 4096
_MAX_ATTR_BYTES = 1 << 20
#: Memory a cell of variable-length text takes once read (the Python object and a short string).
TEXT_CELL_BYTES = 64


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset declares, learnt without reading its values."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    text: bool  # variable-length strings
    storage: int  # bytes it occupies in the file
    chunks: tuple[int, ...] | None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Memory its values take once read (text counted at :data:`TEXT_CELL_BYTES` a cell)."""
        return self.size * (TEXT_CELL_BYTES if self.text else self.dtype.itemsize)


def inspect_file(f: h5py.File, file_size: int) -> dict[str, DatasetInfo]:
    """Walk every object of an open file without reading any values; refuse what a file of
    ours never holds.

    Refused: links other than plain (hard) links, objects reached by more than one link,
    named datatypes, virtual datasets, datasets with external storage, filters other than
    deflate, shuffle, Fletcher-32 and LZF, datatypes other than numbers, bools, fixed
    bytes and variable-length strings, empty dataspaces, declared sizes the stored bytes
    cannot hold (see ``_MAX_EXPANSION``), more stored bytes than the file has,
    attributes that are not small scalars or short vectors, and more than
    ``_MAX_OBJECTS`` objects.

    Parameters
    ----------
    f : h5py.File
        Open read-only.
    file_size : int
        Size of the file in bytes.

    Returns
    -------
    dict of str to DatasetInfo
        Every dataset, by its path in the file ("/group/name").

    Raises
    ------
    UnsafeFile
        One line naming the object and what is wrong with it.
    """
    infos: dict[str, DatasetInfo] = {}
    seen = {h5o.get_info(f.id).addr}
    count = 0
    stored = 0
    _check_attrs(f, "/")
    stack: list[tuple[str, h5py.Group]] = [("/", f)]
    while stack:
        where, group = stack.pop()
        for name in group:
            count += 1
            if count > _MAX_OBJECTS:
                raise UnsafeFile(f"more than {_MAX_OBJECTS} objects, far more than this format holds")
            path = where.rstrip("/") + "/" + name
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise UnsafeFile(f"{path} is a link to another file ({link.filename}), which is not followed")
            if isinstance(link, h5py.SoftLink):
                raise UnsafeFile(f"{path} is a link to {link.path}, which this format never holds")
            if not isinstance(link, h5py.HardLink):
                raise UnsafeFile(f"{path} is a link of a kind this format never holds")
            obj = group[name]
            info = h5o.get_info(obj.id)
            if info.rc != 1 or info.addr in seen:
                raise UnsafeFile(f"{path} is reached by more than one link")
            seen.add(info.addr)
            _check_attrs(obj, path)
            if isinstance(obj, h5py.Group):
                stack.append((path, obj))
            elif isinstance(obj, h5py.Dataset):
                infos[path] = _inspect_dataset(obj, path)
                stored += infos[path].storage
            else:
                raise UnsafeFile(f"{path} is a named datatype, which this format never holds")
    if stored > file_size:
        raise UnsafeFile(f"its datasets claim {stored} stored bytes but the file has only {file_size}")
    return infos


def _allowed_dtype(dtype: np.dtype) -> bool:
    info = h5py.check_string_dtype(dtype)
    if info is not None:
        return info.length is None or dtype.kind == "S"
    if dtype.fields is not None or dtype.subdtype is not None:
        return False
    return dtype.kind in "biufc" or (dtype.kind == "S" and dtype.itemsize <= 1 << 16)


def _inspect_dataset(ds: h5py.Dataset, path: str) -> DatasetInfo:
    dcpl = ds.id.get_create_plist()
    layout = dcpl.get_layout()
    if layout == h5d.VIRTUAL:
        raise UnsafeFile(f"{path} is a virtual dataset (its values would be read from other files)")
    if dcpl.get_external_count():
        raise UnsafeFile(f"{path} keeps its values in a file outside the project ({_external_name(dcpl)})")
    if layout not in (h5d.CONTIGUOUS, h5d.CHUNKED, h5d.COMPACT):
        raise UnsafeFile(f"{path} has a storage layout this format never uses")
    for i in range(dcpl.get_nfilters()):
        code = dcpl.get_filter(i)[0]
        if code not in _FILTERS:
            raise UnsafeFile(f"{path} is encoded with filter {code}, which this format never uses")
    dtype = ds.dtype
    if not _allowed_dtype(dtype) or h5py.check_enum_dtype(dtype) is not None and dtype != np.bool_:
        raise UnsafeFile(f"{path} has a data type ({dtype}) this format never holds")
    if ds.shape is None:
        raise UnsafeFile(f"{path} has no dataspace")
    shape = tuple(int(s) for s in ds.shape)
    text = h5py.check_string_dtype(dtype) is not None and h5py.check_string_dtype(dtype).length is None
    storage = int(ds.id.get_storage_size())
    raw = math.prod(shape) * ds.id.get_type().get_size()  # bytes of the values as stored, uncompressed
    if layout == h5d.CHUNKED:
        if raw > _MAX_EXPANSION * storage:
            raise UnsafeFile(f"{path} declares shape {shape} ({raw} bytes) but stores only {storage} bytes")
    elif storage < raw:
        raise UnsafeFile(f"{path} declares shape {shape} ({raw} bytes) but stores only {storage} bytes")
    chunks = tuple(int(c) for c in ds.chunks) if ds.chunks else None
    return DatasetInfo(path, shape, dtype, text, storage, chunks)


def _external_name(dcpl) -> str:
    try:
        name = dcpl.get_external(0)[0]
        return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    except Exception:
        return "external storage"


def _check_attrs(obj, where: str) -> None:
    names = list(obj.attrs)
    if len(names) > _MAX_ATTRS:
        raise UnsafeFile(f"{where} has {len(names)} attributes, far more than this format writes")
    for name in names:
        aid = h5a.open(obj.id, name.encode("utf-8"))
        shape = aid.shape or ()
        if len(shape) > 1 or math.prod(shape) > _MAX_ATTR_CELLS:
            raise UnsafeFile(f"{where}: attribute {name!r} has shape {shape}; this format writes small values")
        if not _allowed_dtype(aid.dtype):
            raise UnsafeFile(f"{where}: attribute {name!r} has a data type ({aid.dtype}) this format never holds")
        if aid.get_storage_size() > _MAX_ATTR_BYTES:
            raise UnsafeFile(f"{where}: attribute {name!r} takes {aid.get_storage_size()} bytes; "
                             "this format writes small values")


def read_attr(obj, key: str) -> Any:
    """An attribute's value; text longer than any attribute the formats write is refused.

    (Its size is only known once read: HDF5 does not tell the length of a
    variable-length string beforehand. Refusing it here spares the copies that hashing
    and decoding it would make.)
    """
    value = obj.attrs[key]
    if isinstance(value, (str, bytes)) and len(value) > _MAX_ATTR_BYTES:
        raise UnsafeFile(f"{obj.name}: attribute {key!r} holds {len(value)} characters; this format writes "
                         "short values")
    return value


def read_text(ds: h5py.Dataset, budget: int, sl: slice = slice(None)) -> np.ndarray:
    """Variable-length UTF-8 strings of a dataset (rows ``sl``) as an object array of str,
    read a slice at a time; refuse when their text exceeds ``budget`` bytes.

    Every string of a file we wrote has its own bytes in the file, so the text of a file
    cannot exceed its size; a crafted file can make many cells point at the same bytes.
    """
    if ds.ndim == 0:
        text = ds.asstr()[()]
        if len(text) > budget:
            raise UnsafeFile(f"{ds.name} holds more text than the file has bytes")
        return np.array(text, dtype=object)
    start, stop, _ = sl.indices(ds.shape[0])
    out = np.empty((max(0, stop - start), *ds.shape[1:]), dtype=object)
    step = max(1, 4096 // max(1, math.prod(ds.shape[1:])))
    total = 0
    for a in range(start, stop, step):
        b = min(stop, a + step)
        part = ds.asstr()[a:b]
        total += sum(len(s) for s in part.ravel())
        if total > budget:
            raise UnsafeFile(f"{ds.name} holds more text than the file has bytes")
        out[a - start:b - start] = part
    return out
