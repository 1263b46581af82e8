"""The main window: folder tree | message list over the reading pane, CRM actions.

No business rule lives here: every decision comes from ``core`` (through the workspace), and
every call that touches the mailbox, the CRM or the disk heavily runs on :class:`Workers`.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QTableView,
    QToolBar,
    QTreeView,
    QWidget,
)

from core.model import TrackState
from core.workspace import Changes, Workspace
from desktop.folders import FolderTreeModel
from desktop.icons import named_icon, state_icon
from desktop.messages import Column, MessageListModel, StoreFolderSource, StoreStateSource
from desktop.reader import ReadingPane
from desktop.roles import FolderPathRole, TrackStateRole
from desktop.workers import Workers

log = logging.getLogger(__name__)

NOT_YET = "Not available yet: arrives with the {what}."


class MainWindow(QMainWindow):
    """Emits ``message_shown(row_id)`` when the reading pane shows a message and
    ``tracking_done(Changes)`` when a Track/Untrack finishes (tests and screenshots use them)."""

    message_shown = Signal(int)
    tracking_done = Signal(object)
    mail_synced = Signal()

    def __init__(self, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("Trackbox")
        self.setWindowIcon(named_icon("trackbox"))
        self.resize(1280, 800)
        self.workers = workers
        self.workspace: Workspace | None = None
        self._store: Any = None  # the GUI thread's own read connection
        self._load_serial = 0

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

        self._make_actions()
        self._make_status_bar()

        self.folder_tree.selectionModel().currentChanged.connect(self._folder_changed)
        self.message_list.selectionModel().selectionChanged.connect(self._selection_changed)
        self.message_list.customContextMenuRequested.connect(self._context_menu)

    # --- construction -------------------------------------------------------------------
    def _action(self, name: str, text: str, *, icon: str | None = None,
                shortcut: str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if icon:
            action.setIcon(named_icon(icon) if "." not in icon else state_icon(TrackState(icon)))
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        return action

    def _make_actions(self) -> None:
        self.action_track = self._action("actionTrack", "&Track in CRM", shortcut="Ctrl+T",
                                         tip="Track the selected messages in the CRM")
        self.action_track.setIcon(state_icon(TrackState.TRACKED))
        self.action_untrack = self._action(
            "actionUntrack", "&Untrack", shortcut="Ctrl+Shift+T",
            tip="Stop tracking the selected messages and delete their CRM copies")
        self.action_untrack.setIcon(state_icon(TrackState.NOT_TRACKED))
        self.action_set_regarding = self._action(
            "actionSetRegarding", "Set &Regarding…", shortcut="Ctrl+R",
            tip=NOT_YET.format(what="regarding picker"))
        self.action_sync_now = self._action("actionSyncNow", "&Sync now", shortcut="F9",
                                            tip="Synchronise the mailbox now")
        self.action_work_offline = self._action(
            "actionWorkOffline", "Work &offline", tip=NOT_YET.format(what="offline queue"))
        self.action_work_offline.setCheckable(True)
        self.action_options = self._action("actionOptions", "&Options…",
                                           tip=NOT_YET.format(what="options dialog"))
        self.action_quit = self._action("actionQuit", "&Quit", shortcut="Ctrl+Q")

        for action in (self.action_set_regarding, self.action_work_offline, self.action_options):
            action.setEnabled(False)
        self.action_track.setEnabled(False)
        self.action_untrack.setEnabled(False)
        self.action_sync_now.setEnabled(False)

        self.action_track.triggered.connect(self.track_selected)
        self.action_untrack.triggered.connect(self.untrack_selected)
        self.action_sync_now.triggered.connect(self.sync_now)
        self.action_quit.triggered.connect(self.close)

        toolbar = QToolBar("CRM")
        toolbar.setObjectName("crmToolBar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setMovable(False)
        for action in (self.action_track, self.action_untrack, self.action_set_regarding,
                       self.action_sync_now, self.action_work_offline, self.action_options):
            toolbar.addAction(action)
        self.addToolBar(toolbar)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(self.action_work_offline)
        file_menu.addAction(self.action_options)
        file_menu.addSeparator()
        file_menu.addAction(self.action_quit)
        crm_menu = menu.addMenu("&CRM")
        for action in (self.action_track, self.action_untrack, self.action_set_regarding,
                       self.action_sync_now):
            crm_menu.addAction(action)

    def _make_status_bar(self) -> None:
        self.status_connection = QLabel("Starting…")
        self.status_connection.setObjectName("statusConnection")
        self.status_sync = QLabel("")
        self.status_sync.setObjectName("statusLastSync")
        self.statusBar().addPermanentWidget(self.status_sync)
        self.statusBar().addPermanentWidget(self.status_connection)

    # --- workspace ----------------------------------------------------------------------
    def set_workspace(self, workspace: Workspace) -> None:
        """Attach the user's workspace and start the first mailbox sync."""
        self.workspace = workspace
        self.setWindowTitle(f"Trackbox — {workspace.owner.display()}")
        self.status_connection.setText(f"Online · {workspace.crm.base_url}")
        self.action_sync_now.setEnabled(True)
        self.sync_now()

    def sync_now(self) -> None:
        ws = self.workspace
        if ws is None:
            return
        self.action_sync_now.setEnabled(False)
        self.statusBar().showMessage("Synchronising mailbox…")
        self.workers.run(ws.sync_mail, self._synced, self._sync_failed, serial=True)

    def _synced(self, changes: Changes) -> None:
        assert self.workspace is not None
        self.action_sync_now.setEnabled(True)
        if self._store is None:
            self._store = self.workspace.store()  # GUI-thread connection; reads only
        current = self._current_folder_key()
        self.folder_model.set_folders(self._store.folders(), self.workspace.mailbox_name)
        self.folder_tree.expandAll()
        self._select_folder(current or "Inbox")
        self.message_model.refresh()
        from datetime import datetime

        self.status_sync.setText(f"Last sync {datetime.now().strftime('%H:%M')}")
        self.statusBar().showMessage("Mailbox synchronised", 3000)
        self.mail_synced.emit()

    def _sync_failed(self, exc: BaseException) -> None:
        self.action_sync_now.setEnabled(True)
        self.statusBar().showMessage(f"Sync failed: {exc}")
        self.status_connection.setText("Offline")

    # --- folders ------------------------------------------------------------------------
    def _current_folder_key(self) -> str | None:
        index = self.folder_tree.currentIndex()
        return index.data(FolderPathRole) if index.isValid() else None

    def _select_folder(self, path: str) -> None:
        index = self.folder_model.index_of_path(path)
        if index is not None:
            self.folder_tree.setCurrentIndex(index)

    def _folder_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._store is None or not current.isValid():
            return
        path = current.data(FolderPathRole)
        state = current.data(TrackStateRole)
        if path:
            self.message_model.set_source(StoreFolderSource(self._store, path))
        elif state:
            self.message_model.set_source(StoreStateSource(self._store, TrackState(state)))
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

    def _selection_changed(self, *_: Any) -> None:
        self._update_actions()
        ids = self.selected_row_ids()
        if len(ids) == 1:
            self._load(ids[0])
        elif not ids:
            self.reading_pane.clear()

    def _update_actions(self) -> None:
        has = bool(self.message_list.selectionModel().selectedRows())
        self.action_track.setEnabled(has and self.workspace is not None)
        self.action_untrack.setEnabled(has and self.workspace is not None)

    def _load(self, row_id: int) -> None:
        ws = self.workspace
        if ws is None:
            return
        self._load_serial += 1
        serial = self._load_serial
        self.reading_pane.show_loading()

        def shown(view: Any) -> None:
            if serial == self._load_serial:  # ignore a slow load the user already left
                self.reading_pane.show_view(view)
                self.message_shown.emit(row_id)

        def failed(exc: BaseException) -> None:
            if serial == self._load_serial:
                self.reading_pane.show_error(f"This message could not be opened: {exc}")

        self.workers.run(lambda: ws.load_message(row_id), shown, failed)

    def _context_menu(self, pos: Any) -> None:
        menu = QMenu(self)
        for action in (self.action_track, self.action_untrack, self.action_set_regarding):
            menu.addAction(action)
        menu.exec(self.message_list.viewport().mapToGlobal(pos))

    # --- CRM actions --------------------------------------------------------------------
    def track_selected(self) -> None:
        ws = self.workspace
        ids = self.selected_row_ids()
        if ws is None or not ids:
            return
        self.message_model.show_state(ids, TrackState.PENDING)
        self.statusBar().showMessage(f"Tracking {len(ids)} message(s) in the CRM…")

        def op() -> Changes:
            ws.mark_pending(ids)
            return ws.track(ids)

        self.workers.run(op, self._tracking_finished, self._tracking_failed, serial=True)

    def untrack_selected(self) -> None:
        ws = self.workspace
        ids = self.selected_row_ids()
        if ws is None or not ids:
            return
        answer = QMessageBox.question(
            self, "Untrack",
            f"Stop tracking {len(ids)} message(s)? Their copies in the CRM will be deleted.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.statusBar().showMessage(f"Untracking {len(ids)} message(s)…")
        self.workers.run(lambda: ws.untrack(ids), self._tracking_finished,
                         self._tracking_failed, serial=True)

    def _tracking_finished(self, changes: Changes) -> None:
        self.message_model.refresh()
        if changes.errors:
            self.statusBar().showMessage("; ".join(changes.errors))
        else:
            self.statusBar().showMessage("Done", 3000)
        current = self.selected_row_ids()
        if len(current) == 1 and current[0] in changes.row_ids:
            self._load(current[0])
        self.tracking_done.emit(changes)

    def _tracking_failed(self, exc: BaseException) -> None:
        self.message_model.refresh()
        self.statusBar().showMessage(f"Tracking failed: {exc}")
        self.tracking_done.emit(Changes(messages=True, errors=(str(exc),)))

    # --- shutdown -----------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.statusBar().showMessage("Finishing background work…")
        self.workers.wait(10_000)
        super().closeEvent(event)
