"""DPSOM Studio desktop application (PySide6 + pyqtgraph) on top of the ``core`` engine.

Start it with ``dpsom-studio`` or ``python -m dpsom_gui``.
"""
