"""The message list: a lazy table model over one folder of the local store.

Rows are read from the store a page at a time, only when the view asks for them, so a folder of
100,000 messages opens at once: ``rowCount`` is one indexed COUNT and the view only requests the
rows it paints. Page reads are small indexed queries on the local SQLite file (no network, no
mailbox access). Column numbers never change: saved view state depends on them.

A selection belongs to messages, not to row numbers: a sort, a refresh after a sync and a
narrower or wider source are layout changes that move every persistent index (the view's
selection and current index) to the new row of its message, found with an indexed count per
message (or one id scan for large selections) instead of reading the rows in between.
"""

from __future__ import annotations

import enum
from array import array
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Protocol

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QIcon
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from core.domain.model import UNTRACKABLE_STATES, FolderRole, TrackState
from desktop.icons import STATE_LABELS, named_icon, state_icon
from desktop.roles import MessageIdRole, RowIdRole, SortKeyRole, TrackReasonRole, TrackStateRole

if TYPE_CHECKING:
    from core.store import MessageRow, Store

PAGE_SIZE = 40  # ~2 screenfuls: opening a folder reads one small page (rows cost ~0.1 ms)
MAX_CACHED_PAGES = 32  # ~1,300 rows: ~3 MiB of rows and paint values (120 pages: ~10 MiB)
#: Placing more messages than this after a layout change reads the order's ids in one index
#: scan (~40 ms per 100,000 rows) instead of one indexed count per message (0-7 ms each).
LOCATE_BY_COUNT = 20
#: Finding the ids of more unread pages than this reads the order's ids in one scan too.
READ_PAGES_AT_MOST = 8
#: States that can be untracked (the Untrack action is offered for them).
UNTRACKABLE = UNTRACKABLE_STATES  # what Untrack applies to (one home: core.domain.model)
_UNKNOWN = -1  # a row whose message id this layout has not read yet


class _Missing:
    """A message not in memory (a read would find it, or find it gone)."""


_MISSING: Final = _Missing()
_LAYOUT_SIGNATURE = "QList<QPersistentModelIndex>,QAbstractItemModel::LayoutChangeHint"

_Index = QModelIndex | QPersistentModelIndex


#: Dragged message rows (their store row ids, one a line): the folder tree takes them.
ROWS_MIME = "application/x-trackbox-rows"


class Column(enum.IntEnum):
    STATE = 0
    ATTACHMENT = 1
    FROM = 2
    SUBJECT = 3
    RECEIVED = 4
    SIZE = 5
    REGARDING = 6
    #: The message's folder: shown in the CRM views (their mail comes from every folder).
    FOLDER = 7


HEADERS = {
    Column.STATE: "",
    Column.ATTACHMENT: "",
    Column.FROM: "From",
    Column.SUBJECT: "Subject",
    Column.RECEIVED: "Received",
    Column.SIZE: "Size",
    Column.REGARDING: "Regarding",
    Column.FOLDER: "Folder",
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
    Column.FOLDER: "date",  # no folder order in the store: the CRM views keep theirs
}

TRACKED_COLOUR = QColor("#eaf5ee")
_COLUMN_COUNT: Final = len(Column)
_HEADER_TEXTS: Final = tuple(HEADERS[c] for c in Column)
_HEADER_TIPS: Final[dict[int, str]] = {
    Column.STATE.value: "Tracked in CRM",
    Column.ATTACHMENT.value: "Attachments",
}


def _hinted(signal: Any) -> Any:
    """The overload of a layout signal that carries a hint: PySide picks overloads by
    signature, and ``emit([], hint)`` on the plain signal raises a TypeError."""
    return signal[_LAYOUT_SIGNATURE]


@cache
def _bold() -> QFont:
    font = QFont()
    font.setBold(True)
    return font


@cache
def _tracked_brush() -> QBrush:
    return QBrush(TRACKED_COLOUR)


