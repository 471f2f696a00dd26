"""The journeys view: plays, pauses, steps and scrubs; trails fade and split at the seam; soft
assignment and forecasts follow the time; the linked plot's cursor follows too; GIF export."""

import numpy as np
import pytest
from approval import assert_image_approved, shown, widget_pixels
from PySide6.QtGui import QImageReader
from PySide6.QtCore import Qt

from dpsom_gui.exporting import export_animation
from dpsom_gui.views.trajectory_view import FORECAST_SAMPLES, MAX_FORECAST_PATIENTS, TrajectoryView


@pytest.fixture
def view(qtbot, explorer):
    v = shown(qtbot, TrajectoryView(), (820, 640))
    v.set_source(explorer)
    return v


def test_builds_with_a_sane_minimum_size(qtbot):
    v = TrajectoryView()
    qtbot.addWidget(v)
    v.show()
    size = v.minimumSize()
    assert 300 <= size.width() <= 700 and 250 <= size.height() <= 600
    assert not v.play_button.isEnabled()  # nothing to play before a model


def test_lists_patients_and_animates_the_chosen_ones(view, explorer):
    assert view.listed_patients() == list(range(16))
    assert view.patients == [0] and view.end_time == explorer.dataset.lengths[0] - 1
    view.set_patients([0, 1, 2])
    assert view.end_time == max(explorer.dataset.lengths[[0, 1, 2]]) - 1
    view.set_time(2.0)
    centres = explorer.grid.positions()
    expected = [centres[explorer.track(p).nodes[min(2, explorer.track(p).length - 1)]] for p in (0, 1, 2)]
    assert np.allclose(view.marker_positions(), expected)
    selected = sorted(int(i.data(Qt.ItemDataRole.UserRole)) for i in view._list.selectedItems())
    assert selected == [0, 1, 2]


def test_play_advances_by_wall_clock_pause_holds_step_and_scrub(view, qtbot):
    view.set_patients([0])
    view.set_speed(4.0)
    view.set_time(0.0)
    view.play()
    assert view.is_playing and view.play_button.isChecked()
    view.tick(0.5)  # half a second at 4 steps per second
    assert view.time == pytest.approx(2.0)
    qtbot.waitUntil(lambda: view.time > 2.2, timeout=3000)  # the timer moves it on its own
    view.pause()
    held = view.time
    qtbot.wait(150)
    assert view.time == held and not view.is_playing and not view.play_button.isChecked()
    view.step(1)
    assert view.time == np.floor(held) + 1
    view.step(-1)
    assert view.time == np.floor(held)
    view.slider.setValue(55)  # scrub: 10 slider ticks per step
    assert view.time == pytest.approx(5.5) and not view.is_playing
    view.play_button.click()
    assert view.is_playing
    view.tick(100.0)  # runs to the end and stops there
    assert view.time == view.end_time and not view.is_playing
    view.play()  # playing again starts over
    assert view.time == 0.0
    view.pause()


def test_trails_fade_and_split_at_the_torus_seam(view, explorer):
    view.set_patients([0])
    view.trail_box.setValue(3)
    view.set_time(3.5)  # halfway from cell 3 (right edge) to cell 4 (next row, left edge)
    assert np.allclose(view.marker_positions(), [[4.0, 1.0]])
    view.set_time(4.0)
    trails = view.trails_item
    # steps 1-2, 2-3 and the two pieces of 3-4 (out at the right edge, in at the left)
    assert trails.n_lines == 4
    lines = np.concatenate([[(l.x1(), l.y1(), l.x2(), l.y2()) for l in g] for _, g in trails._groups])
    assert not np.any(np.abs(lines[:, 2] - lines[:, 0]) > 1.01)  # never a line across the map
    alphas = sorted({pen.color().alpha() for pen, _ in trails._groups})
    assert len(alphas) >= 2  # older pieces are fainter


def test_soft_assignment_glow_follows_the_time(view, explorer):
    view.set_patients([0])
    view.set_time(1.0)
    node = explorer.track(0).nodes[1]
    assert view.heat_item.opacity_of(node) == pytest.approx(0.75)  # the most likely cell
    view.heat_check.setChecked(False)
    assert not view.heat_item.isVisible()


def wait_forecast(qtbot, view, action):
    with qtbot.waitSignal(view.forecast_ready, timeout=10000):
        action()


