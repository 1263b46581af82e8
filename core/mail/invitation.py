"""A meeting invitation (``text/calendar``, ``.ics``) in one line for the reading pane:
"Meeting request: Quarterly review · Tue 3 Mar 2026 14:00–15:00 · Room 4 · Jane Doe".

The calendar is the sender's: it may be broken, huge or hostile. :func:`read_invitation` never
raises; what it cannot read is an :class:`Invitation` with ``error`` set, shown as "invitation
could not be read". Parsed with ``icalendar``; only the first event is summarised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo

__all__ = ["MAX_ICS_BYTES", "Invitation", "is_calendar", "read_invitation"]

MAX_ICS_BYTES = 1 << 20  # an invitation is a few KB; a larger "calendar" is not summarised
_FIELD = 200  # characters of a summary, location or name shown

_METHODS = {
    "REQUEST": "Meeting request",
    "CANCEL": "Meeting cancelled",
    "REPLY": "Meeting reply",
    "COUNTER": "Meeting counter-proposal",
    "PUBLISH": "Meeting",
    "ADD": "Meeting update",
    "REFRESH": "Meeting refresh request",
    "DECLINECOUNTER": "Counter-proposal declined",
}


@dataclass(frozen=True, slots=True)
class Invitation:
    """What the pane says of an invitation; ``error`` when it could not be read."""

    method: str = ""
    summary: str = ""
    start: datetime | date | None = None
    end: datetime | date | None = None
    location: str = ""
    organiser: str = ""
    error: str | None = None

    def describe(self, tz: tzinfo | None = None) -> str:
        """One line, times in ``tz`` (the local zone when None)."""
        if self.error is not None:
            return f"The invitation could not be read ({self.error})."
        parts = [f"{_METHODS.get(self.method, 'Meeting')}: {self.summary or '(no title)'}"]
        when = _when(self.start, self.end, tz)
        if when:
            parts.append(when)
        if self.location:
            parts.append(self.location)
        if self.organiser:
            parts.append(f"organiser {self.organiser}")
        return " · ".join(parts)


def is_calendar(filename: str, content_type: str) -> bool:
    return content_type.lower() == "text/calendar" or filename.lower().endswith(".ics")


def read_invitation(data: bytes) -> Invitation:
    """The first event of calendar ``data``; never raises on bad input."""
    if len(data) > MAX_ICS_BYTES:
        return Invitation(error="too large")
    try:
        return _read(data)
    except Exception as exc:  # the sender's bytes: anything the parser raises is "unreadable"
        return Invitation(error=_short(type(exc).__name__))


def _read(data: bytes) -> Invitation:
    import icalendar  # imported when an invitation is shown, not at start-up

    cal = icalendar.Calendar.from_ical(data)
    if isinstance(cal, list):
        cal = cal[0]
    events = list(cal.walk("VEVENT"))[:1]
    if not events:
        return Invitation(error="no event in it")
    event = events[0]
    start = _decoded(event, "DTSTART")
    end = _decoded(event, "DTEND")
    organiser = event.get("ORGANIZER")
    name = ""
    if organiser is not None:
        params = getattr(organiser, "params", {})
        name = str(params.get("CN", "") or str(organiser).removeprefix("mailto:").strip())
    return Invitation(
        method=_short(str(cal.get("METHOD", "") or "")).upper(),
        summary=_short(str(event.get("SUMMARY", "") or "")),
        start=start,
        end=end,
        location=_short(str(event.get("LOCATION", "") or "")),
        organiser=_short(name.removeprefix("MAILTO:")),
    )


def _decoded(event: object, key: str) -> datetime | date | None:
    try:
        value = event.decoded(key)  # type: ignore[attr-defined]
    except Exception:
        return None
    return value if isinstance(value, date) else None


def _short(text: str) -> str:
    """One line of at most ``_FIELD`` characters, without control characters."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= _FIELD else text[: _FIELD - 1] + "…"


def _local(value: datetime | date, tz: tzinfo | None) -> datetime | date:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(tz)
    return value  # floating time or an all-day date: as written


def _when(start: datetime | date | None, end: datetime | date | None, tz: tzinfo | None) -> str:
    if start is None:
        return ""
    start = _local(start, tz)
    if not isinstance(start, datetime):
        text = start.strftime("%a %d %b %Y") + " (all day)"
        return text
    text = start.strftime("%a %d %b %Y %H:%M")
    if end is not None:
        end = _local(end, tz)
        if not isinstance(end, datetime):
            end = datetime.combine(end, time())
        if end.date() == start.date():
            text += "–" + end.strftime("%H:%M")
        else:
            text += " – " + end.strftime("%a %d %b %Y %H:%M")
    return text
