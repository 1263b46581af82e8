"""The activities the PIM synchronisation reads and writes (issue 20): appointments, recurring
appointment masters, tasks, faxes and letters, and the saved views (``savedquery`` system
views, ``userquery`` personal views) a user may pick as a synchronisation filter.

Columns, option values and state → status pairs as Dataverse defines them (appointment,
recurringappointmentmaster, task, fax, letter, savedquery and userquery table references).
Kept apart from :mod:`crmserver.entities` (which calls :func:`pim_activities` and
:func:`pim_views`) so that the
shared file only gains one line per table.
"""

from __future__ import annotations

from .entities import Attribute, Entity, _a, _activity, _entity, _s

#: statecode → (statuscodes allowed, the first being the default), per table.
STATE_STATUS: dict[str, dict[int, tuple[int, ...]]] = {
    "appointment": {0: (1, 2), 1: (3,), 2: (4,), 3: (5, 6)},
    "recurringappointmentmaster": {0: (1, 2), 1: (3,), 2: (4,), 3: (5, 6)},
    "task": {0: (2, 3, 4, 7), 1: (5,), 2: (6,)},
    "fax": {0: (1,), 1: (2, 3, 4), 2: (5,)},
    "letter": {0: (1, 2), 1: (3, 4), 2: (5,)},
}

APPOINTMENT_STATE = {0: "Open", 1: "Completed", 2: "Canceled", 3: "Scheduled"}
APPOINTMENT_STATUS = {
    1: "Free",
    2: "Tentative",
    3: "Completed",
    4: "Canceled",
    5: "Busy",
    6: "Out of Office",
}
TASK_STATE = {0: "Open", 1: "Completed", 2: "Canceled"}
TASK_STATUS = {
    2: "Not Started",
    3: "In Progress",
    4: "Waiting on someone else",
    5: "Completed",
    6: "Canceled",
    7: "Deferred",
}
FAX_STATUS = {1: "Open", 2: "Completed", 3: "Sent", 4: "Received", 5: "Canceled"}
LETTER_STATUS = {1: "Open", 2: "Draft", 3: "Received", 4: "Sent", 5: "Canceled"}
INSTANCE_TYPE = {
    0: "Not Recurring",
    1: "Recurring Master",
    2: "Recurring Instance",
    3: "Recurring Exception",
    4: "Recurring Future Exception",
}
PATTERN_TYPE = {0: "Daily", 1: "Weekly", 2: "Monthly", 3: "Yearly"}
PATTERN_END = {1: "No End Date", 2: "Occurrences", 3: "Pattern End Date"}
WEEKDAY = {
    0: "Sunday",
    1: "Monday",
    2: "Tuesday",
    3: "Wednesday",
    4: "Thursday",
    5: "Friday",
    6: "Saturday",
}
INSTANCE = {1: "First", 2: "Second", 3: "Third", 4: "Fourth", 5: "Last"}
#: savedquery.querytype (the ones the emulator seeds and accepts).
QUERY_TYPE = {
    0: "Main Application View",
    1: "Advanced Search",
    2: "Sub-Grid",
    4: "Quick Find Search",
    64: "Lookup View",
}


def _state(options: dict[int, str], default: int) -> Attribute:
    return _a("statecode", "state", default=default, options=options)


def _appointment_columns() -> list[Attribute]:
    """What an appointment and its recurring master share."""
    return [
        _state(APPOINTMENT_STATE, 3),
        _s("location", 200),
        _a("isalldayevent", "bool", default=False),
        _a("scheduleddurationminutes", "int"),
        _a("actualdurationminutes", "int"),
        _s("globalobjectid", 300),
        _a("instancetypecode", "picklist", default=0, readonly=True, options=INSTANCE_TYPE),
        _a("isunsafe", "int", default=0, readonly=True),
        _s("category", 250),
        _s("subcategory", 250),
    ]


