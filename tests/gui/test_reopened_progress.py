"""A trained project saved and opened again shows its learning progress in the plain view,
drawn from the one row per pass over the data that the project file keeps."""

import numpy as np
import pytest
from approval import widget_pixels
from gui_fakes import FakeEngine, FakeProjectRun
from PySide6.QtWidgets import QApplication

from dpsom_gui import actions
from dpsom_gui.views.loss_view import _PHASE_COLOURS, learning_progress

#: Passes per phase of a short run: too few single steps for the smoothed curve.
PASSES = {"pretrain": 4, "som_init": 2, "joint": 4}


class PerPassRun(FakeProjectRun):
    """A fake run whose project keeps a history as core's trainer writes it: one row per
    pass (epoch) with the mean of each loss term, the step count at its end."""

    def to_project(self):
        project = super().to_project()
        rows, step = [], 0
        for phase, passes in PASSES.items():
            for epoch in range(passes):
                step += 25
                total = 3.0 / (1 + epoch) + (0.5 if phase == "joint" else 0.0)
                rows.append({"phase": phase, "epoch": epoch, "step": step, "total": total, "elbo": total * 0.8})
        project.history = rows
        return project


class PerPassEngine(FakeEngine):
    def make_run(self, dataset, config, preprocessing=None):
        run = PerPassRun(dataset, config, preprocessing)
        self.runs.append(run)
        return run

    def run_from_project(self, project):
        return PerPassRun.from_project(project)


@pytest.fixture(autouse=True)
def no_questions(monkeypatch):
    monkeypatch.setattr(actions, "ask_save_changes", lambda window: "discard")


def colour_pixels(pixels: np.ndarray, hex_colour: str, tolerance: int = 40) -> int:
    """How many pixels of an RGBA picture are close to ``hex_colour``."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels[..., :3].astype(int) - rgb).max(axis=2) <= tolerance).sum())


def test_per_pass_rows_make_a_curve_where_smoothing_would_leave_one_point():
    passes = np.array([3.0, 1.5, 1.0, 0.75])
    assert np.isfinite(learning_progress(passes)).sum() == 1  # smoothed: nothing to draw
    # unsmoothed: 0 % at the first pass, 100 % at the best, linear in the loss between
    assert np.allclose(learning_progress(passes, smooth=False), [0.0, 100 * 1.5 / 2.25, 100 * 2.0 / 2.25, 100.0])
    assert learning_progress(np.full(3, 2.0), smooth=False).tolist() == [0.0, 0.0, 0.0]


def test_a_reopened_trained_project_draws_its_learning_progress(qtbot, make_window, tmp_path):
    window = make_window(PerPassEngine(), size=(1280, 800))
    qtbot.waitExposed(window)
    window.session.open_demo("test")
    with qtbot.waitSignal(window.session.training_finished, timeout=10000):
        window.session.start_training()
    path = tmp_path / "trained.h5"
    assert actions.save_project_as(window, str(path))
    window.session.new_project()
    assert window.loss_view.curve_keys() == []

    assert actions.open_project(window, str(path))  # as File > Open project does
    view = window.loss_view
    assert not view.detailed  # the plain view, as a user first sees it
    window.docks["losses"].raise_()
    view.flush()
    QApplication.processEvents()
    for phase in ("pretrain", "joint"):
        steps, progress = view.progress_data(phase)
        assert np.isfinite(progress).sum() == PASSES[phase]
        assert progress[0] == 0.0 and progress[-1] == 100.0
    assert "Too few training steps" not in view._help.text()
    # the curves are on screen: lines in the phases' colours across the plot
    pixels = widget_pixels(view._plot)
    for phase in ("pretrain", "joint"):
        drawn = pixels[..., :3]
        assert colour_pixels(pixels, _PHASE_COLOURS[phase]) > 60, phase
        columns = np.nonzero((np.abs(drawn.astype(int) - np.array(
            [int(_PHASE_COLOURS[phase][i:i + 2], 16) for i in (1, 3, 5)])).max(axis=2) <= 40).any(axis=0))[0]
        assert columns.max() - columns.min() > 40, phase  # a line across the phase, not a dot
    window.session.shutdown()
    window.estimator.wait()
    window.close()
