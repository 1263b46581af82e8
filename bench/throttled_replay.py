"""Benchmark the outbox replay under Dataverse's service protection limits: 1,000 operations
(a fifth of them promotions, two requests each; the rest contact creations, one request) replayed
through the real :class:`~core.outbox.queue.Outbox` and :class:`~core.crm.CrmClient` against
the emulator limited to ``REQUESTS`` requests per ``WINDOW`` seconds (sliding window, per user).

- ``throttled_time``: the replay's wall time against the least time the limit allows for the
  requests it needed. With R the requests the server *admitted* (a 429 does no work and is not
  needed), N = ``REQUESTS``, W = ``WINDOW`` and u the time one request takes without limits
  (the same replay against an unlimited emulator, divided by its request count), the best a
  client can do is to send N requests at once every W seconds: the last of the ceil(R/N)
  bursts starts at (ceil(R/N) - 1) * W and takes r * u (r = its size, R - (ceil(R/N) - 1) * N).
  Baseline = max(R * u, (ceil(R/N) - 1) * W + r * u). Target: ratio <= 1.2.
- ``extra_429``: 429 answers the client should not have caused. The 429s, in the order the
  server sent them, are grouped into *episodes*: a 429 at t with Retry-After a opens one that
  lasts until t + max(W, a); every further 429 inside it is extra (a violation of the
  Retry-After, or a second refusal of the same full window). Target: 0.

The emulator runs in this process (``run_in_thread``) so that its counters
(:class:`~crmserver.limits.ProtectionStats` and the answers a recording middleware outside the
limits sees) are read directly; at a few requests per window it idles most of the time, so
sharing the interpreter with the client does not move the figures.

Run: ``python -m bench throttled_replay [--size N]`` (N = operations; ~1 minute at 1,000).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench._harness import figure, print_figures
from core.crm import BasicAuth, CrmClient
from core.domain import demo_data
from core.domain.crm_settings import OrgSettings
from core.domain.model import Address, MailRef, MessageHeader, Reason
from core.outbox.kinds import CreateRecord, OperationPayload, Promote
from core.outbox.operations import CrmApplier, LocalEffects
from core.outbox.queue import Outbox, ReplayResult
from core.store import Store
from crmserver import Settings, run_in_thread
from crmserver.limits import Limits, ProtectionStats, ServiceProtection

DEFAULT_SIZE = 1000
REQUESTS = 25  # per window: 1,000 operations (~1,200 requests) take about 48 windows
WINDOW = 1.0
UNLIMITED = Limits(requests=10**9, window=WINDOW, execution=1e9, concurrent=10**6)
ME = demo_data.ME.email


@dataclass
class Answers:
    """What the server answered, in order: (when, status, Retry-After seconds or None)."""

    sent: list[tuple[float, int, float | None]] = field(default_factory=list)

    def throttled(self) -> list[tuple[float, float | None]]:
        return [(at, wait) for at, status, wait in self.sent if status == 429]


class Recorder:
    """Middleware outside the limits: records every Web API answer's status and Retry-After."""

    def __init__(self, app: ASGIApp, answers: Answers) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/api/data"):
            await self.app(scope, receive, send)
            return

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", ()))
                retry = headers.get(b"retry-after")
                self.answers.sent.append(
                    (time.monotonic(), int(message["status"]), float(retry) if retry else None)
                )
            await send(message)

        await self.app(scope, receive, recording)


def extra_429(throttled: list[tuple[float, float | None]], window: float) -> int:
    """429s inside the episode an earlier 429 opened (see the module docstring)."""
    extra, ends = 0, -math.inf
    for at, retry_after in throttled:
        if at < ends:
            extra += 1
        else:
            ends = at + max(window, retry_after or 0.0)
    return extra


def least_time(admitted: int, per_request: float, requests: int, window: float) -> float:
    """The least wall time ``admitted`` requests can take under the limit (module docstring)."""
    bursts = math.ceil(admitted / requests)
    last = admitted - (bursts - 1) * requests
    return max(admitted * per_request, (bursts - 1) * window + last * per_request)


