"""The outbox under faults (issue 18 items 8-9, "the suite that keeps it so"): operations
replayed through the fault-injecting proxy (``tests/fakes/fault_proxy.py``) in front of the
emulator converge in a bounded number of cycles, every operation done exactly once — checked
through the CRM API directly, not through the proxy — and nothing parked.

A "cycle" is one ``Outbox.replay``; between cycles the outbox's clock jumps by the sync
interval (15 min), and its sleeps (the waits for a Retry-After or a backoff within a replay)
advance that clock instead of the wall clock, so backoff is honoured without the test waiting
for it. The figures (mixes × runs survived, cycles, lost, duplicated) are printed (``-s``) and
recorded as test properties.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from core.crm import BasicAuth, CrmClient, CrmUnavailable
from core.crm.errors import CrmAmbiguousResponse
from core.domain import demo_data
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, Reason, RecordRef, TrackState
from core.outbox.kinds import OperationPayload, Promote, SetRegarding, Untrack
from core.outbox.operations import CrmApplier, LocalEffects
from core.outbox.queue import MAX_FAILURES_IN_A_ROW, OpState, Outbox
from core.outbox.results import OpResult
from core.store import Store
from crmserver import RunningServer
from tests.fakes.fault_proxy import (
    NO_FAULTS,
    Fault,
    FaultMix,
    FaultProxy,
    Trap,
    running_fault_proxy,
)
from tests.plugins.crm import crm_http_client, crm_ssl_context

AUTH = BasicAuth(demo_data.ME.email, demo_data.DEMO_PASSWORD)
INTERVAL_S = 15 * 60.0
MAX_CYCLES = 5
#: The faults of the 30 % mix (the foreign link has its own test: it parks, by design).
FAST = (
    Fault.E500,
    Fault.E502,
    Fault.E503,
    Fault.MALFORMED,
    Fault.TRUNCATED,
    Fault.RESET,
)
MIXED = (
    Fault.E500,
    Fault.E502,
    Fault.E503,
    Fault.THROTTLE,
    Fault.MALFORMED,
    Fault.TRUNCATED,
    Fault.RESET,
    Fault.SLOW,
)


class Clock:
    """The outbox's clock: the wall clock plus what the test (and the outbox's sleeps)
    skipped."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)


@dataclass
class Plan:
    run: str
    promoted: set[str]
    untracked: set[str]
    refiled: set[str]
    ops: int


def _header(run: str, i: int) -> MessageHeader:
    return MessageHeader(
        ref=MailRef("Inbox", str(i)),
        message_id=f"<fault-{run}-{i}@test.example>",
        subject=f"Fault {i}",
        sender=Address("jane.doe@fabrikam.example", "Jane Doe"),
        to=(Address(demo_data.ME.email, demo_data.ME.full_name),),
    )


