"""Status bar (progress of the running sync, last sync, connection), the interval timer, View
in CRM, and the human wording of core errors."""

from __future__ import annotations

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from core.crm.errors import CrmAuthError, CrmPermanentError, CrmUnavailable
from core.mail.base import MailNotFound
from desktop.errors import describe


def test_sync_now_shows_progress_then_last_sync(qtbot, window) -> None:
    synced = qtbot.waitSignal(window.mail_synced, timeout=60_000)  # connected before the start
    with qtbot.waitSignal(window.sync.progress, timeout=30_000) as step:
        window.window_actions.sync_now.trigger()
    assert step.args[0]  # a step name, e.g. "settings"
    assert window.status.progress.isVisible()
    assert not window.window_actions.sync_now.isEnabled()  # one cycle at a time
    synced.wait()
    assert not window.status.progress.isVisible()
    assert window.status.last_sync.text().startswith("Last sync")
    assert "Online" in window.status_connection.text()
    assert window.window_actions.sync_now.isEnabled()


def test_the_interval_timer_runs_a_cycle(qtbot, window) -> None:
    assert window.sync.timer.isActive()
    assert window.sync.timer.interval() == 15 * 60_000  # the default of the local options
    with qtbot.waitSignal(window.mail_synced, timeout=60_000):
        window.sync.timer.timeout.emit()


def test_view_in_crm_opens_the_activity(qtbot, window, monkeypatch) -> None:
    window.select_rows([0])
    with qtbot.waitSignal(window.tracking_done, timeout=30_000):
        window.window_actions.track.trigger()
    qtbot.waitUntil(lambda: window.window_actions.view_in_crm.isEnabled(), timeout=10_000)
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    window.window_actions.view_in_crm.trigger()
    assert opened and "etn=email" in opened[0].toString()


def test_errors_are_worded_for_people() -> None:
    assert "cannot be reached" in describe(CrmUnavailable("boom", retry_after=30))
    assert "30 s" in describe(CrmUnavailable("boom", retry_after=30))
    assert "Options › Accounts" in describe(CrmAuthError("401"))
    text = describe(CrmPermanentError("Record is read-only", code="0x80040217"))
    assert "Record is read-only" in text and "0x80040217" in text
    assert "no longer on the mail server" in describe(MailNotFound("gone"))
    assert describe(ValueError("x")).startswith("Something went wrong: ValueError")
