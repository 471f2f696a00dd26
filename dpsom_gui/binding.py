"""Binding form widgets to :class:`core.config.Config` fields by their dotted name.

One helper serves every control of the training panel, instead of one hand-written
handler per spin box::

    binder = ConfigBinder(config)
    binder.bind("grid.height", QSpinBox())
    binder.bind("train.device", device_combo)     # item data holds the values
    binder.config()                               # a Config with whatever the user set
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

__all__ = ["ConfigBinder"]


class ConfigBinder(QObject):
    """Keeps a set of widgets and a configuration in step, field by field.

    Parameters
    ----------
    config : core.config.Config
        Starting values.

    Notes
    -----
    Supported widgets: ``QSpinBox`` (int; with a special-value text its minimum means None),
    ``QDoubleSpinBox`` (float), ``QCheckBox`` (bool), ``QComboBox`` (the item *data* is the
    value) and ``QLineEdit`` (str). Names are ``section.field`` (``train.batch_size``,
    ``grid.height``) or a top-level field (``model``).

    Signals
    -------
    changed(str)
        The user changed the widget bound to this field name.
    """

    changed = Signal(str)

    def __init__(self, config, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._values = config.to_dict()
        self._widgets: dict[str, QWidget] = {}
        self._updating = False

    # --------------------------------------------------------------- binding
    def bind(self, name: str, widget: QWidget) -> QWidget:
        """Show field ``name`` in ``widget`` and write the user's edits back; returns widget."""
        self._get(name)  # unknown names fail here, at build time
        self._widgets[name] = widget
        self._push(name, widget)
        signal = _change_signal(widget)
        signal.connect(lambda *_: self._on_widget_changed(name))
        return widget

    def widget(self, name: str) -> QWidget:
        return self._widgets[name]

    def names(self) -> list[str]:
        return list(self._widgets)

    # ---------------------------------------------------------------- values
    def value(self, name: str) -> Any:
        return self._get(name)

    def config(self):
        """The configuration as the form shows it (not validated)."""
        from core.config import Config

        return Config.from_dict(self._values)

    def set_config(self, config) -> None:
        """Replace every value and refresh the widgets without emitting :attr:`changed`."""
        self._values = config.to_dict()
        for name, widget in self._widgets.items():
            self._push(name, widget)

    def set_value(self, name: str, value: Any) -> None:
        """Set one field and its widget (no :attr:`changed` signal)."""
        self._set(name, value)
        if name in self._widgets:
            self._push(name, self._widgets[name])

    def set_enabled(self, enabled: bool, names=None) -> None:
        """Enable or disable the bound widgets (all, or those named)."""
        for name in names or self._widgets:
            self._widgets[name].setEnabled(enabled)

    # -------------------------------------------------------------- internals
    def _get(self, name: str) -> Any:
        section, _, field = name.partition(".")
        if section not in self._values:
            raise KeyError(f"unknown setting {name!r}")
        if not field:
            return self._values[section]
        if not isinstance(self._values[section], dict) or field not in self._values[section]:
            raise KeyError(f"unknown setting {name!r}")
        return self._values[section][field]

    def _set(self, name: str, value: Any) -> None:
        self._get(name)
        section, _, field = name.partition(".")
        if field:
            self._values[section][field] = value
        else:
            self._values[section] = value

    def _push(self, name: str, widget: QWidget) -> None:
        self._updating = True
        try:
            _write_widget(widget, self._get(name))
        finally:
            self._updating = False

    def _on_widget_changed(self, name: str) -> None:
        if self._updating:
            return
        self._set(name, _read_widget(self._widgets[name]))
        self.changed.emit(name)


def _change_signal(widget: QWidget):
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.valueChanged
    if isinstance(widget, QCheckBox):
        return widget.toggled
    if isinstance(widget, QComboBox):
        return widget.currentIndexChanged
    if isinstance(widget, QLineEdit):
        return widget.editingFinished
    raise TypeError(f"cannot bind a {type(widget).__name__}")


def _read_widget(widget: QWidget) -> Any:
    if isinstance(widget, QSpinBox):
        if widget.specialValueText() and widget.value() == widget.minimum():
            return None
        return int(widget.value())
    if isinstance(widget, QDoubleSpinBox):
        return float(widget.value())
    if isinstance(widget, QCheckBox):
        return bool(widget.isChecked())
    if isinstance(widget, QComboBox):
        return widget.currentData()
    return widget.text()


def _write_widget(widget: QWidget, value: Any) -> None:
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        if value is None:
            widget.setValue(widget.minimum())
            return
        value = int(value) if isinstance(widget, QSpinBox) else float(value)
        # Never clamp a stored value silently: widen the range to show it as it is.
        if value > widget.maximum():
            widget.setMaximum(value)
        if value < widget.minimum() + (1 if widget.specialValueText() else 0):
            widget.setMinimum(value - (1 if widget.specialValueText() else 0))
        widget.setValue(value)
    elif isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QComboBox):
        index = widget.findData(value)
        if index < 0:  # a value the list does not offer yet (e.g. a device saved elsewhere)
            widget.addItem(str(value), value)
            index = widget.count() - 1
        widget.setCurrentIndex(index)
    else:
        widget.setText("" if value is None else str(value))
