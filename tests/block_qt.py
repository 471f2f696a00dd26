"""pytest plugin that makes Qt unimportable, as on a machine where Qt is not installed.

Used by ``make test-core-without-qt``: ``pytest -p block_qt tests/core tests/cli`` proves the
engine and the command line need neither PySide6 nor pyqtgraph.
"""

import importlib.abc
import sys

BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "dpsom_gui")


class _QtBlocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (Qt is blocked in this test run)", name=name)
        return None


sys.meta_path.insert(0, _QtBlocker())
