"""How responsive the window stays while a model trains in the background.

Opens the real main window (offscreen unless a display is set), loads the demo cohort,
and trains the ``quick`` preset in the training worker thread. Meanwhile a heartbeat
``QTimer`` in the GUI thread fires every few milliseconds and records how late each beat
is: that lateness is what a user feels as a frozen window. The live views (map, loss
curves, progress) redraw as they do for a user.

Prints the 50th and 99th percentiles and the maximum of the heartbeat delay, with the
training speed. Targets: p99 < 50 ms, max < 200 ms.

``--trajectories`` measures the journeys view instead: after a short training it plays 50
patients (``--patients``) over the map at 30 frames per second with trails and the soft
assignment glow, in the real event loop, and prints the frame rate achieved and the time
spent per frame. Target: 30 frames per second on a 2-core CPU. ``--forecast`` adds the
model's quick forecasts (computed when the animation reaches a new step).

``--loading`` measures the three loading flows instead, as the application runs them: a
fresh process loads the training stack behind the splash screen, shows the window and opens
a trained project of the demo cohort as ``dpsom-studio PROJECT.h5`` does (start-up), opens
it again as File > Open project does, then opens the demo cohort as the start page's button
does; after each flow the event loop runs ``--settle`` seconds more (first paints, the
training-time estimate in the background). It prints how long each took and the event
loop's delays (p50, p99, maximum) during each flow and each settling time. Targets as above.

Nothing is asserted; run it on the machine you care about::

    python benchmarks/gui_responsiveness.py                 # demo cohort, 60 s of training
    python benchmarks/gui_responsiveness.py --size test --seconds 20
    python benchmarks/gui_responsiveness.py --max-steps 300 --threads 1
    python benchmarks/gui_responsiveness.py --trajectories --size test --seconds 10
    python benchmarks/gui_responsiveness.py --loading --max-steps 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("demo", "test"), default="demo", help="demo cohort size")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop training after this long")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps")
    parser.add_argument("--beat-ms", type=int, default=10, help="heartbeat interval in milliseconds")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for training (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="training device (cpu, cuda, auto)")
    parser.add_argument("--trajectories", action="store_true",
                        help="measure the journeys view's animation instead of training responsiveness")
    parser.add_argument("--patients", type=int, default=50, help="patients animated at once (--trajectories)")
    parser.add_argument("--fps", type=float, default=30.0, help="target frame rate (--trajectories)")
    parser.add_argument("--forecast", action="store_true", help="draw forecasts while playing (--trajectories)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="with --loading: profile the GUI thread (cProfile) and print its N "
                             "slowest calls by cumulative time")
    parser.add_argument("--project", metavar="PATH",
                        help="with --loading: open this trained project instead of training one first")
    parser.add_argument("--loading", action="store_true",
                        help="measure opening a trained project and the demo cohort instead of training")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="with --loading: seconds of event loop after each flow (first paints, the "
                             "estimate in the background)")
    parser.add_argument("--make-project", metavar="PATH", help=argparse.SUPPRESS)  # --loading's helper
    parser.add_argument("--cold", action="store_true",
                        help="skip the engine warm-up the application does at start-up (shows the stutter "
                             "of importing torch's optimiser stack in the training thread; with --loading, "
                             "the window shows before the training stack is loaded, which the first "
                             "opening then imports on its loading thread)")
    return parser.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def main(argv=None) -> int:
    args = parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.make_project:
        return make_project(args)
    if args.loading:
        return bench_loading(args)
    if args.trajectories:
        return bench_trajectories(args)
    import torch
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from dpsom_gui.app import create_window
    from dpsom_gui.settings import Preferences

    if args.threads:
        torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication([])
    prefs = Preferences.open(Path(tempfile.mkdtemp(prefix="dpsom-bench-")) / "prefs.ini")
    window = create_window(prefs)
    window.resize(1280, 820)
    window.show()
    session = window.session
    if not args.cold:
        session.engine.warm_up()  # what the application does in the background at start-up
    session.open_demo(args.size)
    config = session.config.replace(**{"train.device": args.device, "train.max_steps": args.max_steps})
    print(f"data: {session.dataset.values.shape} ({args.size}); grid {config.grid.height}x{config.grid.width}; "
          f"batch {config.train.batch_size}; torch threads {torch.get_num_threads()}; "
          f"Qt platform {app.platformName()}")

    delays: list[float] = []
    clock = QElapsedTimer()
    last = [0.0]

    def beat() -> None:
        now = clock.nsecsElapsed() / 1e6
        delays.append(max(0.0, now - last[0] - args.beat_ms))
        if delays[-1] > 50 and os.environ.get("DPSOM_BENCH_DEBUG"):
            print(f"  late beat at {now / 1000:.2f} s: {delays[-1]:.0f} ms")
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setTimerType(heartbeat.timerType().PreciseTimer)
    heartbeat.setInterval(args.beat_ms)
    heartbeat.timeout.connect(beat)
    reports = [0]
    session.training_progress.connect(lambda records: reports.__setitem__(0, reports[0] + 1))
    loop = QEventLoop()
    for signal in (session.training_finished, session.training_cancelled):
        signal.connect(loop.quit)
    session.training_failed.connect(lambda failure: (print("training failed:", failure.message[:300]), loop.quit()))

    started = time.perf_counter()
    session.start_training(config)
    clock.start()
    heartbeat.start()
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(session.cancel_training)
    deadline.start(int(args.seconds * 1000))
    loop.exec()  # the real event loop, as in the application
    heartbeat.stop()
    elapsed = time.perf_counter() - started
    steps = session.history[-1]["step"] if session.history else 0
    session.shutdown()
    window.session._set_dirty(False)
    window.close()

    print(f"trained {steps} steps in {elapsed:.1f} s ({steps / max(elapsed, 1e-9):.1f} steps/s), "
          f"{reports[0]} progress reports, {len(delays)} heartbeats of {args.beat_ms} ms")
    print(f"heartbeat delay: p50 {percentile(delays, 50):.1f} ms, p99 {percentile(delays, 99):.1f} ms, "
          f"max {max(delays, default=float('nan')):.1f} ms, mean {statistics.fmean(delays) if delays else 0:.1f} ms")
    print("targets: p99 < 50 ms, max < 200 ms")
    return 0


class Heartbeat:
    """A GUI-thread timer that records how late each of its beats is (ms), per named phase."""

    def __init__(self, beat_ms: int) -> None:
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.beat_ms = beat_ms
        self.phase = "start"
        self.delays: dict[str, list[float]] = {}
        self.first_beat_s: float | None = None
        self._clock = QElapsedTimer()
        self._last = 0.0
        self._last_phase = ""
        self._timer = QTimer()
        self._timer.setTimerType(self._timer.timerType().PreciseTimer)
        self._timer.setInterval(beat_ms)
        self._timer.timeout.connect(self._beat)

    def start(self) -> None:
        self._clock.start()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _beat(self) -> None:
        now = self._clock.nsecsElapsed() / 1e6
        if self.first_beat_s is None:
            self.first_beat_s = now / 1000
        delay = max(0.0, now - self._last - self.beat_ms)
        # A late beat belongs to the phase in which the wait began (the previous beat's).
        phase = self._last_phase or self.phase
        self.delays.setdefault(phase, []).append(delay)
        if os.environ.get("DPSOM_BENCH_DEBUG"):
            cpu = time.thread_time()
            if delay > 50:
                # the GUI thread's own CPU time in the gap: low means it waited (for the
                # interpreter lock or for a core), high means it worked
                print(f"  late beat in {phase} at {now / 1000:.2f} s: {delay:.0f} ms "
                      f"(GUI thread busy {1000 * (cpu - getattr(self, '_cpu', cpu)):.0f} ms)", flush=True)
            self._cpu = cpu
            # Should the GUI thread stall, faulthandler's own C thread (it needs no interpreter
            # lock) prints where every thread is, including one that holds the lock in C code.
            import faulthandler

            faulthandler.dump_traceback_later(float(os.environ.get("DPSOM_BENCH_DEBUG_S", "0.25")), exit=False)
        self._last, self._last_phase = now, self.phase


def make_project(args) -> int:
    """Train the demo cohort for ``--max-steps`` steps and save it to ``--make-project``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from dpsom_gui.engine import Engine
    from dpsom_gui.session import Session
    from dpsom_gui.settings import Preferences

    app = QApplication.instance() or QApplication([])  # noqa: F841 - the session's threads need it
    prefs = Preferences.open(Path(tempfile.mkdtemp(prefix="dpsom-bench-")) / "prefs.ini")
    session = Session(prefs, Engine())
    session.open_demo(args.size)
    loop = QEventLoop()
    session.training_finished.connect(loop.quit)
    session.training_failed.connect(lambda failure: (print("training failed:", failure.message), loop.quit()))
    session.start_training(session.config.replace(**{"train.max_steps": args.max_steps or 20,
                                                     "train.device": args.device}))
    loop.exec()
    session.save_project(args.make_project)
    session.shutdown()
    return 0


