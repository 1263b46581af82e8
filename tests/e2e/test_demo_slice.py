"""The walking skeleton end to end: emulator over real HTTP, demo Maildir mailbox, the main
window; Track a message from the window and find exactly one e-mail activity in the CRM; Untrack
it and find none."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QMessageBox

from core.domain.model import TrackState
from desktop.demo import start_demo
from desktop.mainwindow import MainWindow
from desktop.messages import Column
from desktop.regarding import RegardingPicker
from desktop.roles import MessageIdRole, TrackStateRole
from desktop.workers import Workers
from tests.plugins.crm import crm_emails_with


@pytest.fixture
def demo(tmp_path: Path):
    env = start_demo(tmp_path / "demo", messages=300)
    yield env
    env.close()


def test_track_then_untrack_from_the_main_window(qtbot, demo, monkeypatch) -> None:
    workers = Workers()
    window = MainWindow(workers)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.message_shown, timeout=60_000):
        window.set_workspace(demo.workspace)

    model = window.message_model
    assert model.rowCount() > 10, "the Inbox of the demo mailbox is listed"
    row = 3
    window.message_list.selectionModel().setCurrentIndex(
        model.index(row, Column.SUBJECT),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    message_id = model.data(model.index(row, Column.STATE), MessageIdRole)
    assert message_id and crm_emails_with(demo, message_id) == []
    assert model.data(model.index(row, Column.STATE), TrackStateRole) != TrackState.TRACKED

    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        window.action_track.trigger()
        # shown as pending at once, before the CRM answers
        assert model.data(model.index(row, Column.STATE), TrackStateRole) == TrackState.PENDING
    assert done.args[0].errors == ()
    assert model.data(model.index(row, Column.STATE), TrackStateRole) == TrackState.TRACKED
    emails = crm_emails_with(demo, message_id)
    assert len(emails) == 1, emails
    qtbot.waitUntil(
        lambda: "Tracked in CRM" in window.reading_pane.banner.text.text(), timeout=10_000
    )

    # Tracking again is idempotent: still exactly one activity.
    with qtbot.waitSignal(window.tracking_done, timeout=30_000):
        window.action_track.trigger()
    assert len(crm_emails_with(demo, message_id)) == 1

    # Set Regarding through the picker (keyboard only): the CRM's copy points at the account.
    window.action_set_regarding.trigger()
    picker = window.findChild(RegardingPicker, "RegardingPicker")
    with qtbot.waitSignal(
        picker.results_changed, timeout=10_000, check_params_cb=lambda source: source == "crm"
    ):
        qtbot.keyClicks(picker.edit, "litware")
    hits = picker.model.hits()
    assert hits[0].record.name == "Litware GmbH" and hits[0].record.entity == "account"
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        qtbot.keyClick(picker.edit, Qt.Key.Key_Return)
    assert done.args[0].errors == ()
    (email,) = crm_emails_with(demo, message_id)
    assert email["_regardingobjectid_value"] == hits[0].record.id
    qtbot.waitUntil(
        lambda: model.data(model.index(row, Column.REGARDING)) == "Litware GmbH", timeout=10_000
    )
    qtbot.waitUntil(
        lambda: "Litware GmbH" in window.reading_pane.banner.text.text(), timeout=10_000
    )

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.tracking_done, timeout=30_000) as done:
        window.action_untrack.trigger()
    assert done.args[0].errors == ()
    assert model.data(model.index(row, Column.STATE), TrackStateRole) == TrackState.NOT_TRACKED
    assert crm_emails_with(demo, message_id) == []
    workers.wait()
