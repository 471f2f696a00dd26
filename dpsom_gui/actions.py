"""Menu and toolbar actions as plain functions of the main window.

Each action takes the :class:`~dpsom_gui.main_window.MainWindow` (for its session,
preferences and message helpers) and, where a file is involved, an optional path so tests
and the command line can skip the file dialog. :data:`ACTIONS` lists them with their text,
shortcut and plain-words tooltip; :func:`build_actions` turns that list into ``QAction``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMessageBox

from .dialogs.import_dialog import ImportDialog
from .dialogs.preferences_dialog import PreferencesDialog
from .resources import icon

__all__ = ["ACTIONS", "ActionSpec", "build_actions", "new_project", "open_project", "save_project",
           "save_project_as", "import_data", "open_demo", "start_or_resume", "pause_training",
           "stop_training", "show_preferences", "confirm_discard", "ask_save_changes", "ask_replace_model",
           "wait_for_loading",
           "export_assignments", "export_node_summary", "export_selection", "export_view_picture",
           "export_animation", "show_user_guide", "show_about", "ask_export_path", "PICTURE_VIEWS",
           "PROJECT_FILTER", "DATA_FILTER"]

PROJECT_FILTER = "DPSOM projects (*.h5)"
DATA_FILTER = ("Data files (*.csv *.tsv *.txt *.xlsx *.xlsm *.parquet *.pq);;"
               "All files (*)")
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".dat", ".xlsx", ".xlsm", ".parquet", ".pq")


# ------------------------------------------------------------------------ prompts
def ask_save_changes(window) -> str:
    """Ask what to do with unsaved changes: "save", "discard" or "cancel"."""
    box = QMessageBox(window)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Unsaved changes")
    box.setText(f"Save the changes to {window.session.title}?")
    box.setInformativeText("If you don't save, the data and any training since the last save are lost.")
    save = box.addButton("Save", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Don't save", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(save)
    box.exec()
    clicked = box.clickedButton()
    return "save" if clicked is save else "discard" if clicked is discard else "cancel"


def ask_replace_model(window) -> str:
    """Ask before training over a trained map: "keep", "new_project" or "replace"."""
    session = window.session
    box = QMessageBox(window)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Train a new map?")
    if getattr(session.run, "is_complete", False):
        box.setText("This project already holds a trained map. What should happen to it?")
    else:
        box.setText("This project holds a partly trained map (Resume continues it). Start a new one instead?")
    unsaved = session.dirty or session.path is None
    box.setInformativeText(
        ("The current map is not saved: replacing it loses it. " if unsaved else "")
        + "A new project keeps the current one as it is and trains with the same data and settings.")
    keep = box.addButton("Keep the current map", QMessageBox.ButtonRole.RejectRole)
    new = box.addButton("Train in a new project", QMessageBox.ButtonRole.AcceptRole)
    replace = box.addButton("Replace the map", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.exec()
    clicked = box.clickedButton()
    return "new_project" if clicked is new else "replace" if clicked is replace else "keep"


def ask_stop_training(window) -> bool:
    """Ask before stopping a running training (closing the window, opening another file)."""
    answer = QMessageBox.question(
        window, "Training is running",
        "A model is training. Stop it? What it has learnt so far is kept, and you can resume "
        "training after saving the project.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_open_path(window, title: str, file_filter: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(window, title, window.prefs.get("last_directory"), file_filter)
    return path or None


def ask_save_path(window) -> str | None:
    start = window.session.path or str(Path(window.prefs.get("last_directory") or ".") / "project.h5")
    path, _ = QFileDialog.getSaveFileName(window, "Save project as", start, PROJECT_FILTER)
    if not path:
        return None
    return path if path.lower().endswith(".h5") else path + ".h5"


def confirm_discard(window) -> bool:
    """True when it is fine to replace the current project (saved, or the user agreed)."""
    session = window.session
    if session.is_training:
        if not ask_stop_training(window):
            return False
        session.shutdown()
    if not session.dirty or session.dataset is None:
        return True
    answer = ask_save_changes(window)
    if answer == "save":
        return save_project(window)
    return answer == "discard"


def _remember_directory(window, path: str) -> None:
    window.prefs.set("last_directory", str(Path(path).resolve().parent))


def wait_for_loading(window, start) -> bool:
    """Call ``start()`` (which begins a background read in the session) and keep the event
    loop running until the session's ``loading_ended``: the window stays drawn and shows it
    is busy while the file is read on a worker thread. True when the new project arrived."""
    from PySide6.QtCore import QEventLoop

    session = window.session
    loop = QEventLoop()
    outcome = {"loaded": False}

    def loaded() -> None:
        outcome["loaded"] = True

    session.project_loaded.connect(loaded)
    session.loading_ended.connect(loop.quit)
    try:
        start()
        if session.is_loading:
            loop.exec()
    finally:
        session.project_loaded.disconnect(loaded)
        session.loading_ended.disconnect(loop.quit)
    return outcome["loaded"]


# ------------------------------------------------------------------------ project
def new_project(window) -> None:
    if confirm_discard(window):
        window.session.new_project()


def open_project(window, path: str | None = None) -> bool:
    """Open a project file (or hand a data file to the import dialog)."""
    if not confirm_discard(window):
        return False
    path = path or ask_open_path(window, "Open project", PROJECT_FILTER + ";;All files (*)")
    if not path:
        return False
    if Path(path).suffix.lower() in DATA_SUFFIXES or Path(path).is_dir():
        return import_data(window, path, confirmed=True)
    _remember_directory(window, path)
    try:
        opened = wait_for_loading(window, lambda: window.session.open_project_in_background(path))
    except Exception as exc:  # noqa: BLE001 - e.g. still training; reported, the app carries on
        window.show_error("Cannot open the project", str(exc), _traceback(exc))
        return False
    if not opened:  # the session reported why (loading_failed) and kept the current project
        window.prefs.remove_recent_file(path)
    window.refresh_recent_files()
    return opened


def save_project(window) -> bool:
    """Save to the project's file, asking for a name the first time."""
    if window.session.path is None:
        return save_project_as(window)
    return _save(window, window.session.path)


