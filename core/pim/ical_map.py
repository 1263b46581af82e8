"""iCalendar ↔ the PIM vocabulary (``core.pim.sides``): a CRM appointment as a VEVENT, a
CRM task, fax or letter as a VTODO, and a recurrence as Dataverse's recurring appointment
pattern. Pure: no I/O, so the CalDAV side, the EWS/Graph sides and the tests share it.

Vocabulary beyond the CRM's columns (kept so that a round trip loses nothing):
``uid`` (the iCalendar UID), ``tzid`` (the TZID the times were written in; the times
themselves are UTC), ``attendeestatus`` (PARTSTAT per attendee, NEEDS-ACTION left out),
``recurrence`` / ``exdates`` / ``rdates`` / ``overrides`` (the series: RRULE, deleted and
added starts, moved or changed instances keyed by ``recurrenceid``), ``activityid``
(``X-TRACKBOX-CRMID``), ``trackincrm`` (``X-TRACKBOX-TRACK:1``: the user chose Track in
CRM), ``regardingobjectid`` / ``regardingname`` (``X-TRACKBOX-REGARDING[-NAME]``: Set
Regarding, ``entity:id``; present only when set, so an item without it changes nothing),
``activitytypecode`` (task, fax or letter) and ``method`` (``REQUEST`` for a
received meeting request).

An exact ``statecode``/``statuscode`` that iCalendar's STATUS cannot say (a completed
appointment, a deferred task) rides in ``X-TRACKBOX-STATE:<state>/<status>``; it is used on
reading only while STATUS still says what it was written with, so a change made in another
calendar client wins over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Component, Event, Timezone, Todo, vCalAddress, vRecur
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from core.pim.sides import PimKind, PimRecord

PRODID = "-//Trackbox//PIM//EN"
X_CRMID = "X-TRACKBOX-CRMID"
X_TRACK = "X-TRACKBOX-TRACK"
X_ACTIVITY = "X-TRACKBOX-ACTIVITYTYPE"
X_STATE = "X-TRACKBOX-STATE"
#: The TZID again, for an item whose times all had to be written in UTC (see ``_ambiguous``).
X_TZID = "X-TRACKBOX-TZID"
#: Set Regarding on an item: the field and the property that keeps it.
X_REGARDING = (
    ("regardingobjectid", "X-TRACKBOX-REGARDING"),
    ("regardingname", "X-TRACKBOX-REGARDING-NAME"),
)
#: The fields of an instance that an override may change.
OVERRIDE_FIELDS = ("subject", "location", "description", "scheduledstart", "scheduledend")
TASK_TYPES = ("task", "fax", "letter")


class IcalError(ValueError):
    """Input that is not a usable iCalendar object (no VEVENT/VTODO, no DTSTART…)."""


class Unexpressible(ValueError):
    """An RRULE Dataverse's recurrence pattern cannot hold; ``reason`` says why, for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- values ---------------------------------------------------------------------------------


