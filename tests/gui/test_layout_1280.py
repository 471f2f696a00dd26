"""Docks stay usable in the space a 1280 x 800 screen gives them: no clipped controls, no
pictures shrunk into a corner of their axes."""

import numpy as np
import pytest
from approval import shown, widget_pixels
from PySide6.QtWidgets import QAbstractButton, QComboBox, QSpinBox

from dpsom_gui.views.transition_view import TransitionView
from dpsom_gui.views.trajectory_view import TrajectoryView

# The right-hand dock column of the main window at 1280 x 800 (measured under Xvfb).
NARROW_DOCK = (448, 415)
# A bottom dock at 1280 x 800.
WIDE_LOW_DOCK = (1280, 260)


def clipped_controls(widget) -> list[str]:
    """Visible buttons, boxes and spin boxes narrower than they need to show their text."""
    out = []
    for w in widget.findChildren(QAbstractButton) + widget.findChildren(QComboBox) + widget.findChildren(QSpinBox):
        if w.isVisible() and w.width() < w.minimumSizeHint().width():
            out.append(f"{type(w).__name__} {getattr(w, 'text', lambda: '')() or ''!r}: "
                       f"{w.width()} < {w.minimumSizeHint().width()}")
    return out


def test_journeys_fit_the_narrow_dock_without_clipping(qtbot, explorer):
    view = shown(qtbot, TrajectoryView(), NARROW_DOCK)
    view.set_source(explorer)
    qtbot.waitUntil(lambda: view._job is None, timeout=10000)
    hint = view.minimumSizeHint()
    assert hint.width() <= NARROW_DOCK[0] and hint.height() <= NARROW_DOCK[1]
    assert clipped_controls(view) == []
    for w in (view.play_button, view.slider, view.forecast_check, view.display_button, view.export_button,
              view.map._layer_box):
        r = w.geometry()
        top_left = w.mapTo(view, r.topLeft() - r.topLeft())
        assert 0 <= top_left.x() and top_left.x() + w.width() <= view.width(), w  # nothing off the right edge
    # what moved into the Display menu still works
    assert view.trail_box.value() == 6 and view.heat_check.isChecked()


def test_journeys_before_a_model_say_so_in_full_without_empty_axes(qtbot, explorer):
    view = shown(qtbot, TrajectoryView(), NARROW_DOCK)
    view.set_source(None)
    qtbot.wait(50)  # the layout follows the new text
    hint = view._list_count
    assert "once a model" in hint.text() and hint.isVisible()
    assert hint.width() >= hint.minimumSizeHint().width() and hint.height() >= hint.heightForWidth(hint.width())
    assert not view.plot.isVisible()  # no axes from -0.5 to 0.5 under an empty map
    view.set_source(explorer)
    qtbot.waitUntil(lambda: view._job is None, timeout=10000)
    assert view.plot.isVisible()


def test_journeys_map_never_covers_the_plot_chooser_in_a_short_dock(qtbot, explorer):
    view = shown(qtbot, TrajectoryView(), (430, 350))  # the dock beside the map at 1280 x 800
    view.set_source(explorer)
    qtbot.waitUntil(lambda: view._job is None, timeout=10000)
    qtbot.wait(50)
    map_bottom = view.map.mapTo(view, view.map.rect().bottomLeft()).y()
    chooser_top = view.variable_box.mapTo(view, view.variable_box.rect().topLeft()).y()
    assert map_bottom < chooser_top


def test_moves_between_cells_fill_a_wide_low_dock(qtbot, explorer):
    view = shown(qtbot, TransitionView(), WIDE_LOW_DOCK)
    counts = explorer.transition_counts()
    view.set_counts(counts)
    qtbot.wait(50)
    k = counts.shape[0]
    (x0, x1), (y0, y1) = view.plot_item.getViewBox().viewRange()
    assert x0 >= -0.5 - 1e-6 and x1 <= k - 0.5 + 1e-6  # the axis ends with the matrix
    picture = view.image.sceneBoundingRect()
    box = view.plot_item.getViewBox().sceneBoundingRect()
    assert picture.width() >= 0.95 * box.width() and picture.height() >= 0.95 * box.height()
    assert view._colorbar.axis.labelText == "% of moves out of the cell"
    assert clipped_controls(view) == []
    pixels = widget_pixels(view.plot_widget())
    dark = (pixels[..., :3].astype(int).sum(axis=2) < 90).mean()
    assert dark > 0.4  # the (mostly dark) matrix covers most of the picture, not a stamp in it


