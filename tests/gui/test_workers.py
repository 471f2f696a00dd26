"""Background workers: every signal, pause/resume/cancel at step boundaries, failures,
checkpoints, and threads that always end."""

import threading

import pytest
from gui_fakes import PHASE_STEPS, fake_steps, make_table

from dpsom_gui.workers import Failure, ImportWorker, TrainingWorker, WorkerThread, split_failure

TOTAL = sum(e * s for _, e, s in PHASE_STEPS)


class Recorder:
    """Collects a worker's signals (delivered in the GUI thread)."""

    def __init__(self, worker):
        self.batches, self.events = [], []
        worker.progress.connect(self.batches.append)
        for name in ("paused", "resumed", "cancelled", "finished"):
            if hasattr(worker, name):
                getattr(worker, name).connect(lambda *_, n=name: self.events.append(n))
        worker.failed.connect(lambda text: self.events.append(("failed", text)))

    @property
    def steps(self):
        return [p.step for batch in self.batches for p in batch]


def run_worker(qtbot, worker, timeout=10000):
    job = WorkerThread(worker)
    with qtbot.waitSignal(job.stopped, timeout=timeout):
        job.start()
    assert not job.is_running()
    return job


def test_training_worker_reports_every_step_once_in_order_then_finishes(qtbot):
    worker = TrainingWorker(lambda: fake_steps(), emit_every=4, min_interval=0)
    rec = Recorder(worker)
    run_worker(qtbot, worker)
    assert rec.steps == list(range(1, TOTAL + 1))
    assert rec.events == ["finished"]
    # throttled: fewer reports than steps, but each phase change and snapshot is its own report
    assert len(rec.batches) < TOTAL
    for batch in rec.batches:
        assert all(p.prototypes is None for p in batch[:-1])


def test_progress_reports_hold_plain_copies(qtbot):
    worker = TrainingWorker(lambda: fake_steps(), emit_every=1, min_interval=0)
    rec = Recorder(worker)
    run_worker(qtbot, worker)
    record = rec.batches[-1][-1]
    assert isinstance(record.losses["total"], float)
    snapshots = [p.prototypes for b in rec.batches for p in b if p.prototypes is not None]
    assert snapshots and snapshots[0].shape == (16, 4)


def test_pause_holds_at_a_step_boundary_and_resume_continues(qtbot):
    gate = threading.Event()

    def steps():
        for p in fake_steps():
            if p.step == 3:
                gate.wait(5)  # the test pauses while step 3 is in progress
            yield p

    worker = TrainingWorker(steps, emit_every=1, min_interval=0)
    rec = Recorder(worker)
    job = WorkerThread(worker)
    job.start()
    qtbot.waitUntil(lambda: rec.steps[-1:] == [2], timeout=5000)
    worker.pause()
    gate.set()
    qtbot.waitUntil(lambda: "paused" in rec.events, timeout=5000)
    held = list(rec.steps)
    assert held[-1] == 3  # the step that was running when pause was asked completed
    qtbot.wait(150)
    assert rec.steps == held  # nothing moves while paused
    with qtbot.waitSignal(job.stopped, timeout=10000):
        worker.resume()
    assert rec.events == ["paused", "resumed", "finished"]
    assert rec.steps == list(range(1, TOTAL + 1))


def test_cancel_closes_the_generator_and_reports_cancelled(qtbot):
    closed = threading.Event()

    def steps():
        try:
            yield from fake_steps(delay=0.01)
        finally:
            closed.set()

    worker = TrainingWorker(steps, emit_every=1, min_interval=0)
    rec = Recorder(worker)
    job = WorkerThread(worker)
    job.start()
    qtbot.waitUntil(lambda: len(rec.steps) >= 3, timeout=5000)
    with qtbot.waitSignal(job.stopped, timeout=10000):
        worker.cancel()
    assert closed.is_set()
    assert rec.events == ["cancelled"]
    assert rec.steps[-1] < TOTAL


def test_cancel_while_paused_ends_without_resuming(qtbot):
    worker = TrainingWorker(lambda: fake_steps(delay=0.005), emit_every=1, min_interval=0)
    rec = Recorder(worker)
    job = WorkerThread(worker)
    worker.pause()
    job.start()
    qtbot.waitUntil(lambda: "paused" in rec.events, timeout=5000)
    with qtbot.waitSignal(job.stopped, timeout=10000):
        worker.cancel()
    assert rec.events == ["paused", "cancelled"]
    assert rec.steps == [1]


