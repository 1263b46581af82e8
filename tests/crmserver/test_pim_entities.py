"""Issue 20 on the emulator: appointments with their parties, recurring appointment masters
with instances and exceptions, tasks, faxes, letters and contacts' full fields through the Web
API, change tracking on each, and who may read and write them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.domain import demo_data
from crmserver import RunningServer, Settings, TlsFiles, run_in_thread
from crmserver.pim_seed import seed_bulk_appointments
from crmserver.seed import guid, seed_demo, user_id
from crmserver.storage import Storage

from .helpers import ME, PRIYA, assert_odata_error, client

TRACK = {"Prefer": "odata.track-changes"}
ANNOTATIONS = {"Prefer": 'odata.include-annotations="*",return=representation'}
PARTIES = "appointment_activity_parties($select=participationtypemask,addressused,_partyid_value)"


def created_id(r: httpx.Response) -> str:
    assert r.status_code in (201, 204), r.text
    return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def new_contact(c: httpx.Client, last: str) -> str:
    return created_id(c.post("contacts", json={"firstname": "Pim", "lastname": last}))


def appointment_body(contact: str, subject: str = "Planning") -> dict[str, Any]:
    return {
        "subject": subject,
        "location": "Room 4",
        "scheduledstart": "2027-03-02T10:00:00Z",
        "scheduledend": "2027-03-02T11:15:00Z",
        "globalobjectid": f"uid-{subject}@test.example",
        "appointment_activity_parties": [
            {
                "partyid_systemuser@odata.bind": f"/systemusers({user_id(ME)})",
                "participationtypemask": 7,
            },
            {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": 5},
            {"addressused": "outsider@elsewhere.example", "participationtypemask": 6},
        ],
    }


def test_appointment_crud_with_parties(crm_https: RunningServer) -> None:
    with client(crm_https) as c:
        contact = new_contact(c, "Attendee")
        r = c.post("appointments", json=appointment_body(contact), headers=ANNOTATIONS)
        assert r.status_code == 201, r.text
        made = r.json()
        key = made["activityid"]
        assert made["scheduleddurationminutes"] == 75
        assert (made["statecode"], made["statuscode"]) == (3, 5)
        assert made["statuscode@OData.Community.Display.V1.FormattedValue"] == "Busy"
        assert made["instancetypecode"] == 0 and made["activitytypecode"] == "appointment"
        got = c.get(f"appointments({key})", params={"$expand": PARTIES}).json()
        parties = {p["participationtypemask"]: p for p in got[PARTIES.split("(")[0]]}
        assert parties[7]["_partyid_value"] == user_id(ME)
        assert parties[5]["_partyid_value"] == contact
        assert parties[6]["_partyid_value"] is None
        assert parties[6]["addressused"] == "outsider@elsewhere.example"
        r = c.patch(
            f"appointments({key})", json={"location": "Room 5", "scheduleddurationminutes": 30}
        )
        assert r.status_code == 204, r.text
        got = c.get(f"appointments({key})").json()
        # a duration alone moves the end; a new end makes the duration
        assert got["location"] == "Room 5" and got["scheduledend"] == "2027-03-02T10:30:00Z"
        c.patch(f"appointments({key})", json={"scheduledend": "2027-03-02T12:00:00Z"})
        assert c.get(f"appointments({key})").json()["scheduleddurationminutes"] == 120
        listed = c.get(
            "appointments", params={"$filter": f"globalobjectid eq '{made['globalobjectid']}'"}
        )
        assert [a["activityid"] for a in listed.json()["value"]] == [key]
        assert c.delete(f"appointments({key})").status_code == 204
        assert_odata_error(c.get(f"appointments({key})"), 404)


def test_appointment_states_and_all_day(crm_https: RunningServer) -> None:
    with client(crm_https) as c:
        body = {
            "subject": "Offsite",
            "isalldayevent": True,
            "scheduledstart": "2027-04-01",
            "scheduleddurationminutes": 2880,
            "statecode": 0,
        }
        key = created_id(c.post("appointments", json=body))
        got = c.get(f"appointments({key})").json()
        assert got["scheduledend"] == "2027-04-03T00:00:00Z" and got["isalldayevent"] is True
        assert (got["statecode"], got["statuscode"]) == (0, 1)  # Open brings Free
        assert_odata_error(c.patch(f"appointments({key})", json={"statuscode": 5}), 400)
        assert c.patch(f"appointments({key})", json={"statecode": 2}).status_code == 204
        assert c.get(f"appointments({key})").json()["statuscode"] == 4  # Canceled
        assert_odata_error(c.patch(f"appointments({key})", json={"subject": "x"}), 400)


def test_task_crud_and_completion(crm_https: RunningServer) -> None:
    with client(crm_https) as c:
        contact = new_contact(c, "Task Regarding")
        body = {
            "subject": "Call back",
            "description": "About the quote",
            "scheduledend": "2027-05-04T17:00:00Z",
            "prioritycode": 2,
            "percentcomplete": 10,
            "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})",
        }
        key = created_id(c.post("tasks", json=body))
        got = c.get(f"tasks({key})", headers=ANNOTATIONS).json()
        assert (got["statecode"], got["statuscode"]) == (0, 2)
        assert got["statuscode@OData.Community.Display.V1.FormattedValue"] == "Not Started"
        assert (
            got["_regardingobjectid_value"] == contact
            and got["scheduledend"] == body["scheduledend"]
        )
        assert (
            c.patch(f"tasks({key})", json={"statuscode": 3, "percentcomplete": 60}).status_code
            == 204
        )
        r = c.patch(f"tasks({key})", json={"statecode": 1, "actualend": "2027-05-03T12:00:00Z"})
        assert r.status_code == 204, r.text
        got = c.get(f"tasks({key})").json()
        assert (got["statecode"], got["statuscode"]) == (1, 5) and got[
            "actualend"
        ] == "2027-05-03T12:00:00Z"
        assert_odata_error(c.patch(f"tasks({key})", json={"subject": "edit a closed task"}), 400)
        assert_odata_error(
            c.post("tasks", json={"subject": "bad", "statecode": 0, "statuscode": 6}), 400
        )
        assert c.delete(f"tasks({key})").status_code == 204


@pytest.mark.parametrize(
    ("set_name", "body", "nav"),
    [
        (
            "faxes",
            {"subject": "Order", "faxnumber": "+1 555 0101", "numberofpages": 3},
            "fax_activity_parties",
        ),
        ("letters", {"subject": "Contract", "address": "1 Main St"}, "letter_activity_parties"),
    ],
)
def test_fax_and_letter_crud(
    crm_https: RunningServer, set_name: str, body: dict[str, Any], nav: str
) -> None:
    with client(crm_https) as c:
        contact = new_contact(c, f"Recipient {set_name}")
        parties = [
            {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": 2}
        ]
        key = created_id(c.post(set_name, json={**body, nav: parties}))
        got = c.get(f"{set_name}({key})", params={"$expand": nav}).json()
        assert {k: got[k] for k in body} == body
        assert (got["statecode"], got["statuscode"], got["directioncode"]) == (0, 1, True)
        assert [p["_partyid_value"] for p in got[nav]] == [contact]
        assert c.patch(f"{set_name}({key})", json={"statecode": 1}).status_code == 204
        # completed fax: Completed (2); completed letter: Received (3)
        assert c.get(f"{set_name}({key})").json()["statuscode"] == (2 if set_name == "faxes" else 3)
        assert c.delete(f"{set_name}({key})").status_code == 204
        assert_odata_error(c.get(f"{set_name}({key})"), 404)


def test_contact_full_fields(crm_https: RunningServer) -> None:
    fields = {
        "firstname": "Maria",
        "middlename": "José",
        "lastname": "Fields",
        "emailaddress1": "maria@fields.example",
        "emailaddress2": "maria.home@fields.example",
        "emailaddress3": "mj@fields.example",
        "telephone1": "+1 555 0001",
        "telephone2": "+1 555 0002",
        "telephone3": "+1 555 0003",
        "mobilephone": "+1 555 0004",
        "fax": "+1 555 0005",
        "jobtitle": "Buyer",
        "department": "Purchasing",
        "address1_line1": "1 Main Street",
        "address1_line2": "Suite 200",
        "address1_city": "Seattle",
        "address1_stateorprovince": "WA",
        "address1_postalcode": "98101",
        "address1_country": "USA",
        "description": "Met at the fair",
        "donotemail": True,
    }
    account = guid("account", demo_data.ACCOUNTS[0].name)
    with client(crm_https) as c:
        body = {
            **fields,
            "birthdate": "1980-05-04",
            "parentcustomerid_account@odata.bind": f"/accounts({account})",
        }
        key = created_id(c.post("contacts", json=body))
        got = c.get(f"contacts({key})", headers=ANNOTATIONS).json()
        assert {k: got[k] for k in fields} == fields
        assert got["fullname"] == "Maria Fields" and got["birthdate"].startswith("1980-05-04")
        assert got["_parentcustomerid_value"] == account
        assert (
            got["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"]
            == demo_data.ACCOUNTS[0].name
        )
        assert (got["statecode"], got["statuscode"]) == (0, 1)
        c.patch(f"contacts({key})", json={"statecode": 1, "statuscode": 2})
        assert c.get(f"contacts({key})").json()["statecode"] == 1


def _initial(c: httpx.Client, set_name: str) -> str:
    r = c.get(set_name, params={"$select": "subject"}, headers=TRACK)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        if "@odata.deltaLink" in body:
            return str(body["@odata.deltaLink"])
        r = c.get(body["@odata.nextLink"], headers=TRACK)


@pytest.mark.parametrize(
    "set_name", ["appointments", "tasks", "faxes", "letters", "recurringappointmentmasters"]
)
def test_delta_on_each_pim_set(crm_https: RunningServer, set_name: str) -> None:
    extra: dict[str, Any] = {}
    if set_name == "recurringappointmentmasters":
        extra = {"starttime": "2027-06-07T09:00:00Z", "endtime": "2027-06-07T09:30:00Z"}
        extra.update(patternendtype=2, occurrences=2, recurrencepatterntype=0)
    with client(crm_https) as c:
        link = _initial(c, set_name)
        kept = created_id(c.post(set_name, json={"subject": "Delta kept", **extra}))
        gone = created_id(c.post(set_name, json={"subject": "Delta gone", **extra}))
        assert c.delete(f"{set_name}({gone})").status_code == 204
        body = c.get(link, headers=TRACK).json()
        assert body["@odata.context"].endswith(f"{set_name}(subject)/$delta")
        changed = {v["activityid"]: v for v in body["value"] if "id" not in v}
        deleted = {v["id"]: v for v in body["value"] if "id" in v}
        assert changed[kept]["subject"] == "Delta kept"
        assert deleted[gone]["reason"] == "deleted"
        assert deleted[gone]["@odata.context"].endswith(f"$metadata#{set_name}/$deletedEntity")
        assert gone not in changed
        c.patch(f"{set_name}({kept})", json={"subject": "Delta renamed"})
        again = c.get(body["@odata.deltaLink"], headers=TRACK).json()["value"]
        assert {v.get("activityid"): v.get("subject") for v in again}[kept] == "Delta renamed"
        assert_odata_error(
            c.get(set_name, params={"$filter": "subject eq 'x'"}, headers=TRACK), 400
        )


def series(c: httpx.Client, master: str) -> list[dict[str, Any]]:
    r = c.get(
        "appointments",
        params={
            "$filter": f"seriesid eq {master}",
            "$orderby": "originalstartdate",
            "$expand": PARTIES,
        },
    )
    assert r.status_code == 200, r.text
    return list(r.json()["value"])


def test_recurring_master_instances_and_exceptions(crm_https: RunningServer) -> None:
    with client(crm_https) as c:
        contact = new_contact(c, "Series Attendee")
        body = {
            "subject": "Stand-up",
            "location": "Room 1",
            "globalobjectid": "standup@test.example",
            "recurrencepatterntype": 1,
            "interval": 1,
            "daysofweekmask": 2 | 8,  # Monday and Wednesday
            "patternstartdate": "2027-01-04",
            "patternendtype": 2,
            "occurrences": 5,
            "starttime": "2027-01-04T08:30:00Z",
            "endtime": "2027-01-04T08:45:00Z",
            "recurringappointmentmaster_activity_parties": [
                {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": 5}
            ],
        }
        master = created_id(c.post("recurringappointmentmasters", json=body))
        got = c.get(f"recurringappointmentmasters({master})").json()
        assert got["instancetypecode"] == 1 and got["duration"] == 15
        assert got["effectivestartdate"] == "2027-01-04T08:30:00Z"
        assert got["effectiveenddate"] == "2027-01-18T08:45:00Z"
        instances = series(c, master)
        starts = [i["originalstartdate"][:10] for i in instances]
        assert starts == ["2027-01-04", "2027-01-06", "2027-01-11", "2027-01-13", "2027-01-18"]
        assert {i["instancetypecode"] for i in instances} == {2}
        assert all(
            i["subject"] == "Stand-up" and i["scheduleddurationminutes"] == 15 for i in instances
        )
        assert all(i["globalobjectid"] == "standup@test.example" for i in instances)
        assert all(
            [p["_partyid_value"] for p in i["appointment_activity_parties"]] == [contact]
            for i in instances
        )
        link = _initial(c, "appointments")
        moved = instances[1]["activityid"]
        r = c.patch(
            f"appointments({moved})",
            json={"scheduledstart": "2027-01-07T09:00:00Z", "scheduledend": "2027-01-07T09:15:00Z"},
        )
        assert r.status_code == 204, r.text
        dropped = instances[3]["activityid"]
        assert c.delete(f"appointments({dropped})").status_code == 204
        assert c.get(f"recurringappointmentmasters({master})").json()["deletedexceptionslist"] == (
            "2027-01-13T08:30:00Z"
        )
        changes = c.get(link, headers=TRACK).json()["value"]
        assert any(v.get("id") == dropped for v in changes)
        assert any(v.get("activityid") == moved for v in changes)
        # the master's subject reaches the instances not changed since, not the exception
        c.patch(f"recurringappointmentmasters({master})", json={"subject": "Daily stand-up"})
        now = {i["activityid"]: i for i in series(c, master)}
        assert dropped not in now and len(now) == 4
        assert now[moved]["instancetypecode"] == 3 and now[moved]["subject"] == "Stand-up"
        assert now[moved]["originalstartdate"] == "2027-01-06T08:30:00Z"
        assert now[moved]["scheduledstart"] == "2027-01-07T09:00:00Z"
        others = [i for k, i in now.items() if k != moved]
        assert {i["subject"] for i in others} == {"Daily stand-up"}
        # so does a new party list
        other = new_contact(c, "Series Newcomer")
        nav = "recurringappointmentmaster_activity_parties"
        party = {"partyid_contact@odata.bind": f"/contacts({other})", "participationtypemask": 6}
        r = c.patch(f"recurringappointmentmasters({master})", json={nav: [party]})
        assert r.status_code == 204, r.text
        for key, inst in {i["activityid"]: i for i in series(c, master)}.items():
            ids = [p["_partyid_value"] for p in inst["appointment_activity_parties"]]
            assert ids == ([contact] if key == moved else [other])
        # a new pattern replaces the series, exceptions included
        c.patch(f"recurringappointmentmasters({master})", json={"occurrences": 2})
        again = series(c, master)
        assert [i["originalstartdate"][:10] for i in again] == ["2027-01-04", "2027-01-06"]
        assert {i["instancetypecode"] for i in again} == {2}
        assert c.delete(f"recurringappointmentmasters({master})").status_code == 204
        assert series(c, master) == []


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            {"recurrencepatterntype": 0, "interval": 2, "occurrences": 3},
            ["2027-02-01", "2027-02-03", "2027-02-05"],
        ),
        (
            {
                "recurrencepatterntype": 0,
                "isweekdaypattern": True,
                "occurrences": 3,
                "patternstartdate": "2027-02-05",
            },
            ["2027-02-05", "2027-02-08", "2027-02-09"],
        ),
        (
            {"recurrencepatterntype": 2, "dayofmonth": 31, "occurrences": 3},
            ["2027-02-28", "2027-03-31", "2027-04-30"],
        ),
        (
            {
                "recurrencepatterntype": 2,
                "isnthmonthly": True,
                "instance": 5,
                "daysofweekmask": 32,
                "occurrences": 2,
            },
            ["2027-02-26", "2027-03-26"],
        ),
        (
            {
                "recurrencepatterntype": 3,
                "monthofyear": 3,
                "dayofmonth": 15,
                "patternendtype": 3,
                "patternstartdate": "2025-01-01",
                "starttime": "2025-01-01T07:00:00Z",
                "endtime": "2025-01-01T08:00:00Z",
                "patternenddate": "2027-03-15",
            },
            ["2025-03-15", "2026-03-15", "2027-03-15"],
        ),
    ],
)
def test_recurrence_patterns(
    crm_https: RunningServer, pattern: dict[str, Any], expected: list[str]
) -> None:
    body = {
        "subject": "Pattern",
        "starttime": "2027-02-01T07:00:00Z",
        "endtime": "2027-02-01T08:00:00Z",
        "patternstartdate": "2027-02-01",
        "patternendtype": 2,
        **pattern,
    }
    with client(crm_https) as c:
        master = created_id(c.post("recurringappointmentmasters", json=body))
        assert [i["scheduledstart"][:10] for i in series(c, master)] == expected


def test_unbounded_series_stops_at_the_expansion_window(crm_https: RunningServer) -> None:
    start = date.today() + timedelta(days=1)
    body = {
        "subject": "Forever",
        "recurrencepatterntype": 1,
        "daysofweekmask": 2,
        "patternendtype": 1,
        "starttime": f"{start.isoformat()}T12:00:00Z",
        "endtime": f"{start.isoformat()}T13:00:00Z",
    }
    with client(crm_https) as c:
        master = created_id(c.post("recurringappointmentmasters", json=body))
        got = series(c, master)
        last = datetime.fromisoformat(got[-1]["scheduledstart"].replace("Z", "+00:00"))
        assert 40 <= len(got) <= 60  # weekly over the 12-month window
        assert last.date() <= datetime.now(UTC).date() + timedelta(days=31 * 12 + 1)
        master_row = c.get(f"recurringappointmentmasters({master})").json()
        assert master_row["effectiveenddate"] is None
        bad = {**body, "patternendtype": 2}  # occurrences missing
        assert_odata_error(c.post("recurringappointmentmasters", json=bad), 400)


def test_other_users_cannot_read_or_write_my_appointment(crm_https: RunningServer) -> None:
    with client(crm_https) as me, client(crm_https, PRIYA) as priya:
        contact = new_contact(me, "Private")
        mine = created_id(me.post("appointments", json=appointment_body(contact, "Private")))
        assert_odata_error(priya.get(f"appointments({mine})"), 404)
        assert_odata_error(priya.patch(f"appointments({mine})", json={"subject": "Hijacked"}), 404)
        assert_odata_error(priya.delete(f"appointments({mine})"), 404)
        listed = priya.get("appointments", params={"$filter": f"activityid eq {mine}"}).json()
        assert listed["value"] == []
        # as an attendee she reads it but may not change it
        body = appointment_body(contact, "Shared")
        body["appointment_activity_parties"].append(
            {
                "partyid_systemuser@odata.bind": f"/systemusers({user_id(PRIYA)})",
                "participationtypemask": 5,
            }
        )
        shared = created_id(me.post("appointments", json=body))
        assert priya.get(f"appointments({shared})").status_code == 200
        assert_odata_error(
            priya.patch(f"appointments({shared})", json={"subject": "Mine now"}), 403
        )
        assert_odata_error(priya.delete(f"appointments({shared})"), 403)
        assert me.get(f"appointments({shared})").json()["subject"] == "Shared"


def test_demo_seed_has_pim_records(crm_https: RunningServer) -> None:
    master = guid("recurringappointmentmaster", "weekly pipeline call")
    with client(crm_https) as c:
        instances = series(c, master)
        assert len(instances) == 9
        assert [i["instancetypecode"] for i in instances].count(3) == 1
        deleted = c.get(f"recurringappointmentmasters({master})").json()["deletedexceptionslist"]
        assert deleted and deleted not in {i["originalstartdate"] for i in instances}
        tasks = c.get("tasks", params={"$filter": "scheduledend ne null", "$select": "subject"})
        subjects = {t["subject"] for t in tasks.json()["value"]}
        assert "Send the renewal proposal to Jane" in subjects
        assert c.get(f"letters({guid('letter', 'countersigned contract')})").status_code == 200
        assert c.get(f"faxes({guid('fax', 'signed order form')})").status_code == 200
        review = c.get(
            f"appointments({guid('appointment', 'quarterly review')})", params={"$expand": PARTIES}
        )
        masks = sorted(p["participationtypemask"] for p in review.json()[PARTIES.split("(")[0]])
        assert masks == [5, 6, 6, 7]


def test_bulk_appointments_for_benchmarks(tmp_path: Path, crm_tls: TlsFiles) -> None:
    path = tmp_path / "bulk.db"
    storage = Storage(path)
    try:
        seed_demo(storage)
        assert seed_bulk_appointments(storage, 120, user_id(ME)) == 120
    finally:
        storage.close()
    with run_in_thread(Settings(db_path=path), tls=crm_tls) as server, client(server) as c:
        r = c.get(
            "appointments",
            params={
                "$filter": "startswith(subject,'Meeting ')",
                "$count": "true",
                "$expand": PARTIES,
            },
        )
        body = r.json()
        assert body["@odata.count"] == 120
        parties = [p for a in body["value"] for p in a[PARTIES.split("(")[0]]]
        assert {(p["participationtypemask"], p["_partyid_value"]) for p in parties} == {
            (7, user_id(ME))
        }
        assert {a["scheduleddurationminutes"] for a in body["value"]} == {60}
