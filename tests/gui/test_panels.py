"""Training panel and start page: contract, controls, states and plain-words help."""

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox
from gui_fakes import fake_steps

from core.config import make_config
from core.progress import PHASE_TITLES
from dpsom_gui.panels.start_panel import StartPanel
from dpsom_gui.panels.training_panel import STATES, TrainingPanel


def make_panel(qtbot, model="tdpsom"):
    panel = TrainingPanel(make_config(model))
    qtbot.addWidget(panel)
    panel.resize(340, 700)
    return panel


def test_builds_with_a_sane_minimum_size(qtbot):
    panel = make_panel(qtbot)
    size = panel.minimumSize()
    assert 200 <= size.width() <= 600 and 300 <= size.height() <= 900
    panel.show()
    assert not panel.grab().isNull()


def test_every_option_has_a_plain_words_tooltip(qtbot):
    panel = make_panel(qtbot)
    for name in panel.binder.names():
        tip = panel.binder.widget(name).toolTip()
        assert len(tip.split()) >= 4, f"{name} lacks an explanation"
    for kind in (QSpinBox, QDoubleSpinBox, QComboBox, QCheckBox):
        for w in panel.findChildren(kind):
            assert w.toolTip(), w


def test_controls_show_the_config_and_user_edits_give_a_new_config(qtbot):
    panel = make_panel(qtbot)
    panel.set_state("idle")
    b = panel.binder
    assert b.widget("grid.height").value() == 8
    configs = []
    panel.config_changed.connect(configs.append)
    b.widget("grid.height").setValue(6)
    b.widget("grid.topology").setCurrentIndex(b.widget("grid.topology").findData("hex"))
    b.widget("train.epochs_joint").setValue(3)
    cfg = configs[-1]
    assert (cfg.grid.height, cfg.grid.topology, cfg.train.epochs_joint) == (6, "hex", 3)
    with qtbot.waitSignal(panel.start_requested) as blocker:
        panel.start_button.click()
    assert blocker.args[0].grid.height == 6


def test_changing_model_or_preset_asks_for_that_preset(qtbot):
    panel = make_panel(qtbot)
    panel.set_state("idle")
    asked = []
    panel.preset_requested.connect(lambda m, p: (asked.append((m, p)), panel.set_config(make_config(m, p))))
    box = panel.binder.widget("preset")
    box.setCurrentIndex(box.findData("paper"))
    assert asked == [("tdpsom", "paper")]
    assert panel.config().train.epochs_joint == make_config("tdpsom", "paper").train.epochs_joint


def test_invalid_settings_are_explained_and_block_start(qtbot):
    panel = make_panel(qtbot)
    panel.set_state("idle")
    b = panel.binder
    b.widget("grid.topology").setCurrentIndex(b.widget("grid.topology").findData("hex"))
    b.widget("grid.height").setValue(7)  # hexagonal torus needs an even number of rows
    assert not panel.start_button.isEnabled()
    assert "even number of rows" in panel._error.text()
    b.widget("grid.toroidal").setCurrentIndex(b.widget("grid.toroidal").findData(False))
    assert panel.start_button.isEnabled() and not panel._error.isVisible()


def test_states_enable_only_what_makes_sense(qtbot):
    panel = make_panel(qtbot)
    expected = {  # start, pause, resume, stop, settings editable
        "no_data": (False, False, False, False, True),
        "idle": (True, False, False, False, True),
        "running": (False, True, False, True, False),
        "paused": (False, False, True, True, False),
        "stopping": (False, False, False, False, False),
    }
    assert set(expected) == set(STATES)
    for state, (start, pause, resume, stop, editable) in expected.items():
        panel.set_state(state)
        got = (panel.start_button.isEnabled(), panel.pause_button.isEnabled(),
               panel.resume_button.isEnabled(), panel.cancel_button.isEnabled(),
               panel.binder.widget("grid.height").isEnabled())
        assert got == (start, pause, resume, stop, editable), state
    panel.set_state("idle")
    panel.set_resumable(True)
    assert panel.resume_button.isEnabled()


