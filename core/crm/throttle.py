"""Being a good citizen under Dataverse's service protection limits (``reference/
microsoft-365.md``): after a 429 nothing new goes to that CRM until its Retry-After has passed;
concurrency and ``$batch`` sizes start small, grow after successes and halve after a 429
(AIMD); interactive requests go before background ones; and the state is there for the status
bar and ``trackbox diagnose`` to read without touching the network.

One :class:`Throttle` per :class:`~core.crm.client.CrmClient`, shared by every thread using
it. Every request passes its *gate* (:meth:`Throttle.slot`):

- While the gate is closed (a Retry-After running) a request waits. An *interactive* request
  (``with crm.interactive():`` — Track now, the regarding picker's search) waits at most
  ``interactive_wait`` seconds and otherwise fails at once with :class:`CrmThrottled` carrying
  ``retry_after``, nothing sent; a background one waits up to ``background_wait``.
- At most ``concurrency`` requests are in flight; when a slot frees or the gate opens, waiting
  interactive requests are served first, then background ones, each in arrival order — a
  background sync can never starve the user. The concurrency starts at 2, grows by one per
  round of successes, halves after a 429, and does not grow again until the gate has been
  open as long as the CRM's last wait: a request in flight when another one is throttled
  arrives inside the Retry-After window, so near the limit fewer at once is better.

The Dataverse error codes are recognised (:data:`THROTTLE_CODES`), whatever the status.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from core.crm.errors import CrmUnavailable

#: Dataverse's service protection error codes (hex, as the Web API sends them, and decimal,
#: as the SDK does) → the limit they name.
THROTTLE_CODES: dict[str, str] = {
    "0x80072322": "requests",  # -2147015902: number of requests
    "0x80072321": "execution",  # -2147015903: combined execution time
    "0x80072326": "concurrent",  # -2147015898: concurrent requests
    "-2147015902": "requests",
    "-2147015903": "execution",
    "-2147015898": "concurrent",
}
#: The wait when a 429 says nothing (doubles for each one in a row, up to the cap).
DEFAULT_RETRY_AFTER_S = 1.0
MAX_DEFAULT_RETRY_AFTER_S = 60.0


def throttle_limit(code: str) -> str | None:
    """Which limit a CRM error code names (``requests``, ``execution``, ``concurrent``), or
    None when it is not a service protection code."""
    return THROTTLE_CODES.get(code.strip().lower())


class CrmThrottled(CrmUnavailable):
    """The CRM asked to slow down (429, or a service protection code): nothing was run, try
    again after ``retry_after`` seconds (None: the CRM did not say; the client fills in the
    wait it applied). ``code`` is the CRM's error code, ``limit`` which
    limit (``requests``, ``execution``, ``concurrent``, ``""`` if the CRM did not say);
    ``sent`` is False when the gate refused the request before sending it (an interactive
    request that would have waited longer than its bound)."""

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None,
        code: str = "",
        sent: bool = True,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, method=method, url=url, status=status)
        self.code = code
        self.limit = throttle_limit(code) or ""
        self.sent = sent


class Aimd:
    """Additive increase, multiplicative decrease: ``value`` starts at ``start``, grows by
    ``step`` after a round of successes (``value`` of them in a row; with ``per_round=False``
    after each one), halves after a throttle, and stays within ``[floor, ceiling]``. Not
    thread-safe: its owner locks."""

    def __init__(
        self,
        start: int,
        *,
        floor: int = 1,
        ceiling: int,
        step: int = 1,
        per_round: bool = True,
    ) -> None:
        if not 1 <= floor <= start <= ceiling:
            raise ValueError(f"need 1 <= floor <= start <= ceiling, not {floor}/{start}/{ceiling}")
        self.floor, self.ceiling, self.step = floor, ceiling, step
        self.per_round = per_round
        self.value = start
        self._successes = 0

    def success(self) -> None:
        self._successes += 1
        if not self.per_round or self._successes >= self.value:
            self._successes = 0
            self.value = min(self.ceiling, self.value + self.step)

    def throttled(self) -> None:
        self._successes = 0
        self.value = max(self.floor, self.value // 2)


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """What the GUI and ``trackbox diagnose`` show. ``throttled``: the gate is closed now,
    until ``until`` (UTC); ``last_retry_after``: the last wait the CRM asked for (seconds);
    ``throttle_count``: 429s seen since the client was made; ``last_throttled_at`` (UTC);
    ``concurrency`` and ``batch_size``: the current AIMD values; ``waiting``: requests
    waiting at the gate."""

    throttled: bool = False
    until: datetime | None = None
    last_retry_after: float | None = None
    throttle_count: int = 0
    last_throttled_at: datetime | None = None
    concurrency: int = 1
    batch_size: int = 1
    waiting: int = 0


class Throttle:
    """The gate of one CRM client (see the module docstring). ``clock`` is monotonic time,
    ``wall`` the time shown to people (both in seconds)."""

    def __init__(
        self,
        *,
        interactive_wait: float = 2.0,
        background_wait: float = 60.0,
        concurrency: Aimd | None = None,
        batch: Aimd | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.interactive_wait = interactive_wait
        self.background_wait = background_wait
        self.concurrency = concurrency or Aimd(2, ceiling=16)
        #: ``$batch`` size: Microsoft advises starting at 10 (Dataverse takes up to 1,000).
        self.batch = batch or Aimd(10, ceiling=200, step=10, per_round=False)
        self.clock = clock
        self.wall = wall
        self._cond = threading.Condition()
        self._local = threading.local()
        self._until = 0.0  # on ``clock``
        self._calm_until = 0.0  # no growing before this: the CRM was throttling just now
        self._until_wall = 0.0
        self._in_flight = 0
        self._waiting: list[tuple[int, int]] = []  # heap of (0 interactive | 1 background, seq)
        self._tickets = itertools.count()
        self._count = 0
        self._in_a_row = 0
        self._last_retry_after: float | None = None
        self._last_at: float | None = None

    # -- marking requests interactive --------------------------------------------------------

    @contextlib.contextmanager
    def interactive(self, max_wait: float | None = None) -> Iterator[None]:
        """Requests this thread sends inside the block are interactive: served first, and
        failing fast (:class:`CrmThrottled`, ``sent=False``) rather than waiting longer than
        ``max_wait`` (default ``interactive_wait``) for a closed gate."""
        previous = getattr(self._local, "max_wait", None)
        self._local.max_wait = self.interactive_wait if max_wait is None else max_wait
        try:
            yield
        finally:
            self._local.max_wait = previous

    @property
    def is_interactive(self) -> bool:
        """Whether this thread is inside :meth:`interactive`."""
        return getattr(self._local, "max_wait", None) is not None

    # -- the gate ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def slot(self, method: str = "", url: str = "") -> Iterator[None]:
        """Wait for the gate and a free slot, hold the slot for the block. Raises
        :class:`CrmThrottled` (``sent=False``) when the gate stays closed longer than this
        request may wait."""
        self.acquire(method, url)
        try:
            yield
        finally:
            self.release()

    def acquire(self, method: str = "", url: str = "") -> None:
        max_wait: float | None = getattr(self._local, "max_wait", None)
        interactive = max_wait is not None
        bound = max_wait if max_wait is not None else self.background_wait
        ticket = (0 if interactive else 1, next(self._tickets))
        with self._cond:
            heapq.heappush(self._waiting, ticket)
            granted = False
            try:
                while True:
                    closed_for = self._until - self.clock()
                    if closed_for > 0:
                        if closed_for > bound:
                            raise CrmThrottled(
                                f"the CRM asked to wait {closed_for:.0f} s before the next request",
                                retry_after=closed_for,
                                sent=False,
                                method=method or None,
                                url=url or None,
                            )
                        self._cond.wait(closed_for)
                        continue
                    if self._waiting[0] == ticket and self._in_flight < self.concurrency.value:
                        heapq.heappop(self._waiting)
                        self._in_flight += 1
                        granted = True
                        self._cond.notify_all()  # the next in line may fit too
                        return
                    self._cond.wait()
            finally:
                if not granted:
                    self._waiting.remove(ticket)
                    heapq.heapify(self._waiting)
                    self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    # -- what the CRM answered -----------------------------------------------------------------

    def succeeded(self) -> None:
        """A request was answered without throttling: concurrency may grow — but not during
        the calm after a throttle (as long again as the last wait), so that work resumes at
        the halved pace before it ramps up."""
        with self._cond:
            self._in_a_row = 0
            if self.clock() >= self._calm_until:
                self.concurrency.success()
                self._cond.notify_all()

    def throttled(self, retry_after: float | None) -> float:
        """A 429: close the gate for ``retry_after`` seconds (an unsaid wait doubles with each
        429 in a row), halve the concurrency. Returns the wait applied."""
        with self._cond:
            if retry_after is None:
                wait = min(MAX_DEFAULT_RETRY_AFTER_S, DEFAULT_RETRY_AFTER_S * 2.0**self._in_a_row)
            else:
                wait = max(0.0, retry_after)
            self._in_a_row += 1
            self._count += 1
            now = self.clock()
            if now + wait > self._until:
                self._until = now + wait
                self._until_wall = self.wall() + wait
            self._calm_until = max(self._calm_until, now + 2 * wait)
            self._last_retry_after = wait
            self._last_at = self.wall()
            self.concurrency.throttled()
            self._cond.notify_all()
            return wait

    def batch_size(self) -> int:
        with self._cond:
            return self.batch.value

    def batch_answered(self) -> None:
        with self._cond:
            self.batch.success()

    def batch_throttled(self) -> None:
        with self._cond:
            self.batch.throttled()

    # -- for people ------------------------------------------------------------------------------

    def closed_for(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        with self._cond:
            return max(0.0, self._until - self.clock())

    def state(self) -> ThrottleState:
        """The state now, from memory only (the lock is held for a few reads: safe on the GUI
        thread)."""
        with self._cond:
            throttled = self._until > self.clock()
            return ThrottleState(
                throttled=throttled,
                until=_utc(self._until_wall) if throttled else None,
                last_retry_after=self._last_retry_after,
                throttle_count=self._count,
                last_throttled_at=_utc(self._last_at) if self._last_at is not None else None,
                concurrency=self.concurrency.value,
                batch_size=self.batch.value,
                waiting=len(self._waiting),
            )


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


__all__ = [
    "THROTTLE_CODES",
    "Aimd",
    "CrmThrottled",
    "Throttle",
    "ThrottleState",
    "throttle_limit",
]
