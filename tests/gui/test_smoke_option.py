"""``dpsom-studio --smoke-test OUT.png``: the real application, in its own process, opens the
demo cohort, trains a tiny map, saves a picture of its window and exits with a status that an
installer's smoke test can trust."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FAILED = "dpsom-studio: smoke test failed"


def _run_app(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m dpsom_gui ARGS`` headless, with home, config and temporary folders
    inside ``tmp_path`` so that anything the app writes outside its own files shows up."""
    env = dict(os.environ)
    homes = {"HOME": "home", "XDG_CONFIG_HOME": "config", "XDG_DATA_HOME": "data",
             "XDG_CACHE_HOME": "cache", "TMPDIR": "tmp"}
    for name, folder in homes.items():
        (tmp_path / folder).mkdir(exist_ok=True)
        env[name] = str(tmp_path / folder)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "dpsom_gui", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _pixels(path: Path) -> np.ndarray:
    """The picture as ``(height, width)`` uint32 ARGB values."""
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull(), "the PNG does not load"
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    rows = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.bytesPerLine() // 4 * image.height())
    # Copy: the buffer belongs to the QImage, which is freed when this function returns.
    return rows.reshape(image.height(), image.bytesPerLine() // 4)[:, :image.width()].copy()


@pytest.mark.slow
def test_smoke_test_trains_the_demo_and_saves_a_picture_of_the_window(tmp_path, qapp):
    out = tmp_path / "shots" / "out.png"
    done = _run_app(tmp_path, "--smoke-test", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert FAILED not in done.stderr and "Traceback" not in done.stderr
    pixels = _pixels(out)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 400
    # A blank or single-colour window would mean nothing was drawn: the map, the curves and
    # the widgets give many colours.
    assert len(np.unique(pixels)) > 50
    # Preferences, log and autosaves went to a temporary folder, removed after a pass; the
    # user's own configuration and data folders were left alone.
    for folder in ("config", "data"):
        assert not any((tmp_path / folder).rglob("*")), f"the app left files in {folder}"
    assert not list((tmp_path / "tmp").glob("dpsom-smoke-*"))  # (torch keeps its own cache there)


def test_a_timeout_exits_1_with_one_line_on_stderr_and_in_the_log(tmp_path):
    settings = tmp_path / "private" / "settings.ini"
    out = tmp_path / "out.png"
    done = _run_app(tmp_path, "--settings", str(settings), "--smoke-test", str(out), "--smoke-timeout", "0.001")
    assert done.returncode == 1
    reported = [line for line in done.stderr.splitlines() if FAILED in line]
    assert len(reported) == 1 and "no result within 0.001 s" in reported[0], done.stderr[-3000:]
    assert done.stderr.rstrip().endswith(reported[0]) and "Traceback" not in done.stderr
    assert not out.exists()
    log = (tmp_path / "private" / "logs" / "dpsom-studio.log").read_text()
    assert "smoke test failed: no result within 0.001 s" in log
    assert "smoke test ended: status 1" in log  # the app got through its own shutdown


def test_help_lists_the_option_for_installers(tmp_path):
    done = _run_app(tmp_path, "--help", timeout=120)
    assert done.returncode == 0 and "--smoke-test" in done.stdout and "--smoke-timeout" in done.stdout
