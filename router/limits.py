"""Staying under Microsoft's limits across every worker of the organisation.

The numbers (``reference/microsoft-365.md``):

- **Dataverse service protection**, per user (the identity the requests are made as: the
  router's application user), per web server, over a 5-minute sliding window: 6,000 requests,
  1,200 s of combined execution time, 52 concurrent requests. Over a limit: 429 with
  ``Retry-After``.
- **Microsoft Graph (Outlook resources)**, per app per mailbox: 10,000 requests per 10 minutes,
  4 concurrent requests; Exchange Online sends at most 30 messages per minute per mailbox.

What the router enforces, as :class:`ServiceLimits` (defaults keep 10% headroom for the
admin's other tools using the same application user):

- concurrent *jobs* per CRM identity: ``crm_concurrent_jobs`` (default 40 < 52: a pass sends
  its CRM requests one at a time, so jobs in flight bound requests in flight);
- one job per mailbox at a time (the per-mailbox lock, :mod:`router.locks`), well under
  Graph's 4 concurrent requests per mailbox;
- after a 429 seen by *any* worker, no worker starts a job for that identity until its
  ``Retry-After`` has passed (:meth:`Limiter.pause`), then the job is retried;
- per-request sliding windows asked before each request the router's CRM client and Graph
  mailboxes send (:mod:`router.request_limits`, a hook on their HTTP clients):
  :meth:`Limiter.crm_request`: 5,400 per 5 minutes; :meth:`Limiter.graph_request`: 9,000 per
  10 minutes per mailbox; :meth:`Limiter.graph_send`: 27 per minute per mailbox (``sendMail``,
  counted besides its request). Each answers 0 (go) or the seconds to wait; a wait longer
  than :data:`MAX_REQUEST_WAIT_S` defers the job (:class:`RequestWindowFull`).

Leases (not counters) back the concurrency limit, so a worker killed mid-job frees its slot
when the lease expires instead of leaking it. Redis version for the distributed mode, an
in-process one for the embedded mode.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from router import KEY_PREFIX
from router.locks import new_token

#: Longest one request sleeps for a window (or a pause) while its job holds the mailbox lock: a
#: third of the lock's default TTL, one renewal period. A longer wait ends the pass and defers
#: the job (:class:`RequestWindowFull`) rather than sitting on the lock and a job slot.
MAX_REQUEST_WAIT_S = 20.0


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    crm_concurrent_jobs: int = 40
    crm_requests: int = 5_400
    crm_window_s: float = 300.0
    graph_requests: int = 9_000
    graph_window_s: float = 600.0
    graph_sends: int = 27
    graph_send_window_s: float = 60.0


# A semaphore of leases: members are tokens scored by their expiry (ms).
_SLOT = """
local now = tonumber(ARGV[1])
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if redis.call('zcard', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('zadd', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('pexpire', KEYS[1], ARGV[3])
  return 1
end
return 0
"""
# A sliding log: members are unique ids scored by when they were admitted (ms). Answers 0 when
# admitted, else the milliseconds until the oldest entry leaves the window.
_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('zremrangebyscore', KEYS[1], '-inf', now - window)
if redis.call('zcard', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('zadd', KEYS[1], now, ARGV[4])
  redis.call('pexpire', KEYS[1], window)
  return 0
end
local oldest = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class RequestWindowFull(Exception):
    """A request would wait longer than a job may sleep while it holds its mailbox's lock (a
    full window, or the identity paused after a 429): the pass ends here and its job is
    deferred by ``retry_after`` seconds — not a failure. ``identity``: the CRM identity to pause
    for every worker (a CRM window), or None (one mailbox's Graph window: only its job waits).
    Deliberately not a ``CrmError``/``MailError``: no step or outbox may swallow it."""

    def __init__(self, what: str, retry_after: float, identity: str | None = None) -> None:
        super().__init__(f"{what}: the window admits the next request in {retry_after:.1f} s")
        self.retry_after = retry_after
        self.identity = identity


class Limiter(Protocol):
    limits: ServiceLimits

    def acquire_slot(self, identity: str, ttl_s: float) -> str | None: ...

    def renew_slot(self, identity: str, token: str, ttl_s: float) -> None: ...

    def release_slot(self, identity: str, token: str) -> None: ...

    def pause(self, identity: str, seconds: float) -> None: ...

    def paused_for(self, identity: str) -> float: ...

    def take(self, key: str, limit: int, window_s: float) -> float: ...

    def crm_request(self, identity: str) -> float: ...

    def graph_request(self, mailbox: str) -> float: ...

    def graph_send(self, mailbox: str) -> float: ...


class _Requests:
    """The per-request windows, on top of :meth:`take`."""

    limits: ServiceLimits

    def take(self, key: str, limit: int, window_s: float) -> float:
        raise NotImplementedError

    def crm_request(self, identity: str) -> float:
        return self.take(f"crm:{identity}", self.limits.crm_requests, self.limits.crm_window_s)

    def graph_request(self, mailbox: str) -> float:
        lim = self.limits
        return self.take(f"graph:{mailbox}", lim.graph_requests, lim.graph_window_s)

    def graph_send(self, mailbox: str) -> float:
        lim = self.limits
        return self.take(f"send:{mailbox}", lim.graph_sends, lim.graph_send_window_s)


class RedisLimiter(_Requests):
    def __init__(
        self, client: Any, limits: ServiceLimits | None = None, prefix: str = KEY_PREFIX
    ) -> None:
        self.client = client
        self.limits = limits or ServiceLimits()
        self.prefix = prefix
        self._slot = client.register_script(_SLOT)
        self._window = client.register_script(_WINDOW)

    def _now_ms(self) -> int:
        """Redis's clock, not ours: workers on several machines agree on it."""
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def acquire_slot(self, identity: str, ttl_s: float) -> str | None:
        token = new_token()
        args = [self._now_ms(), self.limits.crm_concurrent_jobs, int(ttl_s * 1000), token]
        ok = self._slot(keys=[f"{self.prefix}:slots:{identity}"], args=args)
        return token if ok else None

    def renew_slot(self, identity: str, token: str, ttl_s: float) -> None:
        key = f"{self.prefix}:slots:{identity}"
        self.client.zadd(key, {token: self._now_ms() + int(ttl_s * 1000)}, xx=True)

    def release_slot(self, identity: str, token: str) -> None:
        self.client.zrem(f"{self.prefix}:slots:{identity}", token)

    def pause(self, identity: str, seconds: float) -> None:
        ms = max(1, int(seconds * 1000))
        key = f"{self.prefix}:paused:{identity}"
        # Keep the longest pause any worker was asked for.
        if self.client.pttl(key) < ms:
            self.client.set(key, "1", px=ms)

    def paused_for(self, identity: str) -> float:
        ms = int(self.client.pttl(f"{self.prefix}:paused:{identity}"))
        return ms / 1000 if ms > 0 else 0.0

    def take(self, key: str, limit: int, window_s: float) -> float:
        args = [self._now_ms(), int(window_s * 1000), limit, new_token()]
        waited = self._window(keys=[f"{self.prefix}:window:{key}"], args=args)
        return int(waited) / 1000


class LocalLimiter(_Requests):
    """The same limits in one process (embedded mode)."""

    def __init__(self, limits: ServiceLimits | None = None) -> None:
        self.limits = limits or ServiceLimits()
        self._mutex = threading.Lock()
        self._slots: dict[str, dict[str, float]] = {}
        self._paused: dict[str, float] = {}
        self._windows: dict[str, list[float]] = {}

    def acquire_slot(self, identity: str, ttl_s: float) -> str | None:
        now = time.monotonic()
        with self._mutex:
            slots = self._slots.setdefault(identity, {})
            for token in [t for t, until in slots.items() if until <= now]:
                del slots[token]
            if len(slots) >= self.limits.crm_concurrent_jobs:
                return None
            token = new_token()
            slots[token] = now + ttl_s
            return token

    def renew_slot(self, identity: str, token: str, ttl_s: float) -> None:
        with self._mutex:
            slots = self._slots.get(identity, {})
            if token in slots:
                slots[token] = time.monotonic() + ttl_s

    def release_slot(self, identity: str, token: str) -> None:
        with self._mutex:
            self._slots.get(identity, {}).pop(token, None)

    def pause(self, identity: str, seconds: float) -> None:
        with self._mutex:
            until = time.monotonic() + seconds
            self._paused[identity] = max(until, self._paused.get(identity, 0.0))

    def paused_for(self, identity: str) -> float:
        with self._mutex:
            return max(0.0, self._paused.get(identity, 0.0) - time.monotonic())

    def take(self, key: str, limit: int, window_s: float) -> float:
        now = time.monotonic()
        with self._mutex:
            log = [t for t in self._windows.get(key, []) if t > now - window_s]
            self._windows[key] = log
            if len(log) < limit:
                log.append(now)
                return 0.0
            return max(0.001, log[0] + window_s - now)
