"""Issue 19 on the emulator: what the router's application user may do (read every mailbox,
file mail for its owner, queues, cases, mailbox alerts, server-side Pending Send) and that an
ordinary user still may not; queue items, AddToQueue, case numbers, e-mail-to-case rules."""

from __future__ import annotations

import re
import secrets
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.crm.client import ODATA_HEADERS
from crmserver import RunningServer
from crmserver.seed import (
    CASE_RULE_NAME,
    DEMO_QUEUES,
    ROUTER_USER_ID,
    SERVER_SIDE_USER,
    guid,
    user_id,
)
from tests.plugins.crm import crm_ssl_context

from .helpers import JANE, ME, PRIYA, assert_odata_error, client, unique_message_id

SUPPORT = guid("queue", DEMO_QUEUES[0][0])
SALES = guid("queue", DEMO_QUEUES[1][0])
SAM = SERVER_SIDE_USER.email  # Hannah: her mailbox is server-side


def router_client(server: RunningServer) -> httpx.Client:
    """Register an application for the seeded router user as an administrator does
    (``trackbox-crm app add --user <its id>``) and sign in with client credentials: a Web
    API client with its bearer token."""
    client_id, secret = f"router-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    command = ["app", "add", "--db", str(server.settings.db_path), "--client-id", client_id]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmserver.cli",
            *command,
            "--user",
            ROUTER_USER_ID,
            "--password-stdin",
        ],
        input=secret + "\n",
        text=True,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    r = httpx.post(
        server.url + "/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": server.url + "/.default",
        },
        verify=crm_ssl_context(server),
    )
    assert r.status_code == 200, r.text
    return httpx.Client(
        base_url=server.api_url,
        headers={**ODATA_HEADERS, "Authorization": f"Bearer {r.json()['access_token']}"},
        timeout=30,
        verify=crm_ssl_context(server),
    )


@pytest.fixture
def router(crm_https: RunningServer) -> Iterator[httpx.Client]:
    with router_client(crm_https) as c:
        yield c


def deliver(c: httpx.Client, owner: str | None = None, **params: object) -> str:
    body: dict[str, object] = {
        "MessageId": unique_message_id(),
        "Subject": "Printer on fire",
        "From": JANE,
        "To": f"support@{ME.split('@')[1]}",
    }
    if owner:
        body["ExtraProperties"] = {"ownerid@odata.bind": f"/systemusers({owner})"}
    body.update(params)
    r = c.post("emails/Microsoft.Dynamics.CRM.DeliverIncomingEmail", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["EmailId"])


