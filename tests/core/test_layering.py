"""``core`` stands alone: importing all of it loads no Qt and no GUI code."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib, pkgutil, sys
import core
for mod in pkgutil.walk_packages(core.__path__, "core."):
    importlib.import_module(mod.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph", "dpsom_gui"))
print(len([m for m in sys.modules if m.startswith("core.")]), bad)
"""


def test_importing_every_core_module_loads_no_qt():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    count, bad = res.stdout.strip().split(" ", 1)
    assert int(count) > 20
    assert bad == "[]"


def test_no_core_source_mentions_qt_imports():
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                    q in stripped.split("#")[0] for q in ("PySide6", "pyqtgraph", "dpsom_gui", "shiboken6")):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []
