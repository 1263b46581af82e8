"""GUI operations (``desktop.ops``): a query's typed result reaches its success callback on the
GUI thread; a change's notice goes out on the bus before its success callback, never after a
failure, and even when the dialog that started it is gone. The views refresh from the notice
alone: the window does not call them."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QDialog

from core.domain.changes import Changes
from core.domain.model import TrackState
from core.domain.problems import Problem, SyncProblem
from core.sync.report import SyncReport
from desktop.ops import ChangeBus, Op, QueryOp
from desktop.syncing import sync_changes
from desktop.workers import Workers

BOOM = SyncProblem(Problem.STEP_FAILED, "mail", "RuntimeError: boom")


def test_query_op_delivers_its_result_on_the_gui_thread(qtbot) -> None:
    workers = Workers()
    seen: list[tuple[int, bool]] = []
    gui = threading.get_ident()
    worker: list[int] = []

    def read() -> int:
        worker.append(threading.get_ident())
        return 42

    QueryOp(read, lambda n: seen.append((n, threading.get_ident() == gui))).run_in_background(
        workers
    )
    qtbot.waitUntil(lambda: bool(seen), timeout=5_000)
    assert seen == [(42, True)] and worker != [gui]
    workers.wait()


def test_op_publishes_its_changes_before_success(qtbot) -> None:
    workers, bus = Workers(), ChangeBus()
    order: list[str] = []
    bus.changes_applied.connect(lambda c: order.append(f"notice {sorted(c.row_ids)}"))
    done = Changes(messages=True, row_ids=frozenset({7}))
    Op(lambda: done, bus).success(lambda c: order.append("success")).run_in_background(workers)
    qtbot.waitUntil(lambda: "success" in order, timeout=5_000)
    assert order == ["notice [7]", "success"]
    workers.wait()


def test_op_with_another_result_says_where_its_changes_are(qtbot) -> None:
    from datetime import datetime

    workers, bus = Workers(), ChangeBus()
    notices: list[Changes] = []
    reports: list[SyncReport] = []
    bus.changes_applied.connect(notices.append)
    now = datetime.now()
    report = SyncReport(ok=False, online=True, started=now, finished=now, errors=(BOOM,))
    Op(lambda: report, bus, changes=sync_changes).success(reports.append).run_in_background(workers)
    qtbot.waitUntil(lambda: bool(reports), timeout=5_000)
    assert reports == [report]
    (notice,) = notices
    assert notice.folders and notice.messages and notice.errors == (BOOM,)
    workers.wait()


def test_a_failed_op_publishes_nothing(qtbot) -> None:
    workers, bus = Workers(), ChangeBus()
    notices: list[Changes] = []
    failures: list[BaseException] = []
    bus.changes_applied.connect(notices.append)

    def boom() -> Changes:
        raise OSError("disk full")

    Op(boom, bus).success(lambda _c: None).failure(failures.append).run_in_background(workers)
    qtbot.waitUntil(lambda: bool(failures), timeout=5_000)
    assert isinstance(failures[0], OSError) and notices == []
    workers.wait()


def test_the_notice_goes_out_even_when_the_owner_is_gone(qtbot) -> None:
    workers, bus = Workers(), ChangeBus()
    notices: list[Changes] = []
    successes: list[Changes] = []
    bus.changes_applied.connect(notices.append)
    dialog = QDialog()
    release = threading.Event()

    def slow() -> Changes:
        release.wait(5)
        return Changes(queue=True)

    Op(slow, bus, owner=dialog).success(successes.append).run_in_background(workers)
    dialog.deleteLater()
    qtbot.waitUntil(lambda: not _alive(dialog), timeout=5_000)
    release.set()
    qtbot.waitUntil(lambda: bool(notices), timeout=5_000)
    assert notices == [Changes(queue=True)] and successes == []
    workers.wait()


def _alive(obj: QDialog) -> bool:
    import shiboken6

    return shiboken6.isValid(obj)


def test_views_refresh_from_a_notice_alone(qtbot, window) -> None:
    """A change made behind the window's back (as another verb or a sync would) shows once
    its notice is published: the list's state, the reading pane, the CRM views' counts and
    the queue count each refresh themselves."""
    (rid,) = window.selected_row_ids()
    ws = window.workspace
    ws.set_work_offline(True)  # queued, not replayed: the queue count shows it
    changes = ws.enqueue_track([rid])
    assert window.message_model.states_of([rid]) != {rid: TrackState.PENDING}
    with qtbot.waitSignal(window.queue_updated, timeout=10_000, check_params_cb=lambda n: n == 1):
        window.bus.publish(changes)
    assert window.message_model.states_of([rid]) == {rid: TrackState.PENDING}  # at once
    assert window.status.queue.text().startswith("1 queued")
    qtbot.waitUntil(
        lambda: "Tracking pending" in window.reading_pane.banner.text.text(), timeout=10_000
    )
    crm = window.folder_model.index(1, 0)

    def labels() -> list[str]:
        model = window.folder_model
        return [model.index(r, 0, crm).data() for r in range(model.rowCount(crm))]

    qtbot.waitUntil(lambda: "Pending (queued) (1)" in labels(), timeout=10_000)
