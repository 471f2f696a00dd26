"""Importing a data file: preview, column roles, options and a check before anything is used."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit,
                               QProgressBar, QPushButton, QTableView, QTableWidget, QTableWidgetItem, QTabWidget,
                               QVBoxLayout, QWidget)

from ..models import DataFrameModel
from ..workers import ImportWorker, WorkerThread, split_failure

__all__ = ["ImportDialog", "ROLES", "roles_to_options", "default_display_name", "apply_names_and_units"]

#: Column roles, with the words the dialog shows and their explanation.
ROLES = (
    ("feature", "Measurement", "A measured variable the model learns from."),
    ("id", "Identifier", "Identifies the patient (or the row). Patients' rows are grouped by it."),
    ("time", "Time", "When the row was measured; with an identifier it makes the data a time series."),
    ("variable", "Variable name", "Long format: the column that names what was measured."),
    ("value", "Value", "Long format: the column that holds the measured value."),
    ("label", "Outcome", "Kept to colour the map and to evaluate it, but never learnt from."),
    ("ignore", "Ignore", "Not used at all."),
)
_ROLE_TEXT = {key: text for key, text, _ in ROLES}

_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar", " ": "space"}
_FORMAT_TEXT = {
    "table": "a table: one row per sample",
    "wide": "patients over time, one column per variable",
    "long": "patients over time, one row per measurement",
    "physionet2012": "a PhysioNet 2012 folder of patient records",
}

_SCALING = (
    ("auto", "Automatic (chosen from the data)", "Chosen from what the values are, as the command line "
                                                 "does: values between 0 and 1 are kept, image-like "
                                                 "intensities are scaled to 0 to 1, anything else is "
                                                 "standardised. The check report says which and why."),
    ("zscore", "Standardise", "Shift and scale each variable to average 0 and spread 1."),
    ("robust", "Standardise, robust to outliers", "Like 'Standardise' but uses the median and the "
                                                  "middle half of the values, so extreme values matter less."),
    ("minmax", "Range 0 to 1", "Scale each variable so its smallest value is 0 and its largest 1."),
    ("none", "Keep as measured", "Use the values as they are; only if they already share a scale."),
)
_IMPUTATION = (
    (None, "Carry last value forward", "Fill a gap with the patient's last measurement; what is still "
                                       "missing gets the variable's typical (median) value."),
    (0, "Typical value", "Fill every gap with the variable's typical (median) value."),
)
_CLIPPING = (
    (None, "Keep all values", "Use every measured value as it is."),
    ((0.01, 0.99), "Cap extreme values", "Values below the 1st or above the 99th percentile are set to "
                                         "those percentiles, so a few extreme values cannot dominate."),
)
_REPORT_COLUMNS = {"name": "variable", "unit": "unit", "missing_share": "missing", "min": "min",
                   "max": "max", "mean": "mean", "ffill_share": "carried forward",
                   "imputed_share": "typical value", "clipped": "capped"}


def roles_to_options(roles: dict[str, str]) -> tuple[dict, str | None]:
    """``read_data`` keyword arguments for column roles, or a plain-words problem.

    Returns
    -------
    options : dict
        ``format``, ``id_col``, ``time_col``, ``var_col``, ``value_col``, ``features``,
        ``labels``.
    problem : str or None
        Why these roles cannot be read (two identifier columns, no measurement, ...).
    """
    by_role: dict[str, list[str]] = {}
    for column, role in roles.items():
        by_role.setdefault(role, []).append(column)
    for role, what in (("id", "identifier"), ("time", "time"), ("variable", "variable name"), ("value", "value")):
        if len(by_role.get(role, [])) > 1:
            return {}, f"Choose only one {what} column (now: {', '.join(by_role[role])})."
    one = {role: (by_role.get(role) or [None])[0] for role in ("id", "time", "variable", "value")}
    long_parts = one["variable"] is not None or one["value"] is not None
    if long_parts and (one["variable"] is None or one["value"] is None):
        return {}, "The long format needs both a 'Variable name' and a 'Value' column."
    if long_parts and (one["id"] is None or one["time"] is None):
        return {}, "The long format also needs an identifier and a time column."
    if one["time"] is not None and one["id"] is None:
        return {}, "A time column needs an identifier column too, to know whose times they are."
    fmt = "long" if long_parts else ("wide" if one["id"] and one["time"] else "table")
    features = by_role.get("feature", [])
    if fmt != "long" and not features:
        return {}, "Mark at least one column as a measurement."
    options = {"format": fmt, "id_col": one["id"], "time_col": one["time"],
               "labels": by_role.get("label", [])}
    if fmt == "long":
        options.update(var_col=one["variable"], value_col=one["value"])
    else:
        options["features"] = features
    return options, None


def default_display_name(column: str, unit: str) -> str:
    """The name a column is shown by at first: its header without a trailing "(unit)" that
    the reader already took as the unit (``"heart rate (bpm)"`` -> ``"heart rate"``)."""
    if unit:
        stripped = re.sub(r"\s*[\(\[]\s*" + re.escape(unit) + r"\s*[\)\]]\s*$", "", column)
        if stripped:
            return stripped
    return column


def apply_names_and_units(dataset, names: dict[str, tuple[str, str]]):
    """A copy of ``dataset`` whose variables carry the chosen display names and units.

    ``names`` maps a variable's name as read to ``(shown name, unit)``; variables not in it
    keep theirs. Every rename is noted in the dataset's report (saved with the project), so
    the column it came from stays known.

    Raises
    ------
    ValueError
        When a name is empty or two variables would share one.
    """
    new_names, new_units, notes = [], [], []
    units = list(dataset.units) + [""] * (dataset.n_features - len(dataset.units))
    for column, unit in zip(dataset.feature_names, units):
        name, chosen_unit = names.get(column, (column, unit))
        name, chosen_unit = name.strip(), chosen_unit.strip()
        if not name:
            raise ValueError(f"Give the column '{column}' a name.")
        if name in new_names:
            raise ValueError(f"Two variables are both called '{name}'; give them different names.")
        if name != column or chosen_unit != unit:
            notes.append(f"The column '{column}' is shown as '{name}'" + (f" in {chosen_unit}." if chosen_unit
                                                                         else " without a unit."))
        new_names.append(name)
        new_units.append(chosen_unit)
    return dataclasses.replace(dataset, feature_names=new_names, units=new_units,
                               warnings=list(dataset.warnings) + notes)


def _combo(items, tip: str) -> QComboBox:
    box = QComboBox()
    box.setToolTip(tip)
    for value, text, explanation in items:
        box.addItem(text, value)
        box.setItemData(box.count() - 1, explanation, Qt.ItemDataRole.ToolTipRole)
    return box


class ImportDialog(QDialog):
    """Shows what a file looks like and reads it with the user's choices before importing.

    The top half previews the first rows; above each column a box sets its role. The file
    is read in the background whenever the choices change (with a progress bar), and the
    check report lists what was changed or left out and why. *Import* is enabled only for
    a successful check of the current choices; the dataset it read is then :attr:`dataset`.
    After a check, the "Names and units" tab lets the user name each measurement and set its
    unit; accepting the dialog applies them to :attr:`dataset` (see
    :func:`apply_names_and_units`), so every view and export shows them and the project
    keeps them.

    Signals
    -------
    check_finished(bool)
        A background check ended: True when the file could be read with the current choices.
    """

    check_finished = Signal(bool)

    def __init__(self, path: str, engine, parent: QWidget | None = None, auto_check: bool = True,
                 log_path: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Import {Path(path).name}")
        self.resize(900, 680)
        self.path = str(path)
        self.engine = engine
        self.dataset = None
        self.inspection = None
        self._checked_options: dict | None = None
        self._job: WorkerThread | None = None
        self._job_options: dict | None = None
        self._outcome: tuple[str, object] = ("none", None)
        self.role_boxes: dict[str, QComboBox] = {}
        self.log_path = log_path
        self.error_dialog = None
        self._failure: tuple[str, str] | None = None

        self._detected = QLabel("")
        self._detected.setWordWrap(True)
        self._reading_as = QLabel("")
        self._reading_as.setProperty("role", "hint")
        self._reading_as.setWordWrap(True)

        self.preview_model = DataFrameModel(parent=self)
        self.preview = QTableView()
        self.preview.setModel(self.preview_model)
        self.preview.setAlternatingRowColors(True)
        self.preview.verticalHeader().setDefaultSectionSize(22)
        self.preview.verticalHeader().setVisible(False)
        self.preview.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.preview.horizontalHeader().setDefaultSectionSize(130)

        # -------------------------------------------------------------- options
        self.time_step = QDoubleSpinBox()
        self.time_step.setRange(0.0, 1e6)
        self.time_step.setDecimals(3)
        self.time_step.setSpecialValueText("Automatic")
        self.time_step.setToolTip("Length of one time step of the regular time grid, in the data's time "
                                  "unit (hours for clock times and dates). 'Automatic' uses the most "
                                  "common gap between measurements.")
        self.aggregate = _combo((("last", "Latest value", "Keep the latest measurement in each step."),
                                 ("mean", "Average", "Average the measurements in each step.")),
                                "What to do when a variable was measured several times in one time step.")
        self.scaling = _combo(_SCALING, "How values are brought to a common scale before training. "
                                        "Maps and exports always show the original units.")
        self.imputation = _combo(_IMPUTATION, "How missing measurements are filled for training. Filled "
                                              "values are marked and never shown as measured.")
        self.clipping = _combo(_CLIPPING, "Whether extreme values are capped before training.")
        options_box = QGroupBox("Options")
        form = QFormLayout(options_box)
        form.addRow("Time step", self.time_step)
        form.addRow("Several values in one step", self.aggregate)
        form.addRow("Scaling", self.scaling)
        form.addRow("Missing values", self.imputation)
        form.addRow("Extreme values", self.clipping)

        # --------------------------------------------------------------- report
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setPlaceholderText("The check report appears here.")
        self.report.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.report.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.names_table = QTableWidget(0, 3)
        self.names_table.setHorizontalHeaderLabels(["Column in the file", "Name shown", "Unit"])
        for c, tip in enumerate(("The column's header, as read.",
                                 "The name every view, legend and export shows. Double-click to change it.",
                                 "The unit shown beside the values, e.g. bpm or mmol/L. Double-click to "
                                 "change it.")):
            self.names_table.horizontalHeaderItem(c).setToolTip(tip)
        self.names_table.verticalHeader().setVisible(False)
        self.names_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.names_table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                         | QAbstractItemView.EditTrigger.EditKeyPressed
                                         | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.names_table.itemChanged.connect(self._on_names_table_changed)
        self._names: dict[str, tuple[str, str]] = {}  # the user's choices, kept across checks
        self.names_problem = QLabel("")
        self.names_problem.setStyleSheet("color: #b3473a;")
        self.names_problem.setWordWrap(True)
        names_page = QWidget()
        names_layout = QVBoxLayout(names_page)
        names_layout.setContentsMargins(4, 4, 4, 4)
        hint = QLabel("How each measurement is named and in which unit, everywhere in the app and in exports. "
                      "Saved with the project.")
        hint.setProperty("role", "hint")
        hint.setWordWrap(True)
        names_layout.addWidget(hint)
        names_layout.addWidget(self.names_table, 1)
        names_layout.addWidget(self.names_problem)
        self.report_tabs = QTabWidget()
        self.report_tabs.addTab(self.report, "Report")
        self.report_tabs.addTab(names_page, "Names and units")
        self.report_tabs.setTabEnabled(1, False)
        report_box = QGroupBox("Check")
        report_layout = QVBoxLayout(report_box)
        report_layout.addWidget(self.status)
        report_layout.addWidget(self.progress)
        report_layout.addWidget(self.report_tabs, 1)
        self.details_button = QPushButton("Technical details…")
        self.details_button.setToolTip("Show the technical details of the problem and where the log is, "
                                       "for whoever supports you.")
        self.details_button.setVisible(False)
        self.details_button.clicked.connect(self._on_details_button_clicked)
        report_layout.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignRight)

        self.check_button = QPushButton("Check again")
        self.check_button.setToolTip("Read the whole file with these choices and report what happens.")
        self.check_button.clicked.connect(self.check)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setProperty("primary", True)
        self.import_button.setToolTip("Use the data as checked above.")
        self.buttons.addButton(self.check_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        lower = QHBoxLayout()
        lower.addWidget(options_box)
        lower.addWidget(report_box, 1)
        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addWidget(self._detected)
        layout.addWidget(QLabel("Choose what each column holds (the box above each column):"))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self._reading_as)
        layout.addLayout(lower, 1)
        layout.addWidget(self.buttons)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(400)
        self._debounce.timeout.connect(self.check)
        for box in (self.aggregate, self.scaling, self.imputation, self.clipping):
            box.currentIndexChanged.connect(self._on_option_changed)
        self.time_step.valueChanged.connect(self._on_option_changed)

        self._inspect()
        self._update_buttons()
        if auto_check and self.inspection is not None:
            self.check()

    # ------------------------------------------------------------ inspection
    def _inspect(self) -> None:
        try:
            inspection = self.engine.inspect_file(self.path)
        except Exception as exc:  # noqa: BLE001 - shown in the dialog, with what to do
            self._detected.setText(f"This file cannot be read: {exc}")
            self.status.setText("Choose another file, or save this one as CSV or Excel and try again.")
            return
        self.inspection = inspection
        self.preview_model.set_frame(_with_role_row(inspection.preview))
        for column_index, column in enumerate(inspection.columns):
            box = _combo(ROLES, "What this column holds.")
            box.setCurrentIndex(box.findData(inspection.roles.get(column, "feature")))
            box.currentIndexChanged.connect(self._on_option_changed)
            self.role_boxes[column] = box
            self.preview.setIndexWidget(self.preview_model.index(0, column_index), box)
        self.preview.verticalHeader().resizeSection(0, 30)
        self.preview.setRowHeight(0, 30)
        parts = [f"File type: {inspection.file_type}"]
        if inspection.encoding:
            parts.append(f"text encoding {inspection.encoding}")
        if inspection.delimiter:
            name = _DELIMITER_NAMES.get(inspection.delimiter, repr(inspection.delimiter))
            parts.append(f"columns separated by {name}")
        parts.append(f"decimal mark '{inspection.decimal}'")
        parts.append(f"about {inspection.n_rows_estimate:,} rows")
        text = ", ".join(parts) + "."
        text += f" It looks like {_FORMAT_TEXT.get(inspection.suggested_format, inspection.suggested_format)}."
        if inspection.warnings:
            text += " " + " ".join(inspection.warnings)
        self._detected.setText(text)
        self._update_reading_as()

    # --------------------------------------------------------------- choices
    def column_roles(self) -> dict[str, str]:
        return {column: box.currentData() for column, box in self.role_boxes.items()}

    def set_role(self, column: str, role: str) -> None:
        box = self.role_boxes[column]
        box.setCurrentIndex(box.findData(role))

    def names_and_units(self) -> dict[str, tuple[str, str]]:
        """``{column as read: (shown name, unit)}`` for the variables of the checked data."""
        out = {}
        for r in range(self.names_table.rowCount()):
            column = self.names_table.item(r, 0).data(Qt.ItemDataRole.UserRole)
            out[column] = (self.names_table.item(r, 1).text(), self.names_table.item(r, 2).text())
        return out

    def set_name(self, column: str, name: str | None = None, unit: str | None = None) -> None:
        """Set the shown name and/or unit of a variable (as typing in the table would)."""
        for r in range(self.names_table.rowCount()):
            if self.names_table.item(r, 0).data(Qt.ItemDataRole.UserRole) == column:
                if name is not None:
                    self.names_table.item(r, 1).setText(name)
                if unit is not None:
                    self.names_table.item(r, 2).setText(unit)
                return
        raise KeyError(f"no variable {column!r} in the checked data")

    def named_dataset(self):
        """The checked data with the chosen names and units (None before a check).

        Raises ``ValueError`` for an empty or repeated name."""
        if self.dataset is None:
            return None
        return apply_names_and_units(self.dataset, self.names_and_units())

    def accept(self) -> None:
        try:
            named = self.named_dataset()
        except ValueError as exc:
            self.report_tabs.setCurrentIndex(1)
            self.names_problem.setText(str(exc))
            return
        self.dataset = named
        super().accept()

    def read_options(self) -> tuple[dict, str | None]:
        """``read_data`` keyword arguments for the current choices, or the problem."""
        options, problem = roles_to_options(self.column_roles())
        if problem:
            return {}, problem
        if options["format"] != "table":
            step = self.time_step.value()
            options["time_step"] = None if step == 0 else step
            options["aggregate"] = self.aggregate.currentData()
        return options, None

    def preprocessing(self) -> dict:
        """Preprocessing choices (``core.data.preprocessing.Preprocessor`` keyword arguments),
        passed on with the data to training."""
        clip = self.clipping.currentData()
        return {"scaling": self.scaling.currentData(), "ffill_limit": self.imputation.currentData(),
                "clip_quantiles": None if clip is None else tuple(clip)}

    def _update_reading_as(self) -> str | None:
        options, problem = self.read_options()
        if problem:
            self._reading_as.setText(problem)
            self._reading_as.setStyleSheet("color: #b3473a;")
        else:
            self._reading_as.setText(f"The data will be read as {_FORMAT_TEXT[options['format']]}.")
            self._reading_as.setStyleSheet("")
        series = not problem and options.get("format") != "table"
        self.time_step.setEnabled(series)
        self.aggregate.setEnabled(series)
        return problem

    def _on_option_changed(self, *_args) -> None:
        self.dataset = None
        self._checked_options = None
        self.report_tabs.setTabEnabled(1, False)
        problem = self._update_reading_as()
        self._update_buttons()
        if problem:
            self.status.setText("Fix the column choices to check the file.")
        else:
            self.status.setText("Choices changed: checking again…")
            self._debounce.start()

    # ------------------------------------------------------------------ check
    def check(self) -> None:
        """Read the file with the current choices in the background."""
        options, problem = self.read_options()
        if problem:
            return
        self._failure = None
        self.details_button.setVisible(False)
        if self._job is not None:  # one read at a time; start again once it ends
            self._job.worker.cancel()
            self._debounce.start()
            return
        self._job_options = options
        self._outcome = ("none", None)
        engine, path = self.engine, self.path
        worker = ImportWorker(lambda report: engine.read_data(path, progress=report, **options))
        worker.progress.connect(self._on_worker_progress)
        worker.loaded.connect(self._on_worker_loaded)
        worker.failed.connect(self._on_worker_failed)
        self._job = WorkerThread(worker, self)
        self._job.stopped.connect(self._on_job_stopped)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText("Reading the file…")
        self._update_buttons()
        self._job.start()

    def _on_worker_progress(self, fraction: float) -> None:
        self.progress.setValue(int(fraction * 100))

    def _on_worker_loaded(self, dataset) -> None:
        self._outcome = ("loaded", dataset)

    def _on_worker_failed(self, text: str) -> None:
        self._outcome = ("failed", text)

    def _on_job_stopped(self) -> None:
        self._job = None
        self.progress.setVisible(False)
        kind, payload = self._outcome
        current, _ = self.read_options()
        if kind == "loaded" and current == self._job_options:
            self.dataset = payload
            self._checked_options = self._job_options
            self._show_report(payload)
            self.check_finished.emit(True)
        elif kind == "failed":
            message, details = split_failure(payload)
            self._failure = (message, details)
            self.status.setText("The file cannot be imported with these choices.")
            self.report.setPlainText(message)
            self.details_button.setVisible(True)
            self.check_finished.emit(False)
        self._update_buttons()

    def _on_details_button_clicked(self) -> None:
        from .error_dialog import ErrorDialog

        if self._failure is None:
            return
        message, details = self._failure
        self.error_dialog = ErrorDialog("The file cannot be imported", message, details, self.log_path, self)
        self.error_dialog.show()

    def _fill_names(self, dataset) -> None:
        table = self.names_table
        table.blockSignals(True)
        table.setRowCount(dataset.n_features)
        for r, column in enumerate(dataset.feature_names):
            unit = dataset.units[r] if r < len(dataset.units) else ""
            name, unit = self._names.get(column, (default_display_name(column, unit), unit))
            first = QTableWidgetItem(column)
            first.setData(Qt.ItemDataRole.UserRole, column)
            first.setFlags(first.flags() & ~Qt.ItemFlag.ItemIsEditable)
            table.setItem(r, 0, first)
            table.setItem(r, 1, QTableWidgetItem(name))
            table.setItem(r, 2, QTableWidgetItem(unit))
        table.blockSignals(False)
        self.report_tabs.setTabEnabled(1, True)
        self._on_names_table_changed()

    def _on_names_table_changed(self, *_args) -> None:
        names = self.names_and_units()
        self._names.update(names)
        problem = ""
        if self.dataset is not None:
            try:
                apply_names_and_units(self.dataset, names)
            except ValueError as exc:
                problem = str(exc)
        self.names_problem.setText(problem)
        self._update_buttons()

    def _show_report(self, dataset) -> None:
        self._fill_names(dataset)
        if dataset.is_series:
            summary = (f"Read {dataset.n_patients:,} patients with {dataset.n_points:,} time points and "
                       f"{dataset.n_features} variables.")
        else:
            summary = f"Read {dataset.n_samples:,} rows with {dataset.n_features} variables."
        if dataset.labels:
            summary += f" Outcomes kept: {', '.join(dataset.labels)}."
        lines = [summary, ""]
        if dataset.warnings:
            lines.append("What was changed or left out:")
            lines.extend(f"• {w}" for w in dataset.warnings)
        else:
            lines.append("Nothing had to be changed or left out.")
        try:
            options, why = self.engine.resolve_preprocessing(dataset, self.preprocessing())
            table = self.engine.preprocessing_report(dataset, **options)
        except Exception:  # noqa: BLE001 - the preprocessing preview is optional
            options, why, table = {}, "", None
        scaling = dict((value, text) for value, text, _ in _SCALING).get(options.get("scaling"))
        if scaling and why:
            lines += ["", f"Scaling chosen from the data: {scaling}. Why: {why}."]
        if table is not None and len(table):
            lines += ["", "Preparation for training (shares of time points or rows):",
                      _format_report(table)]
        self.status.setText("Check passed. Press Import to use these data." if not dataset.warnings else
                            "Check passed with notes (below). Press Import to use these data.")
        self.report.setPlainText("\n".join(lines))

    def _update_buttons(self) -> None:
        self.import_button.setEnabled(self.dataset is not None and not self.names_problem.text())
        self.check_button.setEnabled(self.inspection is not None and self._job is None)

    # ------------------------------------------------------------------ close
    def done(self, result: int) -> None:
        self._debounce.stop()
        if self._job is not None:
            job, self._job = self._job, None
            job.stopped.disconnect()
            job.stop()
        super().done(result)


def _format_report(table) -> str:
    shown = table.rename(columns=_REPORT_COLUMNS)
    formatters = {c: "{:.0%}".format for c in ("missing", "carried forward", "typical value") if c in shown}
    formatters.update({c: "{:.4g}".format for c in ("min", "max", "mean") if c in shown})
    return shown.to_string(index=False, formatters=formatters, max_rows=60)


def _with_role_row(frame):
    """The preview with an empty first row where the role boxes sit."""
    import pandas as pd

    blank = pd.DataFrame([[None] * len(frame.columns)], columns=frame.columns)
    return pd.concat([blank, frame], ignore_index=True)
