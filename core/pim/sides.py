"""The two sides the PIM engine synchronises, as the engine sees them.

Both sides speak one vocabulary: a :class:`PimRecord` holds the CRM's logical column names
(``firstname``, ``emailaddress1``, ``scheduledstart``…) with JSON-able values, so a field map
is one table and a conflict is a per-field comparison. Each side turns its own format (a
Dataverse row, a vCard, a VEVENT/VTODO, a Graph or EWS item) into that vocabulary and back.

Values: text as ``str``; date-times as ISO 8601 strings in UTC (``2026-12-07T09:30:00Z``);
all-day dates as ``YYYY-MM-DD``; booleans and integers as such; party lists (attendees) as
lists of lower-case e-mail addresses; a recurrence as an RFC 5545 RRULE string (without the
``RRULE:`` prefix) and its exceptions as lists of ISO start times; ``None`` for empty.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class PimKind(enum.StrEnum):
    CONTACT = "contact"
    APPOINTMENT = "appointment"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class PimRecord:
    """One contact, appointment or task in the common vocabulary (see the module docstring)."""

    kind: PimKind
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SideChange:
    """A change one side reports since a sync token: ``record`` is ``None`` for a deletion.
    ``key`` is the side's own identity (a CRM id, a DAV href, a Graph/EWS item id);
    ``version`` its change marker (a version number, an ETag, a change key)."""

    key: str
    record: PimRecord | None
    version: str = ""


@dataclass(frozen=True, slots=True)
class ChangePage:
    """Changes since ``token`` and the token to ask with next time. ``full`` says the side
    could not answer incrementally (token expired or first sync) and listed everything:
    records it did not list are gone only when ``full`` is true."""

    changes: Sequence[SideChange]
    token: str
    full: bool = False


class SideError(Exception):
    """A side refused or failed an operation; ``retryable`` says whether a later pass may
    succeed (network, throttling) or the item needs the user (validation, permissions)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class VersionConflict(SideError):
    """The item changed on the side since ``version`` was read (HTTP 412 on a DAV PUT with
    If-Match, a stale change key): the engine reads it again and merges."""


class PimSide(Protocol):
    """One side of one kind: the CRM's contacts, the CardDAV address book, a CalDAV
    calendar, Graph's events, EWS tasks…"""

    kind: PimKind

    def changes(self, token: str | None) -> ChangePage: ...

    def get(self, key: str) -> SideChange | None: ...

    def put(self, key: str | None, record: PimRecord, version: str | None) -> tuple[str, str]:
        """Create (``key`` None) or update; returns ``(key, version)``. An update with a
        stale ``version`` raises :class:`VersionConflict`."""
        ...

    def delete(self, key: str, version: str | None) -> None: ...


# -- Additions for the engine (issue 20): additive, nothing above changes. -------------------

#: Engine fields a *mailbox* side puts in ``PimRecord.fields`` next to the mapped columns and
#: writes back on ``put``/``create_at`` when present (never merged as data):
#: ``CRM_ID_FIELDS[kind]`` — the CRM record's id the item carries in its own data (vCard and
#: iCalendar ``X-TRACKBOX-CRMID``; a Graph/EWS extended property), ``None`` when none;
#: ``TRACK_FIELD`` — ``True`` when the user marked the item "Track in CRM" (vCard and
#: iCalendar ``X-TRACKBOX-TRACK:1``; the desktop sets it).
CRM_ID_FIELDS: dict[PimKind, str] = {
    PimKind.CONTACT: "contactid",
    PimKind.APPOINTMENT: "activityid",
    PimKind.TASK: "activityid",
}
TRACK_FIELD = "trackincrm"


@runtime_checkable
class KeyedCreate(Protocol):
    """Optional on a side: the engine names a new item's key before creating it, writes that
    key to its pairing state, then creates; a create repeated after a crash lands on the same
    item instead of making a second one (exactly once). A CRM side creates by ``PATCH`` on a
    chosen id (Dataverse's upsert); a DAV side by ``PUT`` on a chosen href."""

    def new_key(self) -> str:
        """A fresh key this side will accept in ``create_at``."""
        ...

    def create_at(self, key: str, record: PimRecord) -> str:
        """Create the item at ``key`` — or replace what an earlier, interrupted attempt put
        there — and return its version."""
        ...


@runtime_checkable
class FindsByEmail(Protocol):
    """Optional on a side of contacts: the item in this side's scope whose primary e-mail
    address is ``address`` (case-insensitive), so that a contact deleted and recreated is
    paired again instead of duplicated."""

    def find_by_email(self, address: str) -> SideChange | None: ...
