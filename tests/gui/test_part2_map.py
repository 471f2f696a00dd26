"""The map's part-2 layers: variables, outcomes, uncertainty and named groups, with colour bar,
legend, hover summaries, click and rubber-band selection, and flow arrows."""

import numpy as np
import pytest
from approval import assert_image_approved, shown, widget_pixels
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from dpsom_gui.views.map_layers import MapLayer
from dpsom_gui.views.map_overlays import FlowArrowsItem
from dpsom_gui.views.som_map_view import SomMapView


@pytest.fixture
def view(qtbot, explorer):
    """A map fed by an explorer, answering layer requests as the window does."""
    v = shown(qtbot, SomMapView(), (460, 460))
    v.set_grid(explorer.grid)
    v.set_layer("umatrix", explorer.results["umatrix"])
    v.set_layer("hits", explorer.hits())
    v.set_layer_choices(explorer.layer_choices())
    v.set_node_describer(explorer.describe_node)
    v.layer_requested.connect(lambda kind, option: v.set_map_layer(explorer.layer(kind, option), show=True))
    v.flush()
    return v


def choose(view, kind, option=None):
    view._layer_box.setCurrentIndex(view._layer_box.findData(kind))
    if option is not None:
        view._option_box.setCurrentIndex(view._option_box.findData(option))
    view.flush()


def test_menu_offers_every_kind_and_computes_on_demand(view, explorer):
    kinds = [view._layer_box.itemData(i) for i in range(view._layer_box.count())]
    assert kinds == ["umatrix", "hits", "variable", "outcome", "uncertainty", "superclusters"]
    assert view.layer_names() == ["umatrix", "hits"]  # nothing computed before it is asked for
    before = widget_pixels(view._plot)
    choose(view, "variable", "lactate")
    assert view.current_layer == "variable:lactate"
    assert np.allclose(view.layer("variable:lactate").values, explorer.decoded()[:, 1])
    assert view._colorbar.axis.labelText == "mmol/L"
    assert view._option_box.isVisible() and view._option_box.currentText() == "lactate (mmol/L)"
    after = widget_pixels(view._plot)
    assert (np.abs(before.astype(int) - after.astype(int)) > 40).mean() > 0.05
    choose(view, "outcome", "death_24h")
    assert view.current_layer == "outcome:death_24h" and view._colorbar.axis.labelText == "%"
    assert view.levels()[1] <= 100
    choose(view, "hits", "soft")
    assert view.current_layer == "hits:soft"
    choose(view, "variable")  # back to the kind: the variable last shown
    assert view.current_layer == "variable:lactate"
    assert "typical value" in view._caption.text()


def test_empty_cells_are_grey_and_counted_on_hover(view, explorer):
    values = np.asarray(explorer.layer("variable", "heart_rate").values, float).copy()
    values[5] = np.nan
    view.set_map_layer(MapLayer("variable:heart_rate", values, "Heart rate", unit="bpm"), show=True)
    view.flush()
    c = view.map_to_widget(*explorer.grid.positions()[5])
    pixel = widget_pixels(view._plot)[int(c.y()), int(c.x())]
    assert np.abs(pixel[:3].astype(int) - [0xC8, 0xCD, 0xD0]).max() < 6
    text = view.describe(5)
    assert text.startswith("Cell 5 (row 2, column 2)") and "Heart rate: no data" in text
    assert "time points from" in view.describe(0)


def test_a_categorical_outcome_is_drawn_in_category_colours(view, explorer):
    from dpsom_gui.views.map_layers import category_colour

    choose(view, "outcome", "state")
    layer = view.layer("outcome:state")
    assert layer.is_categorical and not view._colorbar.isVisible()
    assert view.legend.isVisible()
    pixels = widget_pixels(view._plot)
    share = layer.extra["share"]
    for node in np.flatnonzero(np.isfinite(layer.values))[:6]:
        c = view.map_to_widget(*explorer.grid.positions()[node])
        got = pixels[int(c.y()), int(c.x())][:3].astype(int)
        base = np.array([int(category_colour(int(layer.values[node]))[i:i + 2], 16) for i in (1, 3, 5)])
        keep = 0.3 + 0.7 * share[node]
        assert np.abs(got - (255 - keep * (255 - base))).max() < 8  # its category's colour, paler when mixed
    assert "% of its time points" in view.describe(int(np.nanargmax(share)))