def test_temporal_settings_only_for_t_dpsom(qtbot):
    panel = make_panel(qtbot, model="dpsom")
    panel.set_state("idle")
    assert not panel.binder.widget("train.epochs_pred").isEnabled()
    panel.set_config(make_config("tdpsom"))
    panel.set_state("idle")
    assert panel.binder.widget("train.epochs_pred").isEnabled()


def test_devices_list_names_the_gpu_with_its_memory(qtbot):
    panel = make_panel(qtbot)
    panel.set_devices([{"name": "cpu", "label": "CPU (2 cores)", "memory_bytes": 0},
                       {"name": "cuda:0", "label": "NVIDIA H200 (141 GB)", "memory_bytes": 141 * 2**30},
                       {"name": "cuda:1", "label": "", "memory_bytes": 8 * 2**30}])
    box = panel.binder.widget("train.device")
    texts = [box.itemText(i) for i in range(box.count())]
    assert texts == ["Automatic", "CPU (2 cores)", "NVIDIA H200 (141 GB)", "cuda:1 (8.0 GB)"]
    box.setCurrentIndex(box.findData("cuda:0"))
    assert panel.config().train.device == "cuda:0"


def test_without_a_gpu_the_panel_says_why_training_runs_on_the_processor(qtbot):
    from core.training import available_devices

    panel = make_panel(qtbot)
    panel.show()
    devices = available_devices()  # this test machine's PyTorch has no CUDA
    panel.set_devices(devices)
    note = panel._device_note
    assert note.isVisible() and "processor" in note.text() and "CPU" in note.text()
    image = note.grab().toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 3) for y in range(image.height())}
    assert len(colours) > 2  # text was drawn, not an empty label
    # Where PyTorch sees a GPU, the processor entry carries no note and none is shown.
    cpu = {k: v for k, v in devices[0].items() if k != "note"}
    panel.set_devices([cpu, {"name": "cuda:0", "label": "NVIDIA H200 (141 GB)", "memory_bytes": 141 * 2**30}])
    assert not note.isVisible()


def test_progress_shows_plain_phase_pass_and_time_left(qtbot):
    panel = make_panel(qtbot)
    records = list(fake_steps())
    panel.set_progress(records[12])
    assert PHASE_TITLES[records[12].phase] in panel._phase.text()
    assert "Pass" in panel._detail.text() and "time left" in panel._detail.text()
    assert panel.progress_bar.value() == round(records[12].fraction * 1000)
    panel.set_estimate({"seconds": 125, "memory_bytes": 3 * 2**20, "device": "cpu"})
    assert "2 min 5 s" in panel._estimate.text() and "3.0 MB" in panel._estimate.text()


def test_advanced_settings_fold_away(qtbot):
    panel = make_panel(qtbot)
    panel.show()
    assert not panel._advanced.isVisible()
    panel._advanced_button.setChecked(True)
    assert panel._advanced.isVisible()


def test_start_panel_signals_and_recent_list(qtbot, tmp_path):
    page = StartPanel()
    qtbot.addWidget(page)
    page.show()
    with qtbot.waitSignal(page.demo_requested):
        page.demo_button.click()
    with qtbot.waitSignal(page.import_requested):
        page.import_button.click()
    with qtbot.waitSignal(page.open_requested):
        page.open_button.click()
    page.set_recent_files([str(tmp_path / "a.h5"), str(tmp_path / "b.h5")])
    assert page.recent_list.count() == 2
    with qtbot.waitSignal(page.recent_requested) as blocker:
        page.recent_list.itemActivated.emit(page.recent_list.item(1))
    assert blocker.args == [str(tmp_path / "b.h5")]
    page.set_recent_files([])
    assert not page.recent_list.isVisible()