def save_project_as(window, path: str | None = None) -> bool:
    if window.session.dataset is None:
        window.statusBar().showMessage("Nothing to save yet: import data or open the demo first.", 5000)
        return False
    path = path or ask_save_path(window)
    if not path:
        return False
    _remember_directory(window, path)
    return _save(window, path)


def _data_file(session) -> str | None:
    """The file the session's data were read from, when it is one."""
    for source in (getattr(getattr(session, "run", None), "read_options", None) or {}).get("path"), \
            getattr(session.dataset, "source", None):
        if source and Path(str(source)).is_file():
            return str(source)
    return None


def _output_problem(window, label: str, path: str, *, project_is_input: bool) -> str | None:
    """Why ``path`` must not be written (as ``dpsom`` would say it), or None.

    An output never replaces the data file or, for exports, the open project; a project
    another process is training is not saved over.
    """
    from core.io.outputs import ProjectBusy, OutputPathError, check_outputs, check_unlocked

    session = window.session
    inputs = {"the data file": _data_file(session)}
    if project_is_input:
        inputs["the open project"] = session.path
    try:
        check_outputs({label: path}, inputs)
        if not project_is_input:
            check_unlocked(path)
    except (OutputPathError, ProjectBusy) as exc:
        return str(exc)
    return None


def _save(window, path: str) -> bool:
    problem = _output_problem(window, "the project file", path, project_is_input=False)
    if problem:
        window.show_error("The project was not saved", problem)
        return False
    try:
        window.session.save_project(path)
    except Exception as exc:  # noqa: BLE001
        window.show_error("The project was not saved", f"{exc}. Try another folder or file name.",
                          _traceback(exc))
        return False
    window.refresh_recent_files()
    return True


# --------------------------------------------------------------------------- data
def import_data(window, path: str | None = None, confirmed: bool = False) -> bool:
    """Choose a data file, check it in the import dialog, and use it if the user agrees."""
    if not confirmed and not confirm_discard(window):
        return False
    path = path or ask_open_path(window, "Import data", DATA_FILTER)
    if not path:
        return False
    _remember_directory(window, path)
    dialog = ImportDialog(path, window.session.engine, window, log_path=window.log_path)
    window.import_dialog = dialog
    accepted = dialog.exec() == ImportDialog.DialogCode.Accepted
    window.import_dialog = None
    if not accepted or dialog.dataset is None:
        return False
    try:
        window.session.load_dataset(dialog.dataset, dialog.preprocessing(), dialog.column_roles())
    except Exception as exc:  # noqa: BLE001
        window.show_error("The data could not be used", str(exc), _traceback(exc))
        return False
    return True