def test_a_failing_cell_summary_is_logged_and_said_in_the_tooltip(view, caplog):
    def broken(node, layer):
        raise ValueError("labels are being reloaded")

    view.set_node_describer(broken)
    with caplog.at_level("ERROR"):
        text = view.describe(3)
        view.describe(3)
    assert text.startswith("Cell 3 (row 1, column 4)")
    assert "could not be computed: labels are being reloaded" in text
    assert sum("cell 3 could not be computed" in r.getMessage() for r in caplog.records) == 1


def test_groups_show_a_legend_with_renameable_names(view, qtbot):
    choose(view, "superclusters", "3")
    layer = view.layer("superclusters:3")
    assert layer.categories == ("Group 1", "Group 2", "Group 3")
    assert not view._colorbar.isVisible()
    legend = view.legend
    assert legend.category_names() == ["Group 1", "Group 2", "Group 3"]
    colours = {tuple(p) for p in widget_pixels(view._plot)[..., :3].reshape(-1, 3)}
    assert (0, 0x72, 0xB2) in colours  # the first group's colour
    renamed = []
    view.category_renamed.connect(lambda *args: renamed.append(args))
    legend.categories.item(1).setText("Shock")
    assert renamed == [("superclusters:3", 1, "Shock")]
    legend.categories.item(2).setText("   ")  # an empty name is refused
    assert legend.category_names()[2] == "Group 3" and len(renamed) == 1


def test_click_ctrl_click_and_rubber_band_select_cells(view, qtbot, explorer):
    changes = []
    view.selection_changed.connect(changes.append)
    centres = explorer.grid.positions()
    port = view._plot.viewport()
    qtbot.mouseClick(port, Qt.MouseButton.LeftButton, pos=view.map_to_widget(*centres[5]))
    qtbot.mouseClick(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     pos=view.map_to_widget(*centres[6]))
    assert changes == [[5], [5, 6]] and view.selected_nodes() == [5, 6]
    drag(view, (0.1, 0.1), (1.9, 1.9))  # the top-left 2 x 2 cells
    assert changes[-1] == [0, 1, 4, 5] and view.selected_nodes() == [0, 1, 4, 5]
    assert not view._band.isVisible()
    pixels = widget_pixels(view._plot)
    red = np.all(np.abs(pixels[..., :3].astype(int) - [0xE6, 0x50, 0x3C]) < 30, axis=2)
    rows, cols = np.nonzero(red)
    corner = view.map_to_widget(0, 0)
    far = view.map_to_widget(2, 2)
    assert red.sum() > 200  # the selection is outlined (the viridis U-matrix has no red) ...
    assert abs(rows.min() - corner.y()) < 4 and abs(cols.max() - far.x()) < 4  # ... around those 4 cells


def drag(view, start, end):
    """Press, move and release the left button on the map (map coordinates)."""
    port = view._plot.viewport()
    a = view.map_to_widget(*start)
    b = view.map_to_widget(*end)
    steps = [QPointF(a), QPointF(a.x() + 8, a.y() + 8), QPointF(b)]
    press = QMouseEvent(QEvent.Type.MouseButtonPress, steps[0], port.mapToGlobal(steps[0]), Qt.MouseButton.LeftButton,
                        Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(port, press)
    for p in steps[1:]:
        move = QMouseEvent(QEvent.Type.MouseMove, p, port.mapToGlobal(p), Qt.MouseButton.NoButton,
                           Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(port, move)
    release = QMouseEvent(QEvent.Type.MouseButtonRelease, steps[-1], port.mapToGlobal(steps[-1]),
                          Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(port, release)


def test_flow_arrows_draw_on_the_map(view, explorer):
    before = widget_pixels(view._plot)
    arrows = FlowArrowsItem()
    arrows.set_extent(*explorer.grid.extent())
    arrows.set_flows(explorer.top_flows(10))
    view.add_overlay(arrows)
    view.flush()
    after = widget_pixels(view._plot)
    dark = np.all(after[..., :3] < 80, axis=2) & ~np.all(before[..., :3] < 80, axis=2)
    assert arrows.flow_count() == 10 and dark.sum() > 200
    view.remove_overlay(arrows)
    assert arrows.scene() is None


def test_grouped_map_looks_as_approved(view):
    choose(view, "superclusters", "3")
    view._plot.setFixedSize(360, 300)
    view.flush()
    assert_image_approved(view._plot, "part2_map_groups", tolerance=0.03)


def test_outcome_map_looks_as_approved(view):
    choose(view, "outcome", "death_24h")
    view._plot.setFixedSize(360, 300)
    view.flush()
    assert_image_approved(view._plot, "part2_map_outcome", tolerance=0.03)