#: The loading flows measured by ``--loading``, in the order they run.
LOADING_FLOWS = ("start-up with a project", "File > Open project", "open demo")


def bench_loading(args) -> int:
    """Start-up with a trained project on the command line, File > Open project, the demo."""
    import subprocess

    folder = Path(tempfile.mkdtemp(prefix="dpsom-bench-"))
    if args.project:
        project = Path(args.project)
    else:
        project = folder / "trained.h5"
        made = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--make-project", str(project), "--size", args.size,
                        "--max-steps", str(args.max_steps or 20), "--device", args.device], check=True)
        print(f"a trained project of the {args.size} cohort written in {time.perf_counter() - made:.1f} s "
              f"({project.stat().st_size / 2**20:.1f} MiB)")

    started = time.perf_counter()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from dpsom_gui import actions
    from dpsom_gui.app import _application, create_window, load_engine, show_splash, splash_message
    from dpsom_gui.engine import Engine
    from dpsom_gui.settings import Preferences

    app = _application()
    prefs = Preferences.open(folder / "prefs.ini")
    engine = Engine()
    # As dpsom_gui.app.main: the training stack loads behind the splash screen, before the
    # window shows (--cold: it is left to the first training, as before).
    splash = show_splash(app)
    if not args.cold:
        load_engine(engine, splash)
    splash_message(splash, "Opening the window…")
    imported = time.perf_counter() - started
    window = create_window(prefs, engine=engine)
    window.resize(1280, 800)
    window.show()
    splash.finish(window)
    if engine.is_ready():
        window.set_devices(engine.available_devices())
    shown = time.perf_counter() - started
    beat = Heartbeat(args.beat_ms)
    beat.start()
    times: dict[str, float] = {}

    def timed(name, call):
        beat.phase = name
        t0 = time.perf_counter()
        ok = call()
        times[name] = time.perf_counter() - t0
        if not ok:
            print(f"{name}: did not load")

    def settle(name: str, seconds: float) -> None:
        """Keep the event loop running for ``seconds`` and until the window's background
        computations (the estimate's probe, the variable summary) are done, as a user
        reading the new project would (at most a minute)."""
        beat.phase = name
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 60:
            QApplication.processEvents()
            time.sleep(0.002)
            done = "Estimated time" in window.training_panel._estimate.text() or not engine.is_ready()
            if time.perf_counter() - t0 > seconds and done and not window.estimator.busy \
                    and not window.summariser.busy:
                break
        times[name] = time.perf_counter() - t0

    def script() -> None:
        # what `dpsom-studio PROJECT.h5` does once the window shows
        timed(LOADING_FLOWS[0], lambda: actions.open_project(window, str(project)))
        settle("settling 1", args.settle)
        timed(LOADING_FLOWS[1], lambda: actions.open_project(window, str(project)))
        settle("settling 2", args.settle)
        timed(LOADING_FLOWS[2], lambda: actions.open_demo(window, args.size))
        settle("settling 3", args.settle)
        app.quit()

    QTimer.singleShot(0, script)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()  # sees the GUI thread only: what a user waits for
        profiler.enable()
    app.exec()
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    beat.stop()
    if os.environ.get("DPSOM_BENCH_DEBUG"):
        import faulthandler

        faulthandler.cancel_dump_traceback_later()
    window.session.shutdown()
    window.estimator.wait()
    window.session._set_dirty(False)
    window.close()
    print(f"Qt platform {app.platformName()}; training stack loaded behind the splash in {imported:.2f} s; "
          f"window shown {shown:.2f} s after the imports began")
    for name in LOADING_FLOWS + ("settling 1", "settling 2", "settling 3"):
        delays = beat.delays.get(name, [])
        took = f"took {times[name]:.2f} s; " if name in times else ""
        print(f"{name}: {took}{len(delays)} heartbeats of {args.beat_ms} ms, event-loop delay p50 "
              f"{percentile(delays, 50):.1f} ms, p99 {percentile(delays, 99):.1f} ms, "
              f"max {max(delays, default=float('nan')):.1f} ms")
    everything = [d for name in beat.delays for d in beat.delays[name]]
    print(f"all loading flows together: p99 {percentile(everything, 99):.1f} ms, "
          f"max {max(everything, default=float('nan')):.1f} ms")
    print("targets: p99 < 50 ms, max < 200 ms")
    return 0


