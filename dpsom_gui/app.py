"""Starting DPSOM Studio: arguments, logging, crash handlers, the application and its window.

``dpsom-studio [FILE] [--demo]``: FILE is a project (.h5) to open or a data file to import;
``--demo`` opens the built-in demo cohort. On Linux without a usable display (no DISPLAY or
WAYLAND_DISPLAY, or X11 libraries missing) it exits with status 2 after one line saying what
to do, before Qt would abort with a misleading message.

``dpsom-studio --smoke-test OUT.png [--smoke-timeout SECONDS]`` checks an installation: it
opens the small demo cohort, trains a 4x4 map for 20 optimiser steps exactly as the Train
button does, saves a picture of the window to OUT.png and exits with status 0; any failure
prints one line to stderr (and the log) and exits with status 1. Unless ``--settings`` names
one, the preferences live in a temporary folder, so the user's own are never touched.

The log records events and array shapes only, never patient values: exception messages
(which may quote a value from a file) are left out of the log; only where the error
happened is written.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import logging
import logging.handlers
import shutil
import sys
import tempfile
import threading
import os
import time
from pathlib import Path

__all__ = ["main", "parse_args", "setup_logging", "install_excepthooks", "create_window", "start_warm_up",
           "show_splash", "splash_message", "load_engine",
           "SmokeTest", "SMOKE_CHANGES", "run_smoke_test", "display_problem", "XCB_LIBRARIES"]

log = logging.getLogger("dpsom_gui")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dpsom-studio", description="DPSOM Studio desktop application.")
    parser.add_argument("file", nargs="?", help="a project (.h5) to open, or a data file to import")
    parser.add_argument("--demo", action="store_true", help="open the built-in demo cohort")
    parser.add_argument("--settings", help=argparse.SUPPRESS)  # a private preferences file (tests)
    parser.add_argument("--smoke-test", metavar="OUT.png",
                        help="check the installation: train a tiny map on the demo cohort, save a "
                             "picture of the window to OUT.png and exit (status 0 when it worked)")
    parser.add_argument("--smoke-timeout", type=float, default=300.0, metavar="SECONDS",
                        help="give up the smoke test after this long (default: 300)")
    return parser.parse_args(argv)


#: Libraries Qt's X11 (xcb) platform plugin loads, with the Debian/Ubuntu package of each. Qt
#: names only the first one it misses ("libxcb-cursor0 is needed"), even when no display is
#: the real problem, and then aborts; checking first lets the app say what is wrong.
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1", "libX11-xcb.so.1": "libx11-xcb1", "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def _library_loads(name: str) -> bool:
    """True when the dynamic linker finds ``name``, system-wide or next to Qt's own libraries."""
    folders = [""]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        folders.append(bundle)
    spec = importlib.util.find_spec("PySide6")
    if spec is not None and spec.origin:
        folders.append(str(Path(spec.origin).parent / "Qt" / "lib"))
    for folder in folders:
        try:
            ctypes.CDLL(os.path.join(folder, name) if folder else name)
            return True
        except OSError:
            continue
    return False