def test_an_error_in_training_becomes_failed_with_message_and_traceback(qtbot):
    worker = TrainingWorker(lambda: fake_steps(fail_at=7), emit_every=1, min_interval=0)
    rec = Recorder(worker)
    run_worker(qtbot, worker)
    assert len(rec.events) == 1 and rec.events[0][0] == "failed"
    failure = rec.events[0][1]
    assert isinstance(failure, Failure) and failure.kind == "RuntimeError"
    with pytest.raises(AttributeError):  # frozen: a record, safe to hand between threads
        failure.message = "changed"
    message, details = split_failure(failure)
    assert message == "the loss became NaN at step 7"
    assert "Traceback" in details and "RuntimeError" in details
    assert rec.steps == list(range(1, 7))


def test_checkpoint_is_written_between_steps_in_the_worker_thread(qtbot, tmp_path):
    calls = []
    gate = threading.Event()

    def steps():
        for p in fake_steps():
            if p.step == 2:
                gate.wait(5)
            yield p

    def save(path, extras):
        calls.append((path, extras, threading.current_thread() is threading.main_thread()))

    worker = TrainingWorker(steps, emit_every=1, min_interval=0, save=save)
    saved = []
    worker.saved.connect(saved.append)
    job = WorkerThread(worker)
    job.start()
    worker.request_save(str(tmp_path / "a.h5"), "snapshot")
    gate.set()
    qtbot.waitUntil(lambda: not job.is_running(), timeout=10000)
    qtbot.waitUntil(lambda: saved == [str(tmp_path / "a.h5")], timeout=5000)
    assert calls == [(str(tmp_path / "a.h5"), "snapshot", False)]


def test_a_failed_checkpoint_does_not_stop_training(qtbot):
    def save(path, extras):
        raise OSError("disk full")

    worker = TrainingWorker(lambda: fake_steps(), emit_every=1, min_interval=0, save=save)
    rec = Recorder(worker)
    problems = []
    worker.save_failed.connect(problems.append)
    worker.request_save("x.h5")
    run_worker(qtbot, worker)
    assert rec.events == ["finished"]
    assert problems and split_failure(problems[0])[0] == "disk full"


def test_after_runs_once_training_completed_and_its_result_is_kept(qtbot):
    worker = TrainingWorker(lambda: fake_steps(), after=lambda: {"bmu": [1, 2]}, min_interval=0)
    run_worker(qtbot, worker)
    assert worker.result == {"bmu": [1, 2]}


def test_stop_ends_a_running_worker_and_its_thread(qtbot):
    worker = TrainingWorker(lambda: fake_steps(delay=0.02), min_interval=0)
    rec = Recorder(worker)
    job = WorkerThread(worker)
    stopped = []
    job.stopped.connect(lambda: stopped.append(True))
    job.start()
    qtbot.waitUntil(lambda: len(rec.steps) >= 1, timeout=5000)
    assert job.stop(5000)
    assert stopped == [True]
    assert not job.is_running()


def test_many_quick_start_stop_cycles_never_crash(qtbot):
    for i in range(25):
        worker = TrainingWorker(lambda: fake_steps(delay=0.001), min_interval=0)
        job = WorkerThread(worker)
        job.start()
        if i % 2:
            qtbot.wait(2)
        assert job.stop(5000)


def test_import_worker_reports_progress_and_hands_over_the_dataset(qtbot):
    ds = make_table()

    def read(report):
        for i in range(5):
            report(i / 4)
        return ds

    worker = ImportWorker(read)
    fractions, loaded, done = [], [], []
    worker.progress.connect(fractions.append)
    worker.loaded.connect(loaded.append)
    worker.finished.connect(lambda: done.append(True))
    run_worker(qtbot, worker)
    assert fractions == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert loaded == [ds] and done == [True]


def test_import_worker_failure_and_cancel(qtbot):
    def bad(report):
        raise ValueError("file.csv, line 3, column 'hr': text in a numeric column")

    worker = ImportWorker(bad)
    failures = []
    worker.failed.connect(failures.append)
    run_worker(qtbot, worker)
    assert split_failure(failures[0])[0].startswith("file.csv, line 3")

    started = threading.Event()

    def slow(report):
        started.set()
        for _ in range(500):
            report(0.5)
            threading.Event().wait(0.01)
        return make_table()

    worker = ImportWorker(slow)
    events = []
    worker.cancelled.connect(lambda: events.append("cancelled"))
    worker.loaded.connect(lambda _: events.append("loaded"))
    job = WorkerThread(worker)
    job.start()
    assert started.wait(5)
    with qtbot.waitSignal(job.stopped, timeout=5000):
        worker.cancel()
    assert events == ["cancelled"]


@pytest.mark.parametrize("emit_every", [1, 7])
def test_reports_never_lose_the_last_step(qtbot, emit_every):
    worker = TrainingWorker(lambda: fake_steps(), emit_every=emit_every, min_interval=10.0)
    rec = Recorder(worker)
    run_worker(qtbot, worker)
    assert rec.steps == list(range(1, TOTAL + 1))
