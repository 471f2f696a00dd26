"""Background analyses: results and failures cross the thread boundary as plain values."""

import dataclasses
import threading

import pytest

from dpsom_gui.analysis_workers import AnalysisWorker
from dpsom_gui.workers import Failure, WorkerThread


def _fails_in_the_worker(report):
    report(("metrics", "outcome"))
    raise ValueError("the label 'outcome' has no known values")


def _run(qtbot, worker):
    events = []
    worker.result.connect(lambda value: events.append(("result", value)))
    worker.failed.connect(lambda failure: events.append(("failed", failure)))
    worker.cancelled.connect(lambda: events.append(("cancelled", None)))
    job = WorkerThread(worker)
    with qtbot.waitSignal(job.stopped, timeout=10000):
        job.start()
    return events


def test_a_failed_analysis_arrives_as_a_frozen_failure_record(qtbot):
    events = _run(qtbot, AnalysisWorker(_fails_in_the_worker, min_interval=0))
    assert [kind for kind, _ in events] == ["failed"]
    failure = events[0][1]
    assert isinstance(failure, Failure)
    assert failure.message == "the label 'outcome' has no known values" and failure.kind == "ValueError"
    assert "_fails_in_the_worker" in failure.details  # the traceback, for the details button
    with pytest.raises(dataclasses.FrozenInstanceError):
        failure.message = "changed"


def test_a_finished_analysis_returns_its_value_computed_in_another_thread(qtbot):
    threads = []

    def task(report):
        threads.append(threading.get_ident())
        report(("step", 1))
        return 42

    events = _run(qtbot, AnalysisWorker(task, min_interval=0))
    assert events == [("result", 42)] and threads[0] != threading.get_ident()


def test_the_session_hands_the_failure_record_on(session, qtbot):
    with qtbot.waitSignal(session.analysis_failed, timeout=10000) as blocker:
        session.start_analysis("metrics", _fails_in_the_worker)
    name, failure = blocker.args
    assert name == "metrics" and isinstance(failure, Failure) and failure.kind == "ValueError"
