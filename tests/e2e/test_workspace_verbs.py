"""Workspace verbs the GUI calls, end to end on real servers: send a tracked mail with an
attachment, user options to the CRM (queued while offline), set regarding, resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config.local_options import LocalOptions
from core.domain.crm_settings import IncomingFilter
from core.domain.model import Address, RecordRef, TrackState
from core.workspace.compose import Draft, DraftAttachment
from crmserver import RunningServer
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime

C = Address("jane.doe@fabrikam.example", "Jane Doe")


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Env:
    return Env(fresh_crm, dovecot, smtp_server, tmp_path)


def test_send_a_tracked_mail_with_an_attachment(env: Env) -> None:
    ws, _ = env.workspace("send")
    assert ws.sync_cycle().ok
    draft = Draft(
        to=(C,),
        subject="Signed contract",
        body_text="Attached.",
        track=True,
        attachments=(DraftAttachment("contract.pdf", b"%PDF-1.4 tiny", "application/pdf"),),
    )
    decision = ws.compose_decision(draft)
    assert decision.track and decision.reason.text
    before = len(env.smtp.received)
    assert ws.send(draft).errors == ()
    assert len(env.smtp.received) == before + 1
    _, rcpts, data = env.smtp.received[-1]
    assert rcpts == [C.email] and b"Signed contract" in data
    ws.sync_cycle()
    [sent] = [
        r
        for r in ws.store().message_rows("Sent Items", 0, 50)
        if r.header.subject == "Signed contract"
    ]
    assert sent.track_state is TrackState.TRACKED
    [email] = env.emails(sent.header.message_id)
    with env.http() as http:
        atts = http.get(
            "activitymimeattachments",
            params={"$filter": f"_objectid_value eq {email['activityid']}", "$select": "filename"},
        ).json()["value"]
    assert [a["filename"] for a in atts] == ["contract.pdf"]
    assert ws.queue() == []
    ws.close()


def test_user_options_go_to_the_crm_and_wait_while_offline(env: Env) -> None:
    ws, _ = env.workspace("opts")
    assert ws.sync_cycle().ok
    options = ws.user_options()
    ws.set_work_offline(True)
    from dataclasses import replace

    changed = replace(options, incoming_filter=IncomingFilter.NONE, track_replies_to_tracked=True)
    ws.save_user_options(changed)
    assert ws.user_options().incoming_filter is IncomingFilter.NONE  # at once, locally
    assert ws.user_options().track_replies_to_tracked
    assert [q.kind for q in ws.queue()] == ["update_user_settings"]
    with env.http() as http:
        row = http.get(f"usersettingscollection({env.user_id()})").json()
    assert row["incomingemailfilteringmethod"] != 4
    ws.set_work_offline(False)
    with env.http() as http:
        row = http.get(f"usersettingscollection({env.user_id()})").json()
    assert row["incomingemailfilteringmethod"] == 4
    assert ws.queue() == []
    ws.sync_cycle()  # the snapshot read back keeps the local-only option
    assert ws.user_options().track_replies_to_tracked
    local = LocalOptions(sync_interval_minutes=5, folders_to_sync=("Inbox",))
    ws.save_local_options(local)
    assert ws.local_options() == local
    ws.close()


def test_set_regarding_resolve_and_unresolved(env: Env) -> None:
    ws, user = env.workspace("reg")
    assert ws.sync_cycle().ok
    stranger = Address("someone@unknown.example")
    mid, raw = mime(C, (ME, stranger), "Where is my order?")
    env.dovecot.deliver(user, raw)
    ws.sync_mail()
    row = ws.store().messages_by_message_id(mid)[0]
    assert ws.unresolved_for(row.id) == (stranger,)
    parties = ws.resolve([C, stranger])
    assert parties[0].resolved and not parties[1].resolved
    with env.http() as http:
        account = http.get("accounts", params={"$top": "1", "$select": "accountid,name"}).json()[
            "value"
        ][0]
    ref = RecordRef("account", account["accountid"], account["name"])
    # Set Regarding on an untracked mail tracks it regarding that record.
    assert ws.set_regarding([row.id], ref).errors == ()
    [email] = env.emails(mid)
    assert email["_regardingobjectid_value"] == ref.id
    other = RecordRef("contact", env.create_contact("buyer@fabrikam.example"))
    assert ws.set_regarding([row.id], other).errors == ()
    assert env.emails(mid)[0]["_regardingobjectid_value"] == other.id
    stored = ws.store().messages_by_message_id(mid)[0]
    assert stored.track_state is TrackState.TRACKED and stored.regarding == other
    # Other devices see it: the tracked keyword is on the IMAP message.
    ws.sync_mail()
    assert ws.store().messages_by_message_id(mid)[0].header.tracked_marker == "$CRMTracked"
    ws.untrack([row.id])
    ws.sync_mail()
    assert ws.store().messages_by_message_id(mid)[0].header.tracked_marker is None
    ws.close()


def test_tracking_mail_from_an_unknown_sender_creates_a_contact_once(env: Env) -> None:
    with env.http() as http:
        http.patch(
            f"usersettingscollection({env.user_id()})", json={"autocreatecontactonpromote": 1}
        ).raise_for_status()
    ws, user = env.workspace("create")
    assert ws.sync_cycle().ok
    robin = Address("robin.new@newco.example", "Robin Newman")
    mid, raw = mime(robin, ME, "First contact")
    env.dovecot.deliver(user, raw)
    ws.sync_mail()
    row = ws.store().messages_by_message_id(mid)[0]
    assert ws.track([row.id]).errors == ()
    with env.http() as http:
        found = http.get(
            "contacts",
            params={
                "$filter": f"emailaddress1 eq '{robin.email}'",
                "$select": "contactid,firstname,lastname",
            },
        ).json()["value"]
    assert [(c["firstname"], c["lastname"]) for c in found] == [("Robin", "Newman")]
    assert len(env.emails(mid)) == 1
    ws.sync_cycle()  # the address book now knows Robin: nothing more is created
    assert ws.resolve([robin])[0].resolved
    ws.close()


def test_mail_sent_while_the_mail_server_is_away_waits_in_the_outbox(env: Env) -> None:
    from core.mail import open_backend

    ws, _ = env.workspace("mailaway")
    assert ws.sync_cycle().ok
    working = ws.open_mailbox
    ws.open_mailbox = lambda: open_backend(
        "imap+insecure://127.0.0.1:9",
        user="x",
        password="y",
        smtp_url="smtp+insecure://127.0.0.1:9",
    )
    before = len(env.smtp.received)
    draft = Draft(to=(C,), subject="Sent while away", body_text="Later.", track=True)
    assert ws.send(draft).errors == ()
    assert [q.kind for q in ws.queue()] == ["send_pending", "promote"]
    report = ws.sync_cycle()
    assert report.online and not report.mail_online and report.errors == ()
    assert len(env.smtp.received) == before
    ws.open_mailbox = working
    assert ws.sync_cycle().ok  # the mail server is back: the send is due at once
    assert len(env.smtp.received) == before + 1 and ws.queue() == []
    ws.sync_cycle()  # the copy in Sent Items arrives
    mid = [
        r
        for r in ws.store().message_rows("Sent Items", 0, 50)
        if r.header.subject == "Sent while away"
    ][0].header.message_id
    assert len(env.emails(mid)) == 1
    ws.close()


def test_unique_sender_policy_flags_for_review_until_regarding_is_set(env: Env) -> None:
    from dataclasses import replace

    from core.domain.crm_settings import ResolutionPolicy

    env.set_incoming_filter(0)  # all incoming mail
    ws, user = env.workspace("review")
    assert ws.sync_cycle().ok
    ws.save_user_options(
        replace(ws.user_options(), resolution_policy=ResolutionPolicy.UNIQUE_SENDER)
    )
    mid, raw = mime(Address("who@unknown.example", "Who"), ME, "Hello from nowhere")
    env.dovecot.deliver(user, raw)
    assert ws.sync_cycle().ok
    row = ws.store().messages_by_message_id(mid)[0]
    assert row.track_state is TrackState.NEEDS_ATTENTION, row.reason
    assert len(env.emails(mid)) == 1
    contact = RecordRef("contact", env.create_contact("who@unknown.example"))
    assert ws.set_regarding([row.id], contact).errors == ()
    row = ws.store().messages_by_message_id(mid)[0]
    assert row.track_state is TrackState.TRACKED and row.regarding == contact
    ws.close()