#: The roles painting asks for; answered from ``MessageListModel._paint``.
_PAINT_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.DecorationRole,
        Qt.ItemDataRole.FontRole,
        Qt.ItemDataRole.BackgroundRole,
    }
)
#: Every cell's flags (``QAbstractTableModel``'s for a valid index, plus dragging).
_CELL_FLAGS: Final = (
    Qt.ItemFlag.ItemIsSelectable
    | Qt.ItemFlag.ItemIsEnabled
    | Qt.ItemFlag.ItemNeverHasChildren
    | Qt.ItemFlag.ItemIsDragEnabled
)
_NO_FLAGS: Final = Qt.ItemFlag.NoItemFlags
#: Every role ``MessageListModel.data`` answers.
_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.DecorationRole,
        Qt.ItemDataRole.ToolTipRole,
        Qt.ItemDataRole.FontRole,
        Qt.ItemDataRole.BackgroundRole,
        Qt.ItemDataRole.AccessibleTextRole,
        RowIdRole,
        MessageIdRole,
        TrackStateRole,
        TrackReasonRole,
        SortKeyRole,
    }
)


class RowSource(Protocol):
    """What the model reads from: a folder view of the store."""

    def count(self) -> int: ...

    def rows(
        self, offset: int, limit: int, order_by: str, descending: bool
    ) -> list[MessageRow]: ...

    def positions(
        self, row_ids: Collection[int], order_by: str, descending: bool
    ) -> dict[int, int]:
        """The row of each message in this order; messages no longer here are left out."""
        ...

    def ids(self, order_by: str, descending: bool) -> list[int]:
        """Every message's row id in this order (for placing many messages at once)."""
        ...

    def message(self, row_id: int) -> MessageRow | None:
        """One message by id, if still here (the state of a selected row scrolled away)."""
        ...


class StoreFolderSource:
    """A :class:`RowSource` over ``Store.message_rows`` for one folder."""

    def __init__(self, store: Store, folder: str, count_hint: int | None = None) -> None:
        self.store = store
        self.folder = folder
        self._hint = count_hint
        role = next((f.role for f in store.folders() if f.path == folder), None)
        #: Sent Items and Drafts list whom a mail went to (a To column instead of From).
        self.shows_recipients = role in (FolderRole.SENT, FolderRole.DRAFTS)

    def count(self) -> int:
        """``count_hint`` (counted on a worker when the folder list was last read) answers
        the first call, so opening a folder costs one page read; later calls count."""
        if self._hint is not None:
            hint, self._hint = self._hint, None
            return hint
        return int(self.store.message_count(self.folder))

    def rows(self, offset: int, limit: int, order_by: str, descending: bool) -> list[MessageRow]:
        return list(
            self.store.message_rows(
                self.folder, offset, limit, order_by=order_by, descending=descending
            )
        )

    def positions(
        self, row_ids: Collection[int], order_by: str, descending: bool
    ) -> dict[int, int]:
        """One indexed count per message (``Store.message_position``)."""
        out = {}
        for rid in row_ids:
            row = self.store.message_position(
                self.folder, rid, order_by=order_by, descending=descending
            )
            if row is not None:
                out[rid] = row
        return out

    def ids(self, order_by: str, descending: bool) -> list[int]:
        return list(self.store.message_ids(self.folder, order_by=order_by, descending=descending))

    def message(self, row_id: int) -> MessageRow | None:
        row = self.store.message(row_id)
        return row if row is not None and row.header.ref.folder == self.folder else None


class StoreStatesSource:
    """A :class:`RowSource` over the messages in one or more tracked states (the CRM views:
    "Needs attention" shows flagged and failed messages), newest first per state."""

    #: The CRM views hold mail of every folder: they show a Folder column.
    shows_folder = True

    def __init__(self, store: Store, states: tuple[TrackState, ...]) -> None:
        self.store = store
        self.states = states
        self._counts: list[int] = []

    def count(self) -> int:
        counts = self.store.tracking.state_counts()
        self._counts = [int(counts.get(s, 0)) for s in self.states]
        return sum(self._counts)

    def rows(self, offset: int, limit: int, order_by: str, descending: bool) -> list[MessageRow]:
        if not self._counts:
            self.count()
        out: list[MessageRow] = []
        start = 0
        for state, n in zip(self.states, self._counts, strict=True):
            lo, hi = max(offset, start), min(offset + limit, start + n)
            if lo < hi:
                out.extend(self.store.tracking.messages_in_state(state, lo - start, hi - lo))
            start += n
        return out

    def positions(
        self, row_ids: Collection[int], order_by: str, descending: bool
    ) -> dict[int, int]:
        """The row in the states' blocks (newest first within each; the order asked for is
        ignored, as in :meth:`rows`)."""
        if not self._counts:
            self.count()
        out = {}
        for rid in row_ids:
            start = 0
            for state, n in zip(self.states, self._counts, strict=True):
                row = self.store.message_position(None, rid, state=state)
                if row is not None:
                    if row < n:
                        out[rid] = start + row
                    break
                start += n
        return out

    def ids(self, order_by: str, descending: bool) -> list[int]:
        out: list[int] = []
        for state in self.states:
            out.extend(self.store.message_ids(None, state=state))
        return out

    def message(self, row_id: int) -> MessageRow | None:
        row = self.store.message(row_id)
        return row if row is not None and row.track_state in self.states else None


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


