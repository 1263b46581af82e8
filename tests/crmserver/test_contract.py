"""The contract other parts of Trackbox code against: start-up, auth, WhoAmI, promotion,
look-up by Message-ID, single GET and DELETE."""

from __future__ import annotations

import httpx

from core.domain import demo_data
from crmserver import RunningServer, Settings, run_in_thread
from crmserver.seed import guid, user_id

from .helpers import JANE, ME, RUTH, assert_odata_error, client, promote, unique_message_id


def test_run_in_thread_gives_a_root_url(tmp_path) -> None:
    with run_in_thread(Settings(db_path=tmp_path / "o.db", seed="demo")) as server:
        assert server.url.startswith("http://127.0.0.1:")
        r = httpx.get(server.url + "/api/data/v9.2/WhoAmI", auth=(ME, "demo"))
        assert r.status_code == 200


def test_basic_auth_required_with_www_authenticate(crm_server: RunningServer) -> None:
    r = httpx.get(crm_server.url + "/api/data/v9.2/WhoAmI")
    err = assert_odata_error(r, 401)
    assert err["message"]
    assert "Basic" in r.headers["WWW-Authenticate"]
    r = httpx.get(crm_server.url + "/api/data/v9.2/WhoAmI", auth=(ME, "wrong"))
    assert_odata_error(r, 401)


def test_who_am_i(crm_client: httpx.Client) -> None:
    r = crm_client.get("WhoAmI")
    body = r.json()
    assert body["UserId"] == user_id(ME)
    assert body["OrganizationId"] == guid("organization", demo_data.ORGANISATION_NAME)
    assert body["BusinessUnitId"]
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
    assert r.headers["OData-Version"] == "4.0"


def test_promote_creates_received_email_with_parties(crm_client: httpx.Client) -> None:
    mid = unique_message_id()
    r = crm_client.post(
        "DeliverPromoteEmail",
        json={
            "MessageId": mid,
            "Subject": "Quote request",
            "From": f"Jane Doe <{JANE}>",
            "To": f"{ME}; stranger@nowhere.example",
            "Cc": RUTH,
            "Bcc": "",
            "ReceivedOn": "2026-11-20T10:00:00Z",
            "SubmittedBy": ME,
            "Importance": "2",
            "Body": "<p>Hello</p>",
            "Attachments": [],
            "ExtraProperties": None,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["@odata.context"].endswith(
        "$metadata#Microsoft.Dynamics.CRM.DeliverPromoteEmailResponse"
    )
    email_id = body["EmailId"]
    r = crm_client.get(
        f"emails({email_id})",
        params={
            "$expand": "email_activity_parties($select=addressused,participationtypemask,"
            "_partyid_value)"
        },
        headers={"Prefer": "odata.include-annotations=*"},
    )
    email = r.json()
    assert email["subject"] == "Quote request"
    assert email["description"] == "<p>Hello</p>"
    assert email["messageid"] == mid
    assert email["directioncode"] is False
    assert (email["statecode"], email["statuscode"]) == (1, 4)
    assert email["prioritycode"] == 2
    assert email["_ownerid_value"] == user_id(ME)
    parties = {
        (p["addressused"], p["participationtypemask"], p["_partyid_value"])
        for p in email["email_activity_parties"]
    }
    assert (JANE, 1, guid("contact", JANE)) in parties
    assert (ME, 2, user_id(ME)) in parties
    assert ("stranger@nowhere.example", 2, None) in parties
    # Ruth is both a contact and a lead: both become parties
    assert (RUTH, 3, guid("contact", RUTH)) in parties
    assert (RUTH, 3, guid("lead", RUTH)) in parties
    assert email["sender"] == JANE


def test_promote_outgoing_is_sent(crm_client: httpx.Client) -> None:
    email_id = promote(crm_client, From=ME, To=JANE)
    email = crm_client.get(f"emails({email_id})").json()
    assert email["directioncode"] is True
    assert (email["statecode"], email["statuscode"]) == (1, 3)


def test_promote_is_idempotent_across_users(crm_server: RunningServer) -> None:
    mid = unique_message_id()
    with client(crm_server) as me, client(crm_server, demo_data.COLLEAGUES[0].email) as priya:
        a = promote(me, MessageId=mid, To=f"{ME};{demo_data.COLLEAGUES[0].email}")
        b = promote(priya, MessageId=mid)
        assert a == b
        r = me.get("emails", params={"$filter": f"messageid eq '{mid}'", "$select": "activityid"})
        assert [e["activityid"] for e in r.json()["value"]] == [a]


def test_lookup_by_message_id_and_delete(crm_client: httpx.Client) -> None:
    mid = unique_message_id()
    email_id = promote(crm_client, MessageId=mid)
    r = crm_client.get(
        "emails",
        params={
            "$filter": f"messageid eq '{mid}'",
            "$select": "activityid,subject,messageid,_regardingobjectid_value",
        },
    )
    assert r.status_code == 200, r.text
    [row] = r.json()["value"]
    assert set(row) == {
        "@odata.etag",
        "activityid",
        "subject",
        "messageid",
        "_regardingobjectid_value",
    }
    r = crm_client.delete(f"emails({email_id})")
    assert r.status_code == 204
    assert_odata_error(crm_client.get(f"emails({email_id})"), 404)
    r = crm_client.get("activityparties", params={"$filter": f"_activityid_value eq {email_id}"})
    assert r.json()["value"] == []


def test_promote_bound_forms(crm_client: httpx.Client) -> None:
    mid = unique_message_id()
    params = {"MessageId": mid, "Subject": "Bound", "From": JANE, "To": ME}
    r = crm_client.post("emails/Microsoft.Dynamics.CRM.DeliverPromoteEmail", json=params)
    assert r.status_code == 200, r.text
    first = r.json()["EmailId"]
    r = crm_client.post(f"emails({first})/Microsoft.Dynamics.CRM.DeliverPromoteEmail", json=params)
    assert r.json()["EmailId"] == first
    assert_odata_error(crm_client.post("DeliverPromoteEmail", json={"Subject": "no id"}), 400)
    assert_odata_error(crm_client.get("DeliverPromoteEmail"), 405)


def test_concurrent_promotions_of_one_message_make_one_activity(crm_server: RunningServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    mid = unique_message_id()
    users = [ME, *(u.email for u in demo_data.COLLEAGUES)]

    def track(email: str) -> str:
        with client(crm_server, email) as c:
            return promote(c, MessageId=mid, To=";".join(users))

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = set(pool.map(track, users * 2))
    assert len(ids) == 1
