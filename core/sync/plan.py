"""The decide half of "decide, then apply" for the tracked-state refresh: pure functions on
plain values (what the store says, what the CRM says) → the changes to make. The cycle applies
them in one transaction; tests check the rules without any server (vdirsyncer's ``sync()``
shape: compare, produce actions, then run them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.crm import EmailInfo
from core.domain.model import SHOWN_TRACKED, Reason, RecordRef, TrackState

UNTRACKED_IN_CRM = Reason("untracked-in-crm", "No longer tracked in the CRM")
TRACKED_IN_CRM = Reason("tracked-in-crm", "Tracked in the CRM")
TRACKED_BY_OTHER = Reason("tracked-by-other", "Tracked in the CRM by someone else")


@dataclass(frozen=True, slots=True)
class StateChange:
    """Set ``message_id`` to ``state`` (with the CRM's activity and regarding record)."""

    message_id: str
    state: TrackState
    activity_id: str | None = None
    regarding: RecordRef | None = None
    reason: Reason | None = None


def plan_refresh(
    local: Mapping[str, tuple[TrackState, str | None]],
    found: Mapping[str, EmailInfo],
    me: str | None,
) -> list[StateChange]:
    """Compare the local state of each message with what the CRM has.

    - The CRM has it and it is mine (or ownership is unknown): TRACKED.
    - The CRM has it and someone else owns it: TRACKED_BY_OTHER — unless I track the same
      activity already (tracking it myself links the one activity; it stays mine).
    - The CRM does not have it but we showed it tracked: NOT_TRACKED (untracked elsewhere).
    - A message tracked and flagged for review keeps its flag while the activity is the same.
    Messages that already show the right thing produce no change.
    """
    changes = []
    for mid, (state, activity) in local.items():
        info = found.get(mid)
        if info is None:
            if state in SHOWN_TRACKED:
                changes.append(StateChange(mid, TrackState.NOT_TRACKED, reason=UNTRACKED_IN_CRM))
            continue
        if state in SHOWN_TRACKED and activity == info.activity_id:
            continue
        mine = me is None or info.owner_id is None or info.owner_id == me
        changes.append(
            StateChange(
                mid,
                TrackState.TRACKED if mine else TrackState.TRACKED_BY_OTHER,
                activity_id=info.activity_id,
                regarding=info.regarding,
                reason=TRACKED_IN_CRM if mine else TRACKED_BY_OTHER,
            )
        )
    return changes


def apply_plan(
    local: dict[str, tuple[TrackState, str | None]], changes: list[StateChange]
) -> dict[str, tuple[TrackState, str | None]]:
    """``local`` after ``changes`` (what the store will hold): for tests and previews."""
    after = dict(local)
    for c in changes:
        after[c.message_id] = (c.state, c.activity_id)
    return after