def test_one_patients_plots_fit_the_narrow_dock(qtbot):
    from gui_fakes import make_series

    from dpsom_gui.views.patient_plot_view import PatientPlotView

    ds = make_series()
    view = shown(qtbot, PatientPlotView(), NARROW_DOCK)
    view.set_dataset(ds)
    bmu = np.arange(ds.values.shape[0] * ds.values.shape[1]).reshape(ds.values.shape[:2]) % 9 + 100
    bmu[0, 4:] = 150  # a long stay after short ones
    view.set_assignments(bmu)
    qtbot.wait(50)
    drawn = view._layout.ci.boundingRect().width()
    assert drawn <= view._layout.viewport().width() + 1  # the plots are not cut off at the right
    assert not view._scroll.horizontalScrollBar().isVisible()
    # cell numbers are written only where they fit: none runs into another
    rects = [t.sceneBoundingRect() for t in view._cell_texts]
    assert [t.toPlainText() for t in view._cell_texts][-1] == "150"
    assert all(not a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])


def clipped_labels(widget) -> list[str]:
    """Visible labels cut short: a one-line label narrower than its text, or a wrapping label
    lower than its lines need at its width."""
    from PySide6.QtWidgets import QLabel

    out = []
    for label in widget.findChildren(QLabel):
        if not label.isVisible() or label.visibleRegion().isEmpty() or not label.text():
            continue
        if label.wordWrap():
            need = label.heightForWidth(label.width())
            if label.height() < need:
                out.append(f"{label.text()[:40]!r}: {label.height()} px high < {need}")
        elif label.width() < label.minimumSizeHint().width():
            out.append(f"{label.text()[:40]!r}: {label.width()} px wide < {label.minimumSizeHint().width()}")
    return out


def cut_choices(widget) -> list[str]:
    """Visible combo boxes whose chosen entry does not fit in the box."""
    from PySide6.QtWidgets import QStyle, QStyleOptionComboBox

    out = []
    for box in widget.findChildren(QComboBox):
        if not box.isVisible() or box.visibleRegion().isEmpty():
            continue
        option = QStyleOptionComboBox()
        box.initStyleOption(option)
        field = box.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                           QStyle.SubControl.SC_ComboBoxEditField, box)
        need = box.fontMetrics().horizontalAdvance(box.currentText())
        if need > field.width():
            out.append(f"{box.currentText()!r}: {field.width()} px for {need}")
    return out


def sideways_scrolling(widget, allowed=()) -> list[str]:
    """Scroll areas inside ``widget`` that show a horizontal scroll bar."""
    from PySide6.QtWidgets import QAbstractScrollArea

    return [f"{type(area).__name__} {area.objectName()!r}" for area in widget.findChildren(QAbstractScrollArea)
            if area.isVisible() and area not in allowed and area.horizontalScrollBar().isVisible()]


@pytest.fixture
def app_style():
    """The application's own style and style sheet (as ``dpsom-studio`` runs), restored after."""
    from PySide6.QtWidgets import QApplication

    from dpsom_gui.resources import style_sheet

    app = QApplication.instance()
    style, sheet = app.style().name(), app.styleSheet()
    app.setStyle("Fusion")
    app.setStyleSheet(style_sheet())
    yield
    app.setStyleSheet(sheet)
    app.setStyle(style)


def test_every_dock_of_the_window_is_usable_at_1280x800(qtbot, make_window, app_style):
    from PySide6.QtWidgets import QApplication

    window = make_window(size=(1280, 800))
    qtbot.waitExposed(window)
    window.session.open_demo("test")
    with qtbot.waitSignal(window.session.training_finished, timeout=10000):
        window.session.start_training()
    window.training_panel.set_estimate({"seconds": 4000, "memory_bytes": 2**31, "device": "Processor (CPU)"})
    problems = {}
    for dock in window.all_docks():
        dock.raise_()
        for _ in range(5):
            QApplication.processEvents()
        assert not dock.widget().visibleRegion().isEmpty(), dock.windowTitle()
        found = (clipped_labels(dock) + clipped_controls(dock)
                 + sideways_scrolling(dock, allowed=(window.data_view.table,)))  # all columns of the data
        if found:
            problems[dock.windowTitle()] = found
    assert problems == {}
    # the settings show the chosen kind of model, preset, cell shape... in full
    assert cut_choices(window.docks["training"]) == []
    # the docks' smallest sizes together still fit the screen: the window is not pushed wider
    assert window.width() == 1280 and window.minimumSizeHint().width() <= 1280
    window.session.shutdown()
    window.estimator.wait()
    window.session._set_dirty(False)
    window.close()
