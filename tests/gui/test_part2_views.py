"""Contract tests of the other exploring views: the inspector, the transition view, the
quality panel and the help and About dialogs. Each builds, draws real data and reacts."""

import numpy as np
import pytest
from approval import assert_builds_with_a_sane_minimum_size, assert_image_approved, shown, widget_pixels
from PySide6.QtCore import Qt

from dpsom_gui.dialogs.about_dialog import AboutDialog
from dpsom_gui.dialogs.help_dialog import HelpDialog, find_user_guide
from dpsom_gui.panels.metrics_panel import MetricsPanel, describe_metrics, describe_stability
from dpsom_gui.views.inspector_view import InspectorView
from dpsom_gui.views.transition_view import TransitionView

VIEWS = (InspectorView, TransitionView, MetricsPanel)


@pytest.mark.parametrize("view_class", VIEWS)
def test_view_builds_with_a_sane_minimum_size(qtbot, view_class):
    assert_builds_with_a_sane_minimum_size(qtbot, view_class, (560, 420))


# --------------------------------------------------------------------- inspector
def test_inspector_lists_the_lines_and_links_them_to_patients(qtbot, explorer):
    view = shown(qtbot, InspectorView(), (560, 420))
    summary = explorer.selection([0, 5])
    chosen = []
    view.row_activated.connect(lambda p, s: chosen.append((p, s)))
    view.set_selection(summary)
    model = view.table_model
    assert model.rowCount() == summary.n_points
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers[:4] == ["row", "patient_id", "hour", "node"]
    assert f"{summary.n_patients} patients, {summary.n_points} time points" in view._title.text()
    view.select_line(3)
    assert chosen == [(int(summary.patient[3]), int(summary.step[3]))]
    assert model.data(model.index(3, 1)) == explorer.patient_ids()[summary.patient[3]]
    assert view.export_button.isEnabled()
    view.set_selection(None)
    assert model.rowCount() == 0 and not view.export_button.isEnabled()


def test_inspector_profile_bars_and_outcomes(qtbot, explorer):
    view = shown(qtbot, InspectorView(), (560, 460))
    summary = explorer.selection([0, 1, 2, 3])
    view.set_selection(summary)
    view.tabs.setCurrentIndex(1)
    bars, dots = view.profile_data()
    assert bars.tolist() == pytest.approx([r.z_measured for r in summary.profile])
    assert dots.tolist() == pytest.approx([r.z_model for r in summary.profile])
    pixels = widget_pixels(view.profile_plot)
    blue = np.all(np.abs(pixels[..., :3].astype(int) - [0x3B, 0x6E, 0xA5]) < 12, axis=2)
    assert blue.sum() > 150  # the bars are drawn
    view.tabs.setCurrentIndex(2)
    cells = view.outcome_cells()
    death = next(o for o in summary.outcomes if o.name == "death_24h")
    row = next(c for c in cells if c[0].startswith("Death within 24 h"))
    assert row[1] == f"{100 * death.mean:.1f}%"
    assert row[4] == f"{summary.n_patients} patients, {death.count} points"
    assert row[2] == f"{100 * death.lower:.1f}–{100 * death.upper:.1f}%"
    assert view.outcome_note.isVisible() and "count patients" in view.outcome_note.text()
    # the health state is a category: its commonest value and shares, no mean
    state = next(c for c in cells if c[0].startswith("True health state"))
    s = next(o for o in summary.outcomes if o.name == "state")
    top, share = s.categories[0]
    assert state[1] == f"{int(top)} ({100 * share:.0f}%)"
    assert state[2].startswith(f"{int(top)}: {100 * share:.0f}%")


# ------------------------------------------------------------------- transitions
def test_transition_matrix_image_and_arrow_requests(qtbot, explorer):
    view = shown(qtbot, TransitionView(), (460, 460))
    asked = []
    view.flows_requested.connect(asked.append)
    counts = explorer.transition_counts()
    blank = widget_pixels(view.plot_widget())
    view.set_counts(counts)
    shares = counts / counts.sum(axis=1, keepdims=True)
    assert np.allclose(view.matrix(), np.nan_to_num(shares))
    assert "moves from one time step to the next" in view._caption.text()
    drawn = widget_pixels(view.plot_widget())
    assert (np.abs(blank.astype(int) - drawn.astype(int)) > 40).mean() > 0.05
    view.mode_box.setCurrentIndex(1)
    assert np.array_equal(view.matrix(), counts)
    view.show_arrows(12)
    assert asked[-1] == 12
    view.show_arrows(0)
    assert asked[-1] == 0
    view.set_counts(None)
    assert not view.arrows_check.isEnabled()


