"""Test setup shared by every suite.

Qt must run headless, so the platform is chosen here, before any test module can import Qt.
This file itself never imports Qt: the core suite has to run where Qt is not installed.
"""

import os
import sys
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"

# Let the suites run from a plain source checkout as well as from an installed package.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
