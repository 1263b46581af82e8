"""“Move to folder…” / “Copy to folder…”: choose a mailbox folder, filtered as you type
(Outlook's Move Items dialog). The folders come from the store, read by the caller."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.domain.model import Folder


class FolderChooser(QDialog):
    """Lists ``folders`` (paths, the current one left out); :meth:`chosen` after accept."""

    def __init__(
        self, title: str, folders: list[Folder], exclude: str | None, parent: QWidget | None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("folderChooser")
        self.setWindowTitle(title)
        self.filter = QLineEdit()
        self.filter.setObjectName("folderChooserFilter")
        self.filter.setAccessibleName("Filter folders")
        self.filter.setPlaceholderText("Type to filter folders")
        self.list = QListWidget()
        self.list.setObjectName("folderChooserList")
        self.list.setAccessibleName("Folders")
        for f in folders:
            if f.path != exclude:
                item = QListWidgetItem(f.path.replace("/", " › "))
                item.setData(Qt.ItemDataRole.UserRole, f.path)
                self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        self.filter.textChanged.connect(self._filter)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.list)
        layout.addWidget(buttons)

    def _filter(self, text: str) -> None:
        needle = text.casefold()
        first = None
        for i in range(self.list.count()):
            item = self.list.item(i)
            hidden = needle not in item.text().casefold()
            item.setHidden(hidden)
            if not hidden and first is None:
                first = i
        if first is not None:
            self.list.setCurrentRow(first)

    def select(self, path: str) -> None:
        """Make ``path`` the choice (keyboard helpers, tests)."""
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == path:
                self.list.setCurrentRow(i)

    def chosen(self) -> str | None:
        item = self.list.currentItem()
        if item is None or item.isHidden():
            return None
        value = item.data(Qt.ItemDataRole.UserRole)
        return str(value) if value else None
