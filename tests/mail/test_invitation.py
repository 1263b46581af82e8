"""Invitations in one line (core.mail.invitation): a request, a cancellation, an all-day event,
and broken or hostile calendars that say "could not be read" without raising."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.mail.invitation import MAX_ICS_BYTES, is_calendar, read_invitation

CET = timezone(timedelta(hours=1))


def ics(method: str = "REQUEST", *, start: str = "20260303T130000Z", extra: str = "") -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n"
        f"METHOD:{method}\r\nBEGIN:VEVENT\r\nUID:1@x.example\r\n"
        f"DTSTART:{start}\r\nDTEND:20260303T140000Z\r\n"
        "SUMMARY:Quarterly review\r\nLOCATION:Room 4\\, Building B\r\n"
        "ORGANIZER;CN=Jane Doe:mailto:jane@fabrikam.example\r\n"
        f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def test_a_request_says_what_when_where_and_who() -> None:
    inv = read_invitation(ics())
    assert inv.error is None and inv.method == "REQUEST"
    assert inv.describe(CET) == (
        "Meeting request: Quarterly review · Tue 03 Mar 2026 14:00–15:00"
        " · Room 4, Building B · organiser Jane Doe"
    )
    assert inv.describe(UTC).split(" · ")[1] == "Tue 03 Mar 2026 13:00–14:00"


def test_a_cancellation_and_a_reply_say_so() -> None:
    assert read_invitation(ics("CANCEL")).describe(CET).startswith("Meeting cancelled: ")
    assert read_invitation(ics("REPLY")).describe(CET).startswith("Meeting reply: ")


def test_a_time_zone_by_tzid_is_converted() -> None:
    inv = read_invitation(
        ics(start="TZID=Europe/Berlin:20260303T150000").replace(b"DTSTART:", b"DTSTART;")
    )
    assert inv.describe(UTC).split(" · ")[1] == "Tue 03 Mar 2026 14:00–14:00"


def test_an_all_day_event() -> None:
    data = ics(start="20260303").replace(b"DTSTART:", b"DTSTART;VALUE=DATE:")
    data = data.replace(b"DTEND:20260303T140000Z", b"DTEND;VALUE=DATE:20260304")
    assert "Tue 03 Mar 2026 (all day)" in read_invitation(data).describe(CET)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a calendar at all",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n",
        b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        b"BEGIN:VCALENDAR\r\n" + b"BEGIN:VEVENT\r\n" * 5000,
        b"\xff\xfe\x00garbage\r\n:::;;;",
        b"X" * (MAX_ICS_BYTES + 1),
    ],
)
def test_a_broken_calendar_could_not_be_read(data: bytes) -> None:
    inv = read_invitation(data)
    if inv.error is None:  # the parser made sense of it: still one bounded line
        assert len(inv.describe()) < 2000
    else:
        assert "could not be read" in inv.describe()


def test_hostile_fields_are_one_short_line() -> None:
    inv = read_invitation(
        ics().replace(b"SUMMARY:Quarterly review", b"SUMMARY:" + b"A\\nB\x1b[31m" * 500)
    )
    text = inv.describe(CET)
    assert "\n" not in text and "\x1b" not in text and len(text) < 600


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_give_an_answer(data: bytes) -> None:
    read_invitation(b"BEGIN:VCALENDAR\r\n" + data).describe()


def test_calendars_are_recognised_by_type_or_name() -> None:
    assert is_calendar("invite.ICS", "application/octet-stream")
    assert is_calendar("attachment", "text/calendar")
    assert not is_calendar("notes.txt", "text/plain")
