"""The session with fake training: data, settings, the training life cycle, projects,
autosave and imports; the state always stays consistent and no thread is left behind."""

import numpy as np
import pytest
from gui_fakes import PHASE_STEPS, FakeEngine, make_series, make_table

from core.errors import ProjectFileError
from dpsom_gui.session import Session
from dpsom_gui.workers import split_failure

TOTAL = sum(e * s for _, e, s in PHASE_STEPS)


def steps_of(history):
    return [row["step"] for row in history]


@pytest.fixture
def slow_session(prefs, qtbot):
    """A session whose fake training takes a few milliseconds a step; shut down afterwards."""
    s = Session(prefs, FakeEngine(delay=0.005))
    yield s
    s.shutdown()


def train_series_until(session, qtbot, steps):
    """Start training on a small series and wait until ``steps`` steps are in the history."""
    session.load_dataset(make_series())
    session.start_training()
    qtbot.waitUntil(lambda: len(session.history) >= steps, timeout=5000)


def cancel_and_wait(session, qtbot):
    with qtbot.waitSignal(session.training_cancelled, timeout=10000):
        session.cancel_training()


def test_loading_data_proposes_settings_and_marks_the_project_unsaved(session, qtbot):
    seen = []
    for name in ("project_loaded", "dataset_loaded", "config_changed", "dirty_changed"):
        getattr(session, name).connect(lambda *a, n=name: seen.append(n))
    session.load_dataset(make_series())
    assert session.state == "idle" and session.dirty and session.path is None
    assert session.config.model == "tdpsom"
    assert {"project_loaded", "dataset_loaded", "config_changed", "dirty_changed"} <= set(seen)
    assert "over time" in session.model_suggestion()
    session.load_dataset(make_table())
    assert session.config.model == "dpsom"


def test_training_runs_to_the_end_and_results_arrive_after_the_thread_ended(session, qtbot):
    session.load_dataset(make_series())
    states = []
    session.training_state_changed.connect(states.append)
    with qtbot.waitSignal(session.training_finished, timeout=10000):
        session.start_training()
        assert session.is_training
    assert not session.is_training and session.state == "idle"
    assert states == ["running", "idle"]
    assert steps_of(session.history) == list(range(1, TOTAL + 1))
    assert set(session.map_layers()) == {"umatrix", "hits"}
    assert session.results["bmu"].shape == session.dataset.values.shape[:2]
    assert not session.can_resume  # a finished model has nothing left to resume


def test_live_map_follows_prototype_snapshots(session, qtbot):
    session.load_dataset(make_series())
    maps = []
    session.live_map.connect(maps.append)
    with qtbot.waitSignal(session.training_finished, timeout=10000):
        session.start_training()
    assert maps and all(m.shape == (16,) for m in maps)
    assert all(np.isfinite(m).all() for m in maps)


def test_pause_resume_and_cancel_then_resume_from_where_it_stopped(prefs, qtbot):
    engine = FakeEngine(delay=0.01)
    session = Session(prefs, engine)
    try:
        session.load_dataset(make_series())
        session.start_training()
        qtbot.waitUntil(lambda: len(session.history) >= 3, timeout=5000)
        with qtbot.waitSignal(session.training_state_changed, timeout=5000,
                              check_params_cb=lambda s: s == "paused"):
            session.pause_training()
        assert session.can_resume
        held = len(session.history)
        qtbot.wait(100)
        assert len(session.history) == held
        with qtbot.waitSignal(session.training_state_changed, timeout=5000,
                              check_params_cb=lambda s: s == "running"):
            session.resume_training()
        qtbot.waitUntil(lambda: len(session.history) > held, timeout=5000)
        with qtbot.waitSignal(session.training_cancelled, timeout=10000):
            session.cancel_training()
            assert session.state == "stopping"
        assert session.state == "idle" and session.can_resume and not session.results
        stopped_at = session.history[-1]["step"]
        with qtbot.waitSignal(session.training_finished, timeout=10000):
            session.resume_training()
        run = engine.runs[-1]
        assert run.resumed_from == [0, stopped_at]
        assert steps_of(session.history) == list(range(1, TOTAL + 1))
    finally:
        session.shutdown()


def test_a_failing_training_reports_and_keeps_the_project(prefs, qtbot):
    session = Session(prefs, FakeEngine(fail_at=9))
    ds = make_series()
    session.load_dataset(ds)
    with qtbot.waitSignal(session.training_failed, timeout=10000) as blocker:
        session.start_training()
    message, details = split_failure(blocker.args[0])
    assert message == "the loss became NaN at step 9" and "RuntimeError" in details
    assert session.state == "idle" and session.dataset is ds and session.run is not None
    assert session.can_resume  # the last good state is kept


def test_settings_cannot_change_while_training(session, qtbot):
    session.load_dataset(make_series())
    original = session.config
    with qtbot.waitSignal(session.training_finished, timeout=10000):
        session.start_training()
        from core.config import make_config

        session.set_config(make_config("dpsom"))
        assert session.config is original
        for call in (session.new_project, lambda: session.load_dataset(make_table()),
                     lambda: session.start_training(), lambda: session.open_project("x.h5")):
            with pytest.raises(RuntimeError, match="stop training"):
                call()


