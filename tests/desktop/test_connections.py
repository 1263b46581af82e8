"""Track to more than one record (issue 17): a tracked mail linked to further CRM records
through Dataverse connections, by the outbox (online, and offline then replayed exactly once),
listed from the CRM on a worker and cached for the banner, and the "Link to Another Record…"
action in the window."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core.crm import connections as crm_links
from core.crm.connections import CONNECTIONS
from core.domain.model import RecordRef, TrackState
from core.outbox.kinds import AddConnection, OpKind
from core.outbox.operations import CrmApplier
from core.store.connections import ADDING, LINKED, REMOVING
from core.workspace.connections import ConnectionsService, NotLinkable, banner_text
from crmserver.seed import guid
from desktop.connections import LinkRecords
from desktop.demo import DemoEnvironment
from desktop.messages import Column
from desktop.roles import TrackStateRole
from tests.plugins.crm import crm_http_client

FABRIKAM = RecordRef("account", guid("account", "Fabrikam Inc."), "Fabrikam Inc.")
JANE = RecordRef("contact", guid("contact", "jane.doe@fabrikam.example"), "Jane Doe")


def _row_in_state(env: DemoEnvironment, state: TrackState) -> int:
    found = (
        env.workspace.store()
        .conn.execute("SELECT id FROM messages WHERE track_state = ? ORDER BY id", (state.value,))
        .fetchone()
    )
    assert found is not None, f"the demo has no {state} mail"
    return int(found[0])


def _crm_links(env: DemoEnvironment, row_id: int) -> list[dict[str, Any]]:
    """The connections the CRM has from the mail's e-mail activity (asked over HTTP)."""
    row = env.workspace.store().message(row_id)
    assert row is not None and row.activity_id
    with crm_http_client(env.server) as c:
        r = c.get(
            CONNECTIONS,
            params={
                "$filter": f"_record1id_value eq {row.activity_id}",
                "$select": "connectionid,_record2id_value",
            },
        )
    r.raise_for_status()
    return list(r.json()["value"])


def test_link_online_lists_and_unlinks(demo: DemoEnvironment) -> None:
    ws = demo.workspace
    links = ConnectionsService(ws)
    row_id = _row_in_state(demo, TrackState.TRACKED)
    links.link(row_id, FABRIKAM)
    links.link(row_id, JANE)
    in_crm = _crm_links(demo, row_id)
    assert sorted(r["_record2id_value"] for r in in_crm) == sorted([FABRIKAM.id, JANE.id])
    listed = links.refresh(row_id)
    assert [(c.record.entity, c.record.id, c.state) for c in listed] == [
        ("account", FABRIKAM.id, LINKED),
        ("contact", JANE.id, LINKED),
    ]
    assert all(c.connection_id for c in listed)
    assert banner_text(listed) == "Also linked to: Fabrikam Inc. (account), Jane Doe (contact)"

    links.unlink(row_id, listed[0])
    assert [r["_record2id_value"] for r in _crm_links(demo, row_id)] == [JANE.id]
    assert [c.record.id for c in links.refresh(row_id)] == [JANE.id]


def test_offline_link_replays_exactly_once(demo: DemoEnvironment) -> None:
    ws = demo.workspace
    links = ConnectionsService(ws)
    row_id = _row_in_state(demo, TrackState.TRACKED)
    ws.set_work_offline(True)
    links.link(row_id, FABRIKAM)
    links.link(row_id, FABRIKAM)  # clicked twice while offline: still one link
    cached = links.refresh(row_id)  # offline: the cache, never the network
    assert [(c.record.id, c.state) for c in cached] == [(FABRIKAM.id, ADDING)]
    assert "waiting for the CRM" in banner_text(cached)
    assert _crm_links(demo, row_id) == []

    ws.set_work_offline(False)  # going online replays the queue
    assert [r["_record2id_value"] for r in _crm_links(demo, row_id)] == [FABRIKAM.id]
    assert [(c.record.id, c.state) for c in links.cached(row_id)] == [(FABRIKAM.id, LINKED)]

    # A replay repeated (a crash after the CRM answered, before "done" was recorded) and the
    # same link queued again: the CRM still has one connection.
    done = [
        op
        for op in _all_ops(ws)
        if op.kind is OpKind.ADD_CONNECTION and isinstance(op.payload, AddConnection)
    ]
    assert done
    applier = CrmApplier(ws.crm)
    for _ in range(2):
        applier(done[-1], lambda _progress: None)
    links.link(row_id, FABRIKAM)
    assert [r["_record2id_value"] for r in _crm_links(demo, row_id)] == [FABRIKAM.id]


def _all_ops(ws: Any) -> list[Any]:
    outbox = ws.outbox()
    ids = [r[0] for r in ws.store().conn.execute("SELECT id FROM outbox ORDER BY id")]
    return [op for op in map(outbox.get, ids) if op is not None]


