"""Importing data in the app leaves the scaling to core's rule: values in [0, 1] are kept and
modelled as Bernoulli probabilities, an ordinary table is z-scored, and the user is told why."""

import html

import numpy as np
import pandas as pd
import pytest

from dpsom_gui import actions
from dpsom_gui.dialogs.import_dialog import ImportDialog


@pytest.fixture
def window(make_window):
    return make_window()


def _import(window, qtbot, monkeypatch, path):
    """Import ``path`` through the real dialog with its default choices; the dialog is kept."""
    seen = {}

    def exec_after_check(dialog):
        qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=10000)
        seen["dialog"] = dialog
        dialog.accept()
        return ImportDialog.DialogCode.Accepted

    monkeypatch.setattr(ImportDialog, "exec", exec_after_check)
    assert actions.import_data(window, str(path), confirmed=True)
    return seen["dialog"]


def _likelihood(session) -> str:
    """The likelihood a real run with the session's data, settings and preprocessing trains with."""
    from core.workflow import ModelRun

    run = ModelRun(session.dataset, session.config, session.preprocessing)
    run.set_max_steps(1)
    for _ in run.iter_train():
        pass
    return run.estimator.likelihood_


def _has_text(widget) -> bool:
    image = widget.grab().toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)}
    return len(colours) > 2  # letters drawn, not an empty label


def test_values_in_the_unit_interval_are_kept_and_bernoulli(window, qtbot, monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.uniform(0, 1, size=(80, 6)), columns=[f"pixel{i}" for i in range(6)])
    path = tmp_path / "unit.csv"
    frame.to_csv(path, index=False)

    dialog = _import(window, qtbot, monkeypatch, path)
    assert dialog.scaling.currentData() == "auto"  # the default the user gets
    assert dialog.scaling.currentText() == "Automatic (chosen from the data)"
    assert dialog.scaling.findData("zscore") >= 0 and dialog.scaling.findData("minmax") >= 0  # still offered
    report = dialog.report.toPlainText()
    assert "Scaling chosen from the data: Keep as measured" in report and "Bernoulli" in report
    # The preparation preview uses the resolved scaling: the values are shown unscaled.
    assert "Preparation for training" in report

    session = window.session
    assert session.preprocessing["scaling"] == "none"  # resolved, so the project records it
    assert "Bernoulli" in session.model_suggestion()
    panel_text = window.training_panel._suggestion
    assert "Bernoulli" in panel_text.text() and panel_text.isVisibleTo(window.training_panel)
    window.docks["training"].show()
    qtbot.waitUntil(lambda: panel_text.isVisible(), timeout=5000)
    assert _has_text(panel_text)
    assert _likelihood(session) == "bernoulli"


def test_an_ordinary_table_is_z_scored_and_gaussian(window, qtbot, monkeypatch, tmp_path):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"heart_rate": rng.normal(80, 12, 80), "sodium": rng.normal(140, 4, 80),
                          "lactate": rng.gamma(2.0, 1.0, 80)})
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)

    dialog = _import(window, qtbot, monkeypatch, path)
    assert "Scaling chosen from the data: Standardise" in dialog.report.toPlainText()
    assert window.session.preprocessing["scaling"] == "zscore"
    assert "z-scored" in window.session.model_suggestion()
    assert _likelihood(window.session) == "gaussian"

    # "Why these settings?" opens every reason the rule gave, as `dpsom train` prints them.
    panel = window.training_panel
    window.docks["training"].show()
    qtbot.waitUntil(lambda: panel._suggestion.isVisible(), timeout=5000)
    assert "Why these settings?" in panel._suggestion.text() and not panel._reasons.isVisible()
    panel._suggestion.linkActivated.emit("reasons")
    qtbot.waitUntil(lambda: panel._reasons.isVisible(), timeout=5000)
    reasons = window.session.settings_reasons()
    assert any("rows per batch" in r for r in reasons)
    assert all(html.escape(r) in panel._reasons.text() for r in reasons)
    assert _has_text(panel._reasons)
    panel._suggestion.linkActivated.emit("reasons")  # and closes them again
    assert not panel._reasons.isVisible()


def test_a_scaling_the_user_chooses_is_used_as_chosen(window, qtbot, monkeypatch, tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "unit.csv"
    pd.DataFrame(rng.uniform(0, 1, size=(40, 3)), columns=list("abc")).to_csv(path, index=False)

    def exec_with_zscore(dialog):
        dialog.scaling.setCurrentIndex(dialog.scaling.findData("zscore"))
        qtbot.waitUntil(lambda: dialog.dataset is not None, timeout=10000)
        assert "Scaling chosen from the data" not in dialog.report.toPlainText()
        dialog.accept()
        return ImportDialog.DialogCode.Accepted

    monkeypatch.setattr(ImportDialog, "exec", exec_with_zscore)
    assert actions.import_data(window, str(path), confirmed=True)
    assert window.session.preprocessing["scaling"] == "zscore"
    assert "Scaling" not in window.session.model_suggestion()
