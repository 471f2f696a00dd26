"""One helper binds every kind of form widget to a Config field by name."""

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from core.config import make_config
from dpsom_gui.binding import ConfigBinder


def make_widgets():
    height = QSpinBox()
    height.setRange(2, 64)
    weight = QDoubleSpinBox()
    weight.setRange(0, 100)
    parity = QCheckBox()
    topology = QComboBox()
    topology.addItem("Squares", "rect")
    topology.addItem("Hexagons", "hex")
    seed = QSpinBox()
    seed.setRange(-1, 1000)
    seed.setSpecialValueText("Random")
    device = QLineEdit()
    return height, weight, parity, topology, seed, device


def test_widgets_show_the_config_and_edits_flow_back(qtbot):
    cfg = make_config("dpsom")
    binder = ConfigBinder(cfg)
    height, weight, parity, topology, seed, device = make_widgets()
    for name, w in (("grid.height", height), ("weights.cah", weight), ("parity", parity),
                    ("grid.topology", topology), ("train.seed", seed), ("train.device", device)):
        binder.bind(name, w)
    assert height.value() == cfg.grid.height and weight.value() == cfg.weights.cah
    assert topology.currentData() == "rect" and seed.value() == cfg.train.seed
    changed = []
    binder.changed.connect(changed.append)
    height.setValue(5)
    weight.setValue(3.5)
    parity.setChecked(True)
    topology.setCurrentIndex(1)
    seed.setValue(-1)
    device.setText("cpu")
    device.editingFinished.emit()
    out = binder.config()
    assert (out.grid.height, out.weights.cah, out.parity, out.grid.topology) == (5, 3.5, True, "hex")
    assert out.train.seed is None  # the special value means "no fixed seed"
    assert out.train.device == "cpu"
    assert changed == ["grid.height", "weights.cah", "parity", "grid.topology", "train.seed", "train.device"]


def test_set_config_refreshes_widgets_without_reporting_user_changes(qtbot):
    binder = ConfigBinder(make_config("dpsom"))
    height, *_ = make_widgets()
    binder.bind("grid.height", height)
    changed = []
    binder.changed.connect(changed.append)
    binder.set_config(make_config("dpsom", **{"grid.height": 11}))
    assert height.value() == 11 and changed == []
    binder.set_value("grid.height", 7)
    assert height.value() == 7 and binder.config().grid.height == 7 and changed == []


def test_combo_gains_an_entry_for_a_value_it_does_not_list(qtbot):
    binder = ConfigBinder(make_config("dpsom", **{"train.device": "cuda:1"}))
    box = QComboBox()
    box.addItem("Automatic", "auto")
    binder.bind("train.device", box)
    assert box.currentData() == "cuda:1"


def test_unknown_fields_and_widgets_fail_at_binding_time(qtbot):
    binder = ConfigBinder(make_config())
    with pytest.raises(KeyError):
        binder.bind("grid.colour", QSpinBox())
    with pytest.raises(KeyError):
        binder.bind("nothing", QSpinBox())
    from PySide6.QtWidgets import QLabel

    with pytest.raises(TypeError):
        binder.bind("grid.height", QLabel())


def test_enable_and_disable_bound_widgets(qtbot):
    binder = ConfigBinder(make_config())
    height, weight, *_ = make_widgets()
    binder.bind("grid.height", height)
    binder.bind("weights.som", weight)
    binder.set_enabled(False)
    assert not height.isEnabled() and not weight.isEnabled()
    binder.set_enabled(True, ["weights.som"])
    assert weight.isEnabled() and not height.isEnabled()


def test_values_outside_a_widgets_range_are_shown_not_clamped(qtbot):
    binder = ConfigBinder(make_config("dpsom", **{"train.batch_size": 5000}))
    box = QSpinBox()
    box.setRange(1, 1000)
    binder.bind("train.batch_size", box)
    assert box.value() == 5000 and binder.config().train.batch_size == 5000
