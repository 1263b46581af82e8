"""Issue 19 on the desktop: the client reads its user's mailbox record each cycle and honours
it. Server-side incoming: nothing is tracked automatically (the reason says who does it),
manual Track still works and nothing is tracked twice, online or with the CRM away (the record
is cached). Server-side outgoing: the client takes no Pending Send mail. Real servers on
loopback: the emulator over HTTPS, Dovecot, the SMTP relay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.mailbox_delivery import INCOMING_BY_SERVER_TEXT, IncomingDelivery
from core.domain.model import Address, TrackState
from core.domain.tracking import TrackReason
from core.mail import open_backend
from core.sync.delivery import own_delivery
from core.workspace.facade import Workspace
from crmserver import RunningServer
from crmserver.seed import SERVER_SIDE_USER, user_id
from tests.crmserver.test_router_entities import router_client
from tests.plugins.crm import crm_ssl_context
from tests.plugins.mailservers import PASSWORD, DovecotServer, SmtpServer
from tests.sync.env import Env, mime

HANNAH = Address(SERVER_SIDE_USER.email, SERVER_SIDE_USER.full_name)
JANE = Address("jane.doe@fabrikam.example", "Jane Doe")


@pytest.fixture
def env(
    fresh_crm_https: RunningServer,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> Iterator[Env]:
    yield Env(fresh_crm_https, dovecot, smtp_server, tmp_path)


def workspace(env: Env, name: str, owner: Address = HANNAH) -> tuple[Workspace, str]:
    """A workspace for ``owner`` on a fresh Dovecot mailbox, with the CRM over HTTPS."""
    user = env.dovecot.new_user(name)
    url, smtp = env.mailbox_url(), env.smtp.url()

    def open_mailbox() -> Any:
        return open_backend(url, user=user, password=PASSWORD, smtp_url=smtp)

    crm = CrmClient(
        env.crm.url,
        BasicAuth(owner.email, demo_data.DEMO_PASSWORD),
        timeout=10,
        get_retries=0,
        verify=crm_ssl_context(env.crm),
    )
    ws = Workspace(
        store_path=env.tmp / name / "store.sqlite",
        open_mailbox=open_mailbox,
        crm=crm,
        owner=owner,
        mailbox_name=owner.email,
    )
    return ws, user


def router_delivers(router: httpx.Client, message_id: str, subject: str) -> str:
    """The organisation's router files the message for Hannah, as server-side sync does."""
    r = router.post(
        "emails/Microsoft.Dynamics.CRM.DeliverIncomingEmail",
        json={
            "MessageId": message_id,
            "Subject": subject,
            "From": JANE.email,
            "To": HANNAH.email,
            "ExtraProperties": {"ownerid@odata.bind": f"/systemusers({user_id(HANNAH.email)})"},
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["EmailId"])


def hannahs(env: Env, message_id: str) -> list[dict[str, Any]]:
    """The CRM's e-mail activities with this Message-ID, as Hannah (their owner) sees them."""
    with env.http(HANNAH.email) as http:
        r = http.get(
            "emails",
            params={"$filter": f"messageid eq '{message_id}'", "$select": "activityid"},
        )
    r.raise_for_status()
    return list(r.json()["value"])


def row_of(ws: Workspace, message_id: str) -> Any:
    rows = ws.store().messages_by_message_id(message_id)
    assert rows, f"{message_id} not in the store"
    return rows[0]


def set_incoming(env: Env, method: int) -> None:
    """As an administrator: Hannah's mailbox's incoming delivery method."""
    with env.http() as admin:  # the demo's first user is an administrator
        box = admin.get(
            "mailboxes", params={"$filter": f"emailaddress eq '{HANNAH.email}'"}
        ).json()["value"][0]["mailboxid"]
        admin.patch(
            f"mailboxes({box})", json={"incomingemaildeliverymethod": method}
        ).raise_for_status()


def test_server_side_incoming_is_left_to_the_router_and_never_tracked_twice(env: Env) -> None:
    env.set_incoming_filter(0, HANNAH.email)  # all mail: the desktop would track everything
    ws, user = workspace(env, "hannah")
    first = ws.sync_cycle()
    assert first.ok, first.errors
    delivery = own_delivery(ws.store())
    assert delivery is not None and delivery.incoming is IncomingDelivery.SERVER_SIDE
    mid, raw = mime(JANE, HANNAH, "Broken hinge")
    env.dovecot.deliver(user, raw)
    report = ws.sync_cycle()
    assert report.ok, report.errors
    assert report.counts["auto_tracked"] == 0
    row = row_of(ws, mid)
    assert row.track_state is TrackState.NOT_TRACKED
    [entry] = ws.store().tracking.audit_log(mid)
    assert entry.reason.code == TrackReason.SERVER_SIDE_SYNC
    assert INCOMING_BY_SERVER_TEXT in entry.reason.text
    assert hannahs(env, mid) == []
    with router_client(env.crm) as router:
        filed = router_delivers(router, mid, "Broken hinge")
        ws.sync_cycle()  # the CRM's change tracking brings the router's activity
        assert row_of(ws, mid).track_state is TrackState.TRACKED
        assert row_of(ws, mid).activity_id == filed
        assert ws.track([row_of(ws, mid).id]).errors == ()  # manual Track: no second one
        ws.sync_cycle()
        assert [e["activityid"] for e in hannahs(env, mid)] == [filed]
        # the other way round: Track first on the desktop, then the router files it
        mid2, raw2 = mime(JANE, HANNAH, "Broken hinge, part 2")
        env.dovecot.deliver(user, raw2)
        ws.sync_cycle()
        assert ws.track([row_of(ws, mid2).id]).errors == ()
        ws.sync_cycle()
        tracked = row_of(ws, mid2)
        assert tracked.track_state is TrackState.TRACKED and tracked.activity_id
        assert router_delivers(router, mid2, "Broken hinge, part 2") == tracked.activity_id
        assert len(hannahs(env, mid2)) == 1
    ws.close()


def test_the_record_is_cached_for_when_the_crm_is_away_and_reread_when_it_changes(
    env: Env,
) -> None:
    env.set_incoming_filter(0, HANNAH.email)
    ws, user = workspace(env, "away")
    assert ws.sync_cycle().ok
    real = ws.crm
    ws.crm = CrmClient("http://127.0.0.1:9", BasicAuth(HANNAH.email, "x"), timeout=2)
    mid, raw = mime(JANE, HANNAH, "While the CRM is away")
    env.dovecot.deliver(user, raw)
    away = ws.sync_cycle()
    assert not away.online and away.mail_online
    row = row_of(ws, mid)  # decided from the cached record, not left waiting for the CRM
    assert row.track_state is TrackState.NOT_TRACKED
    assert row.reason is not None and INCOMING_BY_SERVER_TEXT in row.reason.text
    ws.crm = real
    set_incoming(env, int(IncomingDelivery.DESKTOP))  # the admin hands tracking back
    assert ws.sync_cycle().ok
    mid2, raw2 = mime(JANE, HANNAH, "Back on the desktop")
    env.dovecot.deliver(user, raw2)
    report = ws.sync_cycle()
    assert report.counts["auto_tracked"] == 1, report
    assert row_of(ws, mid2).track_state is TrackState.TRACKED
    ws.close()


def test_server_side_outgoing_is_not_sent_by_the_client(env: Env) -> None:
    ws, _ = workspace(env, "out")
    assert ws.sync_cycle().ok
    with env.http(HANNAH.email) as http:
        r = http.post(
            "emails",
            json={
                "subject": "Your replacement hinge",
                "email_activity_parties": [
                    {
                        "partyid_systemuser@odata.bind": f"/systemusers({user_id(HANNAH.email)})",
                        "participationtypemask": 1,
                    },
                    {
                        "partyid_contact@odata.bind": f"/contacts({contact_of(http)})",
                        "participationtypemask": 2,
                    },
                ],
            },
            headers={"Prefer": "return=representation"},
        )
        assert r.status_code == 201, r.text
        activity = r.json()["activityid"]
        sent = http.post(
            f"emails({activity})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True}
        )
        assert sent.status_code == 200, sent.text
    report = ws.sync_cycle()
    assert report.ok, report.errors
    assert report.counts.get("pending_send_by_server") == 1
    assert "pending_send" not in report.counts
    with env.http(HANNAH.email) as http:
        assert http.get(f"emails({activity})").json()["statuscode"] == 6  # still the router's
    assert ws.queue() == []
    ws.close()


def contact_of(http: httpx.Client) -> str:
    rows = http.get(
        "contacts", params={"$filter": f"emailaddress1 eq '{JANE.email}'", "$select": "contactid"}
    ).json()["value"]
    return str(rows[0]["contactid"])


def test_the_rule_turns_down_automatic_tracking_only() -> None:
    """Pure: with the mailbox server-side, no automatic rule tracks (not even a reply to
    tracked mail, nor "all e-mail"), manual Track and mail sent from the CRM still do."""
    from core.domain.crm_settings import IncomingFilter, OrgSettings, UserOptions
    from core.domain.tracking import SERVER_SIDE_TEXT
    from tests.core import World, message, reply

    world = World(org=OrgSettings(), options=UserOptions(incoming_filter=IncomingFilter.ALL))
    original = world.send_from_crm("Quote", to=JANE)
    for mail in (message("Lunch?", sender=JANE), reply(original, JANE)):
        assert world.decide(mail).track
        turned_down = world.decide(mail, tracked_by_server=True)
        assert not turned_down.track and turned_down.reason.text == SERVER_SIDE_TEXT
        assert turned_down.reason.code == TrackReason.SERVER_SIDE_SYNC
        assert world.decide(mail, tracked_by_server=True, manual=True).track
        assert world.decide(mail, tracked_by_server=True, created_in_crm=True).track
