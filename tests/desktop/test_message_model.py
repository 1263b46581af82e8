"""The message list model: lazy paging, sorting hand-off, state overlay, model invariants."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester

from core.domain.model import Address, MailRef, MessageHeader, Reason, TrackState
from desktop.messages import PAGE_SIZE, Column, MessageListModel
from desktop.roles import RowIdRole, TrackReasonRole, TrackStateRole


@dataclass(frozen=True)
class Row:
    id: int
    header: MessageHeader
    track_state: TrackState = TrackState.NOT_TRACKED
    activity_id: str | None = None
    regarding: object = None
    reason: Reason | None = None
    tracked_by_other: bool = False


class ListSource:
    """An in-memory row source that records which pages the model asked for."""

    def __init__(self, n: int) -> None:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        self.items = [
            Row(
                i,
                MessageHeader(
                    MailRef("Inbox", str(i)),
                    f"<m{i}@x.example>",
                    subject=f"Subject {i}",
                    sender=Address(f"p{i}@x.example", f"P {i}"),
                    date=base + timedelta(minutes=i),
                    size=1000 + i,
                ),
            )
            for i in range(n)
        ]
        self.requests: list[tuple[int, int, str, bool]] = []

    def count(self) -> int:
        return len(self.items)

    def rows_sorted(self, order_by: str, descending: bool) -> list[Row]:
        key = {
            "date": lambda r: r.header.date,
            "subject": lambda r: r.header.subject,
            "size": lambda r: r.header.size,
        }.get(order_by, lambda r: r.id)
        return sorted(self.items, key=key, reverse=descending)

    def rows(self, offset: int, limit: int, order_by: str, descending: bool) -> list[Row]:
        self.requests.append((offset, limit, order_by, descending))
        return self.rows_sorted(order_by, descending)[offset : offset + limit]


def test_model_passes_qt_model_tester(qtbot) -> None:
    model = MessageListModel()
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_source(ListSource(500))
    model.sort(Column.SUBJECT, Qt.SortOrder.AscendingOrder)
    model.show_state([3, 4], TrackState.PENDING)
    model.refresh()
    model.set_source(None)
    assert model.rowCount() == 0


def test_only_the_pages_asked_for_are_read() -> None:
    source = ListSource(100_000)
    model = MessageListModel()
    model.set_source(source)
    assert model.rowCount() == 100_000
    assert source.requests == []  # opening a folder reads no rows
    assert model.data(model.index(0, Column.SUBJECT)) == "Subject 99999"  # newest first
    assert model.data(model.index(50_000, Column.SUBJECT)) == "Subject 49999"
    assert [r[0] for r in source.requests] == [0, (50_000 // PAGE_SIZE) * PAGE_SIZE]


def test_pending_overlay_shows_at_once_and_refresh_reads_the_store() -> None:
    source = ListSource(10)
    model = MessageListModel()
    model.set_source(source)
    idx = model.index(0, Column.STATE)
    row_id = model.data(idx, RowIdRole)
    model.show_state([row_id], TrackState.PENDING)
    assert model.data(idx, TrackStateRole) == TrackState.PENDING
    source.items = [
        replace(
            r, track_state=TrackState.TRACKED, reason=Reason("manual", "Tracked manually by Alex")
        )
        if r.id == row_id
        else r
        for r in source.items
    ]
    model.refresh()
    assert model.data(idx, TrackStateRole) == TrackState.TRACKED
    assert model.data(idx, TrackReasonRole) == "Tracked manually by Alex"
    assert "Tracked in CRM" in model.data(idx, Qt.ItemDataRole.ToolTipRole)


def test_sorting_asks_the_source_in_the_new_order() -> None:
    source = ListSource(10)
    model = MessageListModel()
    model.set_source(source)
    model.sort(Column.SIZE, Qt.SortOrder.AscendingOrder)
    assert model.data(model.index(0, Column.SIZE)) == "1000 B"
    assert source.requests[-1][2:] == ("size", False)
