"""Finding the application's icons and style sheet, wherever the app runs from.

The files live in the repository's top-level ``resources/`` folder. :func:`resource_path` is
the only place that knows where that folder ends up:

1. a PyInstaller bundle unpacks it to ``sys._MEIPASS/resources`` (the spec adds it there);
2. a source checkout has it next to the ``dpsom_gui`` package;
3. an installed wheel carries it as package data in ``dpsom_gui/resources`` (``setup.py``
   copies the top-level folder there when the wheel is built; an editable install is case 2).

A folder only counts if it holds the marker file :data:`MARKER`, so an unrelated
``resources`` folder in site-packages is never picked up.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

__all__ = ["resource_path", "resource_roots", "icon", "style_sheet", "MARKER"]

#: A file every copy of the resources folder contains.
MARKER = "dpsom_studio.qss"


def resource_roots() -> list[Path]:
    """Candidate resource folders, most specific first (bundle, source tree, package data)."""
    roots = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        roots.append(Path(bundle) / "resources")
    here = Path(__file__).resolve().parent
    roots.append(here.parent / "resources")
    roots.append(here / "resources")
    return roots


@lru_cache(maxsize=1)
def _root() -> Path:
    tried = resource_roots()
    for root in tried:
        if (root / MARKER).is_file():
            return root
    raise FileNotFoundError(
        "DPSOM Studio cannot find its resources folder; looked in "
        + ", ".join(str(p) for p in tried)
        + ". Reinstall the application."
    )


def resource_path(*parts: str) -> Path:
    """Absolute path of a bundled resource, e.g. ``resource_path("icons", "open.svg")``.

    Raises
    ------
    FileNotFoundError
        When the resources folder or the file inside it is missing.
    """
    path = _root().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"resource {'/'.join(parts)} is missing from {_root()}")
    return path


def icon(name: str):
    """A ``QIcon`` from ``resources/icons/<name>.svg`` (an empty icon if it is missing)."""
    from PySide6.QtGui import QIcon

    try:
        return QIcon(str(resource_path("icons", f"{name}.svg")))
    except FileNotFoundError:
        return QIcon()


def style_sheet() -> str:
    """The application's Qt style sheet."""
    return resource_path(MARKER).read_text(encoding="utf-8")
