"""Starting DPSOM Studio: arguments, logging, crash handlers, the application and its window.

``dpsom-studio [FILE] [--demo]``: FILE is a project (.h5) to open or a data file to import;
``--demo`` opens the built-in demo cohort.

The log records events and array shapes only, never patient values: exception messages
(which may quote a value from a file) are left out of the log; only where the error
happened is written.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
import threading
import time
from pathlib import Path

__all__ = ["main", "parse_args", "setup_logging", "install_excepthooks", "create_window", "start_warm_up"]

log = logging.getLogger("dpsom_gui")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dpsom-studio", description="DPSOM Studio desktop application.")
    parser.add_argument("file", nargs="?", help="a project (.h5) to open, or a data file to import")
    parser.add_argument("--demo", action="store_true", help="open the built-in demo cohort")
    parser.add_argument("--settings", help=argparse.SUPPRESS)  # a private preferences file (tests)
    return parser.parse_args(argv)


def setup_logging(directory: Path) -> Path:
    """Log to ``directory/dpsom-studio.log`` (rotating, 1 MB x 3); returns the file path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dpsom-studio.log"
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not any(isinstance(h, logging.handlers.RotatingFileHandler)
               and getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def install_excepthooks(report):
    """Route uncaught exceptions (GUI thread and other threads) to ``report(exc)``.

    PySide6 only prints exceptions raised in slots; this logs them (without their message,
    which may hold patient values) and lets the window show them. ``report`` is called in
    the GUI thread. Returns the relay object; keep a reference to it while the hooks are
    installed.
    """
    from PySide6.QtCore import QObject, Signal

    from .workers import loggable_traceback

    class _Relay(QObject):
        raised = Signal(object)

    relay = _Relay()
    relay.raised.connect(report)

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        exc = exc if exc is not None else exc_type()
        exc.__traceback__ = tb
        log.error("uncaught error:\n%s", loggable_traceback(exc))
        relay.raised.emit(exc)

    def thread_hook(args):
        if args.exc_type is SystemExit:
            return
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
    return relay


def start_warm_up(engine) -> threading.Thread:
    """Run :meth:`Engine.warm_up` in a daemon thread, so the first training starts smoothly."""

    def warm() -> None:
        started = time.perf_counter()
        try:
            engine.warm_up()
        except Exception as exc:  # noqa: BLE001 - training imports again later and reports then
            log.warning("engine warm-up failed: %s", type(exc).__name__)
        else:
            log.info("engine ready after %.1f s", time.perf_counter() - started)

    thread = threading.Thread(target=warm, name="engine-warm-up", daemon=True)
    thread.start()
    return thread


def create_window(prefs, engine=None, log_path: str | None = None):
    """The main window around a new session (used by :func:`main` and by tests)."""
    from .main_window import MainWindow
    from .session import Session

    session = Session(prefs, engine)
    window = MainWindow(session, prefs, log_path)
    return window


def main(argv: list[str] | None = None) -> int:
    """Run the application; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from . import actions
    from .resources import icon, style_sheet
    from .settings import Preferences

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("DPSOM Studio")
    app.setOrganizationName("DPSOM Studio")
    app.setStyle("Fusion")
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
    prefs = Preferences.open(args.settings)
    log_path = setup_logging(prefs.log_directory())
    log.info("DPSOM Studio starting")
    window = create_window(prefs, log_path=str(log_path))
    start_warm_up(window.session.engine)

    def report(exc: BaseException) -> None:
        import traceback

        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        window.show_error("Something went wrong", f"{exc or type(exc).__name__}. You can keep working; "
                          "if it happens again, please send the log file to your support contact.", details)

    relay = install_excepthooks(report)  # noqa: F841 - must live while the app runs
    window.show()

    def open_initial() -> None:
        if args.demo:
            actions.open_demo(window)
        elif args.file:
            actions.open_project(window, args.file)

    QTimer.singleShot(0, open_initial)
    status = app.exec()
    log.info("DPSOM Studio closed")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
