"""The CRM side of appointments and tasks (core.pim.crm_activities) against the emulator over
HTTPS: parties resolved to CRM records, recurring masters with Dataverse's pattern columns,
tasks/faxes/letters, delta links, 412 → VersionConflict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from core.crm.auth import BasicAuth
from core.crm.client import CrmClient
from core.domain import demo_data
from core.domain.model import RecordRef
from core.domain.resolution import InMemoryResolver
from core.pim import filters
from core.pim.crm_activities import CrmActivitiesSide, default_filter
from core.pim.ical_map import meeting_request
from core.pim.sides import PimKind, PimRecord, SideError, VersionConflict
from crmserver import RunningServer
from tests.plugins.crm import crm_ssl_context

UNKNOWN = "someone.outside@nowhere.example"


@pytest.fixture
def crm(fresh_crm_https: RunningServer) -> Iterator[CrmClient]:
    with CrmClient(
        fresh_crm_https.url,
        BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD),
        verify=crm_ssl_context(fresh_crm_https),
    ) as client:
        yield client


def resolver_of(crm: CrmClient) -> InMemoryResolver:
    """The CRM's own users and contacts, as the address books would cache them."""
    resolver = InMemoryResolver()
    for logical, entity_set, key, column in (
        ("systemuser", "systemusers", "systemuserid", "internalemailaddress"),
        ("contact", "contacts", "contactid", "emailaddress1"),
        ("account", "accounts", "accountid", "emailaddress1"),
    ):
        for row in crm.query(entity_set, select=[key, column]):
            if row.get(column):
                resolver.add(str(row[column]), RecordRef(logical, str(row[key]).lower()))
    return resolver


@pytest.fixture
def me(crm: CrmClient) -> str:
    return crm.who_am_i().user_id


def side(crm: CrmClient, kind: PimKind, me: str) -> CrmActivitiesSide:
    return CrmActivitiesSide(crm, kind, resolver_of(crm), filter=default_filter(kind, me))


def test_the_engines_filter_reaches_recurring_masters_too(crm: CrmClient, me: str) -> None:
    """core.pim.filters writes the appointment's party navigation; a series is found
    through the master's own."""
    contact = a_contact(crm)
    engine_filter = filters.default_filter(PimKind.APPOINTMENT).odata(me)
    appointments = CrmActivitiesSide(
        crm, PimKind.APPOINTMENT, resolver_of(crm), filter=engine_filter
    )
    series, _ = appointments.put(
        None, meeting(contact["emailaddress1"], recurrence="FREQ=DAILY;COUNT=3"), None
    )
    single, _ = appointments.put(None, meeting(contact["emailaddress1"]), None)
    assert {series, single} <= {c.key for c in appointments.changes(None).changes}


def a_contact(crm: CrmClient) -> dict[str, Any]:
    return next(
        r
        for r in crm.query("contacts", select=["contactid", "emailaddress1"])
        if r.get("emailaddress1")
    )


def meeting(contact_email: str, **more: Any) -> PimRecord:
    fields = {
        "subject": "Quarterly review",
        "description": "Numbers first",
        "location": "Room 4",
        "scheduledstart": "2026-12-07T09:00:00Z",
        "scheduledend": "2026-12-07T10:30:00Z",
        "isalldayevent": False,
        "organizer": demo_data.ME.email.lower(),
        "requiredattendees": [contact_email.lower()],
        "optionalattendees": [UNKNOWN],
        "prioritycode": 2,
        **more,
    }
    return PimRecord(PimKind.APPOINTMENT, fields)


def parties_of(crm: CrmClient, activity_id: str) -> list[dict[str, Any]]:
    row = crm.get(
        "appointments",
        activity_id,
        expand="appointment_activity_parties($select=addressused,participationtypemask,_partyid_value)",
    )
    return list(row["appointment_activity_parties"])


def test_an_appointment_is_created_with_its_parties_resolved(crm: CrmClient, me: str) -> None:
    contact = a_contact(crm)
    appointments = side(crm, PimKind.APPOINTMENT, me)
    key, etag = appointments.put(None, meeting(contact["emailaddress1"]), None)
    assert key.startswith("appointment:") and etag
    activity_id = key.partition(":")[2]
    by_mask = {
        (p["participationtypemask"], p.get("_partyid_value")) for p in parties_of(crm, activity_id)
    }
    assert (7, me) in by_mask
    assert (5, contact["contactid"].lower()) in by_mask
    assert (6, None) in by_mask  # the unknown address stays an unresolved party
    got = appointments.get(key)
    assert got is not None and got.record is not None and got.version == etag
    fields = got.record.fields
    assert fields["subject"] == "Quarterly review"
    assert (fields["scheduledstart"], fields["scheduledend"]) == (
        "2026-12-07T09:00:00Z",
        "2026-12-07T10:30:00Z",
    )
    assert fields["organizer"] == demo_data.ME.email.lower()
    assert fields["requiredattendees"] == [contact["emailaddress1"].lower()]
    assert fields["optionalattendees"] == [UNKNOWN]
    assert fields["prioritycode"] == 2
    assert fields["recurrence"] is None


