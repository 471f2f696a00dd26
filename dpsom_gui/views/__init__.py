"""Widgets that draw: the SOM map, loss curves, data tables and patient plots.

Views never compute results and never call each other; they are given arrays to show
(by the session or the main window) and redraw at most at a fixed rate.
"""
