"""The fake Graph server driven with plain httpx, as Graph's documentation describes the
requests: token checks, the folder tree, delta rounds, MIME, marking, sending, batching,
limits and faults, and the loud failure on requests it does not know."""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from core.domain import demo_data
from tests.fakes.graph_server import FakeGraphServer
from tests.plugins.graph import SHARED_SCOPES, GraphTokens

ME = demo_data.ME.email
PRIYA = demo_data.COLLEAGUES[0].email
PROP = "String {00020329-0000-0000-C000-000000000046} Name trackbox.activityid"


def mime(subject: str, n: int = 0, thread_index: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = "Ann Customer <ann@fabrikam.example>"
    m["To"] = ME
    m["Subject"] = subject
    m["Message-ID"] = f"<{subject.replace(' ', '-')}-{n}@fabrikam.example>"
    m["Date"] = "Mon, 07 Dec 2026 10:00:00 +0000"
    if thread_index:
        m["Thread-Index"] = thread_index
    m.set_content(f"Hello number {n}.\r\n")
    return m.as_bytes()


def client(server: FakeGraphServer, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=server.url,
        headers=headers,
        verify=ssl.create_default_context(cafile=server.ca_file),
        timeout=60,
    )


@pytest.fixture
def graph(graph_server: FakeGraphServer, graph_authority: GraphTokens) -> Iterator[httpx.Client]:
    graph_server.add_mailbox(ME)
    with client(graph_server, graph_authority.graph()) as c:
        yield c


def follow(graph: httpx.Client, url: str, **headers: str) -> tuple[list[dict[str, Any]], str]:
    """Every row of a delta round, and its deltaLink."""
    rows: list[dict[str, Any]] = []
    while True:
        r = graph.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        rows += body["value"]
        if "@odata.deltaLink" in body:
            return rows, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


# -- tokens ---------------------------------------------------------------------------------


def test_tokens_are_checked(graph_server: FakeGraphServer, graph_authority: GraphTokens) -> None:
    graph_server.add_mailbox(ME)
    cases = {
        None: 401,
        "not-a-jwt": 401,
        graph_authority.graph(lifetime=-600): 401,
        graph_authority.graph(audience="https://outlook.office.com"): 401,
        graph_authority.graph(issuer="https://elsewhere.example/v2.0"): 401,
        graph_authority.crm(): 401,  # a real CRM token: another audience
        graph_authority.graph(scopes=("User.Read",)): 403,
        graph_authority.graph(scopes=("Mail.ReadWrite",)): 200,
        graph_authority.graph(audience="00000003-0000-0000-c000-000000000000"): 200,
    }
    for token, status in cases.items():
        with client(graph_server, token) as c:
            r = c.get("/me/mailFolders")
        assert r.status_code == status, (token, r.text)
        if status == 401:
            assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    with client(graph_server, graph_authority.graph(scopes=("Mail.ReadWrite",))) as c:
        r = c.post("/me/sendMail", json={"message": {"subject": "x", "toRecipients": []}})
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"


def test_shared_mailbox_needs_a_grant_and_shared_scopes(
    graph_server: FakeGraphServer, graph_authority: GraphTokens
) -> None:
    graph_server.add_mailbox("sales@contoso.example")
    url = "/users/sales@contoso.example/mailFolders/inbox"
    with client(graph_server, graph_authority.graph(scopes=SHARED_SCOPES)) as c:
        assert c.get(url).status_code == 403
        graph_server.grant("sales@contoso.example", ME)
        assert c.get(url).status_code == 200
    with client(graph_server, graph_authority.graph()) as c:  # no *.Shared scope
        assert c.get(url).status_code == 403
        assert c.get("/users/nobody@contoso.example/mailFolders").status_code == 404


# -- folders --------------------------------------------------------------------------------


def test_folder_tree_create_rename_move_delete(graph: httpx.Client) -> None:
    top = graph.get("/me/mailFolders", params={"$top": "4"}).json()
    assert len(top["value"]) == 4 and "@odata.nextLink" in top
    names = [f["displayName"] for f in top["value"]]
    names += [f["displayName"] for f in graph.get(top["@odata.nextLink"]).json()["value"]]
    assert names == ["Inbox", "Sent Items", "Drafts", "Deleted Items", "Junk Email", "Archive"]
    inbox = graph.get("/me/mailFolders/inbox").json()
    assert inbox["displayName"] == "Inbox" and inbox["childFolderCount"] == 0
    made = graph.post(f"/me/mailFolders/{inbox['id']}/childFolders", json={"displayName": "A"})
    assert made.status_code == 201
    sub = made.json()
    assert sub["parentFolderId"] == inbox["id"]
    children = graph.get("/me/mailFolders/inbox/childFolders").json()["value"]
    assert [f["id"] for f in children] == [sub["id"]]
    renamed = graph.patch(f"/me/mailFolders/{sub['id']}", json={"displayName": "B"}).json()
    assert renamed["displayName"] == "B"
    moved = graph.post(f"/me/mailFolders/{sub['id']}/move", json={"destinationId": "archive"})
    assert moved.status_code == 201
    assert moved.json()["parentFolderId"] == graph.get("/me/mailFolders/archive").json()["id"]
    top_made = graph.post("/me/mailFolders", json={"displayName": "Projects"})
    assert top_made.status_code == 201
    assert graph.delete(f"/me/mailFolders/{sub['id']}").status_code == 204
    assert graph.get(f"/me/mailFolders/{sub['id']}").status_code == 404


# -- delta ----------------------------------------------------------------------------------


def test_delta_rounds_with_paging_select_removed_and_gone(
    graph_server: FakeGraphServer, graph: httpx.Client
) -> None:
    ids = [graph_server.add_message(ME, "inbox", mime("Round one", n)) for n in range(7)]
    url = "/me/mailFolders/inbox/messages/delta?$select=subject,isRead,internetMessageId"
    r = graph.get(url, headers={"Prefer": "odata.maxpagesize=3"})
    assert r.headers["Preference-Applied"] == "odata.maxpagesize=3"
    assert len(r.json()["value"]) == 3 and "@odata.nextLink" in r.json()
    rows, link = follow(graph, url, Prefer="odata.maxpagesize=3")
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert set(rows[0]) == {"@odata.type", "@odata.etag", "id", "subject", "isRead",
                            "internetMessageId"}  # fmt: skip
    assert follow(graph, link)[0] == []

    graph_server.change_message(ME, ids[0], is_read=True)
    assert graph.delete(f"/me/messages/{ids[1]}").status_code == 204
    moved = graph.post(f"/me/messages/{ids[2]}/move", json={"destinationId": "archive"}).json()
    assert moved["id"] != ids[2] and moved["parentFolderId"] != ids[2]
    added = graph_server.add_message(ME, "inbox", mime("Round two"))
    rows, link = follow(graph, link)
    by_id = {row["id"]: row for row in rows}
    assert by_id[ids[0]]["isRead"] is True
    assert by_id[ids[1]]["@removed"] == {"reason": "deleted"}
    assert by_id[ids[2]]["@removed"] == {"reason": "changed"}
    assert added in by_id and len(rows) == 4

    graph_server.expire_delta_links()
    gone = graph.get(link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "SyncStateNotFound"
    assert len(follow(graph, url)[0]) == 6  # a new round from scratch: 7 - 2 + 1


def test_select_of_an_unknown_field_is_recorded(
    graph_server: FakeGraphServer, graph: httpx.Client
) -> None:
    r = graph.get("/me/mailFolders/inbox/messages/delta?$select=subject,size")
    assert r.status_code == 400
    assert any("size" in u for u in graph_server.unknown_requests)
    graph_server.unknown_requests.clear()


# -- messages -------------------------------------------------------------------------------


def test_message_fields_and_mime_round_trip(
    graph_server: FakeGraphServer, graph: httpx.Client
) -> None:
    index = base64.b64encode(b"\x01" * 22).decode()
    raw = mime("Fields", 1, thread_index=index)
    mid = graph_server.add_message(ME, "Inbox/Projects", raw, flagged=True, categories=["Red"])
    m = graph.get(f"/me/messages/{mid}").json()
    assert m["internetMessageId"] == "<Fields-1@fabrikam.example>"
    assert m["conversationIndex"] == index
    assert m["from"]["emailAddress"]["address"] == "ann@fabrikam.example"
    assert m["toRecipients"] == [{"emailAddress": {"name": ME, "address": ME}}]
    assert m["flag"] == {"flagStatus": "flagged"} and m["categories"] == ["Red"]
    assert m["sentDateTime"] == "2026-12-07T10:00:00Z" and m["isRead"] is False
    assert "internetMessageHeaders" not in m
    headers = graph.get(f"/me/messages/{mid}?$select=internetMessageHeaders").json()
    assert {"name": "Thread-Index", "value": index} in headers["internetMessageHeaders"]
    assert graph.get(f"/me/messages/{mid}/$value").content == raw


def test_patch_categories_and_extended_property_read_back(
    graph_server: FakeGraphServer, graph: httpx.Client
) -> None:
    mid = graph_server.add_message(ME, "inbox", mime("Mark me"))
    patch = {
        "isRead": True,
        "flag": {"flagStatus": "complete"},
        "categories": ["Tracked to Dynamics 365"],
        "singleValueExtendedProperties": [{"id": PROP, "value": "act-1"}],
    }
    assert graph.patch(f"/me/messages/{mid}", json=patch).status_code == 200
    expand = f"singleValueExtendedProperties($filter=id eq '{PROP}')"
    m = graph.get(f"/me/messages/{mid}", params={"$expand": expand}).json()
    assert m["categories"] == ["Tracked to Dynamics 365"] and m["isRead"] is True
    assert m["flag"] == {"flagStatus": "complete"}
    assert m["singleValueExtendedProperties"] == [{"id": PROP, "value": "act-1"}]
    other = graph_server.add_message(ME, "inbox", mime("Unmarked"))
    m = graph.get(f"/me/messages/{other}", params={"$expand": expand}).json()
    assert "singleValueExtendedProperties" not in m


def test_copy_create_and_send_mime_saved_to_sent_items(
    graph_server: FakeGraphServer, graph: httpx.Client
) -> None:
    mid = graph_server.add_message(ME, "inbox", mime("Copy me"))
    copy = graph.post(f"/me/messages/{mid}/copy", json={"destinationId": "archive"}).json()
    assert copy["id"] != mid and graph.get(f"/me/messages/{mid}").status_code == 200
    raw = mime("Draft")
    plain = {"Content-Type": "text/plain"}
    made = graph.post("/me/mailFolders/drafts/messages", content=base64.b64encode(raw),
                      headers=plain)  # fmt: skip
    assert made.status_code == 201 and made.json()["isDraft"] is True
    sent_raw = mime("Sent as MIME")
    r = graph.post("/me/sendMail", content=base64.b64encode(sent_raw), headers=plain)
    assert r.status_code == 202
    sent = graph_server.sent[-1]
    assert sent.mime == sent_raw and sent.recipients == [ME] and sent.saved_id
    assert graph.get(f"/me/messages/{sent.saved_id}/$value").content == sent_raw
    sent_items = graph_server.messages(ME, "sentitems")
    assert [m.id for m in sent_items] == [sent.saved_id]
    to = [{"emailAddress": {"address": PRIYA}}]
    message = {
        "subject": "JSON",
        "toRecipients": to,
        "body": {"contentType": "text", "content": "Hi"},
    }
    body = {"message": message, "saveToSentItems": False}
    assert graph.post("/me/sendMail", json=body).status_code == 202
    assert graph_server.sent[-1].saved_id is None and graph_server.sent[-1].recipients == [PRIYA]


# -- batching, limits, faults -----------------------------------------------------------------


def test_batch_of_twenty_with_depends_on_and_twenty_one_refused(
    graph_server: FakeGraphServer, graph: httpx.Client
) -> None:
    ids = [graph_server.add_message(ME, "inbox", mime("Batch", n)) for n in range(20)]
    requests = [
        {"id": str(n), "method": "PATCH", "url": f"/me/messages/{mid}",
         "headers": {"Content-Type": "application/json"}, "body": {"categories": ["T"]}}
        for n, mid in enumerate(ids)
    ]  # fmt: skip
    requests[19] = {"id": "19", "method": "GET", "url": f"/me/messages/{ids[19]}/$value",
                    "dependsOn": ["0"]}  # fmt: skip
    r = graph.post("/$batch", json={"requests": requests})
    assert r.status_code == 200
    responses = {x["id"]: x for x in r.json()["responses"]}
    assert all(responses[str(n)]["status"] == 200 for n in range(20))
    assert base64.b64decode(responses["19"]["body"]) == mime("Batch", 19)
    assert all(graph_server.message(ME, mid).categories == ["T"] for mid in ids[:19])
    too_many = [*requests, {"id": "20", "method": "GET", "url": "/me/mailFolders"}]
    assert graph.post("/$batch", json={"requests": too_many}).status_code == 400
    assert graph_server.unknown_requests
    graph_server.unknown_requests.clear()


def test_fifth_concurrent_request_to_a_mailbox_is_throttled(
    graph_server: FakeGraphServer, graph: httpx.Client
) -> None:
    gate = graph_server.hold("mailFolders/inbox")
    answers: list[int] = []

    def ask() -> None:
        answers.append(graph.get("/me/mailFolders/inbox").status_code)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    gate.wait_for(4)
    r = graph.get("/me/mailFolders/drafts")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "ApplicationThrottled"
    assert r.json()["error"]["innerError"]["code"] == "MailboxConcurrency"
    gate.release()
    for t in threads:
        t.join(60)
    assert answers == [200] * 4
    assert graph.get("/me/mailFolders/drafts").status_code == 200


def test_injected_faults(graph_server: FakeGraphServer, graph: httpx.Client) -> None:
    graph_server.inject(503, times=2, retry_after=7, path_contains="delta")
    url = "/me/mailFolders/inbox/messages/delta"
    for _ in range(2):
        r = graph.get(url)
        assert r.status_code == 503 and r.headers["Retry-After"] == "7"
    assert graph.get(url).status_code == 200
    graph_server.inject(410, path_contains="delta")
    assert graph.get(url).json()["error"]["code"] == "SyncStateNotFound"


def test_unknown_requests_are_answered_and_recorded(
    graph_server: FakeGraphServer, graph: httpx.Client
) -> None:
    assert graph.get("/me/calendars").status_code == 400
    assert graph.put("/me/messages/x").status_code == 501
    assert graph.get("/me/mailFolders", params={"$filter": "x"}).status_code == 400
    assert graph.patch("/me/messages/x", json={"importance": "high"}).status_code in (400, 404)
    assert len(graph_server.unknown_requests) >= 3
    graph_server.unknown_requests.clear()