def utc_iso(value: datetime) -> str:
    """A date-time in the vocabulary: UTC, ISO 8601 with ``Z`` (floating is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when_iso(value: date) -> str:
    """A date-time as UTC ISO, a plain date as ``YYYY-MM-DD``."""
    return utc_iso(value) if isinstance(value, datetime) else value.isoformat()


def parse_when(text: str) -> date:
    """The inverse of :func:`when_iso`: a ``date`` for ``YYYY-MM-DD``, else an aware datetime."""
    if len(text) == 10:
        return date.fromisoformat(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def zone(tzid: str | None) -> tzinfo | None:
    """The zone a TZID names: an IANA name, or a Windows name (Outlook's) mapped to IANA;
    None when unknown (the times are then written in UTC)."""
    if not tzid:
        return None
    for name in (tzid, WINDOWS_TO_OLSON.get(tzid, "")):
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return None


def _email(address: object) -> str:
    text = str(address).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip().lower()


def _text(component: Component, name: str) -> str | None:
    value = component.get(name)
    return str(value) if value is not None and str(value) != "" else None


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# --- statuses -------------------------------------------------------------------------------

#: iCalendar STATUS → the (statecode, statuscode) it stands for, per CRM activity type.
STATUS_TABLES: Mapping[str, Mapping[str, tuple[int, int]]] = {
    "appointment": {"TENTATIVE": (0, 2), "CONFIRMED": (3, 5), "CANCELLED": (2, 4)},
    "task": {
        "NEEDS-ACTION": (0, 2),
        "IN-PROCESS": (0, 3),
        "COMPLETED": (1, 5),
        "CANCELLED": (2, 6),
    },
    "fax": {"NEEDS-ACTION": (0, 1), "COMPLETED": (1, 2), "CANCELLED": (2, 5)},
    "letter": {"NEEDS-ACTION": (0, 1), "COMPLETED": (1, 4), "CANCELLED": (2, 5)},
}


def _status_for(kind: str, state: int, status: int | None) -> str:
    table = STATUS_TABLES[kind]
    exact = [s for s, pair in table.items() if pair == (state, status)]
    if exact:
        return exact[0]
    same_state = [s for s, pair in table.items() if pair[0] == state]
    if same_state:
        return same_state[0]
    return "CONFIRMED" if kind == "appointment" else "NEEDS-ACTION"  # appointment completed


def _write_status(component: Component, kind: str, fields: Mapping[str, Any]) -> None:
    state = fields.get("statecode")
    if state is None:
        return
    status = fields.get("statuscode")
    word = _status_for(kind, int(state), status)
    component.add("STATUS", word)
    if STATUS_TABLES[kind].get(word) != (state, status):
        component.add(X_STATE, f"{state}/{'' if status is None else status}")


def _read_status(component: Component, kind: str) -> dict[str, Any]:
    word = _text(component, "STATUS")
    if word is None:
        return {"statecode": None, "statuscode": None}
    word = word.upper()
    extra = _text(component, X_STATE)
    if extra and "/" in extra:
        state_text, _, status_text = extra.partition("/")
        try:
            state, status = int(state_text), int(status_text) if status_text else None
        except ValueError:
            state, status = -1, None
        if state >= 0 and _status_for(kind, state, status) == word:
            return {"statecode": state, "statuscode": status}
    state, status = STATUS_TABLES[kind].get(word, (0, None))
    return {"statecode": state, "statuscode": status}


def _priority_to_ical(code: int) -> int:
    return {0: 9, 1: 5, 2: 1}.get(code, 0)


def _priority_from_ical(value: int) -> int | None:
    if value <= 0:
        return None
    return 2 if value <= 4 else 1 if value == 5 else 0


# --- writing --------------------------------------------------------------------------------


def _local(value: str, tz: tzinfo | None) -> date:
    """A vocabulary time as written in iCalendar: a date stays a date, a UTC time moves
    into ``tz`` (or stays UTC)."""
    when = parse_when(value)
    if isinstance(when, datetime) and tz is not None:
        return when.astimezone(tz)
    return when


def _add_when(component: Component, name: str, value: str, tz: tzinfo | None, tzid: str) -> None:
    local = _local(value, tz)
    if isinstance(local, datetime) and tz is not None and not _ambiguous(local):
        component.add(name, local, parameters={"TZID": tzid})
    elif isinstance(local, datetime):
        component.add(name, local.astimezone(UTC))  # RFC 5545 reads a repeated hour as its first
    else:
        component.add(name, local)


def _ambiguous(local: datetime) -> bool:
    """Whether a local time falls in the second pass of a repeated hour (DST ending): a
    TZID time there means the first pass (RFC 5545 3.3.5), so it is written in UTC."""
    return local.replace(fold=0).astimezone(UTC) != local.astimezone(UTC)


def _add_dates(
    component: Component, name: str, values: Sequence[str], tz: tzinfo | None, tzid: str
) -> None:
    for value in values:
        _add_when(component, name, value, tz, tzid)


def _add_common(component: Component, fields: Mapping[str, Any], kind: str) -> None:
    for key, prop in (("subject", "SUMMARY"), ("description", "DESCRIPTION")):
        if fields.get(key):
            component.add(prop, fields[key])
    if fields.get("location"):
        component.add("LOCATION", fields["location"])
    if fields.get("prioritycode") is not None:
        component.add("PRIORITY", _priority_to_ical(int(fields["prioritycode"])))
    if fields.get("activityid"):
        component.add(X_CRMID, str(fields["activityid"]))
    if fields.get("trackincrm"):
        component.add(X_TRACK, "1")
    for key, prop in X_REGARDING:
        if fields.get(key):
            component.add(prop, str(fields[key]))
    if fields.get("tzid") and not fields.get("isalldayevent"):
        component.add(X_TZID, str(fields["tzid"]))
    _write_status(component, kind, fields)


def _add_parties(event: Component, fields: Mapping[str, Any]) -> None:
    statuses: Mapping[str, str] = fields.get("attendeestatus") or {}
    if fields.get("organizer"):
        event.add("ORGANIZER", vCalAddress(f"mailto:{fields['organizer']}"))
    for key, role in (
        ("requiredattendees", "REQ-PARTICIPANT"),
        ("optionalattendees", "OPT-PARTICIPANT"),
    ):
        for email in fields.get(key) or ():
            attendee = vCalAddress(f"mailto:{email}")
            attendee.params["ROLE"] = role
            attendee.params["PARTSTAT"] = statuses.get(email, "NEEDS-ACTION")
            event.add("ATTENDEE", attendee, encode=False)


def _add_series(
    component: Component, fields: Mapping[str, Any], tz: tzinfo | None, tzid: str
) -> None:
    if fields.get("recurrence"):
        component.add("RRULE", vRecur.from_ical(str(fields["recurrence"])))
    _add_dates(component, "EXDATE", fields.get("exdates") or (), tz, tzid)
    _add_dates(component, "RDATE", fields.get("rdates") or (), tz, tzid)


def _event(fields: Mapping[str, Any], tz: tzinfo | None, tzid: str, uid: str) -> Event:
    event = Event()
    event.add("UID", uid)
    event.add("DTSTAMP", datetime(2000, 1, 1, tzinfo=UTC))
    if fields.get("scheduledstart"):
        _add_when(event, "DTSTART", str(fields["scheduledstart"]), tz, tzid)
    if fields.get("scheduledend"):
        _add_when(event, "DTEND", str(fields["scheduledend"]), tz, tzid)
    _add_common(event, fields, "appointment")
    _add_parties(event, fields)
    return event


def _new_calendar(method: str | None) -> Calendar:
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    if method:
        calendar.add("METHOD", method)
    return calendar


def _add_timezone(
    calendar: Calendar, fields: Mapping[str, Any], tz: tzinfo | None, tzid: str
) -> None:
    """The VTIMEZONE a TZID refers to, covering the item's year to ten years on (a series)."""
    if tz is None or not fields.get("scheduledstart"):
        return
    start = parse_when(str(fields["scheduledstart"]))
    years = 10 if fields.get("recurrence") else 1
    calendar.add_component(_vtimezone(tz, tzid, start.year - 1, start.year + years))


@lru_cache(maxsize=64)
def _vtimezone(tz: tzinfo, tzid: str, first_year: int, last_year: int) -> Timezone:
    """One VTIMEZONE per zone and span, built once (it is the costly part of writing an
    item); only serialised afterwards, never changed."""
    first, last = date(first_year, 1, 1), date(last_year, 12, 31)
    return Timezone.from_tzinfo(tz, tzid=tzid, first_date=first, last_date=last)


def _zone_of(fields: Mapping[str, Any]) -> tuple[tzinfo | None, str]:
    tzid = str(fields.get("tzid") or "")
    if fields.get("isalldayevent"):
        return None, ""
    tz = zone(tzid)
    return (tz, tzid) if tz is not None else (None, "")


def appointment_to_ical(
    record: PimRecord, *, uid: str | None = None, method: str | None = None
) -> bytes:
    """A VCALENDAR with the appointment's VEVENT (the series master, then one VEVENT per
    overridden instance) and the VTIMEZONE its TZID needs."""
    fields = record.fields
    uid = uid or str(fields.get("uid") or fields.get("activityid") or "")
    if not uid:
        raise IcalError("an appointment needs a uid or an activityid to become a VEVENT")
    tz, tzid = _zone_of(fields)
    calendar = _new_calendar(method or fields.get("method"))
    _add_timezone(calendar, fields, tz, tzid)
    master = _event(fields, tz, tzid, uid)
    _add_series(master, fields, tz, tzid)
    calendar.add_component(master)
    for override in fields.get("overrides") or ():
        instance = _event({**_inherited(fields), **override}, tz, tzid, uid)
        _add_when(instance, "RECURRENCE-ID", str(override["recurrenceid"]), tz, tzid)
        calendar.add_component(instance)
    return bytes(calendar.to_ical())


def _inherited(fields: Mapping[str, Any]) -> dict[str, Any]:
    """What an overridden instance repeats from its master (parties, status, priority)."""
    keep = ("organizer", "requiredattendees", "optionalattendees", "attendeestatus")
    return {k: fields[k] for k in keep if k in fields}


def task_to_ical(record: PimRecord, *, uid: str | None = None) -> bytes:
    """A VCALENDAR with the task's (fax's, letter's) VTODO."""
    fields = record.fields
    uid = uid or str(fields.get("uid") or fields.get("activityid") or "")
    if not uid:
        raise IcalError("a task needs a uid or an activityid to become a VTODO")
    kind = str(fields.get("activitytypecode") or "task")
    if kind not in TASK_TYPES:
        raise IcalError(f"not a task type: {kind}")
    tz, tzid = _zone_of(fields)
    calendar = _new_calendar(None)
    _add_timezone(calendar, fields, tz, tzid)
    todo = Todo()
    todo.add("UID", uid)
    todo.add("DTSTAMP", datetime(2000, 1, 1, tzinfo=UTC))
    for key, prop in (("scheduledstart", "DTSTART"), ("scheduledend", "DUE")):
        if fields.get(key):
            _add_when(todo, prop, str(fields[key]), tz, tzid)
    if fields.get("actualend"):
        todo.add("COMPLETED", parse_when(str(fields["actualend"])))
    if fields.get("percentcomplete") is not None:
        todo.add("PERCENT-COMPLETE", int(fields["percentcomplete"]))
    if kind != "task":
        todo.add(X_ACTIVITY, kind)
    _add_common(todo, fields, kind)
    _add_series(todo, fields, tz, tzid)
    calendar.add_component(todo)
    return bytes(calendar.to_ical())


def to_ical(record: PimRecord, *, uid: str | None = None) -> bytes:
    """An appointment or a task as iCalendar (see the two functions above)."""
    if record.kind is PimKind.APPOINTMENT:
        return appointment_to_ical(record, uid=uid)
    if record.kind is PimKind.TASK:
        return task_to_ical(record, uid=uid)
    raise IcalError(f"{record.kind} is not an iCalendar kind")


# --- reading --------------------------------------------------------------------------------


def parse_calendar(data: bytes | str) -> Calendar:
    """Parse a VCALENDAR, or raise :class:`IcalError` saying why not."""
    try:
        parsed = Calendar.from_ical(data)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise IcalError(f"not a readable iCalendar object: {exc}") from None
    if not isinstance(parsed, Calendar):
        raise IcalError("not a VCALENDAR")
    return parsed


def _when(component: Component, name: str) -> tuple[str | None, str | None]:
    """A time property as vocabulary text, and the TZID it was written in (None for UTC,
    floating or a date)."""
    prop = component.get(name)
    if prop is None:
        return None, None
    value = prop.dt
    if isinstance(value, datetime):
        tzid = prop.params.get("TZID")
        return utc_iso(value), (str(tzid) if tzid else None)
    if isinstance(value, date):
        return value.isoformat(), None
    return None, None  # a duration or period where a time was expected


def _dates(component: Component, name: str) -> list[str] | None:
    found: list[str] = []
    for prop in _as_list(component.get(name)):
        for item in getattr(prop, "dts", ()):
            if isinstance(item.dt, date):
                found.append(when_iso(item.dt))
    return sorted(set(found)) or None


def _end(component: Component, start: str | None, end_name: str) -> str | None:
    end, _ = _when(component, end_name)
    if end is not None or start is None:
        return end
    duration = component.get("DURATION")
    begin = parse_when(start)
    if duration is not None and isinstance(duration.dt, timedelta):
        return when_iso(begin + duration.dt)
    if not isinstance(begin, datetime):
        return (begin + timedelta(days=1)).isoformat()  # RFC 5545 3.6.1: a one-day event
    return start


def _parties(event: Component) -> dict[str, Any]:
    required: list[str] = []
    optional: list[str] = []
    statuses: dict[str, str] = {}
    for attendee in _as_list(event.get("ATTENDEE")):
        email = _email(attendee)
        if not email:
            continue
        params = getattr(attendee, "params", {})
        role = str(params.get("ROLE", "REQ-PARTICIPANT")).upper()
        bucket = optional if role in ("OPT-PARTICIPANT", "NON-PARTICIPANT") else required
        if email not in required and email not in optional:
            bucket.append(email)
        status = str(params.get("PARTSTAT", "NEEDS-ACTION")).upper()
        if status != "NEEDS-ACTION":
            statuses[email] = status
    organizer = event.get("ORGANIZER")
    return {
        "organizer": _email(organizer) or None if organizer is not None else None,
        "requiredattendees": required or None,
        "optionalattendees": optional or None,
        "attendeestatus": statuses or None,
    }


def _common(component: Component, kind: str) -> dict[str, Any]:
    priority = component.get("PRIORITY")
    crm_id = _text(component, X_CRMID)
    return {
        "uid": _text(component, "UID"),
        "subject": _text(component, "SUMMARY"),
        "description": _text(component, "DESCRIPTION"),
        "prioritycode": _priority_from_ical(int(priority)) if priority is not None else None,
        "activityid": crm_id.lower() if crm_id else None,
        "trackincrm": (_text(component, X_TRACK) or "0").strip() == "1",
        **{key: text for key, prop in X_REGARDING if (text := _text(component, prop))},
        **_read_status(component, kind),
    }


def _series(component: Component) -> dict[str, Any]:
    rules = _as_list(component.get("RRULE"))
    if len(rules) > 1:
        raise IcalError("more than one RRULE in one item (RFC 5545 says SHOULD NOT)")
    return {
        "recurrence": rules[0].to_ical().decode() if rules else None,
        "exdates": _dates(component, "EXDATE"),
        "rdates": _dates(component, "RDATE"),
    }


def _event_fields(event: Component) -> dict[str, Any]:
    start, tzid = _when(event, "DTSTART")
    if start is None:
        raise IcalError("a VEVENT without DTSTART")
    allday = len(start) == 10
    end = _end(event, start, "DTEND")
    tzid = None if allday else tzid or _when(event, "DTEND")[1] or _text(event, X_TZID)
    return {
        **_common(event, "appointment"),
        "location": _text(event, "LOCATION"),
        "scheduledstart": start,
        "scheduledend": end,
        "isalldayevent": allday,
        "tzid": tzid,
        **_parties(event),
    }


def _override(event: Component) -> dict[str, Any]:
    recurrence_id, _ = _when(event, "RECURRENCE-ID")
    fields = _event_fields(event)
    return {"recurrenceid": recurrence_id, **{k: fields.get(k) for k in OVERRIDE_FIELDS}}


def appointment_from_calendar(calendar: Calendar) -> PimRecord:
    """The appointment of a VCALENDAR: its master VEVENT, the overridden instances folded
    into ``overrides``, ``method`` from the calendar (REQUEST for an invitation)."""
    events = list(calendar.walk("VEVENT"))
    if not events:
        raise IcalError("no VEVENT in the calendar object")
    masters = [e for e in events if e.get("RECURRENCE-ID") is None]
    master = masters[0] if masters else events[0]
    fields = {**_event_fields(master), **_series(master)}
    overrides = [
        _override(e) for e in events if e is not master and e.get("RECURRENCE-ID") is not None
    ]
    fields["overrides"] = sorted(overrides, key=lambda o: str(o["recurrenceid"])) or None
    method = _text(calendar, "METHOD")
    fields["method"] = method.upper() if method else None
    return PimRecord(PimKind.APPOINTMENT, fields)


def task_from_calendar(calendar: Calendar) -> PimRecord:
    todos = list(calendar.walk("VTODO"))
    if not todos:
        raise IcalError("no VTODO in the calendar object")
    todo = todos[0]
    kind = (_text(todo, X_ACTIVITY) or "task").lower()
    kind = kind if kind in TASK_TYPES else "task"
    start, start_tz = _when(todo, "DTSTART")
    due, due_tz = _when(todo, "DUE")
    completed, _ = _when(todo, "COMPLETED")
    percent = todo.get("PERCENT-COMPLETE")
    fields = {
        **_common(todo, kind),
        "activitytypecode": kind,
        "scheduledstart": start,
        "scheduledend": due,
        "tzid": start_tz or due_tz or _text(todo, X_TZID),
        "actualend": completed,
        "percentcomplete": int(percent) if percent is not None else None,
        **_series(todo),
    }
    return PimRecord(PimKind.TASK, fields)


def from_ical(data: bytes | str) -> PimRecord:
    """An appointment (VEVENT) or a task (VTODO) from iCalendar text."""
    calendar = parse_calendar(data)
    if calendar.walk("VEVENT"):
        return appointment_from_calendar(calendar)
    return task_from_calendar(calendar)


def meeting_request(data: bytes | str, user_email: str) -> PimRecord:
    """A received invitation (``METHOD:REQUEST``, the user among the attendees) as the
    appointment it stands for: one where the user is an attendee, not the organiser."""
    calendar = parse_calendar(data)
    method = (_text(calendar, "METHOD") or "").upper()
    if method != "REQUEST":
        raise IcalError(f"not a meeting request (METHOD is {method or 'missing'})")
    record = appointment_from_calendar(calendar)
    user = user_email.strip().lower()
    attendees = [
        *(record.fields.get("requiredattendees") or ()),
        *(record.fields.get("optionalattendees") or ()),
    ]
    if user not in attendees:
        raise IcalError(f"{user} is not an attendee of this meeting request")
    return record


# --- Dataverse's recurrence pattern ---------------------------------------------------------

#: RFC 5545 day codes in Dataverse's ``daysofweekmask`` bits (Sunday 1 … Saturday 64) and
#: ``firstdayofweek`` numbers (Sunday 0 … Saturday 6).
DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
WEEKDAYS_MASK = 0b0111110
PATTERN_DAILY, PATTERN_WEEKLY, PATTERN_MONTHLY, PATTERN_YEARLY = 0, 1, 2, 3
END_NONE, END_OCCURRENCES, END_DATE = 1, 2, 3
#: Dataverse's ``instance`` choice for an RRULE ordinal (5 is "Last").
INSTANCES = {1: 1, 2: 2, 3: 3, 4: 4, -1: 5}
_FREQS = {
    "DAILY": PATTERN_DAILY,
    "WEEKLY": PATTERN_WEEKLY,
    "MONTHLY": PATTERN_MONTHLY,
    "YEARLY": PATTERN_YEARLY,
}
_SUPPORTED = {
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
}
PATTERN_FIELDS = (
    "recurrencepatterntype",
    "interval",
    "daysofweekmask",
    "dayofmonth",
    "monthofyear",
    "instance",
    "isnthmonthly",
    "isnthyearly",
    "isweekdaypattern",
    "firstdayofweek",
    "patternstartdate",
    "patternendtype",
    "patternenddate",
    "occurrences",
)


def _day_mask(codes: Iterable[str]) -> int:
    mask = 0
    for code in codes:
        mask |= 1 << DAYS.index(code)
    return mask


def _mask_days(mask: int) -> list[str]:
    """Days of a mask in RFC 5545's week order (Monday first)."""
    order = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    return [d for d in order if mask & (1 << DAYS.index(d))]


def _split_byday(values: Sequence[str]) -> tuple[list[int | None], list[str]]:
    ordinals: list[int | None] = []
    days: list[str] = []
    for value in values:
        text = str(value).upper()
        code, number = text[-2:], text[:-2]
        if code not in DAYS:
            raise Unexpressible(f"unknown weekday {text!r}")
        ordinals.append(int(number) if number else None)
        days.append(code)
    return ordinals, days


def _ints(rule: Mapping[str, Any], key: str) -> list[int]:
    return [int(v) for v in rule.get(key, [])]


def rrule_to_pattern(rrule: str, start: date, tz: tzinfo | None = None) -> dict[str, Any]:
    """Dataverse's recurring-appointment pattern columns for an RRULE whose series starts
    on ``start`` (the local start: a datetime in ``tz``, or a date). Raises
    :class:`Unexpressible` with the reason when the pattern cannot hold the rule."""
    try:
        rule = vRecur.from_ical(rrule)
    except ValueError as exc:
        raise Unexpressible(f"unreadable RRULE: {exc}") from None
    extra = sorted(set(rule) - _SUPPORTED)
    if extra:
        raise Unexpressible(f"the CRM's recurrence has no {', '.join(extra)}")
    freq = str(_one(rule, "FREQ") or "")
    if freq not in _FREQS:
        raise Unexpressible(
            f"the CRM repeats daily, weekly, monthly or yearly, not {freq.lower() or 'never'}"
        )
    interval = int(_one(rule, "INTERVAL") or 1)
    if not 1 <= interval <= 1000:
        raise Unexpressible(f"the CRM's interval is 1 to 1000, not {interval}")
    day = start.date() if isinstance(start, datetime) else start
    pattern: dict[str, Any] = dict.fromkeys(PATTERN_FIELDS)
    pattern.update(
        recurrencepatterntype=_FREQS[freq],
        interval=interval,
        isnthmonthly=False,
        isnthyearly=False,
        isweekdaypattern=False,
        patternstartdate=day.isoformat(),
    )
    _shape(pattern, rule, freq, day)
    _range(pattern, rule, tz)
    if _one(rule, "WKST") is not None:
        pattern["firstdayofweek"] = DAYS.index(str(_one(rule, "WKST")))
    return pattern


def _one(rule: Mapping[str, Any], key: str) -> Any:
    values = rule.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise Unexpressible(f"the CRM's recurrence takes one {key}, not {len(values)}")
    return values[0]


def _shape(pattern: dict[str, Any], rule: Mapping[str, Any], freq: str, day: date) -> None:
    ordinals, days = _split_byday(rule.get("BYDAY", []))
    month_days = _ints(rule, "BYMONTHDAY")
    months = _ints(rule, "BYMONTH")
    setpos = _ints(rule, "BYSETPOS")
    if freq == "DAILY":
        if month_days or months or setpos or any(o is not None for o in ordinals):
            raise Unexpressible(
                "a daily recurrence in the CRM takes no month, month day or position"
            )
        if days:
            if _day_mask(days) != WEEKDAYS_MASK or pattern["interval"] != 1:
                raise Unexpressible(
                    "a daily recurrence in the CRM is every N days or every weekday"
                )
            pattern.update(
                recurrencepatterntype=PATTERN_WEEKLY,
                isweekdaypattern=True,
                daysofweekmask=WEEKDAYS_MASK,
            )
        return
    if freq == "WEEKLY":
        if month_days or months or setpos or any(o is not None for o in ordinals):
            raise Unexpressible("a weekly recurrence in the CRM takes only weekdays")
        pattern["daysofweekmask"] = _day_mask(days) if days else 1 << ((day.weekday() + 1) % 7)
        return
    if freq == "YEARLY":
        if len(months) > 1:
            raise Unexpressible("a yearly recurrence in the CRM is in one month")
        pattern["monthofyear"] = months[0] if months else day.month
    elif months:
        raise Unexpressible("a monthly recurrence in the CRM takes no month")
    _day_in_month(pattern, freq, ordinals, days, month_days, setpos, day)


def _day_in_month(
    pattern: dict[str, Any],
    freq: str,
    ordinals: list[int | None],
    days: list[str],
    month_days: list[int],
    setpos: list[int],
    day: date,
) -> None:
    """The day a monthly or yearly pattern falls on: a day of the month, or the Nth (last)
    of a set of weekdays."""
    if days and month_days:
        raise Unexpressible("the CRM's recurrence takes a day of the month or a weekday, not both")
    if not days:
        if setpos:
            raise Unexpressible("BYSETPOS without weekdays has no CRM equivalent")
        if len(month_days) > 1 or (month_days and not 1 <= month_days[0] <= 31):
            raise Unexpressible(
                "the CRM's recurrence takes one day of the month, 1 to 31 (not the last)"
            )
        pattern["dayofmonth"] = month_days[0] if month_days else day.day
        return
    given = set(ordinals)
    if len(given) != 1:
        raise Unexpressible("the CRM's recurrence takes one position for all its weekdays")
    ordinal = given.pop()
    if ordinal is not None and setpos:
        raise Unexpressible("a position in BYDAY and BYSETPOS together has no CRM equivalent")
    if ordinal is not None and len(days) > 1:
        raise Unexpressible("the CRM's recurrence takes one position for all its weekdays")
    position = ordinal if ordinal is not None else _one({"BYSETPOS": setpos}, "BYSETPOS")
    if position not in INSTANCES:
        raise Unexpressible(
            "the CRM's recurrence falls on the first to fourth or the last weekday of a month"
        )
    nth = "isnthmonthly" if freq == "MONTHLY" else "isnthyearly"
    pattern.update({nth: True, "instance": INSTANCES[position], "daysofweekmask": _day_mask(days)})


def _range(pattern: dict[str, Any], rule: Mapping[str, Any], tz: tzinfo | None) -> None:
    count, until = _one(rule, "COUNT"), _one(rule, "UNTIL")
    if count is not None:
        if not 1 <= int(count) <= 999:
            raise Unexpressible(f"the CRM's series has 1 to 999 occurrences, not {count}")
        pattern.update(patternendtype=END_OCCURRENCES, occurrences=int(count))
    elif until is not None:
        if isinstance(until, datetime):
            local = until.replace(tzinfo=until.tzinfo or UTC).astimezone(tz or UTC)
            end = local.date()
        else:
            end = until
        pattern.update(patternendtype=END_DATE, patternenddate=end.isoformat())
    else:
        pattern["patternendtype"] = END_NONE


def pattern_to_rrule(pattern: Mapping[str, Any], start: date) -> str:
    """The RRULE (canonical: FREQ, INTERVAL, COUNT/UNTIL, BYDAY, BYMONTHDAY, BYMONTH,
    BYSETPOS, WKST) for Dataverse's pattern columns; ``start`` is the series' local start
    (an aware datetime, or a date for all-day series), which UNTIL is built from."""
    kind = int(pattern.get("recurrencepatterntype") or 0)
    mask = int(pattern.get("daysofweekmask") or 0)
    parts: list[str] = []
    if kind == PATTERN_WEEKLY and pattern.get("isweekdaypattern"):
        parts.append("FREQ=DAILY")
    else:
        parts.append("FREQ=" + {v: k for k, v in _FREQS.items()}[kind])
    interval = int(pattern.get("interval") or 1)
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    parts.extend(_rrule_range(pattern, start))
    if kind in (PATTERN_WEEKLY, PATTERN_DAILY) and mask:
        parts.append("BYDAY=" + ",".join(_mask_days(mask)))
    elif kind in (PATTERN_MONTHLY, PATTERN_YEARLY):
        parts.extend(_rrule_month_day(pattern, kind, mask))
    if pattern.get("firstdayofweek") is not None:
        parts.append("WKST=" + DAYS[int(pattern["firstdayofweek"])])
    return ";".join(parts)


def _rrule_range(pattern: Mapping[str, Any], start: date) -> list[str]:
    end_type = int(pattern.get("patternendtype") or END_NONE)
    if end_type == END_OCCURRENCES and pattern.get("occurrences"):
        return [f"COUNT={int(pattern['occurrences'])}"]
    if end_type == END_DATE and pattern.get("patternenddate"):
        end = date.fromisoformat(str(pattern["patternenddate"])[:10])
        if isinstance(start, datetime):
            last = datetime.combine(end, start.timetz())
            return ["UNTIL=" + last.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")]
        return ["UNTIL=" + end.strftime("%Y%m%d")]
    return []


def _rrule_month_day(pattern: Mapping[str, Any], kind: int, mask: int) -> list[str]:
    nth = pattern.get("isnthmonthly") if kind == PATTERN_MONTHLY else pattern.get("isnthyearly")
    parts: list[str] = []
    if nth:
        position = {v: k for k, v in INSTANCES.items()}[int(pattern.get("instance") or 1)]
        days = _mask_days(mask)
        if len(days) == 1:
            parts.append(f"BYDAY={position}{days[0]}")
        else:
            parts.append("BYDAY=" + ",".join(days))
    elif pattern.get("dayofmonth"):
        parts.append(f"BYMONTHDAY={int(pattern['dayofmonth'])}")
    if kind == PATTERN_YEARLY and pattern.get("monthofyear"):
        parts.append(f"BYMONTH={int(pattern['monthofyear'])}")
    if nth and len(_mask_days(mask)) > 1:
        position = {v: k for k, v in INSTANCES.items()}[int(pattern.get("instance") or 1)]
        parts.append(f"BYSETPOS={position}")
    return parts


def crm_recurrence_problem(fields: Mapping[str, Any]) -> str | None:
    """Why the CRM cannot hold this appointment's recurrence (the item then stays in the
    mailbox only, with this reason shown), or None when it can."""
    rrule = fields.get("recurrence")
    if not rrule:
        return None
    if fields.get("rdates"):
        return "the CRM's recurrence has no extra dates (RDATE)"
    start_text = fields.get("scheduledstart")
    if not start_text:
        return "a recurring appointment needs a start"
    tz = zone(fields.get("tzid"))
    start = _local(str(start_text), tz)
    try:
        rrule_to_pattern(str(rrule), start, tz)
    except Unexpressible as exc:
        return exc.reason
    return None
