"""`dpsom info/export/apply/resume` on hostile and broken project files: exit 2 and one
plain line naming the file and the broken part; nothing read from outside the project,
nothing long printed, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks import hostile_files as hostile
from core.cli import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    hostile.trained_project(folder)  # good.h5 next to cohort.csv
    return folder


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def commands(folder: Path, project: Path) -> dict[str, list]:
    out = folder / f"{project.stem}-out.csv"
    return {
        "info": ["info", project],
        "export": ["export", project, "--assignments", out],
        "apply": ["apply", project, folder / "cohort.csv", "--assignments", out, "--format", "table",
                  "--id-col", "subject", "--labels", "died"],
        "resume": ["resume", project, "--quiet", "--autosave", "0", "--max-steps", "4"],
    }


def refused_everywhere(capsys, folder: Path, project: Path, *words, only=("info", "export", "apply", "resume")):
    before = project.read_bytes()
    for name, argv in commands(folder, project).items():
        if name not in only:
            continue
        code, out, err = run_cli(capsys, *argv)
        lines = err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("dpsom: error: "), (name, err)
        for word in (project.name, *words):
            assert word in lines[0], (name, lines[0])
        assert not (folder / f"{project.stem}-out.csv").exists(), name
    assert project.read_bytes() == before  # refused, never rewritten


def test_external_storage_is_refused_and_never_printed(folder, tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n" * 50)
    bad = hostile.external_ids(folder / "good.h5", folder / "ext.h5", secret=str(secret))
    refused_everywhere(capsys, folder, bad, "/dataset/ids", "outside")


def test_info_does_not_follow_links_into_other_files(folder, capsys):
    bad = hostile.external_link(folder / "good.h5", folder / "link.h5")
    refused_everywhere(capsys, folder, bad, "/json/config", "another file", only=("info",))


def test_info_cuts_long_values(folder, capsys):
    bad = hostile.big_attribute(folder / "good.h5", folder / "big-attr.h5", megabytes=4)
    for argv in (["info", bad], ["info", bad, "--json"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, err
        assert "9" * 300 not in out and len(out) < 20_000
        assert "…" in out or "\\u2026" in out


@pytest.mark.parametrize("builder,words", [
    (hostile.nan_prototypes, ("prototypes", "NaN or infinite")),
    (hostile.inf_weight, ("weight '", "NaN or infinite")),
    (hostile.wrong_weight_shape, ("prototypes", "has shape", "where the settings need")),
])
def test_broken_models_exit_2_naming_the_broken_part(folder, capsys, builder, words):
    bad = builder(folder / "good.h5", folder / f"{builder.__name__}.h5")
    # `info` only describes the file (it reads no model), so it still answers.
    refused_everywhere(capsys, folder, bad, *words, only=("export", "apply", "resume"))


def test_saved_assignments_of_the_wrong_length(folder, capsys):
    bad = hostile.short_assignments(folder / "good.h5", folder / "short.h5")
    refused_everywhere(capsys, folder, bad, "/assignments/", only=("export", "apply"))
    # Referenced data: the length is only known once the data are read.
    ref = hostile.trained_project(folder, embed=False, name="ref.h5")
    bad = hostile.short_assignments(ref, folder / "short-ref.h5")
    refused_everywhere(capsys, folder, bad, "saved assignments", "shape", only=("export",))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_reference_to_a_pipe_exits_2_at_once(folder, capsys):
    bad = hostile.fifo_reference(folder / "good.h5", folder / "fifo.h5")
    refused_everywhere(capsys, folder, bad, "named pipe", only=("export",))


def test_a_declared_size_beyond_the_file_exits_2(folder, capsys):
    bad = hostile.huge_declared(folder / "good.h5", folder / "huge.h5")
    refused_everywhere(capsys, folder, bad, "declares shape", only=("info", "export"))


def test_a_full_disk_while_saving_exits_2_and_keeps_the_project(folder, tmp_path):
    import resource
    import signal
    import subprocess
    import sys

    project = tmp_path / "p.h5"
    project.write_bytes((folder / "good.h5").read_bytes())
    before = project.read_bytes()
    limit = len(before) // 2

    def small_files():  # in the child: files may not grow past `limit`; writes then fail (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    root = Path(hostile.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "core.cli", "resume", str(project), "--max-steps", "5", "--quiet",
                           "--autosave", "0"], capture_output=True, text=True, preexec_fn=small_files, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root), "DPSOM_LOG_DIR": str(tmp_path / "logs")})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("dpsom: error: ") and "p.h5" in lines[0], lines
    assert "could not save" in lines[0] and "unchanged" in lines[0]
    assert project.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]
