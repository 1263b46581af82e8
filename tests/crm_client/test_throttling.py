"""The client as a good citizen under Dataverse's service protection limits: the emulator
enforces them (``crmserver.limits``) and counts every request sent inside a Retry-After window
as a violation; the client (``core.crm.throttle``) must get everything done with none."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from core.crm import BasicAuth, BatchRequest, CrmClient
from core.crm.throttle import CrmThrottled, Throttle
from core.domain import demo_data
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, Reason
from core.outbox.kinds import CreateRecord, OperationPayload, Promote
from core.outbox.operations import CrmApplier, LocalEffects
from core.outbox.queue import Outbox
from core.store import Store
from crmserver import RunningServer, Settings, run_in_thread
from crmserver.limits import Limits, ProtectionStats, ServiceProtection
from crmserver.seed import add_user, seed_bulk
from crmserver.storage import Storage

ME = demo_data.ME.email
PRIYA = demo_data.COLLEAGUES[0].email


class Arrivals:
    """Test-only middleware inside the limits: the paths of the requests they admitted, in
    the order the server saw them."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(str(scope["path"]))
        await self.app(scope, receive, send)


@contextmanager
def limited(
    db: Path,
    limits: Limits,
    stats: ProtectionStats,
    *,
    seed: str | None = "demo",
    seen: list[str] | None = None,
) -> Iterator[RunningServer]:
    middleware = [Middleware(ServiceProtection, limits=limits, stats=stats)]
    if seen is not None:
        middleware.append(Middleware(Arrivals, seen=seen))
    with run_in_thread(Settings(db_path=db, seed=seed), middleware=middleware) as server:
        yield server


def crm_for(
    server: RunningServer, email: str = ME, password: str = demo_data.DEMO_PASSWORD
) -> CrmClient:
    return CrmClient(server.url, BasicAuth(email, password), timeout=30)


def _header(run: str, i: int) -> MessageHeader:
    return MessageHeader(
        ref=MailRef("Inbox", str(i)),
        message_id=f"<thr-{run}-{i}@test.example>",
        subject=f"Order {i}",
        sender=Address("jane.doe@fabrikam.example"),
        to=(Address(ME),),
    )


def test_outbox_replay_under_limits_runs_everything_once_without_violations(tmp_path: Path) -> None:
    """500 operations (200 promotions: 2 requests each, 300 record upserts: 1) against 100
    requests per second: the replay is throttled again and again, waits each time, and every
    operation ends done, once, with its attempts untouched."""
    stats = ProtectionStats()
    run = uuid.uuid4().hex[:10]
    ops: list[OperationPayload] = []
    for i in range(500):
        if i % 5 in (0, 2):
            ops.append(Promote(_header(run, i), Reason("manual", "test"), body="<p>hi</p>"))
        else:
            ops.append(
                CreateRecord(
                    entity_set="contacts",
                    record_id=str(uuid.uuid4()),
                    data={
                        "firstname": "T",
                        "lastname": f"thr{run}",
                        "emailaddress1": f"c{i}-{run}@x.example",
                    },
                    subject=f"New contact {i}",
                    message_id=None,
                )
            )
    with (
        limited(tmp_path / "org.db", Limits(requests=100, window=1), stats) as server,
        Store.open(":memory:") as store,
        crm_for(server) as crm,
    ):
        outbox = Outbox(store)
        with store.transaction():
            ids = [outbox.enqueue(op) for op in ops]
        effects = LocalEffects(store, OrgSettings())
        result = outbox.replay(CrmApplier(crm), effects.commit, on_parked=effects.parked)

        assert result.stopped is None and not result.parked
        assert sorted(result.done) == sorted(ids)
        assert stats.violations == 0
        assert stats.throttled >= 3 and result.throttled >= 1  # the limit did bite
        assert crm.throttle.state().throttle_count == stats.throttled
        assert all(
            op is not None and op.attempts == 1 for op in map(outbox.get, ids)
        )  # 429s not counted
        assert outbox.counts()["done"] == 500

        # Read back through the same client: its gate keeps the reads within the limits too.
        emails = list(
            crm.query("emails", select=["messageid"], filter=f"contains(messageid,'thr-{run}-')")
        )
        contacts = list(
            crm.query("contacts", select=["contactid"], filter=f"lastname eq 'thr{run}'")
        )
        assert stats.violations == 0
    promoted = sorted(e["messageid"] for e in emails)
    assert promoted == sorted(op.message_id for op in ops if isinstance(op, Promote))
    assert len(contacts) == 300


def test_a_2000_page_read_completes_under_limits(tmp_path: Path) -> None:
    db = tmp_path / "bulk.db"
    storage = Storage(db)
    add_user(storage, first="Page", last="Reader", email="reader@crm-users.example", password="pw")
    seed_bulk(storage, contacts=2000)
    storage.close()
    stats = ProtectionStats()
    with (
        limited(db, Limits(requests=300, window=1), stats, seed=None) as server,
        crm_for(server, "reader@crm-users.example", "pw") as crm,
    ):
        pages = list(crm.query_pages("contacts", select=["contactid"], page_size=1))
    assert len(pages) == 2000 and all(len(p) == 1 for p in pages)
    assert len({p[0]["contactid"] for p in pages}) == 2000
    assert stats.throttled >= 1 and stats.violations == 0


