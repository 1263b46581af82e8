"""Which fields the PIM engine synchronises, and in which direction (issue 20).

As the CRM for Outlook offered it: each mapped field is synchronised both ways, only from the
CRM to the mailbox, only from the mailbox to the CRM, or not at all. The administrator's
defaults come first (:data:`DEFAULT_MAPS`, or a map the organisation stores); a user may
override a field's direction unless the administrator locked it. Field names are the CRM's
logical column names (``core.pim.sides``), so one map serves every mailbox backend.

For contacts, ``parentcustomerid`` carries the company *name* (the account's name): the CRM
side resolves a name to an account when it writes, which is why it is CRM → mailbox by default
(a company typed in an address book would otherwise have to match an account exactly).

For appointments and tasks, ``regardingobjectid`` (``entity:id``, set by Set Regarding in the
client) goes from the mailbox to the CRM: the CRM sides bind it, and a mailbox side that cannot
keep it (iCalendar has no such property yet) simply never changes it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from core.pim.sides import PimKind


class Direction(enum.StrEnum):
    BOTH = "both"
    TO_MAILBOX = "crm_to_mailbox"
    TO_CRM = "mailbox_to_crm"
    NONE = "none"

    @property
    def to_mailbox(self) -> bool:
        return self in (Direction.BOTH, Direction.TO_MAILBOX)

    @property
    def to_crm(self) -> bool:
        return self in (Direction.BOTH, Direction.TO_CRM)


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One mapped field: its CRM column, label for the Options page, direction, and whether
    the administrator locked the direction (users see it but cannot change it)."""

    name: str
    label: str
    direction: Direction = Direction.BOTH
    locked: bool = False


class FieldMapError(ValueError):
    """An override names an unknown field or direction, or changes a locked field."""


@dataclass(frozen=True, slots=True)
class FieldMap:
    """The fields of one kind, in display order."""

    kind: PimKind
    rules: tuple[FieldRule, ...]

    def __post_init__(self) -> None:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise FieldMapError(f"duplicate field in the {self.kind} map")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)

    def rule(self, name: str) -> FieldRule:
        for r in self.rules:
            if r.name == name:
                return r
        raise FieldMapError(f"{name!r} is not a mapped {self.kind} field")

    def direction(self, name: str) -> Direction:
        return self.rule(name).direction

    def to_mailbox(self) -> tuple[str, ...]:
        """Fields the mailbox side receives from the CRM."""
        return tuple(r.name for r in self.rules if r.direction.to_mailbox)

    def to_crm(self) -> tuple[str, ...]:
        """Fields the CRM side receives from the mailbox."""
        return tuple(r.name for r in self.rules if r.direction.to_crm)

    def synced(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules if r.direction is not Direction.NONE)

    def with_directions(
        self, overrides: Mapping[str, Direction | str], *, admin: bool = False
    ) -> FieldMap:
        """This map with some directions changed. ``admin=True`` may change locked fields
        (the organisation's defaults); a user's override of a locked field is refused."""
        rules = {r.name: r for r in self.rules}
        for name, value in overrides.items():
            current = rules.get(name)
            if current is None:
                raise FieldMapError(f"{name!r} is not a mapped {self.kind} field")
            try:
                direction = Direction(value)
            except ValueError:
                raise FieldMapError(f"{value!r} is not a direction for {name!r}") from None
            if current.locked and not admin and direction is not current.direction:
                raise FieldMapError(f"{name!r} is set by the administrator")
            rules[name] = replace(current, direction=direction)
        return FieldMap(self.kind, tuple(rules[r.name] for r in self.rules))

    def locking(self, names: Iterable[str]) -> FieldMap:
        """This map with ``names`` locked (administrator)."""
        wanted = set(names)
        unknown = wanted - set(self.names)
        if unknown:
            raise FieldMapError(f"not mapped {self.kind} fields: {', '.join(sorted(unknown))}")
        return FieldMap(
            self.kind,
            tuple(replace(r, locked=True) if r.name in wanted else r for r in self.rules),
        )

    def user_view(self) -> list[tuple[str, str, Direction, bool]]:
        """What Options shows: (field, label, direction, locked) in display order."""
        return [(r.name, r.label, r.direction, r.locked) for r in self.rules]


