"""Output paths of ``dpsom``: never an input, never two at once, one line when unwritable;
an existing project kept until a new run completes; one training process per project."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.io.outputs import lock_path
from core.io.project_h5 import load_project

FAST = ["--quiet", "--autosave", "0"]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("dpsom: error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small table, and a project trained on it (3x3 map, a few steps)."""
    folder = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    df.insert(0, "pid", [f"P{i}" for i in range(120)])
    data = folder / "data.csv"
    df.to_csv(data, index=False)
    project = folder / "p.h5"
    assert main(["train", str(data), "--out", str(project), "--grid", "3x3", "--max-steps", "6", *FAST]) == 0
    return data, project


@pytest.fixture
def work(trained, tmp_path):
    """Copies of the data and the project in a fresh folder (tests may destroy them)."""
    data, project = trained
    d, p = tmp_path / "data.csv", tmp_path / "p.h5"
    d.write_bytes(data.read_bytes())
    p.write_bytes(project.read_bytes())
    return d, p


def test_export_onto_the_project_is_refused_and_the_project_survives(work, capsys):
    data, project = work
    before = digest(project)
    code, _, err = run_cli(capsys, "export", project, "--assignments", project)
    assert code == 2
    line = one_error_line(err)
    assert line.count(str(project)) >= 2 and "--assignments" in line and "PROJECT.h5" in line
    assert digest(project) == before and load_project(project).model_state is not None


def test_train_onto_its_data_is_refused(work, capsys):
    data, _ = work
    before = digest(data)
    code, _, err = run_cli(capsys, "train", data, "--out", data, *FAST)
    assert code == 2 and "DATA" in one_error_line(err)
    assert digest(data) == before


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_apply_onto_its_data_is_refused_also_through_links(work, capsys, how):
    data, project = work
    target = data
    if how == "symlink":
        target = data.with_name("link.csv")
        target.symlink_to(data)
    elif how == "hardlink":
        target = data.with_name("hard.csv")
        os.link(data, target)
    before = digest(data)
    code, _, err = run_cli(capsys, "apply", project, data, "--assignments", target)
    assert code == 2
    line = one_error_line(err)
    assert str(target) in line and str(data) in line and "destroy" in line
    assert digest(data) == before


def test_export_onto_the_data_the_project_was_read_from_is_refused(work, trained, capsys):
    data, project = trained  # the project records where its data came from
    before = digest(data)
    code, _, err = run_cli(capsys, "export", project, "--assignments", data)
    assert code == 2 and "data file" in one_error_line(err)
    assert digest(data) == before


def test_two_outputs_naming_one_file_are_refused(work, capsys, tmp_path):
    _, project = work
    out = tmp_path / "both.csv"
    code, _, err = run_cli(capsys, "export", project, "--assignments", out, "--nodes", out)
    assert code == 2
    line = one_error_line(err)
    assert "--assignments" in line and "--nodes" in line and "same file" in line
    assert not out.exists()
    # Also when one of them is a link to the other's file.
    out.write_text("keep")
    (tmp_path / "alias.csv").symlink_to(out)
    code, _, err = run_cli(capsys, "export", project, "--assignments", out, "--nodes", tmp_path / "alias.csv")
    assert code == 2 and out.read_text() == "keep"


@pytest.mark.parametrize("command", ["export", "apply"])
def test_a_folder_or_a_missing_folder_as_output_exits_2(work, capsys, tmp_path, command):
    data, project = work
    head = ["export", project] if command == "export" else ["apply", project, data]
    folder = tmp_path / "results"
    folder.mkdir()
    code, _, err = run_cli(capsys, *head, "--assignments", folder)
    assert code == 2 and "names a folder" in one_error_line(err)
    code, _, err = run_cli(capsys, *head, "--assignments", tmp_path / "nowhere" / "a.csv")
    assert code == 2 and "does not exist" in one_error_line(err)


@pytest.mark.parametrize("command", ["export", "apply"])
def test_a_read_only_disk_exits_2_and_leaves_nothing(work, capsys, tmp_path, monkeypatch, command):
    data, project = work
    head = ["export", project] if command == "export" else ["apply", project, data]
    out = tmp_path / "a.csv"

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(os, "replace", read_only)
    code, _, err = run_cli(capsys, *head, "--assignments", out)
    assert code == 2 and "read-only" in one_error_line(err)
    assert not out.exists() and not list(tmp_path.glob("a.csv.tmp*"))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_a_folder_without_write_permission_exits_2(work, capsys, tmp_path):
    data, project = work
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "export", project, "--assignments", locked / "a.csv")
    finally:
        locked.chmod(0o755)
    assert code == 2 and "cannot be written" in one_error_line(err)


def test_killed_training_into_an_existing_project_keeps_the_old_project(work, tmp_path):
    """SIGKILL after the first checkpoint of a new run: the old project is still there, intact."""
    data, project = work
    before = digest(project)
    unfinished = tmp_path / "p.unfinished.h5"
    cmd = [sys.executable, "-m", "core.cli", "train", str(data), "--out", str(project), "--grid", "3x3",
           "--epochs", "400", "--autosave", "0.2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not unfinished.exists() and digest(project) == before \
                and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5)  # a few more checkpoints
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert digest(project) == before, "the old project was replaced by the unfinished run"
    assert "kept unchanged until this run is complete" in err and str(unfinished) in err
    assert unfinished.exists(), "no checkpoint was written before the kill"
    step = load_project(unfinished).train_state["position"]["global_step"]
    assert step > 0
    assert not lock_path(project).exists() or lock_path(project).read_text().strip() == str(proc.pid)


def test_a_completed_run_replaces_the_old_project_and_removes_its_checkpoint(work, capsys, tmp_path):
    data, project = work
    old_steps = load_project(project).train_state["position"]["global_step"]
    code, out, err = run_cli(capsys, "train", data, "--out", project, "--grid", "3x3", "--max-steps", "9",
                             "--quiet", "--autosave", "0.001")
    assert code == 0, err
    assert "kept unchanged" in err
    assert load_project(project).train_state["position"]["global_step"] == 9 != old_steps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "p.h5"]


