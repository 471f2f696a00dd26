"""Take the user guide's screenshots from the real application on the demo cohort.

Run it under a virtual display so the windows are real (fonts, styles and docks as users
see them)::

    apt-get install -y xvfb xauth libxcb-icccm4 libxcb-keysyms1
    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python docs/make_screenshots.py

It shows the splash screen of the start-up, opens the demo cohort (the small "test" size
unless ``--size demo``), trains a small
T-DPSOM quickly, and saves PNG pictures of the main window (1280 x 800, the smallest
screen the layout is made for), the map's groups and categories, the journeys view, the
selected cells, the transitions, the quality figures, one patient's measurements and the
training curves (plain and detailed) to ``docs/images/``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT / "docs" / "images"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("test", "demo"), default="test", help="demo cohort size")
    parser.add_argument("--out", default=str(IMAGES), help="folder for the pictures")
    parser.add_argument("--grid", type=int, default=8, help="map rows and columns")
    parser.add_argument("--epochs", type=int, default=10, help="passes of the joint training phase")
    return parser.parse_args(argv)


def wait_for(app, signal, timeout_s: float = 1800.0) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()


def settle(app, ms: int = 300) -> None:
    """Let the window lay itself out and paint."""
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def save(widget, name: str, out: Path) -> None:
    path = out / f"{name}.png"
    if not widget.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from dpsom_gui.app import create_window
    from dpsom_gui.resources import icon, style_sheet
    from dpsom_gui.settings import Preferences

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("DPSOM Studio")
    app.setStyle("Fusion")
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
    prefs = Preferences.open(Path(tempfile.mkdtemp(prefix="dpsom-shots-")) / "prefs.ini")
    # The splash screen while the training stack loads, as at start-up.
    from dpsom_gui.app import load_engine, show_splash, splash_message
    from dpsom_gui.engine import Engine

    splash = show_splash(app)
    splash_message(splash, Engine.STACK[0][1])
    save(splash, "splash", out)
    engine = Engine()
    load_engine(engine, splash)
    window = create_window(prefs, engine)
    window.resize(1280, 800)  # the smallest screen the layout is made for
    window.show()
    splash.finish(window)
    session = window.session

    # ------------------------------------------------------------------ train
    session.open_demo(args.size)
    config = session.config.replace(**{
        "grid.height": args.grid, "grid.width": args.grid, "train.epochs_pretrain": 10,
        "train.epochs_joint": args.epochs, "train.epochs_pred": 3, "train.batch_size": 50, "train.seed": 7,
        "train.device": "cpu"})
    window.training_panel.set_config(config)
    settle(app)
    started = time.perf_counter()
    window.training_panel.start_button.click()
    wait_for(app, session.training_finished)
    print(f"trained {session.history[-1]['step'] if session.history else 0} steps in "
          f"{time.perf_counter() - started:.0f} s")
    ex = window.exploration
    if ex.explorer is None:
        raise SystemExit("training did not finish; no screenshots taken")

    # --------------------------------------------------------- main window, map
    mv = window.map_view
    mv.choose_layer("outcome", "death_24h")
    hits = ex.explorer.hits()
    mortality = mv.layer("outcome:death_24h").values
    worst = [int(k) for k in sorted(range(len(hits)), key=lambda k: -(mortality[k] if hits[k] >= 20 else -1))[:3]]
    mv.select(worst)
    ex.transitions.show_arrows(12)
    window.docks["losses"].raise_()
    settle(app, 600)
    save(window, "main-window", out)

    mv.choose_layer("superclusters", "")
    settle(app)
    legend = mv.legend.categories
    for i, name in enumerate(("Stable", "Shock")[: legend.count()]):
        legend.item(i).setText(name)
    ex.transitions.show_arrows(0)
    settle(app)
    save(mv, "map-groups", out)
    mv.choose_layer("variable", "Lactate")
    settle(app)
    save(mv, "map-variable", out)
    mv.choose_layer("outcome", "state")
    settle(app)
    save(mv, "map-categories", out)

    # ------------------------------------------------------------- inspector
    dock = ex.docks["inspector"]
    dock.raise_()
    ex.inspector.tabs.setCurrentIndex(1)
    dock.setFloating(True)
    dock.resize(900, 520)
    settle(app, 500)
    save(ex.inspector, "inspector-profile", out)
    ex.inspector.tabs.setCurrentIndex(2)
    settle(app)
    save(ex.inspector, "inspector-outcomes", out)
    dock.setFloating(False)

    # --------------------------------------------------------------- journeys
    dock = ex.docks["trajectories"]
    dock.setFloating(True)
    dock.resize(1100, 780)
    dock.raise_()
    view = ex.trajectories
    died = ex.explorer.patients_matching(outcome="death_24h")
    chosen = [int(p) for p in died[:2]] + [p for p in range(4) if p not in died][:2]
    view.set_patients(chosen)
    settle(app, 300)
    view.set_time(min(18.0, view.end_time))
    wait_for(app, view.forecast_ready, 120)  # forecasts are computed in the background
    settle(app, 800)
    save(view, "journeys", out)
    dock.setFloating(False)

    # ----------------------------------------------------- transitions, quality
    dock = ex.docks["transitions"]
    dock.setFloating(True)
    dock.resize(620, 560)
    dock.raise_()
    settle(app, 500)
    save(ex.transitions, "transitions", out)
    dock.setFloating(False)

    dock = ex.docks["metrics"]
    dock.setFloating(True)
    dock.resize(700, 600)
    dock.raise_()
    panel = ex.metrics
    panel.label_box.setCurrentIndex(panel.label_box.findData("state"))
    panel.compute_button.click()
    wait_for(app, session.analysis_finished)
    settle(app, 500)
    save(ex.metrics, "quality", out)
    dock.setFloating(False)

    # ------------------------------------------------- one patient, loss terms
    window.docks["patients"].raise_()
    window.docks["patients"].setFloating(True)
    window.docks["patients"].resize(760, 520)
    settle(app, 500)
    save(window.docks["patients"].widget(), "patient", out)
    window.docks["patients"].setFloating(False)
    dock = window.docks["losses"]
    dock.setFloating(True)
    dock.resize(1000, 380)
    window.loss_view.set_detailed(False)
    settle(app, 500)
    save(window.loss_view, "training-progress", out)
    window.loss_view.set_detailed(True)
    settle(app, 500)
    save(window.loss_view, "training-terms", out)
    window.loss_view.set_detailed(False)
    dock.setFloating(False)

    ex.trajectories.shutdown()
    session.shutdown()
    session._set_dirty(False)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