def _appointment() -> Entity:
    return _activity(
        "appointment",
        4201,
        [
            *_appointment_columns(),
            _a("seriesid", "guid", readonly=True),
            _a("originalstartdate", "datetime", readonly=True),
        ],
        APPOINTMENT_STATUS,
        5,
    )


def _recurring_master() -> Entity:
    """The series: its pattern, and (set by the server) the span and the deleted dates."""
    return _activity(
        "recurringappointmentmaster",
        4251,
        [
            *_appointment_columns(),
            _a("instancetypecode", "picklist", default=1, readonly=True, options=INSTANCE_TYPE),
            _a("recurrencepatterntype", "picklist", default=1, options=PATTERN_TYPE),
            _a("interval", "int", default=1),
            _a("daysofweekmask", "int"),
            _a("dayofmonth", "int"),
            _a("monthofyear", "picklist", options={m: str(m) for m in range(1, 13)}),
            _a("instance", "picklist", options=INSTANCE),
            _a("firstdayofweek", "picklist", default=0, options=WEEKDAY),
            _a("isweekdaypattern", "bool", default=False),
            _a("isnthmonthly", "bool", default=False),
            _a("isnthyearly", "bool", default=False),
            _a("isregenerate", "bool", default=False),
            _a("patternstartdate", "datetime"),
            _a("patternenddate", "datetime"),
            _a("patternendtype", "picklist", default=1, options=PATTERN_END),
            _a("occurrences", "int"),
            _a("starttime", "datetime"),
            _a("endtime", "datetime"),
            _a("duration", "int"),
            _a("effectivestartdate", "datetime", readonly=True),
            _a("effectiveenddate", "datetime", readonly=True),
            _a("lastexpandedinstancedate", "datetime", readonly=True),
            _a("deletedexceptionslist", "memo", readonly=True),
            _a("seriesstatus", "bool", default=True),
        ],
        APPOINTMENT_STATUS,
        5,
    )


def _task() -> Entity:
    return _activity(
        "task",
        4212,
        [
            _state(TASK_STATE, 0),
            _a("percentcomplete", "int"),
            _a("actualdurationminutes", "int"),
            _a("scheduleddurationminutes", "int"),
            _s("category", 250),
            _s("subcategory", 250),
        ],
        TASK_STATUS,
        2,
    )


def _fax() -> Entity:
    return _activity(
        "fax",
        4204,
        [
            _s("faxnumber", 200),
            _a("numberofpages", "int"),
            _a("directioncode", "bool", default=True),
            _s("coverpagename", 100),
            _s("tsid", 20),
            _s("billingcode", 50),
            _s("category", 250),
            _s("subcategory", 250),
        ],
        FAX_STATUS,
        1,
    )


def _letter() -> Entity:
    return _activity(
        "letter",
        4207,
        [
            _s("address", 200),
            _a("directioncode", "bool", default=True),
            _s("category", 250),
            _s("subcategory", 250),
        ],
        LETTER_STATUS,
        1,
    )


def _view_columns() -> list[Attribute]:
    return [
        _s("name", 200),
        _a("description", "memo"),
        _s("returnedtypecode", 64),
        _a("fetchxml", "memo"),
        _a("layoutxml", "memo"),
        _a("querytype", "int", default=0),
    ]


def pim_views() -> list[Entity]:
    """System views (organisation-owned, written by administrators) and personal views
    (owned, read by their owner only)."""
    return [
        _entity(
            "savedquery",
            [
                *_view_columns(),
                _a("isdefault", "bool", default=False),
                _a("isquickfindquery", "bool", default=False),
                _a("iscustomizable", "bool", default=True),
            ],
            owned=False,
            change_tracking=False,
            object_type_code=1039,
        ),
        _entity(
            "userquery",
            _view_columns(),
            change_tracking=False,
            object_type_code=4230,
        ),
    ]


def pim_activities() -> list[Entity]:
    """Appointment, recurring master, task, fax and letter, in that order."""
    return [_appointment(), _recurring_master(), _task(), _fax(), _letter()]


__all__ = ["STATE_STATUS", "pim_activities", "pim_views"]
