"""The message list grouped by conversation ("Group by Conversation", issue 17).

``ConversationListModel`` is a flattened tree in the same ``QTableView`` as the flat list (the
main window's header, layout memory, context menu, shortcuts and drag are bound to that one
view): one row per conversation, and below an expanded conversation one row per message,
indented, as Thunderbird's thread pane draws its tree. The grouping itself is computed on a
worker (``core.store.conversations.folder_conversations``, ~1 s per 100,000 messages); the
model only holds its result, reads a child row's message by id when it is painted, and keeps
the selection on its conversations and messages when a new grouping comes in.

It answers the flat model's questions (``row_ids``, ``ids_at``, ``row_at``, ``states_of``,
``show_state`` …) so the verbs act on a selection of conversation rows (all their messages)
and message rows alike. ``GroupingMemory`` remembers per folder whether it is grouped.
"""

from __future__ import annotations

import gc
import json
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from itertools import repeat
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSettings,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QFont, QIcon

from core.domain.conversations import (
    Conversation,
    Coverage,
    ThreadFacts,
    banner_text,
    summarise,
)
from core.domain.model import TrackState
from desktop.icons import STATE_LABELS, named_icon, state_icon
from desktop.messages import (
    ROWS_MIME,
    TRACKED_COLOUR,
    Column,
    MessageListModel,
    RowSource,
    human_size,
)
from desktop.roles import MessageIdRole, RowIdRole, TrackStateRole

if TYPE_CHECKING:
    from core.store import MessageRow

_Index = QModelIndex | QPersistentModelIndex
#: Messages read by id and kept for painting child rows.
MAX_CACHED_MESSAGES = 4000
#: Conversation rows: the roles ``data`` answers.
COVERAGE_LABELS = {
    Coverage.TRACKED: "Every message tracked in CRM",
    Coverage.PARTLY: "Partly tracked in CRM",
    Coverage.NOT_TRACKED: "Not tracked in CRM",
}
#: The state a conversation row reports (``TrackStateRole``) and colours its banner with.
COVERAGE_STATES = {
    Coverage.TRACKED: TrackState.TRACKED,
    Coverage.PARTLY: TrackState.UNDECIDED,
    Coverage.NOT_TRACKED: TrackState.NOT_TRACKED,
}
#: Where a click toggles a conversation (the arrow at the start of its Subject cell).
ARROW_WIDTH = 18
CONVERSATION_KEY_GROUP = "conversations"

#: A visible row: (conversation index, message index within it, or -1 for the conversation).
_Row = tuple[int, int]


@cache
def _bold() -> QFont:
    font = QFont()
    font.setBold(True)
    return font


@cache
def coverage_icon(coverage: Coverage) -> QIcon:
    if coverage == Coverage.PARTLY:
        return named_icon("partly_tracked")
    return state_icon(COVERAGE_STATES[coverage])


def _date(ts: float | None) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts is not None else ""


@dataclass(frozen=True, slots=True)
class Grouping:
    """Conversations ready for the model: ordered, keyed and indexed by message. Prepared
    on the worker (:func:`prepare`), so that showing 100,000 messages' conversations costs
    the GUI thread only the list of visible rows."""

    conversations: list[Conversation]
    keys: list[int]  # each conversation's key (``Conversation.key``)
    where: dict[int, tuple[int, int]]  # message row id → (conversation, message index)
    by_key: dict[int, int]  # conversation key → conversation index
    order: tuple[int, bool]  # (column, descending)


