"""Import, error and preferences dialogs."""

import pytest
from PySide6.QtCore import Qt

from dpsom_gui.dialogs.error_dialog import ErrorDialog
from dpsom_gui.dialogs.import_dialog import ImportDialog, roles_to_options
from dpsom_gui.dialogs.preferences_dialog import PreferencesDialog
from dpsom_gui.engine import Engine


@pytest.fixture
def wide_csv(tmp_path):
    path = tmp_path / "wide.csv"
    rows = ["patient_id;hour;heart rate (bpm);lactate;died"]
    for p in range(5):
        for h in range(8):
            lactate = "" if h % 3 else f"{1 + p * 0.1:.1f}".replace(".", ",")
            rows.append(f"P{p};{h};{80 + p + h};{lactate};{int(p == 2)}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def open_dialog(qtbot, path, **kwargs):
    dialog = ImportDialog(str(path), Engine(), log_path="/tmp/dpsom-studio.log", **kwargs)
    qtbot.addWidget(dialog)
    return dialog


def test_import_dialog_detects_the_file_and_suggests_roles(qtbot, wide_csv):
    dialog = open_dialog(qtbot, wide_csv, auto_check=False)
    assert "semicolon" in dialog._detected.text() and "decimal mark ','" in dialog._detected.text()
    assert dialog.column_roles() == {"patient_id": "id", "hour": "time", "heart rate (bpm)": "feature",
                                     "lactate": "feature", "died": "label"}
    assert "one column per variable" in dialog._reading_as.text()
    assert not dialog.import_button.isEnabled()  # nothing is committed before a check
    assert dialog.preview_model.rowCount() == 1 + 40  # role row + preview rows


def test_check_reports_what_was_read_and_enables_import(qtbot, wide_csv):
    dialog = open_dialog(qtbot, wide_csv, auto_check=False)
    with qtbot.waitSignal(dialog.check_finished, timeout=10000) as blocker:
        dialog.check()
    assert blocker.args == [True]
    ds = dialog.dataset
    assert ds.is_series and ds.values.shape == (5, 8, 2) and "died" in ds.labels
    report = dialog.report.toPlainText()
    assert "Read 5 patients" in report and "Preparation for training" in report
    assert dialog.import_button.isEnabled()
    assert dialog.preprocessing() == {"scaling": "auto", "ffill_limit": None, "clip_quantiles": None}
    assert "Scaling chosen from the data: Standardise" in report and "time series" in report


def test_changing_a_role_invalidates_the_check_until_it_runs_again(qtbot, wide_csv):
    dialog = open_dialog(qtbot, wide_csv, auto_check=False)
    with qtbot.waitSignal(dialog.check_finished, timeout=10000):
        dialog.check()
    with qtbot.waitSignal(dialog.check_finished, timeout=10000):
        dialog.set_role("lactate", "ignore")
        assert not dialog.import_button.isEnabled() and dialog.dataset is None
    assert dialog.dataset.n_features == 1 and dialog.import_button.isEnabled()


def test_impossible_roles_are_explained_without_reading(qtbot, wide_csv):
    dialog = open_dialog(qtbot, wide_csv, auto_check=False)
    dialog.set_role("hour", "id")
    assert "only one identifier" in dialog._reading_as.text()
    assert dialog._job is None and not dialog.import_button.isEnabled()


def test_a_refused_file_shows_the_reason_with_line_and_column(qtbot, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,hr,sbp\n1,80,120\n2,81,121\n3,abc,122\n4,82,123\n")
    dialog = open_dialog(qtbot, path, auto_check=False)
    dialog.set_role("hr", "feature")
    dialog._debounce.stop()
    with qtbot.waitSignal(dialog.check_finished, timeout=10000) as blocker:
        dialog.check()
    assert blocker.args == [False]
    text = dialog.report.toPlainText()
    assert "bad.csv, line 4, column 'hr'" in text
    assert "cannot be imported" in dialog.status.text()
    assert not dialog.import_button.isEnabled() and dialog.dataset is None
    dialog.details_button.click()  # details on demand, in a non-modal message
    assert dialog.error_dialog.isVisible() and not dialog.error_dialog.isModal()
    assert "Traceback" in dialog.error_dialog.details.toPlainText()


def test_an_unreadable_file_is_explained_in_the_dialog(qtbot, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    dialog = open_dialog(qtbot, empty)
    assert "cannot be read" in dialog._detected.text()
    assert not dialog.import_button.isEnabled() and not dialog.check_button.isEnabled()


def test_cancelling_during_a_check_leaves_no_thread(qtbot, wide_csv):
    dialog = open_dialog(qtbot, wide_csv, auto_check=True)
    dialog.reject()
    assert dialog._job is None


@pytest.mark.parametrize("roles, expected", [
    ({"a": "feature"}, {"format": "table", "id_col": None, "time_col": None, "labels": [], "features": ["a"]}),
    ({"id": "id", "t": "time", "x": "feature", "y": "label"},
     {"format": "wide", "id_col": "id", "time_col": "t", "labels": ["y"], "features": ["x"]}),
    ({"id": "id", "t": "time", "v": "variable", "x": "value"},
     {"format": "long", "id_col": "id", "time_col": "t", "labels": [], "var_col": "v", "value_col": "x"}),
])
def test_roles_become_reader_options(roles, expected):
    assert roles_to_options(roles) == (expected, None)


@pytest.mark.parametrize("roles, problem", [
    ({"a": "id", "b": "id", "c": "feature"}, "only one identifier"),
    ({"a": "time", "c": "feature"}, "needs an identifier"),
    ({"a": "id", "t": "time", "v": "variable"}, "both a 'Variable name' and a 'Value'"),
    ({"a": "label"}, "at least one column as a measurement"),
])
def test_impossible_roles_say_what_to_fix(roles, problem):
    options, text = roles_to_options(roles)
    assert options == {} and problem in text


def test_error_dialog_is_non_modal_with_details_on_demand(qtbot):
    dialog = ErrorDialog("Training stopped", "The loss became NaN.", "Traceback: ...", "/tmp/x.log")
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.isModal() and dialog.windowModality() == Qt.WindowModality.NonModal
    assert not dialog.details.isVisible()
    dialog.details_button.click()
    assert dialog.details.isVisible() and dialog.details.toPlainText() == "Traceback: ..."
    assert "/tmp/x.log" in dialog.log_label.text()
    dialog.copy_button.click()
    from PySide6.QtGui import QGuiApplication

    assert "Traceback" in QGuiApplication.clipboard().text()


def test_preferences_are_written_only_on_ok(qtbot, prefs):
    dialog = PreferencesDialog(prefs)
    qtbot.addWidget(dialog)
    dialog.fields["autosave_minutes"].setValue(0)
    assert dialog.fields["autosave_minutes"].text() == "Never"
    dialog.reject()
    assert prefs.autosave_minutes == 5
    dialog = PreferencesDialog(prefs)
    qtbot.addWidget(dialog)
    dialog.fields["refresh_hz"].setValue(10)
    dialog.accept()
    assert prefs.refresh_hz == 10
    for box in dialog.fields.values():
        assert len(box.toolTip().split()) >= 6


# -------------------------------------------------------------- names and units
def checked_dialog(qtbot, path):
    dialog = open_dialog(qtbot, path, auto_check=False)
    with qtbot.waitSignal(dialog.check_finished, timeout=10000):
        dialog.check()
    return dialog


def test_names_and_units_are_offered_after_a_check_and_applied_on_import(qtbot, wide_csv):
    dialog = checked_dialog(qtbot, wide_csv)
    assert dialog.report_tabs.isTabEnabled(1)
    # the unit in the header was read as the unit; the name shown drops it
    assert dialog.names_and_units() == {"heart rate (bpm)": ("heart rate", "bpm"), "lactate": ("lactate", "")}
    dialog.set_name("lactate", "Lactate", "mmol/L")
    dialog.set_name("heart rate (bpm)", "Heart rate")
    dialog.import_button.click()
    assert dialog.result() == dialog.DialogCode.Accepted
    ds = dialog.dataset
    assert ds.feature_names == ["Heart rate", "Lactate"] and ds.units == ["bpm", "mmol/L"]
    assert "The column 'lactate' is shown as 'Lactate' in mmol/L." in ds.warnings
    assert ds.values.shape == (5, 8, 2)  # the data themselves are untouched


def test_repeated_or_empty_names_block_the_import_with_a_reason(qtbot, wide_csv):
    dialog = checked_dialog(qtbot, wide_csv)
    dialog.set_name("lactate", "heart rate")
    assert not dialog.import_button.isEnabled()
    assert "both called 'heart rate'" in dialog.names_problem.text()
    dialog.set_name("lactate", "  ")
    assert "Give the column 'lactate' a name." == dialog.names_problem.text()
    dialog.set_name("lactate", "Lactate")
    assert dialog.import_button.isEnabled() and dialog.names_problem.text() == ""


def test_chosen_names_survive_a_new_check_and_the_project_file(qtbot, wide_csv, tmp_path):
    from core.config import make_config
    from core.io.project_h5 import load_project, save_project

    dialog = checked_dialog(qtbot, wide_csv)
    dialog.set_name("lactate", "Lactate", "mmol/L")
    with qtbot.waitSignal(dialog.check_finished, timeout=10000):
        dialog.aggregate.setCurrentIndex(1)  # another option: the file is read again
    assert dialog.names_and_units()["lactate"] == ("Lactate", "mmol/L")
    dialog.import_button.click()
    engine = Engine()
    project = engine.empty_project(make_config("tdpsom", input_kind="series"), dialog.dataset)
    save_project(tmp_path / "named.dpsom", project)
    loaded = load_project(tmp_path / "named.dpsom").dataset
    assert loaded.feature_names == ["heart rate", "Lactate"] and loaded.units == ["bpm", "mmol/L"]
