"""The folder tree: the mailbox's folders (nested by path) and the CRM views."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

from core.model import Folder, FolderRole, TrackState
from desktop.icons import state_icon
from desktop.roles import FolderPathRole, TrackStateRole

ROLE_ORDER = {
    FolderRole.INBOX: 0,
    FolderRole.DRAFTS: 1,
    FolderRole.SENT: 2,
    FolderRole.OUTBOX: 3,
    FolderRole.DELETED: 4,
    FolderRole.JUNK: 5,
}

CRM_VIEWS = (
    ("Tracked in CRM", TrackState.TRACKED),
    ("Needs attention", TrackState.NEEDS_ATTENTION),
)


class FolderTreeModel(QStandardItemModel):
    """Items carry ``FolderPathRole`` (mailbox folders) or ``TrackStateRole`` (CRM views)."""

    def __init__(self, parent: object | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["Folders"])

    def set_folders(self, folders: Iterable[Folder], mailbox_name: str = "Mailbox") -> None:
        self.clear()
        self.setHorizontalHeaderLabels(["Folders"])
        root = QStandardItem(mailbox_name)
        root.setEditable(False)
        root.setSelectable(False)
        self.appendRow(root)
        items: dict[str, QStandardItem] = {}

        def order(f: Folder) -> tuple[int, int, str]:
            role_rank = ROLE_ORDER.get(f.role, 99) if f.role else 99
            return (f.path.count("/"), role_rank, f.name.casefold())

        for folder in sorted(folders, key=order):
            item = QStandardItem(folder.name)
            item.setEditable(False)
            item.setData(folder.path, FolderPathRole)
            item.setToolTip(folder.path)
            parent = items.get(folder.parent or "", root) if folder.parent else root
            parent.appendRow(item)
            items[folder.path] = item
        crm = QStandardItem("CRM")
        crm.setEditable(False)
        crm.setSelectable(False)
        self.appendRow(crm)
        for label, state in CRM_VIEWS:
            view = QStandardItem(state_icon(state), label)
            view.setEditable(False)
            view.setData(state, TrackStateRole)
            crm.appendRow(view)

    def index_of_path(self, path: str) -> QModelIndex | None:
        flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
        matches = self.match(self.index(0, 0), FolderPathRole, path, 1, flags)
        return matches[0] if matches else None

