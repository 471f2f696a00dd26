"""The user guide (``docs/user-guide.md``, with its screenshots) in a window of its own."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QImageReader, QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

__all__ = ["HelpDialog", "find_user_guide", "GUIDE_NAME"]

GUIDE_NAME = "user-guide.md"


def find_user_guide() -> Path | None:
    """The user guide's file: in a bundle's ``docs/``, or in the source tree's ``docs/``."""
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "docs" / GUIDE_NAME)
    here = Path(__file__).resolve().parent.parent
    candidates += [here.parent / "docs" / GUIDE_NAME, here / "docs" / GUIDE_NAME]
    return next((p for p in candidates if p.is_file()), None)


class HelpDialog(QDialog):
    """Shows the Markdown user guide with its pictures; links to other files of the guide
    open inside, web links in the browser. It emits no signals of its own."""

    def __init__(self, parent: QWidget | None = None, path: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DPSOM Studio user guide")
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._on_browser_anchor_clicked)
        path = path or find_user_guide()
        if path is None:
            self.browser.setMarkdown("# User guide\n\nThe user guide was not found next to the application. "
                                     "It is in the `docs` folder of DPSOM Studio's source.")
        else:
            # A .md source is read as Markdown and its pictures are found next to it.
            self.browser.setSource(QUrl.fromLocalFile(str(path)))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)
        self.resize(820, 720)

    def fit_images(self) -> None:
        """Scale the pictures down to the window's width (Markdown cannot give a width)."""
        doc = self.browser.document()
        width = max(200, self.browser.viewport().width() - 24)
        base = self.browser.source()
        block = doc.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                fmt = fragment.charFormat()
                if fmt.isImageFormat():
                    image = fmt.toImageFormat()
                    size = QImageReader(base.resolved(QUrl(image.name())).toLocalFile()).size()
                    if size.isValid() and size.width() > 0:
                        w = min(size.width(), width)
                        image.setWidth(w)
                        image.setHeight(size.height() * w / size.width())
                        cursor = QTextCursor(doc)
                        cursor.setPosition(fragment.position())
                        cursor.setPosition(fragment.position() + fragment.length(), QTextCursor.MoveMode.KeepAnchor)
                        cursor.setCharFormat(image)
                it += 1
            block = block.next()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.fit_images()

    def _on_browser_anchor_clicked(self, url: QUrl) -> None:
        if url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
        elif url.hasFragment() and (not url.path() or url.matches(self.browser.source(), QUrl.UrlFormattingOption.RemoveFragment)):
            self.browser.scrollToAnchor(url.fragment())
        else:
            self.browser.setSource(self.browser.source().resolved(url))
            self.fit_images()