def open_demo(window, size: str = "demo") -> bool:
    if not confirm_discard(window):
        return False
    try:
        return wait_for_loading(window, lambda: window.session.open_demo_in_background(size))
    except Exception as exc:  # noqa: BLE001
        window.show_error("The demo could not be opened", str(exc), _traceback(exc))
        return False


# ----------------------------------------------------------------------- training
def start_training(window, config=None) -> bool:
    """Train a new model; a trained map is never replaced without asking (and saving first
    when the user wants it kept in its own project)."""
    session = window.session
    if session.is_trained:
        answer = ask_replace_model(window)
        if answer == "keep":
            return False
        if answer == "new_project":
            if session.dirty or session.path is None:
                choice = ask_save_changes(window)
                if choice == "cancel" or (choice == "save" and not save_project(window)):
                    return False
            session.start_new_run_project()
    try:
        session.start_training(config)
    except Exception as exc:  # noqa: BLE001
        window.show_error("Training could not start", str(exc), _traceback(exc))
        return False
    return True


def start_or_resume(window) -> bool:
    """F5: resume a paused or stopped training, otherwise start a new one."""
    session = window.session
    if session.can_resume:
        try:
            session.resume_training()
        except Exception as exc:  # noqa: BLE001
            window.show_error("Training could not resume", str(exc), _traceback(exc))
            return False
        return True
    if session.state == "idle":
        return start_training(window, window.training_panel.config())
    return False


def pause_training(window) -> None:
    window.session.pause_training()


def stop_training(window) -> None:
    window.session.cancel_training()


# -------------------------------------------------------------------------- other
def show_preferences(window) -> None:
    dialog = PreferencesDialog(window.prefs, window)
    if dialog.exec() == PreferencesDialog.DialogCode.Accepted:
        window.apply_preferences()


def show_about(window):
    """The About box with the versions of the application and its libraries."""
    from .dialogs.about_dialog import AboutDialog

    dialog = AboutDialog(window)
    window.about_dialog = dialog
    dialog.show()
    return dialog


def show_user_guide(window):
    """The user guide in its own (non-modal) window."""
    from .dialogs.help_dialog import HelpDialog

    dialog = getattr(window, "help_dialog", None)
    if dialog is None:
        dialog = HelpDialog(window)
        window.help_dialog = dialog
    dialog.show()
    dialog.raise_()
    return dialog


# ------------------------------------------------------------------------- export
#: Views that can be saved as pictures: name -> (title, how to find the widget).
PICTURE_VIEWS = {
    "map": ("The map", lambda w: w.map_view),
    "trajectories": ("Journeys over time", lambda w: w.exploration.trajectories.canvas),
    "transitions": ("Moves between cells", lambda w: w.exploration.transitions),
    "inspector": ("Selected cells", lambda w: w.exploration.inspector),
    "metrics": ("Map quality", lambda w: w.exploration.metrics),
    "losses": ("Training curves", lambda w: w.loss_view),
    "patients": ("Patients over time", lambda w: w.patient_view),
}


def ask_export_path(window, title: str, file_filter: str, name: str) -> str | None:
    """Ask where to save an export (the file's suffix follows the chosen filter)."""
    start = str(Path(window.prefs.get("last_directory") or ".") / name)
    path, chosen = QFileDialog.getSaveFileName(window, title, start, file_filter)
    if not path:
        return None
    if not Path(path).suffix:
        suffix = chosen[chosen.find("*.") + 1: chosen.find(")")] if "*." in chosen else ""
        path += suffix
    return path


def _explorer(window):
    explorer = window.exploration.explorer
    if explorer is None:
        window.statusBar().showMessage("Train a model (or open a trained project) first.", 6000)
    return explorer


