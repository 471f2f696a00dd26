"""A non-modal message for a failed import, training or save, with details on demand."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QVBoxLayout, QWidget)

from ..resources import icon

__all__ = ["ErrorDialog"]


class ErrorDialog(QDialog):
    """Says in plain words what went wrong; the technical details stay folded away.

    The window behind stays usable (the dialog is not modal), and the project is untouched.
    It emits no signals of its own beyond ``QDialog.finished``.

    Parameters
    ----------
    title : str
        Short headline, e.g. "Training stopped".
    message : str
        What happened and what to do, in plain words.
    details : str
        Technical details (a traceback) for whoever supports the user.
    log_path : str, optional
        Where the application log is, shown so it can be sent along.
    """

    def __init__(self, title: str, message: str, details: str = "", log_path: str | None = None,
                 parent: QWidget | None = None, severity: str = "error") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(False)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setMinimumWidth(460)

        symbol = QLabel()
        symbol.setPixmap(icon("error" if severity == "error" else "warning").pixmap(32, 32))
        symbol.setAlignment(Qt.AlignmentFlag.AlignTop)
        headline = QLabel(title)
        headline.setProperty("role", "title")
        self.message_label = QLabel(message)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        reassurance = QLabel("Your project has not been changed.")
        reassurance.setProperty("role", "hint")

        text = QVBoxLayout()
        text.addWidget(headline)
        text.addWidget(self.message_label)
        text.addWidget(reassurance)
        if log_path:
            self.log_label = QLabel(f"A log of what the application did is kept in:<br><code>{log_path}</code>")
            self.log_label.setProperty("role", "hint")
            self.log_label.setWordWrap(True)
            self.log_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            text.addWidget(self.log_label)
        else:
            self.log_label = None
        top = QHBoxLayout()
        top.addWidget(symbol)
        top.addLayout(text, 1)

        self.details = QPlainTextEdit(details)
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        self.details.setMinimumHeight(180)
        self.details_button = QPushButton("Show details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show the technical details, for whoever supports you.")
        self.details_button.toggled.connect(self._on_details_button_toggled)
        self.details_button.setVisible(bool(details))
        self.copy_button = QPushButton("Copy details")
        self.copy_button.setToolTip("Copy the message and details to the clipboard, to paste into an e-mail.")
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        self.copy_button.setVisible(bool(details))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.details_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)

        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addLayout(top)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)

    def _on_details_button_toggled(self, on: bool) -> None:
        self.details.setVisible(on)
        self.details_button.setText("Hide details" if on else "Show details")
        self.adjustSize()

    def _on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(f"{self.message_label.text()}\n\n{self.details.toPlainText()}")
