"""The user's mail actions (issue 17): read/unread, flag, move, copy, delete, archive and undo,
on every backend (Maildir, IMAP on Dovecot, the fake EWS, the fake Graph). The store shows
each at once; the queue writes it to the server (checked from a second session); a sync
before the replay does not undo it; a moved tracked mail stays tracked; the CRM being away
does not hold them back; a failure is parked and the next sync puts the store right."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.model import FolderRole, MailRef, TrackState
from core.mail import MailBackend
from core.mail.base import FLAGGED_KEYWORD
from core.outbox.operations import PENDING_UID
from core.store.rows import MessageRow
from core.workspace.facade import Workspace
from crmserver import RunningServer
from tests.mail.conftest import _FACTORIES
from tests.mail.helpers import Replica, make_message
from tests.mail.test_contract import _graph
from tests.sync.env import ME

KINDS = ["maildir", "imap", "ews", "graph"]
_OPENERS = {**_FACTORIES, "graph": _graph}
PROJECTS = "Inbox/Projects"


@dataclass
class Box:
    kind: str
    ws: Workspace
    open: Callable[[], MailBackend]

    def deliver(self, n: int, folder: str = "Inbox") -> str:
        with self.open() as b:
            b.append(folder, make_message(n), is_read=False)
        return f"<msg-{n}@fabrikam.example>"

    def row(self, message_id: str, folder: str | None = None) -> MessageRow:
        rows = [
            r
            for r in self.ws.store().messages_by_message_id(message_id)
            if folder is None or r.header.ref.folder == folder
        ]
        assert len(rows) == 1, rows
        return rows[0]

    def server(self, folder: str) -> dict[str, tuple[MailRef, bool, tuple[str, ...]]]:
        """What a second session sees in ``folder``: Message-ID → (ref, read, keywords)."""
        rep = Replica()
        with self.open() as b:
            rep.sync(b, folder)
        return {h.message_id: (h.ref, h.is_read, h.keywords) for h in rep.headers.values()}


def _workspace(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, crm_url: str, archive: bool
) -> Iterator[Box]:
    _, opener = _OPENERS[kind](tmp_path, request)
    with opener() as b:
        for path in (PROJECTS, "Archive") if archive else (PROJECTS,):
            b.create_folder(path)
    crm = CrmClient(crm_url, BasicAuth(ME.email, demo_data.DEMO_PASSWORD), timeout=10)
    ws = Workspace(tmp_path / "ws" / "store.sqlite", opener, crm, ME, mailbox_name=ME.email)
    yield Box(kind, ws, opener)
    ws.close()


@pytest.fixture(params=KINDS)
def box(request: pytest.FixtureRequest, tmp_path: Path, crm_server: RunningServer) -> Iterator[Box]:
    yield from _workspace(request, tmp_path, request.param, crm_server.url, archive=True)


def test_actions_show_at_once_and_reach_the_server(box: Box) -> None:
    a, b, c = (box.deliver(n) for n in (1, 2, 3))
    box.ws.sync_mail()
    ra, rb, rc = (box.row(m) for m in (a, b, c))
    unread_before = box.ws.store().folder_counts()["Inbox"][1]

    box.ws.mark_read([ra.id], True)
    flag = box.ws.set_flagged([ra.id], True) if box.kind != "ews" else None
    box.ws.move_mail([rb.id], PROJECTS)
    box.ws.copy_mail([rc.id], "Archive")
    box.ws.delete_mail([rc.id])
    # At once, before any network: read, flagged, moved (same row), copied, deleted.
    assert box.ws.store().folder_counts()["Inbox"][1] == unread_before - 3
    assert box.ws.store().message(ra.id).header.is_read  # type: ignore[union-attr]
    if flag is not None:
        assert FLAGGED_KEYWORD in box.row(a).header.keywords and flag.undo is not None
    assert box.ws.store().message(rb.id).header.ref.folder == PROJECTS  # type: ignore[union-attr]
    trash = box.ws.store().message(rc.id).header.ref.folder  # type: ignore[union-attr]
    assert trash == next(f.path for f in box.ws.store().folders() if f.role is FolderRole.DELETED)
    assert box.row(c, "Archive").header.ref.uid.startswith(PENDING_UID)

    assert box.ws.replay_mail().errors == ()
    inbox, projects, archive = (box.server(f) for f in ("Inbox", PROJECTS, "Archive"))
    assert set(inbox) == {a} and inbox[a][1]
    assert (FLAGGED_KEYWORD in inbox[a][2]) is (flag is not None)
    assert set(projects) == {b} and set(archive) == {c} and c in box.server(trash)
    # The store has the server's refs (no placeholder), and a sync changes nothing.
    assert box.row(b).header.ref == projects[b][0]
    assert box.row(c, "Archive").header.ref == archive[c][0]
    box.ws.sync_mail()
    assert box.row(b).id == rb.id and box.row(b).header.ref == projects[b][0]
    assert box.row(a).header.is_read and box.row(c, trash).id == rc.id


def test_moving_a_tracked_mail_keeps_it_tracked(box: Box) -> None:
    mid = box.deliver(4)
    box.ws.sync_mail()
    row = box.row(mid)
    assert box.ws.track([row.id]).errors == ()
    activity = box.row(mid).activity_id
    assert activity and box.row(mid).track_state is TrackState.TRACKED
    box.ws.move_mail([row.id], PROJECTS)
    moved = box.row(mid)
    assert (moved.id, moved.track_state, moved.activity_id) == (
        row.id,
        TrackState.TRACKED,
        activity,
    )
    box.ws.replay_mail()
    box.ws.sync_mail()
    after = box.row(mid)  # one copy, in Projects, with its new ref, the same activity
    assert after.header.ref.folder == PROJECTS and not after.header.ref.uid.startswith("pend")
    assert (after.track_state, after.activity_id) == (TrackState.TRACKED, activity)


def test_undo_moves_back_and_restores_the_flag(box: Box) -> None:
    mid = box.deliver(5)
    box.ws.sync_mail()
    row = box.row(mid)
    moved = box.ws.delete_mail([row.id])
    assert moved.undo is not None and moved.undo.moves == ((row.id, "Inbox"),)
    box.ws.undo(moved.undo)  # queued before the delete reached the server
    assert box.row(mid).header.ref.folder == "Inbox"
    assert box.ws.replay_mail().errors == ()
    assert mid in box.server("Inbox")
    box.ws.sync_mail()
    assert box.row(mid).header.ref == box.server("Inbox")[mid][0]
    if box.kind == "ews":
        return  # the fake EWS holds no follow-up flag (see the report)
    flagged = box.ws.set_flagged([row.id], True)
    assert flagged.undo is not None
    box.ws.replay_mail()
    box.ws.undo(flagged.undo)
    assert FLAGGED_KEYWORD not in box.row(mid).header.keywords
    box.ws.replay_mail()
    assert FLAGGED_KEYWORD not in box.server("Inbox")[mid][2]


def test_a_sync_before_the_replay_does_not_undo_the_users_change(box: Box) -> None:
    mid = box.deliver(6)
    box.ws.sync_mail()
    row = box.row(mid)
    box.ws.set_work_offline(True)
    box.ws.mark_read([row.id], True)
    with box.open() as other:  # another device changes the message meanwhile
        ref = next(iter(box.server("Inbox").values()))[0]
        other.set_read(ref, False)
        other.set_tracked(ref, "9f0c2a4e-1111-4f6e-9a61-000000000001")
    box.ws.sync_mail()  # runs before the queue could write the read flag
    assert box.row(mid).header.is_read
    box.ws.set_work_offline(False)  # the replay: the server gets it
    assert box.server("Inbox")[mid][1]
    box.ws.sync_mail()
    assert box.row(mid).header.is_read


def test_archive_makes_the_folder_when_missing(
    request: pytest.FixtureRequest, tmp_path: Path, crm_server: RunningServer
) -> None:
    for box in _workspace(request, tmp_path, "imap", crm_server.url, archive=False):
        mid = box.deliver(7)
        box.ws.sync_mail()
        box.ws.archive_mail([box.row(mid).id])
        assert "Archive" in {f.path for f in box.ws.store().folders()}
        assert box.ws.replay_mail().errors == ()
        assert set(box.server("Archive")) == {mid}
        box.ws.sync_mail()
        assert box.row(mid).header.ref.folder == "Archive"


def test_mail_actions_go_out_while_the_crm_is_away(
    request: pytest.FixtureRequest, tmp_path: Path, crm_server: RunningServer
) -> None:
    dead = "http://127.0.0.1:9/"  # nothing listens: the CRM is unreachable
    for box in _workspace(request, tmp_path, "imap", dead, archive=True):
        mid = box.deliver(8)
        box.ws.sync_mail()
        row = box.row(mid)
        box.ws.enqueue_track([row.id])  # a CRM operation queued first, on the same mail
        box.ws.move_mail([row.id], PROJECTS)
        report = box.ws.sync_cycle()
        assert not report.online
        assert set(box.server(PROJECTS)) == {mid}
        assert box.row(mid).header.ref == box.server(PROJECTS)[mid][0]
        assert box.row(mid).track_state is TrackState.PENDING  # the promotion still waits


def test_a_failed_action_is_shown_and_the_next_sync_corrects_the_store(box: Box) -> None:
    mid = box.deliver(9)
    box.ws.sync_mail()
    row = box.row(mid)
    with box.open() as other:  # another device deletes it first
        other.delete(box.server("Inbox")[mid][0])
    box.ws.move_mail([row.id], PROJECTS)
    changes = box.ws.replay_mail()
    assert len(changes.errors) == 1  # shown: parked with the server's words
    assert box.ws.store().message(row.id).header.ref.folder == "Inbox"  # type: ignore[union-attr]
    box.ws.sync_mail()
    assert box.ws.store().messages_by_message_id(mid) == []
