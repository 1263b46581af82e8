"""Group by Conversation (issue 17) in the real window over the demo workspace (emulator over
HTTPS, demo Maildir): the toggle, unfolding a conversation, the conversation banner, Track on a
conversation row (checked in the store and in the CRM), the choice remembered per folder, and
the Folder column of all-folders search results."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt

from core.domain.conversations import Coverage, banner_text
from core.domain.model import TrackState
from core.mail.base import FLAGGED_KEYWORD
from desktop.conversation_model import GroupingMemory
from desktop.messages import Column
from desktop.roles import RowIdRole


def group(qtbot, window) -> None:
    action = window.window_actions.group_conversations
    assert action.isEnabled() and not action.isChecked()
    with qtbot.waitSignal(window.mail_view.conversations_shown, timeout=30_000):
        action.trigger()
    assert action.isChecked()
    assert window.message_list.model() is window.mail_view.conversations


def conversation_rows(window, wanted=lambda c: True) -> list[int]:
    model = window.mail_view.conversations
    return [
        r
        for r in range(model.rowCount())
        if (c := model.conversation_at(r)) is not None and c.count > 1 and wanted(c)
    ]


def select(qtbot, window, row: int) -> None:
    with qtbot.waitSignal(window.message_shown, timeout=30_000):
        window.select_rows([row])


def test_toggle_unfold_and_the_conversation_banner(qtbot, window) -> None:
    flat_rows = window.message_model.rowCount()
    group(qtbot, window)
    model = window.mail_view.conversations
    assert 0 < model.rowCount() < flat_rows  # the demo's threads are folded into one row each
    grouped_ids = sorted(rid for r in range(model.rowCount()) for rid in model.row_ids([r]))
    assert grouped_ids == sorted(window.message_model.row_ids(range(flat_rows)))

    row = conversation_rows(window)[0]
    conversation = model.conversation_at(row)
    assert conversation is not None
    select(qtbot, window, row)
    banner = window.reading_pane.banner.text.text()
    assert banner == banner_text(conversation)
    assert banner.startswith(f"Conversation of {conversation.count} messages: ")
    assert window.reading_pane.view.row_id == conversation.row_ids[0]  # the newest is shown
    subject = model.index(row, Column.SUBJECT).data()
    assert subject.startswith("▸ ") and f"({conversation.count} messages" in subject

    # Right unfolds it: one row per message below, newest first; Left folds it again.
    window.message_list.setFocus()
    before = model.rowCount()
    qtbot.keyClick(window.message_list, Qt.Key.Key_Right)
    assert model.rowCount() == before + conversation.count
    children = [
        model.index(row + 1 + i, Column.SUBJECT).data(RowIdRole) for i in range(conversation.count)
    ]
    assert children == list(conversation.row_ids)
    assert model.index(row, Column.SUBJECT).data().startswith("▾ ")
    # A message row: the pane's banner is the message's own again.
    select(qtbot, window, row + 2)
    assert window.reading_pane.view.row_id == conversation.row_ids[1]
    assert not window.reading_pane.banner.text.text().startswith("Conversation of")
    window.select_rows([row])
    qtbot.keyClick(window.message_list, Qt.Key.Key_Left)
    assert model.rowCount() == before

    # Off again: the flat list is back.
    window.window_actions.group_conversations.trigger()
    assert window.message_list.model() is window.message_model
    assert window.message_model.rowCount() == flat_rows


def test_track_on_a_conversation_row_tracks_all_its_mails(qtbot, window) -> None:
    group(qtbot, window)
    model = window.mail_view.conversations
    rows = conversation_rows(window, lambda c: c.coverage != Coverage.TRACKED)
    row = rows[0]
    conversation = model.conversation_at(row)
    assert conversation is not None
    ids = list(conversation.row_ids)
    select(qtbot, window, row)
    assert window.selected_row_ids() == ids  # the conversation row stands for all its mail
    with qtbot.waitSignal(window.tracking_done, timeout=60_000) as done:
        window.window_actions.track.trigger()
    assert done.args[0].errors == ()

    ws = window.workspace
    store = ws.store()
    tracked = [store.message(rid) for rid in ids]
    assert all(r is not None and r.track_state == TrackState.TRACKED for r in tracked)
    for r in tracked:  # the CRM has each of them, as the e-mail with its Message-ID
        email = ws.crm.get("emails", r.activity_id, select=["messageid"])
        assert email["messageid"] == r.header.message_id

    def shows_all_tracked() -> bool:
        at = model.row_of_message(ids[0])
        c = model.conversation_at(at) if at is not None else None
        return c is not None and c.coverage == Coverage.TRACKED

    qtbot.waitUntil(shows_all_tracked, timeout=30_000)
    qtbot.waitUntil(lambda: "all tracked" in window.reading_pane.banner.text.text(), timeout=30_000)


def test_mark_read_on_a_conversation_row_and_flag_a_message_row(qtbot, window) -> None:
    group(qtbot, window)
    model = window.mail_view.conversations
    row = conversation_rows(window)[0]
    conversation = model.conversation_at(row)
    assert conversation is not None
    ids = list(conversation.row_ids)
    select(qtbot, window, row)
    window.window_actions.mark_unread.trigger()
    store = window.workspace.store()
    qtbot.waitUntil(lambda: all(not store.message(r).header.is_read for r in ids), timeout=30_000)

    def unread_shown() -> int:
        at = model.row_of_message(ids[0])
        c = model.conversation_at(at) if at is not None else None
        return c.unread if c is not None else -1

    qtbot.waitUntil(lambda: unread_shown() == len(ids), timeout=30_000)  # the row's count
    assert f"{len(ids)} unread" in model.index(model.row_of_message(ids[0]), Column.SUBJECT).data()
    window.window_actions.mark_read.trigger()
    qtbot.waitUntil(lambda: all(store.message(r).header.is_read for r in ids), timeout=30_000)

    # one message row of it: only that message is flagged
    at = model.row_of_message(ids[0])
    assert at is not None
    model.set_expanded(at, True)
    window.select_rows([at + 2])
    assert window.selected_row_ids() == [ids[1]]
    window.window_actions.flag.trigger()
    qtbot.waitUntil(
        lambda: FLAGGED_KEYWORD in store.message(ids[1]).header.keywords, timeout=30_000
    )
    assert FLAGGED_KEYWORD not in store.message(ids[0]).header.keywords


def test_the_choice_is_remembered_per_folder(qtbot, window) -> None:
    inbox, _ = window.mail_view._scope
    group(qtbot, window)
    action = window.window_actions.group_conversations
    tree, folders = window.folder_tree, window.folder_pane.model
    tree.setCurrentIndex(folders.index_of_path("Sent Items"))
    assert not action.isChecked()
    assert window.message_list.model() is window.message_model
    with qtbot.waitSignal(window.mail_view.conversations_shown, timeout=30_000):
        tree.setCurrentIndex(folders.index_of_path(inbox))
    assert action.isChecked()
    assert window.message_list.model() is window.mail_view.conversations


def test_grouping_memory_outlives_the_settings_object(tmp_path: Path) -> None:
    path = str(tmp_path / "settings.ini")
    first = QSettings(path, QSettings.Format.IniFormat)
    GroupingMemory(first).remember("folder:Inbox/Projects", True)
    first.sync()
    again = GroupingMemory(QSettings(path, QSettings.Format.IniFormat))
    assert again.grouped("folder:Inbox/Projects")
    assert not again.grouped("folder:Inbox")


def test_all_folders_results_show_the_folder_column(qtbot, window) -> None:
    view, bar = window.mail_view, window.mail_view.search_bar
    assert window.message_list.isColumnHidden(Column.FOLDER)
    with qtbot.waitSignal(view.results_shown, timeout=30_000, check_params_cb=lambda r, c: c):
        bar.set_all_folders(True)
        qtbot.keyClicks(bar.edit, "re")
    assert not window.message_list.isColumnHidden(Column.FOLDER)
    model = window.message_model
    folders = {model.index(r, Column.FOLDER).data() for r in range(model.rowCount())}
    assert len(folders) > 1  # the column says where each result is
    with qtbot.waitSignal(view.results_shown, timeout=30_000, check_params_cb=lambda r, c: c):
        bar.set_all_folders(False)
    assert window.message_list.isColumnHidden(Column.FOLDER)
    qtbot.keyClick(bar.edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not view.searching(), timeout=10_000)
    assert window.message_list.isColumnHidden(Column.FOLDER)


def test_delete_a_conversation_row_moves_all_its_mails(qtbot, window) -> None:
    group(qtbot, window)
    model = window.mail_view.conversations
    row = conversation_rows(window)[0]
    conversation = model.conversation_at(row)
    assert conversation is not None
    message_ids = {m.message_id for m in conversation.messages}
    select(qtbot, window, row)
    with qtbot.waitSignal(window.mail_view.conversations_shown, timeout=60_000):
        window.window_actions.delete.trigger()
    store = window.workspace.store()

    def where() -> set[str]:
        return {
            r.header.ref.folder for mid in message_ids for r in store.messages_by_message_id(mid)
        }

    qtbot.waitUntil(lambda: where() == {"Deleted Items"}, timeout=60_000)
    qtbot.waitUntil(
        lambda: all(
            model.conversation_at(r) is None
            or not message_ids & {m.message_id for m in model.conversation_at(r).messages}
            for r in range(model.rowCount())
        ),
        timeout=30_000,
    )


def test_search_lists_results_flat_and_clearing_brings_the_conversations_back(
    qtbot, window
) -> None:
    group(qtbot, window)
    view, bar = window.mail_view, window.mail_view.search_bar
    with qtbot.waitSignal(view.results_shown, timeout=30_000, check_params_cb=lambda r, c: c):
        qtbot.keyClicks(bar.edit, "quote")
    assert window.message_list.model() is window.message_model
    assert window.window_actions.group_conversations.isChecked()
    qtbot.keyClick(bar.edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.message_list.model() is view.conversations, timeout=30_000)


def test_sort_by_subject_and_left_goes_to_the_conversation(qtbot, window) -> None:
    group(qtbot, window)
    model = window.mail_view.conversations
    with qtbot.waitSignal(window.mail_view.conversations_shown, timeout=30_000):
        window.message_list.sortByColumn(Column.SUBJECT, Qt.SortOrder.AscendingOrder)
    topics = [model.conversation_at(r).subject.casefold() for r in range(model.rowCount())]
    assert topics == sorted(topics)

    row = conversation_rows(window)[0]
    model.set_expanded(row, True)
    window.select_rows([row + 1])
    window.message_list.setFocus()
    qtbot.keyClick(window.message_list, Qt.Key.Key_Left)
    assert window.mail_view.selected_rows() == [row]


def test_a_replaced_grouping_is_released_and_the_collector_comes_back() -> None:
    import gc

    from core.domain.conversations import ThreadFacts, group_conversations
    from desktop.conversation_model import collector_paused, prepare, release

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested (two groupings at once): still off
            assert not gc.isenabled()
        assert not gc.isenabled()
        grouping = prepare(
            group_conversations([ThreadFacts(i, f"<{i}@x>") for i in range(2000)]),
            (Column.RECEIVED, True),
        )
    assert gc.isenabled()
    assert len(grouping.conversations) == 2000 and grouping.where[5] == (
        grouping.by_key[5],
        0,
    )
    retired = (grouping.conversations, grouping.where)
    release(retired)
    assert retired == ([], {})


def test_a_few_changed_messages_update_their_conversation_in_place(qtbot) -> None:
    from core.domain.conversations import ThreadFacts, group_conversations
    from desktop.conversation_model import ConversationListModel, prepare
    from desktop.messages import MessageListModel

    facts = [
        ThreadFacts(1, "<a@x>", date_ts=1.0),
        ThreadFacts(2, "<b@x>", in_reply_to="<a@x>", date_ts=2.0, is_read=False),
        ThreadFacts(3, "<c@x>", date_ts=3.0),
    ]
    model = ConversationListModel(MessageListModel())
    grouping = prepare(group_conversations(facts), (Column.RECEIVED, True))
    model.set_conversations(grouping)
    assert model.set_conversations(grouping) == ([], {})  # the same again: nothing to free
    assert [model.conversation_at(r).count for r in range(model.rowCount())] == [1, 2]
    read_and_tracked = ThreadFacts(
        2, "<b@x>", in_reply_to="<a@x>", date_ts=2.0, track_state=TrackState.TRACKED
    )
    assert model.update_messages([read_and_tracked])
    pair = model.conversation_at(1)
    assert (pair.unread, pair.tracked, pair.coverage) == (0, 1, Coverage.PARTLY)
    assert model.states_of([2]) == {2: TrackState.TRACKED}
    assert not model.update_messages([ThreadFacts(99, "<z@x>")])  # not grouped: regroup
    moved = ThreadFacts(2, "<b@x>", in_reply_to="<a@x>", date_ts=0.5)  # now the oldest
    assert not model.update_messages([moved])
