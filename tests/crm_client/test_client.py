"""CrmClient against the real emulator on loopback: CRUD, paging, delta links, actions,
functions, $batch and error classification."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from core.crm import (
    Attachment,
    BasicAuth,
    BatchRequest,
    BearerAuth,
    CrmAuthError,
    CrmClient,
    CrmPermanentError,
    CrmUnavailable,
)
from core.domain import demo_data
from core.domain.model import Address
from crmserver import RunningServer


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def test_who_am_i(crm: CrmClient) -> None:
    me = crm.who_am_i()
    users = {
        u["systemuserid"]: u["internalemailaddress"]
        for u in crm.query("systemusers", select=["internalemailaddress"])
    }
    assert users[me.user_id].lower() == demo_data.ME.email
    assert me.business_unit_id and me.organization_id


def test_crud_roundtrip(crm: CrmClient) -> None:
    tag = _tag()
    cid = crm.create(
        "contacts",
        {"firstname": "Crud", "lastname": tag, "emailaddress1": f"crud.{tag}@example.test"},
    )
    row = crm.get("contacts", cid, select=["fullname", "emailaddress1"])
    assert row["contactid"] == cid and row["emailaddress1"] == f"crud.{tag}@example.test"
    crm.update("contacts", cid, {"jobtitle": "Buyer"})
    assert crm.get("contacts", cid, select=["jobtitle"])["jobtitle"] == "Buyer"
    crm.delete("contacts", cid)
    with pytest.raises(CrmPermanentError) as info:
        crm.get("contacts", cid)
    assert info.value.status == 404 and info.value.not_found
    assert info.value.code == "0x80040217"
    with pytest.raises(CrmPermanentError):  # If-Match: * refuses to upsert
        crm.update("contacts", str(uuid.uuid4()), {"lastname": "ghost"})


def test_query_follows_next_links(crm: CrmClient) -> None:
    tag = _tag()
    for i in range(23):
        crm.create("contacts", {"firstname": f"Page{i:02d}", "lastname": tag})
    pages = list(
        crm.query_pages(
            "contacts",
            select=["firstname"],
            filter=f"lastname eq '{tag}'",
            orderby="firstname asc",
            page_size=10,
        )
    )
    assert [len(p) for p in pages] == [10, 10, 3]
    names = [r["firstname"] for p in pages for r in p]
    assert names == [f"Page{i:02d}" for i in range(23)]
    assert len(list(crm.query("contacts", filter=f"lastname eq '{tag}'", top=5))) == 5


def test_filter_quoting(crm: CrmClient) -> None:
    tag = _tag()
    crm.create("contacts", {"firstname": "O'Brien", "lastname": tag})
    rows = list(
        crm.query(
            "contacts",
            select=["firstname"],
            filter=f"firstname eq 'O''Brien' and lastname eq '{tag}'",
        )
    )
    assert [r["firstname"] for r in rows] == ["O'Brien"]


def test_track_changes_full_then_delta(fresh_crm: RunningServer) -> None:
    with CrmClient(fresh_crm.url, BasicAuth(demo_data.ME.email, "demo")) as crm:
        full = crm.track_changes("accounts", ["name", "emailaddress1"])
        assert full.rows and full.delta_link and not full.deleted
        paged = list(crm.track_changes_pages("accounts", ["name"], page_size=2))
        assert all(p.delta_link is None for p in paged[:-1]) and paged[-1].delta_link
        assert sum(len(p.rows) for p in paged) == len(full.rows)

        new_id = crm.create("accounts", {"name": "Delta One"})
        changed_id = full.rows[0]["accountid"]
        crm.update("accounts", changed_id, {"name": "Renamed"})
        gone_id = full.rows[1]["accountid"]
        crm.delete("accounts", gone_id)
        delta = crm.track_changes("accounts", ["name"], full.delta_link)
        names = {r["accountid"]: r["name"] for r in delta.rows}
        assert names[new_id] == "Delta One" and names[changed_id] == "Renamed"
        assert delta.deleted == [gone_id]
        again = crm.track_changes("accounts", ["name"], delta.delta_link)
        assert (again.rows, again.deleted) == ([], [])
        with pytest.raises(CrmPermanentError):
            crm.track_changes(
                "accounts", ["name"], crm.api_url + "accounts?$select=name&$deltatoken=garbage"
            )


def test_promote_is_idempotent_and_found_by_message_id(crm: CrmClient) -> None:
    tag = _tag()
    message_id = f"<promote.{tag}@fabrikam.example>"
    contact = demo_data.CONTACTS[0]
    kwargs = {
        "message_id": message_id,
        "subject": f"Quote {tag}",
        "sender": Address(contact.email, contact.full_name),
        "to": [demo_data.ME.email],
        "received_on": datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
        "body": "<p>Hello</p>",
        "attachments": [Attachment("quote.txt", "text/plain", b"price: 10")],
    }
    first = crm.deliver_promote_email(**kwargs)  # type: ignore[arg-type]
    second = crm.deliver_promote_email(**kwargs)  # type: ignore[arg-type]
    assert first == second
    email = crm.get("emails", first, select=["subject", "messageid"])
    assert email["messageid"] == message_id
    others = [f"<missing.{i}.{tag}@x>" for i in range(120)]  # three filter batches
    found = crm.find_emails_by_message_id([*others[:70], message_id, *others[70:]])
    assert list(found) == [message_id]
    info = found[message_id]
    assert info.activity_id == first and info.owner_id == crm.who_am_i().user_id
    crm.delete_email(first)
    assert crm.find_emails_by_message_id([message_id]) == {}


def test_promote_with_regarding(crm: CrmClient) -> None:
    tag = _tag()
    account = next(crm.query("accounts", select=["name"], top=1))
    message_id = f"<regarding.{tag}@x>"
    crm.deliver_promote_email(
        message_id=message_id,
        subject="About the order",
        sender="buyer@x.example",
        to=[demo_data.ME.email],
        received_on=None,
        body="text",
        extra_properties={
            "regardingobjectid_account_email@odata.bind": f"/accounts({account['accountid']})"
        },
    )
    info = crm.find_emails_by_message_id([message_id])[message_id]
    assert info.regarding is not None
    assert (info.regarding.entity, info.regarding.id) == ("account", account["accountid"])
    assert info.regarding.name == account["name"]


def test_functions_and_actions(crm: CrmClient) -> None:
    result = crm.call_function(
        "CheckPromoteEmail", {"MessageId": f"<check.{_tag()}@x>", "Subject": "It's new"}
    )
    assert result["ShouldPromote"] is True
    token = crm.execute_action("GetTrackingTokenEmail", {"Subject": "Hello"})
    assert token["TrackingToken"]


def test_batch(crm: CrmClient) -> None:
    tag = _tag()
    results = crm.batch(
        [
            BatchRequest("POST", "contacts", {"firstname": "B1", "lastname": tag}),
            BatchRequest("POST", "contacts", {"firstname": "B2", "lastname": tag}),
        ],
        change_set=True,
    )
    assert [r.status for r in results] == [204, 204] and all(r.entity_id for r in results)
    mixed = crm.batch(
        [
            BatchRequest("GET", f"contacts({results[0].entity_id})?$select=firstname"),
            BatchRequest("GET", f"contacts({uuid.uuid4()})"),
        ]
    )
    assert mixed[0].status == 200 and mixed[0].body["firstname"] == "B1"
    assert isinstance(mixed[1].error, CrmPermanentError) and mixed[1].status == 404
    linked = crm.batch(
        [
            BatchRequest("POST", "accounts", {"name": f"Batch {tag}"}),
            BatchRequest(
                "POST", "contacts", {"lastname": tag, "parentcustomerid_account@odata.bind": "$1"}
            ),
        ],
        change_set=True,
    )
    contact = crm.get("contacts", linked[1].entity_id or "", select=["_parentcustomerid_value"])
    assert contact["_parentcustomerid_value"] == linked[0].entity_id
    failed = crm.batch(
        [
            BatchRequest("POST", "contacts", {"lastname": f"rolled-back-{tag}"}),
            BatchRequest("POST", "contacts", {"nosuchcolumn": 1}),
        ],
        change_set=True,
    )
    assert any(isinstance(r.error, CrmPermanentError) for r in failed)
    assert list(crm.query("contacts", filter=f"lastname eq 'rolled-back-{tag}'")) == []


def test_bad_query_is_permanent_with_crm_code(crm: CrmClient) -> None:
    with pytest.raises(CrmPermanentError) as info:
        list(crm.query("contacts", filter="nosuchcolumn eq 1"))
    assert info.value.status == 400 and info.value.code.startswith("0x")
    assert info.value.message


def test_wrong_password_is_auth_error(crm_server: RunningServer) -> None:
    with (
        CrmClient(crm_server.url, BasicAuth(demo_data.ME.email, "wrong")) as crm,
        pytest.raises(CrmAuthError) as info,
    ):
        crm.who_am_i()
    assert info.value.status == 401
    assert "wrong" not in str(info.value) and "wrong" not in repr(crm)


def test_bearer_auth_with_token_endpoint(crm_server: RunningServer) -> None:
    calls: list[str] = []

    def token() -> str:
        calls.append("token")
        response = httpx.post(
            crm_server.url + "/oauth2/v2.0/token",
            data={
                "grant_type": "password",
                "username": demo_data.ME.email,
                "password": demo_data.DEMO_PASSWORD,
                "client_id": "trackbox",
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    with CrmClient(crm_server.url, BearerAuth(token)) as crm:
        assert crm.who_am_i().user_id
    assert calls
    with (
        CrmClient(crm_server.url, BearerAuth(lambda: "not-a-token")) as crm,
        pytest.raises(CrmAuthError),
    ):
        crm.who_am_i()


def test_unreachable_server_is_unavailable() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with (
        CrmClient(
            f"http://127.0.0.1:{port}",
            BasicAuth("u", "p"),
            timeout=5,
            get_retries=1,
            max_retry_wait=0.01,
        ) as crm,
        pytest.raises(CrmUnavailable) as info,
    ):
        crm.who_am_i()
    assert info.value.retry_after is None
