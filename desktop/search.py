"""The search bar over the message list (issue 17) and what it shows: a text box, the scope
(this folder / all folders), quick-filter toggles, the result count.

The words are matched by the store's FTS5 index (``core.store.search``) on a worker, never on
the GUI thread. A keystroke starts a search at once when none runs; while one runs, it is
interrupted (``SearchCancel``) and the newest text runs next, so at most one search is under
way and results never arrive out of order. No fixed debounce: a 150 ms pause would cost more
than the search itself. Within a folder the first page of results comes first (an index walk
of a few ms) and every match (for the count and scrolling) a moment later. The results are
row ids; :class:`SearchSource` pages them into the
list by primary key, so the list keeps its columns (the tracked icon) and every action, which
act on row ids.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QToolButton,
    QWidget,
)

from core.domain.model import TrackState
from core.store import MessageRow, Store
from core.store.search import (
    FIRST_PAGE,
    QuickFilter,
    SearchCancel,
    SearchCancelled,
    first_page,
    id_position,
    rows_by_ids,
    search_ids,
)
from desktop.workers import Workers

#: Label, accessible name and tooltip of each quick filter, in the bar's order.
FILTERS: tuple[tuple[QuickFilter, str, str], ...] = (
    (QuickFilter.UNREAD, "Unread", "Only unread mail"),
    (QuickFilter.FLAGGED, "Flagged", "Only mail flagged for follow-up"),
    (QuickFilter.ATTACHMENTS, "Attachments", "Only mail with attachments"),
    (QuickFilter.TRACKED, "Tracked", "Only mail tracked in the CRM"),
    (QuickFilter.NOT_TRACKED, "Not tracked", "Only mail not tracked in the CRM"),
    (QuickFilter.NEEDS_ATTENTION, "Needs attention", "Only mail that needs attention"),
)
#: The wait between a request's first page and the query for all its matches (ms): the first
#: page is painted (~20 ms of the GUI thread) with the cores to itself, and a keystroke within
#: it costs no full query at all (while typing, only the first page of each text is needed).
REST_AFTER_MS = 80
#: The search box's width below which the filter buttons go into the drop-down (pixels).
MIN_BOX_WIDTH = 180
#: Filters of which one at most is on (a mail is in one tracked state).
EXCLUSIVE = (QuickFilter.TRACKED, QuickFilter.NOT_TRACKED, QuickFilter.NEEDS_ATTENTION)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One search: the words, where (``folder`` or ``states``; neither: everywhere), the
    filters and the list's order."""

    text: str
    folder: str | None
    states: tuple[TrackState, ...] | None
    filters: frozenset[QuickFilter]
    order_by: str = "date"
    descending: bool = True


class SearchSource:
    """A ``RowSource`` (desktop/messages.py) over search results: their row ids in the order
    the search gave (a new order is a new search: the order asked for is ignored here, as
    ``StoreStatesSource`` does). Pages are read by primary key on the GUI thread's store.

    The ids stay packed (``array``, 8 bytes each): no Python int per result, and no dict of
    every id (~30 ms of the GUI thread at 100,000 results); a message is placed by a byte
    search of them (``id_position``)."""

    def __init__(self, store: Store, request: SearchRequest, row_ids: Sequence[int]) -> None:
        self.store = store
        self.request = request
        self.row_ids = row_ids if isinstance(row_ids, array) else array("q", row_ids)
        self._packed: bytes | None = None

    def count(self) -> int:
        return len(self.row_ids)

    def rows(self, offset: int, limit: int, order_by: str, descending: bool) -> list[MessageRow]:
        return rows_by_ids(self.store, self.row_ids[offset : offset + limit])

    def position(self, row_id: int) -> int | None:
        """The row of ``row_id`` in the results (None: not among them)."""
        if self._packed is None:
            self._packed = self.row_ids.tobytes()
        return id_position(self.row_ids, row_id, self._packed)

    def positions(
        self, row_ids: Collection[int], order_by: str, descending: bool
    ) -> dict[int, int]:
        found = {rid: self.position(rid) for rid in row_ids}
        return {rid: row for rid, row in found.items() if row is not None}

    def ids(self, order_by: str, descending: bool) -> list[int]:
        return self.row_ids.tolist()

    def same_ids(self, row_ids: Sequence[int]) -> bool:
        """Whether these are the results listed, in the same order (a compare of bytes)."""
        other = row_ids if isinstance(row_ids, array) else array("q", row_ids)
        return self.row_ids == other

    def message(self, row_id: int) -> MessageRow | None:
        return self.store.message(row_id) if self.position(row_id) is not None else None


