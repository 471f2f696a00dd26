"""Project and cohort files read as hostile files: nothing outside the file is followed,
no declared size is allocated before it is checked, and broken models are refused.

Every altered file carries a valid content checksum, as a crafted file would; the
builders live in benchmarks/hostile_files.py, which also measures the command line.
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

from benchmarks import hostile_files as hostile
from core.config import make_config
from core.errors import InputError, ProjectFileError
from core.io import project_h5
from core.io.cohort_h5 import Cohort, is_cohort_file, write_cohort
from core.io.project_h5 import Project, load_project, project_summary, save_project


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A small trained DPSOM project, saved as the app saves it (data embedded)."""
    return hostile.trained_project(tmp_path_factory.mktemp("good"))


def refused(call, *words) -> str:
    """Run ``call``; it must raise ProjectFileError with one line holding every word."""
    with pytest.raises(ProjectFileError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


def peak_mib(call) -> float:
    """Peak memory traced while ``call`` runs (numpy's buffers included), in MiB."""
    tracemalloc.start()
    try:
        try:
            call()
        except (ProjectFileError, InputError):
            pass
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def small_project(**fields) -> Project:
    return Project(config=make_config("dpsom", "quick", **{"grid.height": 3, "grid.width": 3}).to_dict(),
                   **fields)


# ------------------------------------------------------------- nothing outside the file
def test_external_raw_storage_is_refused_before_reading(good, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 100)
    bad = hostile.external_ids(good, tmp_path / "bad.h5", secret=str(secret))
    for call in (lambda: load_project(bad), lambda: project_summary(bad)):
        refused(call, "bad.h5", "/dataset/ids", "outside", "secret.txt")


def test_virtual_datasets_are_refused(good, tmp_path):
    bad = hostile.virtual_values(good, tmp_path / "bad.h5")
    for call in (lambda: load_project(bad), lambda: project_summary(bad)):
        refused(call, "bad.h5", "/dataset/values", "virtual")


def test_links_to_other_files_are_not_followed_by_load_or_summary(good, tmp_path):
    bad = hostile.external_link(good, tmp_path / "bad.h5")
    assert project_summary(good)["config"]["model"] == "dpsom"
    for call in (lambda: load_project(bad), lambda: project_summary(bad)):
        refused(call, "bad.h5", "/json/config", "another file")
    soft = hostile.soft_link(good, tmp_path / "soft.h5")
    for call in (lambda: load_project(soft), lambda: project_summary(soft)):
        refused(call, "soft.h5", "/json/warnings", "link")


def test_an_object_reached_twice_is_refused(tmp_path):
    path = tmp_path / "p.h5"
    save_project(path, small_project(model_state={"w": np.arange(4.0)}))
    hostile.alter(path, path, lambda f: f.__setitem__("model_state/again", f["model_state/w"]))
    refused(lambda: load_project(path), "more than one link")


def test_unknown_filters_and_types_are_refused(tmp_path):
    path = tmp_path / "p.h5"
    save_project(path, small_project(model_state={"w": np.arange(4.0)}))

    def compound(f):
        del f["model_state/w"]
        f.create_dataset("model_state/w", data=np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]))
    bad = hostile.alter(path, tmp_path / "compound.h5", compound)
    refused(lambda: load_project(bad), "/model_state/w", "data type")


# --------------------------------------------------------- declared sizes, before reading
def test_a_declared_size_the_file_cannot_hold_is_refused(tmp_path):
    path = tmp_path / "p.h5"
    save_project(path, small_project(model_state={"w": np.arange(4.0)}))

    def inflate(f):
        del f["model_state/w"]
        ds = f.create_dataset("model_state/w", shape=(4_000_000,), dtype=np.float64, chunks=(65536,),
                              compression="gzip")
        ds.attrs["kind"] = "array"
    bad = hostile.alter(path, tmp_path / "inflated.h5", inflate)
    refused(lambda: load_project(bad), "/model_state/w", "declares shape (4000000,)")