def _export(window, what: str, path: str | None, file_filter: str, name: str, write) -> bool:
    path = path or ask_export_path(window, f"Save {what}", file_filter, name)
    if not path:
        return False
    _remember_directory(window, path)
    problem = _output_problem(window, f"the {what} file", path, project_is_input=True)
    if problem:
        window.show_error(f"The {what} could not be saved", problem)
        return False
    try:
        count = write(path)
    except Exception as exc:  # noqa: BLE001 - a failed export is reported, the app carries on
        window.show_error(f"The {what} could not be saved", f"{exc}. Try another folder or file name.",
                          _traceback(exc))
        return False
    window.statusBar().showMessage(f"Saved {what} to {Path(path).name}" + (f" ({count} lines)" if count else ""), 8000)
    return True


def export_assignments(window, path: str | None = None) -> bool:
    """Every point's cell and certainty as CSV (as ``dpsom export --assignments``)."""
    from . import exporting

    from .dialogs.export_dialog import ask_export_options, write_assignments

    explorer = _explorer(window)
    if explorer is None:
        return False
    if path is None:  # asked from the menu: headers, types, outcomes and probabilities first
        options = ask_export_options(window, explorer)
        if options is None:
            return False
        return _export(window, "assignments", path, exporting.CSV_FILTER, "assignments.csv",
                       lambda p: write_assignments(explorer, p, options))
    return _export(window, "assignments", path, exporting.CSV_FILTER, "assignments.csv",
                   lambda p: exporting.export_assignments(explorer, p))


def export_node_summary(window, path: str | None = None) -> bool:
    """One line per cell: size, outcome means, typical profile, group names (CSV)."""
    from . import exporting

    explorer = _explorer(window)
    return explorer is not None and _export(
        window, "cell summary", path, exporting.CSV_FILTER, "cells.csv",
        lambda p: exporting.export_node_summary(explorer, p, window.session.annotations))


def export_selection(window, path: str | None = None) -> bool:
    """The assignments of the points in the cells selected on the map (CSV)."""
    from . import exporting

    explorer = _explorer(window)
    nodes = window.map_view.selected_nodes()
    if explorer is None:
        return False
    if not nodes:
        window.statusBar().showMessage("Select cells on the map first.", 6000)
        return False
    if path is None:
        from .dialogs.export_dialog import ask_export_options, write_assignments

        options = ask_export_options(window, explorer, "selected lines")
        if options is None:
            return False
        return _export(window, "selected lines", path, exporting.CSV_FILTER, "selected-cells.csv",
                       lambda p: write_assignments(explorer, p, options, nodes))
    return _export(window, "selected lines", path, exporting.CSV_FILTER, "selected-cells.csv",
                   lambda p: exporting.export_assignments(explorer, p, nodes=nodes))


def export_view_picture(window, view: str | None = None, path: str | None = None) -> bool:
    """A picture (PNG or SVG) of one view; asks which when ``view`` is not given."""
    from PySide6.QtWidgets import QInputDialog

    from . import exporting

    if view is None:
        titles = [title for title, _ in PICTURE_VIEWS.values()]
        title, ok = QInputDialog.getItem(window, "Save a picture", "Which view?", titles, 0, False)
        if not ok:
            return False
        view = next(k for k, (t, _) in PICTURE_VIEWS.items() if t == title)
    widget = PICTURE_VIEWS[view][1](window)

    def write(p) -> None:
        exporting.save_widget_picture(widget, p)

    return _export(window, f"picture of {PICTURE_VIEWS[view][0].lower()}", path, exporting.PICTURE_FILTER,
                   f"{view}.png", write)


