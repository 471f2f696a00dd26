"""Small pieces both kinds of HDF5 file (projects and cohort files) need.

Recognising an HDF5 file from its first bytes, reading text attributes, turning an error
into one line for a message, and making a finished write durable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py

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
