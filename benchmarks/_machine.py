"""What the benchmark scripts print about the machine they ran on."""

from __future__ import annotations

import os


def load_average(sep: str = " ") -> str:
    """The 1-, 5- and 15-minute load averages, or "n/a" where the system has none.

    Every figure in ``benchmarks/`` states the load, because the cores may be shared.
    """
    try:
        return sep.join(f"{v:.1f}" for v in os.getloadavg())
    except (OSError, AttributeError):  # AttributeError: no getloadavg on Windows
        return "n/a"
