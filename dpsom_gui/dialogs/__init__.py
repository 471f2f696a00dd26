"""Dialogs: importing data, preferences and error messages."""