def test_forecast_drawn_ahead_for_the_first_patients_and_cached(view, explorer, qtbot):
    run = explorer.run
    view.set_patients(list(range(8)))
    wait_forecast(qtbot, view, lambda: view.set_time(3.0))
    f = view.forecast
    assert f is not None and f.patients == tuple(range(MAX_FORECAST_PATIENTS))
    assert run.forecast_calls[-1] == (tuple(range(MAX_FORECAST_PATIENTS)), 4, 6, FORECAST_SAMPLES)  # history = step + 1
    assert view.forecast_item.n_paths == MAX_FORECAST_PATIENTS and view.forecast_item.n_rings > 0
    calls = len(run.forecast_calls)
    view.set_time(3.6)  # same step: nothing recomputed
    view.set_time(3.0)
    assert len(run.forecast_calls) == calls
    x, y = view._forecast_curves[0].getData()
    assert x[0] == pytest.approx(3.0) and len(x) == 7  # from the current hour, 6 steps ahead
    assert y[1:].tolist() == pytest.approx(f.features[0, :, 0].tolist())
    lo, hi = view._band_lo.getData()[1], view._band_hi.getData()[1]
    assert lo[0] == hi[0] == pytest.approx(y[0])  # the band starts at the last measurement
    assert np.all(lo[1:] <= hi[1:]) and np.any(lo[1:] < hi[1:])
    wait_forecast(qtbot, view, lambda: view.horizon_box.setValue(2))
    assert view.forecast.nodes.shape == (MAX_FORECAST_PATIENTS, 2)
    view.forecast_check.setChecked(False)
    assert not view.forecast_item.isVisible()


def test_while_playing_only_the_expected_path_is_computed(view, explorer, qtbot):
    run = explorer.run
    view.set_patients([0, 1])
    wait_forecast(qtbot, view, lambda: view.set_time(2.0))  # paused: with samples
    assert run.forecast_calls[-1] == ((0, 1), 3, 6, FORECAST_SAMPLES)
    view.set_speed(0.5)  # the clock moves slowly while we wait for the worker
    view.play()
    wait_forecast(qtbot, view, lambda: view.tick(2.0))  # to step 3: the quick forecast without samples
    assert run.forecast_calls[-1] == ((0, 1), 4, 6, 0)
    assert view.forecast.sample_nodes is None and view.forecast_item.n_rings == 0
    view.set_time(2.2)  # back at step 2 while playing: the sampled one is kept and drawn at once
    assert view.forecast.sample_nodes is not None
    view.pause()
    wait_forecast(qtbot, view, lambda: view.step(1))  # paused at step 3: now with samples
    assert run.forecast_calls[-1] == ((0, 1), 4, 6, FORECAST_SAMPLES) and view.forecast_item.n_rings > 0