def test_router_signs_in_as_the_application_and_reads_the_configuration(
    router: httpx.Client,
) -> None:
    assert router.get("WhoAmI").json()["UserId"] == ROUTER_USER_ID
    boxes = router.get(
        "mailboxes",
        params={
            "$select": "emailaddress,incomingemaildeliverymethod,outgoingemaildeliverymethod,"
            "_emailserverprofile_value,_regardingobjectid_value"
        },
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()["value"]
    by_address = {b["emailaddress"]: b for b in boxes}
    sam = by_address[SAM]
    assert (sam["incomingemaildeliverymethod"], sam["outgoingemaildeliverymethod"]) == (2, 2)
    support = by_address[f"support@{ME.split('@')[1]}"]
    assert support["_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "queue"
    profile = router.get(f"emailserverprofiles({sam['_emailserverprofile_value']})").json()
    assert profile["servertype"] == 1 and profile["incomingserverlocation"]
    assert by_address[ME]["incomingemaildeliverymethod"] == 1
    owners = {b["_regardingobjectid_value"] for b in boxes}
    assert ROUTER_USER_ID not in owners  # an application user has no mailbox
    rules = router.get(
        "convertrules", params={"$filter": f"_queueid_value eq {SUPPORT} and statecode eq 1"}
    ).json()["value"]
    assert [r["name"] for r in rules] == [CASE_RULE_NAME]
    assert rules[0]["allowunknownsender"] is True and rules[0]["tbx_responsetext"]
    items = router.get(
        "convertruleitems",
        params={"$filter": f"_convertruleid_value eq {rules[0]['convertruleid']}"},
    ).json()["value"]
    assert len(items) == 1 and items[0]["sequencenumber"] == 1


def test_router_files_mail_for_its_owner_and_reads_everyones(
    router: httpx.Client, crm_https: RunningServer
) -> None:
    with client(crm_https, PRIYA) as priya, client(crm_https, ME) as me:
        email = deliver(router, owner=user_id(PRIYA))
        row = priya.get(f"emails({email})").json()
        assert row["_ownerid_value"] == user_id(PRIYA) and row["statuscode"] == 4
        assert_odata_error(me.get(f"emails({email})"), 404)  # not Alex's, not a party
        mine = priya.post(
            "emails", json={"subject": "private note"}, headers={"Prefer": "return=representation"}
        ).json()["activityid"]
        assert router.get(f"emails({mine})").json()["subject"] == "private note"
        filtered = router.get(
            "emails",
            params={"$filter": f"_ownerid_value eq {user_id(PRIYA)}", "$select": "subject"},
        ).json()["value"]
        assert {e["activityid"] for e in filtered} >= {email, mine}
        r = router.patch(f"emails({mine})", json={"subject": "private note (filed)"})
        assert r.status_code == 204, r.text
        # promotion stays idempotent by Message-ID for the router too
        mid = unique_message_id()
        first = deliver(router, owner=user_id(PRIYA), MessageId=mid)
        assert deliver(router, owner=user_id(PRIYA), MessageId=mid) == first


def test_router_promotes_a_users_sent_mail_as_outgoing(router: httpx.Client) -> None:
    r = router.post(
        "DeliverPromoteEmail",
        json={
            "MessageId": unique_message_id(),
            "Subject": "Quote",
            "From": PRIYA,
            "To": JANE,
            "ExtraProperties": {"ownerid@odata.bind": f"/systemusers({user_id(PRIYA)})"},
        },
    )
    assert r.status_code == 200, r.text
    row = router.get(f"emails({r.json()['EmailId']})").json()
    assert row["directioncode"] is True and row["statuscode"] == 3


def test_an_ordinary_user_cannot_do_what_the_router_does(crm_https: RunningServer) -> None:
    with client(crm_https, PRIYA) as priya:
        on_behalf = {"ownerid@odata.bind": f"/systemusers({user_id(ME)})"}
        assert_odata_error(priya.post("emails", json={"subject": "x", **on_behalf}), 403)
        r = priya.post(
            "DeliverPromoteEmail",
            json={
                "MessageId": unique_message_id(),
                "Subject": "x",
                "From": JANE,
                "To": PRIYA,
                "ExtraProperties": on_behalf,
            },
        )
        assert_odata_error(r, 403)
        box = priya.get(
            "mailboxes", params={"$filter": f"_regardingobjectid_value eq {user_id(PRIYA)}"}
        ).json()["value"][0]["mailboxid"]
        for column, value in (
            ("tbx_lastrunresult", "ok"),
            ("processingstatecode", 1),
            ("lastsuccessfulsynccompletedon", "2026-01-01T00:00:00Z"),
        ):
            assert_odata_error(priya.patch(f"mailboxes({box})", json={column: value}), 403)
        alert = {
            "text": "x",
            "level": 3,
            "regardingobjectid_mailbox@odata.bind": f"/mailboxes({box})",
        }
        assert_odata_error(priya.post("tracelogs", json=alert), 403)
        assert_odata_error(priya.post("convertrules", json={"name": "mine"}), 403)
        assert_odata_error(priya.post("emailserverprofiles", json={"name": "mine"}), 403)


def test_router_may_not_change_users_or_their_addresses(
    router: httpx.Client, crm_https: RunningServer
) -> None:
    me = user_id(PRIYA)
    box = router.get("mailboxes", params={"$filter": f"_regardingobjectid_value eq {me}"}).json()[
        "value"
    ][0]["mailboxid"]
    assert_odata_error(router.patch(f"mailboxes({box})", json={"emailaddress": "x@y.example"}), 403)
    assert_odata_error(router.patch(f"systemusers({me})", json={"tbx_isadministrator": True}), 403)
    assert_odata_error(
        router.patch(f"usersettingscollection({me})", json={"incomingemailfilteringmethod": 0}),
        403,
    )
    assert router.get(f"usersettingscollection({me})").status_code == 200  # the owner's option
    assert_odata_error(router.post("convertrules", json={"name": "router's own"}), 403)


def test_add_to_queue_keeps_one_item_per_record(
    router: httpx.Client, crm_https: RunningServer
) -> None:
    email = deliver(router, owner=user_id(PRIYA), Subject="Where is my order?")
    target = {"@odata.type": "Microsoft.Dynamics.CRM.email", "activityid": email}
    r = router.post(f"queues({SUPPORT})/Microsoft.Dynamics.CRM.AddToQueue", json={"Target": target})
    assert r.status_code == 200, r.text
    item = r.json()["QueueItemId"]
    again = router.post(
        f"queues({SUPPORT})/Microsoft.Dynamics.CRM.AddToQueue", json={"Target": target}
    )
    assert again.json()["QueueItemId"] == item
    moved = router.post(
        f"queues({SALES})/Microsoft.Dynamics.CRM.AddToQueue",
        json={"Target": {"@odata.id": f"emails({email})"}},
    )
    assert moved.json()["QueueItemId"] == item
    rows = router.get("queueitems", params={"$filter": f"_objectid_value eq {email}"}).json()
    assert len(rows["value"]) == 1
    row = rows["value"][0]
    assert row["_queueid_value"] == SALES and row["objecttypecode"] == 4202
    assert row["title"] == "Where is my order?" and row["enteredon"]
    with client(crm_https, PRIYA) as priya, client(crm_https, SAM) as sam:
        assert priya.get(f"queueitems({item})").status_code == 200  # her e-mail
        assert_odata_error(sam.get(f"queueitems({item})"), 404)  # not his: no subject leak
        listed = sam.get("queueitems", params={"$filter": f"_objectid_value eq {email}"})
        assert listed.json()["value"] == []
        r = sam.post(
            f"queues({SUPPORT})/Microsoft.Dynamics.CRM.AddToQueue", json={"Target": target}
        )
        assert_odata_error(r, 404)


def test_cases_are_numbered_and_mail_can_be_regarding_them(
    router: httpx.Client, crm_https: RunningServer
) -> None:
    contact = router.get(
        "contacts", params={"$filter": f"emailaddress1 eq '{JANE}'", "$select": "contactid"}
    ).json()["value"][0]["contactid"]
    made = []
    for title in ("Printer on fire", "Printer still on fire"):
        r = router.post(
            "incidents",
            json={
                "title": title,
                "caseorigincode": 2,
                "customerid_contact@odata.bind": f"/contacts({contact})",
                "ownerid@odata.bind": f"/systemusers({user_id(PRIYA)})",
            },
            headers={"Prefer": "return=representation"},
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    numbers = [m["ticketnumber"] for m in made]
    assert all(re.fullmatch(r"CAS-\d{5}-[A-Z0-9]{6}", n) for n in numbers), numbers
    assert int(numbers[1][4:9]) == int(numbers[0][4:9]) + 1
    assert made[0]["_customerid_value"] == contact and made[0]["statuscode"] == 1
    case = made[0]["incidentid"]
    email = deliver(
        router,
        owner=user_id(PRIYA),
        ExtraProperties={
            "ownerid@odata.bind": f"/systemusers({user_id(PRIYA)})",
            "regardingobjectid_incident_email@odata.bind": f"/incidents({case})",
        },
    )
    assert router.get(f"emails({email})").json()["_regardingobjectid_value"] == case
    r = router.post(
        f"queues({SUPPORT})/Microsoft.Dynamics.CRM.AddToQueue",
        json={"Target": {"@odata.type": "Microsoft.Dynamics.CRM.incident", "incidentid": case}},
    )
    assert r.status_code == 200, r.text
    assert router.patch(f"incidents({case})", json={"statecode": 1}).status_code == 204
    assert router.get(f"incidents({case})").json()["statuscode"] == 5


def test_mailbox_alerts_are_for_administrators(
    router: httpx.Client, crm_https: RunningServer
) -> None:
    box = router.get("mailboxes", params={"$filter": f"emailaddress eq '{SAM}'"}).json()["value"][
        0
    ]["mailboxid"]
    text = f"Sign-in to the mail server failed ({uuid.uuid4().hex[:6]})"
    r = router.post(
        "tracelogs",
        json={
            "level": 3,
            "text": text,
            "regardingobjectid_mailbox@odata.bind": f"/mailboxes({box})",
        },
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 201, r.text
    alert = r.json()["tracelogid"]
    done = router.patch(
        f"mailboxes({box})",
        json={
            "processingstatecode": 0,
            "lastsuccessfulsynccompletedon": "2026-12-07T01:00:00Z",
            "tbx_lastrunresult": "failed: sign-in",
        },
    )
    assert done.status_code == 204, done.text
    with client(crm_https, ME) as admin, client(crm_https, PRIYA) as priya:
        rows = admin.get(
            "tracelogs", params={"$filter": f"_regardingobjectid_value eq {box} and level eq 3"}
        ).json()["value"]
        assert text in [row["text"] for row in rows] and rows[0]["createdon"]
        assert admin.get(f"mailboxes({box})").json()["tbx_lastrunresult"] == "failed: sign-in"
        assert_odata_error(priya.get(f"tracelogs({alert})"), 404)
        assert priya.get("tracelogs").json()["value"] == []


def test_server_side_outgoing_mail_is_sent_by_the_router_only(
    fresh_crm_https: RunningServer,
) -> None:
    server = fresh_crm_https
    with client(server, SAM) as sam, client(server, ME) as me, router_client(server) as router:

        def draft(c: httpx.Client, sender: str) -> str:
            r = c.post(
                "emails",
                json={
                    "subject": f"Renewal {uuid.uuid4().hex[:6]}",
                    "email_activity_parties": [
                        {
                            "partyid_systemuser@odata.bind": f"/systemusers({user_id(sender)})",
                            "participationtypemask": 1,
                        },
                        {"addressused": JANE, "participationtypemask": 2},
                    ],
                },
                headers={"Prefer": "return=representation"},
            )
            assert r.status_code == 201, r.text
            email = str(r.json()["activityid"])
            sent = c.post(
                f"emails({email})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True}
            )
            assert sent.status_code == 200, sent.text
            return email

        org = {"allowunresolvedpartiesonemailsend": True}
        assert (
            me.patch(
                f"organizations({me.get('WhoAmI').json()['OrganizationId']})", json=org
            ).status_code
            == 204
        )
        sams, mine = draft(sam, SAM), draft(me, ME)
        assert sam.get(f"emails({sams})").json()["statuscode"] == 6  # Pending Send
        handed = sam.post("BackgroundSendEmail", json={"Query": {}}).json()["EntityCollection"]
        assert sams not in [e["activityid"] for e in handed]
        got = router.post("BackgroundSendEmail", json={"Query": {}}).json()["EntityCollection"]
        ids = [e["activityid"] for e in got]
        assert sams in ids and mine not in ids
        assert router.get(f"emails({sams})").json()["statuscode"] == 7
        r = router.patch(f"emails({sams})", json={"statecode": 1, "statuscode": 3})
        assert r.status_code == 204, r.text
        mine_handed = me.post("BackgroundSendEmail", json={"Query": {}}).json()["EntityCollection"]
        assert mine in [e["activityid"] for e in mine_handed]


def test_an_existing_database_gets_the_new_mailbox_columns(tmp_path: Path) -> None:
    """A database from before issue 19 (no server-side mailbox columns) still opens, with
    the columns added empty."""
    from crmserver.storage import Storage

    path = tmp_path / "old.db"
    Storage(path).close()
    old = sqlite3.connect(path)
    for column in ("tbx_lastrunresult", "emailserverprofile", "emailserverprofile__type"):
        old.execute(f'ALTER TABLE mailbox DROP COLUMN "{column}"')
    old.commit()
    old.close()
    storage = Storage(path)
    try:
        have = {r["name"] for r in storage.query("SELECT name FROM pragma_table_info('mailbox')")}
        assert {"tbx_lastrunresult", "emailserverprofile", "emailserverprofile__type"} <= have
    finally:
        storage.close()
