"""Contract tests for every view: it builds, has a sane minimum size, and draws real data
(checked on the pixels of ``widget.grab()``); plus approved images of the map."""

import numpy as np
import pytest
from approval import assert_builds_with_a_sane_minimum_size, assert_image_approved, shown, widget_pixels
from gui_fakes import fake_steps, make_series, make_table
from PySide6.QtCore import QPointF, Qt

from core.analysis import umatrix
from core.grid import SOMGrid
from dpsom_gui.data_summary import summarise_variables
from dpsom_gui.models import HISTOGRAM_ROLE
from dpsom_gui.views.data_view import DataView
from dpsom_gui.views.loss_view import LossView
from dpsom_gui.views.patient_plot_view import PatientPlotView
from dpsom_gui.views.som_map_view import SomMapView

VIEWS = (SomMapView, LossView, DataView, PatientPlotView)


def distinct_colours(pixels: np.ndarray) -> int:
    return len(np.unique(pixels[..., :3].reshape(-1, 3) // 8, axis=0))


@pytest.mark.parametrize("view_class", VIEWS)
def test_view_builds_with_a_sane_minimum_size(qtbot, view_class):
    assert_builds_with_a_sane_minimum_size(qtbot, view_class, (420, 360))


# ------------------------------------------------------------------------- map
def smooth_umatrix(grid):
    rng = np.random.default_rng(0)
    rows, cols = np.divmod(np.arange(grid.n_nodes), grid.width)
    prototypes = np.stack([rows, cols, rng.normal(0, 0.3, grid.n_nodes) * rows], axis=1).astype(float)
    return umatrix(prototypes, grid)


def map_view(qtbot, grid, values=None):
    view = shown(qtbot, SomMapView(), (420, 380))
    view.set_grid(grid)
    view.set_layer("umatrix", smooth_umatrix(grid) if values is None else values)
    view.flush()
    return view


def test_map_draws_many_colours_after_a_umatrix(qtbot):
    grid = SOMGrid(8, 10, "rect", False)
    view = shown(qtbot, SomMapView(), (420, 380))
    view.set_grid(grid)
    blank = distinct_colours(widget_pixels(view._plot))
    view.set_layer("umatrix", np.linspace(0, 1, grid.n_nodes))
    view.flush()
    coloured = distinct_colours(widget_pixels(view._plot))
    assert coloured > blank + 40
    assert view.levels() == (0.0, 1.0)


def test_hexagons_and_squares_draw_differently(qtbot):
    values = np.linspace(0, 1, 48)
    rect_view = map_view(qtbot, SOMGrid(6, 8, "rect", False), values)
    hex_view = map_view(qtbot, SOMGrid(6, 8, "hex", False), values)
    rect, hexa = widget_pixels(rect_view._plot), widget_pixels(hex_view._plot)
    assert rect.shape == hexa.shape
    assert (np.abs(rect.astype(int) - hexa.astype(int)).max(axis=2) > 40).mean() > 0.05


def test_map_layers_switch_and_clicks_name_the_cell(qtbot):
    grid = SOMGrid(4, 5, "rect", False)
    view = map_view(qtbot, grid, np.linspace(0, 1, 20))
    view.set_layer("hits", np.arange(20)[::-1] % 7)
    assert view.layer_names() == ["umatrix", "hits"] and view.current_layer == "umatrix"
    before = widget_pixels(view._plot)
    view._layer_box.setCurrentIndex(1)
    view.flush()
    assert view.current_layer == "hits"
    assert (np.abs(before.astype(int) - widget_pixels(view._plot).astype(int)) > 40).any()
    centre = grid.positions()[7]
    assert view.node_at(*centre) == 7
    assert view.node_at(-5, -5) is None
    scene_point = view._viewbox.mapViewToScene(QPointF(*centre))
    clicked = []
    view.node_clicked.connect(clicked.append)
    widget_point = view._plot.mapFromScene(scene_point)
    qtbot.mouseClick(view._plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_point)
    assert clicked == [7]


def test_locked_levels_only_widen_while_training(qtbot):
    grid = SOMGrid(3, 3, "rect", False)
    view = map_view(qtbot, grid, np.linspace(0, 1, 9))
    view.set_levels_locked(True)
    view.set_layer("umatrix", np.linspace(0.2, 0.5, 9))
    view.flush()
    assert view.levels() == (0.0, 1.0)
    view.set_layer("umatrix", np.linspace(0.2, 2.0, 9))
    view.flush()
    assert view.levels() == (0.0, 2.0)
    view.set_levels_locked(False)
    view.flush()
    assert view.levels() == pytest.approx((0.2, 2.0))


def test_map_refuses_values_of_the_wrong_length(qtbot):
    view = map_view(qtbot, SOMGrid(3, 3, "rect", False), np.zeros(9))
    with pytest.raises(ValueError, match="9 cells"):
        view.set_layer("umatrix", np.zeros(10))


def test_map_redraws_at_most_at_its_frame_rate(qtbot):
    grid = SOMGrid(4, 4, "rect", False)
    view = map_view(qtbot, grid, np.zeros(16))
    frames = []
    original = view._redraw
    view._throttle._redraw = lambda: (frames.append(1), original())
    for i in range(50):
        view.set_layer("umatrix", np.full(16, float(i)) + np.arange(16))
    assert frames == []  # nothing drawn synchronously
    qtbot.waitUntil(lambda: len(frames) == 1, timeout=2000)
    assert view.levels() == (49.0, 64.0)  # the frame shows the latest values


@pytest.mark.parametrize("topology", ["rect", "hex"])
def test_map_looks_as_approved(qtbot, topology):
    grid = SOMGrid(6, 8, topology, topology == "rect")
    view = map_view(qtbot, grid)
    view._plot.setFixedSize(360, 300)
    view.flush()
    assert_image_approved(view._plot, f"som_map_{topology}", tolerance=0.03)


# ------------------------------------------------------------------------ loss
def test_loss_view_keeps_every_term_of_every_phase(qtbot):
    view = shown(qtbot, LossView(), (520, 320))
    records = list(fake_steps())
    view.append(records[:7])
    view.append(records[7:])
    view.flush()
    keys = view.curve_keys()
    assert ("pretrain", "elbo") in keys and ("joint", "som") in keys and ("pretrain", "som") not in keys
    steps, values = view.curve_data("joint", "total")
    joint = [p for p in records if p.phase == "joint"]
    assert steps.tolist() == [p.step for p in joint]
    assert values.tolist() == pytest.approx([p.losses["total"] for p in joint])


def test_loss_curves_are_created_once_and_updated(qtbot):
    view = shown(qtbot, LossView(), (520, 320))
    records = list(fake_steps())
    view.append(records[:12])
    view.flush()
    curve = view._curves[("pretrain", "elbo")]
    n_items = len(view.plot_item().items)
    view.append(records[12:])
    view.flush()
    assert view._curves[("pretrain", "elbo")] is curve
    assert len(view.plot_item().items) > n_items  # only new curves for new phases were added
    assert curve.opts["downsample"] or curve.opts["autoDownsample"]
    assert curve.opts["clipToView"]


def test_loss_log_scale_toggle_and_term_visibility(qtbot):
    view = shown(qtbot, LossView(log_scale=False, detailed=True), (520, 320))
    view.append(list(fake_steps()))
    view.flush()
    linear = widget_pixels(view._plot)
    toggled = []
    view.log_scale_changed.connect(toggled.append)
    view.set_log_scale(True)
    assert toggled == [True] and view.log_scale
    assert (np.abs(linear.astype(int) - widget_pixels(view._plot).astype(int)) > 40).mean() > 0.001
    view.set_term_visible("elbo", False)
    assert not view._curves[("joint", "elbo")].isVisible()
    view.clear()
    assert view.curve_keys() == []


def test_plain_view_says_why_a_sparse_history_draws_no_progress(qtbot):
    view = shown(qtbot, LossView(), (620, 360))
    view.append([_Rec(20, {"total": 9.0}, "pretrain"), _Rec(40, {"total": 7.0}, "pretrain")])  # a reopened file
    view.flush()
    assert "Too few training steps" in view._help.text()
    view.set_detailed(True)
    assert "Too few" not in view._help.text()
    view.set_detailed(False)
    view.append([_Rec(40 + t, {"total": 7.0 - 0.01 * t}, "pretrain") for t in range(1, 60)])
    view.flush()
    assert "Too few" not in view._help.text() and "Higher is better" in view._help.text()


def test_plain_view_by_default_shows_one_learning_progress_curve_per_phase(qtbot):
    view = shown(qtbot, LossView(log_scale=True), (620, 360))
    steps = np.arange(1, 301)
    pre = 900.0 * np.exp(-steps[:100] / 20.0) - 40.0  # a likelihood that turns negative
    joint = 50.0 * np.exp(-(steps[100:] - 100) / 60.0) + 3.0
    records = [_Rec(int(t), {"total": float(v), "elbo": float(v)}, "pretrain") for t, v in zip(steps[:100], pre)]
    records += [_Rec(int(t), {"total": float(v), "som": 1.0}, "joint") for t, v in zip(steps[100:], joint)]
    view.append(records)
    view.flush()
    assert not view.detailed and not view._log_box.isVisible()
    assert "Higher is better" in view._help.text() and "Lower is better" not in view._help.text()
    assert view.plot_item().getAxis("left").labelText == "learning progress (%)"
    for phase in ("pretrain", "joint"):
        x, y = view.progress_data(phase)
        y = y[np.isfinite(y)]  # the first window is the reference, not drawn
        assert len(y) >= 0.85 * len(x) and y[0] == 0.0 and y.max() == pytest.approx(100.0)
        assert np.all((y >= -25) & (y <= 100))
        assert np.all(np.diff(y) >= -1e-9)  # these losses only fall: progress only rises
    # the term curves and their jargon stay hidden until asked for
    assert not any(c.isVisible() for c in view._curves.values())
    assert not view._term_boxes["elbo"].isVisible() and not view._term_boxes["som"].isVisible()
    assert [view._phase_labels[p].text().split("</span> ")[1] for p in ("pretrain", "joint")] == \
        ["pretraining", "joint training"]
    pixels = widget_pixels(view._plot).astype(int)
    blue = (np.abs(pixels[..., :3] - (0x3B, 0x6E, 0xA5)).sum(axis=2) < 60).sum()
    green = (np.abs(pixels[..., :3] - (0x2E, 0x7D, 0x6B)).sum(axis=2) < 60).sum()  # joint training
    assert blue > 100 and green > 100  # both phases are drawn in their colours
    view.set_detailed(True)
    assert view._curves[("pretrain", "elbo")].isVisible() and view._log_box.isVisible()
    assert not view._progress["joint"].isVisible()


def test_phase_labels_of_short_phases_do_not_overlap(qtbot):
    view = shown(qtbot, LossView(), (620, 360))
    records = [_Rec(t, {"total": 10.0 / t}, "pretrain") for t in range(1, 200)]
    records += [_Rec(t, {"total": 1.0}, "som_init") for t in range(200, 203)]  # a very short phase
    records += [_Rec(t, {"total": 5.0 / t}, "joint") for t in range(203, 400)]
    view.append(records)
    view.flush()
    qtbot.wait(50)  # labels follow the view's transform on the next event round
    rects = [line.label.sceneBoundingRect() for line in view._phase_lines.values()]
    assert len(rects) == 3
    for i in range(len(rects)):
        for j in range(i + 1, len(rects)):
            assert not rects[i].intersects(rects[j]), (i, j)


def test_learning_progress_is_robust_to_noise_and_flat_losses():
    from dpsom_gui.views.loss_view import learning_progress

    rng = np.random.default_rng(0)
    y = 10 * np.exp(-np.arange(2000) / 300) + rng.normal(0, 1.0, 2000)
    p = learning_progress(y)
    assert p[-1] > 90 and np.nanmax(p[:300]) < 60  # noisy batches do not make an early phase look finished
    assert np.isnan(p[:199]).all() and p[199] == 0.0  # a window of n/10 steps is the reference
    assert learning_progress(np.full(30, 4.0))[4:].tolist() == [0.0] * 26
    flat = learning_progress(5.0 + rng.normal(0, 1.0, 60))  # a phase that learns nothing
    assert np.nanmax(flat) < 60  # noise is not stretched into "done"
    assert learning_progress(np.zeros(0)).size == 0


class _Rec:
    def __init__(self, step, losses, phase="joint"):
        self.phase, self.step, self.losses = phase, step, losses


def test_losses_that_turn_negative_stay_drawn_on_the_log_scale(qtbot):
    """A likelihood term crossing zero is drawn on both sides of it, large values compressed."""
    view = shown(qtbot, LossView(log_scale=True, detailed=True), (520, 360))
    steps = np.arange(1, 201)
    elbo = 2000.0 * np.exp(-steps / 15.0) - 40.0  # 1,800 down to -40: crosses zero near step 60
    view.append([_Rec(int(t), {"total": 5.0, "elbo": float(v)}) for t, v in zip(steps, elbo)])
    view.flush()
    x, y = view._curves[("joint", "elbo")].getData()
    assert len(x) == 200 and np.isfinite(y).all()
    assert np.all(np.diff(y) < 0)  # order kept: the scale is monotonic
    assert y[0] > 2.5 and y[-1] < -0.5 and y[0] - y[10] < 1.0  # decades compressed, sign kept

    # The curve's colour is drawn above and below the zero line.
    pixels = widget_pixels(view._plot).astype(int)
    green = (np.abs(pixels[..., :3] - (0x2E, 0x7D, 0x6B)).sum(axis=2) < 60)
    rows = np.flatnonzero(green.any(axis=1))
    vb = view.plot_item().getViewBox()
    zero_row = vb.mapViewToScene(QPointF(0.0, 0.0)).y() - view._plot.mapToScene(0, 0).y()
    assert rows.min() < zero_row - 40 and rows.max() > zero_row + 20

    labels = view._axis.tickStrings(*_left_ticks(view))
    assert "0" in labels and any(s.startswith("-") for s in labels) and "1000" in labels


def _left_ticks(view):
    lo, hi = view.plot_item().getViewBox().viewRange()[1]
    (spacing, values), *_ = view._axis.tickValues(lo, hi, 300)
    return values, 1.0, spacing


def test_signed_log_scale_round_trips_and_follows_the_data():
    from dpsom_gui.views.signed_log import linear_width, signed_exp, signed_log

    y = np.array([-1e4, -3.0, -0.01, 0.0, 0.02, 7.0, 1e5])
    t = signed_log(y, 0.01)
    assert np.all(np.diff(t) > 0) and t[3] == 0 and np.all(np.sign(t) == np.sign(y))
    np.testing.assert_allclose(signed_exp(t, 0.01), y, rtol=1e-12, atol=1e-15)
    # A decade of values far from zero spans one unit, as on a logarithmic axis.
    assert signed_log(1e4, 0.01) - signed_log(1e3, 0.01) == pytest.approx(1.0, abs=1e-4)
    values = np.concatenate([np.geomspace(0.05, 20, 500), [0.0, np.nan, 1e-9]])
    assert linear_width([values]) == 0.001  # a decade below the 5th percentile (0.067)
    assert linear_width([]) == 1.0 and linear_width([np.zeros(3)]) == 1.0


def test_signed_log_axis_labels_decades_and_falls_back_to_even_ticks(qtbot):
    from dpsom_gui.views.signed_log import SignedLogAxis, signed_log

    axis = SignedLogAxis("left")
    axis.set_linear_width(0.01)
    (spacing, values), *_ = axis.tickValues(-0.5, signed_log(2e6, 0.01), 400)
    assert axis.tickStrings(values, 1.0, spacing) == ["0", "0.1", "1", "10", "100", "1000", "10000", "1e5", "1e6"]
    # Zoomed in between two decades: evenly spaced values, still in the data's units.
    levels = axis.tickValues(signed_log(150.0, 0.01), signed_log(170.0, 0.01), 300)
    labels = [float(s) for spacing, values in levels[:1] for s in axis.tickStrings(values, 1.0, spacing)]
    assert len(labels) >= 2 and all(150 <= v <= 170 for v in labels) and len(set(np.diff(labels).round(6))) == 1
    axis.set_linear_width(None)  # a plain axis again
    assert axis.tickStrings([0.5], 1.0, 0.5) == ["0.5"]


# ------------------------------------------------------------------------ data
def test_data_view_rows_for_a_series_are_real_patient_steps(qtbot):
    ds = make_series()
    view = shown(qtbot, DataView(), (640, 320))
    view.set_dataset(ds)
    view.set_summaries(summarise_variables(ds))
    model = view.table_model
    assert model.rowCount() == ds.n_points
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers[:3] == ["patient", "hour (h)", "heart_rate (bpm)"]
    second = int(ds.lengths[0])  # first row of the second patient
    assert model.data(model.index(second, 0)) == "p001"
    assert model.data(model.index(1, 2)) == f"{ds.values[0, 1, 0]:.4g}"
    assert "12 patients" in view._caption.text()


def test_data_view_table_sorts_by_value_with_missing_last(qtbot):
    ds = make_table()
    view = shown(qtbot, DataView(), (640, 320))
    view.set_dataset(ds)
    model = view.table_model
    col = 1 + 3  # id, heart_rate, sys_bp, temperature, lactate
    model.sort(col, Qt.SortOrder.AscendingOrder)
    values = [model.raw_value(r, col) for r in range(model.rowCount())]
    finite = [v for v in values if np.isfinite(v)]
    assert finite == sorted(finite)
    assert all(np.isnan(v) for v in values[len(finite):])
    assert model.data(model.index(model.rowCount() - 1, col)) == ""


def test_data_view_handles_a_million_rows_without_widgets_per_row(qtbot):
    n = 1_000_000
    values = np.zeros((n, 2), np.float32)
    from core.data.dataset import Dataset

    ds = Dataset(values=values, mask=np.ones_like(values, bool), feature_names=["a", "b"])
    view = shown(qtbot, DataView(), (640, 320))
    view.set_dataset(ds)
    assert view.table_model.rowCount() == n
    assert len(view.findChildren(type(view.tabs))) == 1


def test_variable_summary_and_sparklines(qtbot):
    ds = make_table()
    summaries = summarise_variables(ds)
    hr = summaries[0]
    observed = ds.values[ds.mask[:, 0], 0]
    assert hr.n_observed == observed.size and hr.counts.sum() == observed.size
    assert hr.missing_share == pytest.approx(1 - observed.size / ds.n_samples)
    assert hr.minimum == pytest.approx(observed.min()) and hr.maximum == pytest.approx(observed.max())
    view = shown(qtbot, DataView(), (720, 260))
    view.set_dataset(ds)
    view.set_summaries(summaries)
    model = view.summary_model
    assert model.rowCount() == 4
    assert np.array_equal(model.data(model.index(0, 6), HISTOGRAM_ROLE), hr.counts)
    pixels = widget_pixels(view.summary)
    bar = np.all(np.abs(pixels[..., :3].astype(int) - [0x2E, 0x7D, 0x6B]) < 10, axis=2)
    assert bar.sum() > 100  # the sparklines were painted


def test_summary_leaves_padding_out(qtbot):
    ds = make_series()
    s = summarise_variables(ds)[0]
    real = ds.step_mask
    assert s.n_observed == int(ds.mask[real][:, 0].sum())


# -------------------------------------------------------------------- patients
def test_patient_view_plots_the_measured_values_of_the_chosen_patient(qtbot):
    ds = make_series()
    ds.mask[2, 1, 0] = False  # one unmeasured value must not be drawn
    view = shown(qtbot, PatientPlotView(), (640, 420))
    chosen = []
    view.patient_selected.connect(chosen.append)
    view.set_dataset(ds)
    assert view.current_patient == 0 and chosen == [0]
    view.show_patient(2)
    n = int(ds.lengths[2])
    seen = ds.mask[2, :n, 0]
    x, y = view.curve_data(0)
    assert x.tolist() == ds.times[2, :n][seen].tolist()
    assert y.tolist() == pytest.approx(ds.values[2, :n, 0][seen].tolist())
    assert "p002" in view._title.text()


def test_patient_list_filters_and_selects(qtbot):
    ds = make_series()
    view = shown(qtbot, PatientPlotView(), (640, 420))
    view.set_dataset(ds)
    view.set_filter("p01")
    assert view.patient_count == 2  # p010, p011
    view._list.setCurrentIndex(view._proxy.index(1, 0))
    assert view.current_patient == 11


def test_patient_view_shows_map_cells_once_assigned(qtbot):
    ds = make_series()
    view = shown(qtbot, PatientPlotView(), (640, 420))
    view.set_dataset(ds)
    n_plots = len(view._plots)
    bmu = np.arange(ds.values.shape[0] * ds.values.shape[1]).reshape(ds.values.shape[:2]) % 9
    bmu[0, :3] = 4  # patient 0 stays three steps in cell 4, then moves on
    view.set_assignments(bmu)
    assert len(view._plots) == n_plots + 1
    n = int(ds.lengths[0])
    x0, width, cells = view.cell_runs()
    nodes = bmu[0, :n]
    assert cells.tolist() == [int(v) for i, v in enumerate(nodes) if i == 0 or v != nodes[i - 1]]
    assert width.sum() == pytest.approx(n * np.median(np.diff(ds.times[0, :n])))  # the bands tile the stay
    assert width[0] == pytest.approx(3 * width[1])
    strip = view._plots[0]
    left = strip.getAxis("left")
    assert not left.style["showValues"] and left._tickLevels == [[]]  # a name, not a measurement: no scale
    assert strip.vb.sceneBoundingRect().left() == pytest.approx(view._plots[1].vb.sceneBoundingRect().left())
    assert [t.toPlainText() for t in view._cell_texts][:2] == ["4", str(int(nodes[3]))]
    pixels = widget_pixels(view._layout).astype(int)
    shades = [np.all(np.abs(pixels[..., :3] - [int(c[i:i + 2], 16) for i in (1, 3, 5)]) < 8, axis=2).sum()
              for c in ("#d9c8e6", "#b79ccf")]
    assert min(shades) > 50  # neighbouring stays are drawn in alternating shades


def _wide_series(n_vars=16, seed=0, t=10):
    """make_series with its three variables repeated to ``n_vars`` (a cohort like the demo's)."""
    from dataclasses import replace

    ds = make_series(seed=seed, t=t)
    take = [j % 3 for j in range(n_vars)]
    return replace(ds, values=ds.values[..., take], mask=ds.mask[..., take],
                   feature_names=[f"v{j}_{ds.feature_names[k]}" for j, k in enumerate(take)],
                   units=[ds.units[k] for k in take])


def test_patient_view_creates_its_plots_once_and_reuses_them(qtbot):
    ds = _wide_series()
    view = shown(qtbot, PatientPlotView(), (640, 420))
    view.set_dataset(ds)
    qtbot.waitUntil(lambda: view.plots_ready, timeout=5000)  # created between events
    plots = list(view._plots)
    assert len(plots) == 16 and view.curve_data(15)[1].size > 0
    qtbot.wait(100)  # the layout settles
    times = view._times(0)
    for plot, curve in zip(plots, view._curves):  # every plot shows the whole stay and all its values
        (x_lo, x_hi), (y_lo, y_hi) = plot.viewRange()
        x, y = curve.getData()
        assert x_lo <= times.min() and times.max() <= x_hi and x_hi - x_lo < 1.2 * (np.ptp(times) + 1)
        assert y_lo <= y.min() and y.max() <= y_hi
    bmu = np.arange(ds.values.shape[0] * ds.values.shape[1]).reshape(ds.values.shape[:2]) % 9
    for assignments in (bmu, None, bmu):  # the cell strip comes, goes and comes back
        view.set_assignments(assignments)
        assert view._plots[-16:] == plots
    assert len(view._plots) == 17 and view.cell_runs()[2].size > 0
    pixels = widget_pixels(view._layout).astype(int)
    assert (np.abs(pixels[..., :3] - [0xd9, 0xc8, 0xe6]).max(axis=2) < 8).sum() > 50  # the strip is drawn again

    other = _wide_series(seed=3)
    other.feature_names[0] = "lactate"
    view.set_dataset(other)
    assert view._plots == plots  # same variables count: renamed, not rebuilt; the strip went with the old map
    assert "lactate" in view._plots[0].titleLabel.text
    x, y = view.curve_data(0)
    seen = other.mask[0, : int(other.lengths[0]), 0]
    assert y.tolist() == pytest.approx(other.values[0, : int(other.lengths[0]), 0][seen].tolist())

    view.set_dataset(make_series())  # fewer variables: the spare plots go, the time axis moves up
    assert view._plots == plots[:3]
    assert view._plots[-1].getAxis("bottom").labelText == "hour (h)"
    assert not view._plots[0].getAxis("bottom").label.isVisible()


def test_every_patient_plot_shows_the_whole_stay_once_the_layout_settles(qtbot):
    ds = _wide_series(t=35)
    view = shown(qtbot, PatientPlotView(), (430, 330))  # a narrow dock: the plots scroll
    view.set_dataset(ds)
    qtbot.waitUntil(lambda: view.plots_ready, timeout=5000)
    qtbot.wait(100)
    times = view._times(0)
    gap = 1.0
    for plot in view._plots:  # linked views must not pull each other's range narrower or aside
        x_lo, x_hi = plot.viewRange()[0]
        assert x_lo <= times.min() - gap / 2 and times.max() + gap / 2 <= x_hi
        assert x_hi - x_lo < 1.1 * (np.ptp(times) + gap)


def test_patient_view_explains_tables_have_no_time(qtbot):
    view = shown(qtbot, PatientPlotView(), (640, 420))
    view.set_dataset(make_table())
    assert view.patient_count == 0 and "no time axis" in view._title.text()