class MessageListModel(QAbstractTableModel):
    """Lazy, sortable list of ``MessageRow`` values (see ``core.store``)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source: RowSource | None = None
        self._count = 0
        self._pages: OrderedDict[int, list[MessageRow]] = OrderedDict()
        self._order_by = "date"
        self._descending = True
        self._overlay: dict[int, TrackState] = {}  # row id → state shown before the store knows
        self._painted: dict[int, dict[int, tuple[Any, ...]]] = {}  # row id → paint values
        # The message id of each row as this layout showed it (kept when pages are evicted:
        # 8 bytes a row), so a later layout change moves selected rows by their messages.
        self._page_ids: dict[int, array[int]] = {}
        self._placed: dict[int, int] = {}  # row → id, messages placed by the last layout change
        self._order_ids: list[int] | None = None  # every row's id, once a layout read them
        self._by_id: dict[int, MessageRow | None] = {}  # read by id in this layout (None: gone)
        self.colour_tracked = True
        #: The address column shows the recipients (Sent Items, Drafts) instead of the sender.
        self.shows_recipients = False
        #: The Folder column has content (the CRM views); the view hides it otherwise.
        self.shows_folder = False

    def _columns_for(self, source: RowSource | None) -> None:
        """Which columns the source's mail wants (To for From, the Folder column)."""
        self.shows_recipients = bool(getattr(source, "shows_recipients", False))
        self.shows_folder = bool(getattr(source, "shows_folder", False))

    # --- source -------------------------------------------------------------------------
    @property
    def source(self) -> RowSource | None:
        return self._source

    def set_source(self, source: RowSource | None, keep_selection: bool = False) -> None:
        """Show another folder or view (a reset: views drop their selection), or with
        ``keep_selection`` the same mail narrowed or widened (a search): see
        :meth:`replace_source`."""
        if keep_selection:
            self.replace_source(source)
            return
        self.beginResetModel()
        self._source = source
        self._columns_for(source)
        self._forget_layout()
        self._overlay.clear()
        self._count = source.count() if source else 0
        self.endResetModel()

    def replace_source(self, source: RowSource | None) -> None:
        """Swap the rows shown (e.g. a search narrowing the folder, or clearing it) without
        a reset: selected messages that are still listed stay selected at their new rows, the
        others are deselected."""

        def swap() -> None:
            self._source = source
            self._columns_for(source)
            self._count = source.count() if source else 0

        self._relayout(swap)
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(Column) - 1)

    def refresh(self) -> None:
        """Re-read from the store after a change (a sync, a tracking verb). Rows may have come,
        gone or moved (a state change re-sorts a list sorted by state): a layout change keeps
        the selection and the current index on their messages, and drops the selected
        messages that are gone."""
        if self._source is None:
            return
        source = self._source

        def reread() -> None:
            self._count = source.count()
            self._overlay.clear()

        self._relayout(reread)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort in the store (an indexed order per column); selected rows follow their
        messages. The same order again changes nothing (``QTableView.sortByColumn`` asks
        twice)."""
        if not 0 <= column < len(Column):
            return
        order_by, descending = SORT_KEYS[Column(column)], order == Qt.SortOrder.DescendingOrder
        if (order_by, descending) == (self._order_by, self._descending):
            return

        def reorder() -> None:
            self._order_by, self._descending = order_by, descending

        self._relayout(reorder)

    def _forget_layout(self) -> None:
        """Drop everything tied to row numbers (after the order or the rows changed)."""
        self._pages.clear()
        self._painted.clear()
        self._page_ids.clear()
        self._placed.clear()
        self._order_ids = None
        self._by_id.clear()

    def _relayout(self, change: Callable[[], None]) -> None:
        """Apply ``change`` (new order, new count or new source) as a layout change that moves
        every persistent index to its message's new row (invalid when the message is gone).

        Views and selection models turn their state into persistent indexes on
        ``layoutAboutToBeChanged`` (with the vertical-sort hint the selection model keeps one
        per selected row, and the horizontal header nothing), so this is what keeps the
        selection and the current index on their messages."""
        hint = QAbstractItemModel.LayoutChangeHint.VerticalSortHint
        _hinted(self.layoutAboutToBeChanged).emit([], hint)
        old = self.persistentIndexList()
        try:
            rows = sorted({index.row() for index in old})
            ids = dict(zip(rows, self.ids_at(rows), strict=True))
            change()
            self._forget_layout()
            where = self._locate({rid for rid in ids.values() if rid is not None})
            new = []
            for index in old:
                rid = ids.get(index.row())
                row = where.get(rid) if rid is not None else None
                new.append(self.index(row, index.column()) if row is not None else QModelIndex())
            self.changePersistentIndexList(old, new)
        except BaseException:
            # The store failed half-way: no index may point at a row that is not there.
            self._forget_layout()
            self.changePersistentIndexList(old, [QModelIndex()] * len(old))
            raise
        finally:
            _hinted(self.layoutChanged).emit([], hint)

    def _locate(self, row_ids: set[int]) -> dict[int, int]:
        """New row of each message still listed: an indexed count each, or for many one scan
        of the order's ids (kept, so the rows' ids are then known without reading them)."""
        source = self._source
        if source is None or not row_ids:
            return {}
        if len(row_ids) > LOCATE_BY_COUNT:
            order = source.ids(self._order_by, self._descending)
            self._order_ids = order
            found = {rid: row for row, rid in enumerate(order) if rid in row_ids}
        else:
            found = source.positions(row_ids, self._order_by, self._descending)
        found = {rid: row for rid, row in found.items() if 0 <= row < self._count}
        self._placed = {row: rid for rid, row in found.items()}
        return found

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
    def row_at(self, row: int) -> MessageRow | None:
        if self._source is None or not 0 <= row < self._count:
            return None
        page_no = row // PAGE_SIZE
        page = self._pages.get(page_no)
        if page is None:
            page = self._source.rows(
                page_no * PAGE_SIZE, PAGE_SIZE, self._order_by, self._descending
            )
            self._pages[page_no] = page
            self._page_ids[page_no] = array("q", [message.id for message in page])
            while len(self._pages) > MAX_CACHED_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        offset = row - page_no * PAGE_SIZE
        return page[offset] if offset < len(page) else None

    def _known_id(self, row: int) -> int | None:
        """The id this layout has for ``row`` without reading: what a page showed, where the
        last layout change placed a message, or the order's id list; ``_UNKNOWN`` if none,
        None for a row without a message."""
        if not 0 <= row < self._count:
            return None
        page_no, offset = divmod(row, PAGE_SIZE)
        page = self._page_ids.get(page_no)
        if page is not None:
            return page[offset] if offset < len(page) else None
        placed = self._placed.get(row)
        if placed is not None:
            return placed
        if self._order_ids is not None:
            return self._order_ids[row] if row < len(self._order_ids) else None
        return _UNKNOWN

    def ids_at(self, rows: Sequence[int]) -> list[int | None]:
        """The message id of each row (None: no message there), in this layout; reads at
        most a few pages, else the order's ids in one scan (a large range selected without
        being scrolled through, e.g. Ctrl+A)."""
        if self._source is None:
            return [None] * len(rows)
        unknown = {row // PAGE_SIZE for row in rows if self._known_id(row) == _UNKNOWN}
        if len(unknown) > READ_PAGES_AT_MOST:
            self._order_ids = self._source.ids(self._order_by, self._descending)
        else:
            for page_no in unknown:
                self.row_at(page_no * PAGE_SIZE)
        out: list[int | None] = []
        for row in rows:
            rid = self._known_id(row)
            out.append(None if rid == _UNKNOWN else rid)
        return out

    def any_state_at(
        self, rows: Iterable[int], states: Collection[TrackState], reads: int = 20, most: int = 5000
    ) -> bool | None:
        """Whether a message of these rows is shown in one of ``states`` (with the overlay).
        A row not in memory costs a read by id (~0.1 ms; a page deep in a big folder costs
        ~10 ms), at most ``reads`` of them, and at most ``most`` rows are looked at, so a
        huge selection never freezes the window: None when that did not decide it."""
        for seen, row in enumerate(rows):
            if seen >= most:
                return None
            in_memory = self._row_in_memory(row)
            if isinstance(in_memory, _Missing):
                reads -= 1
                if reads < 0:
                    return None
                message = self._read_row(row)
            else:
                message = in_memory
            if message is not None and self.state_of(message) in states:
                return True
        return False

    def _row_in_memory(self, row: int) -> MessageRow | None | _Missing:
        """The message at ``row`` from a cached page or an earlier read by id; ``_MISSING``
        when it would take a read."""
        page = self._pages.get(row // PAGE_SIZE)
        if page is not None:
            offset = row % PAGE_SIZE
            return page[offset] if offset < len(page) else None
        rid = self._known_id(row)
        if rid is None:
            return None
        return self._by_id.get(rid, _MISSING) if rid != _UNKNOWN else _MISSING

    def _read_row(self, row: int) -> MessageRow | None:
        """The message at ``row``: by id when this layout knows it (one indexed read), else
        its page."""
        rid = self._known_id(row)
        if rid == _UNKNOWN:
            return self.row_at(row)
        if rid is None or self._source is None:
            return None
        return self._message(rid)

    def _message(self, rid: int) -> MessageRow | None:
        if len(self._by_id) > PAGE_SIZE * MAX_CACHED_PAGES:
            self._by_id.clear()
        if rid not in self._by_id and self._source is not None:
            self._by_id[rid] = self._source.message(rid)
        return self._by_id.get(rid)

    def states_of(self, row_ids: Collection[int], reads: int = 200) -> dict[int, TrackState]:
        """The shown state (with the overlay) of those of these messages that are in memory
        or read by id within ``reads`` reads; the others (and messages gone) are left out,
        for the caller to read on a worker."""
        wanted = set(row_ids)
        out = {rid: state for rid, state in self._overlay.items() if rid in wanted}
        for page in self._pages.values():
            for message in page:
                if message.id in wanted and message.id not in out:
                    out[message.id] = message.track_state
        for rid in row_ids:
            if rid in out:
                continue
            if rid not in self._by_id:
                if reads <= 0:
                    continue
                reads -= 1
            read = self._message(rid)
            if read is not None:
                out[rid] = read.track_state
        return out

    def state_of(self, message: MessageRow) -> TrackState:
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
                self.dataChanged.emit(
                    self.index(0, 0),
                    self.index(self._count - 1, len(Column) - 1),
                    [Qt.ItemDataRole.BackgroundRole],
                )

    # --- Qt model API ---------------------------------------------------------------------
    # --- drag: rows onto the folder tree (``desktop.folders.ROWS_MIME``) ----------------------
    def flags(self, index: _Index) -> Qt.ItemFlag:
        # Asked once per painted cell: a constant, not super() plus an OR (~1 ms a paint).
        return _CELL_FLAGS if index.isValid() else _NO_FLAGS

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def mimeTypes(self) -> list[str]:
        return [ROWS_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        ids = self.row_ids(sorted({i.row() for i in indexes}))
        data = QMimeData()
        data.setData(ROWS_MIME, QByteArray("\n".join(map(str, ids)).encode("ascii")))
        return data

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else _COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        # Asked for every section and role of both headers at each paint: plain int
        # comparisons (``Column`` is an IntEnum), no enum built per call.
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < _COLUMN_COUNT:
            return None
        col = section
        if role == Qt.ItemDataRole.DisplayRole:
            return self._header_text(col)
        if role == Qt.ItemDataRole.DecorationRole:
            if col == Column.STATE:
                return state_icon(TrackState.TRACKED)
            if col == Column.ATTACHMENT:
                return named_icon("attachment")
        if role == Qt.ItemDataRole.ToolTipRole:
            return _HEADER_TIPS.get(col) or self._header_text(col)
        return None

    def _header_text(self, col: int) -> str:
        if col == Column.FROM and self.shows_recipients:
            return "To"
        if col == Column.FOLDER and not self.shows_folder:
            return ""
        return _HEADER_TEXTS[col]

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
            if col == Column.FROM and self.shows_recipients:
                return ", ".join(a.display() for a in header.to)
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

    def paint_values(self, row: int) -> dict[int, tuple[Any, ...]] | None:
        """Display, decoration, font and background of every column of ``row`` (what
        :class:`MessageDelegate` paints from), or None for a row without a message."""
        message = self.row_at(row)
        if message is None:
            return None
        painted = self._painted.get(message.id)
        return painted if painted is not None else self._paint(message)

    def _paint(self, message: MessageRow) -> dict[int, tuple[Any, ...]]:
        """Display, decoration, font and background of every column of one row."""
        if len(self._painted) > PAGE_SIZE * MAX_CACHED_PAGES:
            self._painted.clear()
        header = message.header
        state = self.state_of(message)
        font = None if header.is_read else _bold()
        brush = (
            _tracked_brush()
            if self.colour_tracked and state in (TrackState.TRACKED, TrackState.TRACKED_BY_OTHER)
            else None
        )
        icons: list[QIcon | None] = [None] * len(Column)
        icons[Column.STATE] = state_icon(state)
        if header.has_attachments:
            icons[Column.ATTACHMENT] = named_icon("attachment")
        painted: dict[int, tuple[Any, ...]] = {
            Qt.ItemDataRole.DisplayRole: tuple(self._display(c, message) for c in Column),
            Qt.ItemDataRole.DecorationRole: tuple(icons),
            Qt.ItemDataRole.FontRole: (font,) * len(Column),
            Qt.ItemDataRole.BackgroundRole: (brush,) * len(Column),
        }
        self._painted[message.id] = painted
        return painted

    def _display(self, col: Column, message: MessageRow) -> str | None:
        header = message.header
        if col == Column.FROM and self.shows_recipients:
            return ", ".join(a.name or a.email for a in header.to)
        if col == Column.FOLDER:
            return header.ref.folder if self.shows_folder else ""
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

    def row_ids(self, rows: Iterable[int]) -> list[int]:
        """The message ids of these rows, in their order (rows without one left out)."""
        return [rid for rid in self.ids_at(list(rows)) if rid is not None]


_DISPLAY, _DECORATION = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole
_FONT, _BACKGROUND = Qt.ItemDataRole.FontRole, Qt.ItemDataRole.BackgroundRole
_HAS_DISPLAY = QStyleOptionViewItem.ViewItemFeature.HasDisplay
_HAS_DECORATION = QStyleOptionViewItem.ViewItemFeature.HasDecoration


class MessageDelegate(QStyledItemDelegate):
    """Paints the message list from the model's per-row paint tuple
    (:meth:`MessageListModel.paint_values`): one Python call per cell instead of the base
    class asking ``data()`` for each of ~10 roles (a sixth less repaint time). What it sets
    is what ``QStyledItemDelegate::initStyleOption`` sets from those roles."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: _Index) -> None:  # noqa: N802
        model = index.model()
        values = model.paint_values(index.row()) if isinstance(model, MessageListModel) else None
        if values is None:  # another model, or a row without a message ("…")
            super().initStyleOption(option, index)
            return
        col = index.column()
        font = values[_FONT][col]
        if font is not None:
            option.font = font.resolve(option.font)
            option.fontMetrics = QFontMetrics(option.font)
        option.index = index if isinstance(index, QModelIndex) else model.index(index.row(), col)
        icon = values[_DECORATION][col]
        if icon is not None:
            option.features |= _HAS_DECORATION
            option.icon = icon
            _fit_decoration(option, icon)
        text = values[_DISPLAY][col]
        if text is not None:
            option.features |= _HAS_DISPLAY
            option.text = text
        brush = values[_BACKGROUND][col]
        option.backgroundBrush = _NO_BRUSH if brush is None else brush
        option.styleObject = None  # type: ignore[assignment]  # as Qt does: no style animations in item views


_NO_BRUSH = QBrush()


def _fit_decoration(option: QStyleOptionViewItem, icon: QIcon) -> None:
    """The decoration size Qt gives an icon: its actual size in the item's mode and state,
    never larger than the view's decoration size."""
    state = option.state
    if not state & QStyle.StateFlag.State_Enabled:
        mode = QIcon.Mode.Disabled
    elif state & QStyle.StateFlag.State_Selected:
        mode = QIcon.Mode.Selected
    else:
        mode = QIcon.Mode.Normal
    on = QIcon.State.On if state & QStyle.StateFlag.State_Open else QIcon.State.Off
    wanted = option.decorationSize
    actual = icon.actualSize(wanted, mode, on)
    option.decorationSize = actual.boundedTo(wanted)
