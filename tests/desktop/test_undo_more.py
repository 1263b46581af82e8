"""Undo (Ctrl+Z) for Copy and for Mark read / unread (issue 17), in the real window over the
demo workspace (a real Maildir mailbox): undoing a copy deletes the copy, in the store and on
the mailbox; undoing a mark read gives each message back the state it had."""

from __future__ import annotations

from core.domain.model import FolderRole
from desktop.messages import Column
from desktop.roles import RowIdRole
from tests.mail.helpers import Replica


def _row_id(window, row: int) -> int:
    model = window.message_model
    return int(model.data(model.index(row, Column.SUBJECT), RowIdRole))


def _server(demo, folder: str) -> dict[str, bool]:
    rep = Replica()
    with demo.workspace.open_mailbox() as b:
        rep.sync(b, folder)
    return {h.message_id: h.is_read for h in rep.headers.values()}


def _messages(window) -> list[str]:
    """Every status message from now on (a sync finishing may replace one at any time)."""
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    return said


def test_undo_copy_deletes_the_copy(qtbot, window, demo) -> None:
    said = _messages(window)
    store = window.workspace.store()
    target = next(f.path for f in store.folders() if f.role is None)
    rid = _row_id(window, 4)
    mid = store.message(rid).header.message_id
    assert mid not in _server(demo, target)
    window.mail_verbs.drop([rid], target, True)
    qtbot.waitUntil(lambda: mid in _server(demo, target), timeout=10_000)
    # the mailbox may show the copy before the window hears the verb finished
    qtbot.waitUntil(lambda: f"Copied 1 message to {target}" in said, timeout=10_000)
    a = window.window_actions
    qtbot.waitUntil(lambda: a.undo.text() == "&Undo Copy" and a.undo.isEnabled(), timeout=10_000)

    a.undo.trigger()
    qtbot.waitUntil(
        lambda: [r.header.ref.folder for r in store.messages_by_message_id(mid)] == ["Inbox"],
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: mid not in _server(demo, target), timeout=10_000)
    assert mid in _server(demo, "Inbox")  # the original stays
    assert store.message(rid).header.ref.folder == "Inbox"
    trash = next(f.path for f in store.folders() if f.role is FolderRole.DELETED)
    assert mid not in _server(demo, trash)  # deleted for good, not to Deleted Items
    assert not a.undo.isEnabled()


def test_undo_mark_read_restores_each_message(qtbot, window, demo) -> None:
    said = _messages(window)
    store = window.workspace.store()
    window.mail_verbs._read_timer.stop()
    window.mail_verbs._shown = None
    rows = [5, 6, 7]
    ids = [_row_id(window, r) for r in rows]
    mids = [store.message(i).header.message_id for i in ids]
    # a mix: the first read, the others unread (set through the verbs, then settled)
    window.workspace.mark_read(ids[:1], True)
    window.workspace.mark_read(ids[1:], False)
    window.workspace.replay_mail()
    before = {m: _server(demo, "Inbox")[m] for m in mids}
    assert list(before.values()) == [True, False, False]

    window.select_rows(rows)
    window.mail_verbs._read_timer.stop()
    window.window_actions.mark_read.trigger()
    qtbot.waitUntil(lambda: all(store.message(i).header.is_read for i in ids), timeout=10_000)
    qtbot.waitUntil(lambda: all(_server(demo, "Inbox")[m] for m in mids), timeout=10_000)
    qtbot.waitUntil(lambda: "Marked 2 messages as read" in said, timeout=10_000)
    a = window.window_actions
    qtbot.waitUntil(lambda: a.undo.text() == "&Undo Mark as read", timeout=10_000)

    a.undo.trigger()
    qtbot.waitUntil(
        lambda: [store.message(i).header.is_read for i in ids] == [True, False, False],
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: {m: _server(demo, "Inbox")[m] for m in mids} == before, timeout=10_000)
    qtbot.waitUntil(lambda: "Undone: Mark as read" in said, timeout=10_000)
