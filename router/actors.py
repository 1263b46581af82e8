"""The one actor: ``process_mailbox(mailbox_id)``, one incremental pass over one mailbox.

What a pass does is injected (:class:`MailboxProcessor`; the router wires
``router.processing.run_mailbox``), so the actor is the same in the embedded and the
distributed mode and the tests drive it with processing functions of their own. Around the
pass the actor:

1. waits (without counting a failure) while the CRM identity is paused after a 429, or while
   all of its job slots are taken (:mod:`router.limits`);
2. takes the mailbox's lock, renewed while the pass runs; if another worker holds it the job is
   retried a little later (a duplicate or redelivered message never runs beside the first);
3. runs the pass; records the run (:mod:`router.state`) *before* returning, because dramatiq
   acknowledges the message when the actor returns: a worker killed before that leaves the
   message unacknowledged and it is delivered again (the pass is idempotent);
4. on an error: records it and raises a retry with exponential backoff; after
   ``max_retries`` failures it records that it gave up and returns (the next scheduled run
   tries again); a 429 (an error with ``retry_after``) pauses the identity for every worker
   and retries after that wait, not counted as a failure; so does a per-request window
   too full to wait out under the lock (:class:`~router.limits.RequestWindowFull`, raised by
   :mod:`router.request_limits`), pausing the identity only for a CRM window.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import dramatiq
from dramatiq.middleware import CurrentMessage

from core.domain.mailbox_delivery import MailboxDelivery
from router.broker import QUEUE, TIME_LIMIT_MS
from router.limits import MAX_REQUEST_WAIT_S, Limiter, RequestWindowFull
from router.locks import Locks, renewed
from router.state import RouterState, RunOutcome

log = logging.getLogger(__name__)

ACTOR_NAME = "process_mailbox"


class MailboxProcessor(Protocol):
    """What the router needs from the mailbox processing (``router.processing`` with a
    ``RouterContext`` bound; tests bring their own)."""

    def list_mailboxes(self) -> Sequence[MailboxDelivery]: ...

    def run_mailbox(self, mailbox_id: str) -> RunOutcome: ...


@dataclass(frozen=True, slots=True)
class JobSettings:
    max_retries: int = 5  # failures before the job gives up (the next scheduled run retries)
    min_backoff_s: float = 15.0
    max_backoff_s: float = 3600.0
    lock_ttl_s: float = 60.0  # renewed every third while the pass runs
    busy_delay_s: float = 5.0  # retry delay while the mailbox or the identity is busy
    max_deferrals: int = 1000
    crm_identity: str = "service"  # whom the CRM counts the requests against
    pending_ttl_s: float = 900.0  # how long the scheduler waits on a job before another
    # Longest a request sleeps for a per-request window while its job holds the mailbox lock;
    # a longer wait ends the pass and defers the job (router.request_limits).
    max_request_wait_s: float = MAX_REQUEST_WAIT_S


@dataclass
class RouterRuntime:
    processor: MailboxProcessor
    locks: Locks
    state: RouterState
    limiter: Limiter
    settings: JobSettings = field(default_factory=JobSettings)


class Deferred(dramatiq.Retry):
    """Not now (mailbox busy, identity throttled): retried after ``delay`` ms, not a failure."""


class JobFailed(dramatiq.Retry):
    """The pass failed; retried after a backoff (logged by us, not as a dramatiq error)."""


class NotInstalled(RuntimeError):
    """A worker got a job before :func:`install` gave it a runtime."""


_runtime: RouterRuntime | None = None


def install(runtime: RouterRuntime) -> None:
    """Give this process's actor its processor, locks, state and limiter."""
    global _runtime
    _runtime = runtime


def current_limiter() -> Limiter | None:
    """This process's limiter, for the processing code's per-request windows
    (:meth:`router.limits.RedisLimiter.crm_request` and friends)."""
    return _runtime.limiter if _runtime is not None else None


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """What the per-request hooks (:mod:`router.request_limits`) ask before each request."""

    limiter: Limiter
    crm_identity: str
    max_wait_s: float


def current_policy() -> RequestPolicy | None:
    """This process's limiter with the CRM identity and the longest wait per request (None
    before :func:`install`: the requests are not limited)."""
    if _runtime is None:
        return None
    cfg = _runtime.settings
    # One sleep never outlasts a renewal period of the lock, whatever --lock-ttl says.
    max_wait = min(cfg.max_request_wait_s, cfg.lock_ttl_s / 3)
    return RequestPolicy(_runtime.limiter, cfg.crm_identity, max_wait)


def process_mailbox(mailbox_id: str) -> None:
    """The actor's body (declared on a broker by :func:`declare`)."""
    if _runtime is None:
        raise NotInstalled("router.actors.install() was not called in this process")
    run_job(_runtime, mailbox_id)


def _retry_when(retries: int, exception: BaseException) -> bool:
    """Our own retries carry their delay and count their failures; anything else (a bug, Redis
    gone while recording) gets a few plain retries."""
    return isinstance(exception, dramatiq.Retry) or retries < 3


def declare(broker: dramatiq.Broker) -> dramatiq.Actor[Any, Any]:
    """Declare the actor on ``broker`` (the same actor for the stub and the Redis broker)."""
    decorate = dramatiq.actor(
        actor_name=ACTOR_NAME,
        queue_name=QUEUE,
        broker=broker,
        retry_when=_retry_when,
        min_backoff=1000,
        max_backoff=60_000,
        time_limit=TIME_LIMIT_MS,
    )
    actor: dramatiq.Actor[Any, Any] = decorate(process_mailbox)
    return actor