def test_save_and_reopen_keep_data_settings_and_results(session, qtbot, tmp_path):
    session.load_dataset(make_series())
    with qtbot.waitSignal(session.training_finished, timeout=10000):
        session.start_training()
    path = str(tmp_path / "study.h5")
    session.save_project(path)
    assert not session.dirty and session.path == path
    assert session.prefs.recent_files()[0] == str((tmp_path / "study.h5").resolve())
    bmu = session.results["bmu"].copy()
    other = Session(session.prefs, FakeEngine())
    with qtbot.waitSignal(other.project_loaded):
        other.open_project(path)
    assert other.run.is_fitted and other.state == "idle" and not other.dirty
    assert np.array_equal(other.results["bmu"], bmu)
    assert np.array_equal(other.dataset.values, session.dataset.values, equal_nan=True)
    assert other.config.to_dict() == session.config.to_dict()


def test_an_untrained_project_can_be_saved_and_reopened(session, tmp_path, qtbot):
    session.load_dataset(make_table())
    session.save_project(str(tmp_path / "data_only.h5"))
    other = Session(session.prefs, FakeEngine())
    other.open_project(str(tmp_path / "data_only.h5"))
    assert other.run is None and other.dataset.n_samples == session.dataset.n_samples
    assert other.state == "idle"


def test_a_broken_project_file_leaves_the_session_as_it_was(session, tmp_path):
    session.load_dataset(make_table())
    ds = session.dataset
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"this is not a project")
    with pytest.raises(ProjectFileError):
        session.open_project(str(bad))
    assert session.dataset is ds and session.path is None


def test_saving_while_training_is_done_by_the_worker_between_steps(slow_session, qtbot, tmp_path):
    session = slow_session
    train_series_until(session, qtbot, 2)
    path = str(tmp_path / "during.h5")
    with qtbot.waitSignal(session.path_changed, timeout=5000):
        session.save_project(path)
    assert session.path == path
    from core.io.project_h5 import load_project

    assert int(load_project(path).model_state["done_steps"]) >= 2
    cancel_and_wait(session, qtbot)


def test_autosave_writes_an_untitled_project_to_the_autosave_folder(slow_session, prefs, qtbot):
    session = slow_session
    session.load_dataset(make_series())
    session.start_training()
    assert session._autosave.isActive()
    assert session._autosave.interval() == prefs.autosave_minutes * 60_000
    with qtbot.waitSignal(session.message, timeout=5000) as blocker:
        session._on_autosave_timeout()
    assert blocker.args[0].startswith("Autosaved to ")
    files = list(prefs.autosave_directory().glob("untitled-*.h5"))
    assert len(files) == 1 and session.path is None
    cancel_and_wait(session, qtbot)
    assert not session._autosave.isActive()


def test_shutdown_during_training_stops_and_waits(prefs, qtbot):
    session = Session(prefs, FakeEngine(delay=0.01))
    session.load_dataset(make_series())
    session.start_training()
    qtbot.waitUntil(lambda: len(session.history) >= 1, timeout=5000)
    assert session.shutdown(5000)
    assert not session.is_training and session.state == "idle"


def test_import_in_the_background_through_the_real_reader(session, qtbot, tmp_path):
    path = tmp_path / "vitals.csv"
    path.write_text("patient,hour,hr,sbp\n" + "".join(
        f"p{p},{h},{70 + p + h},{120 - h}\n" for p in range(4) for h in range(6)))
    progress = []
    session.import_progress.connect(progress.append)
    with qtbot.waitSignal(session.import_finished, timeout=10000):
        session.import_file(str(path), {"id_col": "patient", "time_col": "hour"})
    assert session.dataset.is_series and session.dataset.values.shape == (4, 6, 2)
    assert session.state == "idle" and progress


def test_a_failed_import_reports_and_keeps_the_current_data(session, qtbot, tmp_path):
    session.load_dataset(make_table())
    ds = session.dataset
    path = tmp_path / "bad.csv"
    path.write_text("id,hr\n1,80\n2,eighty\n3,82\n")
    with qtbot.waitSignal(session.import_failed, timeout=10000) as blocker:
        session.import_file(str(path), {"features": ["hr"], "format": "table"})
    message, _ = split_failure(blocker.args[0])
    assert "bad.csv" in message
    assert session.dataset is ds


def test_estimate_and_devices_come_from_the_engine(session):
    assert session.estimate() is None  # no data yet
    session.load_dataset(make_table())
    assert session.estimate()["seconds"] == 42.0
    assert session.devices()[0]["name"] == "cpu"


def test_new_project_forgets_everything(session, qtbot):
    session.load_dataset(make_table())
    with qtbot.waitSignal(session.dataset_loaded) as blocker:
        session.new_project()
    assert blocker.args == [None]
    assert session.dataset is None and session.state == "no_data" and not session.dirty


def test_a_stopped_training_resumes_after_saving_and_reopening(slow_session, prefs, qtbot, tmp_path):
    session = slow_session
    train_series_until(session, qtbot, 4)
    cancel_and_wait(session, qtbot)
    stopped_at = session.history[-1]["step"]
    session.save_project(str(tmp_path / "half.h5"))
    session.shutdown()
    engine = FakeEngine()
    reopened = Session(prefs, engine)
    reopened.open_project(str(tmp_path / "half.h5"))
    assert reopened.can_resume
    with qtbot.waitSignal(reopened.training_finished, timeout=10000):
        reopened.resume_training()
    assert engine.runs[-1].resumed_from == [stopped_at]
    assert reopened.history[-1]["step"] == TOTAL


def test_changed_settings_turn_resume_into_a_new_training(slow_session, qtbot):
    session = slow_session
    train_series_until(session, qtbot, 2)
    cancel_and_wait(session, qtbot)
    assert session.can_resume
    session.set_config(session.config.replace(**{"grid.height": 5}))
    assert not session.can_resume
    with pytest.raises(RuntimeError, match="no stopped training"):
        session.resume_training()
