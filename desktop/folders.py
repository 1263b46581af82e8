"""The folder tree: the mailbox's folders (nested by path) and the CRM views."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

from core.domain.model import Folder, FolderRole, TrackState
from desktop.icons import named_icon, state_icon
from desktop.roles import FolderPathRole, TrackStateRole, TrackStatesRole, ViewRole

ROLE_ORDER = {
    FolderRole.INBOX: 0,
    FolderRole.DRAFTS: 1,
    FolderRole.SENT: 2,
    FolderRole.OUTBOX: 3,
    FolderRole.DELETED: 4,
    FolderRole.JUNK: 5,
}

#: The CRM views: label, the states they list (first one gives the icon), tooltip.
CRM_VIEWS = (
    (
        "Tracked in CRM",
        (TrackState.TRACKED, TrackState.TRACKED_BY_OTHER),
        "Every message tracked in the CRM, from all folders",
    ),
    (
        "Needs attention",
        (TrackState.NEEDS_ATTENTION, TrackState.FAILED),
        "Unresolved or ambiguous addresses, mail flagged for review, failed operations",
    ),
    (
        "Pending (queued)",
        (TrackState.PENDING, TrackState.UNDECIDED),
        "Messages waiting for the CRM: queued while offline or being sent, or new mail whose "
        "tracking decision needs the CRM's answer",
    ),
)


def read_folder_counts(store: object) -> dict[str, tuple[int, int]]:
    """``{folder path: (messages, unread)}`` from the local store (run it on a worker)."""
    return store.folder_counts()  # type: ignore[attr-defined, no-any-return]


class FolderTreeModel(QStandardItemModel):
    """Items carry ``FolderPathRole`` (mailbox folders) or ``TrackStateRole`` (CRM views)."""

    def __init__(self, parent: object | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["Folders"])
        self._views: list[tuple[QStandardItem, str, tuple[TrackState, ...]]] = []
        self._send: QStandardItem | None = None
        self._folders: dict[str, tuple[QStandardItem, str]] = {}
        self._shape: tuple[object, ...] | None = None  # what the current tree was built from

    def set_folders(
        self,
        folders: Iterable[Folder],
        mailbox_name: str = "Mailbox",
        counts: dict[TrackState, int] | None = None,
        pending_send: int | None = None,
        sizes: dict[str, tuple[int, int]] | None = None,
    ) -> bool:
        """``counts`` (messages per state) label the CRM views; ``pending_send`` is the
        number of CRM mails waiting to go out (None: unknown).

        When the folders are the ones the tree already shows (every sync reads them again),
        the tree is kept and only relabelled, so the views' current index and selection
        survive. Returns whether the tree was rebuilt."""

        def order(f: Folder) -> tuple[int, int, str]:
            role_rank = ROLE_ORDER.get(f.role, 99) if f.role else 99
            return (f.path.count("/"), role_rank, f.name.casefold())

        ordered = sorted(folders, key=order)
        shape = (mailbox_name, *((f.path, f.name, f.parent) for f in ordered))
        if shape == self._shape and self.rowCount():
            self.update_counts(counts, pending_send, sizes)
            return False
        self.clear()
        self.setHorizontalHeaderLabels(["Folders"])
        root = QStandardItem(mailbox_name)
        root.setEditable(False)
        root.setSelectable(False)
        self.appendRow(root)
        items: dict[str, QStandardItem] = {}
        self._folders = {}
        for folder in ordered:
            item = QStandardItem(folder.name)
            item.setEditable(False)
            item.setData(folder.path, FolderPathRole)
            item.setToolTip(folder.path)
            self._folders[folder.path] = (item, folder.name)
            parent = items.get(folder.parent or "", root) if folder.parent else root
            parent.appendRow(item)
            items[folder.path] = item
        crm = QStandardItem("CRM")
        crm.setEditable(False)
        crm.setSelectable(False)
        self.appendRow(crm)
        self._views = []
        for label, states, tip in CRM_VIEWS:
            view = QStandardItem(state_icon(states[0]), label)
            self._views.append((view, label, tuple(states)))
            view.setEditable(False)
            view.setData(states[0], TrackStateRole)
            view.setData(tuple(states), TrackStatesRole)
            view.setToolTip(tip)
            crm.appendRow(view)
        send = QStandardItem(named_icon("compose"), "Pending Send")
        self._send = send
        send.setEditable(False)
        send.setData("pending_send", ViewRole)
        send.setToolTip("CRM mail waiting to go out through this client (opens the queue)")
        crm.appendRow(send)
        self._shape = shape
        self.update_counts(counts, pending_send, sizes)
        return True

    def update_counts(
        self,
        counts: dict[TrackState, int] | None,
        pending_send: int | None = None,
        sizes: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        """Relabel folders (unread counts, in bold) and the CRM views in place (the tree
        and its selection stay as they are)."""
        for path, (item, name) in self._folders.items():
            total, unread = (sizes or {}).get(path, (0, 0))
            item.setText(f"{name} ({unread})" if unread else name)
            font = item.font()
            font.setBold(bool(unread))
            item.setFont(font)
            item.setToolTip(f"{path}: {total:,} messages, {unread:,} unread")
        for item, label, states in self._views:
            n = sum((counts or {}).get(s, 0) for s in states)
            item.setText(f"{label} ({n})" if counts is not None else label)
        if self._send is not None:
            self._send.setText(
                "Pending Send" if pending_send is None else f"Pending Send ({pending_send})"
            )

    def index_of_path(self, path: str) -> QModelIndex | None:
        flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
        matches = self.match(self.index(0, 0), FolderPathRole, path, 1, flags)
        return matches[0] if matches else None
