"""Demo PIM data (issue 20): the demo user's appointments (one weekly series with a moved and
a deleted occurrence), tasks with due dates, a letter and a fax, and the system views a
synchronisation filter starts from ("My Active Contacts" and the "My …" activity views).

Written through :class:`crmserver.records.Records` as the demo user, so parties, durations
and the series' instances come out exactly as a client creating them would get them. Ids are
stable (uuid5); dates follow the day the organisation is seeded (the coming weeks).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from typing import Any

from core.domain import demo_data as demo

from .entities import ENTITIES
from .records import Caller, Records
from .storage import Storage

#: (name, returned type, filter conditions as FetchXML, default for its table).
SYSTEM_VIEWS: tuple[tuple[str, str, str, bool], ...] = (
    (
        "My Active Contacts",
        "contact",
        '<condition attribute="ownerid" operator="eq-userid" />'
        '<condition attribute="statecode" operator="eq" value="0" />',
        True,
    ),
    (
        "Active Contacts",
        "contact",
        '<condition attribute="statecode" operator="eq" value="0" />',
        False,
    ),
    (
        "My Appointments",
        "appointment",
        '<condition attribute="ownerid" operator="eq-userid" />'
        '<condition attribute="statecode" operator="in"><value>0</value><value>3</value>'
        "</condition>",
        True,
    ),
    (
        "My Open Tasks",
        "task",
        '<condition attribute="ownerid" operator="eq-userid" />'
        '<condition attribute="statecode" operator="eq" value="0" />',
        True,
    ),
    ("My Faxes", "fax", '<condition attribute="ownerid" operator="eq-userid" />', True),
    ("My Letters", "letter", '<condition attribute="ownerid" operator="eq-userid" />', True),
    (
        "My Activities",
        "activitypointer",
        '<condition attribute="ownerid" operator="eq-userid" />'
        '<condition attribute="statecode" operator="in"><value>0</value><value>3</value>'
        "</condition>",
        True,
    ),
)


def view_fetchxml(logical: str, conditions: str, order: str | None = None) -> str:
    """A view's FetchXML: all columns, ``conditions`` ANDed, sorted by the primary name."""
    entity = ENTITIES[logical]
    sort = order or entity.primary_name or entity.key
    return (
        f'<fetch version="1.0" mapping="logical"><entity name="{logical}">'
        f'<all-attributes /><order attribute="{sort}" descending="false" />'
        f'<filter type="and">{conditions}</filter></entity></fetch>'
    )


def seed_pim_demo(storage: Storage, me: str, business_unit: str) -> None:
    """The demo user's PIM records and the system views (into an organisation being seeded)."""
    from .seed import guid, user_id

    records = Records(storage)
    caller = Caller(me, business_unit, is_admin=True)
    for name, logical, conditions, default in SYSTEM_VIEWS:
        records.create(
            caller,
            ENTITIES["savedquery"],
            {
                "name": name,
                "returnedtypecode": logical,
                "fetchxml": view_fetchxml(logical, conditions),
                "querytype": 0,
                "isdefault": default,
            },
            key=guid("savedquery", f"{logical}:{name}"),
        )
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks=1)
    jane = guid("contact", demo.CONTACTS[0].email)
    priya = user_id(demo.COLLEAGUES[0].email)
    _appointments(records, caller, monday, jane, priya, guid)
    _tasks_and_documents(records, caller, today, jane, guid)