def test_changes_come_by_delta_link_and_a_stale_etag_conflicts(crm: CrmClient, me: str) -> None:
    contact = a_contact(crm)
    appointments = side(crm, PimKind.APPOINTMENT, me)
    key, etag = appointments.put(None, meeting(contact["emailaddress1"]), None)
    other, _ = appointments.put(None, meeting(contact["emailaddress1"], subject="Other"), None)
    first = appointments.changes(None)
    assert first.full
    assert {key, other} <= {c.key for c in first.changes}
    assert appointments.changes(first.token).changes == []
    _, etag2 = appointments.put(key, meeting(contact["emailaddress1"], subject="Moved on"), etag)
    assert etag2 != etag
    with pytest.raises(VersionConflict):
        appointments.put(key, meeting(contact["emailaddress1"], subject="Stale"), etag)
    appointments.delete(other, None)
    page = appointments.changes(first.token)
    assert not page.full
    by_key = {c.key: c for c in page.changes}
    assert set(by_key) == {key, other}
    assert by_key[key].record is not None
    assert by_key[key].record.fields["subject"] == "Moved on"
    assert by_key[other].record is None


def test_an_appointment_i_do_not_attend_is_outside_the_default_filter(
    crm: CrmClient, me: str
) -> None:
    contact = a_contact(crm)
    appointments = side(crm, PimKind.APPOINTMENT, me)
    key, _ = appointments.put(
        None, meeting(contact["emailaddress1"], organizer=None, optionalattendees=None), None
    )
    assert key not in {c.key for c in appointments.changes(None).changes}


def test_a_weekly_series_becomes_a_recurring_master_with_dataverses_pattern(
    crm: CrmClient, me: str
) -> None:
    contact = a_contact(crm)
    appointments = side(crm, PimKind.APPOINTMENT, me)
    record = meeting(
        contact["emailaddress1"],
        subject="Weekly sync",
        scheduledstart="2026-12-07T09:00:00Z",  # a Monday
        scheduledend="2026-12-07T09:30:00Z",
        recurrence="FREQ=WEEKLY;INTERVAL=2;COUNT=6;BYDAY=MO,TH",
    )
    key, _ = appointments.put(None, record, None)
    assert key.startswith("recurringappointmentmaster:")
    row = crm.get("recurringappointmentmasters", key.partition(":")[2])
    assert row["recurrencepatterntype"] == 1
    assert (row["interval"], row["daysofweekmask"]) == (2, 2 | 16)
    assert (row["patternendtype"], row["occurrences"]) == (2, 6)
    assert row["duration"] == 30
    got = appointments.get(key)
    assert got is not None and got.record is not None
    assert got.record.fields["recurrence"] == "FREQ=WEEKLY;INTERVAL=2;COUNT=6;BYDAY=MO,TH"
    listed = appointments.changes(None).changes
    keys = [c.key for c in listed]
    assert key in keys
    # The series' instances are read through their master, not as appointments of their own.
    assert not any(
        c.record is not None and c.record.fields.get("subject") == "Weekly sync" and c.key != key
        for c in listed
    )


def test_a_series_with_one_instance_moved_and_one_deleted(crm: CrmClient, me: str) -> None:
    contact = a_contact(crm)
    appointments = side(crm, PimKind.APPOINTMENT, me)
    moved = {
        "recurrenceid": "2026-12-14T09:00:00Z",
        "subject": "Weekly sync (Tuesday this time)",
        "location": "Room 4",
        "description": "Numbers first",
        "scheduledstart": "2026-12-15T13:00:00Z",
        "scheduledend": "2026-12-15T13:30:00Z",
    }
    record = meeting(
        contact["emailaddress1"],
        subject="Weekly sync",
        scheduledstart="2026-12-07T09:00:00Z",
        scheduledend="2026-12-07T09:30:00Z",
        recurrence="FREQ=WEEKLY;COUNT=5;BYDAY=MO",
        overrides=[moved],
        exdates=["2026-12-21T09:00:00Z"],
    )
    key, _ = appointments.put(None, record, None)
    master_id = key.partition(":")[2]
    instances = {
        r["originalstartdate"][:16]: r
        for r in crm.query(
            "appointments",
            select=["activityid", "instancetypecode", "originalstartdate", "scheduledstart"],
            filter=f"seriesid eq {master_id}",
        )
    }
    assert sorted(instances) == [
        "2026-12-07T09:00",
        "2026-12-14T09:00",
        "2026-12-28T09:00",
        "2027-01-04T09:00",
    ]
    assert instances["2026-12-14T09:00"]["instancetypecode"] == 3
    got = appointments.get(key)
    assert got is not None and got.record is not None
    assert got.record.fields["overrides"] == [moved]
    assert got.record.fields["exdates"] == ["2026-12-21T09:00:00Z"]


