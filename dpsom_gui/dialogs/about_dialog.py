"""The About box: what the application is and the versions of everything it runs on."""

from __future__ import annotations

import platform
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

__all__ = ["AboutDialog", "component_versions"]


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except Exception:  # noqa: BLE001 - a missing component is reported, not fatal
        return "not installed"
    return str(getattr(module, "__version__", "unknown"))


def component_versions() -> list[tuple[str, str]]:
    """(component, version) for the application and the libraries it is built on."""
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    from core import __version__ as app_version

    rows = [("DPSOM Studio", app_version), ("PyTorch", _version("torch"))]
    try:
        import torch

        rows.append(("GPU support (CUDA)", torch.version.cuda or "none (processor only)"))
    except Exception:  # noqa: BLE001
        pass
    rows += [("Qt", qVersion()), ("PySide6", pyside_version), ("pyqtgraph", _version("pyqtgraph")),
             ("NumPy", _version("numpy")), ("pandas", _version("pandas")), ("h5py", _version("h5py")),
             ("Python", platform.python_version()), ("System", f"{platform.system()} {platform.release()}")]
    return rows


class AboutDialog(QDialog):
    """Names the application, says that no data leave the computer, and lists versions
    (useful when asking for help). It emits no signals of its own."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About DPSOM Studio")
        rows = component_versions()
        intro = QLabel(f"<h3>DPSOM Studio {rows[0][1]}</h3>"
                       "<p>Deep probabilistic self-organising maps (DPSOM and T-DPSOM) of patient health states. "
                       "Everything runs on this computer; no data leave it.</p>")
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Component", "Version"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (name, version) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(name))
            self.table.setItem(r, 1, QTableWidgetItem(version))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(460, 420)

    def versions(self) -> dict[str, str]:
        return {self.table.item(r, 0).text(): self.table.item(r, 1).text() for r in range(self.table.rowCount())}


if __name__ == "__main__":  # pragma: no cover - a quick look from the command line
    print("\n".join(f"{a}: {b}" for a, b in component_versions()), file=sys.stdout)