def display_problem(environ=None, platform: str | None = None, loads=_library_loads) -> str | None:
    """Why the window cannot open here, as one line saying what to do; None when it can.

    Only Linux is checked (Windows and macOS always have their window system). A platform
    chosen through ``QT_QPA_PLATFORM`` other than X11 or Wayland (offscreen, vnc, eglfs, ...)
    is taken as the user's informed choice.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    chosen = [p.split(":", 1)[0].strip() for p in environ.get("QT_QPA_PLATFORM", "").split(";") if p.strip()]
    if any(p not in ("xcb", "wayland", "wayland-egl") for p in chosen):
        return None
    x11, wayland = bool(environ.get("DISPLAY")), bool(environ.get("WAYLAND_DISPLAY"))
    if not x11 and not wayland:
        return ("no display: DISPLAY and WAYLAND_DISPLAY are not set. Start DPSOM Studio from a desktop "
                "session (or over ssh -X), or give it a virtual screen with xvfb-run -a dpsom-studio; "
                "the dpsom command line needs no display.")
    if chosen[:1] == ["xcb"] or (not chosen and not wayland):
        missing = [name for name in XCB_LIBRARIES if not loads(name)]
        if missing:
            packages = " ".join(XCB_LIBRARIES[name] for name in missing)
            return (f"the X11 libraries Qt needs are missing ({', '.join(missing)}); on Debian or Ubuntu "
                    f"install them with: sudo apt-get install {packages}")
    return None


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


def start_warm_up(engine, on_devices=None) -> threading.Thread:
    """Run :meth:`Engine.warm_up` in a daemon thread, so the first training starts smoothly.

    Then, if ``on_devices`` is given, the devices training can use are found in the same
    thread (that needs PyTorch, whose import would otherwise keep the window from being
    drawn) and handed to ``on_devices(list)`` in the GUI thread.
    """
    relay = None
    if on_devices is not None:
        from PySide6.QtCore import QObject, Signal

        class _Relay(QObject):
            found = Signal(object)

        relay = _Relay()
        relay.found.connect(on_devices)

    def warm() -> None:
        started = time.perf_counter()
        try:
            engine.warm_up()
        except Exception as exc:  # noqa: BLE001 - training imports again later and reports then
            log.warning("engine warm-up failed: %s", type(exc).__name__)
        else:
            log.info("engine ready after %.1f s", time.perf_counter() - started)
        if relay is not None:
            try:
                devices = engine.available_devices()
            except Exception as exc:  # noqa: BLE001 - "Automatic" stays the only choice
                log.warning("device detection failed: %s", type(exc).__name__)
            else:
                relay.found.emit(devices)

    thread = threading.Thread(target=warm, name="engine-warm-up", daemon=True)
    thread.relay = relay  # keeps the relay alive as long as the thread object
    thread.start()
    return thread


def show_splash(app):
    """A splash screen (the application's name and a line saying what is loading), shown
    and painted at once; returns the ``QSplashScreen``."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
    from PySide6.QtWidgets import QSplashScreen

    from .resources import icon

    ratio = app.devicePixelRatio() if hasattr(app, "devicePixelRatio") else 1.0
    picture = QPixmap(int(440 * ratio), int(200 * ratio))
    picture.setDevicePixelRatio(ratio)
    picture.fill(QColor("#fafbfc"))
    painter = QPainter(picture)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.drawPixmap(28, 40, icon("app").pixmap(72, 72))
    font = QFont(app.font())
    font.setPointSizeF(font.pointSizeF() * 1.8)
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor("#263238"))
    painter.drawText(120, 64, 300, 40, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "DPSOM Studio")
    painter.setPen(QColor("#cfd8dc"))
    painter.drawRect(0, 0, 439, 199)
    painter.end()
    splash = QSplashScreen(picture)
    splash.setObjectName("splash")
    splash.show()
    splash_message(splash, "Starting…")
    return splash


