"""Checks on imported data: each either refuses with an :class:`InputError` or returns a warning.

The readers call these after parsing and before building a :class:`Dataset`. Every function
here is pure: it looks at arrays and returns what it found, so the readers stay responsible
for the wording of "where" (file and line) through a ``locate`` callable that turns a record
index (0-based data row in file order) into a 1-based line number.

Nothing is dropped silently: whatever a check removes or merges is counted in the warning it
returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputError

__all__ = [
    "check_grid_size",
    "check_finite",
    "check_times",
    "check_time_span",
    "count_backwards",
    "constant_columns",
    "never_measured",
    "single_observation_patients",
    "describe_mix",
    "MAX_STEPS_PER_PATIENT",
]

#: A patient's time span divided by the grid step may not exceed this; beyond it the time
#: unit or the step is almost certainly wrong (e.g. seconds read as hours).
MAX_STEPS_PER_PATIENT = 100_000

Locate = Callable[[int], "int | None"]


def _no_line(_: int) -> None:
    return None


def _list_names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(str(n)) for n in list(names)[:limit])
    more = len(names) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def check_grid_size(n_points: int, n_nodes, *, what: str = "The data", unit: str = "rows") -> None:
    """Refuse a map with more nodes than there are samples to place on it.

    Parameters
    ----------
    n_points : int
        Number of samples: table rows, or real patient time steps.
    n_nodes : int, tuple of int, or object with ``height`` and ``width``
        Size of the map, as a node count, an ``(height, width)`` pair or a grid object.
    what : str
        How to call the data in the message (e.g. the file name).
    unit : str
        Word for one sample ("rows", "time steps").

    Raises
    ------
    InputError
        When ``n_points < n_nodes``, suggesting a square grid with about two samples per node,
        e.g. ``"data.csv has 40 rows but an 8x8 map has 64 nodes; use a smaller grid such as
        4x4"``.
    """
    if hasattr(n_nodes, "height") and hasattr(n_nodes, "width"):
        shape = (int(n_nodes.height), int(n_nodes.width))
    elif isinstance(n_nodes, (tuple, list)):
        shape = (int(n_nodes[0]), int(n_nodes[1]))
    else:
        side = math.isqrt(int(n_nodes))
        shape = (side, side) if side * side == int(n_nodes) else None
    total = shape[0] * shape[1] if shape else int(n_nodes)
    if n_points >= total:
        return
    if shape:
        # "an 8x8", "an 11x11", but "a 4x4"
        article = "an" if str(shape[0]).startswith(("8", "11", "18")) else "a"
        described = f"{article} {shape[0]}x{shape[1]} map"
    else:
        described = f"a map of {total} nodes"
    if n_points < 4:
        raise InputError(
            f"{what} has {n_points} {unit} but {described} has {total} nodes; "
            "a map needs at least 4 samples (2x2), so add data"
        )
    side = max(2, math.isqrt(n_points // 2))
    raise InputError(
        f"{what} has {n_points} {unit} but {described} has {total} nodes; "
        f"use a smaller grid such as {side}x{side}"
    )


def check_finite(values: np.ndarray, names: Sequence[str], *, path: str | None = None,
                 locate: Locate = _no_line) -> None:
    """Refuse infinite values, naming the first one's line and column.

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_columns)
        Parsed numbers in file order (NaN allowed).
    names : sequence of str
        Column names.
    path : str, optional
        File name for the message.
    locate : callable
        Maps a 0-based record index to its 1-based line.
    """
    values = np.asarray(values)
    if values.size == 0:
        return
    bad = np.isinf(values)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    first = int(np.argmin(rows))
    r, c = int(rows[first]), int(cols[first])
    raise InputError(
        f"infinite value ({values[r, c]}); replace it with a finite number or leave the cell empty",
        path=path, row=locate(r), column=str(names[c]),
    )


def check_times(times: np.ndarray, *, kind: str, column: str, path: str | None = None,
                locate: Locate = _no_line) -> None:
    """Refuse negative, infinite or absurd times.

    Parameters
    ----------
    times : ndarray of float64, shape (n_rows,)
        Times in file order: numbers as given, or hours for ``"HH:MM"``/timestamps (absolute
        hours since 1970 for timestamps). NaN where the time was empty.
    kind : {"number", "clock", "timestamp"}
        How the times were written.
    column : str
        Time column name for the message.
    """
    t = np.asarray(times, dtype=np.float64)
    if np.isinf(t).any():
        r = int(np.flatnonzero(np.isinf(t))[0])
        raise InputError("infinite time; times must be finite numbers", path=path, row=locate(r),
                         column=column)
    if kind == "timestamp":
        # Hours since 1970: anything before 1800 or after 2300 is a parsing accident.
        low, high = -1_490_000.0, 2_900_000.0
        bad = (t < low) | (t > high)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise InputError("timestamp outside the years 1800-2300; check the date format",
                             path=path, row=locate(r), column=column)
        return
    neg = t < 0
    if neg.any():
        r = int(np.flatnonzero(neg)[0])
        raise InputError(
            f"negative time ({t[r]:g}); times must count from admission (>= 0): shift them or "
            "remove those rows", path=path, row=locate(r), column=column)


def check_time_span(span_steps: np.ndarray, first_row: np.ndarray, *, step: float, column: str,
                    path: str | None = None, locate: Locate = _no_line) -> None:
    """Refuse patients whose stay covers an absurd number of grid steps.

    Parameters
    ----------
    span_steps : ndarray of float, shape (n_patients,)
        (last time - first time) / step for each patient.
    first_row : ndarray of int, shape (n_patients,)
        Record index of each patient's latest observation, for the message.
    step : float
        Grid step in time units.
    """
    bad = np.flatnonzero(span_steps > MAX_STEPS_PER_PATIENT)
    if bad.size:
        p = int(bad[0])
        raise InputError(
            f"a stay spanning {span_steps[p]:.0f} grid steps of {step:g} is not plausible; check "
            "the time unit or pass a larger time step (--time-step)",
            path=path, row=locate(int(first_row[p])), column=column)


def count_backwards(patient: np.ndarray, times: np.ndarray) -> tuple[int, int]:
    """Count rows whose time goes backwards compared with the patient's previous row.

    Parameters
    ----------
    patient : ndarray of int, shape (n,)
        Patient code per row, in file order.
    times : ndarray of float64, shape (n,)
        Time per row (no NaN), in file order.

    Returns
    -------
    n_backwards : int
        Rows whose time is earlier than the previous row of the same patient in file order.
    n_patients_backwards : int
        Patients with at least one such row.
    """
    # A stable sort by patient alone keeps each patient's rows in file order.
    by_patient = np.argsort(patient, kind="stable")
    p = patient[by_patient]
    t = times[by_patient]
    same = p[1:] == p[:-1]
    back = same & (t[1:] < t[:-1])
    n_back = int(back.sum())
    n_pat = int(np.unique(p[1:][back]).size) if n_back else 0
    return n_back, n_pat


def constant_columns(values: np.ndarray, mask: np.ndarray, names: Sequence[str]) -> list[str]:
    """Names of features whose observed values are all equal (with at least one observation).

    Parameters
    ----------
    values : ndarray, shape (..., n_features)
    mask : ndarray of bool, same shape
        True where observed.
    """
    flat = np.asarray(values).reshape(-1, values.shape[-1])
    m = np.asarray(mask, dtype=bool).reshape(-1, values.shape[-1])
    out = []
    for j, name in enumerate(names):
        col = flat[:, j][m[:, j]]
        if col.size and np.nanmax(col) == np.nanmin(col):
            out.append(str(name))
    return out


def never_measured(mask: np.ndarray) -> np.ndarray:
    """Indices of features never observed.

    Parameters
    ----------
    mask : ndarray of bool, shape (..., n_features)

    Returns
    -------
    ndarray of int
    """
    m = np.asarray(mask, dtype=bool).reshape(-1, mask.shape[-1])
    return np.flatnonzero(~m.any(axis=0))


def single_observation_patients(n_obs_per_patient: np.ndarray) -> np.ndarray:
    """Indices of patients with exactly one observed value.

    Parameters
    ----------
    n_obs_per_patient : ndarray of int, shape (n_patients,)
    """
    return np.flatnonzero(np.asarray(n_obs_per_patient) == 1)


def describe_mix(n_numbers: int, n_text: int, column: str, first_text: str, line: int | None,
                 path: str | None = None) -> str:
    """Warning text for a column holding both numbers and text that is read as text.

    Parameters
    ----------
    n_numbers, n_text : int
        How many non-empty cells parsed as numbers and as text.
    column : str
    first_text : str
        An example of the text.
    line : int or None
        Line of that example.
    """
    where = f" (e.g. {first_text!r}" + (f" at line {line})" if line else ")")
    return (f"Column {column!r} mixes {n_numbers} numbers and {n_text} text values{where}; "
            "it was read as categories")
