"""User preferences of the desktop application, stored with QSettings.

Only things that belong to the person using the app live here (window layout, recent files,
autosave interval, refresh rate). Model hyperparameters belong to the project file
(:mod:`core.config`). The :class:`Preferences` object is created once in
:func:`dpsom_gui.app.main` and passed to whoever needs it; there is no module-level instance,
so tests can point it at a temporary ini file.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

__all__ = ["Preferences", "SCHEMA_VERSION", "DEFAULTS"]

#: Version of the layout of keys below; bump it and extend :meth:`Preferences.migrate`.
SCHEMA_VERSION = 2

#: Default value of every plain preference (also their types).
DEFAULTS: dict[str, object] = {
    "autosave_minutes": 5,  # 0 switches autosave off
    "refresh_hz": 15,  # how often live views redraw while training
    "emit_every_steps": 5,  # training steps between two progress reports to the window
    "max_recent": 8,
    "loss_log_scale": True,
    "loss_detailed": False,  # the training curves' every-term view instead of the plain one
    "default_device": "auto",  # the device of the last training started; proposed for new data
    "last_directory": "",
}

_ORGANISATION = "DPSOM Studio"
_APPLICATION = "DPSOM Studio"


class Preferences:
    """Typed access to the user's preferences.

    Parameters
    ----------
    settings : QSettings
        Where the values live. Use :meth:`open` to get the user's own file, or pass a
        ``QSettings(path, QSettings.IniFormat)`` for a private one (tests do).

    Notes
    -----
    Opening runs :meth:`migrate`, so older files are upgraded in place.
    """

    def __init__(self, settings: QSettings) -> None:
        self._s = settings
        self.migrate()

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> "Preferences":
        """Preferences from an ini file at ``path``, or the user's own settings when None."""
        if path is not None:
            return cls(QSettings(str(path), QSettings.Format.IniFormat))
        return cls(QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                             _ORGANISATION, _APPLICATION))

    @property
    def qsettings(self) -> QSettings:
        return self._s

    @property
    def file_name(self) -> str:
        """Where the preferences are stored on disk."""
        return self._s.fileName()

    # ---------------------------------------------------------------- schema
    @property
    def schema_version(self) -> int:
        return int(self._s.value("schema_version", 0))

    def migrate(self) -> None:
        """Upgrade keys written by older versions of the app to :data:`SCHEMA_VERSION`.

        Version 0 (no version key) kept recent files as one ``;``-separated string under
        ``recent`` and the autosave interval in seconds under ``autosave``. Version 1 stored
        the refresh rate as ``fps``.
        """
        version = self.schema_version
        if version < 1:
            old = self._s.value("recent")
            if old is not None:
                files = [p for p in str(old).split(";") if p]
                self._s.setValue("recent_files", files)
                self._s.remove("recent")
            seconds = self._s.value("autosave")
            if seconds is not None:
                self._s.setValue("autosave_minutes", max(0, round(int(seconds) / 60)))
                self._s.remove("autosave")
        if version < 2:
            fps = self._s.value("fps")
            if fps is not None:
                self._s.setValue("refresh_hz", int(fps))
                self._s.remove("fps")
        if version != SCHEMA_VERSION:
            self._s.setValue("schema_version", SCHEMA_VERSION)

    # ------------------------------------------------------------ plain values
    def get(self, key: str):
        """Value of a preference listed in :data:`DEFAULTS`, converted to its default's type."""
        default = DEFAULTS[key]
        value = self._s.value(key, default)
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
        try:
            return type(default)(value)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value) -> None:
        """Store a preference listed in :data:`DEFAULTS`."""
        if key not in DEFAULTS:
            raise KeyError(f"unknown preference {key!r}")
        self._s.setValue(key, type(DEFAULTS[key])(value))

    @property
    def autosave_minutes(self) -> int:
        return self.get("autosave_minutes")

    @property
    def refresh_hz(self) -> int:
        return max(1, min(60, self.get("refresh_hz")))

    @property
    def emit_every_steps(self) -> int:
        return max(1, self.get("emit_every_steps"))

    @property
    def default_device(self) -> str:
        """Where new trainings run: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``."""
        return self.get("default_device").strip().lower() or "auto"

    # ----------------------------------------------------------- recent files
    def recent_files(self) -> list[str]:
        """Recently used project files, newest first, only those that still exist."""
        value = self._s.value("recent_files", [])
        if isinstance(value, str):  # QSettings returns one-element lists as a plain string
            value = [value] if value else []
        return [str(p) for p in value if p and Path(str(p)).exists()]

    def add_recent_file(self, path: str | os.PathLike) -> None:
        path = str(Path(path).resolve())
        files = [p for p in self.recent_files() if p != path]
        self._s.setValue("recent_files", [path, *files][: self.get("max_recent")])

    def remove_recent_file(self, path: str | os.PathLike) -> None:
        files = [p for p in self.recent_files() if p != str(path)]
        self._s.setValue("recent_files", files)

    # ---------------------------------------------------------- window layout
    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._s.setValue("window/geometry", geometry)
        self._s.setValue("window/state", state)

    def window_geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    def window_state(self) -> QByteArray | None:
        return self._bytes("window/state")

    def _bytes(self, key: str) -> QByteArray | None:
        value = self._s.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    # ------------------------------------------------------------------ misc
    def log_directory(self) -> Path:
        """Folder for the application's log files (next to the preferences file)."""
        base = Path(self.file_name).parent if self.file_name else Path(
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
        return base / "logs"

    def autosave_directory(self) -> Path:
        """Folder where projects that were never saved are autosaved while training."""
        return Path(self.file_name).parent / "autosave"

    def sync(self) -> None:
        self._s.sync()
