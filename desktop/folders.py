"""The folder tree: the mailbox's folders (nested by path) and the CRM views.

``FolderTreeModel`` is the model; ``FolderPane`` owns the tree view and keeps it current: on a
change notice about folders or messages it re-reads folders and counts on a worker, and the
queue watch's reads give the "Pending Send" count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QTreeView

from core.domain.changes import Changes
from core.domain.model import Folder, FolderRole, TrackState
from core.sync.report import QueuedOperation
from desktop.errors import describe
from desktop.host import WindowHost
from desktop.icons import named_icon, state_icon
from desktop.messages import ROWS_MIME
from desktop.ops import ChangeBus, QueryOp
from desktop.roles import FolderPathRole, TrackStateRole, TrackStatesRole, ViewRole
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.store import Store

#: Outbox operation kinds listed by the "Pending Send" view.
PENDING_SEND_KINDS = ("send_pending",)

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


def read_folder_counts(store: Store) -> dict[str, tuple[int, int]]:
    """``{folder path: (messages, unread)}`` from the local store (run it on a worker)."""
    return store.folder_counts()


_Index = QModelIndex | QPersistentModelIndex


class FolderTreeModel(QStandardItemModel):
    """Items carry ``FolderPathRole`` (mailbox folders) or ``TrackStateRole`` (CRM views).
    ``messages_dropped(row_ids, folder, copy)`` when message rows are dropped on a folder."""

    messages_dropped = Signal(list, str, bool)

    def __init__(self, parent: QObject | None = None) -> None:
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
        self._add_mailbox(mailbox_name, ordered)
        self._add_crm_views()
        self._shape = shape
        self.update_counts(counts, pending_send, sizes)
        return True

    def _add_mailbox(self, mailbox_name: str, ordered: list[Folder]) -> None:
        """The mailbox's folder tree (parents before children) under one root."""
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

    def _add_crm_views(self) -> None:
        """The CRM views (one per group of states) and Pending Send."""
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
        self.set_pending_send(pending_send)

    # --- drop: messages dragged from the list onto a folder (Ctrl: copy) ----------------------
    def mimeTypes(self) -> list[str]:
        return [ROWS_MIME]

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def canDropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: _Index
    ) -> bool:
        return data.hasFormat(ROWS_MIME) and bool(parent.data(FolderPathRole))

    def dropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: _Index
    ) -> bool:
        """Say which rows were dropped on which folder (``messages_dropped``); the window
        moves or copies them. False: nothing for the view to remove itself."""
        if not self.canDropMimeData(data, action, row, column, parent):
            return False
        text = bytes(data.data(ROWS_MIME).data()).decode("ascii", "replace")
        ids = [int(t) for t in text.split() if t.isdigit()]
        if ids:
            copy = action == Qt.DropAction.CopyAction
            self.messages_dropped.emit(ids, str(parent.data(FolderPathRole)), copy)
        return False

    def set_pending_send(self, count: int | None) -> None:
        """Label the "Pending Send" view with the number of CRM mails waiting to go out."""
        if self._send is not None:
            self._send.setText("Pending Send" if count is None else f"Pending Send ({count})")

    def index_of_path(self, path: str) -> QModelIndex | None:
        flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
        matches = self.match(self.index(0, 0), FolderPathRole, path, 1, flags)
        return matches[0] if matches else None


_FolderRead = tuple[list[Folder], dict[TrackState, int], dict[str, tuple[int, int]]]


class FolderPane(QObject):
    """The folder tree view and its model, kept current by change notices. The window
    listens to ``tree.selectionModel().currentChanged`` to open what the user picks."""

    def __init__(
        self, host: WindowHost, workers: Workers, bus: ChangeBus, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._host = host
        self._workers = workers
        self.model = FolderTreeModel(self)
        self.tree = QTreeView()
        self.tree.setObjectName("folderTree")
        self.tree.setAccessibleName("Folders")
        self.tree.setModel(self.model)
        self.tree.setHeaderHidden(True)
        self.tree.setMinimumWidth(190)
        self.tree.setAcceptDrops(True)
        self.tree.setDropIndicatorShown(True)
        self.tree.setDragDropMode(QTreeView.DragDropMode.DropOnly)
        self._sizes: dict[str, int] = {}  # counted on a worker; used once per folder
        self._pending_send: int | None = None
        self._serial = 0
        self._rebuild = False  # a read asked to rebuild the tree and no read has shown yet
        bus.changes_applied.connect(self._follow_changes)

    def _follow_changes(self, changes: Changes) -> None:
        if changes.folders or changes.messages:
            self.reload(structure=changes.folders)

    def show_queue(self, ops: Sequence[QueuedOperation]) -> None:
        """The queue as the queue watch read it: the "Pending Send" count."""
        self._pending_send = sum(1 for op in ops if op.kind in PENDING_SEND_KINDS)
        self.model.set_pending_send(self._pending_send)

    def take_size_hint(self, path: str) -> int | None:
        """The folder's message count as last read (once: later opens count again)."""
        return self._sizes.pop(path, None)

    def current_path(self) -> str | None:
        index = self.tree.currentIndex()
        return index.data(FolderPathRole) if index.isValid() else None

    def reload(self, structure: bool = True) -> None:
        """Re-read folders and the counts of the CRM views and folders; the tree is rebuilt
        only when ``structure`` (the folder list may have changed) and the folders really
        differ, else only the counts are relabelled. Only the newest read is shown."""
        ws = self._host.workspace
        if ws is None:
            return
        self._rebuild = self._rebuild or structure
        self._serial += 1
        serial = self._serial

        def read() -> _FolderRead:
            store = ws.store()
            return store.folders(), store.tracking.state_counts(), read_folder_counts(store)

        def show(result: _FolderRead) -> None:
            if self._host.workspace is not ws or serial != self._serial:
                return
            folders, counts, sizes = result
            rebuild, self._rebuild = self._rebuild, False
            self._sizes = {path: total for path, (total, _unread) in sizes.items()}
            if not rebuild and self.model.rowCount():
                self.model.update_counts(counts, self._pending_send, sizes)
                return
            current = self.current_path()
            if not self.model.set_folders(
                folders, ws.mailbox_name, counts, pending_send=self._pending_send, sizes=sizes
            ):
                return  # same folders: relabelled in place, current folder and list kept
            self.tree.expandAll()
            self.select_path(current or "Inbox")

        QueryOp(read, show).failure(lambda exc: self._host.say(describe(exc))).run_in_background(
            self._workers
        )

    def select_path(self, path: str) -> None:
        index = self.model.index_of_path(path)
        if index is not None and index != self.tree.currentIndex():
            self.tree.setCurrentIndex(index)


def view_states(index: QModelIndex | QPersistentModelIndex) -> tuple[TrackState, ...]:
    """The tracked states a CRM view of the tree lists (empty for a folder)."""
    states = index.data(TrackStatesRole) or (
        (index.data(TrackStateRole),) if index.data(TrackStateRole) else ()
    )
    return tuple(TrackState(s) for s in states)