def bench_trajectories(args) -> int:
    """Play ``args.patients`` journeys at ``args.fps`` for ``args.seconds`` and report the frame rate."""
    import torch
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from dpsom_gui.app import create_window
    from dpsom_gui.settings import Preferences

    if args.threads:
        torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication([])
    prefs = Preferences.open(Path(tempfile.mkdtemp(prefix="dpsom-bench-")) / "prefs.ini")
    window = create_window(prefs)
    window.resize(1280, 900)
    window.show()
    session = window.session
    session.open_demo(args.size)
    steps = args.max_steps or 12
    config = session.config.replace(**{"train.device": args.device, "train.max_steps": steps,
                                       "train.epochs_pretrain": 1, "train.epochs_joint": 1, "train.epochs_pred": 1,
                                       "train.som_init_epochs": (1, 1)})
    loop = QEventLoop()
    session.training_finished.connect(loop.quit)
    session.training_failed.connect(lambda failure: (print("training failed:", failure.message[:300]), loop.quit()))
    started = time.perf_counter()
    session.start_training(config)
    loop.exec()
    print(f"data: {session.dataset.values.shape} ({args.size}); grid {config.grid.height}x{config.grid.width}; "
          f"a {steps}-step model trained in {time.perf_counter() - started:.1f} s; Qt platform {app.platformName()}")

    dock = window.exploration.docks["trajectories"]
    dock.setFloating(True)
    dock.resize(1000, 760)
    dock.raise_()
    view = window.exploration.trajectories
    patients = list(range(min(args.patients, session.dataset.n_samples)))
    view.forecast_check.setChecked(args.forecast)
    view.heat_check.setChecked(True)
    view.set_patients(patients)
    view.set_speed(2.0)
    view._timer.setInterval(int(round(1000 / args.fps)))
    items_before = len(view.map._viewbox.addedItems)

    draw_times: list[float] = []
    original = view._draw_frame

    def timed(*a, **k):
        t0 = time.perf_counter()
        original(*a, **k)
        draw_times.append(time.perf_counter() - t0)

    view._draw_frame = timed
    frames0 = view.frames_drawn
    view.set_time(0.0)
    view.play()
    t0 = time.perf_counter()
    stop = QTimer()
    stop.setSingleShot(True)
    stop.timeout.connect(loop.quit)
    stop.start(int(args.seconds * 1000))
    # keep playing for the whole measurement: start over whenever the longest stay ends
    view.playing_changed.connect(lambda playing: None if playing else QTimer.singleShot(0, view.play))
    loop.exec()
    elapsed = time.perf_counter() - t0
    view.playing_changed.disconnect()
    view.pause()
    frames = view.frames_drawn - frames0
    assert len(view.map._viewbox.addedItems) == items_before  # items were updated, never re-created
    session.shutdown()
    session._set_dirty(False)
    window.close()
    print(f"animated {len(patients)} patients for {elapsed:.1f} s: {frames / elapsed:.1f} frames per second "
          f"(target {args.fps:g}); trails, soft assignment{', forecasts' if args.forecast else ''} on")
    print(f"time to update one frame: p50 {1000 * percentile(draw_times, 50):.1f} ms, "
          f"p99 {1000 * percentile(draw_times, 99):.1f} ms, max {1000 * max(draw_times, default=0):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
