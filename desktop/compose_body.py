"""The compose window's body: a rich-text editor with a small formatting toolbar (bold,
italic, underline, bullet list, link) or plain text, per message.

The HTML that leaves the editor is not Qt's (a whole document of ``style`` attributes, which
the sanitiser strips): :func:`document_html` writes the few tags the toolbar can make, and
core sanitises that again before it becomes MIME (``core.mail.drafts.sanitized``).
"""

from __future__ import annotations

import html
from collections.abc import Iterator

from PySide6.QtCore import QMimeData, Signal
from PySide6.QtGui import (
    QFont,
    QTextBlock,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextListFormat,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


def _fragments(block: QTextBlock) -> Iterator[tuple[str, QTextCharFormat]]:
    it = block.begin()
    while not it.atEnd():
        frag = it.fragment()
        if frag.isValid():
            yield frag.text(), frag.charFormat()
        it += 1


def _inline(text: str, fmt: QTextCharFormat) -> str:
    out = html.escape(text).replace("\u2028", "<br>")
    if fmt.fontWeight() >= QFont.Weight.Bold.value:
        out = f"<b>{out}</b>"
    if fmt.fontItalic():
        out = f"<i>{out}</i>"
    if fmt.isAnchor() and fmt.anchorHref():
        return f'<a href="{html.escape(fmt.anchorHref(), quote=True)}">{out}</a>'
    if fmt.fontUnderline():
        out = f"<u>{out}</u>"
    return out


def document_html(doc: QTextDocument) -> str:
    """The document as simple mail HTML: paragraphs, ``b``/``i``/``u``, links, bullet lists."""
    parts: list[str] = []
    in_list = False
    block = doc.begin()
    while block.isValid():
        line = "".join(_inline(t, f) for t, f in _fragments(block)) or "<br>"
        if block.textList() is not None:
            if not in_list:
                parts.append("<ul>")
                in_list = True
            parts.append(f"<li>{line}</li>")
        else:
            if in_list:
                parts.append("</ul>")
                in_list = False
            parts.append(f"<p>{line}</p>")
        block = block.next()
    if in_list:
        parts.append("</ul>")
    return "<html><body>" + "".join(parts) + "</body></html>"


class _Editor(QTextEdit):
    """A text edit that hands dropped or pasted files to the window (as attachments) instead
    of inserting their names as text."""

    files_dropped = Signal(list)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:  # noqa: N802 (Qt name)
        return source.hasUrls() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 (Qt name)
        files = [u.toLocalFile() for u in source.urls() if u.isLocalFile()]
        if files:
            self.files_dropped.emit(files)
        else:
            super().insertFromMimeData(source)


class ComposeBody(QWidget):
    """The body editor; ``changed()`` after every edit."""

    changed = Signal()

    def __init__(self, *, plain_text: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = _Editor()
        self.edit.setObjectName("composeBody")
        self.edit.setAccessibleName("Message body")
        self.edit.textChanged.connect(self.changed.emit)
        self.buttons: dict[str, QToolButton] = {}
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for key, label, tip, slot in (
            ("bold", "B", "Bold (Ctrl+B)", self.toggle_bold),
            ("italic", "I", "Italic (Ctrl+I)", self.toggle_italic),
            ("underline", "U", "Underline (Ctrl+U)", self.toggle_underline),
            ("bullets", "•", "Bulleted list", self.toggle_bullets),
            ("link", "Link…", "Insert a link", self.insert_link),
        ):
            button = QToolButton()
            button.setText(label)
            button.setToolTip(tip)
            button.setAccessibleName(tip.split(" (")[0])
            button.setObjectName(f"compose_{key}")
            button.clicked.connect(slot)
            bar.addWidget(button)
            self.buttons[key] = button
        for key, shortcut in (("bold", "Ctrl+B"), ("italic", "Ctrl+I"), ("underline", "Ctrl+U")):
            self.buttons[key].setShortcut(shortcut)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.edit, 1)
        self.plain_text = False
        self.set_plain_text(plain_text)

    # --- mode -----------------------------------------------------------------------------
    def set_plain_text(self, plain: bool) -> None:
        """Plain text drops the formatting (what is written stays)."""
        if plain and not self.plain_text:
            text = self.edit.toPlainText()
            self.edit.setAcceptRichText(False)
            self.edit.setPlainText(text)
        self.edit.setAcceptRichText(not plain)
        self.plain_text = plain
        for button in self.buttons.values():
            button.setEnabled(not plain)

    # --- content --------------------------------------------------------------------------
    def text(self) -> str:
        return self.edit.toPlainText()

    def html(self) -> str | None:
        """Mail HTML of the body; None in plain-text mode."""
        return None if self.plain_text else document_html(self.edit.document())

    def set_content(self, text: str, html_body: str | None = None) -> None:
        if html_body and not self.plain_text:
            self.edit.setHtml(html_body)
        else:
            self.edit.setPlainText(text)

    # --- formatting -----------------------------------------------------------------------
    def _merge(self, fmt: QTextCharFormat) -> None:
        cursor = self.edit.textCursor()
        if not cursor.hasSelection():
            cursor.select(QTextCursor.SelectionType.WordUnderCursor)
        cursor.mergeCharFormat(fmt)
        self.edit.mergeCurrentCharFormat(fmt)

    def toggle_bold(self) -> None:
        fmt = QTextCharFormat()
        bold = self.edit.fontWeight() < QFont.Weight.Bold.value
        fmt.setFontWeight(QFont.Weight.Bold if bold else QFont.Weight.Normal)
        self._merge(fmt)

    def toggle_italic(self) -> None:
        fmt = QTextCharFormat()
        fmt.setFontItalic(not self.edit.fontItalic())
        self._merge(fmt)

    def toggle_underline(self) -> None:
        fmt = QTextCharFormat()
        fmt.setFontUnderline(not self.edit.fontUnderline())
        self._merge(fmt)

    def toggle_bullets(self) -> None:
        cursor = self.edit.textCursor()
        current = cursor.currentList()
        if current is not None:
            for i in reversed(range(current.count())):
                current.remove(current.item(i))
            return
        cursor.createList(QTextListFormat.Style.ListDisc)

    def insert_link(self, url: str | None = None) -> None:
        """Make the selection (or the address itself) a link to ``url`` (asked if None)."""
        if url is None:
            url, ok = QInputDialog.getText(self, "Insert link", "Address:", text="https://")
            if not ok:
                return
        url = url.strip()
        if not url:
            return
        cursor = self.edit.textCursor()
        fmt = QTextCharFormat()
        fmt.setAnchor(True)
        fmt.setAnchorHref(url)
        fmt.setFontUnderline(True)
        if cursor.hasSelection():
            cursor.mergeCharFormat(fmt)
        else:
            cursor.insertText(url, fmt)
