"""The main window: folder tree | message list over the reading pane, CRM actions, status bar.

No business rule lives here: every decision comes from ``core`` (through the workspace), and
every call that touches the mailbox, the CRM or the disk heavily runs on :class:`Workers`.
Every verb returns a ``Changes`` value; :meth:`MainWindow.apply_changes` is the one place that
refreshes views from it (after anki's ``operation_did_execute``).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMainWindow,
    QSplitter,
    QTableView,
    QTreeView,
    QWidget,
)

from core.model import TrackState
from core.sync.report import Changes
from desktop import actions as actions_mod
from desktop.dialogs import DialogOpeners
from desktop.errors import describe
from desktop.folders import FolderTreeModel, read_folder_counts
from desktop.icons import named_icon
from desktop.messages import Column, MessageListModel, StoreFolderSource, StoreStatesSource
from desktop.operations import TrackingOperations
from desktop.reader import ReadingPane
from desktop.roles import FolderPathRole, TrackStateRole, TrackStatesRole, ViewRole
from desktop.statusbar import StatusPanel
from desktop.syncing import SyncController
from desktop.workers import Workers

if TYPE_CHECKING:  # the workspace (and all of core behind it) loads on a worker
    from core.workspace import Workspace

log = logging.getLogger(__name__)

#: Outbox operation kinds listed by the "Pending Send" view.
PENDING_SEND_KINDS = ("send_pending",)


class MainWindow(TrackingOperations, DialogOpeners, QMainWindow):
    """Emits ``message_shown(row_id)`` when the reading pane shows a message,
    ``tracking_done(Changes)`` when a Track/Untrack/Set Regarding finished (replayed, or
    queued while offline), ``mail_synced`` after each sync and ``queue_updated(count)`` when
    the queue count was read."""

    message_shown = Signal(int)
    tracking_done = Signal(object)
    mail_synced = Signal()
    queue_updated = Signal(int)
    online_changed = Signal(bool)
    reconnect_requested = Signal(str)  # profile whose connection changed (Options › Accounts)

    def __init__(self, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("Trackbox")
        self.setWindowIcon(named_icon("trackbox"))
        self.resize(1280, 800)
        self.workers = workers
        self.workspace: Workspace | None = None
        self.local_options: Any = None
        self._store: Any = None  # the GUI thread's own read connection (paged list reads)
        self._load_serial = 0
        self._dialogs: dict[str, Any] = {}
        self._folder_sizes: dict[str, int] = {}  # counted on a worker; used once per folder

        self.folder_model = FolderTreeModel(self)
        self.folder_tree = QTreeView()
        self.folder_tree.setObjectName("folderTree")
        self.folder_tree.setModel(self.folder_model)
        self.folder_tree.setHeaderHidden(True)
        self.folder_tree.setMinimumWidth(190)

        self.message_model = MessageListModel(self)
        self.message_list = QTableView()
        self.message_list.setObjectName("messageList")
        self.message_list.setModel(self.message_model)
        self.message_list.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.message_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.message_list.setSortingEnabled(True)
        self.message_list.sortByColumn(Column.RECEIVED, Qt.SortOrder.DescendingOrder)
        self.message_list.setShowGrid(False)
        self.message_list.setWordWrap(False)
        self.message_list.verticalHeader().setVisible(False)
        self.message_list.verticalHeader().setDefaultSectionSize(22)
        self.message_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self.message_list.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(Column.SUBJECT, QHeaderView.ResizeMode.Stretch)
        for col, width in ((Column.STATE, 28), (Column.ATTACHMENT, 24), (Column.FROM, 170),
                           (Column.RECEIVED, 136), (Column.SIZE, 64), (Column.REGARDING, 150)):
            self.message_list.setColumnWidth(col, width)

        self.reading_pane = ReadingPane()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.message_list)
        right.addWidget(self.reading_pane)
        right.setSizes([330, 470])
        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(self.folder_tree)
        outer.addWidget(right)
        outer.setSizes([220, 1060])
        self.setCentralWidget(outer)

        self.actions = actions_mod.make_actions(self)
        self.context_menu = actions_mod.install(self, self.actions)
        a = self.actions
        # Names kept from the walking skeleton (tests use them).
        self.action_track, self.action_untrack = a.track, a.untrack
        self.action_set_regarding, self.action_sync_now = a.set_regarding, a.sync_now
        self.action_work_offline, self.action_options = a.work_offline, a.options
        self.action_quit = a.quit

        self.status = StatusPanel(self.statusBar())
        self.status_connection = self.status.connection
        self.sync = SyncController(workers, self)
        self.sync.started.connect(lambda: self.status.set_progress("Synchronising…", 0, None))
        self.sync.progress.connect(self.status.set_progress)
        self.sync.finished.connect(self._synced)
        self.sync.failed.connect(self._sync_failed)

        a.track.triggered.connect(self.track_selected)
        a.untrack.triggered.connect(self.untrack_selected)
        a.set_regarding.triggered.connect(self.set_regarding_selected)
        a.view_in_crm.triggered.connect(self.view_in_crm)
        a.sync_now.triggered.connect(self.sync_now)
        a.work_offline.toggled.connect(self.set_work_offline)
        a.options.triggered.connect(self.open_options)
        a.new_mail.triggered.connect(lambda: self.open_compose("new"))
        a.reply.triggered.connect(lambda: self.open_compose("reply"))
        a.reply_all.triggered.connect(lambda: self.open_compose("reply_all"))
        a.forward.triggered.connect(lambda: self.open_compose("forward"))
        a.address_book.triggered.connect(lambda: self.open_address_book(""))
        a.queue.triggered.connect(lambda: self.open_queue())
        a.quit.triggered.connect(self.close)
        self.status.queue_clicked.connect(lambda: self.open_queue())
        self.reading_pane.banner.resolve_requested.connect(self.open_address_book)

        self.folder_tree.selectionModel().currentChanged.connect(self._folder_changed)
        self.message_list.selectionModel().selectionChanged.connect(self._selection_changed)
        self.message_list.customContextMenuRequested.connect(
            lambda pos: self.context_menu.exec(self.message_list.viewport().mapToGlobal(pos)))
        self._update_actions()

    # --- workspace ----------------------------------------------------------------------
    def set_workspace(self, workspace: Workspace) -> None:
        """Attach the user's workspace, read its options, and start the first sync."""
        self.workspace = workspace
        self.sync.set_workspace(workspace)
        self.setWindowTitle(f"Trackbox — {workspace.owner.display()}")
        self._show_connection()
        self._update_actions()

        def shown_last(report: Any) -> None:
            if report is not None and self.workspace is workspace:
                self.status.set_last_sync(report.finished, ok=report.ok)

        self.workers.run(workspace.last_sync, shown_last, lambda _e: None)
        self.workers.run(workspace.local_options, self.apply_local_options,
                         lambda exc: self._say(describe(exc)))
        self.sync_now()

    def detach_workspace(self) -> None:
        """Forget the workspace (before it is closed): late results are then ignored."""
        self.sync.set_interval(0)
        self.sync.cancel()
        self.workers.wait()
        self.workspace = None
        self._store = None
        self.sync.set_workspace(None)
        self.message_model.set_source(None)

    def apply_local_options(self, options: Any) -> None:
        """Interval, colour coding and banner visibility from the profile's local options."""
        self.local_options = options
        self.sync.set_interval(getattr(options, "sync_interval_minutes", 15))
        self.message_model.set_colour_tracked(bool(getattr(options, "colour_tracked", True)))
        self.reading_pane.set_banner_enabled(bool(getattr(options, "show_tracking_banner",
                                                          True)))

    def _online(self) -> bool:
        ws = self.workspace
        if ws is None:
            return False
        return bool(getattr(ws, "online", True))

    def _show_connection(self, detail: str = "") -> None:
        ws = self.workspace
        if ws is None:
            return
        self.status.set_connection(self._online(), ws.crm.base_url, detail)

    def _say(self, text: str, msecs: int = 0) -> None:
        self.statusBar().showMessage(text, msecs)

    # --- sync -----------------------------------------------------------------------------
    def sync_now(self) -> None:
        if self.sync.sync_now():
            self.action_sync_now.setEnabled(False)
            self._say("Synchronising…")

    def _synced(self, result: Any) -> None:
        if self.workspace is None:
            return
        self.status.clear_progress()
        self.action_sync_now.setEnabled(True)
        changes = getattr(result, "changes", result)
        errors = tuple(getattr(result, "errors", ()) or ()) or changes.errors
        if hasattr(result, "online"):
            self._show_connection("" if result.online else "the CRM cannot be reached")
        ok = bool(getattr(result, "ok", True))
        when = getattr(result, "finished", None) or datetime.now()
        self.status.set_last_sync(when, ok=ok)
        self.apply_changes(Changes(folders=True, messages=True, row_ids=changes.row_ids,
                                   errors=errors))
        self._say("; ".join(errors) if errors else "Synchronised", 0 if errors else 3000)
        self.mail_synced.emit()

    def _sync_failed(self, exc: BaseException) -> None:
        self.status.clear_progress()
        self.action_sync_now.setEnabled(True)
        self._say(f"Sync failed. {describe(exc)}")
        self._show_connection(describe(exc))
        self.mail_synced.emit()

    # --- refresh ----------------------------------------------------------------------------
    def apply_changes(self, changes: Changes) -> None:
        """Refresh what ``changes`` says changed; the one place views are refreshed."""
        ws = self.workspace
        if ws is None:
            return
        if self._store is None:
            self._store = ws.store()
        reload = changes.folders or changes.messages or getattr(changes, "queue", False)
        if reload:
            self._reload_folders(structure=changes.folders)  # shows the queue too
        if changes.messages:
            self.message_model.refresh()
        current = self.selected_row_ids()
        if len(current) == 1 and (changes.messages and (not changes.row_ids
                                                        or current[0] in changes.row_ids)):
            self._load(current[0])
        if not reload:
            self.refresh_queue()

    def _reload_folders(self, structure: bool = True) -> None:
        """Re-read folders, CRM view counts and the outbox queue (read once: it gives the
        "Pending Send" count and the status bar's queue); the tree is rebuilt only when
        ``structure`` (the folder list may have changed) and the folders really differ, else
        only the counts are relabelled."""
        ws = self.workspace
        assert ws is not None

        def read() -> tuple[list[Any], dict[TrackState, int], list[Any],
                            dict[str, tuple[int, int]]]:
            store = ws.store()
            return (store.folders(), store.track_state_counts(), ws.queue(),
                    read_folder_counts(store))

        def show(result: tuple[list[Any], dict[TrackState, int], list[Any],
                               dict[str, tuple[int, int]]]) -> None:
            if self.workspace is not ws:
                return
            folders, counts, ops, sizes = result
            self._show_queue(ops)
            sends = sum(1 for op in ops if op.kind in PENDING_SEND_KINDS)
            self._folder_sizes = {path: total for path, (total, _unread) in sizes.items()}
            if not structure and self.folder_model.rowCount():
                self.folder_model.update_counts(counts, sends, sizes)
                return
            current = self._current_folder_key()
            if not self.folder_model.set_folders(folders, ws.mailbox_name, counts,
                                                 pending_send=sends, sizes=sizes):
                return  # same folders: relabelled in place, current folder and list kept
            self.folder_tree.expandAll()
            self._select_folder(current or "Inbox")

        self.workers.run(read, show, lambda exc: self._say(describe(exc)))

    def refresh_queue(self) -> None:
        ws = self.workspace
        if ws is None:
            return

        def show(ops: list[Any]) -> None:
            if self.workspace is ws:
                self._show_queue(ops)

        self.workers.run(ws.queue, show, lambda exc: self._say(describe(exc)))

    def _show_queue(self, ops: list[Any]) -> None:
        """The status bar's queue count, ``queue_updated`` and an open queue view."""
        parked = sum(1 for op in ops if getattr(op, "state", "") == "parked")
        self.status.set_queue(len(ops), parked)
        self.queue_updated.emit(len(ops))
        view = self._dialogs.get("queue")
        if view is not None:
            view.show_operations(ops)

    # --- folders ------------------------------------------------------------------------
    def _current_folder_key(self) -> str | None:
        index = self.folder_tree.currentIndex()
        return index.data(FolderPathRole) if index.isValid() else None

    def _select_folder(self, path: str) -> None:
        index = self.folder_model.index_of_path(path)
        if index is not None:
            if index == self.folder_tree.currentIndex():
                self.message_model.refresh()
            else:
                self.folder_tree.setCurrentIndex(index)

    def _folder_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._store is None or not current.isValid():
            return
        if current.data(ViewRole) == "pending_send":
            self.open_queue(kinds=PENDING_SEND_KINDS)
            return
        path = current.data(FolderPathRole)
        states = current.data(TrackStatesRole) or (
            (current.data(TrackStateRole),) if current.data(TrackStateRole) else None)
        if path:
            self.message_model.set_source(StoreFolderSource(
                self._store, path, self._folder_sizes.pop(path, None)))
        elif states:
            self.message_model.set_source(StoreStatesSource(
                self._store, tuple(TrackState(s) for s in states)))
        else:
            return
        self.reading_pane.clear()
        if self.message_model.rowCount():
            self.message_list.selectionModel().setCurrentIndex(
                self.message_model.index(0, Column.SUBJECT),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
        self._update_actions()

    # --- selection and reading ----------------------------------------------------------
    def selected_row_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.message_list.selectionModel().selectedRows()})
        return self.message_model.row_ids(rows)

    def select_rows(self, rows: list[int]) -> None:
        """Select these list rows (tests and keyboard helpers)."""
        sm = self.message_list.selectionModel()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        sm.clearSelection()
        for r in rows:
            sm.select(self.message_model.index(r, Column.SUBJECT), flags)
        if rows:
            sm.setCurrentIndex(self.message_model.index(rows[0], Column.SUBJECT),
                               QItemSelectionModel.SelectionFlag.NoUpdate)

    def _selection_changed(self, *_: Any) -> None:
        self._update_actions()
        ids = self.selected_row_ids()
        if len(ids) == 1:
            self._load(ids[0])
        elif not ids:
            self.reading_pane.clear()
        else:
            self.reading_pane.clear(f"{len(ids)} messages selected.")

    def _update_actions(self) -> None:
        ws = self.workspace
        a = self.actions
        count = len(self.message_list.selectionModel().selectedRows())

        def offline_tip(what: str) -> str | None:
            """None when attached to a workspace; else why ``what`` is disabled."""
            return None if ws is not None else f"{what}: not connected to a mailbox yet."

        gates = {
            a.track: (count > 0, offline_tip("Track")),
            a.untrack: (count > 0, offline_tip("Untrack")),
            a.set_regarding: (count > 0, offline_tip("Set Regarding")),
            a.view_in_crm: (count == 1 and bool(self.reading_pane.view
                                                and self.reading_pane.view.activity_url),
                            None),
            a.sync_now: (not self.sync.running, offline_tip("Sync")),
            a.work_offline: (True, offline_tip("Work offline")),
            a.options: (True, offline_tip("Options")),
            a.new_mail: (True, offline_tip("Writing mail")),
            a.reply: (count == 1, offline_tip("Reply")),
            a.reply_all: (count == 1, offline_tip("Reply all")),
            a.forward: (count == 1, offline_tip("Forward")),
            a.address_book: (True, offline_tip("Address book")),
            a.queue: (True, offline_tip("Queue")),
        }
        for action, (usable, tip) in gates.items():
            action.setEnabled(usable and tip is None)
            base = action.statusTip()
            action.setToolTip(tip or base)

    def _load(self, row_id: int) -> None:
        ws = self.workspace
        if ws is None:
            return
        self._load_serial += 1
        serial = self._load_serial
        self.reading_pane.show_loading()

        def shown(view: Any) -> None:
            if serial == self._load_serial:  # ignore a slow load the user already left
                self.reading_pane.show_view(view, self.message_model.overlay_state(row_id))
                self._update_actions()
                self.message_shown.emit(row_id)

        def failed(exc: BaseException) -> None:
            if serial == self._load_serial:
                self.reading_pane.show_error(f"This message could not be opened. "
                                             f"{describe(exc)}")

        def op() -> Any:
            view = ws.load_message(row_id)
            if not view.unresolved:
                unresolved = ws.unresolved_for(row_id)
                view = dataclasses.replace(view, unresolved=tuple(unresolved))
            return view

        self.workers.run(op, shown, failed)

    # --- shutdown -----------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self._say("Finishing background work…")
        self.sync.cancel()
        self.sync.set_interval(0)
        self.workers.wait(10_000)
        super().closeEvent(event)
