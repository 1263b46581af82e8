"""CRUD with the Dataverse shapes: 204 + OData-EntityId, return=representation, PATCH and
upsert, etags (If-Match / If-None-Match), lookups via @odata.bind, errors."""

from __future__ import annotations

import re

import httpx

from crmserver import RunningServer
from crmserver.seed import guid, user_id

from .helpers import JANE, ME, PRIYA, assert_odata_error, client

GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
FABRIKAM = guid("account", "Fabrikam Inc.")


def create(c: httpx.Client, set_name: str, body: dict[str, object]) -> str:
    r = c.post(set_name, json=body)
    assert r.status_code == 204, r.text
    m = re.search(rf"/{set_name}\(({GUID})\)$", r.headers["OData-EntityId"])
    assert m, r.headers["OData-EntityId"]
    return m.group(1)


def test_create_returns_204_and_entity_id(crm_client: httpx.Client) -> None:
    key = create(
        crm_client,
        "contacts",
        {"firstname": "Ada", "lastname": "Lovelace", "emailaddress1": "ada@engine.example"},
    )
    row = crm_client.get(f"contacts({key})").json()
    assert row["fullname"] == "Ada Lovelace"
    assert row["_ownerid_value"] == user_id(ME)
    assert row["statecode"] == 0 and row["statuscode"] == 1
    assert row["createdon"].endswith("Z")
    assert row["@odata.etag"] == f'W/"{row["versionnumber"]}"'
    assert row["@odata.context"].endswith("$metadata#contacts/$entity")