def test_a_recurrence_the_crm_cannot_hold_stays_in_the_mailbox_with_a_reason(
    crm: CrmClient, me: str
) -> None:
    appointments = side(crm, PimKind.APPOINTMENT, me)
    before = {c.key for c in appointments.changes(None).changes}
    record = meeting("x@example.com", recurrence="FREQ=MONTHLY;BYMONTHDAY=-1")
    with pytest.raises(SideError, match="kept in the mailbox only") as raised:
        appointments.put(None, record, None)
    assert raised.value.retryable is False
    assert "1 to 31" in str(raised.value)
    assert {c.key for c in appointments.changes(None).changes} == before


def test_tasks_faxes_and_letters_i_own(crm: CrmClient, me: str) -> None:
    tasks = side(crm, PimKind.TASK, me)
    task = PimRecord(
        PimKind.TASK,
        {
            "activitytypecode": "task",
            "subject": "Send the offer",
            "scheduledend": "2026-12-11T16:00:00Z",
            "percentcomplete": 40,
            "statecode": 0,
            "statuscode": 3,
            "prioritycode": 2,
        },
    )
    task_key, _ = tasks.put(None, task, None)
    fax_key, _ = tasks.put(
        None, PimRecord(PimKind.TASK, {"activitytypecode": "fax", "subject": "Signed form"}), None
    )
    done_key, _ = tasks.put(
        None,
        PimRecord(
            PimKind.TASK,
            {"activitytypecode": "letter", "subject": "Thank-you", "statecode": 1, "statuscode": 4},
        ),
        None,
    )
    page = tasks.changes(None)
    by_key = {c.key: c.record for c in page.changes}
    assert {task_key, fax_key, done_key} <= set(by_key)
    got = by_key[task_key]
    assert got is not None
    fields = got.fields
    assert (fields["scheduledend"], fields["percentcomplete"]) == ("2026-12-11T16:00:00Z", 40)
    assert (fields["statecode"], fields["statuscode"]) == (0, 3)
    letter = by_key[done_key]
    assert letter is not None
    assert (letter.fields["activitytypecode"], letter.fields["statecode"]) == ("letter", 1)
    tasks.delete(fax_key, None)
    later = tasks.changes(page.token)
    assert [(c.key, c.record) for c in later.changes] == [(fax_key, None)]


def test_a_received_meeting_request_becomes_an_appointment_i_attend(
    crm: CrmClient, me: str
) -> None:
    """Tracking an invitation from outside: the organiser stays an unresolved party (the CRM
    takes only users there), I am a required attendee, and the default filter finds it."""
    invite = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
        "UID:invite-1\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261210T150000Z\r\n"
        "DTEND:20261210T160000Z\r\nSUMMARY:Supplier pitch\r\n"
        "ORGANIZER:mailto:sales@supplier.example\r\n"
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:{demo_data.ME.email}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    record = meeting_request(invite, demo_data.ME.email)
    appointments = side(crm, PimKind.APPOINTMENT, me)
    key, _ = appointments.put(None, record, None)
    parties = {
        (p["participationtypemask"], p.get("_partyid_value"), p.get("addressused"))
        for p in parties_of(crm, key.partition(":")[2])
    }
    assert (7, None, "sales@supplier.example") in parties
    assert any(mask == 5 and party == me for mask, party, _ in parties)
    listed = {c.key: c.record for c in appointments.changes(None).changes}
    got = listed[key]
    assert got is not None
    assert got.fields["organizer"] == "sales@supplier.example"
    assert got.fields["requiredattendees"] == [demo_data.ME.email.lower()]


def test_an_unusable_token_reads_everything_again(crm: CrmClient, me: str) -> None:
    tasks = side(crm, PimKind.TASK, me)
    key, _ = tasks.put(None, PimRecord(PimKind.TASK, {"subject": "Still here"}), None)
    expired = json.dumps(
        {
            "task": "tasks?$select=activityid&$deltatoken=bogus",
            "fax": "faxes?$select=activityid&$deltatoken=bogus",
            "letter": "letters?$select=activityid&$deltatoken=bogus",
        }
    )
    for token in ("not a token", expired):
        page = tasks.changes(token)
        assert page.full
        assert key in {c.key for c in page.changes}


def test_regarding_is_written_and_read(crm: CrmClient, me: str) -> None:
    account = next(crm.query("accounts", select=["accountid"]))
    regarding = f"account:{str(account['accountid']).lower()}"
    tasks = side(crm, PimKind.TASK, me)
    key, _ = tasks.put(
        None, PimRecord(PimKind.TASK, {"subject": "Renewal", "regardingobjectid": regarding}), None
    )
    row = crm.get("tasks", key.partition(":")[2], select=["_regardingobjectid_value"])
    assert str(row["_regardingobjectid_value"]).lower() == regarding.partition(":")[2]
    got = tasks.get(key)
    assert got is not None and got.record is not None
    assert got.record.fields["regardingobjectid"] == regarding