def _r(name: str, label: str, direction: Direction = Direction.BOTH) -> FieldRule:
    return FieldRule(name, label, direction)


CONTACT_MAP = FieldMap(
    PimKind.CONTACT,
    (
        _r("firstname", "First name"),
        _r("lastname", "Last name"),
        _r("emailaddress1", "E-mail"),
        _r("emailaddress2", "E-mail 2"),
        _r("emailaddress3", "E-mail 3"),
        _r("telephone1", "Business phone"),
        _r("telephone2", "Home phone"),
        _r("mobilephone", "Mobile phone"),
        _r("fax", "Fax"),
        _r("jobtitle", "Job title"),
        _r("parentcustomerid", "Company", Direction.TO_MAILBOX),
        _r("address1_line1", "Street"),
        _r("address1_city", "City"),
        _r("address1_stateorprovince", "State/Province"),
        _r("address1_postalcode", "Postal code"),
        _r("address1_country", "Country"),
        _r("birthdate", "Birthday"),
        _r("description", "Notes"),
    ),
)

#: Appointments and tasks: the columns the CRM sides of the activities speak
#: (``core.pim.crm_activities``); the engine needs only the names and directions.
APPOINTMENT_MAP = FieldMap(
    PimKind.APPOINTMENT,
    (
        _r("subject", "Subject"),
        _r("location", "Location"),
        _r("scheduledstart", "Start"),
        _r("scheduledend", "End"),
        _r("isalldayevent", "All day"),
        _r("description", "Description"),
        _r("requiredattendees", "Required attendees"),
        _r("optionalattendees", "Optional attendees"),
        _r("organizer", "Organizer", Direction.TO_MAILBOX),
        _r("recurrence", "Recurrence"),
        _r("exdates", "Deleted occurrences"),
        _r("rdates", "Added occurrences"),
        _r("overrides", "Changed occurrences"),
        _r("statecode", "Status", Direction.TO_MAILBOX),
        _r("statuscode", "Status reason", Direction.TO_MAILBOX),
        _r("regardingobjectid", "Regarding", Direction.TO_CRM),
    ),
)

TASK_MAP = FieldMap(
    PimKind.TASK,
    (
        _r("subject", "Subject"),
        _r("description", "Description"),
        _r("scheduledstart", "Start"),
        _r("scheduledend", "Due"),
        _r("prioritycode", "Priority"),
        _r("percentcomplete", "% complete"),
        _r("statecode", "Status"),
        _r("statuscode", "Status reason"),
        _r("recurrence", "Recurrence"),
        _r("regardingobjectid", "Regarding", Direction.TO_CRM),
    ),
)

DEFAULT_MAPS: dict[PimKind, FieldMap] = {
    PimKind.CONTACT: CONTACT_MAP,
    PimKind.APPOINTMENT: APPOINTMENT_MAP,
    PimKind.TASK: TASK_MAP,
}


def effective_map(
    kind: PimKind,
    *,
    admin: Mapping[str, Direction | str] | None = None,
    locked: Iterable[str] = (),
    user: Mapping[str, Direction | str] | None = None,
) -> FieldMap:
    """The map a user's sync runs with: the built-in defaults, the administrator's directions
    and locks, then the user's overrides (refused on locked fields)."""
    base = DEFAULT_MAPS[kind].with_directions(admin or {}, admin=True).locking(locked)
    return base.with_directions(user or {})


__all__ = [
    "APPOINTMENT_MAP",
    "CONTACT_MAP",
    "DEFAULT_MAPS",
    "TASK_MAP",
    "Direction",
    "FieldMap",
    "FieldMapError",
    "FieldRule",
    "effective_map",
]
