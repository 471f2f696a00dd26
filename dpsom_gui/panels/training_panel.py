"""Training settings, the Start/Pause/Resume/Cancel buttons and the progress of a run."""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox,
                               QLabel, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

from ..binding import ConfigBinder
from ..formatting import device_label, format_bytes, format_duration
from ..resources import icon

__all__ = ["TrainingPanel", "STATES"]

#: States the panel can show, as set by the session.
STATES = ("no_data", "idle", "running", "paused", "stopping")

#: Largest number of rows or columns the panel trains. The fields accept more digits, so a
#: typed 200 stays 200 and is explained instead of silently becoming 20.
MAX_SIDE = 64
_SIDE_LIMITS = f"Rows and columns: 2 to {MAX_SIDE} each."
_ERROR_STYLE = "color: #b3473a;"
_WARNING_STYLE = "color: #8a5a00;"

_MODELS = (
    ("dpsom", "DPSOM: a table",
     "Groups rows of a table (one sample each) into similar health states."),
    ("tdpsom", "T-DPSOM: over time",
     "Groups every time point of every patient and learns how patients move between states."),
)
_PRESETS = (
    ("quick", "Quick", "Small networks and short training: minutes on an ordinary computer."),
    ("paper", "Paper", "The sizes and schedule of the original publication; meant for a graphics card "
                       "and can take hours."),
)


class _WheelGuard(QObject):
    """Lets the mouse wheel scroll the settings instead of changing the field under the
    pointer (a scroll over the form changed values unseen); a field the user clicked into
    (focused) still takes the wheel."""

    def __init__(self, scroll: QScrollArea, parent: QObject) -> None:
        super().__init__(parent)
        self._scroll = scroll

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Wheel and not obj.hasFocus():
            QApplication.sendEvent(self._scroll.verticalScrollBar(), event)
            return True
        return False


