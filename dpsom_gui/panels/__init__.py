"""Widgets with controls: the start page and the training panel."""
