"""The Windows branch of the project lock and the atomic writers, run here with a stand-in
for Windows: ``msvcrt`` byte-range locks and the rule that an open file cannot be removed.

What the stand-in models, as Windows does it:

* ``msvcrt.locking(fd, mode, n)`` locks ``n`` bytes from the handle's current position;
  a range overlapping one locked through another handle is refused (``LK_NBLCK``: at once
  with EACCES; ``LK_LOCK``: after retrying, with EDEADLOCK), also when that other handle
  belongs to the same program, and a handle cannot lock the same bytes twice;
* ``LK_UNLCK`` must name exactly a range this handle locked, or it fails;
* closing a handle drops its locks (so does the end of its process);
* a file that any handle holds open cannot be deleted or renamed (the C runtime opens files
  without delete sharing): ``PermissionError``.

Another process is played by a second handle whose lock this program has not registered.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import core.io.outputs as outputs
from core.io.outputs import ProjectBusy, ProjectLock, atomic_path, atomic_text, lock_holder, lock_path

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to see open handles")

ROOT = Path(__file__).resolve().parents[2]


def _identity(path_or_fd) -> tuple[int, int] | None:
    try:
        st = os.fstat(path_or_fd) if isinstance(path_or_fd, int) else os.stat(path_or_fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _open_handles(identity: tuple[int, int]) -> list[int]:
    """This process's open descriptors on the file ``identity``."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            st = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == identity:
            found.append(int(name))
    return found


class FakeWindows:
    """``msvcrt`` and the file-removal rules of Windows, for one test."""

    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self, monkeypatch) -> None:
        #: (device, inode) -> list of [start, stop, fd]
        self.locks: dict[tuple[int, int], list[list[int]]] = {}
        self.calls: list[tuple[int, int, int]] = []
        module = types.ModuleType("msvcrt")
        for name in ("LK_UNLCK", "LK_LOCK", "LK_NBLCK", "LK_RLCK", "LK_NBRLCK"):
            setattr(module, name, getattr(self, name))
        module.locking = self.locking
        self.module = module
        real_close, real_unlink, real_replace, real_rename = os.close, os.unlink, os.replace, os.rename

        def close(fd):
            self._drop(fd)
            real_close(fd)

        def refusing(real):
            def call(src, *rest, **kw):
                ident = _identity(src)
                if ident is not None and _open_handles(ident):
                    raise PermissionError(errno.EACCES, "The process cannot access the file because it is "
                                                        "being used by another process", str(src))
                return real(src, *rest, **kw)
            return call

        monkeypatch.setitem(sys.modules, "msvcrt", module)
        monkeypatch.setattr(outputs, "_WINDOWS", True)
        monkeypatch.setattr(os, "close", close)
        monkeypatch.setattr(os, "unlink", refusing(real_unlink))
        monkeypatch.setattr(os, "remove", refusing(real_unlink))
        monkeypatch.setattr(os, "replace", refusing(real_replace))
        monkeypatch.setattr(os, "rename", refusing(real_rename))

    def _drop(self, fd: int) -> None:
        for ranges in self.locks.values():
            ranges[:] = [r for r in ranges if r[2] != fd]

    def _live(self, ident: tuple[int, int]) -> list[list[int]]:
        # A handle closed without os.close (a file object's close) drops its locks too.
        ranges = self.locks.setdefault(ident, [])
        ranges[:] = [r for r in ranges if _identity(r[2]) == ident]
        return ranges

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        self.calls.append((fd, mode, nbytes))
        start = os.lseek(fd, 0, os.SEEK_CUR)
        stop = start + nbytes
        ranges = self._live(_identity(fd))
        if mode == self.LK_UNLCK:
            for r in ranges:
                if r == [start, stop, fd]:
                    ranges.remove(r)
                    return
            raise PermissionError(errno.EACCES, "Permission denied")
        if any(r[0] < stop and start < r[1] for r in ranges):
            if mode in (self.LK_LOCK, self.LK_RLCK):
                raise OSError(errno.EDEADLOCK, "Resource deadlock avoided")
            raise PermissionError(errno.EACCES, "Permission denied")
        ranges.append([start, stop, fd])

    def write_by_name(self, path: Path, data: bytes) -> None:
        """Write a file as a library given only its name does: through a handle of its own,
        refused where another handle holds a lock (Windows locks are mandatory)."""
        ranges = self._live(_identity(path)) if path.exists() else []
        if any(r[0] < len(data) for r in ranges):
            raise PermissionError(errno.EACCES, "The process cannot access the file because another process "
                                                "has locked a portion of the file", str(path))
        path.write_bytes(data)

    def holders(self, path: Path) -> list[int]:
        return [r[2] for r in self._live(_identity(path))]


@pytest.fixture
def windows(monkeypatch):
    fake = FakeWindows(monkeypatch)
    monkeypatch.setattr(outputs, "_HELD", {})
    return fake


def as_another_process(monkeypatch):
    """Forget this program's own locks, as a second process would not know them."""
    monkeypatch.setattr(outputs, "_HELD", {})