def _queue(
    store: Store, outbox: Outbox, total: int, rng: random.Random, contact: RecordRef
) -> Plan:
    """``total`` operations: 80 % promotions of distinct messages, then untracks and
    set-regardings of some of them at random later positions (per-message order kept)."""
    run = uuid.uuid4().hex[:10]
    follow_ups = total // 5
    headers = [_header(run, i) for i in range(total - follow_ups)]
    store.upsert_headers(headers)
    chosen = rng.sample(headers, follow_ups)
    untracked = {h.message_id for h in chosen[: follow_ups // 2]}
    refiled = {h.message_id for h in chosen[follow_ups // 2 :]}
    ops: list[OperationPayload] = [
        Promote(h, Reason("manual", "test"), body="<p>small</p>") for h in headers
    ]
    for mid in sorted(untracked | refiled):
        follow_up = Untrack(mid) if mid in untracked else SetRegarding(mid, contact)
        first = next(i for i, op in enumerate(ops) if op.message_id == mid)
        ops.insert(rng.randint(first + 1, len(ops)), follow_up)
    with store.transaction():
        for op in ops:
            outbox.enqueue(op)
    return Plan(run, {h.message_id for h in headers}, untracked, refiled, len(ops))


@pytest.fixture(scope="module")
def contact(crm_https: RunningServer) -> RecordRef:
    with crm_http_client(crm_https) as http:
        row = http.get("contacts", params={"$select": "contactid", "$top": "1"}).json()
    return RecordRef("contact", row["value"][0]["contactid"])


@pytest.fixture
def proxy(crm_https: RunningServer) -> Iterator[FaultProxy]:
    with running_fault_proxy(crm_https.url, verify=crm_ssl_context(crm_https)) as running:
        yield running


def _cycles(
    store: Store, outbox: Outbox, clock: Clock, crm: CrmClient, limit: int
) -> tuple[int | None, list[Any]]:
    """Replay cycles until nothing is left open (returns how many it took) or ``limit``."""
    effects = LocalEffects(store, OrgSettings())
    results = []
    for cycle in range(1, limit + 1):
        results.append(outbox.replay(CrmApplier(crm), effects.commit, on_parked=effects.parked))
        if not outbox.pending():
            return cycle, results
        clock.sleep(INTERVAL_S)
    return None, results


def _crm_emails(server: RunningServer, run: str) -> dict[str, list[dict[str, Any]]]:
    """The CRM's e-mails of this run by Message-ID, read directly (not through the proxy)."""
    found: dict[str, list[dict[str, Any]]] = {}
    with crm_http_client(server) as http:
        url: str | None = "emails"
        params: dict[str, str] | None = {
            "$select": "activityid,messageid,_regardingobjectid_value",
            "$filter": f"startswith(messageid,'<fault-{run}-')",
        }
        while url:
            response = http.get(url, params=params, headers={"Prefer": "odata.maxpagesize=500"})
            response.raise_for_status()
            page = response.json()
            for row in page["value"]:
                found.setdefault(row["messageid"], []).append(row)
            url, params = page.get("@odata.nextLink"), None
    return found


def _check_exactly_once(
    server: RunningServer, store: Store, outbox: Outbox, plan: Plan, contact: RecordRef
) -> tuple[int, int]:
    """Every operation done once: returns (lost, duplicated), asserted to be (0, 0)."""
    counts = outbox.counts()
    assert counts["parked"] == 0, [(op.id, op.last_error) for op in outbox.pending()]
    assert counts["done"] == plan.ops and counts["queued"] == 0
    found = _crm_emails(server, plan.run)
    expected = plan.promoted - plan.untracked
    duplicated = sum(len(rows) - 1 for rows in found.values())
    lost = len(expected - set(found)) + len(set(found) - expected)  # untracked ones must be gone
    assert (lost, duplicated) == (0, 0), {m: len(r) for m, r in found.items() if len(r) != 1}
    for mid in plan.refiled:
        assert found[mid][0]["_regardingobjectid_value"] == contact.id
    for mid in sorted(plan.promoted)[:40]:
        state = TrackState.NOT_TRACKED if mid in plan.untracked else TrackState.TRACKED
        assert store.tracking.state_of(mid) is state
    return lost, duplicated


def _converge(
    server: RunningServer,
    proxy: FaultProxy,
    contact: RecordRef,
    mix: FaultMix,
    seed: int,
    ops: int,
    record: Any,
) -> int:
    proxy.set_mix(mix, seed)
    clock = Clock()
    with (
        Store.open(":memory:") as store,
        # Real seconds spent waiting are the client's own (GET retries, the 429 gate, slow
        # answers): GET retries wait at most 0.1 s, so a 5xx goes to the outbox at once.
        CrmClient(proxy.url, AUTH, timeout=30, get_retries=2, max_retry_wait=0.1) as crm,
    ):
        outbox = Outbox(store, clock=clock, sleep=clock.sleep, rng=random.Random(seed))
        plan = _queue(store, outbox, ops, random.Random(seed), contact)
        cycles, results = _cycles(store, outbox, clock, crm, MAX_CYCLES)
        proxy.set_mix(NO_FAULTS)
        faults = sum(proxy.counts.values())
        assert cycles is not None, (
            f"{mix.name} seed {seed}: not converged in {MAX_CYCLES} cycles: {outbox.counts()}, "
            f"replays stopped {[r.stopped for r in results]}"
        )
        lost, duplicated = _check_exactly_once(server, store, outbox, plan, contact)
    figures = (
        f"fault mix {mix.name!r} seed {seed}: {plan.ops} operations, {len(proxy.log)} requests, "
        f"{faults} faults ({dict(sorted(proxy.counts.items()))}); converged in {cycles} "
        f"cycle(s); lost {lost}, duplicated {duplicated}"
    )
    print(figures)
    record("figures", figures)
    return cycles


# -- the queue's rules, with a scripted applier ----------------------------------------------


def _promote(outbox: Outbox, n: int) -> int:
    return outbox.enqueue(Promote(_header("unit", n), Reason("manual", "t"), body="x"))


def test_a_failed_request_defers_that_operation_only() -> None:
    """Issue 18 item 8: the replay goes on with the others; the next operation on the same
    message waits; the failed one runs again once its backoff has passed."""
    clock = Clock()
    with Store.open(":memory:") as store:
        outbox = Outbox(store, clock=clock, sleep=clock.sleep, rng=random.Random(1))
        first, second = _promote(outbox, 1), _promote(outbox, 2)
        behind = outbox.enqueue(Untrack(_header("unit", 1).message_id))
        ran: list[int] = []

        def apply(op: Any, _checkpoint: Any) -> OpResult:
            ran.append(op.id)
            if op.id == first and ran.count(first) == 1:
                raise CrmAmbiguousResponse("garbled", method="POST", status=200)
            return OpResult(activity_id=str(uuid.uuid4()))

        result = outbox.replay(apply)
        assert result.stopped is None and result.online and result.failed_requests == 1
        assert ran == [first, second, first, behind]  # retried after its backoff, in order
        assert sorted(result.done) == sorted([first, second, behind])
        assert outbox.pending() == []


def test_without_waiting_the_failed_operation_is_left_for_the_next_replay() -> None:
    clock = Clock()
    with Store.open(":memory:") as store:
        outbox = Outbox(store, clock=clock, sleep=clock.sleep, rng=random.Random(1))
        first, second = _promote(outbox, 1), _promote(outbox, 2)

        def apply(op: Any, _checkpoint: Any) -> OpResult:
            if op.id == first:
                raise CrmAmbiguousResponse("reset", method="POST")
            return OpResult(activity_id="a")

        result = outbox.replay(apply, max_transient_wait=0)
        assert result.done == [second] and result.deferred == [first]
        op = outbox.get(first)
        assert op is not None and op.state is OpState.QUEUED and op.attempts == 1
        assert op.last_error_code == "CrmAmbiguousResponse" and op.next_attempt_at > clock()


def test_failed_requests_in_a_row_mean_the_crm_is_down() -> None:
    clock = Clock()
    with Store.open(":memory:") as store:
        outbox = Outbox(store, clock=clock, sleep=clock.sleep, rng=random.Random(1))
        ids = [_promote(outbox, n) for n in range(MAX_FAILURES_IN_A_ROW + 3)]

        def apply(op: Any, _checkpoint: Any) -> OpResult:
            raise CrmAmbiguousResponse("502 from the gateway", method="POST", status=502)

        result = outbox.replay(apply)
        assert result.stopped == "offline" and not result.online
        assert result.deferred == ids[:MAX_FAILURES_IN_A_ROW]  # the rest not even tried


def test_an_unreachable_crm_still_stops_the_replay_at_once() -> None:
    with Store.open(":memory:") as store:
        outbox = Outbox(store, rng=random.Random(1))
        ids = [_promote(outbox, n) for n in range(3)]

        def apply(op: Any, _checkpoint: Any) -> OpResult:
            raise CrmUnavailable("ConnectError: refused", method="POST")

        result = outbox.replay(apply)
        assert result.stopped == "offline" and result.deferred == ids[:1]


# -- convergence through the proxy -----------------------------------------------------------

#: Each fault alone at 30 %, on a small queue (429 and slow answers cost real seconds each:
#: the suite must stay fast).
ALONE = [(FaultMix.only(fault, 0.3), 40) for fault in FAST] + [
    (FaultMix.only(Fault.THROTTLE, 0.3), 12),
    (FaultMix.only(Fault.SLOW, 0.3), 12),
]


@pytest.mark.parametrize(("mix", "ops"), ALONE, ids=[m.name for m, _ in ALONE])
def test_each_fault_alone_converges_exactly_once(
    crm_https: RunningServer,
    proxy: FaultProxy,
    contact: RecordRef,
    mix: FaultMix,
    ops: int,
    record_property: Any,
) -> None:
    _converge(crm_https, proxy, contact, mix, seed=11, ops=ops, record=record_property)


#: 30 % of responses faulty: every fault (one seed: 429s and slow answers cost real time),
#: and the fast ones on more seeds.
MIXES = [
    (FaultMix.mixed(0.3, MIXED), 1),
    (FaultMix.mixed(0.3, FAST), 2),
    (FaultMix.mixed(0.3, FAST), 3),
]


@pytest.mark.parametrize(
    ("mix", "seed"), MIXES, ids=[f"{len(m.rates)}-faults-seed-{s}" for m, s in MIXES]
)
def test_200_operations_at_30_percent_faults_converge_in_5_cycles(
    crm_https: RunningServer,
    proxy: FaultProxy,
    contact: RecordRef,
    mix: FaultMix,
    seed: int,
    record_property: Any,
) -> None:
    """The issue's own figure: with 30 % of responses faulty only 30 of 200 operations were
    done after 12 syncs; now all are, exactly once, in at most five."""
    cycles = _converge(crm_https, proxy, contact, mix, seed=seed, ops=200, record=record_property)
    assert cycles <= MAX_CYCLES


def test_a_foreign_next_link_is_never_followed(
    crm_https: RunningServer, contact: RecordRef, record_property: Any
) -> None:
    """A page pointing to another origin parks the operation that read it (the credentials
    would go there); nothing reaches that origin, and after the user's retry the queue
    converges exactly once."""
    trap = Trap()
    mix = FaultMix.only(Fault.FOREIGN_LINK, 0.3)
    verify = crm_ssl_context(crm_https)
    try:
        with running_fault_proxy(crm_https.url, mix, seed=5, verify=verify, foreign=trap.url) as p:
            clock = Clock()
            with (
                Store.open(":memory:") as store,
                CrmClient(p.url, AUTH, timeout=30) as crm,
            ):
                outbox = Outbox(store, clock=clock, sleep=clock.sleep, rng=random.Random(5))
                plan = _queue(store, outbox, 20, random.Random(5), contact)
                _cycles(store, outbox, clock, crm, 1)
                parked = [op for op in outbox.pending() if op.state is OpState.PARKED]
                assert parked and {op.last_error_code for op in parked} == {"CrmForeignOrigin"}
                p.set_mix(NO_FAULTS)
                for op in parked:
                    outbox.retry(op.id)
                cycles, _ = _cycles(store, outbox, clock, crm, MAX_CYCLES)
                assert cycles is not None
                _check_exactly_once(crm_https, store, outbox, plan, contact)
        assert trap.connections == 0
    finally:
        trap.close()
    record_property("figures", f"foreign link: {len(parked)} parked, 0 requests to the trap")
