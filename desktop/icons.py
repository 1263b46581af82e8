"""Icons and short labels for the tracked-state column (one distinct SVG per state)."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from core.domain.model import TrackState
from desktop.resources import resource_path

STATE_LABELS: dict[TrackState, str] = {
    TrackState.NOT_TRACKED: "Not tracked in CRM",
    TrackState.PENDING: "Tracking pending — waiting for the CRM",
    TrackState.TRACKED: "Tracked in CRM",
    TrackState.TRACKED_BY_OTHER: "Tracked in CRM by someone else",
    TrackState.FAILED: "Tracking failed",
    TrackState.NEEDS_ATTENTION: "Needs attention",
    TrackState.UNDECIDED: "Pending decision — the CRM must answer first",
}


@cache
def state_icon(state: TrackState) -> QIcon:
    return QIcon(str(resource_path("icons", f"{state.value}.svg")))


@cache
def named_icon(name: str) -> QIcon:
    return QIcon(str(resource_path("icons", f"{name}.svg")))


@cache
def entity_icon(entity: str) -> QIcon:
    """The icon of a CRM record type (account, contact, lead, opportunity, incident, …);
    an empty icon for types without one."""
    path = resource_path("icons", f"entity_{entity}.svg")
    return QIcon(str(path)) if path.exists() else QIcon()
