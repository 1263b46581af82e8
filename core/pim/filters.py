"""Which CRM records of a kind reach the mailbox: the user's filter (issue 20).

Defaults as the CRM for Outlook had them ("local data rules"): contacts — *my active
contacts* (active, owned by me); appointments — where I am the organiser or a required or
optional attendee, open or scheduled; tasks — open tasks I own (the activity sides extend
the same filter to faxes and letters). Editable in Options: the owner (me, anyone, a given
user), the status (active, any, inactive), a saved CRM view (``savedquery`` system view or
``userquery`` personal view) instead, and an extra OData clause that narrows further.

How it reaches the CRM: :meth:`PimFilter.odata` is the ``$filter`` of a normal query. A
change-tracking read cannot carry ``$filter`` (Dataverse refuses it), so the CRM side reads
the delta unfiltered and decides membership per changed row — locally with
:meth:`PimFilter.matches` when the filter is only owner and status, else by asking the CRM
which of the changed ids the filter (or the view, ``savedQuery=<id>``) returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.pim.sides import PimKind

#: statecode values that count as "active" per kind (appointments: Open and Scheduled).
ACTIVE_STATES: dict[PimKind, tuple[int, ...]] = {
    PimKind.CONTACT: (0,),
    PimKind.APPOINTMENT: (0, 3),
    PimKind.TASK: (0,),
}
INACTIVE_STATES: dict[PimKind, tuple[int, ...]] = {
    PimKind.CONTACT: (1,),
    PimKind.APPOINTMENT: (1, 2),
    PimKind.TASK: (1, 2),
}
#: Activity party masks: 5 required attendee, 6 optional attendee, 7 organiser.
ATTENDEE_MASKS = (5, 6, 7)
OWNERS = ("me", "any")
STATUSES = ("active", "any", "inactive")


class FilterError(ValueError):
    """A filter setting that is not one of the choices (the message names it)."""


@dataclass(frozen=True, slots=True)
class SavedView:
    """A CRM view used as the filter: ``entity`` is ``savedquery`` or ``userquery``."""

    entity: str
    id: str
    name: str = ""

    def __post_init__(self) -> None:
        if self.entity not in ("savedquery", "userquery"):
            raise FilterError(f"a view is a savedquery or a userquery, not {self.entity!r}")

    @property
    def parameter(self) -> str:
        return "savedQuery" if self.entity == "savedquery" else "userQuery"


@dataclass(frozen=True, slots=True)
class PimFilter:
    """One kind's filter. ``owner``: ``"me"``, ``"any"`` or a systemuser id; ``status``:
    ``"active"``, ``"any"`` or ``"inactive"``; ``attendee`` (appointments): I am organiser or
    attendee rather than owner; ``view``: a saved view that replaces owner/status/attendee;
    ``extra``: an OData clause ANDed to the rest (narrowing)."""

    kind: PimKind
    owner: str = "me"
    status: str = "active"
    attendee: bool = False
    view: SavedView | None = None
    extra: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise FilterError(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")
        if self.owner not in OWNERS and not _guid_like(self.owner):
            raise FilterError(f"owner must be me, any or a user id, not {self.owner!r}")
        if self.attendee and self.kind is not PimKind.APPOINTMENT:
            raise FilterError("only appointments have attendees")

    @property
    def local(self) -> bool:
        """Whether :meth:`matches` decides alone (no view, no extra clause, no parties)."""
        return self.view is None and not self.extra and not self.attendee

    def _owner_id(self, user_id: str) -> str | None:
        if self.owner == "any":
            return None
        return (user_id if self.owner == "me" else self.owner).lower()

    def _states(self) -> tuple[int, ...] | None:
        if self.status == "active":
            return ACTIVE_STATES[self.kind]
        if self.status == "inactive":
            return INACTIVE_STATES[self.kind]
        return None

    def odata(self, user_id: str) -> str | None:
        """The ``$filter`` this filter is (None: everything; a view is not a ``$filter``,
        see :meth:`query_params`)."""
        parts = []
        states = self._states()
        if states is not None:
            parts.append(_any_of("statecode", states))
        owner = self._owner_id(user_id)
        if self.attendee and owner is not None:
            masks = " or ".join(f"p/participationtypemask eq {m}" for m in ATTENDEE_MASKS)
            parts.append(
                f"appointment_activity_parties/any(p:p/_partyid_value eq {owner} and ({masks}))"
            )
        elif owner is not None:
            parts.append(f"_ownerid_value eq {owner}")
        if self.extra:
            parts.append(f"({self.extra})")
        return " and ".join(parts) or None

    def query_params(self, user_id: str) -> dict[str, str]:
        """The query options of a read of every record in the filter (a membership query)."""
        if self.view is not None:
            return {self.view.parameter: self.view.id}
        found = self.odata(user_id)
        return {"$filter": found} if found else {}

    def matches(self, row: Mapping[str, Any], user_id: str) -> bool:
        """Whether a CRM row (with ``statecode`` and ``_ownerid_value``) is in the filter;
        only meaningful when :attr:`local`."""
        states = self._states()
        if states is not None and row.get("statecode") not in states:
            return False
        owner = self._owner_id(user_id)
        return owner is None or str(row.get("_ownerid_value") or "").lower() == owner


def default_filter(kind: PimKind) -> PimFilter:
    """The CRM for Outlook's defaults (module docstring)."""
    if kind is PimKind.APPOINTMENT:
        return PimFilter(kind, attendee=True)
    return PimFilter(kind)


def _any_of(column: str, values: tuple[int, ...]) -> str:
    if len(values) == 1:
        return f"{column} eq {values[0]}"
    return "(" + " or ".join(f"{column} eq {v}" for v in values) + ")"


def _guid_like(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(
        c in "0123456789abcdefABCDEF" for p in parts for c in p
    )


__all__ = [
    "ACTIVE_STATES",
    "FilterError",
    "PimFilter",
    "SavedView",
    "default_filter",
]