def export_animation(window, path: str | None = None) -> bool:
    """The journeys of the chosen patients from the first to the last step as a GIF."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from . import exporting

    view = window.exploration.trajectories
    if not view.patients:
        window.statusBar().showMessage("Choose patients in the journeys view first.", 6000)
        return False

    def write(p):
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            return exporting.export_animation(view, p)
        finally:
            QApplication.restoreOverrideCursor()

    return _export(window, "animation", path, exporting.GIF_FILTER, "journeys.gif", write)


def _traceback(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# ------------------------------------------------------------------------- table
@dataclass(frozen=True)
class ActionSpec:
    """One menu entry: what it says, its shortcut, its explanation and what it does."""

    name: str
    menu: str
    text: str
    tip: str
    run: Callable
    shortcut: QKeySequence.StandardKey | str | None = None
    icon: str | None = None


ACTIONS = (
    ActionSpec("new", "&File", "&New project", "Close the current project and start an empty one.",
               new_project, QKeySequence.StandardKey.New, "new"),
    ActionSpec("open", "&File", "&Open project…", "Open a project saved before (.h5).",
               open_project, QKeySequence.StandardKey.Open, "open"),
    ActionSpec("import", "&File", "&Import data…", "Read a table or patient time series from a file.",
               import_data, "Ctrl+I", "import"),
    ActionSpec("demo", "&File", "Open the &demo cohort", "A made-up intensive-care cohort to try things out.",
               open_demo, "Ctrl+D", "demo"),
    ActionSpec("save", "&File", "&Save", "Save the project (data, settings, model and results).",
               save_project, QKeySequence.StandardKey.Save, "save"),
    ActionSpec("save_as", "&File", "Save &as…", "Save the project to a new file.",
               save_project_as, "Ctrl+Shift+S", "save_as"),
    ActionSpec("preferences", "&File", "&Preferences…", "Autosave, refresh rate and other preferences.",
               show_preferences, "Ctrl+,", "settings"),
    ActionSpec("quit", "&File", "&Quit", "Close DPSOM Studio.",
               lambda window: window.close(), QKeySequence.StandardKey.Quit),
    ActionSpec("start", "&Training", "&Start or resume", "Start training, or continue a paused or stopped one.",
               start_or_resume, "F5", "start"),
    ActionSpec("pause", "&Training", "&Pause", "Hold training; nothing is lost.",
               pause_training, "F6", "pause"),
    ActionSpec("stop", "&Training", "S&top", "Stop training after the current step; it can be resumed later.",
               stop_training, "Shift+F5", "stop"),
    ActionSpec("export_assignments", "E&xport", "&Assignments as CSV…",
               "Every row or patient time point with its cell and how sure the model is.", export_assignments),
    ActionSpec("export_nodes", "E&xport", "&Cell summary as CSV…",
               "One line per cell: how many points, outcome rates, typical values and group names.",
               export_node_summary),
    ActionSpec("export_selection", "E&xport", "&Selected cells as CSV…",
               "The rows or time points in the cells selected on the map.", export_selection),
    ActionSpec("export_picture", "E&xport", "&Picture of a view…",
               "Save the map or another view as a PNG picture or an SVG drawing.", export_view_picture, "Ctrl+E"),
    ActionSpec("export_animation", "E&xport", "&Animation of journeys…",
               "Save the journeys of the chosen patients as an animated GIF.", export_animation),
    ActionSpec("guide", "&Help", "&User guide", "How to use DPSOM Studio, with pictures.", show_user_guide,
               QKeySequence.StandardKey.HelpContents),
    ActionSpec("about", "&Help", "&About DPSOM Studio", "Versions and privacy information.", show_about),
)


def build_actions(window) -> dict:
    """``QAction`` objects for :data:`ACTIONS`, added to the window's menus; by name."""
    actions = {}
    menus = {}
    for spec in ACTIONS:
        action = QAction(spec.text, window)
        action.setObjectName(f"action_{spec.name}")
        if spec.icon:
            action.setIcon(icon(spec.icon))
        if spec.shortcut is not None:
            action.setShortcut(QKeySequence(spec.shortcut))
        tip = spec.tip
        if spec.shortcut is not None:
            tip += f" ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(tip)
        action.setStatusTip(spec.tip)
        action.triggered.connect(lambda _checked=False, run=spec.run: run(window))
        if spec.menu not in menus:
            menus[spec.menu] = window.menuBar().addMenu(spec.menu)
        menus[spec.menu].addAction(action)
        if spec.name in ("demo", "save_as", "preferences", "export_selection"):
            menus[spec.menu].addSeparator()
        actions[spec.name] = action
    window.recent_menu = menus["&File"].addMenu("Open &recent")
    menus["&File"].insertMenu(actions["import"], window.recent_menu)
    return actions