def _spin(lo: int, hi: int, tip: str, special: str | None = None, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setToolTip(tip)
    if special:
        box.setSpecialValueText(special)
    return box


def _dspin(lo: float, hi: float, decimals: int, tip: str, step: float = 0.1) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setToolTip(tip)
    return box


def _combo(items, tip: str) -> QComboBox:
    box = QComboBox()
    box.setToolTip(tip)
    # Long item texts must not set the panel's width (it would be clipped or scroll sideways).
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(10)
    for item in items:
        value, text = item[0], item[1]
        box.addItem(text, value)
        if len(item) > 2:
            box.setItemData(box.count() - 1, item[2], Qt.ItemDataRole.ToolTipRole)
    return box


class _FitWidthScrollArea(QScrollArea):
    """A vertical scroll area whose content is always exactly as wide as its viewport, so
    focusing a field can never scroll it sideways."""

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if obj is self.widget() and event.type() == QEvent.Type.Resize and obj.width() != self.viewport().width():
            obj.setFixedWidth(self.viewport().width())
        return super().eventFilter(obj, event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.widget() is not None:
            self.widget().setFixedWidth(self.viewport().width())


class TrainingPanel(QWidget):
    """The settings of the model and of training, with the buttons that drive a run.

    Every control is bound to a :class:`core.config.Config` field by name through one
    :class:`~dpsom_gui.binding.ConfigBinder`. While a model trains, every control that would
    change it is disabled.

    Signals
    -------
    config_changed(object)
        The user changed a setting; the new :class:`~core.config.Config`.
    preset_requested(str, str)
        The user picked another model or preset: (model, preset). The owner answers with
        :meth:`set_config` holding that preset's values.

    The map size is checked as it is typed: beyond :data:`MAX_SIDE` or beyond what the data
    can fill (see :meth:`set_grid_advice`), a sentence next to the fields says why, before
    Start is pressed.
    start_requested(object), resume_requested, pause_requested, cancel_requested
        The buttons; ``start_requested`` carries the Config to train with.
    """

    config_changed = Signal(object)
    preset_requested = Signal(str, str)
    start_requested = Signal(object)
    resume_requested = Signal()
    pause_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, config, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = "no_data"
        self._resumable = False
        self._advice = ("", "", None)
        self.binder = ConfigBinder(config, self)
        b = self.binder

        # ------------------------------------------------------------ model
        self._suggestion = QLabel("")
        self._suggestion.setProperty("role", "hint")
        self._suggestion.setWordWrap(True)
        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        form.addRow("Kind of data", b.bind("model", _combo(
            _MODELS, "Which kind of model to train. It is proposed from your data.")))
        form.addRow("Preset", b.bind("preset", _combo(
            _PRESETS, "A ready-made set of sizes and training lengths. Changing it resets the "
                      "settings below to the preset's values.")))
        form.addRow(self._suggestion)
        self._suggestion.setVisible(False)
        self._suggestion.linkActivated.connect(lambda _link: self._reasons.setVisible(not self._reasons.isVisible()))
        # Every setting the rule chose from the data, with its reason; opened from the link.
        self._reasons = QLabel("")
        self._reasons.setProperty("role", "hint")
        self._reasons.setWordWrap(True)
        self._reasons.setTextFormat(Qt.TextFormat.RichText)
        form.addRow(self._reasons)
        self._reasons.setVisible(False)

        # -------------------------------------------------------------- map
        map_box = QGroupBox("Map")
        grid = QGridLayout(map_box)
        grid.addWidget(QLabel("Rows"), 0, 0)
        grid.addWidget(b.bind("grid.height", _spin(2, 999, f"Number of rows of cells in the map (2 to {MAX_SIDE}).")),
                       0, 1)
        grid.addWidget(QLabel("Columns"), 0, 2)
        grid.addWidget(b.bind("grid.width", _spin(2, 999, f"Number of columns of cells in the map (2 to {MAX_SIDE}).")),
                       0, 3)
        self.grid_hint = QLabel(_SIDE_LIMITS)
        self.grid_hint.setWordWrap(True)
        self.grid_hint.setProperty("role", "hint")
        self.suggest_button = QPushButton("Use the suggested size")
        self.suggest_button.setToolTip("Set rows and columns to the size proposed for these data.")
        self.suggest_button.clicked.connect(self._on_suggest_button_clicked)
        self.suggest_button.setVisible(False)
        grid.addWidget(QLabel("Cell shape"), 1, 0)
        grid.addWidget(b.bind("grid.topology", _combo(
            (("rect", "Squares", "Each cell touches 4 neighbours."),
             ("hex", "Hexagons", "Each cell touches 6 neighbours; often gives smoother maps.")),
            "Shape of the map's cells.")), 1, 1, 1, 3)
        grid.addWidget(QLabel("Edges"), 2, 0)
        grid.addWidget(b.bind("grid.toroidal", _combo(
            ((True, "Wrap around", "Cells on one edge are neighbours of the cells on the opposite edge, "
                                   "so no cell sits at a border."),
             (False, "Flat", "The map has real edges and corners; easier to read.")),
            "Whether the edges of the map join up.")), 2, 1, 1, 3)
        grid.addWidget(self.grid_hint, 3, 0, 1, 4)
        grid.addWidget(self.suggest_button, 4, 0, 1, 4)
        for column in (1, 3):  # the fields share the width; the labels keep theirs
            grid.setColumnStretch(column, 1)

        # --------------------------------------------------------- training
        train_box = QGroupBox("Training")
        form = QFormLayout(train_box)
        form.addRow("Learning passes", b.bind("train.epochs_pretrain", _spin(
            0, 10000, "Passes over the data while the model first learns to summarise it "
                      "(pretraining).")))
        form.addRow("Map passes", b.bind("train.epochs_joint", _spin(
            0, 10000, "Passes over the data while the map and the summary are trained together.")))
        form.addRow("Forecast passes", b.bind("train.epochs_pred", _spin(
            0, 10000, "Passes that train the forecast of the next health state (T-DPSOM only).")))
        form.addRow("Summary size", b.bind("network.latent_dim", _spin(
            2, 1024, "Latent size: how many numbers the model uses to summarise each sample or "
                     "time point. Larger can capture more detail but trains slower.")))
        form.addRow("Batch size", b.bind("train.batch_size", _spin(
            1, 100000, "How many samples (or patients) the model looks at per step. Larger is "
                       "faster but needs more memory.")))
        form.addRow("Random seed", b.bind("train.seed", _spin(
            -1, 2**31 - 1, "A number that makes training repeatable: the same seed and data give "
                           "the same map. 'Random' picks a new one each time.", special="Random")))
        self._device_box = _combo((("auto", "Automatic"),), "Where the computation runs.")
        form.addRow("Run on", b.bind("train.device", self._device_box))
        self._device_note = QLabel("")
        self._device_note.setWordWrap(True)
        self._device_note.setProperty("role", "hint")
        self._device_note.setVisible(False)
        form.addRow("", self._device_note)

        # --------------------------------------------------------- advanced
        self._advanced_button = QToolButton()
        self._advanced_button.setText("Advanced")
        self._advanced_button.setCheckable(True)
        self._advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self._advanced_button.setToolTip("Show settings that only specialists usually change.")
        self._advanced_button.toggled.connect(self._on_advanced_button_toggled)
        self._advanced = QGroupBox("Advanced")
        form = QFormLayout(self._advanced)
        form.addRow("Learning rate", b.bind("train.lr", _dspin(
            1e-6, 1.0, 6, "How big a step each update takes.", step=1e-4)))
        weights = (
            ("weights.vae", "Reconstruction weight", "How much rebuilding the data counts."),
            ("weights.kl", "Regularisation weight", "How strongly summaries are kept simple."),
            ("weights.cah", "Clustering weight", "How strongly each point is pushed towards one cell."),
            ("weights.som", "Map order weight", "How strongly neighbouring cells are kept similar."),
            ("weights.smooth", "Smoothness weight", "How strongly patients are kept in nearby cells from "
                                                    "one time step to the next (T-DPSOM)."),
            ("weights.pred", "Forecast weight", "How much predicting the next state counts (T-DPSOM)."),
        )
        for name, label, tip in weights:
            form.addRow(label, b.bind(name, _dspin(0.0, 1e4, 5, tip)))
        form.addRow(b.bind("parity", QCheckBox("Reproduce the original code exactly")))
        b.widget("parity").setToolTip("Copy the published code's behaviour, including its known "
                                      "quirks, to reproduce its numbers. Leave off for normal use.")
        self._advanced.setVisible(False)

        # --------------------------------------------------------- estimate
        self._estimate = QLabel("")
        self._estimate.setWordWrap(True)
        self._estimate.setProperty("role", "hint")
        self._error = QLabel("")
        self._error.setWordWrap(True)
        self._error.setStyleSheet(_ERROR_STYLE)
        self._error.setVisible(False)

        # ---------------------------------------------------------- buttons
        self.start_button = QPushButton("Start")
        self.start_button.setProperty("primary", True)
        self.start_button.setToolTip("Train a new model from the beginning with these settings (F5).")
        self.pause_button = QPushButton(icon("pause"), "Pause")
        self.pause_button.setToolTip("Hold training; nothing is lost (F6).")
        self.resume_button = QPushButton(icon("start"), "Resume")
        self.resume_button.setToolTip("Continue training where it stopped (F5).")
        self.cancel_button = QPushButton(icon("stop"), "Stop")
        self.cancel_button.setToolTip("Stop training after the current step. What was learnt so far "
                                      "is kept and training can be resumed later.")
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.pause_button.clicked.connect(self.pause_requested)
        self.resume_button.clicked.connect(self.resume_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons = QGridLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.start_button, 0, 0)
        buttons.addWidget(self.resume_button, 0, 1)
        buttons.addWidget(self.pause_button, 1, 0)
        buttons.addWidget(self.cancel_button, 1, 1)

        # --------------------------------------------------------- progress
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("")
        self._phase = QLabel("Not started")
        self._phase.setWordWrap(True)
        self._detail = QLabel("")
        self._detail.setProperty("role", "hint")
        # Texts below the form change length while training; they get fixed heights so the
        # buttons never move under the mouse (two lines each, one for the detail).
        for label, lines in ((self._estimate, 2), (self._phase, 2), (self._detail, 1)):
            label.setFixedHeight(lines * label.fontMetrics().lineSpacing() + 4)
            label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(8, 8, 8, 8)
        column.setSpacing(8)
        # Problems with the settings are shown in the form, next to the fields, not under
        # the buttons where they would push them around.
        for widget in (model_box, map_box, train_box, self._error, self._advanced_button, self._advanced):
            column.addWidget(widget)
        column.addStretch(1)
        self.scroll = scroll = _FitWidthScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        content.installEventFilter(scroll)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(content.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        layout.setSpacing(6)
        layout.addWidget(scroll, 1)
        bottom = QVBoxLayout()
        bottom.setContentsMargins(8, 0, 8, 0)
        bottom.setSpacing(6)
        bottom.addWidget(self._estimate)
        bottom.addLayout(buttons)
        bottom.addWidget(self._phase)
        bottom.addWidget(self.progress_bar)
        bottom.addWidget(self._detail)
        layout.addLayout(bottom)
        self.setMinimumSize(350, 300)  # the settings scroll; 1280x800 must hold every dock

        self._wheel_guard = _WheelGuard(scroll, self)
        for name in b.names():
            b.widget(name).setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            b.widget(name).installEventFilter(self._wheel_guard)

        b.changed.connect(self._on_binder_changed)
        self._update_enabled()

    # ------------------------------------------------------------------ input
    def set_config(self, config) -> None:
        """Show a configuration (e.g. the one proposed for new data, or a project's)."""
        self.binder.set_config(config)
        self._validate()

    def set_devices(self, devices: list[dict]) -> None:
        """Offer the devices found (dicts with ``name``, ``label``, ``memory_bytes``)."""
        current = self.binder.value("train.device")
        box = self._device_box
        box.blockSignals(True)
        box.clear()
        box.addItem("Automatic", "auto")
        box.setItemData(0, "The graphics card when one is available, otherwise the processor.",
                        Qt.ItemDataRole.ToolTipRole)
        for device in devices:
            if device.get("name") in (None, "auto"):
                continue
            box.addItem(device_label(device), device["name"])
        box.blockSignals(False)
        self.binder.set_value("train.device", current)
        # Why there is no GPU to pick (PyTorch without CUDA, or no driver), in plain words.
        note = next((d.get("note") for d in devices if d.get("note")), "")
        self._device_note.setText(note)
        self._device_note.setVisible(bool(note))

    def set_suggestion(self, text: str, reasons=()) -> None:
        """A plain sentence on why the model kind was proposed, and a "Why these settings?"
        link that shows ``reasons`` (the rule's reason for each setting it chose) below it."""
        link = ' <a href="reasons">Why these settings?</a>' if reasons and text else ""
        self._suggestion.setTextFormat(Qt.TextFormat.RichText)
        self._suggestion.setText(html.escape(text) + link)
        self._suggestion.setVisible(bool(text))
        items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
        self._reasons.setText(f"Chosen from the data for this preset:<ul style='margin-left:-20px'>{items}</ul>"
                              if items else "")
        if not (reasons and text):
            self._reasons.setVisible(False)

    def set_estimating(self) -> None:
        """Say that the estimate is being worked out (a short trial run in the background)."""
        self._estimate.setText("Estimating the training time…")

    def set_estimate(self, estimate: dict | None) -> None:
        """Show the time and memory estimate (``seconds``, ``memory_bytes``, ``device``)."""
        if not estimate:
            self._estimate.setText("")
            return
        where = estimate.get("device", "")
        self._estimate.setText(
            f"Estimated time: about {format_duration(estimate.get('seconds'))}; memory: about "
            f"{format_bytes(estimate.get('memory_bytes'))}" + (f" on {where}." if where else "."))

    def set_state(self, state: str) -> None:
        """One of :data:`STATES`; enables the buttons and controls that make sense."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        self._state = state
        if state == "paused":
            self._phase.setText(self._phase.text().split(" (paused)")[0] + " (paused)")
        self._update_enabled()

    def set_resumable(self, resumable: bool) -> None:
        """Whether a stopped training can be continued."""
        self._resumable = bool(resumable)
        self._update_enabled()

    def set_progress(self, progress) -> None:
        """Show a :class:`core.progress.TrainProgress`."""
        from core.progress import PHASE_TITLES

        self.progress_bar.setValue(int(round(progress.fraction * 1000)))
        self.progress_bar.setFormat(f"{progress.fraction:.0%}")
        title = PHASE_TITLES.get(progress.phase, progress.phase)
        self._phase.setText(f"Step {progress.phase_index + 1} of {progress.n_phases}: {title}")
        self._detail.setText(f"Pass {progress.epoch + 1} of {progress.n_epochs} · "
                             f"time left: {format_duration(progress.eta)}")

    def reset_progress(self, text: str = "Not started", fraction: float = 0.0) -> None:
        """Show ``text`` as the status line and the bar at ``fraction`` (no training running)."""
        # QProgressBar repaints at once on a new value, and a repaint draws everything pending
        # in the window: right after a project opened, every new view (0.4 s) inside this
        # call. With updates off it is drawn with the rest at the next turn of the event loop.
        self.progress_bar.setUpdatesEnabled(False)
        self.progress_bar.setValue(int(round(fraction * 1000)))
        self.progress_bar.setFormat(f"{fraction:.0%}" if fraction else "")
        self.progress_bar.setUpdatesEnabled(True)
        self._phase.setText(text)
        self._detail.setText("")

    def set_grid_advice(self, level: str, text: str, proposal=None) -> None:
        """What the data say about the map size: ``level`` "" (a hint), "warning" (Start
        stays possible) or "error" (Start waits for a smaller map); ``proposal`` is the
        suggested :class:`core.grid.SOMGrid`, offered by a button."""
        self._advice = (level, text, proposal)
        self._validate()

    def status_text(self) -> str:
        """The status line under the buttons."""
        return self._phase.text()

    def set_message(self, text: str) -> None:
        """Show a status line under the progress bar (e.g. "Finished")."""
        self._phase.setText(text)

    # ----------------------------------------------------------------- output
    @property
    def state(self) -> str:
        return self._state

    def config(self):
        return self.binder.config()

    # -------------------------------------------------------------- internal
    def _validate(self) -> bool:
        side = self._side_problem()
        problem = ""
        if not side:
            try:
                self.binder.config().validate()
            except ValueError as exc:
                problem = f"Please check the settings: {exc}"
        self._error.setText(problem)
        self._error.setVisible(bool(problem))
        if problem:  # said where it can be read, not somewhere below the visible part
            self.scroll.ensureWidgetVisible(self._error)
        self._show_grid_advice(side)
        self._update_enabled(valid=not (side or problem) and self._advice[0] != "error")
        return not (side or problem)

    def _side_problem(self) -> str:
        for name, word in (("grid.height", "Rows"), ("grid.width", "Columns")):
            value = self.binder.value(name)
            if value is not None and value > MAX_SIDE:
                return (f"{word}: {value} is more than {MAX_SIDE}, the largest map side this app trains. "
                        f"Type {MAX_SIDE} or less.")
        return ""

    def _show_grid_advice(self, side_problem: str) -> None:
        """The sentence under the map size: a problem with the typed size, or what the data
        say about it, always followed by the limits of the fields."""
        level, text, proposal = self._advice
        shown = self.binder.config().grid
        if side_problem:  # the data's view of a size that cannot be trained would not help
            level, text = "error", side_problem
        shown_text = " ".join(part for part in (text, _SIDE_LIMITS) if part)
        if level and shown_text != self.grid_hint.text():  # a new problem is brought into view
            QTimer.singleShot(0, self, self._bring_grid_hint_into_view)  # once the layout has its new height
        self.grid_hint.setText(shown_text)
        self.grid_hint.setStyleSheet(_ERROR_STYLE if level == "error" else _WARNING_STYLE if level == "warning" else "")
        self.suggest_button.setVisible(
            proposal is not None and (shown.height, shown.width) != (proposal.height, proposal.width))
        if proposal is not None:
            self.suggest_button.setText(f"Use the suggested size ({proposal.height}x{proposal.width})")

    def _bring_grid_hint_into_view(self) -> None:
        self.scroll.ensureWidgetVisible(self.grid_hint, 0, 8)

    def _on_suggest_button_clicked(self) -> None:
        proposal = self._advice[2]
        if proposal is None:
            return
        self.binder.set_value("grid.height", int(proposal.height))
        self.binder.set_value("grid.width", int(proposal.width))
        self._on_binder_changed("grid.width")

    def _update_enabled(self, valid: bool | None = None) -> None:
        if valid is None:
            valid = not self._error.isVisible() and not self._side_problem() and self._advice[0] != "error"
        s = self._state
        self.binder.set_enabled(s in ("idle", "no_data"))
        self.start_button.setEnabled(s == "idle" and valid)
        self.pause_button.setEnabled(s == "running")
        self.resume_button.setEnabled(s == "paused" or (s == "idle" and self._resumable))
        self.cancel_button.setEnabled(s in ("running", "paused"))
        model = self.binder.value("model")
        self.binder.set_enabled(s in ("idle", "no_data") and model == "tdpsom",
                                ["train.epochs_pred", "weights.smooth", "weights.pred"])

    def _on_binder_changed(self, name: str) -> None:
        if name in ("model", "preset"):
            self.preset_requested.emit(self.binder.value("model"), self.binder.value("preset"))
        if self._validate():
            self.config_changed.emit(self.binder.config())

    def _on_start_button_clicked(self) -> None:
        if self._validate() and self._advice[0] != "error":
            self.start_requested.emit(self.binder.config())

    def _on_advanced_button_toggled(self, on: bool) -> None:
        self._advanced.setVisible(on)
        self._advanced_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
