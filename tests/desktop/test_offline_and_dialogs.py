"""Work offline → act → go online: the queue drains and the icons update; the queue view
(retry/discard); options round trip; compose notice and sending; address book dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QMessageBox

from core.domain.model import TrackState
from desktop.addressbook import AddressBookDialog
from desktop.compose import ComposeWindow
from desktop.messages import Column
from desktop.options import OptionsDialog
from desktop.queueview import QueueView
from desktop.roles import MessageIdRole, TrackStateRole
from tests.plugins.crm import crm_emails_with

FATAL = QAbstractItemModelTester.FailureReportingMode.Fatal


def states(window, rows):
    model = window.message_model
    return [model.data(model.index(r, Column.STATE), TrackStateRole) for r in rows]


def untracked_rows(window, n):
    rows = [
        r
        for r in range(window.message_model.rowCount())
        if states(window, [r])[0] == TrackState.NOT_TRACKED
    ]
    return rows[:n]


def go_offline(qtbot, window, offline: bool) -> None:
    with qtbot.waitSignal(window.online_changed, timeout=30_000):
        window.window_actions.work_offline.setChecked(offline)


def test_offline_then_online_drains_the_queue(qtbot, window, demo) -> None:
    go_offline(qtbot, window, True)
    assert "Offline" in window.status_connection.text()
    rows = untracked_rows(window, 3)
    window.select_rows(rows)
    with qtbot.waitSignal(window.tracking_done, timeout=10_000) as done:
        window.window_actions.track.trigger()
    assert done.args[0].errors == ()
    qtbot.waitUntil(
        lambda: (
            window.status.queue.isVisible() and window.status.queue.text().startswith("3 queued")
        ),
        timeout=10_000,
    )
    assert states(window, rows) == [TrackState.PENDING] * 3
    model = window.message_model
    ids = [model.data(model.index(r, Column.STATE), MessageIdRole) for r in rows]
    assert all(crm_emails_with(demo, m) == [] for m in ids), "offline: nothing reached the CRM"

    # The queue view lists them; discard one (it goes back to not tracked).
    window.status.queue.click()
    view = window.findChild(QueueView, "QueueView")
    QAbstractItemModelTester(view.model, FATAL)
    qtbot.waitUntil(lambda: view.model.rowCount() == 3, timeout=10_000)
    assert {view.model.operation(r).kind for r in range(3)} == {"promote"}
    view.table.selectRow(0)
    with qtbot.waitSignal(window.queue_updated, timeout=10_000, check_params_cb=lambda n: n == 2):
        view.discard_button.click()
    qtbot.waitUntil(lambda: view.model.rowCount() == 2, timeout=10_000)
    view.close()

    with qtbot.waitSignal(window.queue_updated, timeout=30_000, check_params_cb=lambda n: n == 0):
        go_offline(qtbot, window, False)
    assert "Online" in window.status_connection.text()
    qtbot.waitUntil(
        lambda: (
            sorted(states(window, rows), key=str)
            == sorted([TrackState.TRACKED, TrackState.TRACKED, TrackState.NOT_TRACKED], key=str)
        ),
        timeout=10_000,
    )
    assert not window.status.queue.isVisible()
    assert sorted(len(crm_emails_with(demo, m)) for m in ids) == [0, 1, 1]  # exactly once


def test_options_round_trip(qtbot, window) -> None:
    window.window_actions.options.trigger()
    dialog = window.findChild(OptionsDialog, "OptionsDialog")
    qtbot.waitUntil(lambda: dialog.save_button.isEnabled(), timeout=10_000)
    assert dialog.tabs.count() == 5
    dialog.findChild(type(dialog.track_replies), "trackReplies")
    dialog.incoming.button(0).setChecked(True)  # all e-mail messages
    dialog.track_replies.setChecked(True)
    dialog.interval.setValue(30)
    dialog.colour_tracked.setChecked(False)
    dialog.show_banner.setChecked(False)
    dialog.contacts_scope.setCurrentIndex(1)
    with qtbot.waitSignal(dialog.saved, timeout=10_000):
        dialog.save_button.click()
    assert window.sync.timer.interval() == 30 * 60_000
    assert window.message_model.colour_tracked is False
    assert not window.reading_pane.banner.isVisible()

    window.window_actions.options.trigger()
    again = [d for d in window.findChildren(OptionsDialog) if d is not dialog][-1]
    qtbot.waitUntil(lambda: again.save_button.isEnabled(), timeout=10_000)
    assert again.incoming.checkedId() == 0
    assert again.track_replies.isChecked()
    assert again.interval.value() == 30
    assert not again.colour_tracked.isChecked() and not again.show_banner.isChecked()
    assert again.contacts_scope.currentData() == "all"
    assert again.accounts.crm_password.isReadOnly()  # the demo has no profile: nothing to store
    again.reject()


def test_compose_shows_the_tracking_notice_and_sends(qtbot, window, monkeypatch, tmp_path) -> None:
    window.window_actions.new_mail.trigger()
    compose = window.findChild(ComposeWindow, "ComposeWindow") or window.dialogs.opened["compose"]
    qtbot.addWidget(compose)
    qtbot.waitUntil(lambda: compose.decision is not None, timeout=10_000)
    compose.to.setText("jane.doe@fabrikam.example")
    compose.subject.setText("Quarterly numbers")
    compose.body.setPlainText("Hello Jane")
    with qtbot.waitSignal(compose.decided, timeout=10_000):
        compose.track.setChecked(True)
    qtbot.waitUntil(lambda: compose.notice.isVisible(), timeout=10_000)
    assert "will be tracked in the CRM" in compose.notice.text()
    with qtbot.waitSignal(compose.decided, timeout=10_000):
        compose.track.setChecked(False)
    qtbot.waitUntil(lambda: not compose.notice.isVisible(), timeout=10_000)

    # Address completion from the cached address books.
    compose.cc.setFocus()
    with qtbot.waitSignal(compose.cc.completer_helper.suggestions_ready, timeout=10_000) as s:
        qtbot.keyClicks(compose.cc, "olivia")
    assert any("olivia.brooks@northwind.example" in x for x in s.args[0])
    compose.cc.completer_helper.insert(s.args[0][0])
    assert compose.cc.text().startswith("Olivia Brooks <olivia.brooks@northwind.example>;")

    # An attachment, read on a worker.
    attached = tmp_path / "quote.pdf"
    attached.write_bytes(b"%PDF-1.4 quote")
    compose.attach_files([str(attached)])
    qtbot.waitUntil(lambda: compose.attachment_list.isVisible(), timeout=10_000)
    (attachment,) = compose.draft().attachments
    assert (attachment.filename, attachment.content) == ("quote.pdf", b"%PDF-1.4 quote")
    assert "quote.pdf" in compose.attachment_list.text()

    asked = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes
    )
    with qtbot.waitSignal(compose.decided, timeout=10_000):
        compose.track.setChecked(True)
    with qtbot.waitSignal(compose.sent, timeout=30_000) as sent:
        compose.send_button.click()
    assert asked, "warned before sending a tracked message"
    assert sent.args[0].errors == ()


def test_reply_prefills_from_the_message(qtbot, window) -> None:
    window.select_rows([0])
    qtbot.waitUntil(lambda: window.reading_pane.view is not None, timeout=10_000)
    view = window.reading_pane.view
    window.window_actions.reply_all.trigger()
    compose = window.dialogs.opened["compose"]
    qtbot.addWidget(compose)
    assert compose.subject.text().upper().startswith("RE:")
    assert view.header.sender.email in compose.to.text()
    assert compose.in_reply_to == view.row_id
    assert window.workspace.owner.email not in compose.to.text() + compose.cc.text()
    compose.close()


def test_address_book_browse_and_search(qtbot, window) -> None:
    window.window_actions.address_book.trigger()
    dialog = window.findChild(AddressBookDialog, "AddressBookDialog")
    QAbstractItemModelTester(dialog.model, FATAL)
    qtbot.waitUntil(lambda: dialog.model.rowCount() > 5, timeout=10_000)
    with qtbot.waitSignal(dialog.results_changed, timeout=10_000):
        qtbot.keyClicks(dialog.search, "fabrikam")
    qtbot.waitUntil(
        lambda: dialog.search.text() == "fabrikam" and 0 < dialog.model.rowCount() < 10,
        timeout=10_000,
    )
    names = {dialog.model.index(r, 0).data() for r in range(dialog.model.rowCount())}
    assert {"Fabrikam Inc.", "Jane Doe"} <= names
    with qtbot.waitSignal(dialog.results_changed, timeout=10_000):
        dialog.kind.setCurrentIndex(dialog.kind.findData("account"))
    names = {dialog.model.index(r, 0).data() for r in range(dialog.model.rowCount())}
    assert names == {"Fabrikam Inc."}
    dialog.table.setFocus()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_a_refused_operation_needs_attention_retry_then_discard(qtbot, window) -> None:
    from core.domain.model import RecordRef
    from desktop.folders import CRM_VIEWS

    ws = window.workspace
    window.select_rows([0])
    with qtbot.waitSignal(window.tracking_done, timeout=30_000):
        window.window_actions.track.trigger()
    (row_id,) = window.selected_row_ids()
    ghost = RecordRef("account", "00000000-0000-0000-0000-000000000001", "Ghost")
    changes = ws.set_regarding([row_id], ghost)  # the CRM refuses: no such account
    assert changes.errors
    with qtbot.waitSignal(window.queue_updated, timeout=10_000):
        window.bus.publish(changes)
    qtbot.waitUntil(lambda: "1 need attention" in window.status.queue.text(), timeout=10_000)
    assert states(window, [0]) == [TrackState.FAILED]

    # The "Needs attention" view lists it.
    crm = window.folder_model.index(1, 0)
    label = CRM_VIEWS[1][0]
    view_index = next(
        window.folder_model.index(r, 0, crm)
        for r in range(window.folder_model.rowCount(crm))
        if window.folder_model.index(r, 0, crm).data().startswith(label)
    )
    qtbot.waitUntil(lambda: view_index.data() == f"{label} (1)", timeout=10_000)
    window.folder_tree.setCurrentIndex(view_index)
    assert window.message_model.rowCount() == 1

    window.status.queue.click()
    view = window.findChild(QueueView, "QueueView")
    qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=10_000)
    assert view.model.index(0, 2).data().startswith("Stopped")
    assert "Does Not Exist" in view.model.index(0, 4).data()
    with qtbot.waitSignal(view.changed, timeout=30_000) as retried:
        view.retry_button.click()
    assert retried.args[0].errors  # refused again, still parked
    qtbot.waitUntil(
        lambda: view.model.rowCount() == 1 and view.model.operation(0).attempts == 2, timeout=10_000
    )
    with qtbot.waitSignal(window.queue_updated, timeout=10_000, check_params_cb=lambda n: n == 0):
        view.discard_button.click()
    assert not window.status.queue.isVisible()