def prepare(conversations: Sequence[Conversation], order: tuple[int, bool]) -> Grouping:
    """Order ``conversations`` by a column (newest message for the date columns, topic for
    Subject, tracked share for the state column) and index them."""
    column, descending = order
    if column == Column.SUBJECT:
        key: Callable[[Conversation], Any] = lambda c: c.subject.casefold()  # noqa: E731
    elif column == Column.STATE:
        key = lambda c: (c.tracked / c.count, c.newest or 0.0)  # noqa: E731
    else:  # newest message first, as Outlook orders conversations
        key = lambda c: (c.newest is not None, c.newest or 0.0)  # noqa: E731
    ordered = sorted(conversations, key=key, reverse=descending)
    keys = [c.key for c in ordered]
    where = {m.row_id: (ci, mi) for ci, c in enumerate(ordered) for mi, m in enumerate(c.messages)}
    return Grouping(ordered, keys, where, {k: ci for ci, k in enumerate(keys)}, order)


#: A replaced grouping's big parts (see :func:`release`).
Retired = tuple[list[Conversation], dict[int, tuple[int, int]]]
#: Conversations freed per step by :func:`release`.
RELEASE_STEP = 500


def release(retired: Retired) -> None:
    """Free a replaced grouping a piece at a time (on a worker): each piece holds the GIL
    for a moment only, where dropping it whole would hold it for tens of milliseconds."""
    conversations, where = retired
    where.clear()
    while conversations:
        del conversations[-RELEASE_STEP:]


