"""Preferences: typed values, recent files, window layout and migration of old files."""

from PySide6.QtCore import QByteArray, QSettings

from dpsom_gui.settings import DEFAULTS, SCHEMA_VERSION, Preferences


def test_a_private_file_is_used_and_starts_with_defaults(prefs, tmp_path):
    assert prefs.file_name == str(tmp_path / "prefs.ini")
    assert prefs.schema_version == SCHEMA_VERSION
    for key, value in DEFAULTS.items():
        assert prefs.get(key) == value


def test_values_keep_their_types_across_reopening(tmp_path):
    p = Preferences.open(tmp_path / "p.ini")
    p.set("autosave_minutes", 12)
    p.set("loss_log_scale", False)
    p.set("refresh_hz", 200)
    p.sync()
    q = Preferences.open(tmp_path / "p.ini")
    assert q.autosave_minutes == 12 and isinstance(q.autosave_minutes, int)
    assert q.get("loss_log_scale") is False
    assert q.refresh_hz == 60  # clamped to what the views can use


def test_recent_files_newest_first_unique_bounded_and_existing(prefs, tmp_path):
    files = []
    for i in range(10):
        f = tmp_path / f"p{i}.h5"
        f.write_bytes(b"x")
        files.append(f)
        prefs.add_recent_file(f)
    prefs.add_recent_file(files[3])
    recent = prefs.recent_files()
    assert recent[0] == str(files[3].resolve())
    assert len(recent) == DEFAULTS["max_recent"] and len(set(recent)) == len(recent)
    files[9].unlink()
    assert str(files[9].resolve()) not in prefs.recent_files()
    prefs.remove_recent_file(str(files[3].resolve()))
    assert str(files[3].resolve()) not in prefs.recent_files()


def test_single_recent_file_survives_reopening(tmp_path):
    f = tmp_path / "only.h5"
    f.write_bytes(b"x")
    p = Preferences.open(tmp_path / "p.ini")
    p.add_recent_file(f)
    p.sync()
    assert Preferences.open(tmp_path / "p.ini").recent_files() == [str(f.resolve())]


def test_window_layout_round_trips(prefs):
    assert prefs.window_geometry() is None
    prefs.save_window(QByteArray(b"geo"), QByteArray(b"state"))
    assert bytes(prefs.window_geometry()) == b"geo"
    assert bytes(prefs.window_state()) == b"state"


def test_version_0_files_are_migrated(tmp_path):
    path = tmp_path / "old.ini"
    kept = tmp_path / "kept.h5"
    kept.write_bytes(b"x")
    raw = QSettings(str(path), QSettings.Format.IniFormat)
    raw.setValue("recent", f"{kept};{tmp_path / 'gone.h5'}")
    raw.setValue("autosave", 600)
    raw.setValue("fps", 24)
    raw.sync()
    p = Preferences.open(path)
    assert p.schema_version == SCHEMA_VERSION
    assert p.recent_files() == [str(kept)]
    assert p.autosave_minutes == 10
    assert p.refresh_hz == 24
    assert p.qsettings.value("recent") is None and p.qsettings.value("fps") is None


def test_unknown_preferences_are_refused(prefs):
    import pytest

    with pytest.raises(KeyError):
        prefs.set("colour_of_the_sky", "blue")


def test_folders_for_logs_and_autosave_sit_next_to_the_file(prefs, tmp_path):
    assert prefs.log_directory() == tmp_path / "logs"
    assert prefs.autosave_directory() == tmp_path / "autosave"


def test_the_preferred_device_is_proposed_for_new_data_and_follows_the_last_training(prefs, qtbot):
    from gui_fakes import FakeEngine, make_series, make_table

    from dpsom_gui.session import Session

    class TwoDevices(FakeEngine):
        def available_devices(self):
            return [{"name": "cpu", "label": "CPU", "memory_bytes": 0},
                    {"name": "cuda:1", "label": "GPU 1", "memory_bytes": 8 << 30}]

    session = Session(prefs, TwoDevices())
    try:
        assert prefs.default_device == "auto"
        session.load_dataset(make_series())
        assert session.config.train.device == "auto"
        prefs.set("default_device", "CUDA:1")
        session.load_dataset(make_table())
        assert session.config.train.device == "cuda:1"
        assert session.preset_config("tdpsom", "quick").train.device == "cuda:1"
        # A device this machine lacks (preferences travel between machines) falls back to auto.
        prefs.set("default_device", "mps")
        session.load_dataset(make_table())
        assert session.config.train.device == "auto"
        # Starting a training on a device makes it the proposal for the next data.
        with qtbot.waitSignal(session.training_finished, timeout=10000):
            session.start_training(session.config.replace(**{"train.device": "cpu"}))
        assert prefs.default_device == "cpu"
        session.load_dataset(make_series())
        assert session.config.train.device == "cpu"
    finally:
        session.shutdown()
