"""The mail actions in the window (issue 17), on the demo workspace (the CRM emulator and a
real Maildir mailbox): mark read on open and by Ctrl+Q / Ctrl+U with the folder's unread
count following at once, flag, delete and undo, Shift+Delete asking, Move to folder… through
the chooser, drag and drop onto the folder tree (Ctrl: copy), archive, and the To / Folder
columns. Each change is checked in the store and on the mailbox itself."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox

from core.domain.model import FolderRole, TrackState
from core.mail.base import FLAGGED_KEYWORD
from desktop.folders import view_states
from desktop.messages import Column
from desktop.roles import FolderPathRole, RowIdRole
from tests.mail.helpers import Replica


def _row_id(window, row: int) -> int:
    model = window.message_model
    return int(model.data(model.index(row, Column.SUBJECT), RowIdRole))


def _server(demo, folder: str) -> dict[str, tuple[bool, tuple[str, ...]]]:
    rep = Replica()
    with demo.workspace.open_mailbox() as b:
        rep.sync(b, folder)
    return {h.message_id: (h.is_read, h.keywords) for h in rep.headers.values()}


def _unread_label(window, path: str) -> str:
    index = window.folder_model.index_of_path(path)
    assert index is not None
    return str(index.data())


def _folder(window, role: FolderRole) -> str:
    return next(f.path for f in window.workspace.store().folders() if f.role is role)


def _all_indexes(model, parent=None):  # type: ignore[no-untyped-def]
    parent = parent or QModelIndex()
    for r in range(model.rowCount(parent)):
        index = model.index(r, 0, parent)
        yield index
        yield from _all_indexes(model, index)


def _open(qtbot, window, path: str) -> None:
    index = window.folder_model.index_of_path(path)
    window.folder_tree.setCurrentIndex(index)
    qtbot.waitUntil(lambda: window.mail_view.model.source is not None, timeout=10_000)


def test_outlook_shortcuts(window) -> None:
    a = window.window_actions
    keys = {
        a.mark_read: "Ctrl+Q",
        a.mark_unread: "Ctrl+U",
        a.move: "Ctrl+Shift+V",
        a.delete: "Del",
        a.delete_permanently: "Shift+Del",
        a.undo: "Ctrl+Z",
    }
    for action, key in keys.items():
        assert action.shortcut() == QKeySequence(key), action.objectName()
    assert a.view_in_crm.shortcut() != QKeySequence("Ctrl+Shift+V")
    assert a.quit.shortcut().isEmpty()


def test_open_marks_read_and_ctrl_u_ctrl_q_toggle_with_the_unread_count(
    qtbot, window, demo
) -> None:
    store = window.workspace.store()
    shown = window.mail_view.shown_row()
    assert shown is not None
    mid, box = store.message(shown).header.message_id, store.message(shown).header.ref.folder
    qtbot.waitUntil(lambda: store.message(shown).header.is_read, timeout=10_000)
    qtbot.waitUntil(lambda: _server(demo, box)[mid][0], timeout=10_000)  # on the mailbox

    before = store.folder_counts()[box][1]
    window.window_actions.mark_unread.trigger()
    qtbot.waitUntil(lambda: not store.message(shown).header.is_read, timeout=10_000)
    qtbot.waitUntil(lambda: f"({before + 1})" in _unread_label(window, box), timeout=10_000)
    model = window.message_model
    row = window.mail_view.selected_rows()[0]
    qtbot.waitUntil(
        lambda: model.index(row, Column.SUBJECT).data(Qt.ItemDataRole.FontRole) is not None
    )
    qtbot.waitUntil(lambda: not _server(demo, box)[mid][0], timeout=10_000)
    window.window_actions.mark_read.trigger()
    qtbot.waitUntil(lambda: f"({before})" in _unread_label(window, box), timeout=10_000)
    assert store.folder_counts()[box][1] == before
    qtbot.waitUntil(lambda: _server(demo, box)[mid][0], timeout=10_000)


def test_flag_delete_and_undo(qtbot, window, demo) -> None:
    store = window.workspace.store()
    window.select_rows([2])
    rid = _row_id(window, 2)
    mid = store.message(rid).header.message_id
    window.window_actions.flag.trigger()
    qtbot.waitUntil(lambda: FLAGGED_KEYWORD in store.message(rid).header.keywords, timeout=10_000)
    qtbot.waitUntil(lambda: FLAGGED_KEYWORD in _server(demo, "Inbox")[mid][1], timeout=10_000)

    trash = _folder(window, FolderRole.DELETED)
    window.select_rows([2])
    assert _row_id(window, 2) == rid
    window.window_actions.delete.trigger()
    qtbot.waitUntil(lambda: store.message(rid).header.ref.folder == trash, timeout=10_000)
    qtbot.waitUntil(lambda: mid in _server(demo, trash), timeout=10_000)
    qtbot.waitUntil(lambda: "Delete" in window.window_actions.undo.text(), timeout=10_000)
    assert window.window_actions.undo.isEnabled()
    window.window_actions.undo.trigger()
    qtbot.waitUntil(lambda: store.message(rid).header.ref.folder == "Inbox", timeout=10_000)
    qtbot.waitUntil(lambda: mid in _server(demo, "Inbox"), timeout=10_000)
    assert mid not in _server(demo, trash)
    window.window_actions.undo.trigger()  # the flag, next on the stack
    qtbot.waitUntil(lambda: FLAGGED_KEYWORD not in _server(demo, "Inbox")[mid][1], timeout=10_000)
    assert not window.window_actions.undo.isEnabled()


def test_shift_delete_asks_then_deletes_for_good(qtbot, window, demo, monkeypatch) -> None:
    store = window.workspace.store()
    window.select_rows([3])
    rid = _row_id(window, 3)
    mid = store.message(rid).header.message_id
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "exec", lambda _box: answers.pop(0))
    window.window_actions.delete_permanently.trigger()  # cancelled: nothing happens
    window.workers.wait()
    assert store.message(rid) is not None
    window.window_actions.delete_permanently.trigger()
    qtbot.waitUntil(lambda: store.message(rid) is None, timeout=10_000)
    qtbot.waitUntil(lambda: mid not in _server(demo, "Inbox"), timeout=10_000)
    assert all(mid not in _server(demo, f.path) for f in store.folders())
    assert not window.window_actions.undo.isEnabled()  # for good: nothing to undo


def test_move_through_the_chooser_and_drag_copy_to_the_tree(qtbot, window, demo) -> None:
    store = window.workspace.store()
    target = next(f.path for f in store.folders() if f.role is None)
    window.select_rows([4])
    rid = _row_id(window, 4)
    mid = store.message(rid).header.message_id
    window.window_actions.move.trigger()
    qtbot.waitUntil(lambda: window.mail_verbs.chooser is not None, timeout=10_000)
    chooser = window.mail_verbs.chooser
    chooser.filter.setText(target.split("/")[-1])
    chooser.select(target)
    chooser.accept()
    qtbot.waitUntil(lambda: store.message(rid).header.ref.folder == target, timeout=10_000)
    qtbot.waitUntil(lambda: mid in _server(demo, target), timeout=10_000)
    assert not store.message(rid).header.ref.uid.startswith("pending:")

    # Ctrl-drag a row onto the Archive folder: copied (the original stays).
    archive = "Archive"
    if window.folder_model.index_of_path(archive) is None:
        archive = target
    rid2 = _row_id(window, 5)
    mid2 = store.message(rid2).header.message_id
    model = window.message_model
    data = model.mimeData([model.index(5, Column.SUBJECT)])
    drop_on = window.folder_model.index_of_path(archive)
    assert drop_on.data(FolderPathRole) == archive
    window.folder_model.dropMimeData(data, Qt.DropAction.CopyAction, -1, -1, drop_on)
    qtbot.waitUntil(
        lambda: (
            {r.header.ref.folder for r in store.messages_by_message_id(mid2)} == {"Inbox", archive}
        ),
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: mid2 in _server(demo, archive), timeout=10_000)
    assert mid2 in _server(demo, "Inbox")
    assert store.message(rid2).header.ref.folder == "Inbox"


def test_archive_keeps_tracking(qtbot, window, demo) -> None:
    store = window.workspace.store()
    tracked = next(r for r in store.tracking.messages_in_state(TrackState.TRACKED, 0, 50))
    mid, activity = tracked.header.message_id, tracked.activity_id
    window.mail_verbs.drop(
        [tracked.id], "Inbox", False
    ) if tracked.header.ref.folder != "Inbox" else None
    window.workers.wait()
    qtbot.waitUntil(lambda: store.message(tracked.id).header.ref.folder == "Inbox", timeout=10_000)
    window.mail_verbs._run(lambda ws, ids: ws.archive_mail(ids), "Archived", [tracked.id])
    qtbot.waitUntil(
        lambda: store.message(tracked.id).header.ref.folder == "Archive", timeout=10_000
    )
    qtbot.waitUntil(lambda: mid in _server(demo, "Archive"), timeout=10_000)
    row = store.message(tracked.id)
    assert (row.track_state, row.activity_id) == (TrackState.TRACKED, activity)
    window.workspace.sync_mail()
    (after,) = store.messages_by_message_id(mid)
    assert (after.header.ref.folder, after.activity_id) == ("Archive", activity)


def test_to_column_in_sent_items_and_folder_column_in_crm_views(qtbot, window) -> None:
    model = window.message_model
    header = lambda col: model.headerData(col, Qt.Orientation.Horizontal)  # noqa: E731
    assert header(Column.FROM) == "From" and header(Column.FOLDER) == ""
    _open(qtbot, window, _folder(window, FolderRole.SENT))
    qtbot.waitUntil(lambda: header(Column.FROM) == "To", timeout=10_000)
    if model.rowCount():
        row = model.row_at(0)
        shown = model.index(0, Column.FROM).data()
        assert shown == ", ".join(a.name or a.email for a in row.header.to)
    tracked_view = next(
        i for i in _all_indexes(window.folder_model) if TrackState.TRACKED in view_states(i)
    )
    window.folder_tree.setCurrentIndex(tracked_view)
    qtbot.waitUntil(lambda: header(Column.FOLDER) == "Folder", timeout=10_000)
    assert header(Column.FROM) == "From"
    qtbot.waitUntil(lambda: model.rowCount() > 0, timeout=10_000)
    assert model.index(0, Column.FOLDER).data() == model.row_at(0).header.ref.folder
