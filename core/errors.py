"""Exceptions the engine raises on purpose, each carrying a message meant for a person."""

from __future__ import annotations

__all__ = ["DPSOMError", "InputError", "NotFittedError", "TrainingDiverged", "ProjectFileError"]


class DPSOMError(Exception):
    """Base class: the message is complete and safe to show as it is."""


class InputError(DPSOMError, ValueError):
    """Bad input data or settings. The message names the file, row or column and what to do.

    Parameters
    ----------
    message : str
        One plain sentence (or two) for the user.
    path : str, optional
        File the problem is in.
    row, column : optional
        1-based line number and column name, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None,
                 column: str | None = None) -> None:
        self.path, self.row, self.column = path, row, column
        where = []
        if path:
            where.append(str(path))
        if row is not None:
            where.append(f"line {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class NotFittedError(DPSOMError, AttributeError):
    """The estimator was used before ``fit``."""


class TrainingDiverged(DPSOMError, RuntimeError):
    """A loss term or gradient became NaN or infinite; the last good state was kept."""

    def __init__(self, message: str, *, phase: str, term: str, step: int) -> None:
        self.phase, self.term, self.step = phase, term, step
        super().__init__(message)


class ProjectFileError(DPSOMError, OSError):
    """A project file is missing, corrupt, truncated, foreign or from a newer version."""
