"""Round trips between the PIM vocabulary and iCalendar, and between an RRULE and
Dataverse's recurrence pattern (core.pim.ical_map)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from core.pim import ical_map
from core.pim.ical_map import (
    IcalError,
    Unexpressible,
    crm_recurrence_problem,
    from_ical,
    meeting_request,
    pattern_to_rrule,
    rrule_to_pattern,
    to_ical,
)
from core.pim.sides import PimKind, PimRecord

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", None]
EMAILS = [f"{n}@example.com" for n in ("ann", "bob", "cleo", "dan", "eve")]
#: Text as people type it: any printable character, tabs and line feeds (a CR is not kept:
#: iCalendar has line feeds only, so CRLF from the CRM arrives as LF).
text = st.one_of(
    st.none(),
    st.text(
        st.one_of(st.characters(blacklist_categories=("Cs", "Cc")), st.sampled_from("\n\t")),
        min_size=1,
        max_size=40,
    ),
)
#: UTC instants to the minute, over two years holding several DST changes in every zone.
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(second=0, microsecond=0))
APPOINTMENT_FIELDS = [
    "uid",
    "subject",
    "description",
    "location",
    "scheduledstart",
    "scheduledend",
    "isalldayevent",
    "tzid",
    "organizer",
    "requiredattendees",
    "optionalattendees",
    "attendeestatus",
    "recurrence",
    "exdates",
    "rdates",
    "overrides",
    "statecode",
    "statuscode",
    "prioritycode",
    "activityid",
    "trackincrm",
    "method",
]


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def appointment(**fields: Any) -> PimRecord:
    return PimRecord(PimKind.APPOINTMENT, {k: fields.get(k) for k in APPOINTMENT_FIELDS})


@st.composite
def parties(draw: st.DrawFn) -> dict[str, Any]:
    people = draw(st.lists(st.sampled_from(EMAILS), unique=True, max_size=5))
    cut = draw(st.integers(0, len(people)))
    required, optional = people[:cut], people[cut:]
    statuses = {
        e: s
        for e in people
        if (s := draw(st.sampled_from(["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE"])))
        != "NEEDS-ACTION"
    }
    return {
        "organizer": draw(st.one_of(st.none(), st.sampled_from(EMAILS))),
        "requiredattendees": required or None,
        "optionalattendees": optional or None,
        "attendeestatus": statuses or None,
    }


@st.composite
def appointments(draw: st.DrawFn) -> PimRecord:
    allday = draw(st.booleans())
    if allday:
        day = draw(st.dates(date(2026, 1, 1), date(2027, 12, 31)))
        start, end = day.isoformat(), (day + timedelta(days=draw(st.integers(1, 5)))).isoformat()
        tzid = None
    else:
        begin = draw(instants)
        start, end = iso(begin), iso(begin + timedelta(minutes=draw(st.integers(0, 600))))
        tzid = draw(st.sampled_from(ZONES))
    state = draw(st.sampled_from([None, (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (3, 6)]))
    return appointment(
        uid=draw(st.uuids()).hex,
        subject=draw(text),
        description=draw(text),
        location=draw(text),
        scheduledstart=start,
        scheduledend=end,
        isalldayevent=allday,
        tzid=tzid,
        statecode=state[0] if state else None,
        statuscode=state[1] if state else None,
        prioritycode=draw(st.sampled_from([None, 0, 1, 2])),
        activityid=draw(st.one_of(st.none(), st.uuids().map(str))),
        trackincrm=draw(st.booleans()),
        **draw(parties()),
    )


@settings(max_examples=150, deadline=None)
@given(appointments())
def test_an_appointment_survives_icalendar_unchanged(record: PimRecord) -> None:
    assert dict(from_ical(to_ical(record)).fields) == dict(record.fields)


@settings(max_examples=60, deadline=None)
@given(instants, st.sampled_from([z for z in ZONES if z]))
def test_times_are_written_in_their_zone_with_its_vtimezone(start: datetime, tzid: str) -> None:
    record = appointment(uid="z", scheduledstart=iso(start), scheduledend=iso(start), tzid=tzid)
    calendar = Calendar.from_ical(to_ical(record))
    (event,) = calendar.walk("VEVENT")
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == [tzid]
    local = start.astimezone(ZoneInfo(tzid))
    if local.replace(fold=0).astimezone(UTC) == start:  # not the second pass of a repeated hour
        assert event["DTSTART"].params["TZID"] == tzid
        assert event["DTSTART"].dt.replace(tzinfo=None) == local.replace(tzinfo=None)
    assert event["DTSTART"].dt == start


def weekly_series() -> PimRecord:
    """Mondays 10:00 Berlin from 23 March 2026 (before the DST change of the 29th), six
    times; the 30 March instance moved to Tuesday 14:00, the 13 April one deleted."""
    return appointment(
        uid="series-1",
        subject="Weekly review",
        scheduledstart="2026-03-23T09:00:00Z",
        scheduledend="2026-03-23T10:00:00Z",
        isalldayevent=False,
        tzid="Europe/Berlin",
        organizer="ann@example.com",
        requiredattendees=["bob@example.com"],
        recurrence="FREQ=WEEKLY;COUNT=6;BYDAY=MO",
        exdates=["2026-04-13T08:00:00Z"],
        overrides=[
            {
                "recurrenceid": "2026-03-30T08:00:00Z",
                "subject": "Weekly review (moved)",
                "location": None,
                "description": None,
                "scheduledstart": "2026-03-31T12:00:00Z",
                "scheduledend": "2026-03-31T13:00:00Z",
            }
        ],
        trackincrm=False,
    )


def test_a_weekly_series_keeps_its_moved_and_deleted_instances() -> None:
    record = weekly_series()
    data = to_ical(record)
    assert dict(from_ical(data).fields) == dict(record.fields)
    calendar = Calendar.from_ical(data)
    starts = [
        e["DTSTART"].dt.astimezone(UTC)
        for e in recurring_ical_events.of(calendar).between(date(2026, 3, 1), date(2026, 6, 1))
    ]
    # 10:00 Berlin is 09:00 UTC before 29 March and 08:00 UTC after it.
    assert sorted(starts) == [
        datetime(2026, 3, 23, 9, tzinfo=UTC),
        datetime(2026, 3, 31, 12, tzinfo=UTC),
        datetime(2026, 4, 6, 8, tzinfo=UTC),
        datetime(2026, 4, 20, 8, tzinfo=UTC),
        datetime(2026, 4, 27, 8, tzinfo=UTC),
    ]


def test_an_all_day_event_is_written_as_dates() -> None:
    record = appointment(
        uid="d",
        subject="Offsite",
        scheduledstart="2026-10-24",
        scheduledend="2026-10-26",
        isalldayevent=True,
        trackincrm=False,
    )
    data = to_ical(record).decode()
    assert "DTSTART;VALUE=DATE:20261024" in data
    assert "DTEND;VALUE=DATE:20261026" in data
    assert "VTIMEZONE" not in data
    assert dict(from_ical(data).fields) == dict(record.fields)


def test_an_all_day_event_without_dtend_lasts_one_day() -> None:
    data = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261224\r\nSUMMARY:Eve\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    fields = from_ical(data).fields
    assert (fields["scheduledstart"], fields["scheduledend"]) == ("2026-12-24", "2026-12-25")
    assert fields["isalldayevent"] is True


OUTLOOK_INVITE = """BEGIN:VCALENDAR
METHOD:REQUEST
PRODID:Microsoft Exchange Server 2010
VERSION:2.0
BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
ORGANIZER;CN=Ann Example:mailto:Ann@Example.com
ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Me:mailto:me@example.com
ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.com
SUMMARY:Quarterly planning
DTSTART;TZID=W. Europe Standard Time:20260701T140000
DTEND;TZID=W. Europe Standard Time:20260701T153000
UID:040000008200E00074C5B7101A82E0080000000010B2
LOCATION:Room 4
DTSTAMP:20260601T120000Z
STATUS:CONFIRMED
END:VEVENT
END:VCALENDAR
"""


def test_a_received_meeting_request_is_an_appointment_the_user_attends() -> None:
    record = meeting_request(OUTLOOK_INVITE, "ME@example.com")
    fields = record.fields
    assert fields["method"] == "REQUEST"
    assert fields["organizer"] == "ann@example.com"
    assert fields["requiredattendees"] == ["me@example.com"]
    assert fields["optionalattendees"] == ["bob@example.com"]
    assert fields["scheduledstart"] == "2026-07-01T12:00:00Z"  # 14:00 CEST
    assert fields["tzid"] == "W. Europe Standard Time"
    again = Calendar.from_ical(to_ical(record))
    (event,) = again.walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "W. Europe Standard Time"
    assert event["DTSTART"].dt.astimezone(UTC) == datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert dict(from_ical(again.to_ical()).fields) == dict(fields)


def test_a_meeting_request_for_someone_else_or_a_reply_is_refused() -> None:
    with pytest.raises(IcalError, match="not an attendee"):
        meeting_request(OUTLOOK_INVITE, "carol@example.com")
    with pytest.raises(IcalError, match="not a meeting request"):
        meeting_request(OUTLOOK_INVITE.replace("METHOD:REQUEST", "METHOD:REPLY"), "me@example.com")


# --- tasks --------------------------------------------------------------------------------

TASK_FIELDS = [
    "uid",
    "subject",
    "description",
    "scheduledstart",
    "scheduledend",
    "tzid",
    "actualend",
    "percentcomplete",
    "statecode",
    "statuscode",
    "prioritycode",
    "activityid",
    "trackincrm",
    "activitytypecode",
    "recurrence",
    "exdates",
    "rdates",
]
TASK_STATES = {
    "task": [(0, 2), (0, 3), (0, 4), (0, 7), (1, 5), (2, 6)],
    "fax": [(0, 1), (1, 2), (1, 3), (1, 4), (2, 5)],
    "letter": [(0, 1), (0, 2), (1, 3), (1, 4), (2, 5)],
}


def task(**fields: Any) -> PimRecord:
    return PimRecord(PimKind.TASK, {k: fields.get(k) for k in TASK_FIELDS})


@st.composite
def tasks(draw: st.DrawFn) -> PimRecord:
    kind = draw(st.sampled_from(list(TASK_STATES)))
    dated = draw(st.booleans())
    tzid = None
    if dated:
        due: str | None = draw(st.dates(date(2026, 1, 1), date(2027, 12, 31))).isoformat()
        start = None
    else:
        due = draw(st.one_of(st.none(), instants.map(iso)))
        start = draw(st.one_of(st.none(), instants.map(iso)))
        tzid = draw(st.sampled_from(ZONES)) if (due or start) else None
    state = draw(st.sampled_from([None, *TASK_STATES[kind]]))
    return task(
        uid=draw(st.uuids()).hex,
        subject=draw(text),
        description=draw(text),
        scheduledstart=start,
        scheduledend=due,
        tzid=tzid,
        actualend=draw(st.one_of(st.none(), instants.map(iso))),
        percentcomplete=draw(st.one_of(st.none(), st.integers(0, 100))),
        statecode=state[0] if state else None,
        statuscode=state[1] if state else None,
        prioritycode=draw(st.sampled_from([None, 0, 1, 2])),
        activityid=draw(st.one_of(st.none(), st.uuids().map(str))),
        trackincrm=draw(st.booleans()),
        activitytypecode=kind,
        recurrence=draw(st.sampled_from([None, "FREQ=WEEKLY;BYDAY=FR", "FREQ=MONTHLY;COUNT=12"]))
        if due
        else None,
    )


@settings(max_examples=150, deadline=None)
@given(tasks())
def test_a_task_fax_or_letter_survives_icalendar_unchanged(record: PimRecord) -> None:
    assert dict(from_ical(to_ical(record)).fields) == dict(record.fields)


def test_task_status_is_vtodo_status() -> None:
    for state, word in (((0, 2), "NEEDS-ACTION"), ((0, 3), "IN-PROCESS"), ((1, 5), "COMPLETED")):
        record = task(uid="t", subject="Call", statecode=state[0], statuscode=state[1])
        (todo,) = Calendar.from_ical(to_ical(record)).walk("VTODO")
        assert str(todo["STATUS"]) == word
        assert "X-TRACKBOX-STATE" not in todo


def test_a_status_changed_in_another_client_wins_over_the_kept_crm_status() -> None:
    """A deferred task (0/7) is NEEDS-ACTION plus the exact status; once another client
    marks it COMPLETED, the kept 0/7 no longer applies."""
    data = to_ical(task(uid="t", subject="Call", statecode=0, statuscode=7)).decode()
    assert "X-TRACKBOX-STATE:0/7" in data
    completed = data.replace("STATUS:NEEDS-ACTION", "STATUS:COMPLETED")
    fields = from_ical(completed).fields
    assert (fields["statecode"], fields["statuscode"]) == (1, 5)


def test_a_recurring_task_with_a_due_date() -> None:
    record = task(
        uid="r",
        subject="Timesheet",
        scheduledend="2026-12-04T16:00:00Z",
        tzid="Europe/Berlin",
        recurrence="FREQ=WEEKLY;BYDAY=FR",
        statecode=0,
        statuscode=2,
        activitytypecode="task",
        trackincrm=True,
    )
    data = to_ical(record).decode()
    assert "DUE;TZID=Europe/Berlin:20261204T170000" in data
    assert "RRULE:FREQ=WEEKLY;BYDAY=FR" in data
    assert "X-TRACKBOX-TRACK:1" in data
    assert dict(from_ical(data).fields) == dict(record.fields)


# --- Dataverse's recurrence pattern -------------------------------------------------------

CANONICAL_RRULES = [
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3;COUNT=10",
    "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "FREQ=WEEKLY;INTERVAL=2;UNTIL=20261228T090000Z;BYDAY=MO;WKST=SU",
    "FREQ=MONTHLY;BYMONTHDAY=15",
    "FREQ=MONTHLY;INTERVAL=2;COUNT=5;BYDAY=2TU",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1",
    "FREQ=YEARLY;BYMONTHDAY=7;BYMONTH=12",
    "FREQ=YEARLY;BYDAY=4TH;BYMONTH=11",
]


@pytest.mark.parametrize("rrule", CANONICAL_RRULES)
def test_an_expressible_rrule_survives_the_crm_pattern(rrule: str) -> None:
    start = datetime(2026, 12, 7, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    pattern = rrule_to_pattern(rrule, start, start.tzinfo)
    assert pattern_to_rrule(pattern, start) == rrule


def test_the_pattern_columns_are_dataverses() -> None:
    start = datetime(2026, 12, 7, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    pattern = rrule_to_pattern("FREQ=WEEKLY;INTERVAL=2;COUNT=8;BYDAY=MO,TH", start)
    assert pattern["recurrencepatterntype"] == 1
    assert pattern["interval"] == 2
    assert pattern["daysofweekmask"] == 2 | 16  # Monday, Thursday (Sunday is 1)
    assert (pattern["patternendtype"], pattern["occurrences"]) == (2, 8)
    assert pattern["patternstartdate"] == "2026-12-07"
    nth = rrule_to_pattern("FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO", start)
    assert (nth["recurrencepatterntype"], nth["isnthyearly"], nth["instance"]) == (3, True, 5)
    assert (nth["monthofyear"], nth["daysofweekmask"]) == (5, 2)
    implicit = rrule_to_pattern("FREQ=MONTHLY", start)
    assert implicit["dayofmonth"] == 7


@st.composite
def patterns(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    start = datetime(2026, 3, 23, 10, tzinfo=ZoneInfo(draw(st.sampled_from(ZONES[:3]))))
    kind = draw(st.integers(0, 3))
    pattern: dict[str, Any] = dict.fromkeys(ical_map.PATTERN_FIELDS)
    pattern.update(
        recurrencepatterntype=kind,
        interval=draw(st.integers(1, 1000)),
        isnthmonthly=False,
        isnthyearly=False,
        isweekdaypattern=False,
        patternstartdate="2026-03-23",
        firstdayofweek=draw(st.one_of(st.none(), st.integers(0, 6))),
    )
    if kind == 1:
        if draw(st.booleans()):
            pattern.update(isweekdaypattern=True, daysofweekmask=62, interval=1)
        else:
            pattern["daysofweekmask"] = draw(st.integers(1, 127))
    elif kind in (2, 3):
        if draw(st.booleans()):
            nth = "isnthmonthly" if kind == 2 else "isnthyearly"
            mask = draw(st.integers(1, 127))
            pattern.update({nth: True, "instance": draw(st.integers(1, 5)), "daysofweekmask": mask})
        else:
            pattern["dayofmonth"] = draw(st.integers(1, 31))
        if kind == 3:
            pattern["monthofyear"] = draw(st.integers(1, 12))
    end = draw(st.integers(1, 3))
    pattern["patternendtype"] = end
    if end == 2:
        pattern["occurrences"] = draw(st.integers(1, 999))
    elif end == 3:
        pattern["patternenddate"] = draw(
            st.dates(date(2026, 3, 23), date(2030, 12, 31))
        ).isoformat()
    return pattern, start


@settings(max_examples=300, deadline=None)
@given(patterns())
def test_a_crm_pattern_survives_an_rrule(case: tuple[dict[str, Any], datetime]) -> None:
    pattern, start = case
    rrule = pattern_to_rrule(pattern, start)
    assert rrule_to_pattern(rrule, start, start.tzinfo) == pattern


@pytest.mark.parametrize(
    ("rrule", "reason"),
    [
        ("FREQ=HOURLY", "not hourly"),
        ("FREQ=DAILY;BYHOUR=9,17", "no BYHOUR"),
        ("FREQ=YEARLY;BYWEEKNO=20", "no BYWEEKNO"),
        ("FREQ=YEARLY;BYYEARDAY=100", "no BYYEARDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,15", "one day of the month"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", "1 to 31"),
        ("FREQ=MONTHLY;BYDAY=1MO,3WE", "one position"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-2", "first to fourth or the last"),
        ("FREQ=MONTHLY;BYDAY=5FR", "first to fourth or the last"),
        ("FREQ=WEEKLY;BYDAY=1MO", "only weekdays"),
        ("FREQ=DAILY;BYDAY=SA,SU", "every weekday"),
        ("FREQ=YEARLY;BYMONTH=1,7", "one month"),
        ("FREQ=DAILY;COUNT=1000", "1 to 999"),
        ("FREQ=DAILY;INTERVAL=1001", "1 to 1000"),
    ],
)
def test_rrules_the_crm_cannot_hold_say_why(rrule: str, reason: str) -> None:
    with pytest.raises(Unexpressible, match=reason):
        rrule_to_pattern(rrule, date(2026, 12, 7))
    fields = {"recurrence": rrule, "scheduledstart": "2026-12-07T09:00:00Z", "tzid": "UTC"}
    assert reason in (crm_recurrence_problem(fields) or "")


def test_an_extra_date_keeps_a_series_out_of_the_crm() -> None:
    fields = weekly_series().fields
    assert crm_recurrence_problem(fields) is None
    assert "RDATE" in (crm_recurrence_problem({**fields, "rdates": ["2026-05-01T08:00:00Z"]}) or "")
