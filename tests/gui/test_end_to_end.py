"""The real engine through the real widgets: open the demo, train a tiny model with pause,
resume and stop, train on to the end, save, reopen, and get the same assignments back."""

import numpy as np
import pytest
from gui_fakes import set_tiny_schedule

from dpsom_gui import actions
from dpsom_gui.engine import Engine


@pytest.fixture
def window(make_window):
    return make_window(Engine(), log_path=None)


def test_demo_train_pause_resume_stop_finish_save_reopen(window, qtbot, tmp_path):
    session, panel = window.session, window.training_panel
    assert actions.open_demo(window, size="test")
    assert session.dataset.is_series and session.config.model == "tdpsom"
    set_tiny_schedule(panel, epochs=(2, 2, 1), seed=7)
    assert session.config.grid.n_nodes == 16 and session.config.train.epochs_joint == 2

    panel.start_button.click()
    assert session.state == "running" and not panel.binder.widget("grid.height").isEnabled()
    qtbot.waitUntil(lambda: len(session.history) >= 3, timeout=30000)
    with qtbot.waitSignal(session.training_state_changed, timeout=30000,
                          check_params_cb=lambda state: state == "paused"):
        panel.pause_button.click()
    held = len(session.history)
    qtbot.wait(200)
    assert len(session.history) == held  # nothing moves while paused
    with qtbot.waitSignal(session.training_state_changed, timeout=30000,
                          check_params_cb=lambda state: state == "running"):
        panel.resume_button.click()
    qtbot.waitUntil(lambda: len(session.history) > held + 1, timeout=30000)
    with qtbot.waitSignal(session.training_cancelled, timeout=30000):
        panel.cancel_button.click()
    assert session.can_resume and panel.resume_button.isEnabled()
    stopped_at = session.history[-1]["step"]

    with qtbot.waitSignal(session.training_finished, timeout=120000):
        window.actions["start"].trigger()  # F5 continues the stopped training
    steps = [row["step"] for row in session.history]
    assert steps[0] == 1 and steps == sorted(set(steps)) and steps[-1] > stopped_at
    assert session.run.is_complete and not session.can_resume
    assert window.map_view.layer_names() == ["umatrix", "hits"]
    assert window.map_view.levels() is not None
    bmu = session.results["bmu"]
    assert bmu.shape == session.dataset.values.shape[:2]
    real = session.dataset.step_mask
    assert (bmu[real] >= 0).all() and (bmu[real] < 16).all()
    hits = session.results["hits"]
    assert hits.sum() == real.sum()

    path = str(tmp_path / "demo.h5")
    assert actions.save_project_as(window, path)
    assert not session.dirty
    window.actions["new"].trigger()
    assert session.dataset is None
    assert actions.open_project(window, path)
    assert session.run.is_fitted and session.run.is_complete
    fresh = session.run.assignments(session.dataset)  # computed by the reopened model, not read back
    assert np.array_equal(fresh["bmu"], bmu)
    assert np.allclose(fresh["proba"], session.results["proba"], atol=1e-5)
    window.loss_view.flush()
    assert ("joint", "total") in window.loss_view.curve_keys()
