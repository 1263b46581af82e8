"""Figures ``first_paint`` and ``max_stall`` of the desktop GUI (issue 7).

``first_paint``: open a folder of ``size`` (default 100,000) messages from a real store file
in the main window's message list — from ``set_source`` to the first painted rows — against a
bare ``QTableView`` over an in-memory 100-row model shown the same way, same run. Median of 7
after a warm-up round. Target: ratio <= 3.

``max_stall``: the longest event-loop stall (gap between ticks of a 20 ms QTimer) while the
main window runs a full sync of 10,000 messages (demo Maildir) + 100,000 contacts (+ 10,000
accounts and leads) from the emulator on loopback (own process, as a CRM is), as a ratio
against a 50 ms budget. Target: ratio <= 1. The idle stall (same timer, nothing running) is
measured in the same run and printed beside it (``idle_stall_ms``).

``first_paint_million`` and ``sort_million`` (issue 21, only at the default size): the
300,000-message folder of a 1,000,000-message store (bench/memory.py's, built once and cached)
opened vs the bare 100-row table (target <= 3), and sorted by sender with one message
selected — header click → the first 100 rows of the new order read — vs a bare indexed
``SELECT … ORDER BY sender_sort, id LIMIT 100`` on the same file (target <= 5); printed beside
it: the same sort until painted (``painted_s``) and without a selection (``no_selection_s``).

Run: ``python -m bench.gui_folder [--size N]`` or ``python -m bench gui_folder``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QAbstractTableModel, QEventLoop, QModelIndex, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QPaintEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QTableView  # noqa: E402

from bench._harness import figure, median_time, print_figures  # noqa: E402

BENCH = "gui_folder"
DEFAULT_SIZE = 100_000
MILLION = 1_000_000
SYNC_MESSAGES = 10_000
SYNC_CONTACTS = 100_000
STALL_BUDGET_MS = 50.0
TICK_MS = 20
REPEAT = 7


class _PaintClock(QTableView):
    """A table view that notes when it first finished painting rows."""

    painted_at: float | None = None

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        super().paintEvent(event)
        if self.painted_at is None and self.model() is not None and self.model().rowCount():
            self.painted_at = time.perf_counter()


class _Bare(QAbstractTableModel):
    """100 rows × 7 columns of plain strings, built up front (the baseline)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = [[f"r{r}c{c}" for c in range(7)] for r in range(100)]

    def rowCount(self, parent: Any = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Any = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else 7

    def data(self, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and index.isValid():
            return self.rows[index.row()][index.column()]
        return None


def _until_painted(app: QApplication, view: _PaintClock, start: float) -> float:
    deadline = start + 30
    while view.painted_at is None:
        app.processEvents()
        if time.perf_counter() > deadline:
            raise RuntimeError("the view never painted")
    return view.painted_at - start


def _big_store(path: Path, size: int) -> None:
    from core.domain.model import Address, MailRef, MessageHeader
    from core.store import Store

    store = Store.open(path)
    base = datetime(2020, 1, 1, tzinfo=UTC)
    batch = []
    for i in range(size):
        batch.append(
            MessageHeader(
                MailRef("Inbox", str(i)),
                f"<bench-{i}@x.example>",
                subject=f"Quarterly report {i}",
                sender=Address(f"person{i % 977}@x.example", f"Person {i % 977}"),
                to=(Address("me@contoso.example", "Me"),),
                date=base + timedelta(minutes=i),
                size=1000 + i % 5000,
                is_read=bool(i % 3),
            )
        )
        if len(batch) == 5000:
            store.upsert_headers(batch)
            batch = []
    if batch:
        store.upsert_headers(batch)
    store.close()


def first_paint(app: QApplication, size: int) -> dict[str, Any]:
    from core.store import Store
    from desktop.messages import MessageListModel, StoreFolderSource

    with tempfile.TemporaryDirectory(prefix="trackbox-bench-gui-") as tmp:
        path = Path(tmp) / "store.sqlite"
        _big_store(path, size)
        store = Store.open(path)
        ours, bare = [], []
        for i in range(REPEAT + 1):  # round 0 warms both up (first calls, caches) and is dropped
            view = _PaintClock()
            view.resize(1000, 400)
            model = MessageListModel(view)
            view.setModel(model)
            view.setSortingEnabled(True)
            view.show()
            app.processEvents()
            view.painted_at = None
            # As the main window does: folder sizes are counted on a worker when the folder
            # list is read; the click then reads one page.
            size_hint = store.message_count("Inbox")
            start = time.perf_counter()
            model.set_source(StoreFolderSource(store, "Inbox", size_hint))  # the click
            ours.append(_until_painted(app, view, start) if i else 0.0)
            assert model.rowCount() == size
            view.close()

            view = _PaintClock()
            view.resize(1000, 400)
            view.show()
            app.processEvents()
            view.painted_at = None
            start = time.perf_counter()
            view.setModel(_Bare())
            bare.append(_until_painted(app, view, start) if i else 0.0)
            view.close()
        store.close()
    value, base = statistics.median(ours[1:]), statistics.median(bare[1:])
    return figure(
        BENCH,
        "first_paint",
        value=value,
        unit="s",
        baseline=base,
        ratio=value / base,
        target=3.0,
        messages=size,
    )


def _million_store() -> tuple[Path, str, int]:
    """The cached 1,000,000-message store of bench/memory.py: its path, largest folder and
    that folder's size."""
    from bench.memory import cached_store, folder_sizes

    folders = folder_sizes(MILLION)
    return cached_store(folders), folders[0][0], folders[0][1]


def _open_folder(app: QApplication, store: Any, folder: str) -> tuple[_PaintClock, Any, float]:
    """A fresh view and model; the folder opened as a click opens it (counted on a worker
    when the folder list was read). Returns the view, the model and the seconds to paint."""
    from desktop.messages import MessageDelegate, MessageListModel, StoreFolderSource

    view = _PaintClock()
    view.resize(1000, 400)
    model = MessageListModel(view)
    view.setModel(model)
    view.setItemDelegate(MessageDelegate(view))  # the message list's delegate
    view.setSortingEnabled(True)
    view.show()
    app.processEvents()
    view.painted_at = None
    size_hint = store.message_count(folder)
    start = time.perf_counter()
    model.set_source(StoreFolderSource(store, folder, size_hint))  # the click
    return view, model, _until_painted(app, view, start)


def _bare_paint(app: QApplication) -> float:
    view = _PaintClock()
    view.resize(1000, 400)
    view.show()
    app.processEvents()
    view.painted_at = None
    start = time.perf_counter()
    view.setModel(_Bare())
    seconds = _until_painted(app, view, start)
    view.close()
    return seconds


def _sorted(app: QApplication, view: _PaintClock, model: Any, select: bool) -> tuple[float, float]:
    """Click the From header: seconds until the first 100 rows of the new order are read
    (what the bare query reads), and until they are painted."""
    from desktop.messages import Column

    view.selectionModel().clear()  # no selection, no current message
    if select:
        view.selectRow(3)  # a user's list has a current message: it follows the sort
    app.processEvents()
    view.painted_at = None
    start = time.perf_counter()
    view.sortByColumn(Column.FROM, Qt.SortOrder.AscendingOrder)  # the header click
    for row in range(100):
        model.row_at(row)
    read = time.perf_counter() - start
    painted = _until_painted(app, view, start)
    view.sortByColumn(Column.RECEIVED, Qt.SortOrder.DescendingOrder)  # back, for the next
    app.processEvents()
    return read, painted


def million(app: QApplication) -> list[dict[str, Any]]:
    """``first_paint_million``: the 300,000-message folder of a 1,000,000-message store vs
    the bare 100-row table. ``sort_million``: that folder, one message selected, sorted by
    sender (header click → the first 100 rows of the new order read) vs a bare indexed
    ``SELECT … ORDER BY sender_sort LIMIT 100`` on the same table and file. Median of 7
    after a warm-up round each."""
    import sqlite3

    from core.store import Store
    from core.store.rows import ROW_SELECT

    path, folder, size = _million_store()
    store = Store.open(path)
    bare_db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sql = (
        f"SELECT {ROW_SELECT} FROM messages WHERE folder = ? "
        "ORDER BY sender_sort ASC, id ASC LIMIT 100"
    )
    rounds: list[tuple[float, ...]] = []
    try:
        for _ in range(REPEAT + 1):  # round 0 warms up (page caches, first calls), dropped
            view, model, opened = _open_folder(app, store, folder)
            assert model.rowCount() == size
            read, painted = _sorted(app, view, model, select=True)
            unselected, _ = _sorted(app, view, model, select=False)
            view.close()
            bare_sort = median_time(lambda: bare_db.execute(sql, (folder,)).fetchall(), 3)
            rounds.append((opened, _bare_paint(app), read, bare_sort, painted, unselected))
    finally:
        bare_db.close()
        store.close()
    med = [statistics.median(column) for column in zip(*rounds[1:], strict=True)]
    paint, base, sort, sort_base, painted, unselected = med
    common = {"messages": MILLION, "folder_messages": size}
    return [
        figure(
            BENCH,
            "first_paint_million",
            value=paint,
            unit="s",
            baseline=base,
            ratio=paint / base,
            target=3.0,
            **common,
        ),
        figure(
            BENCH,
            "sort_million",
            value=sort,
            unit="s",
            baseline=sort_base,
            ratio=sort / sort_base,
            target=5.0,
            painted_s=round(painted, 4),
            no_selection_s=round(unselected, 4),
            **common,
        ),
    ]


def _measure_gaps(app: QApplication, until: Any, timeout_s: float) -> float:
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    deadline = time.perf_counter() + timeout_s
    loop = QEventLoop()
    check = QTimer()
    check.setInterval(5)
    check.timeout.connect(
        lambda: loop.quit() if until() or time.perf_counter() > deadline else None
    )
    check.start()
    loop.exec()  # the real event loop: what a user's window runs
    check.stop()
    timer.stop()
    if not until():
        raise RuntimeError("timed out")
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    return max(gaps) * 1000 if gaps else 0.0


def max_stall(app: QApplication, contacts: int, messages: int) -> dict[str, Any]:
    from bench._harness import emulator_process
    from bench.addressbook_sync import _seed
    from core.config.local_options import LocalOptions
    from core.crm import BasicAuth, CrmClient
    from core.domain import demo_data
    from core.domain.model import Address
    from core.mail.demo import create_demo_mailbox
    from core.mail.maildir import MaildirBackend
    from core.workspace.facade import Workspace
    from desktop.app import tune_gc, tune_gil
    from desktop.mainwindow import MainWindow
    from desktop.workers import Workers

    with tempfile.TemporaryDirectory(prefix="trackbox-bench-sync-") as tmp:
        root = Path(tmp)
        _seed(root / "crm.sqlite", contacts)
        mailbox = create_demo_mailbox(root / "mailbox", messages=messages)
        with emulator_process(root / "crm.sqlite") as url:
            me = demo_data.ME
            ws = Workspace(
                store_path=root / "store.sqlite",
                open_mailbox=lambda: MaildirBackend(mailbox),
                crm=CrmClient(url, BasicAuth(me.email, demo_data.DEMO_PASSWORD)),
                owner=Address(me.email, me.full_name),
                mailbox_name=me.email,
            )
            ws.save_local_options(LocalOptions(contacts_scope="all"))
            workers = Workers()
            window = MainWindow(workers)
            window.show()
            app.processEvents()
            tune_gc()  # as the app does after start-up
            tune_gil()
            idle_end = time.perf_counter() + 2.0
            idle = _measure_gaps(app, lambda: time.perf_counter() > idle_end, 10)
            done: list[Any] = []
            # The end: the cycle reported and the refreshed Inbox shows its first message.
            window.mail_synced.connect(lambda: done.append("synced"))
            window.message_shown.connect(lambda _r: done.append("shown") if done else None)
            started = time.perf_counter()
            window.set_workspace(ws)
            stall = _measure_gaps(app, lambda: "shown" in done, 900)
            seconds = time.perf_counter() - started
            cached = ws.address_book().count()
            listed = window.message_model.rowCount()
            window.detach_workspace()
            workers.wait()
            window.close()
            ws.close()
    return figure(
        BENCH,
        "max_stall",
        value=stall,
        unit="ms",
        baseline=STALL_BUDGET_MS,
        ratio=stall / STALL_BUDGET_MS,
        target=1.0,
        idle_stall_ms=round(idle, 1),
        sync_seconds=round(seconds, 1),
        messages=messages,
        contacts=contacts,
        cached_records=cached,
        inbox_rows=listed,
    )


def run(size: int | None = None) -> list[dict[str, Any]]:
    """``size``: messages in the opened folder (first_paint); max_stall scales with it
    (size/10 messages, size contacts)."""
    app = QApplication.instance() or QApplication([])
    n = size or DEFAULT_SIZE
    figures = [first_paint(app, n)]
    if size is None:  # the million-message figures need the sizes
        figures.extend(million(app))
    scale = n / DEFAULT_SIZE
    figures.append(
        max_stall(
            app,
            contacts=max(100, int(SYNC_CONTACTS * scale)),
            messages=max(100, int(SYNC_MESSAGES * scale)),
        )
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None)
    print_figures(run(parser.parse_args().size))