def test_huge_declared_data_is_refused_with_little_memory(good, tmp_path):
    bad = hostile.huge_declared(good, tmp_path / "huge.h5")
    assert bad.stat().st_size < 3 << 20
    assert peak_mib(lambda: refused(lambda: load_project(bad), "declares shape (50000000, 3)")) < 20


def test_history_rows_are_checked_before_any_row_is_made(tmp_path):
    path = tmp_path / "p.h5"
    save_project(path, small_project(history=[{"step": i, "total": 1.0 / (i + 1)} for i in range(3)]))
    bad = hostile.alter(path, tmp_path / "rows.h5", lambda f: f["history"].attrs.__setitem__("n_rows", 2_000_000))
    assert peak_mib(lambda: refused(lambda: load_project(bad), "/history/", "shape (3,)")) < 20


def test_assignments_must_fit_the_data_and_the_map(good, tmp_path):
    bad = hostile.short_assignments(good, tmp_path / "short.h5")
    refused(lambda: load_project(bad), "/assignments/", "does not fit the data")

    def other_map(f):
        proba = f["assignments/proba"][()]
        del f["assignments/proba"]
        ds = f.create_dataset("assignments/proba", data=proba[:, :5])
        ds.attrs["kind"] = "array"
    bad = hostile.alter(good, tmp_path / "nodes.h5", other_map)
    refused(lambda: load_project(bad), "/assignments/proba", "5 nodes", "has 9")


def test_data_shapes_must_agree_before_reading(good, tmp_path):
    def wider_mask(f):
        mask = f["dataset/mask"][()]
        del f["dataset/mask"]
        f.create_dataset("dataset/mask", data=np.concatenate([mask, mask], axis=1))
    bad = hostile.alter(good, tmp_path / "mask.h5", wider_mask)
    refused(lambda: load_project(bad), "/dataset/mask", "expected")


def test_a_project_larger_than_memory_allows_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "p.h5"
    save_project(path, small_project(model_state={"w": np.zeros(300_000)}))
    monkeypatch.setattr(project_h5, "_memory_budget", lambda: 1 << 20)
    refused(lambda: load_project(path), "memory", "GB")


def test_the_checksum_is_verified_without_holding_the_arrays(tmp_path):
    path = tmp_path / "p.h5"
    weights = np.random.default_rng(0).standard_normal(7_500_000).astype(np.float32)  # 30 MB
    save_project(path, small_project(model_state={"w": weights}))
    with h5py.File(path, "r+", locking=False) as f:
        f["model_state/w"][123] = 0.5  # damage without resealing
    message = refused(lambda: load_project(path), "checksum mismatch")
    assert "p.h5" in message
    assert peak_mib(lambda: load_project(path)) < 20


def test_text_cells_cannot_outgrow_the_file(tmp_path):
    path = tmp_path / "p.h5"
    save_project(path, small_project(warnings=["x"]))
    with h5py.File(path, "r", locking=False) as f:
        ds = f["json/config"]
        with pytest.raises(project_h5.UnsafeFile, match="more text"):
            project_h5.read_text(ds, 10)


