"""The first page: open a project, import data, try the demo, or pick a recent project."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from ..resources import icon

__all__ = ["StartPanel"]


class StartPanel(QWidget):
    """Welcome page with the four ways to begin.

    Signals
    -------
    open_requested, import_requested, demo_requested, new_requested
        The corresponding button was pressed.
    recent_requested(str)
        A recent project was chosen (its path).
    """

    open_requested = Signal()
    import_requested = Signal()
    demo_requested = Signal()
    new_requested = Signal()
    recent_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("DPSOM Studio")
        title.setProperty("role", "title")
        subtitle = QLabel("Find groups of similar patient states and follow how patients move between "
                          "them. Start with your own data, or explore the built-in demo cohort.")
        subtitle.setProperty("role", "subtitle")
        subtitle.setWordWrap(True)

        self.open_button = self._big_button("open", "Open a project…",
                                            "Open a project you saved before (a .h5 file). Ctrl+O")
        self.import_button = self._big_button("import", "Import data…",
                                              "Read a table or patient time series from a CSV, Excel or "
                                              "Parquet file. Ctrl+I")
        self.demo_button = self._big_button("demo", "Open the demo cohort",
                                            "A made-up intensive-care cohort of patients over 72 hours, "
                                            "to try everything without your own data.")
        self.open_button.clicked.connect(self.open_requested)
        self.import_button.clicked.connect(self.import_requested)
        self.demo_button.clicked.connect(self.demo_requested)

        buttons = QGridLayout()
        buttons.setSpacing(12)
        buttons.addWidget(self.import_button, 0, 0)
        buttons.addWidget(self.demo_button, 0, 1)
        buttons.addWidget(self.open_button, 1, 0)

        recent_title = QLabel("Recent projects")
        recent_title.setStyleSheet("font-weight: 600;")
        self.recent_list = QListWidget()
        self.recent_list.setToolTip("Double-click a project to open it.")
        self.recent_list.itemActivated.connect(self._on_recent_list_activated)
        self._no_recent = QLabel("Projects you save or open will be listed here.")
        self._no_recent.setProperty("role", "hint")

        # Shown while a project or the demo is read in the background.
        self.busy_label = QLabel("")
        self.busy_label.setStyleSheet("font-weight: 600;")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # no known end: it moves to show the app is working
        self.busy_bar.setTextVisible(False)
        busy = QVBoxLayout()
        busy.addWidget(self.busy_label)
        busy.addWidget(self.busy_bar)
        self.set_busy(None)

        self.recent_list.setMaximumHeight(260)
        column = QVBoxLayout()
        column.setSpacing(12)
        column.addStretch(1)
        column.addWidget(title)
        column.addWidget(subtitle)
        column.addSpacing(8)
        column.addLayout(buttons)
        column.addLayout(busy)
        column.addSpacing(24)
        column.addWidget(recent_title)
        column.addWidget(self.recent_list)
        column.addWidget(self._no_recent)
        column.addStretch(2)
        centred = QHBoxLayout(self)
        centred.setContentsMargins(32, 32, 32, 32)
        centred.addStretch(1)
        centred.addLayout(column, 4)
        centred.addStretch(1)
        self.setMinimumSize(480, 360)

    @staticmethod
    def _big_button(icon_name: str, text: str, tip: str) -> QPushButton:
        button = QPushButton(icon(icon_name), "  " + text)
        button.setIconSize(QSize(24, 24))
        button.setMinimumHeight(48)
        button.setToolTip(tip)
        button.setStyleSheet("text-align: left; padding-left: 12px;")
        return button

    def set_busy(self, text: str | None) -> None:
        """Say what is being opened (and hold the buttons) or, with None, that nothing is."""
        busy = bool(text)
        self.busy_label.setText(text or "")
        self.busy_label.setVisible(busy)
        self.busy_bar.setVisible(busy)
        for widget in (self.open_button, self.import_button, self.demo_button, self.recent_list):
            widget.setEnabled(not busy)

    @property
    def is_busy(self) -> bool:
        return self.busy_bar.isVisibleTo(self)

    def set_recent_files(self, paths: list[str]) -> None:
        """List recent project files, newest first."""
        self.recent_list.clear()
        for path in paths:
            item = QListWidgetItem(icon("save"), f"{Path(path).name}    —    {Path(path).parent}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            self.recent_list.addItem(item)
        self.recent_list.setVisible(bool(paths))
        self._no_recent.setVisible(not paths)

    def _on_recent_list_activated(self, item: QListWidgetItem) -> None:
        self.recent_requested.emit(item.data(Qt.ItemDataRole.UserRole))
