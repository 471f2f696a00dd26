"""How good the map is, in plain words: agreement with an outcome and stability across seeds."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea,
                               QSpinBox, QVBoxLayout, QWidget)

from ..views.map_layers import label_title

__all__ = ["MetricsPanel", "describe_metrics", "describe_stability"]


STABILITY_PROMPT = "Would another training give the same map? Check it here."


def _num(x, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _percent(x) -> str:
    # A no-break space: a wrapped line never leaves the "%" apart from its number.
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{100.0 * float(x):.0f}\u00a0%"


def describe_metrics(res: dict) -> list[str]:
    """Plain sentences for the figures of ``core.explore.evaluate_run``, each with its number."""
    name = label_title(str(res.get("label", "")))
    series = res.get("mean_jump") is not None
    who, points = ("Patients", "time points") if series else ("Rows", "rows")
    lines = [
        f"{who} with the same value of <b>{name}</b> tend to share cells: "
        f"<b>NMI {_num(res.get('nmi_geometric'))}</b> (0 = unrelated, 1 = identical).",
        f"Cells are dominated by one value of it: <b>purity {_num(res.get('purity'))}</b> (the share of "
        f"{points} whose value is their cell's most common one; 1 = every cell is pure).",
        f"Corrected for chance, the agreement is <b>AMI {_num(res.get('ami'))}</b> (0 = no better than "
        "random cells).",
        f"Points lie close to their cell's typical profile: <b>quantisation error "
        f"{_num(res.get('quantisation_error'), 3)}</b> (lower is tighter; compare maps of the same data only).",
        f"Neighbours on the map are neighbours in the data: <b>topographic error "
        f"{_num(res.get('topographic_error'), 3)}</b> (the share of points whose two best cells are not "
        "side by side; 0 = perfect).",
    ]
    if res.get("morans_i") is not None:
        lines.append(f"The outcome forms smooth regions on the map: <b>Moran's I {_num(res['morans_i'])}</b> "
                     "(near 0 = scattered, towards 1 = neighbouring cells alike).")
    if res.get("mean_jump") is not None:
        lines.append(f"From one time step to the next, patients move <b>{_num(res['mean_jump'])} cells</b> "
                     "on average (smaller = smoother journeys).")
    if res.get("local_moves") is not None:
        line = (f"<b>{_percent(res['local_moves'])}</b> of the steps stay in their cell or move to a "
                "neighbouring one")
        if res.get("path_local_moves") is not None:
            line += f"; along the smoothed paths, <b>{_percent(res['path_local_moves'])}</b>"
        lines.append(line + ".")
    used, missing = res.get("nodes_used"), res.get("n_missing_labels", 0)
    extra = f"{res.get('n_samples', res.get('points', 0))} points compared"
    if missing:
        extra += f"; {missing} points without this outcome were left out"
    if used is not None:
        extra += f"; {used} cells hold points"
    lines.append(extra + ".")
    if res.get("collapsed"):
        lines.append(f"<span style='color:#b3473a'><b>Warning:</b> {res.get('collapse_message', '')}</span>")
    return lines


def describe_stability(res: dict) -> list[str]:
    """Plain sentences for the result of ``ModelRun.stability``."""
    lines = []
    seeds = res.get("seeds", [])
    a, layout = res.get("assignment"), res.get("layout")
    if a is not None:
        lines.append(f"Runs with {len(seeds)} different seeds group the points alike: <b>agreement "
                     f"{_num(a.get('mean'))}</b> ± {_num(a.get('std'))} (adjusted Rand index; 1 = identical "
                     "groupings, 0 = no better than chance).")
    if layout is not None:
        lines.append(f"They keep the same patients near or far apart on the map: <b>layout agreement "
                     f"{_num(layout.get('mean'))}</b> (rank correlation of distances on the map; 1 = same layout).")
    if len(seeds) < 2:
        lines.append("Fewer than two runs finished, so nothing could be compared.")
    collapsed = [s for s, (flag, _msg) in (res.get("collapse") or {}).items() if flag]
    if collapsed:
        lines.append(f"<span style='color:#b3473a'>The map collapsed with seed(s) {', '.join(map(str, collapsed))}."
                     "</span>")
    for seed, message in (res.get("failed") or {}).items():
        lines.append(f"<span style='color:#b3473a'>Seed {seed} failed: {message}</span>")
    return lines


class MetricsPanel(QWidget):
    """Quality figures of the trained map against a chosen outcome, and a stability check
    that trains the same settings with other seeds in the background.

    Signals
    -------
    metrics_requested(str)
        Compute the figures against this label.
    stability_requested(list, str)
        Train again with these seeds; the label (or "") flags collapsed runs.
    stop_requested
        Stop the running check.
    """

    metrics_requested = Signal(str)
    stability_requested = Signal(list, str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._seed = 0
        self._enabled_stability = False
        self.label_box = QComboBox()
        self.label_box.setToolTip("The outcome (never shown to the model) the map is compared with.")
        self.compute_button = QPushButton("Compare")
        self.compute_button.setToolTip("Compute how well the map's cells agree with this outcome.")
        self.compute_button.clicked.connect(self._on_compute_clicked)
        self.result_label = QLabel("Train a model, choose an outcome and press Compare.")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        quality = QGroupBox("Agreement with an outcome")
        q = QVBoxLayout(quality)
        row = QHBoxLayout()
        row.addWidget(self.label_box, 1)
        row.addWidget(self.compute_button)
        q.addLayout(row)
        q.addWidget(self.result_label)

        self.seeds_box = QSpinBox()
        self.seeds_box.setRange(2, 10)
        self.seeds_box.setValue(3)
        self.seeds_box.setSuffix(" runs")
        self.seeds_box.setToolTip("How many models to train with other random seeds. Each takes about as long "
                                  "as the training you did.")
        self.stability_button = QPushButton("Check stability")
        self.stability_button.setToolTip("Train the same settings again with other random seeds, in the "
                                         "background, and report how much the maps agree.")
        self.stability_button.clicked.connect(self._on_stability_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the check; nothing else changes.")
        self.stop_button.clicked.connect(self.stop_requested)
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.stability_label = QLabel(STABILITY_PROMPT)
        self.stability_label.setWordWrap(True)
        self.stability_label.setTextFormat(Qt.TextFormat.RichText)
        stab = QGroupBox("Stability across random seeds")
        s = QVBoxLayout(stab)
        row = QHBoxLayout()
        row.addWidget(QLabel("Train"))
        row.addWidget(self.seeds_box)
        row.addWidget(self.stability_button)
        row.addWidget(self.stop_button)
        row.addStretch(1)
        s.addLayout(row)
        s.addWidget(self.progress)
        s.addWidget(self.stability_label)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(quality)
        layout.addWidget(stab)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.setMinimumSize(300, 240)
        self.set_labels([])

    # ------------------------------------------------------------------ input
    def set_labels(self, names, seed: int = 0) -> None:
        """Offer these outcomes of a newly shown model; ``seed`` is its seed (other seeds are used).

        Figures shown for an earlier model are cleared: they no longer describe the map.
        """
        self._seed = int(seed)
        current = self.label_box.currentData()
        self.label_box.clear()
        for name in names:
            self.label_box.addItem(label_title(name), name)
        if current is not None and self.label_box.findData(current) >= 0:
            self.label_box.setCurrentIndex(self.label_box.findData(current))
        has = bool(names)
        self.compute_button.setEnabled(has and not self.stop_button.isEnabled())
        if has:
            self.result_label.setText("Choose an outcome and press Compare to see how well the map agrees with it.")
        else:
            self.result_label.setText("Train a model on data with outcomes, then compare the map with one here.")
        if not self.stop_button.isEnabled():  # a running check reports on its own model when it ends
            self.stability_label.setText(STABILITY_PROMPT)

    def set_trained(self, trained: bool) -> None:
        """Whether a trained model exists (the stability check needs one)."""
        self._enabled_stability = bool(trained)
        self.stability_button.setEnabled(self._enabled_stability and not self.stop_button.isEnabled())

    def set_busy(self, name: str | None) -> None:
        """An analysis ("metrics" or "stability") is running, or none (None)."""
        busy = name is not None
        self.compute_button.setEnabled(not busy and self.label_box.count() > 0)
        self.stability_button.setEnabled(not busy and self._enabled_stability)
        self.stop_button.setEnabled(name == "stability")
        self.progress.setVisible(name == "stability")
        if name == "metrics":
            self.result_label.setText("Computing…")
        if name == "stability":
            self.progress.setValue(0)
            self.stability_label.setText("Training with other seeds in the background…")

    def show_progress(self, value) -> None:
        """A stability progress tuple ``(seed_index, n_seeds, step, total_steps)``."""
        try:
            index, n, step, total = value
        except (TypeError, ValueError):
            return
        share = (index + (step / total if total else 0.0)) / max(n, 1)
        self.progress.setValue(int(1000 * min(1.0, share)))
        self.progress.setFormat(f"run {index + 1} of {n}: step {step} of {total}" if total else f"run {index + 1} of {n}")

    def show_metrics(self, res: dict) -> None:
        self.result_label.setText("<br>".join(describe_metrics(res)))

    def show_stability(self, res: dict) -> None:
        self.stability_label.setText("<br>".join(describe_stability(res)))

    def show_message(self, name: str, text: str) -> None:
        """A plain message in place of the results of analysis ``name``."""
        (self.stability_label if name == "stability" else self.result_label).setText(text)

    # ----------------------------------------------------------------- output
    def seeds(self) -> list[int]:
        """The seeds the stability check uses: the next ones after the model's own."""
        return [self._seed + i for i in range(1, self.seeds_box.value() + 1)]

    # ---------------------------------------------------------------- events
    def _on_compute_clicked(self) -> None:
        label = self.label_box.currentData()
        if label:
            self.metrics_requested.emit(str(label))

    def _on_stability_clicked(self) -> None:
        self.stability_requested.emit(self.seeds(), str(self.label_box.currentData() or ""))