# ------------------------------------------------------------------------- cohort files
def _cohort(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    return write_cohort(tmp_path / "c.h5", x, np.ones_like(x, dtype=bool), feature_names=["a", "b", "c"],
                        ids=[f"r{i}" for i in range(40)])


def test_cohort_files_refuse_external_storage_and_links(tmp_path):
    good = _cohort(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"x" * 4096)

    def external_x(f):
        shape = f["x"].shape
        del f["x"]
        f.create_dataset("x", shape=shape, dtype=np.float32, external=[(str(secret), 0, 4 * shape[0] * shape[1])])
    bad = hostile.alter(good, tmp_path / "ext.h5", external_x, seal=False)
    with pytest.raises(InputError, match="outside") as info:
        Cohort(bad)
    assert "ext.h5" in str(info.value) and "\n" not in str(info.value)

    def linked_ids(f):
        del f["ids"]
        f["ids"] = h5py.ExternalLink(str(secret), "/ids")
    bad = hostile.alter(good, tmp_path / "link.h5", linked_ids, seal=False)
    with pytest.raises(InputError, match="another file"):
        Cohort(bad)


def test_cohort_declared_sizes_are_checked(tmp_path):
    good = _cohort(tmp_path)

    def inflate(f):
        for name in ("x", "mask"):
            dtype = f[name].dtype
            del f[name]
            f.create_dataset(name, shape=(10**8, 3), dtype=dtype, chunks=(65536, 3), compression="lzf")
    bad = hostile.alter(good, tmp_path / "big.h5", inflate, seal=False)
    with pytest.raises(InputError, match="declares shape"):
        Cohort(bad)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_pipes_and_devices_are_refused_without_waiting(tmp_path):
    fifo = tmp_path / "p.h5"
    os.mkfifo(fifo)
    refused(lambda: load_project(fifo), "p.h5", "named pipe")
    refused(lambda: project_summary(fifo), "named pipe")
    with pytest.raises(InputError, match="named pipe"):
        Cohort(fifo)
    assert is_cohort_file(fifo) is False
    if os.path.exists("/dev/zero"):
        refused(lambda: load_project("/dev/zero"), "character device")


# ------------------------------------------------------------------- the data reference
def within(seconds: float, call):
    """Run ``call``; a call still running after ``seconds`` fails the test instead of hanging."""
    import signal

    def late(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, late)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_exactly_the_verified_file_is_read(good, tmp_path):
    from core.data.readers import read_data
    from core.workflow import ModelRun

    bad = hostile.swapped_reference(good, tmp_path / "swapped.h5")
    project = load_project(bad)
    assert project.metadata["read_options"]["path"].endswith("other.csv")
    run = ModelRun.from_project(project, base_dir=tmp_path)
    truth = read_data(tmp_path / "cohort.csv", format="table", id_col="subject", labels=["died"])
    np.testing.assert_array_equal(run.dataset.values, truth.values)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_reference_to_a_pipe_or_a_device_is_refused_at_once(good, tmp_path):
    from core.io.project_h5 import check_data_ref, make_data_ref
    from core.workflow import ModelRun

    bad = hostile.fifo_reference(good, tmp_path / "fifo.h5")
    project = load_project(bad)
    with pytest.raises(InputError, match="named pipe") as info:
        within(20, lambda: ModelRun.from_project(project, base_dir=tmp_path))
    assert "\n" not in str(info.value)
    with pytest.raises(OSError, match="named pipe"):
        within(20, lambda: make_data_ref(tmp_path / "data.fifo"))
    if os.path.exists("/dev/zero"):
        zero = load_project(hostile.dev_zero_reference(good, tmp_path / "zero.h5"))
        assert "character device" in within(20, lambda: check_data_ref(zero))


def test_embedded_projects_keep_only_the_file_name_of_their_source(tmp_path):
    folder = tmp_path / "home-of-alice"
    folder.mkdir()
    path = hostile.trained_project(folder)
    assert str(folder).encode() not in path.read_bytes()
    project = load_project(path)
    assert project.metadata["read_options"]["path"] == "cohort.csv"
    assert project.dataset.source == "cohort.csv"
    # Data that are only referenced keep their full path: it is how they are found again.
    ref = hostile.trained_project(folder, embed=False, name="ref.h5")
    assert load_project(ref).data_ref["path"] == str((folder / "cohort.csv").resolve())


# ---------------------------------------------------------------------- a full disk
_SAVE_WHEN_FULL = """
import resource, signal, sys
import numpy as np
from core.errors import ProjectFileError
from core.io.project_h5 import Project, save_project
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
weights = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)
try:
    save_project(sys.argv[1], Project(config={"v": "new"}, model_state={"w": weights}))
except ProjectFileError as exc:
    print(exc)
    sys.exit(2)
"""


def test_a_save_that_runs_out_of_room_keeps_the_old_project(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "p.h5"
    save_project(path, small_project(model_state={"w": np.arange(10.0)}))
    before = path.read_bytes()
    root = Path(hostile.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", _SAVE_WHEN_FULL, str(path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ""  # no HDF5 traceback, nothing printed besides the one line
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "p.h5" in lines[0] and "larger than this system allows" in lines[0], lines
    assert "unchanged" in lines[0]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]


def test_a_full_disk_is_refused_before_writing(tmp_path, monkeypatch):
    path = tmp_path / "p.h5"
    save_project(path, small_project())
    before = path.read_bytes()

    class Full:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(project_h5.os, "statvfs", lambda _: Full)
    weights = np.random.default_rng(1).standard_normal(100_000)
    refused(lambda: save_project(path, small_project(model_state={"w": weights})), "disk is full",
            "MB free", "unchanged")
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["p.h5"]


def test_temporary_files_of_killed_saves_are_removed_but_live_ones_kept(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "p.h5"
    stale = tmp_path / "p.h5.tmp0123abcd"  # what a save killed mid-write leaves (its lock died with it)
    stale.write_bytes(b"\x89HDF half")
    other = tmp_path / "p.h5.tmp-notes.txt"  # not a name a save makes: left alone
    other.write_text("mine")
    live = tmp_path / "p.h5.tmpfeedbeef"
    live.write_bytes(b"being written")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\n"
                               "f = open(sys.argv[1], 'rb+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True); time.sleep(60)", str(live)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        save_project(path, small_project())
        assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5", "p.h5.tmp-notes.txt", "p.h5.tmpfeedbeef"]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    save_project(path, small_project())  # the holder is gone: its file is stale now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5", "p.h5.tmp-notes.txt"]
    assert load_project(path).config["grid"]["height"] == 3


_COHORT_WHEN_FULL = """
import resource, signal, sys
import numpy as np
from core.errors import InputError
from core.io.cohort_h5 import write_cohort
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
x = np.random.default_rng(0).standard_normal((200_000, 4)).astype(np.float32)
try:
    write_cohort(sys.argv[1], x, np.ones_like(x, dtype=bool), feature_names=list("abcd"))
except InputError as exc:
    print(exc)
    sys.exit(2)
"""


def test_a_cohort_that_does_not_fit_stops_cleanly(tmp_path):
    import subprocess
    import sys

    root = Path(hostile.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", _COHORT_WHEN_FULL, str(tmp_path / "c.h5")], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert proc.returncode == 2 and proc.stderr == "", proc.stderr[-2000:]  # once: a segmentation fault
    assert "larger than this system allows" in proc.stdout and len(proc.stdout.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_an_overlong_json_text_is_not_decoded(tmp_path, monkeypatch):
    path = tmp_path / "p.h5"
    save_project(path, small_project(annotations={"node_names": {str(i): "x" * 50 for i in range(100)}}))
    assert load_project(path).annotations["node_names"]["7"] == "x" * 50
    monkeypatch.setattr(project_h5, "_MAX_JSON_TEXT", 1000)  # a list of numbers decodes to ~20x its text
    refused(lambda: load_project(path), "JSON text", "characters")


def test_an_overlong_attribute_is_refused_when_loading(tmp_path):
    path = tmp_path / "p.h5"
    save_project(path, small_project())
    bad = hostile.big_attribute(path, tmp_path / "attr.h5", megabytes=2)
    refused(lambda: load_project(bad), "attribute 'app_version'", "characters")
    assert len(project_summary(bad)["app_version"]) == project_h5.SUMMARY_TEXT_LIMIT  # described, cut


@pytest.mark.parametrize("bad", [["a", "b"], [1.0], [float("nan"), 0.7]])
def test_settings_no_run_could_save_are_refused_when_a_project_is_opened(tmp_path, bad):
    """A file whose settings were edited (checksum recomputed) is refused in one line at
    opening, not deep in training or inference."""
    from core.data.demo import demo_table
    from core.workflow import ModelRun

    cfg = make_config("dpsom", "quick").to_dict()
    cfg["train"]["refine_sigma"] = bad
    path = tmp_path / "edited.h5"
    save_project(path, Project(config=cfg, dataset=demo_table().subset(np.arange(20))))
    with pytest.raises(InputError, match="settings are not valid.*refine_sigma needs two positive"):
        ModelRun.from_project(load_project(path))