def test_forecasts_are_computed_off_the_gui_thread(view, explorer, qtbot):
    import threading

    threads = []
    real = explorer.run.forecast

    def spy(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    explorer.run.forecast = spy
    view.set_patients([2])
    wait_forecast(qtbot, view, lambda: view.set_time(3.0))
    assert threads and threading.get_ident() not in threads
    assert view.forecast is not None and view.forecast.patients == (2,)


def test_a_failing_forecast_is_logged_and_named_under_the_map(view, explorer, qtbot, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the model has no history here")

    explorer.run.forecast = broken
    view.set_patients([4])
    with caplog.at_level("ERROR"):
        wait_forecast(qtbot, view, lambda: view.set_time(2.0))
    assert view.notice.isVisible() and "the model has no history here" in view.notice.text()
    assert any("forecast could not be computed" in r.getMessage() for r in caplog.records)


def test_no_forecast_is_computed_while_the_view_is_hidden(view, explorer, qtbot):
    run = explorer.run
    qtbot.waitUntil(lambda: view._job is None, timeout=10000)
    view.hide()
    calls = len(run.forecast_calls)
    view.set_patients([3])
    view.set_time(4.0)
    assert len(run.forecast_calls) == calls
    wait_forecast(qtbot, view, view.show)
    assert run.forecast_calls[-1] == ((3,), 5, 6, FORECAST_SAMPLES)


def test_linked_plot_shows_measurements_and_a_cursor_at_the_time(view, explorer):
    ds = explorer.dataset
    view.set_patients([1])
    view.variable_box.setCurrentIndex(1)  # lactate: patient 1 misses one value
    x, y = view.curve_data(0)
    n = int(ds.lengths[1])
    seen = ds.mask[1, :n, 1]
    assert x.tolist() == ds.times[1, :n][seen].tolist()
    assert y.tolist() == pytest.approx(ds.values[1, :n, 1][seen].tolist())
    view.set_time(2.5)
    assert view.cursor.value() == pytest.approx(2.5)
    assert "step 3 of" in view._time_label.text()
    assert view.plot.getAxis("left").labelText == "lactate (mmol/L)"


def test_filters_by_id_outcome_and_cells(view, explorer):
    view._search.setText("P01")
    assert view.listed_patients() == list(range(10, 16))
    view._search.setText("")
    view._outcome_box.setCurrentIndex(view._outcome_box.findData("death_24h"))
    assert view.listed_patients() == explorer.patients_matching(outcome="death_24h").tolist()
    view._outcome_box.setCurrentIndex(0)
    view.map.set_selected_nodes([0])
    view._node_box.setCurrentIndex(1)
    assert view.listed_patients() == explorer.patients_matching(nodes=[0]).tolist()
    view._list.item(0).setSelected(True)
    assert view.patients == [explorer.patients_matching(nodes=[0])[0]]


def test_animation_exports_as_a_gif_qt_can_play(view, tmp_path):
    view.set_patients([0, 1])
    view.set_speed(8.0)
    path = tmp_path / "journeys.gif"
    frames = export_animation(view, path, fps=8)
    assert frames == int(round(view.end_time / 8.0 * 8)) + 1
    reader = QImageReader(str(path))
    assert reader.imageCount() == frames
    first, last = reader.read(), None
    while True:
        image = reader.read()
        if image.isNull():
            break
        last = image
    assert first.size() == view.canvas.size()
    assert first != last  # the markers moved
    assert view.time == 0.0  # the view is back where it was


def test_journeys_look_as_approved(view, qtbot):
    view.set_patients([0, 1, 2])
    wait_forecast(qtbot, view, lambda: view.set_time(4.5))
    view.map.flush()
    canvas = view.map.plot_widget()
    canvas.setFixedSize(380, 320)
    view.map.flush()
    pixels = widget_pixels(canvas)
    assert len(np.unique(pixels[..., :3].reshape(-1, 3) // 16, axis=0)) > 30
    assert_image_approved(canvas, "part2_journeys", tolerance=0.03)


@pytest.fixture
def hopping_explorer():
    """The fake run with one brief, weakly supported hop of patient 0 to a far cell at step 2."""
    from part2_fakes import FakeTrainedRun, make_explorer

    run = FakeTrainedRun()
    walked, far = int(run._bmu[0, 2]), 10
    assert run.grid.distances()[walked, far] > 1.5
    p = np.full(run.grid.n_nodes, 0.25 / (run.grid.n_nodes - 2))
    p[far], p[walked] = 0.40, 0.35
    run._proba[0, 2], run._bmu[0, 2] = p, far
    return make_explorer(run), walked, far


def trail_lines(view):
    groups = view.trails_item._groups
    return np.concatenate([[(l.x1(), l.y1(), l.x2(), l.y2()) for l in g] for _, g in groups])


def test_journeys_follow_the_smoothed_path_by_default_and_the_hourly_cells_on_request(qtbot, hopping_explorer):
    explorer, walked, far = hopping_explorer
    view = shown(qtbot, TrajectoryView(), (820, 640))
    view.set_source(explorer)
    assert view.smooth_check.isChecked() and view.smooth_check.isEnabled()
    assert "most likely route" in view.smooth_check.toolTip()
    view.forecast_check.setChecked(False)
    view.heat_check.setChecked(False)
    view.set_patients([0])
    centres = explorer.grid.positions()
    view.set_time(2.0)
    assert np.allclose(view.marker_positions(), [centres[walked]])  # the hop is passed over
    view.set_time(4.0)
    view.map.flush()
    smooth_lines, smooth_pixels = trail_lines(view), widget_pixels(view.map.plot_widget())

    view.smooth_check.setChecked(False)  # hour by hour: the hop is drawn
    view.map.flush()
    hourly_lines, hourly_pixels = trail_lines(view), widget_pixels(view.map.plot_widget())
    assert smooth_lines.shape != hourly_lines.shape or not np.allclose(smooth_lines, hourly_lines)
    assert np.abs(smooth_pixels.astype(int) - hourly_pixels.astype(int)).max() > 60
    view.set_time(2.0)
    assert np.allclose(view.marker_positions(), [centres[far]])

    view.smooth_check.setChecked(True)
    view.set_time(4.0)
    view.map.flush()
    assert np.allclose(trail_lines(view), smooth_lines)
