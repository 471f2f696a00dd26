"""Resources are found from the source tree, a wheel and a bundle, and every icon draws."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from approval import image_pixels

from dpsom_gui import resources
from dpsom_gui.resources import MARKER, icon, resource_path, style_sheet


@pytest.fixture(autouse=True)
def _fresh_root():
    resources._root.cache_clear()
    yield
    resources._root.cache_clear()


def test_source_tree_resources_are_found():
    path = resource_path(MARKER)
    assert path.is_file() and path.parent.name == "resources"
    assert "QPushButton" in style_sheet()


def test_every_icon_renders_visible_pixels(qapp):
    names = sorted(p.stem for p in resource_path("icons").glob("*.svg"))
    assert {"open", "save", "save_as", "import", "start", "pause", "stop", "app"} <= set(names)
    for name in names:
        pixmap = icon(name).pixmap(32, 32)
        assert not pixmap.isNull(), name
        alpha = image_pixels(pixmap.toImage())[..., 3]
        assert (alpha > 0).mean() > 0.05, f"icon {name} is blank"


def test_a_bundle_folder_wins_when_it_has_the_marker(tmp_path, monkeypatch):
    bundle = tmp_path / "resources"
    bundle.mkdir()
    (bundle / MARKER).write_text("/* bundled */")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path(MARKER) == bundle / MARKER
    assert style_sheet() == "/* bundled */"


def test_a_folder_without_the_marker_is_ignored(tmp_path, monkeypatch):
    (tmp_path / "resources").mkdir()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path(MARKER) != tmp_path / "resources" / MARKER


def test_missing_resources_say_where_they_were_looked_for(monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "resource_roots", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(FileNotFoundError, match="looked in"):
        resource_path(MARKER)
    resources._root.cache_clear()
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match="missing"):
        resource_path("icons", "no_such_icon.svg")
    assert icon("no_such_icon").isNull()


def test_style_sheet_is_accepted_by_qt(qapp):
    from PySide6.QtWidgets import QPushButton

    qapp.setStyleSheet(style_sheet())
    try:
        button = QPushButton("Start")
        button.setProperty("primary", True)
        button.resize(100, 30)
        pixels = image_pixels(button.grab().toImage())
        # the primary button is drawn in the teal accent colour
        teal = np.all(np.abs(pixels[..., :3].astype(int) - [0x2E, 0x7D, 0x6B]) < 12, axis=2)
        assert teal.mean() > 0.3
    finally:
        qapp.setStyleSheet("")


# ------------------------------------------------------------------ the wheel
REPO = Path(__file__).resolve().parents[2]
# What a wheel build reads (setup.py copies resources/ and docs/ into the package).
BUILD_INPUTS = ["pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE", "README.md", "constraints.txt",
                "core", "dpsom_gui", "resources", "docs"]


def test_the_wheel_carries_the_resources_and_the_user_guide(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(item, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("dpsom_studio-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for path in (REPO / "resources").rglob("*"):
            if path.is_file():
                inside = "dpsom_gui/resources/" + path.relative_to(REPO / "resources").as_posix()
                assert archive.read(inside) == path.read_bytes(), inside
        archive.extractall(tmp_path / "site")
    assert "dpsom_gui/docs/user-guide.md" in names and "dpsom_gui/docs/images/main-window.png" in names
    assert not any(n.endswith("make_screenshots.py") for n in names)
    # The installed layout, imported in a fresh interpreter that cannot see the checkout.
    probe = ("from dpsom_gui.resources import resource_path; from dpsom_gui.dialogs.help_dialog import "
             "find_user_guide; print(resource_path('icons', 'app.svg')); print(find_user_guide())")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert result.returncode == 0, result.stderr[-2000:]
    icon_path, guide = result.stdout.split()
    site = (tmp_path / "site" / "dpsom_gui").resolve()
    assert Path(icon_path) == site / "resources" / "icons" / "app.svg"
    assert Path(guide) == site / "docs" / "user-guide.md"
