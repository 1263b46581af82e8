"""The never-track list and "stop tracking this conversation" in a real sync (issue 17): the
emulator and Dovecot on loopback. Mail from a listed domain is not tracked automatically,
with the reason; Track still works on it; a reply in a stopped conversation is not tracked
by correlation while a reply in another tracked conversation is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.domain.model import TrackState
from crmserver import RunningServer
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime
from tests.sync.test_cycle import JANE, row_of

RESPONSES_ONLY = 1  # the CRM's "e-mail messages in response to CRM e-mail"
FROM_CONTACTS = 2


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def test_a_listed_domain_is_never_tracked_automatically(env: Env) -> None:
    env.set_incoming_filter(FROM_CONTACTS)  # Jane is a contact: her mail would be tracked
    ws, user = env.workspace("never")
    assert ws.sync_cycle().ok
    ws.add_never_track(["fabrikam.example"])
    mid, raw = mime(JANE, ME, "Private: dinner on Friday?")
    env.dovecot.deliver(user, raw)
    assert ws.sync_cycle().ok
    row = row_of(ws, mid)
    assert row.track_state is TrackState.NOT_TRACKED
    assert row.reason is not None and "never-track list" in row.reason.text
    assert env.emails(mid) == []
    assert ws.track([row.id]).errors == ()  # the user's own Track always works
    assert row_of(ws, mid).track_state is TrackState.TRACKED
    assert len(env.emails(mid)) == 1
    ws.close()


def test_a_stopped_conversation_is_not_tracked_by_correlation(env: Env) -> None:
    env.set_incoming_filter(RESPONSES_ONLY)  # only correlation tracks
    ws, user = env.workspace("stopped")
    assert ws.sync_cycle().ok
    first, raw = mime(JANE, ME, "Quote for chairs")
    env.dovecot.deliver(user, raw)
    other, raw2 = mime(JANE, ME, "Delivery dates")
    env.dovecot.deliver(user, raw2)
    ws.sync_mail()
    assert ws.track([row_of(ws, first).id, row_of(ws, other).id]).errors == ()

    ws.stop_tracking_conversation(row_of(ws, first).id)
    assert row_of(ws, first).track_state is TrackState.TRACKED  # nothing already tracked goes
    reply, raw3 = mime(JANE, ME, "RE: Quote for chairs", in_reply_to=first)
    env.dovecot.deliver(user, raw3)
    reply2, raw4 = mime(JANE, ME, "RE: Delivery dates", in_reply_to=other)
    env.dovecot.deliver(user, raw4)
    assert ws.sync_cycle().ok
    stopped = row_of(ws, reply)
    assert stopped.track_state is TrackState.NOT_TRACKED
    assert stopped.reason is not None and "stopped tracking this conversation" in (
        stopped.reason.text
    )
    assert env.emails(reply) == []
    assert row_of(ws, reply2).track_state is TrackState.TRACKED  # another thread: correlated
    assert len(env.emails(reply2)) == 1

    ws.resume_tracking_conversation(row_of(ws, first).id)
    later, raw5 = mime(JANE, ME, "RE: RE: Quote for chairs", in_reply_to=first)
    env.dovecot.deliver(user, raw5)
    assert ws.sync_cycle().ok
    assert row_of(ws, later).track_state is TrackState.TRACKED
    ws.close()