def _at(day: Any, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parties(me: str, jane: str, priya: str) -> list[dict[str, Any]]:
    return [
        {"partyid_systemuser@odata.bind": f"/systemusers({me})", "participationtypemask": 7},
        {"partyid_contact@odata.bind": f"/contacts({jane})", "participationtypemask": 5},
        {"partyid_systemuser@odata.bind": f"/systemusers({priya})", "participationtypemask": 6},
        {"addressused": "guest@partner.example", "participationtypemask": 6},
    ]


def _appointments(
    records: Records, caller: Caller, monday: Any, jane: str, priya: str, guid: Any
) -> None:
    account = guid("account", demo.CONTACTS[0].account)
    appointment = ENTITIES["appointment"]
    records.create(
        caller,
        appointment,
        {
            "subject": "Quarterly review with Fabrikam",
            "location": "Fabrikam HQ, meeting room 2",
            "description": "Review of the last quarter's orders and the renewal.",
            "scheduledstart": _at(monday + timedelta(days=2), 14),
            "scheduledend": _at(monday + timedelta(days=2), 15, 30),
            "globalobjectid": "trackbox-demo-review@contoso.example",
            "regardingobjectid_account_appointment@odata.bind": f"/accounts({account})",
            "appointment_activity_parties": _parties(caller.user_id, jane, priya),
        },
        key=guid("appointment", "quarterly review"),
    )
    records.create(
        caller,
        appointment,
        {
            "subject": "Trade fair",
            "location": "Exhibition centre",
            "isalldayevent": True,
            "scheduledstart": _at(monday + timedelta(days=3), 0),
            "scheduledend": _at(monday + timedelta(days=5), 0),
            "statecode": 3,
            "statuscode": 6,
        },
        key=guid("appointment", "trade fair"),
    )
    _weekly_series(records, caller, monday, jane, priya, guid)


def _weekly_series(
    records: Records, caller: Caller, monday: Any, jane: str, priya: str, guid: Any
) -> None:
    """Mondays 09:00-09:30 for ten weeks; the third moved to Tuesday, the fifth deleted."""
    master = guid("recurringappointmentmaster", "weekly pipeline call")
    records.create(
        caller,
        ENTITIES["recurringappointmentmaster"],
        {
            "subject": "Weekly pipeline call",
            "location": "Teams",
            "globalobjectid": "trackbox-demo-pipeline@contoso.example",
            "recurrencepatterntype": 1,
            "interval": 1,
            "daysofweekmask": 2,
            "patternstartdate": _at(monday, 0),
            "patternendtype": 2,
            "occurrences": 10,
            "starttime": _at(monday, 9),
            "endtime": _at(monday, 9, 30),
            "recurringappointmentmaster_activity_parties": _parties(caller.user_id, jane, priya),
        },
        key=master,
    )
    rows = records.storage.query(
        "SELECT activityid FROM appointment WHERE seriesid=? ORDER BY originalstartdate", (master,)
    )
    moved = monday + timedelta(weeks=2, days=1)
    records.update(
        caller,
        ENTITIES["appointment"],
        rows[2]["activityid"],
        {"scheduledstart": _at(moved, 10), "scheduledend": _at(moved, 10, 30)},
    )
    records.delete(caller, ENTITIES["appointment"], rows[4]["activityid"])


def _tasks_and_documents(
    records: Records, caller: Caller, today: Any, jane: str, guid: Any
) -> None:
    regarding = {"regardingobjectid_contact_task@odata.bind": f"/contacts({jane})"}
    tasks: tuple[tuple[str, int, dict[str, Any]], ...] = (
        ("Send the renewal proposal to Jane", 3, {**regarding, "prioritycode": 2}),
        ("Follow up on the open invoice", 7, {"statuscode": 3, "percentcomplete": 50}),
        ("Book the trade fair stand", -2, {"statecode": 1, "statuscode": 5}),
    )
    for subject, days, extra in tasks:
        records.create(
            caller,
            ENTITIES["task"],
            {"subject": subject, "scheduledend": _at(today + timedelta(days=days), 17), **extra},
            key=guid("task", subject),
        )
    contact = {"partyid_contact@odata.bind": f"/contacts({jane})", "participationtypemask": 2}
    records.create(
        caller,
        ENTITIES["letter"],
        {
            "subject": "Countersigned contract",
            "address": "Fabrikam Inc., 1 Main Street, Seattle",
            "scheduledend": _at(today + timedelta(days=5), 12),
            "letter_activity_parties": [contact],
        },
        key=guid("letter", "countersigned contract"),
    )
    records.create(
        caller,
        ENTITIES["fax"],
        {
            "subject": "Signed order form",
            "faxnumber": "+1 555 0100 200",
            "numberofpages": 2,
            "directioncode": False,
            "fax_activity_parties": [contact],
        },
        key=guid("fax", "signed order form"),
    )


def seed_bulk_appointments(storage: Storage, count: int, owner: str, rng_seed: int = 7) -> int:
    """``count`` one-hour appointments owned (and organised) by ``owner`` over the next 90
    days, 08:00-17:00 UTC, for benchmarks (``bench/pim_sync.py``): one ``executemany`` per
    table, so thousands take a moment."""
    from .seed import guid

    rng = random.Random(rng_seed)
    start = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    appointment, party = ENTITIES["appointment"], ENTITIES["activityparty"]
    owned = {"ownerid": owner, "ownerid__type": "systemuser"}
    owned.update(createdby=owner, createdby__type="systemuser")
    owned.update(modifiedby=owner, modifiedby__type="systemuser")
    rows, parties = [], []
    for i in range(count):
        key = guid("appointment", f"bulk:{i}")
        begin = start + timedelta(days=rng.randrange(90), hours=rng.randrange(9))
        rows.append(
            {
                **Records.defaults(appointment),
                **owned,
                "activityid": key,
                "subject": f"Meeting {i + 1}",
                "location": f"Room {rng.randrange(1, 20)}",
                "scheduledstart": _at(begin.date(), begin.hour),
                "scheduledend": _at(begin.date(), begin.hour + 1),
                "scheduleddurationminutes": 60,
            }
        )
        parties.append(
            {
                **Records.defaults(party),
                "activitypartyid": guid("activityparty", f"bulk:{i}"),
                "activityid": key,
                "activityid__type": "appointment",
                "partyid": owner,
                "partyid__type": "systemuser",
                "participationtypemask": 7,
            }
        )
    with storage.transaction():
        storage.insert_many(appointment, rows)
        storage.insert_many(party, parties)
    return count
