"""Reader for IDX files, the format of MNIST and Fashion-MNIST (optionally gzip-compressed).

An IDX file starts with a 4-byte magic number: two zero bytes, a type code (0x08 unsigned
byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the number of
dimensions; then one big-endian uint32 per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dataset import Dataset

__all__ = ["read_idx", "read_idx_dataset", "IDX_TYPES"]

#: IDX type code -> big-endian numpy dtype.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_BYTES = 1 << 34  # 16 GiB: anything larger is a corrupt header


def _read_bytes(p: Path) -> bytes:
    with open(p, "rb") as f:
        head = f.read(2)
    try:
        if head == b"\x1f\x8b":
            with gzip.open(p, "rb") as f:
                return f.read()
        return p.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot decompress the file ({exc}); download it again",
                         path=str(p)) from None


def read_idx(path) -> np.ndarray:
    """Read one IDX file (images or labels) into a numpy array.

    Parameters
    ----------
    path : str or Path
        ``*-ubyte`` file, plain or gzip-compressed (detected from the content, not the name).

    Returns
    -------
    ndarray
        Shape from the header, e.g. ``(60000, 28, 28)`` uint8 for images or ``(60000,)``
        uint8 for labels; native byte order.

    Raises
    ------
    InputError
        Missing file, wrong magic number, unknown type code, or a size that does not match
        the header.

    Examples
    --------
    >>> images = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
    >>> images.shape, images.dtype                        # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found; check the path", path=str(p))
    data = _read_bytes(p)
    if len(data) < 4:
        raise InputError("too short to be an IDX file (no 4-byte magic number)", path=str(p))
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in IDX_TYPES:
        raise InputError(f"not an IDX file: magic number 0x{data[:4].hex()} should be "
                         "0x0000TTDD (type TT in 08,09,0B,0C,0D,0E; DD dimensions)", path=str(p))
    if ndim == 0:
        raise InputError("IDX header declares 0 dimensions", path=str(p))
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"IDX header declares {ndim} dimensions but the file ends inside the "
                         "header", path=str(p))
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if expected > _MAX_BYTES:
        raise InputError(f"IDX header declares an implausible shape {shape}", path=str(p))
    actual = len(data) - header
    if actual != expected:
        raise InputError(f"IDX header declares shape {shape} ({expected} bytes of data) but the "
                         f"file holds {actual}; the file is truncated or corrupt", path=str(p))
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def read_idx_dataset(images, labels=None, *, scale: bool = True) -> Dataset:
    """Images (and optional labels) as a table :class:`Dataset`, one flattened image per row.

    Parameters
    ----------
    images : str or Path
        IDX image file, shape (n, ...).
    labels : str or Path, optional
        IDX label file, shape (n,); stored as ``labels["label"]``.
    scale : bool
        Divide unsigned-byte pixels by 255 so values lie in [0, 1].

    Returns
    -------
    Dataset
        ``values`` (n, n_pixels) float32; features named ``px0..``.
    """
    x = read_idx(images)
    if x.ndim < 2:
        raise InputError(f"expected images (n, height, width); got shape {x.shape}",
                         path=str(images))
    flat = x.reshape(x.shape[0], -1).astype(np.float32)
    if scale and x.dtype == np.uint8:
        flat /= 255.0
    out_labels = {}
    if labels is not None:
        y = read_idx(labels)
        if y.shape != (x.shape[0],):
            raise InputError(f"{y.shape[0] if y.ndim else 0} labels for {x.shape[0]} images; use "
                             "the label file that belongs to the images", path=str(labels))
        out_labels["label"] = y.astype(np.float64)
    return Dataset(values=flat, mask=np.ones(flat.shape, dtype=bool),
                   feature_names=[f"px{i}" for i in range(flat.shape[1])], labels=out_labels,
                   source=str(images))
