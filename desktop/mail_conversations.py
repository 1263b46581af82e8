"""The message list grouped by conversation (issue 17): the glue between ``MailView`` and the
grouped model (``desktop.conversation_model``).

Grouping is the user's choice per folder (remembered); a grouping is read and ordered on a
worker while the flat list stays on screen, and replaces the grouping shown unless it is stale
by then. A few messages changing state are summed up again instead of regrouping the folder.
Right / Left (and + / -) and a click on a conversation's arrow fold and unfold; one
conversation row selected puts the conversation's banner over the reading pane.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent

from core.domain.conversations import Conversation, ThreadFacts, banner_text
from desktop.conversation_model import (
    ARROW_WIDTH,
    COVERAGE_STATES,
    Grouping,
    GroupingMemory,
    collector_paused,
    coverage_icon,
    prepare,
    release,
)
from desktop.errors import describe
from desktop.layout_memory import app_settings
from desktop.messages import Column
from desktop.ops import QueryOp

if TYPE_CHECKING:
    from desktop.host import WindowHost
    from desktop.mailview import MailView
    from desktop.workers import Workers


def scope_key(folder: str) -> str:
    """The key a folder's choices are remembered by (the window's layout memory's too)."""
    return f"folder:{folder}"


class ConversationGlue(QObject):
    """Groups ``view``'s folder by conversation when the user chose so for it."""

    def __init__(self, view: MailView, host: WindowHost, workers: Workers) -> None:
        super().__init__(view)
        self._view, self._host, self._workers = view, host, workers
        self.model = view.conversations
        self.memory = GroupingMemory(app_settings())  # per folder: grouped or not
        self.grouped = False
        self._serial = 0  # bumped to drop a grouping under way
        self._busy = False  # a grouping is being read or ordered
        self.model.sort_requested.connect(self._resort)

    def drop(self) -> None:
        """A grouping under way is not shown."""
        self._serial += 1
        self._busy = False

    def clear(self) -> None:
        retired = self.model.clear()
        self._workers.run(lambda: release(retired))

    def folder_shown(self, folder: str | None) -> None:
        """Another folder or view is listed (flat): grouped when the user chose so for it."""
        grouped = folder is not None and self.memory.grouped(scope_key(folder))
        if grouped != self.grouped:
            self.grouped = grouped
            self._view.grouping_changed.emit(grouped)
        self.regroup()

    def search_left(self) -> None:
        """The search was cleared: the folder's grouping again, until regrouped."""
        if self.grouped and self.model.rowCount():
            self._view.use_model(self.model)  # this folder's, until regrouped
        self.regroup()

    def set_grouped(self, on: bool) -> None:
        """Group the folder shown by conversation, or list it flat; remembered per folder.
        The grouping is read on a worker: the flat list stays until it is ready."""
        view = self._view
        folder = view.scope[0]
        on = on and folder is not None
        if folder is not None:
            self.memory.remember(scope_key(folder), on)
        if on != self.grouped:
            self.grouped = on
            view.grouping_changed.emit(on)
        if on:
            self.regroup()
        else:
            self.drop()
            view.use_model(view.flat_model)
            self.clear()

    def regroup(self) -> None:
        """Group the folder on a worker; the result replaces the grouping shown (the
        selection stays on its conversations and messages) unless it is stale by then."""
        ws, folder = self._host.workspace, self._view.scope[0]
        if ws is None or folder is None or not self.grouped:
            return
        from core.store.conversations import folder_conversations

        header = self._view.list.horizontalHeader()
        self.model.set_order(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self._prepare(lambda: folder_conversations(ws.store(), folder))

    def refresh(self, row_ids: frozenset[int]) -> None:
        """A few messages changed state: their facts are read again on a worker and their
        conversations summed up again (regrouping 100,000 messages each time a message is
        opened and so marked read would keep a core busy); anything else regroups."""
        ws, folder = self._host.workspace, self._view.scope[0]
        if ws is None or folder is None or not self.grouped:
            return
        if self._busy:
            self.regroup()  # the grouping under way may have read the old state
            return
        from core.store.conversations import thread_facts_of

        serial, ids = self._serial, sorted(row_ids)

        def read() -> list[ThreadFacts]:
            return thread_facts_of(ws.store(), folder, ids)

        def apply(facts: list[ThreadFacts]) -> None:
            if serial != self._serial or self._host.workspace is not ws:
                return  # a grouping started since reads the new state itself
            if len(facts) == len(ids) and self.model.update_messages(facts):
                self.show_banner()
                self._view.conversations_shown.emit()
            else:
                self.regroup()

        QueryOp(read, apply).failure(lambda _exc: self.regroup()).run_in_background(self._workers)

    def _resort(self) -> None:
        """The user sorted the conversations: ordered on a worker (a grouping under way
        comes back in the new order anyway)."""
        if not self._busy:
            conversations = self.model.snapshot()
            self._prepare(lambda: conversations)

    def _prepare(self, read: Callable[[], list[Conversation]]) -> None:
        """Read (or take) conversations and order them on a worker, then show them."""
        ws, view = self._host.workspace, self._view
        if ws is None:
            return
        self._serial += 1
        serial, order = self._serial, self.model.order
        self._busy = True

        def grouped(grouping: Grouping) -> None:
            if serial != self._serial or self._host.workspace is not ws:
                return
            if grouping.order != self.model.order:  # sorted again meanwhile
                self._prepare(lambda: grouping.conversations)
                return
            self._busy = False
            retired = self.model.set_conversations(grouping)
            self._workers.run(lambda: release(retired))
            if not view.searching():
                view.use_model(self.model)
            self.show_banner()
            view.conversations_shown.emit()

        def failed(exc: BaseException) -> None:
            if serial == self._serial:
                self._busy = False
                self._host.say(f"The conversations could not be read. {describe(exc)}")

        def build() -> Grouping:
            with collector_paused():
                return prepare(read(), order)

        QueryOp(build, grouped).failure(failed).run_in_background(self._workers)

    def gesture(self, watched: QObject, event: QEvent) -> bool:
        """Right / Left (or + / -) unfold and fold the current conversation; a click on a
        conversation's arrow does too. True when the event was used."""
        view = self._view
        model, current = self.model, view.list.currentIndex()
        if watched is view.list and isinstance(event, QKeyEvent) and current.isValid():
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
                view.select_rows([parent])  # from a message to its conversation
                return True
            return key in (Qt.Key.Key_Right, Qt.Key.Key_Left)  # no column moves in a tree
        if watched is view.list.viewport() and isinstance(event, QMouseEvent):
            if event.type() != QEvent.Type.MouseButtonPress:
                return False
            index = view.list.indexAt(event.position().toPoint())
            if index.isValid() and index.column() == Column.SUBJECT:
                left = view.list.visualRect(index).left()
                if event.position().x() - left < ARROW_WIDTH and model.is_expandable(index.row()):
                    model.set_expanded(index.row(), not model.is_expanded(index.row()))
        return False

    def show_banner(self) -> None:
        """One conversation row selected (of several messages): the pane shows its newest
        message, and the banner says which of the conversation's mails are tracked."""
        view = self._view
        if view.model is not self.model or view.shown_row() is None:
            return
        rows = view.selected_rows()
        conversation = self.model.conversation_at(rows[0]) if len(rows) == 1 else None
        if conversation is not None and conversation.count > 1:
            view.pane.banner.show_conversation(
                banner_text(conversation),
                COVERAGE_STATES[conversation.coverage],
                coverage_icon(conversation.coverage),
            )

    def banner_text(self) -> str | None:
        """The conversation banner's words for the selected conversation row, if any."""
        view = self._view
        rows = view.selected_rows()
        if view.model is not self.model or len(rows) != 1:
            return None
        conversation = self.model.conversation_at(rows[0])
        return banner_text(conversation) if conversation is not None else None
