"""The message list over the reading pane (``MailView``): which messages are selected, which
one the pane shows, and both views' answers to a change notice.

The pane follows the selection: one selected message is loaded on a worker and shown, several
are counted, none leave the pane's hint. A selection belongs to messages, not rows (see
``desktop/messages.py``): after a sort, a refresh or a source swap it is still on its messages
and the pane stays on its message without loading it again.

On ``ChangeBus.changes_applied`` the reading pane reloads the message it shows when the notice
names it, and the message list re-reads its rows; the selection follows its messages.

Its parts live beside it: the list's widgets in ``desktop/message_list.py``, the search bar's
glue (results instead of the folder's rows; Ctrl+F and Ctrl+E focus the bar) in
``desktop/mail_search.py``, the grouping by conversation in ``desktop/mail_conversations.py``.
"""

from __future__ import annotations

import dataclasses
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
from PySide6.QtGui import QKeySequence, QShortcut

from core.domain.changes import Changes
from core.domain.model import FolderRole, TrackState
from desktop.conversation_model import ConversationListModel, GroupingMemory
from desktop.errors import describe
from desktop.host import WindowHost
from desktop.mail_conversations import ConversationGlue
from desktop.mail_search import ListSearch, index_backlog_in_background
from desktop.message_list import adopt_list_slot, list_panel, message_list
from desktop.messages import (
    UNTRACKABLE,
    Column,
    MessageListModel,
    StoreFolderSource,
    StoreStatesSource,
)
from desktop.ops import ChangeBus, QueryOp
from desktop.reader import ReadingPane
from desktop.search import SearchBar, SearchRunner
from desktop.workers import Workers

if TYPE_CHECKING:
    from PySide6.QtCore import QAbstractItemModel

    from core.store import Store
    from core.workspace.reading import MessageView


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
        self.list = message_list(self.flat_model)
        self.pane = ReadingPane(workers=workers)
        self._scope: tuple[str | None, tuple[TrackState, ...] | None] = (None, None)
        self.search_bar = SearchBar()
        self.panel = list_panel(self.search_bar, self.list)
        self.list_search = ListSearch(self, host, workers)
        self.conversation_glue = ConversationGlue(self, host, workers)
        self.list.doubleClicked.connect(self._double_clicked)
        self.search_bar.changed.connect(self.list_search.changed)
        self.search_bar.leave.connect(lambda: self.list.setFocus(Qt.FocusReason.OtherFocusReason))
        self.list.horizontalHeader().sortIndicatorChanged.connect(self.list_search.order_changed)
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
    def _search(self) -> SearchRunner:
        """The search runner (tests and the benchmark wait for it)."""
        return self.list_search.runner

    @property
    def grouping(self) -> GroupingMemory:
        """Per folder: grouped by conversation or not (the window sets where it is kept)."""
        return self.conversation_glue.memory

    @property
    def scope(self) -> tuple[str | None, tuple[TrackState, ...] | None]:
        """The folder listed, or the states of the CRM view listed."""
        return self._scope

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
        self.list_search.leave(None)
        self._store = None
        self.conversation_glue.drop()
        self.use_model(self.flat_model, select=False)
        self.conversation_glue.clear()
        self.flat_model.set_source(None)

    # --- placement ------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """The window put the bare list into its layout (instead of ``panel``): put the panel,
        search bar over the list, in its place once the window's layout is built. Grouped by
        conversation, the arrow keys and a click on a conversation's arrow fold it."""
        if self.model is self.conversations and self.conversation_glue.gesture(watched, event):
            return True
        if (
            watched is self.list
            and event.type() == QEvent.Type.ParentChange
            and self.list.parentWidget() is not self.panel
        ):
            QTimer.singleShot(0, self._adopt_list_slot)
        return super().eventFilter(watched, event)

    def _adopt_list_slot(self) -> None:
        adopt_list_slot(self.list, self.panel)

    def _double_clicked(self, index: QModelIndex) -> None:
        if self.model is self.conversations and self.conversations.is_expandable(index.row()):
            self.conversations.set_expanded(
                index.row(), not self.conversations.is_expanded(index.row())
            )
            return
        row_id = self.model.ids_at([index.row()])[0] if index.isValid() else None
        store = self.read_store()
        row = store.message(row_id) if store is not None and row_id is not None else None
        if row is None or row_id is None:
            return
        drafts = (
            {f.path for f in store.folders() if f.role == FolderRole.DRAFTS} if store else set()
        )
        self.message_opened.emit(row_id, row.header.ref.folder in drafts)

    def read_store(self) -> Store | None:
        """The GUI thread's read connection (list pages), opened on first use."""
        ws = self._host.workspace
        if ws is None:
            return None
        if self._store is None:
            self._store = ws.store()
            index_backlog_in_background(self._host, self._workers)
        return self._store

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
                self.conversation_glue.refresh(changes.row_ids)  # read, flagged, tracked
            else:
                self.conversation_glue.regroup()  # grouped: the same, once the new grouping is read
            if self.search_bar.active():
                self.list_search.changed()  # results may have come or gone (a filter's state)

    # --- sources --------------------------------------------------------------------------------
    def show_folder(self, path: str, count_hint: int | None = None) -> None:
        store = self.read_store()
        if store is not None:
            self._scope = (path, None)
            self._show_source(StoreFolderSource(store, path, count_hint))

    def show_states(self, states: tuple[TrackState, ...]) -> None:
        store = self.read_store()
        if store is not None:
            self._scope = (None, states)
            self._show_source(StoreStatesSource(store, states))

    def _show_source(self, source: StoreFolderSource | StoreStatesSource) -> None:
        """Another folder or view: the search is left (as Outlook does)."""
        self.list_search.leave(source)
        self.conversation_glue.drop()  # a grouping of the folder left is not shown
        self.use_model(self.flat_model, select=False)
        self.conversation_glue.clear()
        self.flat_model.set_source(source)
        self.clear_pane()
        self.select_first()
        self.selection_changed.emit()
        self.conversation_glue.folder_shown(self._scope[0])

    def select_first(self) -> None:
        """The first row selected and current (none when the list is empty)."""
        if self.model.rowCount():
            self.list.selectionModel().setCurrentIndex(
                self.model.index(0, Column.SUBJECT),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )

    # --- search ---------------------------------------------------------------------------------
    def searching(self) -> bool:
        """Whether the list shows search results."""
        return self.list_search.searching()

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
                self.conversation_glue.show_banner()
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
        return self.conversation_glue.grouped

    def set_grouped(self, on: bool) -> None:
        """Group the folder shown by conversation, or list it flat (see ``ConversationGlue``)."""
        self.conversation_glue.set_grouped(on)

    def conversation_banner_text(self) -> str | None:
        """The conversation banner's words for the selected conversation row, if any."""
        return self.conversation_glue.banner_text()

    def use_model(
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
            self.select_first()
        self.selection_changed.emit()