def splash_message(splash, text: str) -> None:
    """Show ``text`` on the splash screen and paint it now (the next step blocks the GUI thread)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QApplication

    splash.showMessage(text, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, QColor("#37474f"))
    QApplication.processEvents()


def load_engine(engine, splash=None) -> None:
    """Import the training stack on the GUI thread before the window shows (see
    :meth:`Engine.import_stack`), naming each part on ``splash``. A failure is logged and
    left for the first training to report."""
    started = time.perf_counter()
    try:
        engine.import_stack(None if splash is None else lambda text: splash_message(splash, text))
    except Exception as exc:  # noqa: BLE001 - training imports again later and reports then
        log.warning("engine import failed: %s", type(exc).__name__)
    else:
        log.info("engine ready after %.1f s", time.perf_counter() - started)


def create_window(prefs, engine=None, log_path: str | None = None):
    """The main window around a new session (used by :func:`main` and by tests)."""
    from .main_window import MainWindow
    from .session import Session

    session = Session(prefs, engine)
    window = MainWindow(session, prefs, log_path)
    return window


#: Settings changes of the smoke test: a 4x4 map and a schedule cut to 20 optimiser steps.
SMOKE_CHANGES = {"grid.height": 4, "grid.width": 4, "train.max_steps": 20}


class SmokeTest:
    """Scripted check of an installed application, driven by the Qt event loop.

    Opens the "test" size of the demo cohort, trains it with :data:`SMOKE_CHANGES` through
    the session (on the training thread, as the Train button does), saves ``window.grab()``
    to ``out`` and ends the event loop with status 0. Any failure (the demo or the training
    cannot start, training fails or stops, an uncaught error, or no result before the
    deadline) writes one line to stderr and to the log, stops the background work and ends
    the event loop with status 1.

    Parameters
    ----------
    window : MainWindow
        A shown main window; its session must hold no data yet.
    out : str or Path
        Where the PNG picture of the window goes.
    timeout_s : float
        Seconds from :meth:`start` after which the check gives up.
    log_path : str, optional
        Named in the failure line so the log can be found.
    """

    def __init__(self, window, out, timeout_s: float, log_path: str | None = None) -> None:
        self.window = window
        self.out = Path(out)
        self.timeout_s = float(timeout_s)
        self.log_path = log_path
        #: None while running, then the exit status (0 or 1).
        self.status: int | None = None
        self._deadline = 0.0
        self._timer = None

    def start(self) -> None:
        """Arm the deadline and queue the run; call before entering the event loop."""
        from PySide6.QtCore import QTimer

        self._deadline = time.monotonic() + self.timeout_s
        self._timer = QTimer(self.window)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timeout)
        self._timer.start(max(0, int(self.timeout_s * 1000)))
        session = self.window.session
        session.training_finished.connect(self._on_training_finished)
        session.training_failed.connect(self._on_training_failed)
        session.training_cancelled.connect(self._on_training_cancelled)
        QTimer.singleShot(0, self._train)

    def fail(self, reason: str, detail: object = None) -> None:
        """Report a failure (once) and end the event loop with status 1.

        ``reason`` goes to the log and to stderr; ``detail`` (an exception or a message,
        which may quote data) goes to stderr only.
        """
        if self.status is not None:
            return
        kind = f" ({type(detail).__name__})" if isinstance(detail, BaseException) else ""
        log.error("smoke test failed: %s%s", reason, kind)
        line = f"dpsom-studio: smoke test failed: {reason}"
        if detail is not None:
            text = f"{type(detail).__name__}: {detail}" if isinstance(detail, BaseException) else str(detail)
            text = " ".join(text.strip().splitlines()[:1])
            if text:
                line += f": {text}"
        if self.log_path:
            line += f" (log: {self.log_path})"
        print(line, file=sys.stderr, flush=True)
        self._end(1)

    # ------------------------------------------------------------- steps
    def _train(self) -> None:
        if self.status is not None:
            return
        session = self.window.session
        try:
            session.open_demo("test")
        except Exception as exc:  # noqa: BLE001 - any failure is the answer of the check
            self.fail("the demo cohort could not be opened", exc)
            return
        try:
            config = session.config.replace(**SMOKE_CHANGES)
            self.window.training_panel.set_config(config)
            session.start_training(config)
        except Exception as exc:  # noqa: BLE001
            self.fail("training could not start", exc)
            return
        log.info("smoke test: training %dx%d for at most %d steps", config.grid.height, config.grid.width,
                 config.train.max_steps)

    def _on_training_finished(self) -> None:
        if self.status is not None:
            return
        if time.monotonic() > self._deadline:  # the deadline timer may still be queued behind us
            self._on_timeout()
            return
        from PySide6.QtWidgets import QApplication

        QApplication.processEvents()  # let the views draw the trained map before the picture
        picture = self.window.grab()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if picture.isNull() or not picture.save(str(self.out), "PNG"):
            self.fail(f"the picture could not be written to {self.out}")
            return
        log.info("smoke test passed: picture %dx%d written", picture.width(), picture.height())
        self._end(0)

    def _on_training_failed(self, text: str) -> None:
        from .workers import split_failure

        self.fail("training failed", split_failure(text)[0])

    def _on_training_cancelled(self) -> None:
        self.fail("training stopped before it finished")

    def _on_timeout(self) -> None:
        self.fail(f"no result within {self.timeout_s:g} s")

    def _end(self, status: int) -> None:
        from PySide6.QtWidgets import QApplication

        self.status = status
        if self._timer is not None:
            self._timer.stop()
        # Stop and join the training thread here, while the event loop still runs.
        if not self.window.session.shutdown(120_000):
            log.warning("smoke test: background work did not stop")
        QApplication.exit(status)


def _application():
    """The styled QApplication (created once per process)."""
    from PySide6.QtWidgets import QApplication

    from .resources import icon, style_sheet

    app = QApplication.instance() or QApplication(sys.argv[:1])
    # Every call from Qt into Python (a table's headerData, a paint of a plot item) must take
    # the interpreter lock back from whichever background thread holds it (a file being read,
    # the estimate's probe); by default it waits up to 5 ms for each, and drawing a new
    # project's views made thousands of such calls: freezes of 1-2 s. 0.5 ms keeps them
    # short; a thread holding the lock alone is not interrupted more often.
    sys.setswitchinterval(0.0005)
    app.setApplicationName("DPSOM Studio")
    app.setOrganizationName("DPSOM Studio")
    app.setStyle("Fusion")
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
    return app


def _dispose(window) -> None:
    """Delete the window and everything in it while the application still exists.

    Left to the interpreter's exit, PySide deletes the remaining Qt objects one by one after
    the event loop is gone; pyqtgraph's items then react to their parents' removal through
    Python code that can no longer run, and the process ends with a segmentation fault.
    """
    from PySide6.QtCore import QCoreApplication, QEvent

    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _close_log(path: Path) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "baseFilename", None) == str(path):
            root.removeHandler(handler)
            handler.close()


def run_smoke_test(args: argparse.Namespace) -> int:
    """``--smoke-test``: run :class:`SmokeTest` in a new application; returns the exit status.

    Preferences and the log go next to ``args.settings`` or, without it, into a new
    temporary folder that is removed when the check passes (and kept, for its log, when
    it fails).
    """
    own_folder = None
    settings = args.settings
    if settings is None:
        own_folder = Path(tempfile.mkdtemp(prefix="dpsom-smoke-"))
        settings = own_folder / "settings.ini"
    settings = Path(settings).resolve()
    log_path = setup_logging(settings.parent / "logs")
    log.info("DPSOM Studio smoke test starting")
    try:
        app = _application()
        from .settings import Preferences

        prefs = Preferences.open(settings)
        window = create_window(prefs, log_path=str(log_path))
    except Exception as exc:  # noqa: BLE001 - e.g. a module or Qt plugin missing from a bundle
        log.error("smoke test failed: the application could not start (%s)", type(exc).__name__)
        detail = " ".join(str(exc).strip().splitlines()[:1])
        print(f"dpsom-studio: smoke test failed: the application could not start: {type(exc).__name__}: "
              f"{detail} (log: {log_path})", file=sys.stderr, flush=True)
        return 1
    test = SmokeTest(window, args.smoke_test, args.smoke_timeout, str(log_path))
    relay = install_excepthooks(lambda exc: test.fail("unexpected error", exc))  # noqa: F841 - keep alive
    window.show()
    test.start()
    app.exec()
    if test.status is None:  # the event loop ended some other way (the window was closed)
        test.fail("the application closed before the check ended")
    window.session.shutdown()
    _dispose(window)
    prefs.sync()
    log.info("DPSOM Studio smoke test ended: status %d", test.status)
    if test.status == 0 and own_folder is not None:
        _close_log(log_path)
        shutil.rmtree(own_folder, ignore_errors=True)
    return int(test.status)


def main(argv: list[str] | None = None) -> int:
    """Run the application; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    problem = display_problem()
    if problem:  # before Qt, which would abort the process with a misleading message
        print(f"dpsom-studio: {problem}", file=sys.stderr, flush=True)
        return 2
    if args.smoke_test:
        return run_smoke_test(args)
    from PySide6.QtCore import QTimer

    from . import actions
    from .settings import Preferences

    app = _application()
    prefs = Preferences.open(args.settings)
    log_path = setup_logging(prefs.log_directory())
    log.info("DPSOM Studio starting")
    # PyTorch and the training stack load first, behind a splash screen: loaded on a thread
    # beside the window they held the interpreter lock for seconds at a time, and the window
    # froze while it opened a project.
    from .engine import Engine

    splash = show_splash(app)
    engine = Engine()
    load_engine(engine, splash)
    splash_message(splash, "Opening the window…")
    window = create_window(prefs, engine=engine, log_path=str(log_path))

    def report(exc: BaseException) -> None:
        import traceback

        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        window.show_error("Something went wrong", f"{exc or type(exc).__name__}. You can keep working; "
                          "if it happens again, please send the log file to your support contact.", details)

    relay = install_excepthooks(report)  # noqa: F841 - must live while the app runs
    window.show()
    splash.finish(window)
    try:
        window.set_devices(engine.available_devices())
    except Exception as exc:  # noqa: BLE001 - "Automatic" stays the only choice
        log.warning("device detection failed: %s", type(exc).__name__)

    def open_initial() -> None:
        if args.demo:
            actions.open_demo(window)
        elif args.file:
            actions.open_project(window, args.file)

    QTimer.singleShot(0, open_initial)
    status = app.exec()
    # A background computation still inside PyTorch when the interpreter exits aborts the
    # process ("terminate called without an active exception"): let it finish first (the
    # window is already gone).
    for call in (window.estimator, window.summariser):
        if not call.wait(120.0):
            log.warning("a background computation did not end before exit")
    _dispose(window)
    log.info("DPSOM Studio closed")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