def test_interactive_requests_go_first_when_the_gate_opens(tmp_path: Path) -> None:
    stats = ProtectionStats()
    seen: list[str] = []
    with limited(tmp_path / "org.db", Limits(requests=2, window=1), stats, seen=seen) as server:
        crm = crm_for(server)
        crm.who_am_i()
        crm.who_am_i()
        errors: list[BaseException] = []

        def call(interactive: bool) -> None:
            try:
                if interactive:  # the regarding picker's search, say
                    with crm.interactive(max_wait=10):
                        next(crm.query_pages("systemusers", select=["fullname"], top=1))
                else:
                    crm.who_am_i()
            except BaseException as exc:  # reported below
                errors.append(exc)

        first = threading.Thread(target=call, args=(False,))
        first.start()  # throttled (the third request in the second): waits at the gate
        _wait_for(lambda: crm.throttle.state().waiting == 1)
        assert crm.throttle.state().throttled
        background = [threading.Thread(target=call, args=(False,)) for _ in range(2)]
        for t in background:
            t.start()
        _wait_for(lambda: crm.throttle.state().waiting == 3)
        mark = len(seen)
        user = threading.Thread(target=call, args=(True,))
        user.start()
        for t in (first, *background, user):
            t.join(30)
        crm.close()
    assert not errors
    after = [p.rsplit("/", 1)[-1] for p in seen[mark:]]
    assert after == ["systemusers", "WhoAmI", "WhoAmI", "WhoAmI"], after
    assert stats.violations == 0


def test_interactive_fails_fast_rather_than_wait(tmp_path: Path) -> None:
    stats = ProtectionStats()
    with (
        limited(tmp_path / "org.db", Limits(requests=1, window=30), stats) as server,
        crm_for(server) as crm,
    ):
        crm.who_am_i()
        with pytest.raises(CrmThrottled) as throttled:
            crm.create("contacts", {"lastname": "x"})  # a write: not retried, the caller defers
        assert throttled.value.status == 429 and throttled.value.sent
        assert throttled.value.code == "0x80072322" and throttled.value.limit == "requests"
        assert 29 <= (throttled.value.retry_after or 0) <= 30
        state = crm.throttle.state()
        assert state.throttled and state.throttle_count == 1 and state.until is not None
        assert state.last_retry_after == throttled.value.retry_after
        started = time.monotonic()
        with pytest.raises(CrmThrottled) as refused, crm.interactive(max_wait=2):
            crm.who_am_i()
        assert time.monotonic() - started < 1  # failed at once: nothing was sent
        assert not refused.value.sent and (refused.value.retry_after or 0) > 25
        assert stats.throttled == 1 and stats.violations == 0


def test_a_throttled_get_waits_and_gives_up_past_its_bound(tmp_path: Path) -> None:
    stats = ProtectionStats()
    with limited(tmp_path / "org.db", Limits(requests=1, window=3), stats) as server:
        throttle = Throttle(background_wait=1.5)
        with CrmClient(
            server.url, BasicAuth(ME, demo_data.DEMO_PASSWORD), throttle=throttle
        ) as crm:
            crm.who_am_i()
            with pytest.raises(CrmThrottled) as info:
                crm.who_am_i()  # Retry-After 3 > 1.5: the CRM's own 429 is raised
            assert info.value.sent and info.value.status == 429
            throttle.background_wait = 10
            started = time.monotonic()
            assert crm.who_am_i().user_id  # waits at the gate, then goes
            assert time.monotonic() - started > 1.5
    assert stats.violations == 0


def test_batches_start_small_grow_and_halve(tmp_path: Path) -> None:
    stats = ProtectionStats()
    with (
        limited(tmp_path / "org.db", Limits(requests=2, window=1), stats) as server,
        crm_for(server) as crm,
    ):
        ids = [str(r["contactid"]) for r in crm.query("contacts", select=["contactid"], top=20)]
        requests = [
            BatchRequest("GET", f"contacts({ids[i % len(ids)]})?$select=contactid")
            for i in range(120)
        ]
        sizes: list[int] = []
        real = crm.batch

        def send(chunk: list[BatchRequest], *, change_set: bool = False) -> list:
            sizes.append(len(chunk))
            return real(chunk, change_set=change_set)

        crm.batch = send  # type: ignore[method-assign]  # record the sizes sent
        answers = crm.batch_all(requests)
    assert [a.body["contactid"] for a in answers] == [ids[i % len(ids)] for i in range(120)]
    assert sizes[0] == 10 and sizes[1] == 20  # Microsoft's advice: start at 10, then grow
    assert stats.throttled >= 1 and stats.violations == 0
    halved = [i for i in range(1, len(sizes)) if sizes[i] < sizes[i - 1]]
    assert halved and all(sizes[i] == sizes[i - 1] // 2 for i in halved)  # after each 429


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
