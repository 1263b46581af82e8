"""The Dramatiq broker and worker pool: in-process (embedded) or Redis (distributed).

Embedded (no ``--broker``): dramatiq's :class:`StubBroker` and a :class:`dramatiq.Worker`
running threads in this process — nothing to install, same actors. ``--broker redis://…``: a
:class:`RedisBroker`; any number of processes on any number of machines share it.

Redelivery: a Redis worker that dies holding a message (fetched, not acked) is noticed once its
heartbeat is ``heartbeat_timeout_s`` old, by the *maintenance* that dramatiq runs inside its
queue commands; stock dramatiq runs it on a random 0.1% of commands, which can leave a dead
worker's message parked for minutes on a quiet queue. :class:`RouterRedisBroker` runs it at
least every few seconds instead (a private dramatiq hook; dramatiq is pinned below 3 and the
redelivery test covers it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.middleware import CurrentMessage, TimeLimit

#: The one queue the router's jobs go to.
QUEUE = "trackbox-router"
#: Dramatiq's key namespace in Redis.
NAMESPACE = "trackbox-router-dramatiq"
#: A job that runs longer than this is interrupted (a first pass over a big mailbox is long).
TIME_LIMIT_MS = 2 * 60 * 60 * 1000


class RouterRedisBroker(RedisBroker):
    """A :class:`RedisBroker` whose queue maintenance (requeueing dead workers' messages) runs
    at least every ``maintenance_every_s`` seconds per process, not by chance."""

    def __init__(self, *, maintenance_every_s: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.maintenance_every_s = maintenance_every_s
        self._last_maintenance = 0.0

    def _should_do_maintenance(self, command: str) -> int:
        if command in ("ack", "nack"):
            return 0
        now = time.monotonic()
        if now - self._last_maintenance < self.maintenance_every_s:
            return 0
        self._last_maintenance = now
        return 1


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    url: str | None = None  # None: embedded
    heartbeat_timeout_s: float = 60.0

    @property
    def embedded(self) -> bool:
        return not self.url


def make_broker(settings: BrokerSettings) -> dramatiq.Broker:
    """The broker, also made dramatiq's global one (actors declared later bind to it)."""
    broker: dramatiq.Broker
    if settings.embedded:
        broker = StubBroker()
    else:
        beat_ms = int(settings.heartbeat_timeout_s * 1000)
        broker = RouterRedisBroker(
            url=settings.url,
            namespace=NAMESPACE,
            heartbeat_timeout=beat_ms,
            maintenance_every_s=max(0.5, settings.heartbeat_timeout_s / 4),
        )
    broker.add_middleware(CurrentMessage())
    for middleware in broker.middleware:
        if isinstance(middleware, TimeLimit):
            middleware.time_limit = TIME_LIMIT_MS
    dramatiq.set_broker(broker)
    return broker


def redis_client(broker: dramatiq.Broker) -> redis.Redis | None:
    """The broker's Redis connection (the router's own keys live in the same Redis)."""
    return broker.client if isinstance(broker, RedisBroker) else None


def start_workers(broker: dramatiq.Broker, threads: int) -> dramatiq.Worker:
    """A worker pool of ``threads`` threads consuming the router's queue in this process."""
    worker = dramatiq.Worker(
        broker, queues={QUEUE, dq_name(QUEUE)}, worker_threads=threads, worker_timeout=1000
    )
    worker.start()
    return worker


@dataclass(frozen=True, slots=True)
class QueueDepth:
    queued: int  # waiting for a worker now
    delayed: int  # waiting for a retry's backoff to pass
    in_flight: int  # taken by a worker, not yet acknowledged

    def __str__(self) -> str:
        return f"{self.queued} queued, {self.delayed} delayed, {self.in_flight} in flight"


def queue_depth(broker: dramatiq.Broker) -> QueueDepth:
    if isinstance(broker, RedisBroker):
        return redis_queue_depth(broker.client)
    if isinstance(broker, StubBroker):
        queues = broker.queues
        queued = queues[QUEUE].qsize() if QUEUE in queues else 0
        delayed_q = queues.get(dq_name(QUEUE))
        delayed = delayed_q.qsize() if delayed_q is not None else 0
        unfinished = queues[QUEUE].unfinished_tasks if QUEUE in queues else 0
        return QueueDepth(queued, delayed, max(0, unfinished - queued))
    return QueueDepth(0, 0, 0)


def redis_queue_depth(client: Any) -> QueueDepth:
    """From dramatiq's Redis layout: a list of ids per queue, a hash of every message not yet
    acked (queued or in flight)."""
    base = f"{NAMESPACE}:{QUEUE}"
    queued = int(client.llen(base))
    # A delayed message sits in the delay queue's hash until its backoff passes (a worker may
    # already hold it in memory, waiting).
    delayed = int(client.hlen(f"{NAMESPACE}:{dq_name(QUEUE)}.msgs"))
    held = int(client.hlen(f"{base}.msgs"))
    return QueueDepth(queued, delayed, max(0, held - queued))
