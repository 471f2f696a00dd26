"""DPSOM Studio engine: deep probabilistic self-organising maps (DPSOM, T-DPSOM) in PyTorch.

``core`` never imports Qt; the desktop application in ``dpsom_gui`` is built on top of it.
"""

__version__ = "0.1.0"
