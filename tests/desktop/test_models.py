"""QAbstractItemModelTester on every model of the GUI, plus the picker's offline behaviour and
its keyboard skipping of group headers."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester

from core.domain.model import Folder, FolderRole, RecordRef, TrackState
from core.store import Store
from core.sync.address_books import AddressBookEntry
from core.workspace.regarding import RegardingHit, RegardingSearch
from desktop.addressbook import AddressBookModel
from desktop.folders import FolderTreeModel
from desktop.queueview import QueueModel
from desktop.regarding import RegardingPicker, RegardingResultsModel
from desktop.roles import FolderPathRole, TrackStatesRole, ViewRole
from desktop.workers import Workers

FATAL = QAbstractItemModelTester.FailureReportingMode.Fatal


def hits() -> list[RegardingHit]:
    return [
        RegardingHit(RecordRef("account", "a1", "Fabrikam Inc."), "account", "info@fab"),
        RegardingHit(RecordRef("contact", "c1", "Jane Doe"), "contact", "Fabrikam Inc."),
        RegardingHit(RecordRef("contact", "c2", "Mark Chen"), "contact"),
        RegardingHit(RecordRef("incident", "i1", "Login fails"), "incident", "CAS-01001"),
    ]


def test_regarding_results_model(qtbot) -> None:
    model = RegardingResultsModel()
    QAbstractItemModelTester(model, FATAL)
    model.set_hits(hits())
    assert [model.index(r).data() for r in range(model.rowCount())][0] == "Accounts"
    assert model.rowCount() == 4 + 3  # three group headers
    assert not model.flags(model.index(0)) & Qt.ItemFlag.ItemIsSelectable
    jane = RecordRef("contact", "c1", "Jane Doe")
    related = [
        RegardingHit(RecordRef("opportunity", "o1", "Renewal"), "opportunity", "", "crm", jane)
    ]
    model.add_related(jane, related)
    model.add_related(jane, related)  # once only
    assert model.rowCount() == 8
    row = next(r for r in range(8) if model.hit_at(r) and model.hit_at(r).parent == jane)
    assert "↳ Opportunitie" in model.index(row).data() or "↳" in model.index(row).data()
    model.set_hits([])
    assert model.rowCount() == 0


def test_folder_tree_model(qtbot) -> None:
    model = FolderTreeModel()
    QAbstractItemModelTester(model, FATAL)
    folders = [
        Folder("Inbox", "Inbox", FolderRole.INBOX),
        Folder("Inbox/Projects", "Projects", None, "Inbox"),
        Folder("Sent", "Sent", FolderRole.SENT),
    ]
    counts = dict.fromkeys(TrackState, 0) | {
        TrackState.TRACKED: 3,
        TrackState.FAILED: 2,
        TrackState.NEEDS_ATTENTION: 1,
    }
    model.set_folders(
        folders, "me@x", counts, pending_send=4, sizes={"Inbox": (10, 3), "Sent": (5, 0)}
    )
    assert model.index_of_path("Inbox/Projects").data(FolderPathRole) == "Inbox/Projects"
    inbox = model.index_of_path("Inbox")
    assert inbox.data() == "Inbox (3)" and inbox.data(Qt.ItemDataRole.FontRole).bold()
    assert model.index_of_path("Sent").data() == "Sent"
    model.update_counts(counts, 4, {"Inbox": (10, 0)})
    assert model.index_of_path("Inbox").data() == "Inbox"
    crm = model.index(1, 0)
    labels = [model.index(r, 0, crm).data() for r in range(model.rowCount(crm))]
    assert labels == [
        "Tracked in CRM (3)",
        "Needs attention (3)",
        "Pending (queued) (0)",
        "Pending Send (4)",
    ]
    assert model.index(1, 0, crm).data(TrackStatesRole) == (
        TrackState.NEEDS_ATTENTION,
        TrackState.FAILED,
    )
    assert model.index(3, 0, crm).data(ViewRole) == "pending_send"
    model.set_folders([], "me@x")


def test_address_book_and_queue_models(qtbot) -> None:
    book = AddressBookModel()
    QAbstractItemModelTester(book, FATAL)
    book.set_rows([AddressBookEntry(h.record, "x@y.example", "Co") for h in hits()])
    assert book.index(0, 3).data() == "Account" and book.index(0, 1).data() == "x@y.example"
    queue = QueueModel()
    QAbstractItemModelTester(queue, FATAL)

    class Op:
        id, kind, message_id, subject = 1, "promote", "<m@x>", "Hello"
        state, attempts, last_error, created = "parked", 3, "HTTP 400", None

    queue.set_operations([Op()])
    assert queue.index(0, 0).data() == "Track"
    assert queue.index(0, 2).data().startswith("Stopped")
    queue.set_operations([])


def test_picker_offline_uses_the_cache_and_skips_headers(qtbot, tmp_path: Path) -> None:
    local = threading.local()
    opened: list[Store] = []

    def store() -> Store:  # one connection per thread, as Workspace.store() gives
        if not hasattr(local, "s"):
            local.s = Store.open(tmp_path / "s.sqlite")
            opened.append(local.s)
        return local.s

    search = RegardingSearch(store)  # no CRM at all
    for h in reversed(hits()):
        search.remember(h.record, h.detail)
    workers = Workers(max_threads=1)
    picker = RegardingPicker(search, workers, online=False)
    qtbot.addWidget(picker)
    picker.show()
    qtbot.waitUntil(lambda: picker.model.rowCount() == 5, timeout=5000)  # header + 4 recent
    assert picker.current_hit().record.name == "Fabrikam Inc."
    with qtbot.waitSignal(picker.results_changed, timeout=5000):
        qtbot.keyClicks(picker.edit, "doe")
    assert [h.record.name for h in picker.model.hits()] == ["Jane Doe"]
    assert "Offline" in picker.status.text()
    picker.edit.clear()
    qtbot.waitUntil(lambda: len(picker.model.hits()) == 4, timeout=5000)
    qtbot.keyClick(picker.edit, Qt.Key.Key_Up)  # already first: stays
    assert picker.current_hit().record.name == "Fabrikam Inc."
    for _ in range(10):
        qtbot.keyClick(picker.edit, Qt.Key.Key_Down)  # clamps at the last record
    assert picker.current_hit().record.name == "Login fails"
    with qtbot.waitSignal(picker.accepted):
        qtbot.keyClick(picker.edit, Qt.Key.Key_Enter)
    assert picker.selected() == RecordRef("incident", "i1", "Login fails")
    workers.wait()
    assert search.recent()[0].record.id == "i1"
    assert opened  # connections of finished pool threads close with them
