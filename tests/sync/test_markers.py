"""The tracked marker on the mail server catches up (issue 18, found by the Dovecot kill
test): a marker the replay could not set (the mailbox was away) or could not remove is put
right by a later replay, read back by the next mail sync; a marker another device set on
mail this client never untracked is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

from core.domain.model import TrackState
from core.mail.base import TRACKED_KEYWORD
from crmserver import RunningServer
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime
from tests.sync.test_cycle import JANE, row_of

KEYWORD = TRACKED_KEYWORD.encode()


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def _imap(env: Env, user: str) -> IMAPClient:
    imap = IMAPClient(env.dovecot.host, env.dovecot.imap_port, ssl=False)
    imap.login(user, PASSWORD)
    imap.select_folder("INBOX")
    return imap


def _uid(imap: IMAPClient, message_id: str) -> int:
    (uid,) = imap.search(["HEADER", "Message-ID", message_id])
    return int(uid)


def _marked(imap: IMAPClient, message_id: str) -> bool:
    uid = _uid(imap, message_id)
    return KEYWORD in imap.get_flags([uid])[uid]


def test_markers_left_undone_are_put_right_by_a_later_replay(env: Env) -> None:
    ws, user = env.workspace("markers")
    assert ws.sync_cycle().ok
    mids = []
    for subject in ("One", "Two", "Three", "Elsewhere"):
        mid, raw = mime(JANE, ME, subject)
        env.dovecot.deliver(user, raw)
        mids.append(mid)
    one, two, three, elsewhere = mids
    ws.sync_mail()
    assert ws.track([row_of(ws, m).id for m in (one, two, three)]).errors == ()
    ws.sync_mail()  # markers read back: nothing is due
    assert ws.store().tracking.markers_due(100, "untrack") == []
    with _imap(env, user) as imap:
        assert all(_marked(imap, m) for m in (one, two, three))
        # The mailbox "was away" when two of the markers were due: they are not there.
        imap.remove_flags([_uid(imap, one), _uid(imap, two)], [KEYWORD])
        # Another device marks a mail this client never tracked or untracked.
        imap.add_flags([_uid(imap, elsewhere)], [KEYWORD])
    assert ws.untrack([row_of(ws, three).id]).errors == ()
    with _imap(env, user) as imap:
        assert not _marked(imap, three)
        imap.add_flags([_uid(imap, three)], [KEYWORD])  # the removal "did not reach" it
    ws.sync_mail()  # the store now sees what the server has
    assert row_of(ws, one).header.tracked_marker is None
    assert row_of(ws, three).track_state is TrackState.NOT_TRACKED

    report = ws.sync_cycle()  # nothing queued: the replay only catches the markers up
    assert report.ok, report.errors
    with _imap(env, user) as imap:
        assert _marked(imap, one) and _marked(imap, two)
        assert not _marked(imap, three)
        assert _marked(imap, elsewhere)  # not ours to remove
    ws.sync_mail()
    assert ws.store().tracking.markers_due(100, "untrack") == []
    ws.close()
