"""Render the application icon (resources/icons/app.svg) into the raster formats installers need.

Usage: ``python packaging/make_icons.py OUT_DIR`` writes ``dpsom-studio.png`` (256 px),
``dpsom-studio.ico`` (Windows executable and installer) and ``dpsom-studio.icns`` (macOS
bundle). Qt's own image plugins write all three, so no extra build dependency is needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "resources" / "icons" / "app.svg"


def render(size: int):
    """The SVG icon drawn on a transparent ``size`` x ``size`` ARGB image."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {SOURCE} is not a valid SVG file")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: make_icons.py OUT_DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication, QImageWriter

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 - plugins need it
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    image = render(256)
    for suffix, fmt in (("png", b"png"), ("ico", b"ico"), ("icns", b"icns")):
        path = out / f"dpsom-studio.{suffix}"
        writer = QImageWriter(str(path), fmt)
        if not writer.write(image):
            print(f"make_icons: cannot write {path}: {writer.errorString()}", file=sys.stderr)
            return 1
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
