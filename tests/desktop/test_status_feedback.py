"""The status bar says what happened (issue 17), in the real window over the demo workspace
(the CRM emulator, a real Maildir): "Tracked 2 messages", "1 queued: the CRM is offline"
with the connection label agreeing, "Retry now" while the CRM is away saying why nothing
happened, View in CRM without a browser, Untrack only for tracked mail."""

from __future__ import annotations

from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox

from core.domain.model import TrackState
from core.workspace.feedback import sync_done
from desktop.messages import Column
from desktop.queueview import QueueView
from desktop.roles import TrackStateRole


def _rows_in(window, wanted: set[TrackState], n: int) -> list[int]:
    model = window.message_model
    rows = [
        r
        for r in range(model.rowCount())
        if model.data(model.index(r, Column.STATE), TrackStateRole) in wanted
    ]
    assert len(rows) >= n, (wanted, rows)
    return rows[:n]


def _messages(window) -> list[str]:
    """Every status message from now on (a sync finishing may replace one at any time)."""
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    return said


def test_track_says_how_many_were_tracked(qtbot, window) -> None:
    said = _messages(window)
    window.select_rows(_rows_in(window, {TrackState.NOT_TRACKED}, 2))
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        window.window_actions.track.trigger()
    assert done.args[0].errors == ()
    assert "Tracked 2 messages" in said


def test_crm_away_track_queues_and_retry_says_why(qtbot, window, demo) -> None:
    said = _messages(window)
    demo.server.stop()  # the CRM is gone for real: connections are refused
    window.select_rows(_rows_in(window, {TrackState.NOT_TRACKED}, 1))
    with qtbot.waitSignal(window.tracking_done, timeout=60_000):
        window.window_actions.track.trigger()
    assert "1 queued: the CRM is offline" in said
    assert not window.workspace.online
    # the connection label agrees: never Online beside "queued: the CRM is offline"
    qtbot.waitUntil(lambda: "Offline" in window.status_connection.text(), timeout=10_000)

    window.window_actions.queue.trigger()
    view = window.findChild(QueueView, "QueueView")
    qtbot.waitUntil(lambda: view.model.rowCount() >= 1, timeout=10_000)
    waiting = view.model.rowCount()
    view.table.selectRow(0)
    view.retry_button.click()
    want = "The CRM is offline: " + (
        "1 operation waits; it is sent when it is back"
        if waiting == 1
        else f"{waiting} operations wait; they are sent when it is back"
    )
    qtbot.waitUntil(lambda: view.status.text() == want, timeout=60_000)
    view.close()


def test_sync_never_says_synchronised_while_offline(qtbot, window) -> None:
    with qtbot.waitSignal(window.online_changed, timeout=30_000):
        window.window_actions.work_offline.setChecked(True)
    said = _messages(window)
    with qtbot.waitSignal(window.mail_synced, timeout=60_000):
        window.sync_now()
    assert "Offline" in window.status_connection.text()
    assert not any(m.startswith("Synchronised") for m in said), said
    assert sync_done(crm_online=False, work_offline=True) in said


def test_view_in_crm_without_a_browser_offers_the_link(qtbot, window, monkeypatch) -> None:
    said = _messages(window)
    (row,) = _rows_in(window, {TrackState.TRACKED}, 1)
    window.select_rows([row])
    qtbot.waitUntil(lambda: window.window_actions.view_in_crm.isEnabled(), timeout=10_000)
    url = window.mail_view.shown_view().activity_url
    opened: list[str] = []
    monkeypatch.setattr(
        QDesktopServices, "openUrl", lambda u: opened.append(u.toString()) is not None
    )
    window.window_actions.view_in_crm.trigger()
    assert opened == [url]
    assert any("No web browser opened" in m for m in said)
    box = window.verbs.link_box
    assert box is not None and box.isVisible() and url in box.informativeText()
    copy = next(b for b in box.buttons() if b.text() == "Copy link")
    copy.click()
    assert QGuiApplication.clipboard().text() == url
    assert any("clipboard" in m for m in said)


def test_a_browser_that_opens_says_nothing(qtbot, window, monkeypatch) -> None:
    (row,) = _rows_in(window, {TrackState.TRACKED}, 1)
    window.select_rows([row])
    qtbot.waitUntil(lambda: window.window_actions.view_in_crm.isEnabled(), timeout=10_000)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda _u: True)
    window.window_actions.view_in_crm.trigger()
    assert window.verbs.link_box is None


def test_untrack_only_for_tracked_mail(qtbot, window, monkeypatch) -> None:
    said = _messages(window)
    a = window.window_actions
    window.select_rows(_rows_in(window, {TrackState.NOT_TRACKED}, 2))
    qtbot.waitUntil(lambda: a.track.isEnabled(), timeout=10_000)
    assert not a.untrack.isEnabled()
    window.select_rows(_rows_in(window, {TrackState.TRACKED}, 1))
    qtbot.waitUntil(lambda: a.untrack.isEnabled(), timeout=10_000)
    asked: list[int] = []

    def answer(*args, **_kw):  # the confirmation's default is Cancel
        asked.append(args[-1])
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    with qtbot.waitSignal(window.tracking_done, timeout=30_000):
        a.untrack.trigger()
    assert asked == [QMessageBox.StandardButton.Cancel]
    assert "Untracked 1 message" in said