def test_transition_view_looks_as_approved(qtbot, explorer):
    view = shown(qtbot, TransitionView(), (420, 420))
    view.set_counts(explorer.transition_counts())
    view.plot_widget().setFixedSize(360, 300)
    assert_image_approved(view.plot_widget(), "part2_transitions", tolerance=0.03)


# ----------------------------------------------------------------------- metrics
def test_metrics_in_plain_words_with_their_numbers(explorer):
    res = explorer.metrics("state")
    lines = describe_metrics(res)
    assert f"NMI {res['nmi_geometric']:.2f}</b> (0 = unrelated, 1 = identical)" in lines[0]
    assert f"purity {res['purity']:.2f}" in lines[1]
    assert any(f"quantisation error {res['quantisation_error']:.3f}" in s for s in lines)
    assert any(f"topographic error {res['topographic_error']:.3f}" in s for s in lines)
    assert any("cells</b> on average" in s for s in lines)  # a series: mean jump
    assert lines[0].startswith("Patients with the same value") and "share of time points" in lines[1]
    local = f"<b>{100 * res['local_moves']:.0f}\u00a0%</b> of the steps stay in their cell"
    smooth = f"along the smoothed paths, <b>{100 * res['path_local_moves']:.0f}\u00a0%</b>"
    assert any(local in s and smooth in s for s in lines)
    # A table speaks of rows, and has no journeys.
    table = describe_metrics({k: v for k, v in res.items() if k not in ("mean_jump", "local_moves",
                                                                          "path_local_moves")})
    assert table[0].startswith("Rows with the same value") and "share of rows" in table[1]
    assert not any("steps stay" in s for s in table)
    stab = explorer.run.stability([1, 2], label="state")
    words = describe_stability(stab)
    assert f"agreement {stab['assignment']['mean']:.2f}" in words[0]


def test_metrics_panel_requests_and_shows(qtbot, explorer):
    panel = shown(qtbot, MetricsPanel(), (560, 420))
    asked, stab = [], []
    panel.metrics_requested.connect(asked.append)
    panel.stability_requested.connect(lambda seeds, label: stab.append((seeds, label)))
    assert not panel.compute_button.isEnabled()
    panel.set_labels(explorer.labels(), seed=7)
    panel.set_trained(True)
    panel.label_box.setCurrentIndex(panel.label_box.findData("state"))
    panel.compute_button.click()
    assert asked == ["state"]
    panel.seeds_box.setValue(2)
    panel.stability_button.click()
    assert stab == [([8, 9], "state")]
    panel.set_busy("stability")
    assert panel.stop_button.isEnabled() and not panel.stability_button.isEnabled()
    panel.show_progress((1, 2, 3, 6))
    assert panel.progress.value() == 750
    panel.set_busy(None)
    panel.show_metrics(explorer.metrics("state"))
    assert "NMI" in panel.result_label.text()
    # Another model: the figures of the last one are gone, and the panel asks for a comparison.
    panel.set_labels(explorer.labels(), seed=8)
    assert "NMI" not in panel.result_label.text() and "press Compare" in panel.result_label.text()
    assert "Check it here" in panel.stability_label.text()


# ----------------------------------------------------------------------- dialogs
def test_about_lists_versions(qtbot):
    import PySide6
    import pyqtgraph
    import torch

    from core import __version__

    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    v = dialog.versions()
    assert v["DPSOM Studio"] == __version__ and v["PyTorch"] == torch.__version__
    assert v["PySide6"] == PySide6.__version__ and v["pyqtgraph"] == pyqtgraph.__version__
    assert v["NumPy"] == np.__version__ and v["Qt"].count(".") == 2


def test_help_shows_the_user_guide_with_its_pictures(qtbot):
    path = find_user_guide()
    assert path is not None and path.name == "user-guide.md"
    dialog = HelpDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    doc = dialog.browser.document()
    text = doc.toPlainText()
    assert "DPSOM Studio" in text and "Journeys over time" in text
    assert doc.toMarkdown().count("](images/") >= 4  # the screenshots are referenced ...
    images = [f for f in (path.parent / "images").glob("*.png")]
    assert len(images) >= 4  # ... and exist
    dialog.resize(700, 600)
    widths = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            if fmt.isImageFormat():
                widths.append(fmt.toImageFormat().width())
            it += 1
        block = block.next()
    assert len(widths) >= 4 and 0 < max(widths) <= dialog.browser.viewport().width()  # scaled to fit


def test_help_explains_when_the_guide_is_missing(qtbot, monkeypatch):
    from dpsom_gui.dialogs import help_dialog

    monkeypatch.setattr(help_dialog, "find_user_guide", lambda: None)
    dialog = HelpDialog()
    qtbot.addWidget(dialog)
    assert "user guide" in dialog.browser.toPlainText().lower()