_paused = 0
_pause_lock = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a grouping is built, and the grouping out of the
    collector's reach once built (``gc.freeze``, as ``desktop.app.tune_gc`` does at
    start-up): a full collection walks every tracked object holding the GIL, and the
    hundreds of thousands a grouping allocates made those walks freeze the GUI thread for
    100-270 ms at 100,000 messages. The grouping's objects hold no cycles: they are freed
    when released, frozen or not."""
    global _paused
    with _pause_lock:
        _paused += 1
        if _paused == 1:
            gc.disable()
    try:
        yield
    finally:
        with _pause_lock:
            _paused -= 1
            if _paused == 0:
                gc.freeze()
                gc.enable()


class ConversationListModel(QAbstractTableModel):
    """Conversations and, when expanded, their messages; see the module docstring.
    ``sort_requested`` when the user chose another order (see :meth:`sort`)."""

    sort_requested = Signal()

    def __init__(self, flat: MessageListModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._flat = flat  # its source reads messages; its options (colours, columns) apply
        self._conversations: list[Conversation] = []
        self._keys: list[int] = []
        self._where: dict[int, tuple[int, int]] = {}  # message → (conversation, message index)
        self._by_key: dict[int, int] = {}  # conversation key → its index
        self._rows: list[_Row] = []
        self._expanded: set[int] = set()  # conversation keys
        self._overlay: dict[int, TrackState] = {}
        self._by_id: OrderedDict[int, MessageRow | None] = OrderedDict()
        self._order: tuple[int, bool] = (Column.RECEIVED, True)

    # --- what the flat model's users ask ----------------------------------------------------
    @property
    def source(self) -> RowSource | None:
        return self._flat.source

    @property
    def shows_folder(self) -> bool:
        return self._flat.shows_folder

    @property
    def shows_recipients(self) -> bool:
        return self._flat.shows_recipients

    @property
    def colour_tracked(self) -> bool:
        return self._flat.colour_tracked

    def set_colour_tracked(self, on: bool) -> None:
        self._flat.set_colour_tracked(on)
        self._repaint()

    def conversation_at(self, row: int) -> Conversation | None:
        """The conversation of a conversation row (None for a message row)."""
        if not 0 <= row < len(self._rows):
            return None
        ci, mi = self._rows[row]
        return self._conversations[ci] if mi < 0 else None

    def conversation_of(self, row: int) -> Conversation | None:
        """The conversation a row (either kind) belongs to."""
        return self._conversations[self._rows[row][0]] if 0 <= row < len(self._rows) else None

    def is_expandable(self, row: int) -> bool:
        conversation = self.conversation_at(row)
        return conversation is not None and conversation.count > 1

    def is_expanded(self, row: int) -> bool:
        return self.is_expandable(row) and self._keys[self._rows[row][0]] in self._expanded

    def row_ids(self, rows: Iterable[int]) -> list[int]:
        """The messages of these rows: all of a conversation row's, a message row's own; each
        once, in the list's order."""
        out: dict[int, None] = {}
        for row in rows:
            if 0 <= row < len(self._rows):
                ci, mi = self._rows[row]
                messages = self._conversations[ci].messages
                for message in messages if mi < 0 else (messages[mi],):
                    out[message.row_id] = None
        return list(out)

    def ids_at(self, rows: Sequence[int]) -> list[int | None]:
        """One message per row: a conversation row's newest, a message row's own."""
        out: list[int | None] = []
        for row in rows:
            if 0 <= row < len(self._rows):
                ci, mi = self._rows[row]
                out.append(self._conversations[ci].messages[max(mi, 0)].row_id)
            else:
                out.append(None)
        return out

    def row_at(self, row: int) -> MessageRow | None:
        """The message a row stands for (a conversation row: its newest), read by id."""
        ids = self.ids_at([row])
        return self._message(ids[0]) if ids[0] is not None else None

    def any_state_at(
        self, rows: Iterable[int], states: Collection[TrackState], reads: int = 0, most: int = 0
    ) -> bool | None:
        """Whether a message of these rows is in one of ``states`` (all in memory; stops at
        the first, so a select-all of a big folder costs little)."""
        for row in rows:
            if 0 <= row < len(self._rows):
                ci, mi = self._rows[row]
                messages = self._conversations[ci].messages
                for m in messages if mi < 0 else (messages[mi],):
                    if self._overlay.get(m.row_id, m.track_state) in states:
                        return True
        return False

    def states_of(self, row_ids: Collection[int], reads: int = 0) -> dict[int, TrackState]:
        """The shown state of those of these messages that are in the grouping."""
        return {rid: self._state(rid) for rid in row_ids if rid in self._where}

    def show_state(self, row_ids: Iterable[int], state: TrackState) -> None:
        """Show ``state`` for these messages at once (e.g. *pending* right after Track)."""
        for rid in row_ids:
            self._overlay[rid] = state
        self._repaint()

    def overlay_state(self, row_id: int) -> TrackState | None:
        return self._overlay.get(row_id)

    def refresh(self) -> None:
        """Nothing to re-read here: the view regroups on a worker (``set_conversations``)."""

    def _state(self, row_id: int) -> TrackState:
        overlaid = self._overlay.get(row_id)
        if overlaid is not None:
            return overlaid
        at = self._where.get(row_id)
        if at is None:
            return TrackState.NOT_TRACKED
        return self._conversations[at[0]].messages[at[1]].track_state

    def _message(self, rid: int) -> MessageRow | None:
        if rid not in self._by_id:
            source = self._flat.source
            self._by_id[rid] = source.message(rid) if source is not None else None
            while len(self._by_id) > MAX_CACHED_MESSAGES:
                self._by_id.popitem(last=False)
        return self._by_id[rid]

    # --- grouping, order, expansion ---------------------------------------------------------
    def set_conversations(self, grouping: Grouping) -> Retired:
        """A new grouping (first, or after a change; see :func:`prepare`): a layout change
        that keeps selected and current rows on their conversations and messages, and
        expanded ones expanded. Returns the grouping it replaced, for :func:`release` on a
        worker (freeing 100,000 messages' objects here would hold the GUI thread up)."""
        if grouping.order != self._order:  # the user sorted while it was being read
            grouping = prepare(grouping.conversations, self._order)
        retired: Retired = (self._conversations, self._where)
        if grouping.conversations is self._conversations or grouping.where is self._where:
            retired = ([], {})  # the same grouping again: nothing to let go of

        def swap() -> None:
            self._use(grouping)
            self._overlay.clear()
            self._by_id.clear()

        self._relayout(swap)
        return retired

    def update_messages(self, facts: Sequence[ThreadFacts]) -> bool:
        """New facts of messages already grouped (read, flagged, tracked: nothing that moves
        them between conversations); their conversations are summed up again in place.
        False when one is not in the grouping or would move in it: regroup instead."""
        touched: dict[int, dict[int, ThreadFacts]] = {}
        for fact in facts:
            at = self._where.get(fact.row_id)
            if at is None:
                return False
            touched.setdefault(at[0], {})[at[1]] = fact
        conversations = list(self._conversations)  # a new list: workers may hold the old
        for ci, changed in touched.items():
            old = conversations[ci].messages
            new = summarise([changed.get(mi, m) for mi, m in enumerate(old)])
            if [m.row_id for m in new.messages] != [m.row_id for m in old]:
                return False
            conversations[ci] = new
        self._conversations = conversations
        for fact in facts:
            self._overlay.pop(fact.row_id, None)
            self._by_id.pop(fact.row_id, None)
        self._repaint()
        return True

    def _use(self, grouping: Grouping) -> None:
        self._conversations, self._keys = grouping.conversations, grouping.keys
        self._where, self._by_key = grouping.where, grouping.by_key
        self._rows = self._visible_rows()

    def clear(self) -> Retired:
        """No conversations; returns the grouping dropped, for :func:`release`."""
        retired: Retired = (self._conversations, self._where)
        self.beginResetModel()
        self._use(prepare([], self._order))
        self._overlay.clear()
        self._by_id.clear()
        self.endResetModel()
        return retired

    @property
    def order(self) -> tuple[int, bool]:
        """The column the conversations are sorted by, and whether descending."""
        return self._order

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """A new order: ``sort_requested`` asks for it to be prepared on a worker (sorting
        100,000 messages' conversations takes the GUI thread too long); it comes back
        through :meth:`set_conversations`."""
        if self.set_order(column, order) and self._conversations:
            self.sort_requested.emit()

    def set_order(self, column: int, order: Qt.SortOrder) -> bool:
        """Note the order the next grouping is to have; True when it changed."""
        wanted = (column, order == Qt.SortOrder.DescendingOrder)
        changed, self._order = wanted != self._order, wanted
        return changed

    def snapshot(self) -> list[Conversation]:
        """The conversations shown (a list never changed in place: safe for a worker)."""
        return self._conversations

    def _visible_rows(self) -> list[_Row]:
        """Every conversation's row, and its messages' rows below the expanded ones (in
        conversation order, so a row is found by bisection)."""
        unfolded = sorted(
            ci
            for key in self._expanded
            if (ci := self._by_key.get(key)) is not None and self._conversations[ci].count > 1
        )
        rows: list[_Row] = []
        start = 0
        for ci in unfolded:
            rows.extend(zip(range(start, ci + 1), repeat(-1)))
            rows.extend(zip(repeat(ci), range(self._conversations[ci].count)))
            start = ci + 1
        rows.extend(zip(range(start, len(self._conversations)), repeat(-1)))
        return rows

    def set_expanded(self, row: int, expand: bool) -> None:
        """Show or hide a conversation row's messages below it."""
        if not self.is_expandable(row) or self.is_expanded(row) == expand:
            return
        ci = self._rows[row][0]
        count = self._conversations[ci].count
        if expand:
            self.beginInsertRows(QModelIndex(), row + 1, row + count)
            self._expanded.add(self._keys[ci])
            self._rows[row + 1 : row + 1] = [(ci, mi) for mi in range(count)]
            self.endInsertRows()
        else:
            self.beginRemoveRows(QModelIndex(), row + 1, row + count)
            self._expanded.discard(self._keys[ci])
            del self._rows[row + 1 : row + 1 + count]
            self.endRemoveRows()
        top = self.index(row, 0)
        self.dataChanged.emit(top, self.index(row, len(Column) - 1))

    def conversation_row(self, row: int) -> int | None:
        """The row of the conversation a row (either kind) belongs to."""
        if not 0 <= row < len(self._rows):
            return None
        return self._row_of((self._rows[row][0], -1))

    def row_of_message(self, row_id: int) -> int | None:
        """The visible row of a message (its own row, or its folded conversation's)."""
        at = self._where.get(row_id)
        return self._row_of(at) if at is not None else None

    def _row_of(self, at: _Row) -> int | None:
        """The row of (conversation, message) when shown, else of its conversation."""
        rows = self._rows
        row = bisect_left(rows, at)
        if row < len(rows) and rows[row] == at:
            return row
        row = bisect_left(rows, (at[0], -1))
        return row if row < len(rows) and rows[row] == (at[0], -1) else None

    def _identity(self, row: int) -> tuple[str, int] | None:
        if not 0 <= row < len(self._rows):
            return None
        ci, mi = self._rows[row]
        if mi < 0:
            return ("c", self._keys[ci])
        return ("m", self._conversations[ci].messages[mi].row_id)

    def _find(self, identity: tuple[str, int]) -> int | None:
        kind, value = identity
        if kind == "c":
            ci = self._by_key.get(value)
            return self._row_of((ci, -1)) if ci is not None else None
        return self.row_of_message(value)

    def _relayout(self, change: Callable[[], None]) -> None:
        """Apply ``change`` as a layout change that moves every persistent index (selection,
        current row) to its conversation or message's new row, or drops it."""
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        identities = [self._identity(index.row()) for index in old]
        try:
            change()
            new = []
            for index, identity in zip(old, identities, strict=True):
                row = self._find(identity) if identity is not None else None
                new.append(self.index(row, index.column()) if row is not None else QModelIndex())
            self.changePersistentIndexList(old, new)
        except BaseException:
            self.changePersistentIndexList(old, [QModelIndex()] * len(old))
            raise
        finally:
            self.layoutChanged.emit()

    def _repaint(self) -> None:
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(Column) - 1)
            )

    # --- Qt model API -----------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:  # noqa: N802
        return self._flat.headerData(section, orientation, role)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return [ROWS_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:  # noqa: N802
        ids = self.row_ids(sorted({i.row() for i in indexes}))
        data = QMimeData()
        data.setData(ROWS_MIME, QByteArray("\n".join(map(str, ids)).encode("ascii")))
        return data

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        ci, mi = self._rows[index.row()]
        conversation = self._conversations[ci]
        if mi < 0:
            return self._conversation_data(conversation, ci, Column(index.column()), role)
        return self._message_data(conversation.messages[mi].row_id, Column(index.column()), role)

    def _conversation_data(self, c: Conversation, ci: int, col: Column, role: int) -> Any:
        single = c.count == 1
        if role == Qt.ItemDataRole.DisplayRole:
            return self._conversation_text(c, ci, col)
        if role == Qt.ItemDataRole.DecorationRole and col == Column.STATE:
            shown = self._shown_state(c)
            if single or shown == TrackState.PENDING:
                return state_icon(shown)
            return coverage_icon(c.coverage)
        if role == Qt.ItemDataRole.FontRole:
            return _bold() if c.unread else None
        if role == Qt.ItemDataRole.BackgroundRole:
            tracked = c.coverage == Coverage.TRACKED
            return QBrush(TRACKED_COLOUR) if tracked and self.colour_tracked else None
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            if col == Column.STATE:
                return banner_text(c) if not single else STATE_LABELS[self._shown_state(c)]
            return c.subject if col == Column.SUBJECT else None
        if role == RowIdRole:
            return c.messages[0].row_id
        if role == MessageIdRole:
            return c.messages[0].message_id
        if role == TrackStateRole:
            return self._shown_state(c)
        return None

    def _shown_state(self, c: Conversation) -> TrackState:
        if c.count == 1:
            return self._state(c.messages[0].row_id)
        if any(self._overlay.get(m.row_id) == TrackState.PENDING for m in c.messages):
            return TrackState.PENDING
        return COVERAGE_STATES[c.coverage]

    def _conversation_text(self, c: Conversation, ci: int, col: Column) -> str:
        newest = c.messages[0]
        if col == Column.SUBJECT:
            subject = c.subject or "(no subject)"
            if c.count == 1:
                return f"    {subject}"
            arrow = "▾" if self._keys[ci] in self._expanded else "▸"
            unread = f", {c.unread:,} unread" if c.unread else ""
            return f"{arrow} {subject}  ({c.count:,} messages{unread})"
        if col == Column.RECEIVED:
            return _date(c.newest)
        if col == Column.REGARDING:
            names = [m.regarding for m in c.messages if m.regarding]
            return names[0] if names else ""
        if col == Column.FROM:
            row = self._message(newest.row_id)
            return _sender(row, self.shows_recipients) if row is not None else ""
        return ""

    def _message_data(self, rid: int, col: Column, role: int) -> Any:
        if role == RowIdRole:
            return rid
        row = self._message(rid)
        if row is None:
            return "…" if role == Qt.ItemDataRole.DisplayRole else None
        header = row.header
        state = self._overlay.get(rid, row.track_state)
        if role == Qt.ItemDataRole.DisplayRole:
            return _message_text(row, col, self.shows_recipients)
        if role == Qt.ItemDataRole.DecorationRole:
            if col == Column.STATE:
                return state_icon(state)
            if col == Column.ATTACHMENT and header.has_attachments:
                return named_icon("attachment")
            return None
        if role == Qt.ItemDataRole.FontRole:
            return None if header.is_read else _bold()
        if role == Qt.ItemDataRole.BackgroundRole:
            tracked = state in (TrackState.TRACKED, TrackState.TRACKED_BY_OTHER)
            return QBrush(TRACKED_COLOUR) if tracked and self.colour_tracked else None
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return STATE_LABELS[state] if col == Column.STATE else None
        if role == MessageIdRole:
            return header.message_id
        if role == TrackStateRole:
            return state
        return None


def _sender(row: MessageRow, recipients: bool) -> str:
    header = row.header
    if recipients:
        return ", ".join(a.name or a.email for a in header.to)
    return (header.sender.name or header.sender.email) if header.sender else ""


def _message_text(row: MessageRow, col: Column, recipients: bool) -> str:
    header = row.header
    if col == Column.FROM:
        return _sender(row, recipients)
    if col == Column.SUBJECT:
        return "        " + (header.subject or "(no subject)")
    if col == Column.RECEIVED:
        return header.date.strftime("%Y-%m-%d %H:%M") if header.date else ""
    if col == Column.SIZE:
        return human_size(header.size)
    if col == Column.REGARDING:
        return row.regarding.name if row.regarding else ""
    if col == Column.FOLDER:
        return header.ref.folder
    return ""


class GroupingMemory:
    """Whether each folder is grouped by conversation, in the settings the window's layout
    memory uses (in memory when there are none: a test never reads a user's choice)."""

    def __init__(self, settings: QSettings | None) -> None:
        self.settings = settings
        self._memory: dict[str, bool] = {}

    @staticmethod
    def _key(scope: str) -> str:
        return f"{CONVERSATION_KEY_GROUP}/{scope.encode('utf-8').hex()}"

    def grouped(self, scope: str) -> bool:
        if self.settings is None:
            return self._memory.get(scope, False)
        value = self.settings.value(self._key(scope))
        try:
            return bool(json.loads(value)) if isinstance(value, str) else False
        except ValueError:
            return False

    def remember(self, scope: str, grouped: bool) -> None:
        if self.settings is None:
            self._memory[scope] = grouped
        else:
            self.settings.setValue(self._key(scope), json.dumps(grouped))
