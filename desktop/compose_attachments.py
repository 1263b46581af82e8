"""The compose window's attachments: a list with name and size, Remove, and a warning when
they add up to more than most mail servers accept."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from core.mail.drafts import DraftAttachment

#: Over this, the window warns: many servers refuse larger mail (Exchange Online and Gmail 25 MB).
SIZE_WARNING = 25 * 1024 * 1024


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def read_files(paths: list[str]) -> list[DraftAttachment]:
    """The files as attachments (runs on a worker: they may be large or on a share)."""
    from core.mail.drafts import DraftAttachment

    out = []
    for path in paths:
        p = Path(path)
        if p.is_file():
            kind = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
            out.append(DraftAttachment(p.name, p.read_bytes(), kind))
    return out


class AttachmentList(QWidget):
    """``changed()`` when an attachment was added or removed."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[DraftAttachment] = []
        self.list = QListWidget()
        self.list.setObjectName("composeAttachments")
        self.list.setAccessibleName("Attachments")
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(True)
        self.list.setMaximumHeight(56)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("composeRemoveAttachment")
        self.remove_button.setAccessibleName("Remove attachment")
        self.remove_button.clicked.connect(self.remove_selected)
        self.warning = QLabel()
        self.warning.setObjectName("composeSizeWarning")
        self.warning.setStyleSheet("color: #9a5b00;")
        self.warning.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.warning)
        self._refresh()

    def attachments(self) -> tuple[DraftAttachment, ...]:
        return tuple(self._items)

    def text(self) -> str:
        """The attachments as one line (name and size each)."""
        return ", ".join(f"{a.filename} ({human_size(len(a.content))})" for a in self._items)

    def total(self) -> int:
        return sum(len(a.content) for a in self._items)

    def add(self, attachments: list[DraftAttachment]) -> None:
        if attachments:
            self._items.extend(attachments)
            self._refresh()
            self.changed.emit()

    def set_attachments(self, attachments: tuple[DraftAttachment, ...]) -> None:
        self._items = list(attachments)
        self._refresh()

    def remove_selected(self) -> None:
        rows = sorted({self.list.row(i) for i in self.list.selectedItems()}, reverse=True)
        for row in rows:
            del self._items[row]
        if rows:
            self._refresh()
            self.changed.emit()

    def _refresh(self) -> None:
        self.list.clear()
        icon = self.style().standardIcon(QStyle.StandardPixmap.SP_FileIcon)
        for att in self._items:
            item = QListWidgetItem(icon, f"{att.filename} ({human_size(len(att.content))})")
            item.setToolTip(att.mimetype or "")
            self.list.addItem(item)
        total = self.total()
        self.warning.setText(
            f"The attachments add up to {human_size(total)}: many mail servers refuse messages "
            f"over {human_size(SIZE_WARNING)}."
            if total > SIZE_WARNING
            else ""
        )
        self.warning.setVisible(total > SIZE_WARNING)
        if self.parentWidget() is not None:  # never a top-level window of its own
            self.setVisible(bool(self._items))
