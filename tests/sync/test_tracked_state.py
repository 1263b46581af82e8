"""Tracked state and correlation come from the CRM, not from a window of recent mail
(issue 13): real emulator over HTTP, real Dovecot over IMAP."""

from __future__ import annotations

import base64
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.correlation import Correlator, InMemoryCorrelationIndex
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, TrackState
from core.store import SqliteCorrelationIndex
from core.store.crm_emails import CrmEmailCopy
from core.sync.crm_lookup import Questions, ask_crm, unanswered
from core.sync.tracked_state import TrackedStateRefresh
from crmserver import RunningServer
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime

JANE = Address("jane.doe@fabrikam.example", "Jane Doe")
PRIYA = demo_data.COLLEAGUES[0]


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def crm_email(
    env: Env,
    message_id: str | None,
    subject: str,
    *,
    user: str = ME.email,
    conversation_index: str | None = None,
    outgoing: bool = True,
) -> str:
    """An e-mail activity created in the CRM's web pages by ``user`` (as a person would
    track mail there, from another computer or on behalf of a colleague), to Alex."""
    body: dict[str, Any] = {
        "subject": subject,
        "directioncode": outgoing,
        "description": "Tracked elsewhere.",
        "email_activity_parties": [
            {
                "partyid_systemuser@odata.bind": f"/systemusers({env.user_id()})",
                "participationtypemask": 2,
            }
        ],
    }
    if message_id:
        body["messageid"] = message_id
    if conversation_index:
        body["conversationindex"] = conversation_index
    with env.http(user) as http:
        r = http.post("emails", json=body)
        r.raise_for_status()
        return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")").lower()


def delete_email(env: Env, activity_id: str, user: str = ME.email) -> None:
    with env.http(user) as http:
        http.delete(f"emails({activity_id})").raise_for_status()


def state(ws: Any, message_id: str) -> TrackState:
    rows = ws.store().messages_by_message_id(message_id)
    assert rows, f"{message_id} not in the store"
    return rows[0].track_state


def days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def test_mail_tracked_400_days_ago_shows_tracked(env: Env) -> None:
    ws, user = env.workspace("old")
    mid, raw = mime(JANE, ME, "Contract renewal", date=days_ago(400))
    env.dovecot.deliver(user, raw)
    activity = crm_email(env, mid, "Contract renewal", outgoing=False)
    report = ws.sync_cycle()
    assert report.ok, report.errors
    row = ws.store().messages_by_message_id(mid)[0]
    assert row.track_state is TrackState.TRACKED and row.activity_id == activity
    assert report.counts["tracked_state_full"] == 1
    ws.close()


def test_colleague_untracks_a_two_year_old_mail_and_it_shows_after_one_cycle(env: Env) -> None:
    ws, user = env.workspace("untrack")
    mid, raw = mime(JANE, (ME, Address(PRIYA.email)), "Old thread", date=days_ago(730))
    env.dovecot.deliver(user, raw)
    activity = crm_email(env, mid, "Old thread", user=PRIYA.email, outgoing=False)
    assert ws.sync_cycle().ok
    assert state(ws, mid) is TrackState.TRACKED_BY_OTHER

    delete_email(env, activity, user=PRIYA.email)
    report = ws.sync_cycle()
    assert report.ok, report.errors
    assert report.counts["tracked_state_full"] == 0  # a delta, not a new pull
    assert state(ws, mid) is TrackState.NOT_TRACKED
    # ...and a colleague tracking it again shows too, by the same delta.
    again = crm_email(env, mid, "Old thread", user=PRIYA.email, outgoing=False)
    assert ws.sync_cycle().ok
    row = ws.store().messages_by_message_id(mid)[0]
    assert row.track_state is TrackState.TRACKED_BY_OTHER and row.activity_id == again
    ws.close()


