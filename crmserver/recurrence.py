"""The occurrences of a recurring appointment master's pattern (Dataverse's recurrence
columns), as UTC start times.

Pure: no storage. Patterns: daily (every ``interval`` days, or every weekday), weekly (the days
of ``daysofweekmask`` every ``interval`` weeks, weeks starting on ``firstdayofweek``), monthly
and yearly (day ``dayofmonth``, or the ``instance``-th of the days in ``daysofweekmask`` when
``isnthmonthly``/``isnthyearly``). Ends: none, after ``occurrences``, or on ``patternenddate``.
Times are the master's ``starttime`` time of day in UTC (the emulator keeps no time zones).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

#: daysofweekmask bits, Sunday first (Sunday 1, Monday 2 … Saturday 64).
SUNDAY_FIRST_BITS = {6: 1, 0: 2, 1: 4, 2: 8, 3: 16, 4: 32, 5: 64}  # Python weekday → bit
PATTERN_FIELDS = (
    "recurrencepatterntype",
    "interval",
    "daysofweekmask",
    "dayofmonth",
    "monthofyear",
    "instance",
    "firstdayofweek",
    "isweekdaypattern",
    "isnthmonthly",
    "isnthyearly",
    "patternstartdate",
    "patternenddate",
    "patternendtype",
    "occurrences",
    "starttime",
    "endtime",
    "duration",
)


class PatternError(ValueError):
    """A pattern the emulator cannot expand (answered with 400)."""


def parse_utc(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Pattern:
    kind: int
    interval: int
    mask: int
    day: int
    month: int
    nth: int
    first_weekday: int
    weekdays_only: bool
    by_nth: bool
    start: date
    end: date | None
    count: int | None
    at: time

    @classmethod
    def of(cls, row: dict[str, Any]) -> Pattern:
        """The pattern of a master row (already normalised: starttime, patternstartdate)."""
        if not row.get("starttime") or not row.get("patternstartdate"):
            raise PatternError("A recurring appointment needs starttime and patternstartdate.")
        start_at = parse_utc(row["starttime"])
        first = parse_utc(row["patternstartdate"]).date()
        kind = int(row.get("recurrencepatterntype") or 0)
        interval = int(row.get("interval") or 1)
        if interval < 1:
            raise PatternError("The recurrence interval must be at least 1.")
        end_type = int(row.get("patternendtype") or 1)
        count = int(row["occurrences"]) if end_type == 2 and row.get("occurrences") else None
        if end_type == 2 and not count:
            raise PatternError("patternendtype 2 (occurrences) needs 'occurrences'.")
        end = parse_utc(row["patternenddate"]).date() if end_type == 3 else None
        if end_type == 3 and not row.get("patternenddate"):
            raise PatternError("patternendtype 3 (end by date) needs 'patternenddate'.")
        return cls(
            kind,
            interval,
            int(row.get("daysofweekmask") or SUNDAY_FIRST_BITS[first.weekday()]),
            int(row.get("dayofmonth") or first.day),
            int(row.get("monthofyear") or first.month),
            int(row.get("instance") or 1),
            int(row.get("firstdayofweek") or 0),
            bool(row.get("isweekdaypattern")),
            bool(row.get("isnthmonthly") if kind == 2 else row.get("isnthyearly")),
            first,
            end,
            count,
            start_at.time(),
        )


def occurrences(pattern: Pattern, horizon: date, limit: int) -> list[datetime]:
    """Start times (UTC) from the pattern start up to its end, ``horizon`` and ``limit``."""
    out: list[datetime] = []
    for day in _days(pattern):
        if day < pattern.start:
            continue
        if (pattern.end and day > pattern.end) or day > horizon:
            break
        if (pattern.count is not None and len(out) >= pattern.count) or len(out) >= limit:
            break
        out.append(datetime.combine(day, pattern.at, tzinfo=UTC))
    return out


def _days(p: Pattern) -> Iterator[date]:
    if p.kind == 0:
        return _daily(p)
    if p.kind == 1:
        return _weekly(p)
    if p.kind in (2, 3):
        return _monthly(p)
    raise PatternError(f"{p.kind} is not a valid recurrencepatterntype.")


def _daily(p: Pattern) -> Iterator[date]:
    day = p.start
    while True:
        if not p.weekdays_only or day.weekday() < 5:
            yield day
        day += timedelta(days=1 if p.weekdays_only else p.interval)


def _weekly(p: Pattern) -> Iterator[date]:
    sunday_index = (p.start.weekday() + 1) % 7
    week = p.start - timedelta(days=(sunday_index - p.first_weekday) % 7)
    while True:
        for offset in range(7):
            day = week + timedelta(days=offset)
            if p.mask & SUNDAY_FIRST_BITS[day.weekday()]:
                yield day
        week += timedelta(weeks=p.interval)


def _monthly(p: Pattern) -> Iterator[date]:
    step = p.interval if p.kind == 2 else 12 * p.interval
    year, month = p.start.year, p.start.month if p.kind == 2 else p.month
    for _ in range(100_000):
        yield from _day_in_month(p, year, month)
        month += step
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


def _day_in_month(p: Pattern, year: int, month: int) -> Iterator[date]:
    last = calendar.monthrange(year, month)[1]
    if not p.by_nth:
        yield date(year, month, min(p.day, last))
        return
    matching = [
        date(year, month, d)
        for d in range(1, last + 1)
        if p.mask & SUNDAY_FIRST_BITS[date(year, month, d).weekday()]
    ]
    if matching:
        yield matching[-1] if p.nth == 5 else matching[min(p.nth, len(matching)) - 1]
