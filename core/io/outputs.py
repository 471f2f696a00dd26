"""Where results may be written: output-path checks, atomic text files and project locks.

Everything that writes a file the user named (the command line and the desktop app) asks
:func:`check_outputs` first, so that an output never replaces one of the inputs (also
through a symbolic or hard link), two outputs never name the same file, and a folder, a
missing folder or a read-only one gives one plain line instead of a traceback.
:func:`atomic_text` writes a file next to its target and renames it into place, sweeping
the leftovers of a write that was killed. :class:`ProjectLock` marks a project as being
trained by this process, with an operating-system lock that disappears with the process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import sys
import time
from pathlib import Path
from typing import IO, Iterator, Mapping

from ..errors import InputError

__all__ = ["OutputPathError", "ProjectBusy", "check_outputs", "check_unlocked", "writing", "atomic_text",
           "atomic_path", "sweep_stale_temps", "ProjectLock", "lock_holder", "lock_path", "unfinished_path"]

#: Temporary files are named ``<target name>.tmp<8 hex digits>`` (matched by ``*.tmp*``
#: ignore patterns and sorted next to their target).
_TMP_PATTERN = re.compile(r"\.tmp[0-9a-f]{8}$")
#: A temporary file younger than this is never swept: its writer may not have locked it yet.
_SWEEP_MIN_AGE_S = 5.0


class OutputPathError(InputError):
    """An output path that cannot or must not be written; the message is one line."""


class ProjectBusy(InputError):
    """The project is being trained by another process (see :class:`ProjectLock`)."""


# ------------------------------------------------------------------------------ checks
def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # follows symbolic links: a link to an input is that input
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _same_file(a: Path, b: Path) -> bool:
    ia, ib = _identity(a), _identity(b)
    if ia is not None and ib is not None:
        return ia == ib  # hard links share the inode
    # Not written yet: compare where the names lead.
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_outputs(outputs: Mapping[str, str | os.PathLike], inputs: Mapping[str, str | os.PathLike] | None = None,
                  ) -> dict[str, Path]:
    """Refuse output paths that would destroy an input or cannot be written.

    Parameters
    ----------
    outputs : mapping of str to path
        What each output is called for the user (``"--assignments"``, ``"the export file"``)
        to the path it will be written to. Empty or None paths are skipped.
    inputs : mapping of str to path, optional
        What each input is called (``"the project"``, ``"DATA"``) to its path. Inputs that
        are not files on disk (built-in demos) may be left out or given as None.

    Returns
    -------
    dict of str to pathlib.Path
        The outputs as paths.

    Raises
    ------
    OutputPathError
        One line naming the output (and the input or other output it clashes with) and what
        to do: an output that is an input (same name, a symbolic link or a hard link to it),
        two outputs naming one file, an output that is a folder, whose folder is missing, or
        whose folder cannot be written (read-only disk, no permission).
    """
    outs = {label: Path(p) for label, p in outputs.items() if p}
    ins = {label: Path(p) for label, p in (inputs or {}).items() if p}
    for label, out in outs.items():
        for in_label, src in ins.items():
            if _same_file(out, src):
                same = "" if str(out) == str(src) else f" ({out} leads to {src})"
                raise OutputPathError(f"{label} {out} is the same file as {in_label} {src}{same}; writing it would "
                                      "destroy the input: choose another file name", path=str(out))
    labels = list(outs)
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            if _same_file(outs[a], outs[b]):
                raise OutputPathError(f"{a} {outs[a]} and {b} {outs[b]} name the same file; give each output "
                                      "its own file name", path=str(outs[a]))
    for label, out in outs.items():
        if out.is_dir():
            raise OutputPathError(f"{label} names a folder; give a file name inside it, such as "
                                  f"{out / ('project.h5' if out.suffix == '.h5' else 'results.csv')}", path=str(out))
        folder = out.parent if str(out.parent) else Path(".")
        if not folder.is_dir():
            raise OutputPathError(f"the folder for {label} does not exist; create it first", path=str(out))
        # The file is written next to its target and renamed: the folder must take new files.
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputPathError(f"the folder for {label} cannot be written (read-only disk or no permission); "
                                  "choose another folder", path=str(out))
    return outs


@contextlib.contextmanager
def writing(label: str, path: str | os.PathLike) -> Iterator[None]:
    """Turn a failure to write ``path`` (disk full, read-only, no permission) into one line.

    Raises
    ------
    OutputPathError
        For any ``OSError`` raised inside the block that is not already a message for the user.
    """
    from ..errors import DPSOMError

    try:
        yield
    except DPSOMError:  # already one line for the user (a project file error, say)
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            what = "the disk is full; free some space or choose another disk"
        elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            what = "the disk or folder is read-only; choose another folder"
        elif exc.errno == errno.EISDIR:
            what = "it names a folder; give a file name"
        else:
            what = f"{(exc.strerror or type(exc).__name__).lower()}; choose another folder or file name"
        raise OutputPathError(f"{label} could not be written: {what} (nothing was changed)", path=str(path)) from None


# ----------------------------------------------------------------------- atomic files
#: Locks through ``msvcrt`` (Windows) or ``fcntl`` (everything else). A module constant so
#: that tests can run the Windows branch elsewhere, with a stand-in ``msvcrt``.
_WINDOWS = sys.platform == "win32"


def _try_lock(fd: int) -> bool:
    """Take an exclusive, non-blocking OS lock on an open file; False if another holds it."""
    if _WINDOWS:
        import msvcrt

        position = os.lseek(fd, 0, os.SEEK_CUR)  # the writer's place in the file
        try:
            os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        finally:
            os.lseek(fd, position, os.SEEK_SET)
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    if _WINDOWS:
        import msvcrt

        position = os.lseek(fd, 0, os.SEEK_CUR)
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.lseek(fd, position, os.SEEK_SET)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


#: Windows locks are mandatory: lock a byte past the pid so that others can still read it.
_WIN_LOCK_OFFSET = 1 << 20


def sweep_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files that a killed write of ``path`` left behind; return them.

    A writer holds an OS lock on its temporary file until it renames it, so a temporary
    file that can be locked (and is a few seconds old) belongs to a process that is gone.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not name.startswith(path.name) or not _TMP_PATTERN.search(name[len(path.name):]) \
                or len(name) != len(path.name) + 12:
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or now - entry.stat().st_mtime < _SWEEP_MIN_AGE_S:
                continue
            fd = os.open(entry.path, os.O_RDWR)
        except OSError:
            continue
        try:
            free = _try_lock(fd)
            if free and _WINDOWS:
                # Windows removes no file that a handle holds open, ours included. Its writer
                # would hold it open, so it cannot go while in use either.
                _unlock(fd)
                os.close(fd)
                fd = None
            if free:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
        finally:
            if fd is not None:
                os.close(fd)
    return removed


def _sync_folder(folder: Path) -> None:
    """Make a rename into ``folder`` durable, where the system allows it (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Open a text file that appears at ``path`` only once the block ends without error.

    The text goes to a temporary file in the same folder (locked while written, flushed to
    the disk), which then replaces ``path`` in one rename; on any error it is removed and
    ``path`` is left as it was. Temporary files of earlier, killed writes are swept first.
    """
    path = Path(path)
    sweep_stale_temps(path)
    tmp = path.parent / f"{path.name}.tmp{secrets.token_hex(4)}"
    fh = open(tmp, "x", encoding=encoding, newline="")
    try:
        _try_lock(fh.fileno())
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(tmp, path)
        _sync_folder(path.parent if str(path.parent) else Path("."))
    except BaseException:
        fh.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path`` for a writer that takes a file name (a picture
    library, say); it replaces ``path`` once the block ends without error.

    The temporary file is created and locked here, so that :func:`sweep_stale_temps` knows
    it is in use; the writer may truncate and rewrite it by name.
    """
    path = Path(path)
    sweep_stale_temps(path)
    tmp = path.parent / f"{path.name}.tmp{secrets.token_hex(4)}"
    fd: int | None = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
    try:
        if not _WINDOWS:
            _try_lock(fd)
        # On Windows the open handle alone keeps the sweep away (an open file cannot be
        # removed); a lock there is mandatory and would stop the writer's own handle.
        yield tmp
        if os.path.getsize(tmp) == 0:
            raise OSError(errno.EIO, "nothing was written", str(path))
        if _WINDOWS:  # nor can an open file be renamed
            os.close(fd)
            fd = None
        os.replace(tmp, path)
        _sync_folder(path.parent if str(path.parent) else Path("."))
    except BaseException:
        if fd is not None and _WINDOWS:
            os.close(fd)
            fd = None
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        if fd is not None:
            os.close(fd)


# ------------------------------------------------------------------------------ locks
def lock_path(project: str | os.PathLike) -> Path:
    """The lock file of a project: ``<project file name>.lock`` next to it."""
    project = Path(project)
    return project.with_name(project.name + ".lock")


def unfinished_path(project: str | os.PathLike) -> Path:
    """Where a new training run into an existing project keeps its checkpoints until it is done."""
    project = Path(project)
    return project.with_name(f"{project.stem}.unfinished{project.suffix or '.h5'}")


def _read_pid(path: Path) -> int | None:
    try:
        with open(path, "rb") as fh:
            text = fh.read(32).split(b"\n", 1)[0]
        return int(text) if text.strip() else None
    except (OSError, ValueError):
        return None


#: Locks this process holds, by lock-file path: a second lock of the same project from this
#: process (say the app saving what it trains) is not "another process".
_HELD: dict[str, "ProjectLock"] = {}


def _key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


class ProjectLock:
    """An exclusive lock on a project while this process trains it.

    The lock is an OS lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on a sidecar
    file ``<project>.lock`` holding this process's id; the operating system drops it when the
    process ends, however it ends, so a killed run never leaves a project locked.

    Parameters
    ----------
    project : path
        The project file (it need not exist yet).

    Raises
    ------
    ProjectBusy
        From :meth:`acquire` (and ``with``): another process holds the lock; the message
        names the project and that process's id.

    Examples
    --------
    >>> with ProjectLock("run.h5"):  # doctest: +SKIP
    ...     train_and_save()
    """

    def __init__(self, project: str | os.PathLike) -> None:
        self.project = Path(project)
        self.path = lock_path(self.project)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "ProjectLock":
        if self._fd is not None:
            return self
        key = _key(self.path)
        if key in _HELD:
            raise ProjectBusy("this project is already being trained in this program; wait for it to finish",
                              path=str(self.project))
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise OutputPathError(f"the project's folder cannot be written ({(exc.strerror or '').lower()}), so "
                                      "training could not save it; copy the project to a folder you can write to",
                                      path=str(self.project)) from None
            if not _try_lock(fd):
                os.close(fd)
                raise _busy(self.project, _read_pid(self.path))
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else sees; open the current one again.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        _HELD[key] = self
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _HELD.pop(_key(self.path), None)
        if not _WINDOWS:
            # Remove while still holding it, so nobody locks a file that is about to go.
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)
        if _WINDOWS:
            # Windows removes no file that a handle holds open, ours included: remove it
            # now, unless another process opened it meanwhile (it then locks this same file).
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def __enter__(self) -> "ProjectLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock must not outlive its object
        with contextlib.suppress(Exception):
            self.release()


def _busy(project: Path, pid: int | None) -> ProjectBusy:
    holder = f"process {pid}" if pid else "another process"
    return ProjectBusy(f"{holder} is training this project; wait for it to finish or stop it, then try again",
                       path=str(project))


def check_unlocked(project: str | os.PathLike) -> None:
    """Refuse to write ``project`` while another process trains it.

    Raises
    ------
    ProjectBusy
        Naming the project and the id of the process that holds its lock.
    """
    pid = lock_holder(project)
    if pid is not None:
        raise _busy(Path(project), pid)


def lock_holder(project: str | os.PathLike) -> int | None:
    """The id of another process that is training ``project`` (0 when unknown), else None.

    Locks held by this process do not count.
    """
    path = lock_path(project)
    if _key(path) in _HELD or not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        if _try_lock(fd):
            with contextlib.suppress(OSError):
                _unlock(fd)
            return None
    finally:
        os.close(fd)
    return _read_pid(path) or 0
