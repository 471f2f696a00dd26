"""Test setup shared by every suite.

Qt must run headless, so the platform is chosen here, before any test module can import Qt.
This file itself never imports Qt: the core suite has to run where Qt is not installed.
"""

import os
import sys
from pathlib import Path

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"

# Let the suites run from a plain source checkout as well as from an installed package.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture
def one_thread():
    """Train on one thread: the small networks of the tests gain nothing from a second, and on
    a busy machine two threads ran the same training 3-6 times slower (119 s against 35 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
