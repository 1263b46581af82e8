"""The message list: a lazy table model over one folder of the local store.

Rows are read from the store a page at a time, only when the view asks for them, so a folder of
100,000 messages opens at once: ``rowCount`` is one indexed COUNT and the view only requests the
rows it paints. Page reads are small indexed queries on the local SQLite file (no network, no
mailbox access). Column numbers never change: saved view state depends on them.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable
from functools import cache
from typing import Any, Protocol

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from core.model import TrackState
from desktop.icons import STATE_LABELS, named_icon, state_icon
from desktop.roles import MessageIdRole, RowIdRole, SortKeyRole, TrackReasonRole, TrackStateRole

PAGE_SIZE = 40  # ~2 screenfuls: opening a folder reads one small page (rows cost ~0.1 ms)
MAX_CACHED_PAGES = 120

_Index = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    STATE = 0
    ATTACHMENT = 1
    FROM = 2
    SUBJECT = 3
    RECEIVED = 4
    SIZE = 5
    REGARDING = 6


HEADERS = {
    Column.STATE: "",
    Column.ATTACHMENT: "",
    Column.FROM: "From",
    Column.SUBJECT: "Subject",
    Column.RECEIVED: "Received",
    Column.SIZE: "Size",
    Column.REGARDING: "Regarding",
}

#: The store's sort keys per column (``Store.message_rows(order_by=...)``).
SORT_KEYS = {
    Column.STATE: "track_state",
    Column.ATTACHMENT: "date",
    Column.FROM: "sender",
    Column.SUBJECT: "subject",
    Column.RECEIVED: "date",
    Column.SIZE: "size",
    Column.REGARDING: "regarding",
}

TRACKED_COLOUR = QColor("#eaf5ee")


@cache
def _bold() -> QFont:
    font = QFont()
    font.setBold(True)
    return font


@cache
def _tracked_brush() -> QBrush:
    return QBrush(TRACKED_COLOUR)


#: The roles painting asks for; answered from ``MessageListModel._paint``.
_PAINT_ROLES = frozenset({
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.FontRole,
    Qt.ItemDataRole.BackgroundRole,
})
#: Every role ``MessageListModel.data`` answers.
_ROLES = frozenset({
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.FontRole, Qt.ItemDataRole.BackgroundRole,
    Qt.ItemDataRole.AccessibleTextRole, RowIdRole, MessageIdRole, TrackStateRole,
    TrackReasonRole, SortKeyRole,
})


class RowSource(Protocol):
    """What the model reads from: a folder view of the store."""

    def count(self) -> int: ...

    def rows(self, offset: int, limit: int, order_by: str, descending: bool) -> list[Any]: ...


class StoreFolderSource:
    """A :class:`RowSource` over ``Store.message_rows`` for one folder."""

    def __init__(self, store: Any, folder: str, count_hint: int | None = None) -> None:
        self.store = store
        self.folder = folder
        self._hint = count_hint

    def count(self) -> int:
        """``count_hint`` (counted on a worker when the folder list was last read) answers
        the first call, so opening a folder costs one page read; later calls count."""
        if self._hint is not None:
            hint, self._hint = self._hint, None
            return hint
        return int(self.store.message_count(self.folder))

    def rows(self, offset: int, limit: int, order_by: str, descending: bool) -> list[Any]:
        return list(
            self.store.message_rows(
                self.folder, offset, limit, order_by=order_by, descending=descending
            )
        )


class StoreStatesSource:
    """A :class:`RowSource` over the messages in one or more tracked states (the CRM views:
    "Needs attention" shows flagged and failed messages), newest first per state."""

    def __init__(self, store: Any, states: tuple[TrackState, ...]) -> None:
        self.store = store
        self.states = states
        self._counts: list[int] = []

    def count(self) -> int:
        counts = self.store.track_state_counts()
        self._counts = [int(counts.get(s, 0)) for s in self.states]
        return sum(self._counts)

    def rows(self, offset: int, limit: int, order_by: str, descending: bool) -> list[Any]:
        if not self._counts:
            self.count()
        out: list[Any] = []
        start = 0
        for state, n in zip(self.states, self._counts, strict=True):
            lo, hi = max(offset, start), min(offset + limit, start + n)
            if lo < hi:
                out.extend(self.store.messages_in_state(state, lo - start, hi - lo))
            start += n
        return out


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


class MessageListModel(QAbstractTableModel):
    """Lazy, sortable list of ``MessageRow`` values (see ``core.store``)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._source: RowSource | None = None
        self._count = 0
        self._pages: OrderedDict[int, list[Any]] = OrderedDict()
        self._order_by = "date"
        self._descending = True
        self._overlay: dict[int, TrackState] = {}  # row id → state shown before the store knows
        self._painted: dict[int, dict[int, tuple[Any, ...]]] = {}  # row id → paint values
        self.colour_tracked = True

    # --- source -------------------------------------------------------------------------
    def set_source(self, source: RowSource | None) -> None:
        self.beginResetModel()
        self._source = source
        self._pages.clear()
        self._painted.clear()
        self._overlay.clear()
        self._count = source.count() if source else 0
        self.endResetModel()

    def refresh(self) -> None:
        """Re-read from the store after a change; keeps the selection when the row count did
        not change (only the painted rows are re-read)."""
        if self._source is None:
            return
        new_count = self._source.count()
        self._pages.clear()
        self._painted.clear()
        if new_count != self._count:
            self.beginResetModel()
            self._count = new_count
            self._overlay.clear()
            self.endResetModel()
        elif self._count:
            self._overlay.clear()
            self.dataChanged.emit(self.index(0, 0), self.index(self._count - 1, len(Column) - 1))

    def show_state(self, row_ids: Iterable[int], state: TrackState) -> None:
        """Show ``state`` for these rows at once (e.g. *pending* right after Track)."""
        ids = set(row_ids)
        for rid in ids:
            self._overlay[rid] = state
            self._painted.pop(rid, None)
        for page_no, rows in self._pages.items():
            for i, row in enumerate(rows):
                if row.id in ids:
                    idx = self.index(page_no * PAGE_SIZE + i, Column.STATE)
                    self.dataChanged.emit(idx, idx)

    # --- lazy rows ------------------------------------------------------------------------
    def row_at(self, row: int) -> Any | None:
        if self._source is None or not 0 <= row < self._count:
            return None
        page_no = row // PAGE_SIZE
        page = self._pages.get(page_no)
        if page is None:
            page = self._source.rows(
                page_no * PAGE_SIZE, PAGE_SIZE, self._order_by, self._descending
            )
            self._pages[page_no] = page
            while len(self._pages) > MAX_CACHED_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        offset = row - page_no * PAGE_SIZE
        return page[offset] if offset < len(page) else None

    def state_of(self, message: Any) -> TrackState:
        return self._overlay.get(message.id, message.track_state)

    def overlay_state(self, row_id: int) -> TrackState | None:
        """The state shown ahead of the store (e.g. *pending* right after Track), if any."""
        return self._overlay.get(row_id)

    def set_colour_tracked(self, on: bool) -> None:
        """The "colour codes" privacy option: tint rows of tracked mail."""
        if on != self.colour_tracked:
            self.colour_tracked = on
            self._painted.clear()
            if self._count:
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(self._count - 1, len(Column) - 1),
                                      [Qt.ItemDataRole.BackgroundRole])

    # --- Qt model API ---------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        col = Column(section)
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[col]
        if role == Qt.ItemDataRole.DecorationRole:
            if col == Column.STATE:
                return state_icon(TrackState.TRACKED)
            if col == Column.ATTACHMENT:
                return named_icon("attachment")
        if role == Qt.ItemDataRole.ToolTipRole:
            return {Column.STATE: "Tracked in CRM", Column.ATTACHMENT: "Attachments"}.get(
                col, HEADERS[col]
            )
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # The view asks ~10 roles per painted cell; most are answered "nothing" before any
        # row is looked up (this is the hot path of opening and scrolling a folder).
        if role not in _ROLES or not index.isValid():
            return None
        message = self.row_at(index.row())
        if message is None:
            return "…" if role == Qt.ItemDataRole.DisplayRole else None
        if role in _PAINT_ROLES:  # what painting asks, from a per-row tuple built once
            painted = self._painted.get(message.id)
            if painted is None:
                painted = self._paint(message)
            return painted[role][index.column()]
        col = Column(index.column())
        header = message.header
        state = self.state_of(message)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == Column.STATE:
                reason = message.reason.text if message.reason else ""
                return f"{STATE_LABELS[state]}\n{reason}".strip()
            if col == Column.FROM and header.sender:
                return header.sender.display()
            if col == Column.SUBJECT:
                return header.subject
            return None
        if role == Qt.ItemDataRole.AccessibleTextRole and col == Column.STATE:
            return STATE_LABELS[state]
        if role == RowIdRole:
            return message.id
        if role == MessageIdRole:
            return header.message_id
        if role == TrackStateRole:
            return state
        if role == TrackReasonRole:
            return message.reason.text if message.reason else ""
        if role == SortKeyRole:
            return self._display(col, message)
        return None

    def _paint(self, message: Any) -> dict[int, tuple[Any, ...]]:
        """Display, decoration, font and background of every column of one row."""
        if len(self._painted) > PAGE_SIZE * MAX_CACHED_PAGES:
            self._painted.clear()
        header = message.header
        state = self.state_of(message)
        font = None if header.is_read else _bold()
        brush = _tracked_brush() if self.colour_tracked and state in (
            TrackState.TRACKED, TrackState.TRACKED_BY_OTHER) else None
        icons: list[Any] = [None] * len(Column)
        icons[Column.STATE] = state_icon(state)
        if header.has_attachments:
            icons[Column.ATTACHMENT] = named_icon("attachment")
        painted = {
            Qt.ItemDataRole.DisplayRole: tuple(self._display(c, message) for c in Column),
            Qt.ItemDataRole.DecorationRole: tuple(icons),
            Qt.ItemDataRole.FontRole: (font,) * len(Column),
            Qt.ItemDataRole.BackgroundRole: (brush,) * len(Column),
        }
        self._painted[message.id] = painted
        return painted

    @staticmethod
    def _display(col: Column, message: Any) -> str | None:
        header = message.header
        if col == Column.FROM:
            return header.sender.name or header.sender.email if header.sender else ""
        if col == Column.SUBJECT:
            return header.subject or "(no subject)"
        if col == Column.RECEIVED:
            return header.date.strftime("%Y-%m-%d %H:%M") if header.date else ""
        if col == Column.SIZE:
            return human_size(header.size)
        if col == Column.REGARDING:
            return message.regarding.name if message.regarding else ""
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(Column):
            return
        self.layoutAboutToBeChanged.emit()
        self._order_by = SORT_KEYS[Column(column)]
        self._descending = order == Qt.SortOrder.DescendingOrder
        self._pages.clear()
        self._painted.clear()
        self.layoutChanged.emit()

    def row_ids(self, rows: Iterable[int]) -> list[int]:
        out = []
        for r in rows:
            message = self.row_at(r)
            if message is not None:
                out.append(message.id)
        return out
