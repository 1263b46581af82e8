"""``CrmEmailCopy.refresh_states`` runs the refresh rules as one SQL statement for speed; the
rules' home is ``core.sync.plan.plan_refresh``. These tests hold the two to the same answers
on generated mailboxes, and check what the statement writes to the stored copies."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.crm import EmailInfo
from core.domain.correlation import TrackedEmail
from core.domain.model import RecordRef, TrackState
from core.store import SqliteCorrelationIndex, Store
from core.store.crm_emails import REFRESHED_STATES, CrmEmailCopy, RefreshReasons
from core.sync.plan import (
    TRACKED_BY_OTHER,
    TRACKED_IN_CRM,
    UNTRACKED_IN_CRM,
    StateChange,
    plan_refresh,
)
from tests.core_store.conftest import make_header

ME, OTHER = "me-guid", "other-guid"
REASONS = RefreshReasons(TRACKED_IN_CRM, TRACKED_BY_OTHER, UNTRACKED_IN_CRM)
IDS = [f"<m{n}@example.test>" for n in range(8)]
STATES = st.sampled_from(list(TrackState))
ACTIVITIES = st.sampled_from([None, "act-x", "act-y"])
REGARDING = st.sampled_from([None, RecordRef("account", "acc-1", "Contoso")])
OWNERS = st.sampled_from([ME, OTHER, None])


@st.composite
def mailboxes(draw: st.DrawFn) -> tuple[dict, dict, set[str]]:  # type: ignore[type-arg]
    """Per Message-ID: a stored copy or not, a local state, and zero to two CRM e-mails."""
    local = {mid: (draw(STATES), draw(ACTIVITIES)) for mid in IDS if draw(st.booleans())}
    crm: dict[str, list[tuple[str, str | None, RecordRef | None]]] = {}
    for n, mid in enumerate(IDS):
        for k in range(draw(st.integers(0, 2))):
            activity = draw(st.sampled_from(["act-x", "act-y", f"act-{n}-{k}"]))
            crm.setdefault(mid, []).append((activity, draw(OWNERS), draw(REGARDING)))
    without_copy = {mid for mid in IDS if mid not in local and draw(st.booleans())}
    return local, crm, without_copy


def _store(root: Path, local: dict, crm: dict, without_copy: set[str]) -> Store:  # type: ignore[type-arg]
    store = Store.open(root / "store.sqlite")
    store.upsert_headers(
        [make_header("Inbox", n, message_id=mid) for n, mid in enumerate(IDS) if mid in local]
    )
    for mid, (state, activity) in local.items():
        store.tracking.set_state(mid, state, activity_id=activity)
    for mid in without_copy:  # a state known for mail not stored here: left alone
        store.tracking.set_state(mid, TrackState.TRACKED, activity_id="act-x")
    index = SqliteCorrelationIndex(store)
    seen: set[str] = set()
    for mid, emails in crm.items():
        for activity, owner, regarding in emails:
            if activity in seen:  # one activity, one Message-ID (as in the CRM)
                continue
            seen.add(activity)
            index.add(TrackedEmail(activity, regarding, mid, owner_id=owner))
    return store


def _expected(store: Store, local: dict, crm: dict) -> list[StateChange]:  # type: ignore[type-arg]
    """What ``plan_refresh`` decides from the same data: the latest stored e-mail answers."""
    found: dict[str, EmailInfo] = {}
    for mid in crm:
        row = store.conn.execute(
            "SELECT activity_id, owner_id, regarding_entity, regarding_id, regarding_name"
            " FROM tracked_emails WHERE message_id = ? ORDER BY seq DESC LIMIT 1",
            (mid,),
        ).fetchone()
        if row:
            ref = RecordRef(row[2], row[3], row[4] or "") if row[2] else None
            found[mid] = EmailInfo(row[0], mid, ref, row[1])
    refreshed = {m: s for m, s in local.items() if s[0] in REFRESHED_STATES}
    return plan_refresh(refreshed, found, ME)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mailbox=mailboxes())
def test_the_statement_decides_as_plan_refresh(
    mailbox: tuple[dict, dict, set[str]],  # type: ignore[type-arg]
) -> None:
    local, crm, without_copy = mailbox
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp), local, crm, without_copy)
        try:
            expected = _expected(store, local, crm)
            got = CrmEmailCopy(store).refresh_states(IDS, ME, REASONS)
            by_id = {c.message_id: c for c in expected}
            assert {row[0]: StateChange(*row) for row in got} == by_id
            for change in expected:  # the stored copies show the new state
                row = store.conn.execute(
                    "SELECT track_state, activity_id FROM messages WHERE message_id = ?",
                    (change.message_id,),
                ).fetchone()
                assert (TrackState(row[0]), row[1]) == (change.state, change.activity_id)
            for mid in without_copy:  # no copy stored: nothing decided for it
                assert store.tracking.state_of(mid) is TrackState.TRACKED
            # A second refresh changes nothing.
            assert CrmEmailCopy(store).refresh_states(IDS, ME, REASONS) == []
        finally:
            store.close()


def test_mail_the_outbox_still_works_on_keeps_its_state(store: Store) -> None:
    queued, parked, done = IDS[:3]
    store.upsert_headers([make_header("Inbox", n, message_id=m) for n, m in enumerate(IDS[:3])])
    for n, (mid, state) in enumerate([(queued, "queued"), (parked, "parked"), (done, "done")]):
        SqliteCorrelationIndex(store).add(TrackedEmail(f"act-{n}", None, mid, owner_id=OTHER))
        store.conn.execute(
            "INSERT INTO outbox (kind, idempotency_key, message_id, state, created_at,"
            " updated_at) VALUES ('track', ?, ?, ?, '', '')",
            (f"k{n}", mid, state),
        )
    assert CrmEmailCopy(store).refresh_states(IDS[:3], ME, REASONS) == [
        (done, TrackState.TRACKED_BY_OTHER, "act-2", None, TRACKED_BY_OTHER)
    ]