class SearchRunner(QObject):
    """Runs :class:`SearchRequest` s on the worker pool, one at a time, newest wins. A
    request within a folder comes in two steps: ``found(request, first_ids, False)`` with the
    first page (an index walk of a few ms), then, :data:`REST_AFTER_MS` later, ``found(request,
    all_ids, True)`` (every match, sorted: 30-60 ms at 100,000 messages); a request answered
    at once gives only the second. Only the latest request reports; ``failed(exc)``
    likewise."""

    found = Signal(object, object, bool)
    failed = Signal(object)

    def __init__(
        self, workers: Workers, store: Callable[[], Store], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._workers = workers
        self._store = store  # the calling worker thread's own connection
        self._wanted: SearchRequest | None = None
        self._serial = 0
        self._running: SearchCancel | None = None  # the search under way (either step)
        self._rest = QTimer(self)  # the wait before the second step
        self._rest.setSingleShot(True)
        self._rest.setInterval(REST_AFTER_MS)
        self._rest.timeout.connect(self._rest_due)
        self._rest_job: Callable[[], None] | None = None
        #: Results in the first step (tests make it small).
        self.page_size = FIRST_PAGE

    def request(self, request: SearchRequest | None) -> None:
        """Search for ``request`` (None: stop wanting results)."""
        self._wanted = request
        self._serial += 1
        if self._rest_job is not None:  # between the steps: nothing runs, nothing to stop
            self._rest.stop()
            self._rest_job = None
            self._running = None
        if self._running is not None:
            self._running.cancel()  # its statement is interrupted; it reports at once
        elif request is not None:
            self._start()

    @property
    def busy(self) -> bool:
        return self._running is not None

    def _start(self) -> None:
        request, serial = self._wanted, self._serial
        if request is None:
            return
        stale = SearchCancel()
        self._running = stale
        store, size = self._store, self.page_size

        def op() -> tuple[Sequence[int], bool]:
            if request.folder is None:  # no index has the order: every match at once
                return _every_match(store(), request, stale), True
            return first_page(
                store(),
                request.text,
                folder=request.folder,
                states=request.states,
                filters=request.filters,
                order_by=request.order_by,
                descending=request.descending,
                cancel=stale,
                size=size,
            )

        def page(ids: Sequence[int], complete: bool) -> None:
            current = serial == self._serial
            if complete or not current:
                self._finished(serial)
            if not current:
                return
            self.found.emit(request, ids, complete)
            if complete:
                return
            if stale.cancelled:  # a newer request, made in a slot of ``found``, waits
                self._finished(serial)
            else:
                self._rest_job = lambda: self._all(request, serial, stale)
                self._rest.start()

        self._step(op, page, serial)

    def _rest_due(self) -> None:
        job, self._rest_job = self._rest_job, None
        if job is not None:
            job()

    def _all(self, request: SearchRequest, serial: int, stale: SearchCancel) -> None:
        """The second step: every match, in the list's order."""
        store = self._store

        def op() -> tuple[Sequence[int], bool]:
            return _every_match(store(), request, stale), True

        def done(ids: Sequence[int], _complete: bool) -> None:
            self._finished(serial)
            if serial == self._serial:
                self.found.emit(request, ids, True)

        self._step(op, done, serial)

    def _step(
        self,
        op: Callable[[], tuple[Sequence[int], bool]],
        then: Callable[[Sequence[int], bool], None],
        serial: int,
    ) -> None:
        """Run one step on a worker; a cancelled step only makes way for the newest request."""

        def run() -> tuple[Sequence[int], bool] | None:
            try:
                return op()
            except SearchCancelled:
                return None  # not a failure: a newer request is waiting

        def done(result: tuple[Sequence[int], bool] | None) -> None:
            if result is None:
                self._finished(serial)
            else:
                then(*result)

        def failed(exc: BaseException) -> None:
            self._finished(serial)
            if serial == self._serial:
                self.failed.emit(exc)

        self._workers.run(run, done, failed)

    def _finished(self, serial: int) -> None:
        self._running = None
        if serial != self._serial and self._wanted is not None:
            self._start()  # the newest request, now that the stale one stopped


def _every_match(store: Store, request: SearchRequest, cancel: SearchCancel) -> array[int]:
    """Every match of ``request`` in the list's order, packed (see ``search_ids``)."""
    return search_ids(
        store,
        request.text,
        folder=request.folder,
        states=request.states,
        filters=request.filters,
        order_by=request.order_by,
        descending=request.descending,
        cancel=cancel,
    )


def _filter_button(label: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(label)
    button.setToolTip(tip)
    button.setAccessibleName(f"Filter: {label}")
    button.setCheckable(True)
    button.setAutoRaise(True)
    return button


class SearchBar(QWidget):
    """``changed`` when the words, the scope or a filter changed; ``leave`` when Esc was
    pressed in an empty box (focus back to the list)."""

    changed = Signal()
    leave = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("searchBar")
        self.edit = QLineEdit()
        self.edit.setObjectName("searchBox")
        self.edit.setPlaceholderText("Search sender, recipients, subject and text (Ctrl+E)")
        self.edit.setAccessibleName("Search messages")
        self.edit.setClearButtonEnabled(True)
        self.edit.installEventFilter(self)
        self.scope = QComboBox()
        self.scope.setObjectName("searchScope")
        self.scope.addItems(["This folder", "All folders"])
        self.scope.setAccessibleName("Search scope")
        self.scope.view().setAccessibleName("Search scope choices")
        self.scope.setToolTip("Search this folder or all folders")
        self.buttons: dict[QuickFilter, QToolButton] = {}
        self.results = QLabel()
        self.results.setObjectName("searchResults")
        self.results.setAccessibleName("Search results")
        self._row = row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.setSpacing(4)
        row.addWidget(self.edit, 1)
        row.addWidget(self.scope)
        for f, label, tip in FILTERS:
            button = _filter_button(label, tip)
            button.setObjectName(f"searchFilter_{f.value}")
            button.toggled.connect(lambda on, f=f: self._toggled(f, on))
            self.buttons[f] = button
            row.addWidget(button)
        self.more = self._overflow()
        row.addWidget(self.more)
        row.addWidget(self.results)
        self.compact = False  # the filters are in the drop-down (a narrow window)
        self.edit.textChanged.connect(lambda _t: self.changed.emit())
        self.scope.currentIndexChanged.connect(lambda _i: self.changed.emit())

    def _overflow(self) -> QToolButton:
        """The quick filters as a drop-down, shown instead of the buttons when the bar is too
        narrow for them (an 800-pixel window); its checks follow the buttons both ways."""
        more = QToolButton()
        more.setObjectName("searchFiltersMenu")
        more.setText("Filters")
        more.setToolTip("Quick filters")
        more.setAccessibleName("Quick filters")
        more.setAutoRaise(True)
        more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(more)
        menu.setObjectName("searchFiltersMenuList")
        self.filter_actions: dict[QuickFilter, QAction] = {}
        for f, label, tip in FILTERS:
            action = menu.addAction(label)
            action.setCheckable(True)
            action.setToolTip(tip)
            button = self.buttons[f]
            action.toggled.connect(button.setChecked)
            button.toggled.connect(lambda _on: self._sync_menu())
            self.filter_actions[f] = action
        more.setMenu(menu)
        more.setVisible(False)
        return more

    def _sync_menu(self) -> None:
        """The drop-down's checks and its count of filters on, as the buttons say."""
        for f, action in self.filter_actions.items():
            on = self.buttons[f].isChecked()
            if action.isChecked() != on:
                action.blockSignals(True)
                action.setChecked(on)
                action.blockSignals(False)
        count = len(self.filters())
        self.more.setText(f"Filters ({count})" if count else "Filters")

    # --- size -----------------------------------------------------------------------------------
    def _spacing(self, widgets: int) -> int:
        layout = self._row
        margins = layout.contentsMargins()
        return margins.left() + margins.right() + layout.spacing() * max(widgets - 1, 0)

    def full_width(self) -> int:
        """The width the bar needs to show every filter button beside a usable search box."""
        buttons = sum(b.sizeHint().width() for b in self.buttons.values())
        fixed = self.scope.sizeHint().width() + self.results.sizeHint().width()
        return MIN_BOX_WIDTH + fixed + buttons + self._spacing(3 + len(self.buttons))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """The compact bar's: box, scope, the filters' drop-down and the count."""
        hint = super().minimumSizeHint()
        parts = (self.edit, self.scope, self.results)
        width = sum(w.minimumSizeHint().width() for w in parts) + self.more.sizeHint().width()
        return QSize(width + self._spacing(4), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        self.set_compact(event.size().width() < self.full_width())
        super().resizeEvent(event)

    def set_compact(self, compact: bool) -> None:
        """Filters in the drop-down (narrow) or as buttons (wide)."""
        if compact == self.compact:
            return
        self.compact = compact
        self._sync_menu()
        for button in self.buttons.values():
            button.setVisible(not compact)
        self.more.setVisible(compact)

    # --- state ----------------------------------------------------------------------------------
    def text(self) -> str:
        return self.edit.text()

    def all_folders(self) -> bool:
        return self.scope.currentIndex() == 1

    def set_all_folders(self, on: bool) -> None:
        self.scope.setCurrentIndex(1 if on else 0)

    def filters(self) -> frozenset[QuickFilter]:
        return frozenset(f for f, b in self.buttons.items() if b.isChecked())

    def active(self) -> bool:
        """Whether the list shows search results (words or a filter)."""
        return bool(self.text().strip()) or bool(self.filters())

    def clear(self, *, emit: bool = True) -> None:
        """No words, no filters (one ``changed`` with ``emit``)."""
        if not self.active() and not self.text():
            return
        for w in (self.edit, *self.buttons.values()):
            w.blockSignals(True)
        try:
            self.edit.clear()
            for b in self.buttons.values():
                b.setChecked(False)
        finally:
            for w in (self.edit, *self.buttons.values()):
                w.blockSignals(False)
        self._sync_menu()
        self.results.clear()
        if emit:
            self.changed.emit()

    def focus(self) -> None:
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.edit.selectAll()

    def show_count(self, count: int | None) -> None:
        self.results.setText("" if count is None else results_text(count))

    def show_searching(self) -> None:
        """The first page is shown, the count is not known yet."""
        self.results.setText("Searching…")

    # --- events ---------------------------------------------------------------------------------
    def _toggled(self, f: QuickFilter, on: bool) -> None:
        if on and f in EXCLUSIVE:
            for other in EXCLUSIVE:
                if other != f and self.buttons[other].isChecked():
                    self.buttons[other].blockSignals(True)
                    self.buttons[other].setChecked(False)
                    self.buttons[other].blockSignals(False)
        self._sync_menu()
        self.changed.emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Esc in the box clears the search; in an empty box it goes back to the list."""
        if watched is self.edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() == Qt.Key.Key_Escape:
                if self.active() or self.text():
                    self.clear()
                else:
                    self.leave.emit()
                return True
        return super().eventFilter(watched, event)


def results_text(count: int) -> str:
    return f"{count:,} result" + ("" if count == 1 else "s")
