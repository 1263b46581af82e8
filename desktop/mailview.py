"""The message list over the reading pane (``MailView``): which messages are selected, which
one the pane shows, and both views' answers to a change notice.

The pane follows the selection: one selected message is loaded on a worker and shown, several
are counted, none leave the pane's hint. A selection belongs to messages, not rows (see
``desktop/messages.py``): after a sort, a refresh or a source swap it is still on its messages
and the pane stays on its message without loading it again.

On ``ChangeBus.changes_applied`` the reading pane reloads the message it shows when the notice
names it, and the message list re-reads its rows; the selection follows its messages.

The search bar (desktop/search.py) sits over the list in ``panel``: its results replace the
folder's rows as a narrower source (the selection stays on messages still listed), and
clearing it brings the folder back the same way. Ctrl+F and Ctrl+E focus it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLayout,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.domain.changes import Changes
from core.domain.model import FolderRole, TrackState
from core.store.search import index_backlog
from desktop.errors import describe
from desktop.host import WindowHost
from desktop.messages import (
    SORT_KEYS,
    UNTRACKABLE,
    Column,
    MessageListModel,
    RowSource,
    StoreFolderSource,
    StoreStatesSource,
)
from desktop.ops import ChangeBus, QueryOp
from desktop.reader import ReadingPane
from desktop.search import SearchBar, SearchRequest, SearchRunner, SearchSource, results_text
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.store import Store
    from core.workspace.reading import MessageView

log = logging.getLogger(__name__)

COLUMN_WIDTHS = (
    (Column.STATE, 28),
    (Column.ATTACHMENT, 24),
    (Column.FROM, 170),
    (Column.RECEIVED, 136),
    (Column.SIZE, 64),
    (Column.REGARDING, 150),
)


def _message_list(model: MessageListModel) -> QTableView:
    view = QTableView()
    view.setObjectName("messageList")
    view.setAccessibleName("Messages")
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setSortingEnabled(True)
    view.sortByColumn(Column.RECEIVED, Qt.SortOrder.DescendingOrder)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(22)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    header.setSectionResizeMode(Column.SUBJECT, QHeaderView.ResizeMode.Stretch)
    for col, width in COLUMN_WIDTHS:
        view.setColumnWidth(col, width)
    return view


def _panel(bar: SearchBar, view: QTableView) -> QWidget:
    """The search bar over the message list."""
    panel = QWidget()
    panel.setObjectName("messagePanel")
    column = QVBoxLayout(panel)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(0)
    column.addWidget(bar)
    column.addWidget(view, 1)
    return panel


class MailView(QObject):
    """``message_shown(row_id)`` when the pane shows a message; ``selection_changed`` when
    what the actions depend on changed (the selection, the list's layout, the message the
    pane shows)."""

    message_shown = Signal(int)
    #: A message double-clicked (or Enter on it): its row id and whether it is a draft.
    message_opened = Signal(int, bool)
    selection_changed = Signal()
    #: ``(request, complete)``: the list now shows that search's first page or whole list.
    results_shown = Signal(object, bool)

    def __init__(
        self, host: WindowHost, workers: Workers, bus: ChangeBus, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._host = host
        self._workers = workers
        self._store: Store | None = None  # the GUI thread's own read connection (list pages)
        self._load_serial = 0
        self._pane_row: int | None = None  # the message the reading pane shows or loads
        self._pane_note: str | None = None  # the text shown instead of a message
        self._all_selected = False  # every row was selected when the list's layout changed

        self.model = MessageListModel(self)
        self.list = _message_list(self.model)
        self.pane = ReadingPane(workers=workers)
        self._base: RowSource | None = None  # the folder or CRM view the search narrows
        self._results: SearchSource | None = None  # the search results shown, if any
        self._scope: tuple[str | None, tuple[TrackState, ...] | None] = (None, None)
        self.search_bar = SearchBar()
        self.panel = _panel(self.search_bar, self.list)
        self._search = SearchRunner(workers, self._worker_store, self)
        self._search.found.connect(self._show_results)
        self._search.failed.connect(lambda exc: self._host.say(f"Search failed. {describe(exc)}"))
        self.list.doubleClicked.connect(self._double_clicked)
        self.search_bar.changed.connect(self._search_changed)
        self.search_bar.leave.connect(lambda: self.list.setFocus(Qt.FocusReason.OtherFocusReason))
        self.list.horizontalHeader().sortIndicatorChanged.connect(self._order_changed)
        self.shortcuts = [QShortcut(QKeySequence(k), self.panel) for k in ("Ctrl+F", "Ctrl+E")]
        for shortcut in self.shortcuts:
            shortcut.activated.connect(self.search_bar.focus)
        self.list.installEventFilter(self)

        self.list.selectionModel().selectionChanged.connect(self._selection_changed)
        # After the selection model moved the selection with its messages (it was connected
        # first): the reading pane and the actions follow.
        self.model.layoutAboutToBeChanged.connect(self._layout_about_to_change)
        self.model.layoutChanged.connect(self._layout_changed)
        # The pane decides before the list re-reads: a reload it starts is superseded (its
        # result dropped) when the list's refresh moves the pane to another message.
        bus.changes_applied.connect(self._pane_follows_changes)
        bus.changes_applied.connect(self._list_follows_changes)

    # --- workspace ------------------------------------------------------------------------------
    def detach(self) -> None:
        """The workspace is going: no source, no read connection, no search."""
        self._search.request(None)
        self.search_bar.clear(emit=False)
        self._base = self._results = None
        self._store = None
        self.model.set_source(None)

    def _worker_store(self) -> Store:
        """The calling worker thread's connection (searches run there)."""
        ws = self._host.workspace
        if ws is None:
            raise RuntimeError("no workspace")
        return ws.store()

    # --- placement ------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """The window put the bare list into its layout (instead of ``panel``): put the panel,
        search bar over the list, in its place once the window's layout is built."""
        if (
            watched is self.list
            and event.type() == QEvent.Type.ParentChange
            and self.list.parentWidget() is not self.panel
        ):
            QTimer.singleShot(0, self._adopt_list_slot)
        return super().eventFilter(watched, event)

    def _adopt_list_slot(self) -> None:
        holder = self.list.parentWidget()
        if holder is None or holder is self.panel:
            return
        if isinstance(holder, QSplitter):
            sizes = holder.sizes()
            holder.replaceWidget(holder.indexOf(self.list), self.panel)
            holder.setSizes(sizes)
        elif (layout := holder.layout()) is not None:
            layout.replaceWidget(self.list, self.panel)
        else:
            return
        panel_layout = self.panel.layout()
        assert isinstance(panel_layout, QLayout)
        panel_layout.addWidget(self.list)
        self.panel.show()
        self.list.show()

    def _double_clicked(self, index: QModelIndex) -> None:
        row_id = self.model.ids_at([index.row()])[0] if index.isValid() else None
        store = self._read_store()
        row = store.message(row_id) if store is not None and row_id is not None else None
        if row is None or row_id is None:
            return
        drafts = (
            {f.path for f in store.folders() if f.role == FolderRole.DRAFTS} if store else set()
        )
        self.message_opened.emit(row_id, row.header.ref.folder in drafts)

    def _read_store(self) -> Store | None:
        ws = self._host.workspace
        if ws is None:
            return None
        if self._store is None:
            self._store = ws.store()
            self._index_backlog()
        return self._store

    def _index_backlog(self) -> None:
        """Bodies cached before the search index existed go into it in the background, one
        short write at a time behind the other writers (the first search may miss them)."""
        ws = self._host.workspace
        if ws is None:
            return

        def more(indexed: int) -> None:
            if indexed and self._host.workspace is ws:
                self._index_backlog()

        def failed(exc: BaseException) -> None:
            log.warning("indexing cached bodies for search stopped: %r", exc)

        self._workers.run(lambda: index_backlog(ws.store()), more, failed, serial=True)

    # --- change notices -------------------------------------------------------------------------
    def _pane_follows_changes(self, changes: Changes) -> None:
        """Show the new state of the message on screen when the notice names it (or names no
        message in particular)."""
        if not changes.messages or self._host.workspace is None or self._pane_row is None:
            return
        if changes.flags_only:  # read or flagged: nothing the pane shows changed
            return
        if not changes.row_ids or self._pane_row in changes.row_ids:
            self._load(self._pane_row)

    def _list_follows_changes(self, changes: Changes) -> None:
        if changes.messages and self._host.workspace is not None:
            self.model.refresh()  # a layout change: the selection and the pane follow
            if self.search_bar.active():
                self._search_changed()  # results may have come or gone (a filter's state)

    # --- sources --------------------------------------------------------------------------------
    def show_folder(self, path: str, count_hint: int | None = None) -> None:
        store = self._read_store()
        if store is not None:
            self._scope = (path, None)
            self._show_source(StoreFolderSource(store, path, count_hint))

    def show_states(self, states: tuple[TrackState, ...]) -> None:
        store = self._read_store()
        if store is not None:
            self._scope = (None, states)
            self._show_source(StoreStatesSource(store, states))

    def _show_source(self, source: StoreFolderSource | StoreStatesSource) -> None:
        """Another folder or view: the search is left (as Outlook does)."""
        self._search.request(None)
        self.search_bar.clear(emit=False)
        self._base, self._results = source, None
        self.model.set_source(source)
        self.clear_pane()
        if self.model.rowCount():
            self.list.selectionModel().setCurrentIndex(
                self.model.index(0, Column.SUBJECT),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
        self.selection_changed.emit()

    # --- search ---------------------------------------------------------------------------------
    def searching(self) -> bool:
        """Whether the list shows search results."""
        return self._results is not None

    def _search_request(self) -> SearchRequest:
        folder, states = self._scope
        if self.search_bar.all_folders():
            folder, states = None, None
        header = self.list.horizontalHeader()
        section = header.sortIndicatorSection()
        order_by = SORT_KEYS.get(Column(section), "date") if 0 <= section < len(Column) else "date"
        return SearchRequest(
            text=self.search_bar.text(),
            folder=folder,
            states=states,
            filters=self.search_bar.filters(),
            order_by=order_by,
            descending=header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder,
        )

    def _search_changed(self) -> None:
        """New words, scope or filters: search on a worker, or (none left) show the folder
        again with the selection on the same messages."""
        if self._host.workspace is None:
            return
        if self.search_bar.active():
            self._search.request(self._search_request())
            return
        self._search.request(None)
        self.search_bar.show_count(None)
        if self._results is not None:
            self._results = None
            self.model.replace_source(self._base)  # its layoutChanged: selection_changed

    def _order_changed(self, *_: object) -> None:
        if self.search_bar.active():  # the results were ordered by the search: ask again
            self._search_changed()

    def _show_results(self, request: SearchRequest, row_ids: list[int], complete: bool) -> None:
        """A search's first page (``complete`` False: the whole list follows) or its whole
        list. The same rows again are left as they are (no re-layout, no repaint: while typing
        a word, its first page often stays the same); the count waits for the whole list."""
        store = self._read_store()
        if store is None or not self.search_bar.active():
            return
        if self._results is None or self._results.row_ids != row_ids:
            self._results = SearchSource(store, request, row_ids)
            self.model.replace_source(self._results)  # its layoutChanged: selection_changed
        if complete:
            self.search_bar.show_count(len(row_ids))
            self._host.say(results_text(len(row_ids)))
        else:
            self.search_bar.show_searching()
        self.results_shown.emit(request, complete)

    # --- selection ------------------------------------------------------------------------------
    def selected_rows(self) -> list[int]:
        """The highlighted rows, ascending, from the selection's ranges (a Ctrl+A of 100,000
        rows is one range: no index per row is built)."""
        sm = self.list.selectionModel()
        selection = sm.selection()
        last = self.model.columnCount() - 1
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
        return self.model.row_ids(self.selected_rows())

    def select_rows(self, rows: list[int]) -> None:
        """Select these list rows (tests and keyboard helpers)."""
        sm = self.list.selectionModel()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        sm.clearSelection()
        for r in rows:
            sm.select(self.model.index(r, Column.SUBJECT), flags)
        if rows:
            sm.setCurrentIndex(
                self.model.index(rows[0], Column.SUBJECT),
                QItemSelectionModel.SelectionFlag.NoUpdate,
            )

    def untrack_usable(self, rows: list[int]) -> bool:
        """Untrack is for tracked (or pending) mail: some selected message must be in such a
        state; undecided within the cap of rows read (a huge selection), it is offered and
        the verb then picks the tracked ones."""
        return self.model.any_state_at(rows, UNTRACKABLE) is not False

    def _selection_changed(self, *_: object) -> None:
        self.selection_changed.emit()
        self._follow_selection(reload=True)

    def _layout_about_to_change(self, *_: object) -> None:
        self._all_selected = self._all_rows_selected()

    def _layout_changed(self, *_: object) -> None:
        """A sort, refresh or source swap: states may have changed, and a selected message
        may be gone (then the selection shrank without ``selectionChanged``).

        A select-all stays one: Qt keeps a selection of every cell of a big table (over 1,000
        cells) as its two corners, which a layout change with a new row count shifts or
        drops (a removed top message emptied it). Ctrl+A means the whole list, so mail that
        arrived meanwhile is selected too."""
        if self._all_selected and not self._all_rows_selected():
            self.list.selectAll()  # selectionChanged: actions and pane follow
        self._all_selected = False
        self.selection_changed.emit()
        self._follow_selection(reload=False)

    def _all_rows_selected(self) -> bool:
        """Whether every row is highlighted (one range when it comes from Ctrl+A)."""
        count = self.model.rowCount()
        selection = self.list.selectionModel().selection()
        if not count or selection.isEmpty():
            return False
        if selection.count() == 1:
            rng = selection.at(0)
            return (rng.top(), rng.bottom(), rng.left(), rng.right()) == (
                0,
                count - 1,
                0,
                self.model.columnCount() - 1,
            )
        return len(self.selected_rows()) == count

    # --- the reading pane -----------------------------------------------------------------------
    def _follow_selection(self, reload: bool) -> None:
        """Show the one selected message (loaded again only with ``reload`` when already
        shown), a count for several, or nothing."""
        rows = self.selected_rows()
        if len(rows) > 1:
            self.clear_pane(f"{len(rows)} messages selected.")
            return
        ids = self.model.row_ids(rows)
        if not ids:
            self.clear_pane()
        elif reload or ids[0] != self._pane_row:
            self._load(ids[0])

    def clear_pane(self, text: str = "") -> None:
        """No message in the pane (``text`` instead, or the pane's hint); a load under way is
        no longer wanted. Nothing is redone when the pane already shows that."""
        if self._pane_row is None and self._pane_note == text:
            return
        self._pane_row, self._pane_note = None, text
        self._load_serial += 1
        if text:
            self.pane.clear(text)
        else:
            self.pane.clear()

    def shown_row(self) -> int | None:
        """The message the reading pane has on screen (not one it is still loading)."""
        view = self.pane.view
        return view.row_id if view is not None and view.row_id == self._pane_row else None

    def shown_view(self) -> MessageView | None:
        """The message on screen when it is the one selected message (what Reply, Forward
        and View in CRM act on)."""
        rows = self.selected_rows()
        pane = self.shown_row()
        if len(rows) == 1 and pane is not None and self.model.row_ids(rows) == [pane]:
            return self.pane.view
        return None

    def _load(self, row_id: int) -> None:
        ws = self._host.workspace
        if ws is None:
            return
        self._load_serial += 1
        serial = self._load_serial
        self._pane_row, self._pane_note = row_id, None
        self.pane.show_loading()

        def shown(view: MessageView) -> None:
            if serial == self._load_serial:  # ignore a slow load the user already left
                self.pane.show_view(view, self.model.overlay_state(row_id))
                self.selection_changed.emit()
                self.message_shown.emit(row_id)

        def failed(exc: BaseException) -> None:
            if serial == self._load_serial:
                self.pane.show_error(f"This message could not be opened. {describe(exc)}")

        def op() -> MessageView:
            view = ws.load_message(row_id)
            if not view.unresolved:
                unresolved = ws.unresolved_for(row_id)
                view = dataclasses.replace(view, unresolved=tuple(unresolved))
            return view

        QueryOp(op, shown).failure(failed).run_in_background(self._workers)