def test_return_representation_is_201_with_body(crm_client: httpx.Client) -> None:
    r = crm_client.post(
        "accounts",
        params={"$select": "name,_primarycontactid_value"},
        json={
            "name": "Contoso Pharmaceuticals",
            "primarycontactid@odata.bind": f"/contacts({guid('contact', JANE)})",
        },
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "Contoso Pharmaceuticals"
    assert body["_primarycontactid_value"] == guid("contact", JANE)
    assert "Preference-Applied" in r.headers
    assert r.headers["OData-EntityId"].endswith(f"({body['accountid']})")


def test_lookup_bind_forms_and_annotations(crm_client: httpx.Client) -> None:
    key = create(
        crm_client,
        "contacts",
        {"lastname": "Bound", "parentcustomerid_account@odata.bind": f"accounts({FABRIKAM})"},
    )
    r = crm_client.get(
        f"contacts({key})",
        params={"$select": "_parentcustomerid_value"},
        headers={"Prefer": 'odata.include-annotations="*"'},
    )
    row = r.json()
    assert row["_parentcustomerid_value"] == FABRIKAM
    ann = "_parentcustomerid_value@"
    assert row[ann + "Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert (
        row[ann + "Microsoft.Dynamics.CRM.associatednavigationproperty"]
        == "parentcustomerid_account"
    )
    assert row[ann + "OData.Community.Display.V1.FormattedValue"] == "Fabrikam Inc."
    # without the preference: no annotations
    plain = crm_client.get(f"contacts({key})").json()
    assert not any("@" in k[1:] for k in plain if k != "@odata.etag" and k != "@odata.context")


def test_bind_to_wrong_target_or_missing_record(crm_client: httpx.Client) -> None:
    r = crm_client.post(
        "contacts",
        json={
            "lastname": "X",
            "parentcustomerid_account@odata.bind": f"/leads({guid('lead', JANE)})",
        },
    )
    assert_odata_error(r, 400)
    r = crm_client.post(
        "contacts",
        json={
            "lastname": "X",
            "parentcustomerid_account@odata.bind": (
                "/accounts(00000000-0000-0000-0000-000000000001)"
            ),
        },
    )
    assert_odata_error(r, 404)


def test_patch_update_and_etags(crm_client: httpx.Client) -> None:
    key = create(crm_client, "leads", {"lastname": "Etag", "subject": "v1"})
    row = crm_client.get(f"leads({key})").json()
    tag = row["@odata.etag"]
    r = crm_client.get(f"leads({key})", headers={"If-None-Match": tag})
    assert r.status_code == 304
    r = crm_client.patch(f"leads({key})", json={"subject": "v2"}, headers={"If-Match": tag})
    assert r.status_code == 204, r.text
    r = crm_client.patch(f"leads({key})", json={"subject": "v3"}, headers={"If-Match": tag})
    err = assert_odata_error(r, 412)
    assert err["code"] == "0x80060882"
    r = crm_client.patch(
        f"leads({key})",
        json={"subject": "v3"},
        headers={"If-Match": "*", "Prefer": "return=representation"},
    )
    assert r.status_code == 200 and r.json()["subject"] == "v3"


def test_patch_upsert_and_if_match_star(crm_client: httpx.Client) -> None:
    key = "7d3b1f5e-0000-4000-8000-00000000abcd"
    r = crm_client.patch(f"contacts({key})", json={"lastname": "Nope"}, headers={"If-Match": "*"})
    assert_odata_error(r, 404)
    r = crm_client.patch(f"contacts({key})", json={"lastname": "Upserted"})
    assert r.status_code == 204, r.text
    assert r.headers["OData-EntityId"].endswith(f"contacts({key})")
    r = crm_client.patch(
        f"contacts({key})", json={"lastname": "Again"}, headers={"If-None-Match": "*"}
    )
    assert_odata_error(r, 412)
    assert crm_client.get(f"contacts({key})").json()["lastname"] == "Upserted"


def test_delete_contact(crm_client: httpx.Client) -> None:
    key = create(crm_client, "contacts", {"lastname": "Gone"})
    assert crm_client.delete(f"contacts({key})").status_code == 204
    err = assert_odata_error(crm_client.get(f"contacts({key})"), 404)
    assert err["code"] == "0x80040217"
    assert err["message"] == f"contact With Id = {key} Does Not Exist"


def test_bad_bodies_are_400(crm_client: httpx.Client) -> None:
    assert_odata_error(
        crm_client.post("contacts", content=b"{nope", headers={"Content-Type": "application/json"}),
        400,
    )
    assert_odata_error(crm_client.post("contacts", json={"nosuchcolumn": 1}), 400)
    assert_odata_error(crm_client.post("contacts", json={"lastname": 5}), 400)
    assert_odata_error(crm_client.post("contacts", json={"lastname": "x" * 51}), 400)
    assert_odata_error(crm_client.post("contacts", json=[1, 2]), 400)
    assert_odata_error(crm_client.get("contacts(not-a-guid)"), 400)
    assert_odata_error(crm_client.get("nosuchset"), 404)
    assert_odata_error(crm_client.put("contacts"), 405)


def test_deep_insert_email_with_parties(crm_client: httpx.Client) -> None:
    r = crm_client.post(
        "emails",
        headers={"Prefer": "return=representation"},
        params={"$expand": "email_activity_parties($select=participationtypemask,addressused)"},
        json={
            "subject": "Draft",
            "description": "<p>x</p>",
            "regardingobjectid_account_email@odata.bind": f"/accounts({FABRIKAM})",
            "email_activity_parties": [
                {
                    "partyid_systemuser@odata.bind": f"/systemusers({user_id(ME)})",
                    "participationtypemask": 1,
                },
                {
                    "partyid_contact@odata.bind": f"/contacts({guid('contact', JANE)})",
                    "participationtypemask": 2,
                },
                {"addressused": "someone@else.example", "participationtypemask": 3},
            ],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["statecode"], body["statuscode"]) == (0, 1)
    assert body["directioncode"] is True
    assert body["_regardingobjectid_value"] == FABRIKAM
    assert sorted(p["participationtypemask"] for p in body["email_activity_parties"]) == [1, 2, 3]
    addresses = {p["addressused"] for p in body["email_activity_parties"]}
    assert addresses == {ME, JANE, "someone@else.example"}
    assert body["torecipients"] == JANE


def test_other_users_record_is_403(crm_server: RunningServer) -> None:
    with client(crm_server, PRIYA) as priya, client(crm_server, ME) as me:
        key = create(priya, "contacts", {"lastname": "Priya's"})
        # readable organisation-wide …
        assert me.get(f"contacts({key})").status_code == 200
        # … but only the owner (or an administrator) may change it; Tomás is neither
    with client(crm_server, "tomas.ferreira@contoso.example") as tomas:
        assert_odata_error(tomas.patch(f"contacts({key})", json={"lastname": "x"}), 403)
        assert_odata_error(tomas.delete(f"contacts({key})"), 403)


def test_new_user_gets_settings_and_mailbox(fresh_crm: RunningServer) -> None:
    with client(fresh_crm) as admin, client(fresh_crm, PRIYA) as priya:
        assert_odata_error(priya.post("systemusers", json={"lastname": "X"}), 403)
        key = create(
            admin,
            "systemusers",
            {"firstname": "Nia", "lastname": "New", "internalemailaddress": "nia@contoso.example"},
        )
        settings = admin.get(f"usersettingscollection({key})").json()
        assert settings["incomingemailfilteringmethod"] == 1
        assert settings["trackingtokenid"] == 5
        user = admin.get(f"systemusers({key})").json()
        box = admin.get(f"mailboxes({user['_defaultmailbox_value']})").json()
        assert box["emailaddress"] == "nia@contoso.example"
        assert box["_regardingobjectid_value"] == key


def test_deleting_a_party_record_marks_the_party(crm_client: httpx.Client) -> None:
    key = create(
        crm_client, "contacts", {"lastname": "Leaving", "emailaddress1": "leaving@gone.example"}
    )
    from .helpers import promote

    email_id = promote(crm_client, From="leaving@gone.example")
    assert crm_client.delete(f"contacts({key})").status_code == 204
    parties = crm_client.get(f"emails({email_id})/email_activity_parties").json()["value"]
    sender = next(p for p in parties if p["participationtypemask"] == 1)
    assert sender["ispartydeleted"] is True and sender["addressused"] == "leaving@gone.example"


def test_activitypointers_lists_all_activities_of_a_record(crm_client: httpx.Client) -> None:
    from .helpers import promote

    account = create(crm_client, "accounts", {"name": "Pointer Ltd"})
    bind = {
        "regardingobjectid_account_task@odata.bind": f"/accounts({account})",
        "subject": "Call back",
    }
    task = create(crm_client, "tasks", bind)
    email = promote(
        crm_client,
        ExtraProperties={"regardingobjectid_account_email@odata.bind": f"/accounts({account})"},
    )
    r = crm_client.get(
        "activitypointers",
        params={
            "$filter": f"_regardingobjectid_value eq {account}",
            "$select": "subject,activitytypecode",
            "$orderby": "activitytypecode",
        },
    )
    assert r.status_code == 200, r.text
    rows = r.json()["value"]
    assert [(x["activityid"], x["activitytypecode"]) for x in rows] == [
        (email, "email"),
        (task, "task"),
    ]
    assert_odata_error(crm_client.patch(f"activitypointers({task})", json={"subject": "x"}), 405)
    assert_odata_error(crm_client.post("activitypointers", json={"subject": "x"}), 405)
    # the privacy rule holds on the union too
    with httpx.Client(base_url=crm_client.base_url, auth=(PRIYA, "demo")) as other:
        r = other.get(
            "activitypointers", params={"$filter": f"_regardingobjectid_value eq {account}"}
        )
        assert r.json()["value"] == []


def test_single_property_put_get_delete(crm_client: httpx.Client) -> None:
    key = create(crm_client, "contacts", {"lastname": "Prop", "jobtitle": "Old"})
    assert crm_client.put(f"contacts({key})/jobtitle", json={"value": "New"}).status_code == 204
    assert crm_client.get(f"contacts({key})/jobtitle").json()["value"] == "New"
    assert crm_client.delete(f"contacts({key})/jobtitle").status_code == 204
    assert crm_client.get(f"contacts({key})/jobtitle").json()["value"] is None
    assert_odata_error(crm_client.put(f"contacts({key})/jobtitle", json={"v": 1}), 400)
    assert_odata_error(crm_client.put(f"contacts({key})/jobtitle", json={"value": 5}), 400)


def test_lookup_ref_put_and_delete(crm_client: httpx.Client) -> None:
    key = create(crm_client, "contacts", {"lastname": "Reffy"})
    url = f"{crm_client.base_url}accounts({FABRIKAM})"
    r = crm_client.put(f"contacts({key})/parentcustomerid_account/$ref", json={"@odata.id": url})
    assert r.status_code == 204, r.text
    assert crm_client.get(f"contacts({key})").json()["_parentcustomerid_value"] == FABRIKAM
    assert crm_client.delete(f"contacts({key})/parentcustomerid_account/$ref").status_code == 204
    assert crm_client.get(f"contacts({key})").json()["_parentcustomerid_value"] is None
    assert_odata_error(
        crm_client.put(f"contacts({key})/parentcustomerid_account/$ref", json={}), 400
    )
