"""The refresh plan on plain values (no servers): rules, and convergence as a property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.crm import EmailInfo
from core.domain.model import TrackState
from core.sync.plan import apply_plan, plan_refresh

ME, OTHER = "me", "other"


def info(activity: str, owner: str | None = ME) -> EmailInfo:
    return EmailInfo(activity_id=activity, message_id="m", regarding=None, owner_id=owner)


def test_rules() -> None:
    local = {
        "a": (TrackState.NOT_TRACKED, None),  # I tracked it elsewhere → tracked
        "b": (TrackState.NOT_TRACKED, None),  # a colleague tracked it → by other
        "c": (TrackState.TRACKED, "x1"),  # untracked in the CRM → not tracked
        "d": (TrackState.TRACKED, "x2"),  # mine, unchanged → nothing
        "e": (TrackState.TRACKED, "x3"),  # I track a colleague's activity → stays
        "f": (TrackState.NOT_TRACKED, None),  # nobody has it → nothing
    }
    found = {"a": info("y1"), "b": info("y2", OTHER), "d": info("x2"), "e": info("x3", OTHER)}
    changes = {c.message_id: c for c in plan_refresh(local, found, ME)}
    assert set(changes) == {"a", "b", "c"}
    assert changes["a"].state is TrackState.TRACKED and changes["a"].activity_id == "y1"
    assert changes["b"].state is TrackState.TRACKED_BY_OTHER
    assert changes["c"].state is TrackState.NOT_TRACKED and changes["c"].activity_id is None


STATES = st.sampled_from(
    [
        TrackState.NOT_TRACKED,
        TrackState.TRACKED,
        TrackState.TRACKED_BY_OTHER,
        TrackState.UNDECIDED,
        TrackState.NEEDS_ATTENTION,
    ]
)
LOCAL = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.tuples(STATES, st.sampled_from([None, "x", "y"])),
    max_size=20,
)
OWNERS = st.sampled_from([ME, OTHER, None])


@given(local=LOCAL, data=st.data())
def test_one_refresh_converges(local: dict, data: st.DataObject) -> None:  # type: ignore[type-arg]
    keys = sorted(local)
    found = {
        k: info(data.draw(st.sampled_from(["x", "y", "z"])), data.draw(OWNERS))
        for k in keys
        if data.draw(st.booleans())
    }
    after = apply_plan(local, plan_refresh(local, found, ME))
    assert plan_refresh(after, found, ME) == []  # a second refresh changes nothing
    for mid, (state, activity) in after.items():
        if mid in found:
            assert state in (
                TrackState.TRACKED,
                TrackState.TRACKED_BY_OTHER,
                TrackState.NEEDS_ATTENTION,
            )
            assert activity == found[mid].activity_id
        elif local[mid][0] is TrackState.UNDECIDED:
            assert state is TrackState.UNDECIDED  # the CRM has nothing: still to decide
        else:
            assert state is TrackState.NOT_TRACKED
