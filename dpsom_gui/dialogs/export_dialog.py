"""What goes into an assignments CSV: plain column names, the input's types, outcomes, probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem,
                               QVBoxLayout, QWidget)

from ..views.map_layers import label_short, label_title

__all__ = ["ExportOptions", "ExportDialog", "assignments_for_export", "write_assignments", "ask_export_options",
           "PLAIN_COLUMNS"]

#: Plain headers of the technical columns of ``core.io.export.assignments_frame``.
PLAIN_COLUMNS = {
    "row": "Line",
    "node": "Cell",
    "node_row": "Cell row",
    "node_col": "Cell column",
    "path_node": "Cell on smoothed path",
    "path_row": "Smoothed path cell row",
    "path_col": "Smoothed path cell column",
    "p_max": "Certainty (probability of the cell)",
    "entropy": "Uncertainty (entropy, nats)",
    "next_node_pred": "Predicted next cell",
}


@dataclass(frozen=True)
class ExportOptions:
    """Choices for an assignments export.

    Attributes
    ----------
    plain_names : bool
        Headers in words ("Cell", "Time (h)") instead of the command line's names
        ("node", "hour").
    keep_types : bool
        Write times and identifiers that were whole numbers in the input as whole numbers
        (``3``, not ``3.0``).
    outcomes : tuple of str
        Outcome columns to add, one value per line.
    probabilities : bool
        Add the probability of every cell (one column per cell).
    """

    plain_names: bool = True
    keep_types: bool = True
    outcomes: tuple = ()
    probabilities: bool = False


def _whole(values: np.ndarray):
    """``values`` as nullable integers when every known value is whole, else unchanged."""
    import pandas as pd

    a = np.asarray(values)
    if a.dtype.kind != "f":
        return values
    known = np.isfinite(a)
    if not known.any() or not np.all(a[known] == np.round(a[known])) or np.abs(a[known]).max() >= 2**53:
        return values
    if known.all():
        return a.astype(np.int64)
    return pd.arrays.IntegerArray(np.where(known, a, 0).astype(np.int64), ~known)  # gaps stay empty


def assignments_for_export(explorer, options: ExportOptions, nodes=None):
    """The assignments table (all points, or those in ``nodes``) shaped by ``options``.

    Starts from ``core.io.export.assignments_frame`` (through the explorer), so the numbers
    are the command line's; only types, headers and the added columns differ.
    """
    ds = explorer.dataset
    if nodes is None:
        frame = explorer.assignments_frame(options.probabilities).copy()
        mask = np.ones(explorer.n_points, dtype=bool)
    else:
        frame = explorer.selection_assignments(nodes, options.probabilities)
        mask = explorer.point_mask(nodes)
    fixed = set(PLAIN_COLUMNS) | {f"p_{j}" for j in range(explorer.n_nodes)}
    id_col = next((c for c in frame.columns[1:3] if c not in fixed and c == (ds.id_col or "id")), None)
    time_col = next((c for c in frame.columns[1:3] if c not in fixed and c == (ds.time_col or "time")), None)
    if options.keep_types:
        for col in (id_col, time_col):
            if col is not None:
                frame[col] = _whole(frame[col].to_numpy())
    for name in options.outcomes:
        values = explorer.label_points(name)[mask]
        frame[name] = _whole(values) if options.keep_types else values
    if options.plain_names:
        names = dict(PLAIN_COLUMNS)
        names.update({f"p_{j}": f"Probability of cell {j}" for j in range(explorer.n_nodes)})
        if id_col is not None:
            names[id_col] = "Patient" if explorer.series else "Identifier"
        if time_col is not None:
            names[time_col] = f"Time ({ds.time_unit})" if ds.time_unit else "Time"
        names.update({name: label_short(name) for name in options.outcomes})
        frame = frame.rename(columns=names)
    return frame


def write_assignments(explorer, path, options: ExportOptions, nodes=None) -> int:
    """Write :func:`assignments_for_export` as CSV (``core.io.export.write_csv``); returns the line count."""
    from core.io.export import write_csv

    frame = assignments_for_export(explorer, options, nodes)
    write_csv(frame, path)
    return len(frame)


class ExportDialog(QDialog):
    """Asks how to write the assignments: plain headers, the input's types, which outcomes to
    add and whether to add every cell's probability. :meth:`options` gives the choices."""

    def __init__(self, explorer, parent: QWidget | None = None, what: str = "assignments") -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {what}")
        self.plain_check = QCheckBox("Column names in words (Cell, Time (h), Patient)")
        self.plain_check.setChecked(True)
        self.plain_check.setToolTip("Untick for the names the command line writes (node, hour, patient_id), "
                                    "e.g. for scripts that read both.")
        self.types_check = QCheckBox("Keep whole-number times and identifiers whole (3, not 3.0)")
        self.types_check.setChecked(True)
        self.proba_check = QCheckBox(f"Add the probability of every cell ({explorer.n_nodes} columns)")
        self.proba_check.setEnabled(explorer.proba is not None)
        self.proba_check.setToolTip("The model's soft assignment of each line to every cell of the map.")
        self.outcomes = QListWidget()
        self.outcomes.setToolTip("Tick the outcomes to add as columns, one value per line.")
        for name in explorer.labels():
            item = QListWidgetItem(label_title(name))
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.outcomes.addItem(item)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.save_button = buttons.addButton("Choose file…", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plain_check)
        layout.addWidget(self.types_check)
        layout.addWidget(self.proba_check)
        layout.addWidget(QLabel("Outcomes to add:" if self.outcomes.count() else "The data have no outcomes."))
        layout.addWidget(self.outcomes, 1)
        self.outcomes.setVisible(self.outcomes.count() > 0)
        layout.addWidget(buttons)

    def set_outcome_checked(self, name: str, on: bool = True) -> None:
        for i in range(self.outcomes.count()):
            item = self.outcomes.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                return
        raise KeyError(f"no outcome {name!r}")

    def options(self) -> ExportOptions:
        chosen = tuple(self.outcomes.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.outcomes.count())
                       if self.outcomes.item(i).checkState() == Qt.CheckState.Checked)
        return ExportOptions(plain_names=self.plain_check.isChecked(), keep_types=self.types_check.isChecked(),
                             outcomes=chosen, probabilities=self.proba_check.isChecked() and self.proba_check.isEnabled())


def ask_export_options(parent, explorer, what: str = "assignments") -> ExportOptions | None:
    """Show :class:`ExportDialog`; the options, or None when the user cancelled."""
    dialog = ExportDialog(explorer, parent, what)
    return dialog.options() if dialog.exec() == QDialog.DialogCode.Accepted else None
