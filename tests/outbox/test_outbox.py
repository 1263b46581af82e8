"""Outbox semantics: order per message, backoff, parking with the CRM's message, retry and
discard — against the emulator over HTTP, plus a property test of the queue rules."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crm import BasicAuth, CrmClient, CrmUnavailable
from core.domain import demo_data
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, Reason, RecordRef, TrackState
from core.outbox.kinds import (
    AddConnection,
    CreateRecord,
    OperationPayload,
    Promote,
    RemoveConnection,
    SendPending,
    SetRegarding,
    Untrack,
    UpdateUserSettings,
)
from core.outbox.operations import CrmApplier, LocalEffects
from core.outbox.queue import BACKOFF_CAP_S, OpKind, OpState, Outbox, backoff_delay
from core.outbox.results import OpResult
from core.store import Store
from crmserver import RunningServer


@pytest.fixture
def crm(crm_server: RunningServer) -> Iterator[CrmClient]:
    with CrmClient(crm_server.url, BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)) as c:
        yield c


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open(":memory:") as s:
        yield s


def header(n: int = 0) -> MessageHeader:
    return MessageHeader(
        ref=MailRef("Inbox", str(n)),
        message_id=f"<ob-{uuid.uuid4().hex}@test.example>",
        subject=f"Hello {n}",
        sender=Address("jane.doe@fabrikam.example"),
        to=(Address(demo_data.ME.email),),
    )


def promote(outbox: Outbox, h: MessageHeader, regarding: RecordRef | None = None) -> int:
    return outbox.enqueue(
        Promote(h, Reason("manual", "by test"), regarding=regarding, body="<p>hi</p>")
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_promote_untrack_and_promote_again_run_in_order(store: Store, crm: CrmClient) -> None:
    outbox = Outbox(store)
    effects = LocalEffects(store, OrgSettings())
    h = header()
    store.upsert_headers([h])
    promote(outbox, h)
    outbox.enqueue(Untrack(h.message_id))
    promote(outbox, h)
    # Only the head of a message's queue is ready.
    assert [op.kind for op in outbox.ready()] == [OpKind.PROMOTE]
    result = outbox.replay(CrmApplier(crm), effects.commit)
    assert len(result.done) == 3 and result.stopped is None
    found = crm.find_emails_by_message_id([h.message_id])
    assert h.message_id in found
    assert store.tracking.state_of(h.message_id) is TrackState.TRACKED
    assert outbox.pending() == []


def test_duplicate_enqueue_is_one_operation(store: Store) -> None:
    outbox = Outbox(store)
    h = header()
    assert promote(outbox, h) == promote(outbox, h)
    assert outbox.counts()["queued"] == 1


def test_untrack_of_a_deleted_activity_is_done(store: Store, crm: CrmClient) -> None:
    outbox = Outbox(store)
    h = header()
    promote(outbox, h)
    outbox.replay(CrmApplier(crm))
    activity = crm.find_emails_by_message_id([h.message_id])[h.message_id].activity_id
    crm.delete_email(activity)  # someone else untracked it meanwhile
    outbox.enqueue(Untrack(h.message_id, activity))
    result = outbox.replay(CrmApplier(crm))
    assert len(result.done) == 1 and not result.parked


def test_permanent_error_parks_with_the_crm_message_then_retry_and_discard(
    store: Store, crm: CrmClient
) -> None:
    outbox = Outbox(store)
    effects = LocalEffects(store, OrgSettings())
    h = header()
    store.upsert_headers([h])
    missing = RecordRef("contact", str(uuid.uuid4()))
    promote(outbox, h, regarding=missing)
    result = outbox.replay(CrmApplier(crm), effects.commit, on_parked=effects.parked)
    assert len(result.parked) == 1
    [op] = outbox.pending()
    assert op.state is OpState.PARKED and op.attempts == 1
    assert op.last_error and "Does Not Exist" in op.last_error
    assert store.tracking.state_of(h.message_id) is TrackState.FAILED
    # A parked operation holds back later ones on the same message.
    outbox.enqueue(Untrack(h.message_id))
    assert outbox.ready() == []
    outbox.retry(op.id)
    assert outbox.get(op.id).state is OpState.QUEUED  # type: ignore[union-attr]
    outbox.replay(CrmApplier(crm), effects.commit, on_parked=effects.parked)
    outbox.discard(op.id, effects.discarded)
    assert store.tracking.state_of(h.message_id) is TrackState.NOT_TRACKED
    result = outbox.replay(CrmApplier(crm), effects.commit)
    assert len(result.done) == 1  # the untrack, unblocked
    assert outbox.pending() == []


def test_transient_error_backs_off_and_stops_the_replay(store: Store) -> None:
    clock = Clock()
    outbox = Outbox(store, clock=clock, rng=random.Random(1))
    offline = CrmClient("http://127.0.0.1:9", BasicAuth("a", "b"), timeout=2, get_retries=0)
    for n in range(3):
        promote(outbox, header(n))
    result = outbox.replay(CrmApplier(offline))
    assert result.stopped == "offline" and not result.online
    assert len(result.deferred) == 1  # the others were not even tried
    first = outbox.pending()[0]
    assert first.attempts == 1 and first.next_attempt_at > clock.now
    assert first.last_error_code and "CrmUnavailable" in first.last_error_code
    assert [op.id for op in outbox.ready()] == [op.id for op in outbox.pending()[1:]]
    clock.now = first.next_attempt_at
    assert first.id in [op.id for op in outbox.ready()]


def test_set_regarding_on_a_tracked_mail(store: Store, crm: CrmClient) -> None:
    outbox = Outbox(store)
    effects = LocalEffects(store, OrgSettings())
    h = header()
    store.upsert_headers([h])
    promote(outbox, h)
    contact = next(crm.query("contacts", select=["contactid", "fullname"], top=1))
    ref = RecordRef("contact", contact["contactid"], contact["fullname"])
    outbox.enqueue(SetRegarding(h.message_id, ref))
    assert len(outbox.replay(CrmApplier(crm), effects.commit).done) == 2
    info = crm.find_emails_by_message_id([h.message_id])[h.message_id]
    assert info.regarding is not None and info.regarding.id == ref.id
    row = store.messages_by_message_id(h.message_id)[0]
    assert row.regarding is not None and row.regarding.id == ref.id


@given(attempts=st.integers(min_value=0, max_value=100_000), seed=st.integers(0, 2**32))
def test_backoff_grows_and_is_capped(attempts: int, seed: int) -> None:
    delay = backoff_delay(attempts, rng=random.Random(seed))
    assert 0 < delay <= BACKOFF_CAP_S
    ceiling = min(BACKOFF_CAP_S, 2.0 * 2 ** min(max(0, attempts - 1), 60))
    assert ceiling / 2 <= delay <= ceiling


# -- property: whatever fails how, each message's operations take effect once, in order -----

OUTCOMES = st.sampled_from(["ok", "ok", "ok", "transient", "permanent"])


def some_operation(kind: OpKind, mid: str, n: int) -> OperationPayload:
    """An operation of ``kind`` on message ``mid``, distinct for each ``n``."""
    header = MessageHeader(ref=MailRef("Inbox", str(n)), message_id=mid, subject=f"op {n}")
    return {
        OpKind.PROMOTE: lambda: Promote(header, Reason("test", str(n))),
        OpKind.UNTRACK: lambda: Untrack(mid, f"activity-{n}"),
        OpKind.SET_REGARDING: lambda: SetRegarding(mid, RecordRef("contact", f"id-{n}")),
        OpKind.SEND_PENDING: lambda: SendPending(mid, f"mail {n}".encode(), activity_id=f"a{n}"),
        OpKind.CREATE_RECORD: lambda: CreateRecord("contacts", f"id-{n}", {}, message_id=mid),
        OpKind.UPDATE_USER_SETTINGS: lambda: UpdateUserSettings({"n": n}),
        OpKind.ADD_CONNECTION: lambda: AddConnection(mid, RecordRef("account", f"id-{n}")),
        OpKind.REMOVE_CONNECTION: lambda: RemoveConnection(mid, RecordRef("account", f"id-{n}")),
    }[kind]()


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(list(OpKind))), min_size=1, max_size=25
    ),
    outcomes=st.lists(OUTCOMES, min_size=60, max_size=60),
)
def test_replay_applies_each_operation_once_in_per_message_order(
    plan: list[tuple[int, OpKind]], outcomes: list[str]
) -> None:
    clock = Clock()
    with Store.open(":memory:") as store:
        outbox = Outbox(store, clock=clock, rng=random.Random(0))
        ids = []
        for n, (msg, kind) in enumerate(plan):
            ids.append(outbox.enqueue(some_operation(kind, f"m{msg}", n)))
        applied: list[tuple[str, int]] = []
        script = iter(outcomes)

        def apply(op: Any, _checkpoint: Any) -> OpResult:
            outcome = next(script, "ok")
            if outcome == "transient":
                raise CrmUnavailable("away")
            if outcome == "permanent":
                from core.outbox.queue import PermanentFailure

                raise PermanentFailure("no")
            applied.append((op.message_id, op.id))
            return OpResult()

        for _ in range(200):
            outbox.replay(apply)
            for op in outbox.pending():
                if op.state is OpState.PARKED:
                    outbox.retry(op.id)
            clock.now += BACKOFF_CAP_S + 1
            if not outbox.pending():
                break
        assert outbox.pending() == []
        assert sorted(i for _, i in applied) == sorted(ids)  # each exactly once
        for msg in {m for m, _ in applied if m is not None}:  # settings have no message
            seq = [i for m, i in applied if m == msg]
            assert seq == sorted(seq)


def test_only_one_process_replays_a_profile_at_a_time(tmp_path, crm: CrmClient) -> None:  # type: ignore[no-untyped-def]
    """Another process holding the profile's outbox lock: this one leaves the queue alone."""
    import fcntl

    from core.workspace.facade import Workspace

    ws = Workspace(
        store_path=tmp_path / "store.sqlite",
        open_mailbox=lambda: None,  # type: ignore[arg-type, return-value]
        crm=crm,
        owner=Address(demo_data.ME.email),
    )
    h = header()
    promote(ws.outbox(), h)
    with open(tmp_path / "outbox.lock", "a+b") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert ws.replay_now().done == []
        fcntl.flock(other, fcntl.LOCK_UN)
    assert len(ws.replay_now().done) == 1
    assert h.message_id in crm.find_emails_by_message_id([h.message_id])