def operations(count: int) -> list[OperationPayload]:
    """``count`` operations: every fifth a promotion (two requests), the rest contacts."""
    run = uuid.uuid4().hex[:10]
    ops: list[OperationPayload] = []
    for i in range(count):
        if i % 5 == 0:
            header = MessageHeader(
                ref=MailRef("Inbox", str(i)),
                message_id=f"<bench-{run}-{i}@replay.example>",
                subject=f"Order {i}",
                sender=Address("jane.doe@fabrikam.example"),
                to=(Address(ME),),
            )
            ops.append(Promote(header, Reason("manual", "bench"), body="<p>hi</p>"))
        else:
            data: dict[str, str | int | float | bool | None] = {
                "firstname": "B",
                "lastname": f"bench{run}",
                "emailaddress1": f"c{i}@x.example",
            }
            ops.append(
                CreateRecord(
                    entity_set="contacts",
                    record_id=str(uuid.uuid4()),
                    data=data,
                    subject=f"New contact {i}",
                    message_id=None,
                )
            )
    return ops


@dataclass
class Replayed:
    seconds: float
    result: ReplayResult
    stats: ProtectionStats
    answers: Answers
    queued: int


def replay(db: Path, ops: list[OperationPayload], limits: Limits) -> Replayed:
    """Queue ``ops`` and replay them against an emulator with ``limits``; time the replay."""
    stats, answers = ProtectionStats(), Answers()
    middleware = [
        Middleware(Recorder, answers=answers),
        Middleware(ServiceProtection, limits=limits, stats=stats),
    ]
    with (
        run_in_thread(Settings(db_path=db, seed="demo"), middleware=middleware) as server,
        Store.open(":memory:") as store,
        CrmClient(server.url, BasicAuth(ME, demo_data.DEMO_PASSWORD), timeout=60) as crm,
    ):
        outbox = Outbox(store)
        with store.transaction():
            for op in ops:
                outbox.enqueue(op)
        effects = LocalEffects(store, OrgSettings())
        crm.who_am_i()  # connect outside the timing
        answers.sent.clear()
        admitted_before = stats.admitted
        started = time.perf_counter()
        result = outbox.replay(CrmApplier(crm), effects.commit, on_parked=effects.parked)
        seconds = time.perf_counter() - started
        if result.stopped is not None or result.parked or len(result.done) != len(ops):
            raise RuntimeError(
                f"the replay did not finish: stopped={result.stopped} parked="
                f"{len(result.parked)} done={len(result.done)}/{len(ops)} error={result.error}"
            )
        queued = stats.admitted - admitted_before
    return Replayed(seconds, result, stats, answers, queued)


def run(size: int | None = None) -> list[dict[str, Any]]:
    size = size or DEFAULT_SIZE
    ops = operations(size)
    with tempfile.TemporaryDirectory(prefix="throttled-replay-bench-") as tmp:
        root = Path(tmp)
        free = replay(root / "free.db", ops, UNLIMITED)
        per_request = free.seconds / free.queued
        limits = Limits(requests=REQUESTS, window=WINDOW)
        limited = replay(root / "limited.db", operations(size), limits)
    admitted = limited.queued
    floor = least_time(admitted, per_request, REQUESTS, WINDOW)
    throttled = limited.answers.throttled()
    extra = extra_429(throttled, WINDOW)
    common = {
        "operations": size,
        "limit": f"requests={REQUESTS},window={WINDOW:g}",
        "requests_admitted": admitted,
        "answers_429": len(throttled),
        "violations": limited.stats.violations,
    }
    return [
        figure(
            "throttled_replay",
            "throttled_time",
            value=limited.seconds,
            unit="s",
            baseline=floor,
            ratio=limited.seconds / floor,
            target=1.2,
            unlimited_s=round(free.seconds, 3),
            per_request_ms=round(per_request * 1000, 3),
            **common,
        ),
        figure(
            "throttled_replay",
            "extra_429",
            value=extra,
            unit="429s",
            baseline=0,
            ratio=float(extra),
            target=0,
            **common,
        ),
    ]


if __name__ == "__main__":
    print_figures(run(int(sys.argv[1]) if len(sys.argv) > 1 else None))