def test_reply_with_an_old_token_is_tracked_as_a_response_to_crm_mail(env: Env) -> None:
    env.set_incoming_filter(1)  # e-mail in response to CRM e-mail
    ws, user = env.workspace("token")
    assert ws.sync_cycle().ok  # the baseline: mail from before is not decided
    token = "CRM:0009876"
    activity = crm_email(
        env, f"<{uuid.uuid4().hex}@contoso.example>", f"Proposal for the fleet {token}"
    )
    reply_mid, raw = mime(
        Address("buyer@nowhere.example"), ME, f"RE: Proposal for the fleet {token}"
    )
    env.dovecot.deliver(user, raw)
    report = ws.sync_cycle()
    assert report.ok, report.errors
    assert state(ws, reply_mid) is TrackState.TRACKED
    [entry] = ws.store().tracking.audit_log(reply_mid)
    assert entry.track and entry.reason.code == "correlated", entry.reason
    assert token in entry.reason.text and entry.details["correlated_activity"] == activity
    ws.close()


def test_offline_the_decision_waits_and_online_it_is_taken_exactly_once(env: Env) -> None:
    env.set_incoming_filter(1)
    ws, user = env.workspace("undecided")
    assert ws.sync_cycle().ok
    # Mail Alex sent and tracked from another computer, after this one last synced.
    original = f"<{uuid.uuid4().hex}@contoso.example>"
    crm_email(env, original, "Delivery dates")
    reply_mid, raw = mime(JANE, ME, "Re: Delivery dates", in_reply_to=original)
    env.dovecot.deliver(user, raw)

    real = ws.crm
    ws.crm = CrmClient("http://127.0.0.1:9", BasicAuth(ME.email, "x"), timeout=2, get_retries=0)
    away = ws.sync_cycle()
    assert not away.online and away.mail_online
    assert state(ws, reply_mid) is TrackState.UNDECIDED  # not "not tracked"
    assert away.counts["undecided"] == 1
    assert ws.store().tracking.audit_log(reply_mid) == []
    assert ws.sync_cycle().counts["undecided"] == 1  # still waiting, still undecided

    ws.crm = real
    back = ws.sync_cycle()
    assert back.ok, back.errors
    assert state(ws, reply_mid) is TrackState.TRACKED
    [entry] = ws.store().tracking.audit_log(reply_mid)
    assert entry.track and entry.details["correlation_method"] == "in_reply_to"
    assert len(env.emails(reply_mid)) == 1
    again = ws.sync_cycle()
    assert again.ok and again.counts.get("undecided", 0) == 0
    assert len(ws.store().tracking.audit_log(reply_mid)) == 1 and len(env.emails(reply_mid)) == 1
    ws.close()


def test_without_correlation_keys_offline_mail_is_decided_at_once(env: Env) -> None:
    """Only mail whose decision needs the CRM waits: the rest is decided offline."""
    env.set_incoming_filter(1)
    ws, user = env.workspace("plain")
    assert ws.sync_cycle().ok
    mid, raw = mime(JANE, ME, "A new question")
    env.dovecot.deliver(user, raw)
    ws.crm = CrmClient("http://127.0.0.1:9", BasicAuth(ME.email, "x"), timeout=2, get_retries=0)
    ws.sync_cycle()
    assert state(ws, mid) is TrackState.NOT_TRACKED
    [entry] = ws.store().tracking.audit_log(mid)
    assert entry.reason.code == "not_a_response"
    ws.close()


def test_an_expired_delta_link_reads_everything_again_and_keeps_the_state(env: Env) -> None:
    ws, user = env.workspace("expired")
    mid, raw = mime(JANE, ME, "Kept", date=days_ago(90))
    env.dovecot.deliver(user, raw)
    crm_email(env, mid, "Kept", outgoing=False)
    assert ws.sync_cycle().ok
    assert state(ws, mid) is TrackState.TRACKED
    copy = CrmEmailCopy(ws.store())
    with ws.store().transaction() as conn:  # a token the CRM no longer honours
        conn.execute(
            "UPDATE crm_email_sync SET delta_link = 'emails?$select=activityid"
            "&$deltatoken=1%2101%2f01%2f2020%2000%3a00%3a00'"
        )
    report = ws.sync_cycle()
    assert report.ok, report.errors
    assert report.counts["tracked_state_full"] == 1
    assert state(ws, mid) is TrackState.TRACKED
    assert copy.state().delta_link and not copy.state().pulling
    ws.close()


