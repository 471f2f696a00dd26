"""The preferences of the application (not of a model): autosave, refresh rate, history."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from ..settings import Preferences

__all__ = ["PreferencesDialog"]

# key, label, minimum, maximum, suffix, special text at the minimum, plain explanation
_FIELDS = (
    ("autosave_minutes", "Save while training every", 0, 240, " min", "Never",
     "While a model trains, save the project this often so that nothing is lost if the "
     "computer stops. Projects that were never saved go to an autosave folder."),
    ("refresh_hz", "Redraw live views", 1, 60, " times a second", None,
     "How often the map and the loss curves are redrawn during training. Lower values leave "
     "more of the computer to training."),
    ("emit_every_steps", "Report progress every", 1, 1000, " steps", None,
     "How many training steps pass between two progress reports to the window."),
    ("max_recent", "Remember recent projects", 1, 30, "", None,
     "How many recently used projects the start page and the File menu list."),
)


class PreferencesDialog(QDialog):
    """Edits :class:`~dpsom_gui.settings.Preferences`; values are written on OK only.

    It emits no signals of its own; the owner reads the preferences again after ``accepted``.
    """

    def __init__(self, prefs: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._prefs = prefs
        self.fields: dict[str, QSpinBox] = {}
        form = QFormLayout()
        for key, label, lo, hi, suffix, special, tip in _FIELDS:
            box = QSpinBox()
            box.setRange(lo, hi)
            box.setSuffix(suffix)
            if special:
                box.setSpecialValueText(special)
            box.setToolTip(tip)
            box.setValue(int(prefs.get(key)))
            self.fields[key] = box
            form.addRow(label, box)
        where = QLabel(f"Preferences are stored in {prefs.file_name}")
        where.setProperty("role", "hint")
        where.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(where)
        layout.addWidget(buttons)

    def accept(self) -> None:
        for key, box in self.fields.items():
            self._prefs.set(key, box.value())
        self._prefs.sync()
        super().accept()
