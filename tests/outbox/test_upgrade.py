"""Upgrade with work still queued: a store whose outbox was written by Trackbox before
operations were typed (``legacy_outbox.sql``: every kind, payloads as that version stored
them) is replayed by this version against the emulator, Dovecot and the SMTP relay, and every
operation has its effect, exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from pathlib import Path

import pytest

from core.domain.model import Address, MailRef, RecordRef, TrackState
from core.outbox.kinds import Promote, SendPending, UpdateUserSettings
from core.outbox.queue import OpKind, Outbox
from core.store import Store
from crmserver import RunningServer
from tests.plugins.mailservers import DovecotServer, SmtpServer
from tests.sync.env import ME, Env, mime

HERE = Path(__file__).parent
LEGACY_SQL = (HERE / "legacy_outbox.sql").read_text()

# The records and mail the old client's queue refers to (ids as frozen in the SQL).
CASEY = Address("casey.upgrade@fabrikam.example", "Casey Upgrade")
CONTACT = RecordRef("contact", "5f1c3a52-8d0e-4c4f-9a51-0d6f2c7b1a01", "Casey Upgrade")
ACCOUNT = RecordRef("account", "7a2b4c6d-1e3f-4a5b-8c7d-9e0f1a2b3c01", "Upgrade Ltd")
NEW_CONTACT = "3c9d2e1f-4a5b-4c6d-8e7f-0a1b2c3d4e01"
TRACKED_LONG_AGO = "d0d0d0d0-0000-4000-8000-0000000000d1"
PENDING_SEND = "e0e0e0e0-0000-4000-8000-0000000000e1"
PENDING_SEND_CHECKPOINTED = "f0f0f0f0-0000-4000-8000-0000000000f1"
ME_USER_ID = "ff946a24-9392-57a4-a200-0442ccf39f89"  # the demo seed's id for ME
MAIL_A = "<upgrade-a@fabrikam.example>"  # tracked regarding a contact
MAIL_B = "<upgrade-b@northwind.example>"  # tracked automatically, then set regarding
MAIL_C = "<upgrade-c@fabrikam.example>"  # tracked, then untracked before the CRM had it
MAIL_D = "<upgrade-d@fabrikam.example>"  # tracked long ago, untracked
MAIL_G = "<upgrade-g@contoso.example>"  # written here, sent and tracked
WHEN = datetime.fromisoformat("2025-03-04T09:30:00+01:00")


@pytest.fixture
def env(
    fresh_crm: RunningServer, dovecot: DovecotServer, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    yield Env(fresh_crm, dovecot, smtp_server, tmp_path)


def _crm_as_the_old_client_left_it(env: Env) -> None:
    assert env.user_id() == ME_USER_ID
    with env.http() as http:
        for entity_set, body in (
            (
                "contacts",
                {
                    "contactid": CONTACT.id,
                    "firstname": "Casey",
                    "lastname": "Upgrade",
                    "emailaddress1": CASEY.email,
                },
            ),
            ("accounts", {"accountid": ACCOUNT.id, "name": ACCOUNT.name}),
            (
                "emails",
                {
                    "activityid": TRACKED_LONG_AGO,
                    "subject": "Tracked long ago",
                    "messageid": MAIL_D,
                },
            ),
        ):
            http.post(entity_set, json=body).raise_for_status()
        for activity, subject in (
            (PENDING_SEND, "Your quote CRM:0001001"),
            (PENDING_SEND_CHECKPOINTED, "Your invoice CRM:0001002"),
        ):
            parties = [
                {
                    "partyid_systemuser@odata.bind": f"/systemusers({ME_USER_ID})",
                    "participationtypemask": 1,
                },
                {
                    "partyid_contact@odata.bind": f"/contacts({CONTACT.id})",
                    "participationtypemask": 2,
                },
            ]
            http.post(
                "emails",
                json={
                    "activityid": activity,
                    "subject": subject,
                    "description": "<p>Here it is.</p>",
                    "email_activity_parties": parties,
                },
            ).raise_for_status()
            http.post(
                f"emails({activity})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True}
            ).raise_for_status()
            assert http.get(f"emails({activity})").json()["statuscode"] == 6  # Pending Send


def _mailbox_as_the_old_client_left_it(env: Env, user: str) -> None:
    """Mail A, B and C in the Inbox. The frozen payloads name them by the UIDs the old
    client saw (another UIDVALIDITY): the replay finds their bodies by Message-ID, as the old
    replay did."""
    for mid, sender, subject in (
        (MAIL_A, CASEY, "Quote for 20 chairs"),
        (MAIL_B, Address("new.sender@northwind.example", "Nina Sender"), "Hello from Northwind"),
        (MAIL_C, CASEY, "Tracked by mistake"),
    ):
        _, raw = mime(sender, ME, subject, message_id=mid, date=WHEN)
        env.dovecot.deliver(user, raw)


def _sent_message_ids(received: list[tuple[str, list[str], bytes]]) -> list[str]:
    return [str(message_from_bytes(data)["Message-ID"]) for _, _, data in received]


def test_an_outbox_written_before_typed_operations_replays_with_every_effect(env: Env) -> None:
    _crm_as_the_old_client_left_it(env)
    ws, user = env.workspace("upgrade")
    _mailbox_as_the_old_client_left_it(env, user)
    ws.sync_mail()
    store = ws.store()
    for mid in (MAIL_A, MAIL_B, MAIL_C):
        assert store.messages_by_message_id(mid)
    store.tracking.set_state(MAIL_D, TrackState.TRACKED, activity_id=TRACKED_LONG_AGO)
    store.conn.executescript(LEGACY_SQL)

    # This version reads every old row as its typed operation.
    pending = Outbox(store).pending()
    assert [op.kind for op in pending] == [
        OpKind.PROMOTE,
        OpKind.CREATE_RECORD,
        OpKind.PROMOTE,
        OpKind.SET_REGARDING,
        OpKind.PROMOTE,
        OpKind.UNTRACK,
        OpKind.UNTRACK,
        OpKind.SEND_PENDING,
        OpKind.PROMOTE,
        OpKind.SEND_PENDING,
        OpKind.SEND_PENDING,
        OpKind.UPDATE_USER_SETTINGS,
    ]
    first = pending[0].payload
    assert isinstance(first, Promote) and first.regarding == CONTACT
    assert first.header.ref == MailRef("Inbox", "1741077000:1") and first.source == "user"
    written_here = pending[8].payload
    assert isinstance(written_here, Promote) and written_here.mime is not None
    assert pending[10].progress.smtp_sent  # the old checkpoint is honoured
    settings = pending[11].payload
    assert isinstance(settings, UpdateUserSettings) and settings.user_id == ME_USER_ID

    sent_before = len(env.smtp.received)
    result = ws.replay_now()
    assert result.stopped is None and result.parked == [], [
        (op.id, op.last_error) for op in Outbox(store).pending()
    ]
    assert len(result.done) == 12
    assert Outbox(store).counts() == {"queued": 0, "parked": 0, "done": 12, "discarded": 0}
    assert ws.queue() == []

    # Promoted, regarding what the old client chose.
    [a] = env.emails(MAIL_A)
    assert a["_regardingobjectid_value"] == CONTACT.id
    row_a = store.messages_by_message_id(MAIL_A)[0]
    assert row_a.track_state is TrackState.TRACKED and row_a.activity_id == a["activityid"]
    assert row_a.regarding is not None and row_a.regarding.id == CONTACT.id
    # The record created for the unknown sender, then B promoted and set regarding.
    with env.http() as http:
        created = http.get(f"contacts({NEW_CONTACT})").json()
    assert created["emailaddress1"] == "new.sender@northwind.example"
    assert (created["firstname"], created["lastname"]) == ("Nina", "Sender")
    [b] = env.emails(MAIL_B)
    assert b["_regardingobjectid_value"] == ACCOUNT.id
    row_b = store.messages_by_message_id(MAIL_B)[0]
    assert row_b.track_state is TrackState.TRACKED and row_b.regarding == ACCOUNT
    # Untracked: C never stays in the CRM, D (tracked long ago) is gone.
    assert env.emails(MAIL_C) == []
    assert store.tracking.state_of(MAIL_C) is TrackState.NOT_TRACKED
    assert env.emails(MAIL_D) == []
    with env.http() as http:
        assert http.get(f"emails({TRACKED_LONG_AGO})").status_code == 404
    assert store.tracking.state_of(MAIL_D) is TrackState.NOT_TRACKED

    # Sent: the mail written here and the Pending Send one, once each; the checkpointed one
    # (the SMTP server had it before the crash) is not sent again, only marked Sent.
    sent = _sent_message_ids(env.smtp.received[sent_before:])
    pending_mid = f"<crm.{PENDING_SEND}@contoso.example>"
    checkpointed_mid = f"<crm.{PENDING_SEND_CHECKPOINTED}@contoso.example>"
    assert sorted(sent) == sorted([MAIL_G, pending_mid])
    [g] = env.emails(MAIL_G)
    assert g["_regardingobjectid_value"] == CONTACT.id
    assert store.tracking.state_of(MAIL_G) is TrackState.TRACKED
    with env.http() as http:
        for activity, mid in (
            (PENDING_SEND, pending_mid),
            (PENDING_SEND_CHECKPOINTED, checkpointed_mid),
        ):
            email = http.get(f"emails({activity})").json()
            assert (email["statuscode"], email["messageid"]) == (3, mid)  # Sent
            assert store.tracking.state_of(mid) is TrackState.TRACKED
        # The user's settings, written.
        options = http.get(
            f"usersettingscollection({ME_USER_ID})",
            params={"$select": "incomingemailfilteringmethod,autocreatecontactonpromote"},
        ).json()
    assert options["incomingemailfilteringmethod"] == 3
    assert options["autocreatecontactonpromote"] == 2
    ws.close()


def test_queueing_again_what_an_old_row_holds_is_one_operation(tmp_path: Path) -> None:
    """Identical operations are not queued twice, whichever format the queued one is in."""
    with Store.open(tmp_path / "store.sqlite") as store:
        store.conn.executescript(LEGACY_SQL)
        outbox = Outbox(store)
        ops = {op.id: op for op in outbox.pending()}
        send = next(op for op in ops.values() if op.key == f"send:{PENDING_SEND}")
        assert isinstance(send.payload, SendPending)
        assert outbox.enqueue(send.payload) == send.id
        settings = next(op for op in ops.values() if op.kind is OpKind.UPDATE_USER_SETTINGS)
        assert isinstance(settings.payload, UpdateUserSettings)
        assert outbox.enqueue(settings.payload) == settings.id
        assert outbox.counts()["queued"] == len(ops)
        # What is new is written as v1.
        changed = UpdateUserSettings({"incomingemailfilteringmethod": 1}, ME_USER_ID)
        new_id = outbox.enqueue(changed)
        (text,) = store.conn.execute(
            "SELECT payload_json FROM outbox WHERE id = ?", (new_id,)
        ).fetchone()
        assert json.loads(text)["v"] == 1