def test_an_interrupted_first_pull_resumes_where_it_stopped(env: Env) -> None:
    ws, user = env.workspace("resume")
    mids = []
    for n in range(7):
        mid, raw = mime(JANE, ME, f"Order {n}", date=days_ago(200 + n))
        env.dovecot.deliver(user, raw)
        crm_email(env, mid, f"Order {n}", outgoing=False)
        mids.append(mid)
    ws.sync_mail()

    store = ws.store()
    cancel = threading.Event()
    pages: list[int] = []

    def progress(count: int) -> None:
        pages.append(count)
        if len(pages) == 2:
            cancel.set()

    def refresh(**kw: Any) -> Any:
        correlator = Correlator(ws.org_settings(), SqliteCorrelationIndex(store))
        return TrackedStateRefresh(
            store, ws.crm, correlator, env.user_id(), page_size=3, **kw
        ).run()

    first = refresh(cancel=cancel, progress=progress)
    assert first.cancelled and first.full and first.emails == 6
    copy = CrmEmailCopy(store)
    assert copy.state().pulling and not copy.state().delta_link
    rest = refresh()
    assert rest.full and not rest.cancelled
    assert copy.state().delta_link and not copy.state().pulling
    assert first.emails + rest.emails == copy_count(store)
    assert all(state(ws, m) is TrackState.TRACKED for m in mids)
    ws.close()


def copy_count(store: Any) -> int:
    return int(store.conn.execute("SELECT count(*) FROM tracked_emails").fetchone()[0])


def test_the_crm_is_asked_for_keys_the_local_index_does_not_know(env: Env) -> None:
    """Message-ID (with or without angle brackets), token, conversation index: each found
    in the CRM and remembered in the local index."""
    raw_index = bytes([1]) + os.urandom(21)
    root = base64.b64encode(raw_index).decode()
    child = base64.b64encode(raw_index + os.urandom(5)).decode()
    by_mid = f"<{uuid.uuid4().hex}@contoso.example>"
    a1 = crm_email(env, by_mid.strip("<>"), "Brackets dropped by a gateway")
    a2 = crm_email(env, None, "Budget CRM:0004321")
    a3 = crm_email(
        env, f"<{uuid.uuid4().hex}@contoso.example>", "Thread start", conversation_index=root
    )
    crm = CrmClient(env.crm.url, BasicAuth(ME.email, demo_data.DEMO_PASSWORD), timeout=10)
    correlator = Correlator(OrgSettings(), InMemoryCorrelationIndex())
    headers = [
        MessageHeader(MailRef("Inbox", "r1"), "<r1@x>", subject="Re: x", in_reply_to=by_mid),
        MessageHeader(MailRef("Inbox", "r2"), "<r2@x>", subject="RE: Budget CRM:0004321"),
        MessageHeader(
            MailRef("Inbox", "r3"), "<r3@x>", subject="RE: Thread start", thread_index=child
        ),
        MessageHeader(MailRef("Inbox", "r4"), "<r4@x>", subject="Unrelated"),
    ]
    asked = Questions()
    for h in headers:
        asked.add(unanswered(h, correlator))
    assert unanswered(headers[3], correlator) == Questions()
    found = {e.activity_id for e in ask_crm(crm, correlator, asked)}
    assert found == {a1, a2, a3}
    assert all(correlator.correlate(h) is not None for h in headers[:3])
    assert not any(unanswered(h, correlator) for h in headers)  # remembered
    crm.close()
