"""Menu actions wired by the window (issue 17): "Forward as attachment" opens compose with
the original as a message/rfc822 attachment; "Stop / Resume tracking this conversation" on
the one selected message switches and says which it is; a double-click on a draft reopens it
in compose."""

from __future__ import annotations

from desktop.compose import ComposeWindow
from desktop.mainwindow import MainWindow
from desktop.never_track import RESUME_TEXT, STOP_TEXT


def test_forward_as_attachment_attaches_the_original(qtbot, window: MainWindow) -> None:
    window.select_rows([0])
    qtbot.waitUntil(lambda: window.window_actions.forward_attachment.isEnabled(), timeout=30_000)
    subject = window.reading_pane.subject.text()
    window.window_actions.forward_attachment.trigger()
    compose = window.dialogs.opened["compose"]
    assert isinstance(compose, ComposeWindow)
    qtbot.addWidget(compose)
    qtbot.waitUntil(lambda: bool(compose.attachment_list.attachments()), timeout=30_000)
    (attached,) = compose.attachment_list.attachments()
    assert attached.mimetype == "message/rfc822" and attached.filename.endswith(".eml")
    assert b"Subject:" in attached.content and subject in compose.subject.text()
    compose.hide()


def test_stop_and_resume_tracking_a_conversation(qtbot, window: MainWindow) -> None:
    action = window.conversation_tracking.action
    window.select_rows([1])
    qtbot.waitUntil(lambda: action.isEnabled() and action.text() == STOP_TEXT, timeout=30_000)
    (row_id,) = window.selected_row_ids()
    action.trigger()
    qtbot.waitUntil(lambda: action.text() == RESUME_TEXT, timeout=30_000)
    assert window.workspace.conversation_stopped(row_id)
    action.trigger()
    qtbot.waitUntil(lambda: action.text() == STOP_TEXT, timeout=30_000)
    assert not window.workspace.conversation_stopped(row_id)
