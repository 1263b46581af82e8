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
from collections.abc import Callable
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
from PySide6.QtGui import QKeyEvent, QKeySequence, QMouseEvent, QShortcut
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
from core.domain.conversations import Conversation, ThreadFacts, banner_text
from core.domain.model import FolderRole, TrackState
from core.store.search import index_backlog
from desktop.conversation_model import (
    ARROW_WIDTH,
    COVERAGE_STATES,
    ConversationListModel,
    Grouping,
    GroupingMemory,
    collector_paused,
    coverage_icon,
    prepare,
    release,
)
from desktop.errors import describe
from desktop.host import WindowHost
from desktop.layout_memory import app_settings
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
    from PySide6.QtCore import QAbstractItemModel

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


class _Results(SearchSource):
    """Search results; those of all folders (or of a CRM view) come from every folder, so
    the list shows the Folder column for them."""

    @property
    def shows_folder(self) -> bool:
        return self.request.folder is None


def _scope_key(folder: str) -> str:
    """The key a folder's choices are remembered by (the window's layout memory's too)."""
    return f"folder:{folder}"


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
    #: Whether the folder shown is grouped by conversation (the View menu's check mark).
    grouping_changed = Signal(bool)
    #: A grouping by conversation is on screen (first, or again after a change).
    conversations_shown = Signal()

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

        self.flat_model = MessageListModel(self)
        #: The list grouped by conversation; shown instead of ``flat_model`` when grouped.
        self.conversations = ConversationListModel(self.flat_model, self)
        self.grouping = GroupingMemory(app_settings())  # per folder: grouped or not
        self._grouped = False
        self._group_serial = 0  # bumped to drop a grouping under way
        self._grouping_busy = False  # a grouping is being read or ordered
        self.list = _message_list(self.flat_model)
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
        self.conversations.sort_requested.connect(self._resort)
        self.search_bar.leave.connect(lambda: self.list.setFocus(Qt.FocusReason.OtherFocusReason))
        self.list.horizontalHeader().sortIndicatorChanged.connect(self._order_changed)
        self.shortcuts = [QShortcut(QKeySequence(k), self.panel) for k in ("Ctrl+F", "Ctrl+E")]
        for shortcut in self.shortcuts:
            shortcut.activated.connect(self.search_bar.focus)
        self.list.installEventFilter(self)
        self.list.viewport().installEventFilter(self)

        self.list.selectionModel().selectionChanged.connect(self._selection_changed)
        # After the selection model moved the selection with its messages (it was connected
        # first): the reading pane and the actions follow. Only the model on screen counts.
        for model in (self.flat_model, self.conversations):
            model.layoutAboutToBeChanged.connect(self._shown_layout(model, about=True))
            model.layoutChanged.connect(self._shown_layout(model, about=False))
        # The pane decides before the list re-reads: a reload it starts is superseded (its
        # result dropped) when the list's refresh moves the pane to another message.
        bus.changes_applied.connect(self._pane_follows_changes)
        bus.changes_applied.connect(self._list_follows_changes)

    @property
    def model(self) -> MessageListModel | ConversationListModel:
        """The model on screen: the flat list, or the list grouped by conversation."""
        shown = self.list.model()
        return self.conversations if shown is self.conversations else self.flat_model

    def _shown_layout(self, model: QAbstractItemModel, about: bool) -> Callable[..., None]:
        """A layout slot that acts only while ``model`` is the one on screen."""

        def slot(*_: object) -> None:
            if self.list.model() is model:
                (self._layout_about_to_change if about else self._layout_changed)()

        return slot

    # --- workspace ------------------------------------------------------------------------------
    def detach(self) -> None:
        """The workspace is going: no source, no read connection, no search."""
        self._search.request(None)
        self.search_bar.clear(emit=False)
        self._base = self._results = None
        self._store = None
        self._group_serial += 1
        self._grouping_busy = False
        self._use_model(self.flat_model, select=False)
        self._clear_conversations()
        self.flat_model.set_source(None)

    def _worker_store(self) -> Store:
        """The calling worker thread's connection (searches run there)."""
        ws = self._host.workspace
        if ws is None:
            raise RuntimeError("no workspace")
        return ws.store()

    # --- placement ------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """The window put the bare list into its layout (instead of ``panel``): put the panel,
        search bar over the list, in its place once the window's layout is built. Grouped by
        conversation, the arrow keys and a click on a conversation's arrow fold it."""
        if self.model is self.conversations and self._conversation_gesture(watched, event):
            return True
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
        if self.model is self.conversations and self.conversations.is_expandable(index.row()):
            self.conversations.set_expanded(
                index.row(), not self.conversations.is_expanded(index.row())
            )
            return
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
            self.flat_model.refresh()  # a layout change: the selection and the pane follow
            if changes.row_ids and (changes.flags_only or not changes.folders):
                self._refresh_conversations(changes.row_ids)  # read, flagged, tracked
            else:
                self._regroup()  # grouped: the same, once the new grouping is read
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
        self._group_serial += 1  # a grouping of the folder left is not shown
        self._grouping_busy = False
        self._use_model(self.flat_model, select=False)
        self._clear_conversations()
        self.flat_model.set_source(source)
        self.clear_pane()
        self._select_first()
        self.selection_changed.emit()
        folder = self._scope[0]
        grouped = folder is not None and self.grouping.grouped(_scope_key(folder))
        if grouped != self._grouped:
            self._grouped = grouped
            self.grouping_changed.emit(grouped)
        self._regroup()

    def _select_first(self) -> None:
        if self.model.rowCount():
            self.list.selectionModel().setCurrentIndex(
                self.model.index(0, Column.SUBJECT),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )

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
            self.flat_model.replace_source(self._base)  # its layoutChanged: selection_changed
            self.list.setColumnHidden(Column.FOLDER, not self.flat_model.shows_folder)
            if self._grouped and self.conversations.rowCount():
                self._use_model(self.conversations)  # this folder's, until regrouped
            self._regroup()

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
        # Results are listed flat, even in a grouped folder.
        switched = self.list.model() is not self.flat_model
        self._use_model(self.flat_model, select=False)
        if self._results is None or self._results.row_ids != row_ids:
            self._results = _Results(store, request, row_ids)
            self.flat_model.replace_source(self._results)  # its layoutChanged: selection_changed
        if switched:
            self.clear_pane()
            self._select_first()
            self.selection_changed.emit()
        # All-folders results come from every folder: the Folder column says which.
        self.list.setColumnHidden(Column.FOLDER, not self.flat_model.shows_folder)
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
        ids = [rid for rid in self.model.ids_at(rows) if rid is not None]
        if not ids:
            self.clear_pane()
        elif reload or ids[0] != self._pane_row:
            self._load(ids[0])  # a conversation row: its newest message

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
        if len(rows) == 1 and pane is not None and self.model.ids_at(rows) == [pane]:
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
                self._conversation_banner()
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

    # --- grouped by conversation -----------------------------------------------------------------
    def can_group(self) -> bool:
        """Group by Conversation applies to a folder (not to the CRM views)."""
        return self._host.workspace is not None and self._scope[0] is not None

    def grouped(self) -> bool:
        """Whether the folder shown is grouped by conversation (the user's choice for it)."""
        return self._grouped

    def set_grouped(self, on: bool) -> None:
        """Group the folder shown by conversation, or list it flat; remembered per folder.
        The grouping is read on a worker: the flat list stays until it is ready."""
        folder = self._scope[0]
        on = on and folder is not None
        if folder is not None:
            self.grouping.remember(_scope_key(folder), on)
        if on != self._grouped:
            self._grouped = on
            self.grouping_changed.emit(on)
        if on:
            self._regroup()
        else:
            self._group_serial += 1
            self._grouping_busy = False
            self._use_model(self.flat_model)
            self._clear_conversations()

    def _clear_conversations(self) -> None:
        retired = self.conversations.clear()
        self._workers.run(lambda: release(retired))

    def _regroup(self) -> None:
        """Group the folder on a worker; the result replaces the grouping shown (the
        selection stays on its conversations and messages) unless it is stale by then."""
        ws, folder = self._host.workspace, self._scope[0]
        if ws is None or folder is None or not self._grouped:
            return
        from core.store.conversations import folder_conversations

        header = self.list.horizontalHeader()
        self.conversations.set_order(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self._prepare(lambda: folder_conversations(ws.store(), folder))

    def _refresh_conversations(self, row_ids: frozenset[int]) -> None:
        """A few messages changed state: their facts are read again on a worker and their
        conversations summed up again (regrouping 100,000 messages each time a message is
        opened and so marked read would keep a core busy); anything else regroups."""
        ws, folder = self._host.workspace, self._scope[0]
        if ws is None or folder is None or not self._grouped:
            return
        if self._grouping_busy:
            self._regroup()  # the grouping under way may have read the old state
            return
        from core.store.conversations import thread_facts_of

        serial, ids = self._group_serial, sorted(row_ids)

        def read() -> list[ThreadFacts]:
            return thread_facts_of(ws.store(), folder, ids)

        def apply(facts: list[ThreadFacts]) -> None:
            if serial != self._group_serial or self._host.workspace is not ws:
                return  # a grouping started since reads the new state itself
            if len(facts) == len(ids) and self.conversations.update_messages(facts):
                self._conversation_banner()
                self.conversations_shown.emit()
            else:
                self._regroup()

        QueryOp(read, apply).failure(lambda _exc: self._regroup()).run_in_background(self._workers)

    def _resort(self) -> None:
        """The user sorted the conversations: ordered on a worker (a grouping under way
        comes back in the new order anyway)."""
        if not self._grouping_busy:
            conversations = self.conversations.snapshot()
            self._prepare(lambda: conversations)

    def _prepare(self, read: Callable[[], list[Conversation]]) -> None:
        """Read (or take) conversations and order them on a worker, then show them."""
        ws = self._host.workspace
        if ws is None:
            return
        self._group_serial += 1
        serial, order = self._group_serial, self.conversations.order
        self._grouping_busy = True

        def grouped(grouping: Grouping) -> None:
            if serial != self._group_serial or self._host.workspace is not ws:
                return
            if grouping.order != self.conversations.order:  # sorted again meanwhile
                self._prepare(lambda: grouping.conversations)
                return
            self._grouping_busy = False
            retired = self.conversations.set_conversations(grouping)
            self._workers.run(lambda: release(retired))
            if not self.searching():
                self._use_model(self.conversations)
            self._conversation_banner()
            self.conversations_shown.emit()

        def failed(exc: BaseException) -> None:
            if serial == self._group_serial:
                self._grouping_busy = False
                self._host.say(f"The conversations could not be read. {describe(exc)}")

        def build() -> Grouping:
            with collector_paused():
                return prepare(read(), order)

        QueryOp(build, grouped).failure(failed).run_in_background(self._workers)

    def _use_model(
        self, model: MessageListModel | ConversationListModel, select: bool = True
    ) -> None:
        """Put ``model`` on screen in the same view (header, widths and order kept); the
        message shown stays selected when the other model lists it."""
        if self.list.model() is model:
            return
        keep = self._pane_row
        header = self.list.horizontalHeader()
        state = header.saveState()
        old = self.list.selectionModel()
        self.list.setModel(model)
        header.restoreState(state)
        old.deleteLater()
        self.list.selectionModel().selectionChanged.connect(self._selection_changed)
        if model is self.conversations:
            model.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        if not select:
            return
        row = self.conversations.row_of_message(keep) if keep is not None else None
        if model is self.conversations and row is not None:
            self.select_rows([row])
            self.list.scrollTo(model.index(row, Column.SUBJECT))
        else:
            self.clear_pane()
            self._select_first()
        self.selection_changed.emit()

    def _conversation_gesture(self, watched: QObject, event: QEvent) -> bool:
        """Right / Left (or + / -) unfold and fold the current conversation; a click on a
        conversation's arrow does too. True when the event was used."""
        model, current = self.conversations, self.list.currentIndex()
        if watched is self.list and isinstance(event, QKeyEvent) and current.isValid():
            if event.type() != QEvent.Type.KeyPress:
                return False
            key, row = event.key(), current.row()
            if key in (Qt.Key.Key_Right, Qt.Key.Key_Plus) and model.is_expandable(row):
                model.set_expanded(row, True)
                return True
            if key in (Qt.Key.Key_Left, Qt.Key.Key_Minus) and model.is_expanded(row):
                model.set_expanded(row, False)
                return True
            parent = model.conversation_row(row)
            if key == Qt.Key.Key_Left and parent is not None and parent != row:
                self.select_rows([parent])  # from a message to its conversation
                return True
            return key in (Qt.Key.Key_Right, Qt.Key.Key_Left)  # no column moves in a tree
        if watched is self.list.viewport() and isinstance(event, QMouseEvent):
            if event.type() != QEvent.Type.MouseButtonPress:
                return False
            index = self.list.indexAt(event.position().toPoint())
            if index.isValid() and index.column() == Column.SUBJECT:
                left = self.list.visualRect(index).left()
                if event.position().x() - left < ARROW_WIDTH and model.is_expandable(index.row()):
                    model.set_expanded(index.row(), not model.is_expanded(index.row()))
        return False

    def _conversation_banner(self) -> None:
        """One conversation row selected (of several messages): the pane shows its newest
        message, and the banner says which of the conversation's mails are tracked."""
        if self.model is not self.conversations or self.shown_row() is None:
            return
        rows = self.selected_rows()
        conversation = self.conversations.conversation_at(rows[0]) if len(rows) == 1 else None
        if conversation is not None and conversation.count > 1:
            self.pane.banner.show_conversation(
                banner_text(conversation),
                COVERAGE_STATES[conversation.coverage],
                coverage_icon(conversation.coverage),
            )

    def conversation_banner_text(self) -> str | None:
        """The conversation banner's words for the selected conversation row, if any."""
        rows = self.selected_rows()
        if self.model is not self.conversations or len(rows) != 1:
            return None
        conversation = self.conversations.conversation_at(rows[0])
        return banner_text(conversation) if conversation is not None else None
