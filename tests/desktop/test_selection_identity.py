"""A selection belongs to messages, not to row numbers (issue 13): a sort, a refresh after a sync
(newer mail above, a message removed) and a narrower or wider source keep the same messages
selected and current, on a small folder and on a lazy 100,000-row one; the reading pane and
the CRM verbs (Track, Untrack) act on exactly the messages the user sees selected."""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt
from PySide6.QtWidgets import QAbstractItemView, QApplication, QMessageBox, QTableView

from core.domain.changes import Changes
from core.domain.model import TrackState
from core.store import ORDER_COLUMNS, Store
from desktop.mainwindow import MainWindow
from desktop.messages import Column, MessageListModel, StoreFolderSource, StoreStatesSource
from desktop.roles import MessageIdRole, RowIdRole, TrackStateRole

BIG = 100_000
SMALL = 60
BASE = datetime(2024, 1, 1, tzinfo=UTC)
ORDERS = (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder)
Select = QItemSelectionModel.SelectionFlag

_INSERT = (
    "INSERT INTO messages (folder, uid, message_id, subject, subject_sort, sender_email, "
    "sender_name, sender_key, sender_sort, date, date_ts, size, track_state, regarding_entity, "
    "regarding_id, regarding_name, regarding_sort) "
    "VALUES ('Inbox', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _values(i: int) -> tuple[Any, ...]:
    """Message ``i``: each column sorts it differently; every tenth is tracked with a
    regarding record, and a few have no date (SQLite sorts NULL first ascending)."""
    date = None if i % 997 == 17 else BASE + timedelta(minutes=i)
    subject = f"Subject {(i * 7919) % 10007:05d}"
    person = f"Person {(i * 31) % 977:03d}"
    email = f"p{(i * 31) % 977}@x.example"
    tracked = i % 10 == 3
    regarding = f"Account {(i * 13) % 101:03d}" if tracked else None
    return (
        str(i),
        f"<sel-{i}@x.example>",
        subject,
        subject.lower(),
        email,
        person,
        email,
        person.lower(),
        date.isoformat() if date else None,
        date.timestamp() if date else None,
        1000 + (i * 104729) % 50000,
        "tracked" if tracked else "not_tracked",
        "account" if tracked else None,
        f"acc-{(i * 13) % 101}" if tracked else None,
        regarding,
        regarding.lower() if regarding else "",
    )


def fill(store: Store, start: int, count: int) -> None:
    """Messages ``start`` … ``start + count - 1`` in one executemany (100,000 in ~2 s)."""
    with store.transaction() as conn:
        conn.executemany(_INSERT, (_values(i) for i in range(start, start + count)))


@pytest.fixture(scope="session")
def big_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("selection") / "big.sqlite"
    with Store.open(path) as store:
        fill(store, 0, BIG)
    return path


@pytest.fixture(params=[SMALL, BIG], ids=["small", "big"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, int]]:
    """A store whose Inbox holds ``SMALL`` or ``BIG`` messages (a copy of one built once)."""
    path = tmp_path / "store.sqlite"
    if request.param == BIG:
        shutil.copyfile(request.getfixturevalue("big_template"), path)
        store = Store.open(path)
    else:
        store = Store.open(path)
        fill(store, 0, SMALL)
    yield store, request.param
    # The views outlive this fixture (qtbot closes them later): leave them nothing to read.
    for widget in QApplication.allWidgets():
        model = widget.model() if isinstance(widget, QTableView) else None
        if isinstance(model, MessageListModel):
            model.set_source(None)
    store.close()


class CountingSource(StoreFolderSource):
    """The folder source, counting what the model asks of it."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, "Inbox")
        self.calls: dict[str, int] = {"rows": 0, "positions": 0, "ids": 0}

    def rows(self, *args: Any) -> list[Any]:
        self.calls["rows"] += 1
        return super().rows(*args)

    def positions(self, *args: Any) -> dict[int, int]:
        self.calls["positions"] += 1
        return super().positions(*args)

    def ids(self, *args: Any) -> list[int]:
        self.calls["ids"] += 1
        return super().ids(*args)


class SubsetSource:
    """A search-like source: the folder's messages among ``keep``, in the folder's order."""

    def __init__(self, store: Store, keep: Collection[int]) -> None:
        self.store = store
        self.keep = set(keep)
        self._orders: dict[tuple[str, bool], list[int]] = {}

    def _order(self, order_by: str, descending: bool) -> list[int]:
        key = (order_by, descending)
        if key not in self._orders:
            self._orders[key] = [
                i
                for i in self.store.message_ids("Inbox", order_by=order_by, descending=descending)
                if i in self.keep
            ]
        return self._orders[key]

    def count(self) -> int:
        return len(self._order("date", True))

    def rows(self, offset: int, limit: int, order_by: str, descending: bool) -> list[Any]:
        ids = self._order(order_by, descending)[offset : offset + limit]
        return [self.store.message(i) for i in ids]

    def positions(
        self, row_ids: Collection[int], order_by: str, descending: bool
    ) -> dict[int, int]:
        where = {rid: row for row, rid in enumerate(self._order(order_by, descending))}
        return {rid: where[rid] for rid in row_ids if rid in where}

    def ids(self, order_by: str, descending: bool) -> list[int]:
        return list(self._order(order_by, descending))


def table(qtbot, store: Store, source: Any = None) -> tuple[QTableView, MessageListModel]:
    """The message list as the main window sets it up, newest first."""
    view = QTableView()
    qtbot.addWidget(view)
    model = MessageListModel(view)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setSortingEnabled(True)
    view.sortByColumn(Column.RECEIVED, Qt.SortOrder.DescendingOrder)
    model.set_source(source or StoreFolderSource(store, "Inbox"))
    view.resize(800, 300)
    view.show()
    return view, model


def select(view: QTableView, rows: list[int], current: int) -> None:
    model, sm = view.model(), view.selectionModel()
    selection = QItemSelection()
    for row in rows:
        selection.select(model.index(row, 0), model.index(row, len(Column) - 1))
    sm.select(selection, Select.ClearAndSelect)
    sm.setCurrentIndex(model.index(current, Column.SUBJECT), Select.NoUpdate)


def row_id(view: QTableView, row: int) -> int:
    """The id of the message the model shows at ``row`` (read from the store's order)."""
    return view.model().data(view.model().index(row, Column.STATE), RowIdRole)


def selected(view: QTableView) -> list[int]:
    return sorted(row_id(view, i.row()) for i in view.selectionModel().selectedRows())


def current(view: QTableView) -> int | None:
    index = view.selectionModel().currentIndex()
    return row_id(view, index.row()) if index.isValid() else None


def row_of(store: Store, rid: int) -> int:
    """Where the newest-first list shows message ``rid``."""
    row = store.message_position("Inbox", rid)
    assert row is not None
    return row


def ids_where(store: Store, condition: str, count: int = 2) -> list[int]:
    """The first messages (by id, after the first ten) that meet an SQL condition."""
    rows = store.conn.execute(
        f"SELECT id FROM messages WHERE {condition} AND id > 10 ORDER BY id LIMIT ?", (count,)
    )
    return [r[0] for r in rows]


# --- the store: where a message stands in an order -------------------------------------------
def test_store_positions_and_ids_match_the_pages_in_every_order(folder) -> None:
    store, n = folder
    nulls = [i + 1 for i in range(n) if i % 997 == 17]  # row ids without a date
    assert nulls
    for order_by in ORDER_COLUMNS:
        for descending in (True, False):
            ids = store.message_ids("Inbox", order_by=order_by, descending=descending)
            assert len(ids) == n
            rows = range(n) if n == SMALL else [0, 1, 39, 40, n // 2, n - 2, n - 1]
            rows = sorted({*rows, *(ids.index(rid) for rid in nulls[:3])})
            for row in rows:
                (page,) = store.message_rows(
                    "Inbox", row, 1, order_by=order_by, descending=descending
                )
                assert ids[row] == page.id, (order_by, descending, row)
                where = store.message_position(
                    "Inbox", page.id, order_by=order_by, descending=descending
                )
                assert where == row, (order_by, descending, row)
    assert store.message_position("Inbox", 10**9) is None
    assert store.message_position("Elsewhere", 1) is None

    # The CRM views' scope: one state across folders, newest first.
    tracked = store.tracking.messages_in_state(TrackState.TRACKED, 0, n)
    ids = store.message_ids(None, state=TrackState.TRACKED)
    assert ids == [m.id for m in tracked]
    for row in (0, len(ids) // 2, len(ids) - 1):
        assert store.message_position(None, ids[row], state=TrackState.TRACKED) == row
    assert store.message_position(None, ids[0], state=TrackState.PENDING) is None
    with pytest.raises(ValueError):
        store.message_ids(None)


# --- the model and the view -----------------------------------------------------------------
def test_sort_by_each_column_keeps_the_selected_and_current_messages(qtbot, folder) -> None:
    store, n = folder
    view, _ = table(qtbot, store)
    select(view, [2, n // 2 + 1, n - 3], current=n // 2 + 1)  # top, middle and bottom
    many, many_current = selected(view), current(view)
    assert len(many) == 3
    for column in Column:
        for order in ORDERS:
            view.sortByColumn(column, order)
            assert selected(view) == many, (column.name, order)
            assert current(view) == many_current, (column.name, order)

    select(view, [7], current=7)
    (one,) = selected(view)
    for column in (Column.SUBJECT, Column.SIZE, Column.FROM, Column.RECEIVED):
        for order in ORDERS:
            view.sortByColumn(column, order)
            assert selected(view) == [one] and current(view) == one, (column.name, order)
            assert view.selectionModel().selectedRows()[0].row() == store.message_position(
                "Inbox",
                one,
                order_by={
                    Column.SUBJECT: "subject",
                    Column.SIZE: "size",
                    Column.FROM: "sender",
                    Column.RECEIVED: "date",
                }[column],
                descending=order == Qt.SortOrder.DescendingOrder,
            )


def test_refresh_after_newer_mail_arrives_above(qtbot, folder) -> None:
    store, n = folder
    view, model = table(qtbot, store)
    select(view, [0, 3, n - 1], current=3)
    before, cur = selected(view), current(view)
    fill(store, n, 5)  # a sync brings five newer messages: they list above
    model.refresh()
    assert model.rowCount() == n + 5
    assert view.verticalHeader().count() == n + 5  # the view follows a count change in a layout
    assert selected(view) == before and current(view) == cur
    assert sorted(i.row() for i in view.selectionModel().selectedRows()) == [5, 8, n + 4]
    view.scrollToBottom()
    QApplication.processEvents()
    assert view.indexAt(QPoint(5, view.viewport().height() - 5)).row() == n + 4


def test_refresh_after_the_selected_message_is_removed_clears_it(qtbot, folder) -> None:
    store, n = folder
    view, model = table(qtbot, store)
    select(view, [4], current=4)
    (gone,) = selected(view)
    store.conn.execute("DELETE FROM messages WHERE id = ?", (gone,))
    model.refresh()
    assert model.rowCount() == n - 1
    assert view.selectionModel().selectedRows() == []
    assert not view.selectionModel().currentIndex().isValid()


def test_refresh_after_other_messages_are_removed_keeps_the_selection(qtbot, folder) -> None:
    store, n = folder
    view, model = table(qtbot, store)
    select(view, [4, 10], current=10)
    before, cur = selected(view), current(view)
    above, below = row_id(view, 0), row_id(view, 20)
    store.conn.execute("DELETE FROM messages WHERE id IN (?, ?)", (above, below))
    model.refresh()
    assert model.rowCount() == n - 2
    assert selected(view) == before and current(view) == cur
    assert sorted(i.row() for i in view.selectionModel().selectedRows()) == [3, 9]


def test_a_narrower_then_wider_source_keeps_the_messages_still_listed(qtbot, folder) -> None:
    store, n = folder
    view, model = table(qtbot, store)
    t1, t2 = ids_where(store, "track_state = 'tracked'")
    u1, u2 = ids_where(store, "track_state = 'not_tracked'")
    select(view, [row_of(store, rid) for rid in (t1, t2, u1, u2)], current=row_of(store, t1))
    assert selected(view) == sorted([t1, t2, u1, u2]) and current(view) == t1
    cur, still = t1, sorted([t1, u1])  # the search drops t2, u2 and a third of the rest
    keep = {rid for rid in store.message_ids("Inbox") if rid % 3} - {t2, u2} | {t1, u1}

    model.replace_source(SubsetSource(store, keep))  # a search narrows the list
    assert model.rowCount() == len(keep)
    assert selected(view) == still and current(view) == cur
    model.set_source(StoreFolderSource(store, "Inbox"), keep_selection=True)  # and clears
    assert model.rowCount() == n
    assert selected(view) == still and current(view) == cur

    # The CRM view of tracked mail (across folders) is a source too.
    model.replace_source(StoreStatesSource(store, (TrackState.TRACKED,)))
    assert selected(view) == [t1] and current(view) == t1
    assert all(
        model.data(model.index(i.row(), 0), TrackStateRole) is TrackState.TRACKED
        for i in view.selectionModel().selectedRows()
    )


@pytest.mark.parametrize("folder", [BIG], ids=["big"], indirect=True)
def test_a_refresh_of_a_huge_folder_reads_no_rows_for_a_small_selection(qtbot, folder) -> None:
    """One indexed count per selected message, no page and no id list (a few ms)."""
    store, n = folder
    source = CountingSource(store)
    view, model = table(qtbot, store, source)
    select(view, [n - 2], current=n - 2)
    (chosen,) = selected(view)
    source.calls = dict.fromkeys(source.calls, 0)
    model.refresh()
    view.sortByColumn(Column.SIZE, Qt.SortOrder.AscendingOrder)
    assert source.calls == {"rows": 0, "positions": 2, "ids": 0}
    assert selected(view) == [chosen]

    select(view, list(range(500, 1500)), current=500)  # 1,000 rows: one scan, not 1,000 counts
    chosen = selected(view)
    source.calls = dict.fromkeys(source.calls, 0)
    view.sortByColumn(Column.FROM, Qt.SortOrder.DescendingOrder)
    assert source.calls == {"rows": 0, "positions": 0, "ids": 1}
    assert selected(view) == chosen


def test_select_all_stays_all_selected(qtbot, workers, folder) -> None:
    store, n = folder
    win = MainWindow(workers)  # no workspace: the list and its selection only
    qtbot.addWidget(win)
    model = win.message_model
    model.set_source(StoreFolderSource(store, "Inbox"))
    win.message_list.selectAll()
    win.message_list.sortByColumn(Column.SIZE, Qt.SortOrder.AscendingOrder)
    assert len(win.selected_row_ids()) == n
    top = model.data(model.index(0, 0), RowIdRole)
    store.conn.execute("DELETE FROM messages WHERE id = ?", (top,))
    model.refresh()
    assert len(win.selected_row_ids()) == model.rowCount() == n - 1
    fill(store, n, 3)
    model.refresh()
    assert len(win.selected_row_ids()) == model.rowCount() == n + 2


# --- the main window over the demo mailbox ---------------------------------------------------
def settle(qtbot, workers) -> None:
    for _ in range(4):
        workers.wait()
        qtbot.wait(30)


def state_at(window, row: int) -> TrackState:
    return window.message_model.data(window.message_model.index(row, Column.STATE), TrackStateRole)


def rows_in(window, states: Collection[TrackState], skip: int = 0) -> list[int]:
    return [
        r for r in range(skip, window.message_model.rowCount()) if state_at(window, r) in states
    ]


def click_header(qtbot, window, column: Column) -> None:
    """Sort as the user does: a click on the column's header."""
    header = window.message_list.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(
        header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2)
    )


def show_row(qtbot, window, row: int) -> int:
    with qtbot.waitSignal(window.message_shown, timeout=30_000) as shown:
        window.select_rows([row])
    (rid,) = window.selected_row_ids()
    assert shown.args == [rid]
    return rid


def spy(monkeypatch, workspace, verb: str) -> list[list[int]]:
    """Record the row ids each call of a workspace verb got."""
    calls: list[list[int]] = []
    real = getattr(workspace, verb)

    def recorded(row_ids, *args: Any) -> Any:
        calls.append(list(row_ids))
        return real(row_ids, *args)

    monkeypatch.setattr(workspace, verb, recorded)
    return calls


def test_select_sort_then_ctrl_t_tracks_the_message_in_the_reading_pane(
    qtbot, window, workers, monkeypatch
) -> None:
    settle(qtbot, workers)
    row = rows_in(window, {TrackState.NOT_TRACKED}, skip=3)[0]
    rid = show_row(qtbot, window, row)
    for column in (Column.SUBJECT, Column.FROM, Column.SIZE):
        click_header(qtbot, window, column)
        assert window.selected_row_ids() == [rid], column.name
        assert window.reading_pane.view is not None and window.reading_pane.view.row_id == rid
    moved = window.message_list.selectionModel().selectedRows()[0].row()
    assert moved != row, "the sort moved the message: the test checks something"
    someone_else = window.message_model.data(window.message_model.index(row, 0), RowIdRole)
    assert window.window_actions.reply.isEnabled()  # Reply would answer the message shown

    tracked = spy(monkeypatch, window.workspace, "enqueue_track")
    window.activateWindow()
    window.message_list.setFocus()
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        qtbot.keyClick(window.message_list, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert done.args[0].errors == ()
    assert tracked == [[rid]] and someone_else != rid
    store = window.workspace.store()
    assert store.message(rid).track_state is TrackState.TRACKED
    assert store.message(someone_else).track_state is not TrackState.TRACKED
    assert window.reading_pane.view.row_id == rid


def test_refresh_after_the_shown_message_is_removed_clears_the_reading_pane(
    qtbot, window, workers
) -> None:
    settle(qtbot, workers)
    rid = show_row(qtbot, window, 2)
    store = window.workspace.store()
    count = window.message_model.rowCount()
    store.remove_messages([store.message(rid).header.ref])  # as a sync does
    window.bus.publish(Changes(messages=True))
    settle(qtbot, workers)
    assert window.message_model.rowCount() == count - 1
    assert window.selected_row_ids() == []
    assert window.reading_pane.view is None
    a = window.window_actions
    assert not (a.track.isEnabled() or a.untrack.isEnabled() or a.reply.isEnabled())


def test_a_change_that_moves_the_selected_row_keeps_the_pane_on_its_message(
    qtbot, window, workers
) -> None:
    """Sorted by state, another message tracked (as by a sync) moves from above the selected
    one to below it: selection, current index and reading pane stay on their message, which
    is not even loaded again."""
    settle(qtbot, workers)
    window.message_list.sortByColumn(Column.STATE, Qt.SortOrder.AscendingOrder)
    row = rows_in(window, {TrackState.NOT_TRACKED})[-1]  # just above pending and tracked mail
    rid = show_row(qtbot, window, row)
    other = window.message_model.data(window.message_model.index(0, 0), RowIdRole)
    assert state_at(window, 0) is TrackState.NOT_TRACKED and other != rid
    changes = window.workspace.enqueue_track([other])  # now pending: it sorts below
    with qtbot.assertNotEmitted(window.message_shown, wait=300):
        window.bus.publish(changes)
    sm = window.message_list.selectionModel()
    assert window.selected_row_ids() == [rid]
    assert sm.selectedRows()[0].row() == row - 1 and sm.currentIndex().row() == row - 1
    assert window.reading_pane.view is not None and window.reading_pane.view.row_id == rid
    assert window.window_actions.reply.isEnabled()


def test_untrack_is_offered_for_tracked_mail_only_and_untracks_only_that(
    qtbot, window, workers, monkeypatch
) -> None:
    settle(qtbot, workers)
    untracked = rows_in(window, {TrackState.NOT_TRACKED})
    tracked = rows_in(window, {TrackState.TRACKED})
    assert untracked and tracked
    a = window.window_actions
    window.select_rows(untracked[:2])
    assert a.track.isEnabled() and not a.untrack.isEnabled()
    window.select_rows(tracked[:1])
    assert a.untrack.isEnabled()

    mixed = [untracked[0], tracked[0]]
    window.select_rows(mixed)
    assert a.untrack.isEnabled()
    ids = window.selected_row_ids()
    tracked_id = window.message_model.data(window.message_model.index(tracked[0], 0), RowIdRole)
    untracked_id = next(rid for rid in ids if rid != tracked_id)
    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda _parent, _title, text, *a, **k: (asked.append(text), QMessageBox.StandardButton.Yes)[
            1
        ],
    )
    calls = spy(monkeypatch, window.workspace, "enqueue_untrack")
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        a.untrack.trigger()
    assert done.args[0].errors == ()
    assert calls == [[tracked_id]]
    assert asked and "1 of the 2 selected" in asked[0]
    store = window.workspace.store()
    assert store.message(tracked_id).track_state is TrackState.NOT_TRACKED
    assert store.message(untracked_id).track_state is TrackState.NOT_TRACKED
    assert window.message_model.data(
        window.message_model.index(tracked[0], 0), MessageIdRole
    )  # still listed
    settle(qtbot, workers)
    assert not a.untrack.isEnabled()  # the refresh re-read the states: nothing tracked now


def test_untrack_of_states_not_in_memory_reads_them_on_a_worker(
    qtbot, window, workers, monkeypatch
) -> None:
    """A selection too big for the list's memory: states come from the store, off the GUI
    thread, before the question; still only the tracked ones are untracked."""
    settle(qtbot, workers)
    rows = [rows_in(window, {TrackState.NOT_TRACKED})[0], rows_in(window, {TrackState.TRACKED})[0]]
    window.select_rows(rows)
    untracked_id, tracked_id = (
        window.message_model.data(window.message_model.index(r, 0), RowIdRole) for r in rows
    )
    monkeypatch.setattr(window.message_model, "states_of", lambda ids, reads=200: {})
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    calls = spy(monkeypatch, window.workspace, "enqueue_untrack")
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        window.window_actions.untrack.trigger()
    assert done.args[0].errors == ()
    assert calls == [[tracked_id]] and untracked_id != tracked_id