def test_a_second_resume_of_a_project_in_training_is_refused(work, capsys):
    """Two processes: the second one gets exit 2 and a line naming the project and the first's id."""
    data, project = work
    cmd = [sys.executable, "-m", "core.cli", "resume", str(project), "--epochs", "400", "--autosave", "0",
           "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, text=True)
    lock = lock_path(project)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if lock.exists() and lock.read_text().strip() == str(proc.pid):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        # (Step limits keep these short where nothing refuses them.)
        for argv in (["resume", project, "--max-steps", "7", *FAST],
                     ["train", data, "--out", project, "--grid", "3x3", "--max-steps", "2", *FAST]):
            code, _, err = run_cli(capsys, *argv)
            assert code == 2
            line = one_error_line(err)
            assert str(project) in line and f"process {proc.pid}" in line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    # The lock died with its process: the project trains again, and the temporary file of a
    # save the kill may have cut short is removed.
    stale = project.with_name(project.name + ".tmp0123abcd")
    stale.write_bytes(b"half a project")
    os.utime(stale, (time.time() - 60, time.time() - 60))
    code, _, err = run_cli(capsys, "resume", project, "--max-steps", "8", *FAST)
    assert code == 0, err
    assert not lock.exists() and not stale.exists()


def test_apply_streams_a_large_table_in_chunks_with_the_same_result(trained, tmp_path, capsys, monkeypatch):
    """Chunk by chunk (forced small here) gives the lines of the whole-file assignment, in order."""
    import core.data.readers.sources as readers
    from core.cli import _load
    from core.data.readers import read_data
    from core.io.export import assignments_frame

    _, project = trained
    rng = np.random.default_rng(7)
    n = 2600
    df = pd.DataFrame(rng.normal(size=(n, 4)), columns=["d", "b", "a", "c"])  # another column order
    df.insert(1, "pid", [f" P{i}" if i % 7 == 0 else f"P{i}" for i in range(n)])
    df.loc[5, "b"] = np.nan
    new = tmp_path / "new.csv"
    df.to_csv(new, index=False)
    _, run = _load(str(project))
    whole = read_data(new, id_col="pid")
    whole.values = whole.values[:, [whole.feature_names.index(f) for f in run.preprocessor.feature_names_]]
    whole.mask = ~np.isnan(whole.values)
    whole.feature_names = list(run.preprocessor.feature_names_)
    a = run.assignments(whole)
    expected = assignments_frame(bmu=a["bmu"], grid=run.grid, proba=a["proba"], dataset=whole)

    seen = []
    original = readers._TextSource.frames

    def frames(self, str_columns, progress):
        for chunk in original(self, str_columns, progress):
            seen.append(len(chunk))
            yield chunk

    import core.workflow as workflow

    assigned = []
    assign = workflow.ModelRun.assignments

    def recording(self, dataset=None):
        assigned.append(None if dataset is None else dataset.n_samples)
        return assign(self, dataset)

    monkeypatch.setattr(readers, "_CHUNK_CELLS", 1000)
    monkeypatch.setattr(readers._TextSource, "frames", frames)
    monkeypatch.setattr(workflow.ModelRun, "assignments", recording)
    out = tmp_path / "a.csv"
    code, stdout, err = run_cli(capsys, "apply", project, new, "--assignments", out, "--id-col", "pid")
    assert code == 0, err
    assert len(seen) >= 3 and f"wrote {n} assignments" in stdout
    assert assigned == seen  # one chunk at a time, never the whole file
    got = pd.read_csv(out, dtype={"pid": str}, keep_default_na=False)
    assert got["row"].tolist() == list(range(n))
    assert got["pid"].tolist() == [str(i) for i in expected["pid"]]  # ids as the whole-file reader gives them
    assert got["node"].tolist() == expected["node"].tolist()
    assert np.allclose(got["p_max"], expected["p_max"], atol=1e-6)
    raw = out.read_bytes()
    assert raw.startswith(b"row,pid,node,") and raw.count(b"\r\nrow,") == 0  # one header


def test_apply_stops_at_bad_text_in_a_later_chunk_and_writes_nothing(trained, tmp_path, capsys, monkeypatch):
    import core.data.readers.sources as readers

    _, project = trained
    rng = np.random.default_rng(8)
    df = pd.DataFrame(rng.normal(size=(2500, 4)).round(3).astype(object), columns=["a", "b", "c", "d"])
    df.loc[2300, "c"] = "oops"
    new = tmp_path / "bad.csv"
    df.to_csv(new, index=False)
    monkeypatch.setattr(readers, "_CHUNK_CELLS", 1000)
    out = tmp_path / "a.csv"
    code, _, err = run_cli(capsys, "apply", project, new, "--assignments", out)
    assert code == 2
    line = one_error_line(err)
    assert "line 2302" in line and "'c'" in line and "oops" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_resume_on_a_read_only_disk_exits_2_with_one_line(work, capsys, monkeypatch):
    _, project = work
    before = digest(project)
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    code, _, err = run_cli(capsys, "resume", project, "--max-steps", "8", *FAST)
    assert code == 2 and "cannot be written" in one_error_line(err) and str(project) in err
    assert digest(project) == before
