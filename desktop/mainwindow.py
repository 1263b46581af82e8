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

from core.domain.model import TrackState
from core.sync.report import Changes
from desktop import actions as actions_mod
from desktop.dialogs import DialogOpeners
from desktop.errors import describe
from desktop.folders import FolderTreeModel, read_folder_counts
from desktop.icons import named_icon
from desktop.messages import (
    UNTRACKABLE,
    Column,
    MessageListModel,
    StoreFolderSource,
    StoreStatesSource,
)
from desktop.operations import TrackingOperations
from desktop.reader import ReadingPane
from desktop.roles import FolderPathRole, TrackStateRole, TrackStatesRole, ViewRole
from desktop.statusbar import StatusPanel
from desktop.syncing import SyncController
from desktop.workers import Workers

if TYPE_CHECKING:  # the workspace (and all of core behind it) loads on a worker
    from core.workspace.facade import Workspace

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
        self._pane_row: int | None = None  # the message the reading pane shows or loads
        self._pane_note: str | None = None  # the text shown instead of a message
        self._all_selected = False  # every row was selected when the list's layout changed

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
        for col, width in (
            (Column.STATE, 28),
            (Column.ATTACHMENT, 24),
            (Column.FROM, 170),
            (Column.RECEIVED, 136),
            (Column.SIZE, 64),
            (Column.REGARDING, 150),
        ):
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
        # After the selection model moved the selection with its messages (it was connected
        # first): the reading pane and the actions follow.
        self.message_model.layoutAboutToBeChanged.connect(self._layout_about_to_change)
        self.message_model.layoutChanged.connect(self._layout_changed)
        self.message_list.customContextMenuRequested.connect(
            lambda pos: self.context_menu.exec(self.message_list.viewport().mapToGlobal(pos))
        )
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
        self.workers.run(
            workspace.local_options, self.apply_local_options, lambda exc: self._say(describe(exc))
        )
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
        self.reading_pane.set_banner_enabled(bool(getattr(options, "show_tracking_banner", True)))

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
        self.apply_changes(
            Changes(folders=True, messages=True, row_ids=changes.row_ids, errors=errors)
        )
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
            shown = self._pane_row
            self.message_model.refresh()  # the pane follows the selection (_layout_changed)
            current = self._selected_rows()
            if (
                len(current) == 1
                and shown is not None
                and self._pane_row == shown
                and (not changes.row_ids or shown in changes.row_ids)
            ):
                self._load(shown)  # the same message, changed: show its new state
        if not reload:
            self.refresh_queue()

    def _reload_folders(self, structure: bool = True) -> None:
        """Re-read folders, CRM view counts and the outbox queue (read once: it gives the
        "Pending Send" count and the status bar's queue); the tree is rebuilt only when
        ``structure`` (the folder list may have changed) and the folders really differ, else
        only the counts are relabelled."""
        ws = self.workspace
        assert ws is not None

        def read() -> tuple[
            list[Any], dict[TrackState, int], list[Any], dict[str, tuple[int, int]]
        ]:
            store = ws.store()
            return (
                store.folders(),
                store.track_state_counts(),
                ws.queue(),
                read_folder_counts(store),
            )

        def show(
            result: tuple[list[Any], dict[TrackState, int], list[Any], dict[str, tuple[int, int]]],
        ) -> None:
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
            if not self.folder_model.set_folders(
                folders, ws.mailbox_name, counts, pending_send=sends, sizes=sizes
            ):
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
            (current.data(TrackStateRole),) if current.data(TrackStateRole) else None
        )
        if path:
            self.message_model.set_source(
                StoreFolderSource(self._store, path, self._folder_sizes.pop(path, None))
            )
        elif states:
            self.message_model.set_source(
                StoreStatesSource(self._store, tuple(TrackState(s) for s in states))
            )
        else:
            return
        self._clear_pane()
        if self.message_model.rowCount():
            self.message_list.selectionModel().setCurrentIndex(
                self.message_model.index(0, Column.SUBJECT),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
        self._update_actions()

    # --- selection and reading ----------------------------------------------------------
    def _selected_rows(self) -> list[int]:
        """The highlighted rows, ascending, from the selection's ranges (a Ctrl+A of 100,000
        rows is one range: no index per row is built)."""
        sm = self.message_list.selectionModel()
        selection = sm.selection()
        last = self.message_model.columnCount() - 1
        rows: set[int] = set()
        for i in range(selection.count()):
            rng = selection.at(i)
            if rng.left() != 0 or rng.right() != last:  # part of a row: ask Qt row by row
                return sorted({index.row() for index in sm.selectedRows()})
            rows.update(range(rng.top(), rng.bottom() + 1))
        return sorted(rows)

    def selected_row_ids(self) -> list[int]:
        """The ids of exactly the highlighted messages (the list's layout changes keep the
        selection on its messages, so this is what the user sees selected)."""
        return self.message_model.row_ids(self._selected_rows())

    def select_rows(self, rows: list[int]) -> None:
        """Select these list rows (tests and keyboard helpers)."""
        sm = self.message_list.selectionModel()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        sm.clearSelection()
        for r in rows:
            sm.select(self.message_model.index(r, Column.SUBJECT), flags)
        if rows:
            sm.setCurrentIndex(
                self.message_model.index(rows[0], Column.SUBJECT),
                QItemSelectionModel.SelectionFlag.NoUpdate,
            )

    def _selection_changed(self, *_: Any) -> None:
        self._update_actions()
        self._follow_selection(reload=True)

    def _layout_about_to_change(self, *_: Any) -> None:
        self._all_selected = self._all_rows_selected()

    def _layout_changed(self, *_: Any) -> None:
        """A sort, refresh or source swap: states may have changed, and a selected message
        may be gone (then the selection shrank without ``selectionChanged``).

        A select-all stays one: Qt keeps a selection of every cell of a big table (over 1,000
        cells) as its two corners, which a layout change with a new row count shifts or
        drops (a removed top message emptied it). Ctrl+A means the whole list, so mail that
        arrived meanwhile is selected too."""
        if self._all_selected and not self._all_rows_selected():
            self.message_list.selectAll()  # selectionChanged: actions and pane follow
        self._all_selected = False
        self._update_actions()
        self._follow_selection(reload=False)

    def _all_rows_selected(self) -> bool:
        """Whether every row is highlighted (one range when it comes from Ctrl+A)."""
        count = self.message_model.rowCount()
        selection = self.message_list.selectionModel().selection()
        if not count or selection.isEmpty():
            return False
        if selection.count() == 1:
            rng = selection.at(0)
            return (rng.top(), rng.bottom(), rng.left(), rng.right()) == (
                0,
                count - 1,
                0,
                self.message_model.columnCount() - 1,
            )
        return len(self._selected_rows()) == count

    def _follow_selection(self, reload: bool) -> None:
        """Show the one selected message (loaded again only with ``reload`` when already
        shown), a count for several, or nothing."""
        rows = self._selected_rows()
        if len(rows) > 1:
            self._clear_pane(f"{len(rows)} messages selected.")
            return
        ids = self.message_model.row_ids(rows)
        if not ids:
            self._clear_pane()
        elif reload or ids[0] != self._pane_row:
            self._load(ids[0])

    def _clear_pane(self, text: str = "") -> None:
        """No message in the pane (``text`` instead, or the pane's hint); a load under way is
        no longer wanted. Nothing is redone when the pane already shows that."""
        if self._pane_row is None and self._pane_note == text:
            return
        self._pane_row, self._pane_note = None, text
        self._load_serial += 1
        if text:
            self.reading_pane.clear(text)
        else:
            self.reading_pane.clear()

    def _shown_row(self) -> int | None:
        """The message the reading pane has on screen (not one it is still loading)."""
        view = self.reading_pane.view
        return view.row_id if view is not None and view.row_id == self._pane_row else None

    def _untrack_usable(self, rows: list[int]) -> bool:
        """Untrack is for tracked (or pending) mail: some selected message must be in such a
        state; undecided within the cap of rows read (a huge selection), it is offered and
        the verb then picks the tracked ones."""
        return self.message_model.any_state_at(rows, UNTRACKABLE) is not False

    def _update_actions(self) -> None:
        ws = self.workspace
        a = self.actions
        rows = self._selected_rows()
        count = len(rows)
        # Reply, Forward and View in CRM use the reading pane's message: only once it shows
        # the selected one (not while it loads it, nor a message the list no longer selects).
        pane = self._shown_row()
        shown = count == 1 and pane is not None and self.message_model.row_ids(rows) == [pane]

        def offline_tip(what: str) -> str | None:
            """None when attached to a workspace; else why ``what`` is disabled."""
            return None if ws is not None else f"{what}: not connected to a mailbox yet."

        gates = {
            a.track: (count > 0, offline_tip("Track")),
            a.untrack: (count > 0 and self._untrack_usable(rows), offline_tip("Untrack")),
            a.set_regarding: (count > 0, offline_tip("Set Regarding")),
            a.view_in_crm: (
                shown and bool(self.reading_pane.view and self.reading_pane.view.activity_url),
                None,
            ),
            a.sync_now: (not self.sync.running, offline_tip("Sync")),
            a.work_offline: (True, offline_tip("Work offline")),
            a.options: (True, offline_tip("Options")),
            a.new_mail: (True, offline_tip("Writing mail")),
            a.reply: (shown, offline_tip("Reply")),
            a.reply_all: (shown, offline_tip("Reply all")),
            a.forward: (shown, offline_tip("Forward")),
            a.address_book: (True, offline_tip("Address book")),
            a.queue: (True, offline_tip("Queue")),
        }
        # Only what changed is set: this runs on every selection and layout change, and
        # PySide6 6.12 on CPython 3.11 drops a reference to None on each void call.
        for action, (usable, tip) in gates.items():
            enabled = usable and tip is None
            if action.isEnabled() != enabled:
                action.setEnabled(enabled)
            text = tip or action.statusTip()
            if action.toolTip() != text:
                action.setToolTip(text)

    def _load(self, row_id: int) -> None:
        ws = self.workspace
        if ws is None:
            return
        self._load_serial += 1
        serial = self._load_serial
        self._pane_row, self._pane_note = row_id, None
        self.reading_pane.show_loading()

        def shown(view: Any) -> None:
            if serial == self._load_serial:  # ignore a slow load the user already left
                self.reading_pane.show_view(view, self.message_model.overlay_state(row_id))
                self._update_actions()
                self.message_shown.emit(row_id)

        def failed(exc: BaseException) -> None:
            if serial == self._load_serial:
                self.reading_pane.show_error(f"This message could not be opened. {describe(exc)}")

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