def test_the_stand_in_behaves_as_windows_does(tmp_path, windows):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    a, b = os.open(f, os.O_RDWR), os.open(f, os.O_RDWR)
    try:
        windows.module.locking(a, windows.LK_NBLCK, 1)
        with pytest.raises(PermissionError):
            windows.module.locking(b, windows.LK_NBLCK, 1)
        with pytest.raises(OSError):
            windows.module.locking(a, windows.LK_NBLCK, 1)  # no second lock of the same bytes
        with pytest.raises(PermissionError):
            windows.module.locking(b, windows.LK_UNLCK, 1)  # not this handle's lock
        with pytest.raises(PermissionError):
            os.unlink(f)
        os.lseek(b, 5, os.SEEK_SET)
        windows.module.locking(b, windows.LK_NBLCK, 1)  # other bytes are free
    finally:
        os.close(a)
        os.close(b)
    assert windows.holders(f) == []
    os.unlink(f)


def test_a_second_lock_is_refused_in_one_line_naming_the_holder(tmp_path, windows, monkeypatch):
    project = tmp_path / "run.h5"
    first = ProjectLock(project).acquire()
    assert windows.holders(lock_path(project)) == [first._fd]
    # The lock sits far past the process id, so the id stays readable to others.
    assert lock_path(project).read_text() == f"{os.getpid()}\n"
    assert any(mode == windows.LK_NBLCK for _, mode, _ in windows.calls)

    with pytest.raises(ProjectBusy, match="already being trained in this program"):
        ProjectLock(project).acquire()
    as_another_process(monkeypatch)
    second = ProjectLock(project)
    with pytest.raises(ProjectBusy) as refused:
        second.acquire()
    message = str(refused.value)
    assert "\n" not in message and str(project) in message and f"process {os.getpid()}" in message
    assert not second.held
    assert lock_holder(project) == os.getpid()
    with pytest.raises(ProjectBusy):
        outputs.check_unlocked(project)
    first.release()


def test_release_unlocks_and_a_later_lock_is_granted(tmp_path, windows, monkeypatch):
    project = tmp_path / "run.h5"
    with ProjectLock(project) as lock:
        fd = lock._fd
        assert windows.holders(lock_path(project)) == [fd]
    assert not lock.held and windows.holders(lock_path(project)) == []
    # Nobody holds the file open any more: it is gone, as on POSIX.
    assert not lock_path(project).exists()
    as_another_process(monkeypatch)
    assert lock_holder(project) is None
    with ProjectLock(project) as again:
        assert again.held and lock_path(project).read_text() == f"{os.getpid()}\n"


def test_a_lock_file_left_by_a_crashed_holder_does_not_block(tmp_path, windows):
    project = tmp_path / "run.h5"
    # A holder that dies without releasing: on Windows its lock goes with the process, its
    # file (and process id) stays. Run it as a real process under the same stand-in.
    child = (
        "import os, sys, types\n"
        "import core.io.outputs as o\n"
        "m = types.ModuleType('msvcrt'); m.LK_NBLCK, m.LK_UNLCK = 2, 0\n"
        "m.locking = lambda fd, mode, n: None\n"
        "sys.modules['msvcrt'] = m; o._WINDOWS = True\n"
        f"o.ProjectLock({str(project)!r}).acquire()\n"
        "os._exit(3)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    stale = lock_path(project)
    assert stale.exists() and stale.read_text().strip().isdigit()
    assert int(stale.read_text()) != os.getpid()

    assert lock_holder(project) is None
    outputs.check_unlocked(project)
    with ProjectLock(project) as lock:
        assert lock.held and stale.read_text() == f"{os.getpid()}\n"
    assert not stale.exists()


def test_atomic_writers_and_the_sweep_work_under_windows_rules(tmp_path, windows):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with atomic_text(target) as fh:
        fh.write("a,b\r\n" * 10)
    assert target.read_text() == "a,b\n" * 10

    picture = tmp_path / "map.png"
    with atomic_path(picture) as tmp:
        # The picture library writes the file by name, through a handle of its own, past the
        # byte an atomic writer locks.
        windows.write_by_name(tmp, b"\x89PNG" + b"\0" * (outputs._WIN_LOCK_OFFSET + 100))
    assert picture.stat().st_size == outputs._WIN_LOCK_OFFSET + 104
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png", "out.csv"]

    # A temporary file of a killed write is swept; one a live writer holds is not.
    stale = tmp_path / "out.csv.tmp0123abcd"
    stale.write_text("half")
    busy = tmp_path / "out.csv.tmp89abcdef"
    busy.write_text("being written")
    old = os.stat(stale).st_mtime - 60
    os.utime(stale, (old, old))
    os.utime(busy, (old, old))
    fd = os.open(busy, os.O_RDWR)
    try:
        assert outputs._try_lock(fd)
        removed = outputs.sweep_stale_temps(target)
    finally:
        os.close(fd)
    assert removed == [stale] and not stale.exists() and busy.exists()