def test_offline_unlink_shows_going_then_goes(demo: DemoEnvironment) -> None:
    ws = demo.workspace
    links = ConnectionsService(ws)
    row_id = _row_in_state(demo, TrackState.TRACKED)
    links.link(row_id, JANE)
    (link,) = links.refresh(row_id)
    ws.set_work_offline(True)
    links.unlink(row_id, link)
    assert [c.state for c in links.cached(row_id)] == [REMOVING]
    assert banner_text(links.cached(row_id)) == ""
    assert len(_crm_links(demo, row_id)) == 1
    ws.set_work_offline(False)
    assert _crm_links(demo, row_id) == []
    assert links.cached(row_id) == []


def test_untracked_mail_cannot_be_linked(demo: DemoEnvironment) -> None:
    links = ConnectionsService(demo.workspace)
    row_id = _row_in_state(demo, TrackState.NOT_TRACKED)
    with pytest.raises(NotLinkable):
        links.enqueue_link(row_id, FABRIKAM)
    tracked = _row_in_state(demo, TrackState.TRACKED)
    with pytest.raises(NotLinkable):
        links.enqueue_link(tracked, RecordRef("queue", FABRIKAM.id, "A queue"))


# -- the window -------------------------------------------------------------------------------


def _state_rows(window: Any, state: TrackState) -> list[int]:
    model = window.message_model
    return [
        r
        for r in range(model.rowCount())
        if model.data(model.index(r, Column.STATE), TrackStateRole) == state
    ]


def _link_records(window: Any) -> LinkRecords:
    """The window's LinkRecords (made here while the main window does not make one)."""
    found = getattr(window, "link_records", None)
    return found if isinstance(found, LinkRecords) else LinkRecords(window)


def _show(qtbot, window: Any, row: int) -> None:
    with qtbot.waitSignal(window.message_shown, timeout=60_000):
        window.select_rows([row])
    qtbot.waitUntil(lambda: window.mail_view.shown_view() is not None, timeout=60_000)


def test_link_action_banner_and_remove(
    qtbot, window: Any, demo: DemoEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = _link_records(window)
    on_gui_thread: list[bool] = []
    read_links = crm_links.links_of

    def watched(*args: Any, **kwargs: Any) -> Any:
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        return read_links(*args, **kwargs)

    monkeypatch.setattr(crm_links, "links_of", watched)
    action = window.window_actions.link_record
    assert action.shortcut().toString() == "Ctrl+Alt+L"
    assert action in window.context_menu.actions()

    _show(qtbot, window, _state_rows(window, TrackState.NOT_TRACKED)[0])
    links.update_action()
    assert not action.isEnabled()  # nothing in the CRM to link
    assert not window.reading_pane.connections.isVisible()

    tracked = _state_rows(window, TrackState.TRACKED)[0]
    _show(qtbot, window, tracked)
    qtbot.waitUntil(action.isEnabled, timeout=10_000)
    row_id = window.mail_view.shown_view().row_id

    action.trigger()  # the picker in link mode, with suggestions
    picker = links.picker
    assert picker is not None and picker.windowTitle() == "Link to Another Record"
    qtbot.keyClicks(picker.edit, "fabrikam inc")
    qtbot.waitUntil(
        lambda: (
            picker.status.text().endswith("record(s)")
            and "Fabrikam Inc." in [h.record.name for h in picker.model.hits()]
        ),
        timeout=60_000,
    )
    names = [h.record.name for h in picker.model.hits()]
    for _ in range(names.index("Fabrikam Inc.")):
        qtbot.keyClick(picker.edit, Qt.Key.Key_Down)
    bar = window.reading_pane.connections
    qtbot.keyClick(picker.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bar.plain == "Also linked to: Fabrikam Inc. (account)", timeout=60_000)
    qtbot.waitUntil(lambda: bool(bar.links and bar.links[0].connection_id), timeout=60_000)
    assert bar.isVisible()
    assert [r["_record2id_value"] for r in _crm_links(demo, row_id)] == [FABRIKAM.id]

    bar.linkActivated.emit("unlink:0")  # the ✕ after the link
    qtbot.waitUntil(lambda: not bar.isVisible(), timeout=60_000)
    qtbot.waitUntil(lambda: _crm_links(demo, row_id) == [], timeout=60_000)
    assert on_gui_thread and not any(on_gui_thread)  # the CRM was read on workers only


def test_banner_shows_kept_links_offline(qtbot, window: Any, demo: DemoEnvironment) -> None:
    links = _link_records(window)
    tracked = _state_rows(window, TrackState.TRACKED)[1]
    _show(qtbot, window, tracked)
    row_id = window.mail_view.shown_view().row_id
    service = ConnectionsService(demo.workspace)
    service.link(row_id, JANE)
    service.refresh(row_id)
    demo.workspace.set_work_offline(True)
    other = _state_rows(window, TrackState.NOT_TRACKED)[0]
    _show(qtbot, window, other)
    with qtbot.waitSignal(links.links_shown, timeout=60_000):
        _show(qtbot, window, tracked)
    assert window.reading_pane.connections.plain == "Also linked to: Jane Doe (contact)"