def _options() -> dict[str, Any]:
    message = CurrentMessage.get_current_message()
    return message.options if message is not None else {}


def _message_id() -> str | None:
    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else None


def _defer(rt: RouterRuntime, mailbox_id: str, delay_s: float, why: str) -> Deferred:
    options = _options()
    options["tb_deferrals"] = deferrals = int(options.get("tb_deferrals", 0)) + 1
    if deferrals > rt.settings.max_deferrals:
        raise _give_up(rt, mailbox_id, f"deferred {deferrals - 1} times: {why}")
    _touch_pending(rt, mailbox_id, delay_s)
    return Deferred(why, delay=max(1, int(delay_s * 1000)))


def _touch_pending(rt: RouterRuntime, mailbox_id: str, wait_s: float) -> None:
    """A job that will run again after ``wait_s`` is still pending: keep the scheduler off."""
    message_id = _message_id()
    if message_id is not None:
        rt.state.touch_pending(mailbox_id, message_id, wait_s + rt.settings.pending_ttl_s)


class GaveUp(Exception):
    """Internal: the job recorded that it gave up and must end (acknowledged)."""


def _give_up(rt: RouterRuntime, mailbox_id: str, error: str) -> GaveUp:
    rt.state.record_error(mailbox_id, error, gave_up=True)
    _clear_pending(rt, mailbox_id)
    log.error("mailbox %s: gave up: %s", mailbox_id, error)
    return GaveUp(error)


def _clear_pending(rt: RouterRuntime, mailbox_id: str) -> None:
    message_id = _message_id()
    if message_id is not None:
        rt.state.clear_pending(mailbox_id, message_id)


def run_job(rt: RouterRuntime, mailbox_id: str) -> None:
    """One job: limits, lock, pass, record. See the module docstring for the order."""
    try:
        _run_admitted(rt, mailbox_id)
    except GaveUp:
        return


def _run_admitted(rt: RouterRuntime, mailbox_id: str) -> None:
    identity, cfg = rt.settings.crm_identity, rt.settings
    paused = rt.limiter.paused_for(identity)
    if paused > 0:
        raise _defer(rt, mailbox_id, paused, f"the CRM asked {identity} to wait")
    slot = rt.limiter.acquire_slot(identity, cfg.lock_ttl_s)
    if slot is None:
        raise _defer(rt, mailbox_id, cfg.busy_delay_s, f"all job slots of {identity} busy")
    try:
        token = rt.locks.acquire(f"mailbox:{mailbox_id}", cfg.lock_ttl_s)
        if token is None:
            raise _defer(rt, mailbox_id, cfg.busy_delay_s, "mailbox busy in another worker")
        try:
            _run_locked(rt, mailbox_id, token, slot)
        finally:
            rt.locks.release(f"mailbox:{mailbox_id}", token)
    finally:
        rt.limiter.release_slot(identity, slot)


def _run_locked(rt: RouterRuntime, mailbox_id: str, token: str, slot: str) -> None:
    cfg = rt.settings
    _touch_pending(rt, mailbox_id, 0.0)

    def renew_slot() -> None:
        rt.limiter.renew_slot(cfg.crm_identity, slot, cfg.lock_ttl_s)

    try:
        with renewed(rt.locks, f"mailbox:{mailbox_id}", token, cfg.lock_ttl_s, renew_slot) as lost:
            outcome = rt.processor.run_mailbox(mailbox_id)
    except Exception as exc:  # the processing's failure, whatever it is: recorded, retried
        raise _failed(rt, mailbox_id, exc) from exc
    if lost.is_set():
        log.warning("mailbox %s: the lock expired during the pass", mailbox_id)
    rt.state.record_run(outcome)  # durable before the actor returns and the message is acked
    _clear_pending(rt, mailbox_id)


def _failed(rt: RouterRuntime, mailbox_id: str, exc: Exception) -> Exception:
    if isinstance(exc, RequestWindowFull):  # a window to wait out without the lock
        if exc.identity is not None:
            rt.limiter.pause(exc.identity, exc.retry_after)
        return _defer(rt, mailbox_id, exc.retry_after, str(exc))
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > 0:
        rt.limiter.pause(rt.settings.crm_identity, float(retry_after))
        return _defer(rt, mailbox_id, float(retry_after), f"throttled: {exc}")
    error = f"{type(exc).__name__}: {exc}"[:500]
    options = _options()
    options["tb_failures"] = failures = int(options.get("tb_failures", 0)) + 1
    if failures > rt.settings.max_retries:
        return _give_up(rt, mailbox_id, f"failed {failures} times; last: {error}")
    rt.state.record_error(mailbox_id, error, gave_up=False)
    delay = backoff_s(rt.settings, failures)
    _touch_pending(rt, mailbox_id, delay)
    log.warning("mailbox %s: %s (retry %d in %.1f s)", mailbox_id, error, failures, delay)
    return JobFailed(error, delay=int(delay * 1000))


def backoff_s(settings: JobSettings, failures: int) -> float:
    """Exponential with jitter: min_backoff × 2^(failures−1), capped, times 0.5–1."""
    base = min(settings.max_backoff_s, settings.min_backoff_s * 2 ** (failures - 1))
    return float(base * random.uniform(0.5, 1.0))
