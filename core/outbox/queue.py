"""The durable queue of CRM operations (the ``outbox`` table of the store).

Every user action that changes the CRM (track, untrack, set regarding, send a Pending Send
mail, create a record, save per-user settings) becomes one row here *before* anything touches
the network, so that work done offline, or interrupted by a crash, is carried out later — once.
Each row holds one typed operation (``core.outbox.kinds``) as versioned JSON; one that this
version cannot read is parked with the reason, never dropped.

Exactly once, how:

- The CRM side of each operation is idempotent, so replaying an operation whose effect already
  happened is harmless: promotion is keyed by the MIME Message-ID (``DeliverPromoteEmail``
  returns the existing activity), untracking an activity that no longer exists counts as done
  (404 → done), set-regarding and settings are PATCHes, records are created by upsert on a
  GUID chosen when the operation was queued.
- The local side (tracked state, correlation index) is applied in the *same* SQLite
  transaction that marks the operation done. A crash between the CRM's answer and that commit
  therefore replays the (idempotent) CRM call and applies the local effect once.
- Operations on the same message run in queue order: an operation waits while an earlier one
  on its Message-ID is queued or parked (vdirsyncer-style "decide, then apply" per item).

Failures: every transient one backs off exponentially with jitter, capped, per operation. If
the CRM cannot be reached at all (connection refused, DNS, connect timeout: a plain
``CrmUnavailable``) the replay stops (``stopped="offline"``: the next operations would fail the
same way). If one request failed (a 5xx, a reset, an unreadable or ambiguous answer:
``CrmRequestFailed``) only that operation is deferred and the replay goes on with the others;
operations later on the same message wait for it (per-message order). Such an operation due
again within the replay's retry budget (``max_transient_wait``) is retried in the same replay,
after its backoff; ``max_failures_in_a_row`` failed requests with no answer between them mean
the CRM is effectively down: the replay stops as offline. A permanent failure parks the
operation with the CRM's own message for the user to retry or discard; an authentication error
stops the replay without counting an attempt.

Throttling (the CRM's service protection limits, ``core.crm.throttle``) is not a failure: the
CRM ran nothing. The operation is *deferred* until its Retry-After has passed, keeping its
attempt count, and the replay waits for the window (cancel-aware) and goes on in queue order —
unless the wait is longer than ``max_throttle_wait``: then it stops (``stopped="throttled"``)
with the operation due when the CRM will take it, for the next replay.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from core.crm import CrmAuthError, CrmPermanentError, CrmUnavailable
from core.crm.errors import CrmRequestFailed
from core.crm.throttle import CrmThrottled
from core.mail import MailAuthError, MailError, MailUnavailable
from core.outbox.kinds import (
    MAIL_KINDS,
    MailKind,
    OperationPayload,
    OpKind,
    PayloadError,
    UnknownKind,
    Unreadable,
    read_mail_action,
)
from core.outbox.results import Failure, OpResult
from core.outbox.stored import from_json
from core.store import Store
from core.store.outbox import OutboxRows, Row

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 15 * 60.0
#: How long one replay waits for the CRM's Retry-After before it stops and leaves the rest to
#: the next replay.
MAX_THROTTLE_WAIT_S = 60.0
#: How long, in all, one replay waits to retry operations that one failed request deferred
#: (their backoff: about 1, 2, 4, 8 s), before it leaves them to the next replay.
MAX_TRANSIENT_WAIT_S = 20.0
#: Failed requests in a row (no answer between them) after which the CRM counts as down.
MAX_FAILURES_IN_A_ROW = 8


class OpState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"  # only ever in memory: on disk a running operation is still queued
    PARKED = "parked"
    DONE = "done"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a multi-step operation got: checkpointed into the row's result while it runs,
    so that a re-run after a crash skips the steps already taken (a Pending Send mail the SMTP
    server accepted is never handed to it again)."""

    smtp_sent: bool = False

    @classmethod
    def from_result(cls, result: OpResult | None) -> Progress:
        return cls(smtp_sent=result is not None and result.smtp_sent)


@dataclass(frozen=True, slots=True)
class Operation:
    """One queued operation as stored. ``kind`` is an ``UnknownKind`` only for a kind this
    version does not know; ``payload`` is then (as for any payload it cannot read) an
    :class:`~core.outbox.kinds.Unreadable`, which the replay parks."""

    id: int
    kind: OpKind | MailKind | UnknownKind
    key: str
    message_id: str | None
    payload: OperationPayload | Unreadable
    state: OpState
    attempts: int
    next_attempt_at: float
    last_error_code: str | None
    last_error: str | None
    result: OpResult | None
    created: datetime
    updated: datetime

    @property
    def progress(self) -> Progress:
        """The checkpoint of an earlier, interrupted run (nothing done yet if none)."""
        return Progress.from_result(self.result)


class PermanentFailure(Exception):
    """Raised by an applier for a failure that retrying cannot fix (parks the operation)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class TransientFailure(Exception):
    """Raised by an applier for a failure worth retrying later (e.g. the mailbox is away)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class ReplayResult:
    """What one replay did. ``stopped`` says why it stopped early (``None``: queue drained of
    everything that was ready)."""

    done: list[int] = field(default_factory=list)
    parked: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    stopped: str | None = None  # "offline" | "auth" | "cancelled" | "throttled"
    error: str | None = None
    #: The refused sign-in that stopped the replay (``stopped == "auth"``), for its type.
    auth_error: CrmAuthError | MailAuthError | None = None
    mail_offline: bool = False
    #: Operations the CRM throttled (each deferral counted; they are in ``deferred`` too).
    throttled: int = 0
    #: When the CRM takes requests again (``Outbox.clock`` time), after the last throttle.
    resume_at: float | None = None
    #: Operations deferred because one request failed (a 5xx, a reset, an unreadable
    #: answer), each deferral counted; they are in ``deferred`` too (an operation retried
    #: within the replay may be listed more than once, and be in ``done`` as well).
    failed_requests: int = 0

    @property
    def online(self) -> bool:
        return self.stopped not in ("offline", "auth")


#: ``checkpoint(progress)`` durably records how far a multi-step operation got (``op.progress``
#: on a re-run).
Checkpoint = Callable[[Progress], None]
#: ``apply(op, checkpoint) -> result``: performs the CRM side.
Applier = Callable[[Operation, Checkpoint], OpResult]
#: ``commit(op, result)``: the local effect, run inside the transaction that marks it done.
Committer = Callable[[Operation, OpResult], None]
#: ``on_parked(op, failure)``: the local effect of parking, in the parking transaction.
OnParked = Callable[[Operation, Failure], None]
#: ``kinds(kind)``: whether a replay pass runs operations of this (stored) kind.
KindFilter = Callable[[str], bool]
#: Ready rows a filtered pass looks through for its kinds.
_SCAN_LIMIT = 100_000


def mail_actions_only(kind: str) -> bool:
    """The mail actions' pass (:data:`core.outbox.kinds.MAIL_KINDS`)."""
    return kind in MAIL_KINDS


def crm_operations_only(kind: str) -> bool:
    """The CRM pass: every kind but the mail actions."""
    return kind not in MAIL_KINDS


def _row(values: Row) -> Operation:
    (id_, kind, key, mid, payload, state, attempts, nxt, code, msg, result, created, updated) = (
        values
    )
    return Operation(
        id=id_,
        kind=_kind(kind),
        key=key,
        message_id=mid,
        payload=_read(kind, payload),
        state=OpState(state),
        attempts=attempts,
        next_attempt_at=nxt,
        last_error_code=code,
        last_error=msg,
        result=OpResult.from_json(result),
        created=datetime.fromisoformat(created),
        updated=datetime.fromisoformat(updated),
    )


_KNOWN_KINDS = frozenset(k.value for k in OpKind)


def _kind(kind: str) -> OpKind | MailKind | UnknownKind:
    if kind in _KNOWN_KINDS:
        return OpKind(kind)
    return MailKind(kind) if kind in MAIL_KINDS else UnknownKind(kind)


def _read(kind: str, text: str) -> OperationPayload | Unreadable:
    """The typed payload, or its stand-in when unreadable: listing the queue never fails,
    and the replay parks what it cannot run."""
    try:
        if kind in MAIL_KINDS:
            return read_mail_action(MailKind(kind), text)
        return from_json(kind, text)
    except PayloadError as exc:
        log.debug("outbox payload unreadable kind=%s: %s", kind, exc.problem)
        return Unreadable(str(kind), exc.problem)


@dataclass
class OutboxStatus:
    """Shared between the threads of one workspace: which operation is running now."""

    running: int | None = None


def backoff_delay(
    attempts: int,
    *,
    base: float = BACKOFF_BASE_S,
    cap: float = BACKOFF_CAP_S,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with "equal jitter": between half and all of ``base * 2**(n-1)``,
    never more than ``cap``, so many clients do not retry in lockstep."""
    exponent = min(max(0, attempts - 1), 60)  # no float overflow after years of retries
    ceiling = min(cap, base * float(2**exponent))
    return ceiling / 2 + (rng or random).random() * ceiling / 2


class Outbox:
    """The queue on one store connection (one thread). See the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        status: OutboxStatus | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.rows = OutboxRows(store)
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.status = status or OutboxStatus()

    @property
    def running(self) -> int | None:
        return self.status.running

    @running.setter
    def running(self, op_id: int | None) -> None:
        self.status.running = op_id

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(self, payload: OperationPayload) -> int:
        """Queue an operation under its key and Message-ID (joins the caller's transaction, if
        any). An identical operation still queued as the last one for the same key is not
        queued twice (compared as operations, so one stored in an older format counts)."""
        kind, key, message_id = payload.kind, payload.key, payload.message_id
        text = payload.to_json()
        now = _now()
        with self.store.transaction():
            last = self.rows.last_open_for_key(key)
            same = last and last[1] == kind.value and last[3] == "queued"
            if last and same and (last[2] == text or _read(last[1], last[2]) == payload):
                return int(last[0])
            op_id = self.rows.insert(kind.value, key, message_id, text, now)
        log.info("outbox op=%d kind=%s queued message=%s", op_id, kind, message_id or "-")
        return op_id

    # -- queries ----------------------------------------------------------------------------

    def get(self, op_id: int) -> Operation | None:
        row = self.rows.one(op_id)
        return self._with_running(_row(row)) if row else None

    def pending(self) -> list[Operation]:
        """Queued and parked operations, oldest first (what the queue view lists)."""
        return [self._with_running(_row(r)) for r in self.rows.open_rows()]

    def counts(self) -> dict[str, int]:
        return self.rows.counts()

    def keys_of(self, kind: OpKind) -> set[str]:
        """The idempotency keys of every operation of ``kind`` ever queued (payloads, which
        may hold whole messages, are not read)."""
        return self.rows.keys_of(kind.value)

    def pending_for(self, message_id: str) -> list[Operation]:
        return [_row(r) for r in self.rows.open_rows_for(message_id)]

    def ready(self, limit: int = 100, kinds: KindFilter | None = None) -> list[Operation]:
        """Queued operations due now whose earlier operations on the same message are done;
        with ``kinds``, only those whose kind it accepts (the others' payloads unread)."""
        if kinds is None:
            return [_row(r) for r in self.rows.ready_rows(self.clock(), limit)]
        out: list[Operation] = []
        for r in self.rows.ready_rows(self.clock(), _SCAN_LIMIT):
            if kinds(r[1]):
                out.append(_row(r))
                if len(out) >= limit:
                    break
        return out

    def _with_running(self, op: Operation) -> Operation:
        if op.id == self.running and op.state is OpState.QUEUED:
            return _replace_state(op, OpState.RUNNING)
        return op

    # -- user actions -----------------------------------------------------------------------

    def retry(self, op_id: int) -> Operation:
        """Queue a parked (or backing-off) operation again, to run at the next replay."""
        if not self.rows.requeue(op_id, _now()):
            raise LookupError(f"no queued or parked operation {op_id}")
        op = self.get(op_id)
        assert op is not None
        return op

    def discard(
        self, op_id: int, on_discard: Callable[[Operation], None] | None = None
    ) -> Operation:
        """Give up an operation; ``on_discard`` undoes its local *pending* look in the same
        transaction."""
        with self.store.transaction():
            op = self.get(op_id)
            if op is None or op.state not in (OpState.QUEUED, OpState.PARKED, OpState.RUNNING):
                raise LookupError(f"no queued or parked operation {op_id}")
            self.rows.set_discarded(op_id, _now())
            if on_discard:
                on_discard(op)
        return op

    def reset_backoff(self) -> int:
        """Make every queued operation due now (the CRM is back: no reason to wait)."""
        return self.rows.make_all_due()

    def replay_offline_now(self) -> int:
        """The CRM answered: make due now every queued operation held back only because the
        CRM could not be reached (its last error of an unreachable kind, see
        :data:`OFFLINE_ERRORS`). Read from the rows, so it works in any process, whoever
        deferred them. Throttled operations keep the CRM's Retry-After; the attempt counts
        stay. Returns how many were made due."""
        now, due = self.clock(), 0
        for row in list(self.rows.open_rows()):  # raw rows: payloads (whole messages) stay unread
            op_id, state, attempts, next_at, code, message = (row[i] for i in (0, 5, 6, 7, 8, 9))
            if state != OpState.QUEUED.value or next_at <= now or not _offline_code(code):
                continue
            self.rows.defer(op_id, attempts, 0.0, code, message or "", _now())
            due += 1
        if due:
            log.info("outbox crm answered: %d operation(s) deferred offline are due now", due)
        return due

    # -- replay -----------------------------------------------------------------------------

    def replay(
        self,
        apply: Applier,
        commit: Committer | None = None,
        *,
        on_parked: OnParked | None = None,
        cancel: threading.Event | None = None,
        max_ops: int | None = None,
        max_throttle_wait: float = MAX_THROTTLE_WAIT_S,
        max_transient_wait: float = MAX_TRANSIENT_WAIT_S,
        max_failures_in_a_row: int = MAX_FAILURES_IN_A_ROW,
        kinds: KindFilter | None = None,
    ) -> ReplayResult:
        """Run ready operations in order until none is ready, the CRM goes away, or
        ``cancel`` is set. ``commit`` applies the local effect atomically with "done";
        ``on_parked(op, failure)`` marks the local copy failed in the parking transaction.
        A throttled operation is deferred and the replay waits for the CRM, up to
        ``max_throttle_wait`` seconds (0: stop at once, as the user's own actions should).
        An operation one failed request deferred is retried in this replay once its backoff
        has passed, waiting ``max_transient_wait`` seconds in all (0: never waits);
        ``max_failures_in_a_row`` such failures with no answer between them stop the replay
        as offline. ``kinds`` limits the pass to the operations of the kinds it accepts (the
        mail actions run in a pass of their own, see ``core.workspace.replay``).
        """
        result = ReplayResult()
        run = _Pass(budget=max_transient_wait)
        while True:
            batch = [op for op in self.ready(kinds=kinds) if op.id not in run.seen]
            if not batch:
                if run.released or not self._await_retries(run, cancel):
                    result.stopped = "cancelled" if run.cancelled else None
                    return result
                continue
            run.released = False
            for op in batch:
                if cancel is not None and cancel.is_set():
                    result.stopped = "cancelled"
                    return result
                if max_ops is not None and len(run.seen) >= max_ops:
                    return result
                run.seen.add(op.id)
                outcome = self._run_one(op, apply, commit, on_parked, result)
                if outcome == "failed":
                    run.failed.add(op.id)
                    run.in_a_row += 1
                    if run.in_a_row < max_failures_in_a_row:
                        continue
                    log.info("outbox %d failed requests in a row: the CRM is down", run.in_a_row)
                    outcome = "offline"
                elif outcome is None:
                    run.in_a_row = 0  # the CRM answered
                if outcome == "throttled":
                    run.seen.discard(op.id)  # it runs again once the CRM takes requests
                    stop = self._wait_out(result, cancel, max_throttle_wait)
                    if stop is not None:
                        result.stopped = stop
                        return result
                    break  # the queue again, in order: the deferred operation is due first
                if outcome is not None and outcome != "waiting":
                    result.stopped = outcome
                    return result

    def _await_retries(self, run: _Pass, cancel: threading.Event | None) -> bool:
        """Nothing else is ready: wait (within the pass's budget) until the first operation a
        failed request deferred in this pass is due again, and let it run again. False when
        there is none to wait for (or the wait was cancelled: ``run.cancelled``)."""
        dues = [
            op.next_attempt_at
            for op in map(self.get, run.failed)
            if op is not None and op.state is OpState.QUEUED
        ]
        if not dues or min(dues) - self.clock() > run.budget:
            return False
        waited = max(0.0, min(dues) - self.clock())
        run.budget -= waited
        if self._pause(waited, cancel):
            run.cancelled = True
            return False
        run.seen -= run.failed  # those due now are ready again; the others stay in ``failed``
        run.released = True  # an empty queue right after this: nothing more to wait for
        return True

    def _pause(self, seconds: float, cancel: threading.Event | None) -> bool:
        """Wait ``seconds`` (cancel-aware); True when cancelled."""
        if cancel is not None:
            return cancel.wait(seconds)
        self.sleep(seconds)
        return False

    def _wait_out(
        self, result: ReplayResult, cancel: threading.Event | None, max_wait: float
    ) -> str | None:
        """Wait until the throttled operation is due; None to go on, else why to stop."""
        wait = max(0.0, (result.resume_at or 0.0) - self.clock())
        if wait > max_wait:
            log.info("outbox throttled: the CRM takes requests again in %.0fs", wait)
            return "throttled"
        return "cancelled" if self._pause(wait, cancel) else None

    def _run_one(
        self,
        op: Operation,
        apply: Applier,
        commit: Committer | None,
        on_parked: OnParked | None,
        result: ReplayResult,
    ) -> str | None:
        """Run one operation and record how it went. Returns None when the CRM answered (done,
        parked), else what happened: "waiting" (the mailbox is away, or the applier asked to
        wait), "failed" (one request failed), "throttled", "offline", "auth"."""
        self.running = op.id
        try:
            if isinstance(op.payload, Unreadable):
                raise op.payload.error
            outcome = apply(op, lambda progress: self._checkpoint(op, progress))
        except (MailUnavailable, TransientFailure) as exc:
            # The mailbox is away (or the applier asked to wait): this operation waits, the
            # ones that need only the CRM go on.
            self._defer(op, exc, getattr(exc, "retry_after", None))
            result.deferred.append(op.id)
            result.mail_offline = isinstance(exc, MailUnavailable) or result.mail_offline
            log.info("outbox op=%d kind=%s deferred error=%s", op.id, op.kind, _kind_of(exc))
            return "waiting"
        except CrmThrottled as exc:
            # Not a failure: the CRM ran nothing and said when it takes requests again.
            result.resume_at = self._defer_throttled(op, exc)
            result.deferred.append(op.id)
            result.throttled += 1
            log.info(
                "outbox op=%d kind=%s throttled; due again in %.1fs",
                op.id,
                op.kind,
                result.resume_at - self.clock(),
            )
            return "throttled"
        except CrmRequestFailed as exc:
            # One request failed (a 5xx, a reset, an unreadable or ambiguous answer): this
            # operation backs off — retrying it is safe, every operation is idempotent — and
            # the others go on; ``replay`` decides when too many in a row mean "down".
            self._defer(op, exc, exc.retry_after)
            result.deferred.append(op.id)
            result.failed_requests += 1
            result.error = str(exc)
            log.info("outbox op=%d kind=%s deferred error=%s", op.id, op.kind, _kind_of(exc))
            return "failed"
        except (CrmUnavailable, TimeoutError, ConnectionError) as exc:
            self._defer(op, exc, getattr(exc, "retry_after", None))
            result.deferred.append(op.id)
            result.error = str(exc)
            log.info("outbox op=%d kind=%s deferred error=%s", op.id, op.kind, _kind_of(exc))
            return "offline"
        except (CrmAuthError, MailAuthError) as exc:
            result.error = str(exc)
            result.auth_error = exc
            log.warning("outbox op=%d kind=%s stopped error=auth", op.id, op.kind)
            return "auth"
        except (CrmPermanentError, MailError, PermanentFailure, PayloadError) as exc:
            self._park(op, exc, on_parked)
            result.parked.append(op.id)
            log.warning("outbox op=%d kind=%s parked error=%s", op.id, op.kind, _kind_of(exc))
            return None
        finally:
            self.running = None
        with self.store.transaction():
            marked = self.rows.mark_done(op.id, outcome.to_json(), _now())
            # Discarded meanwhile, or finished by another replayer: the local effect is theirs.
            if marked and commit is not None:
                commit(op, outcome)
        result.done.append(op.id)
        log.info("outbox op=%d kind=%s done message=%s", op.id, op.kind, op.message_id or "-")
        return None

    def _checkpoint(self, op: Operation, progress: Progress) -> None:
        merged = replace(op.result or OpResult(), smtp_sent=progress.smtp_sent)
        self.rows.save_result(op.id, merged.to_json(), _now())

    def _defer(self, op: Operation, exc: BaseException, retry_after: float | None) -> None:
        attempts = op.attempts + 1
        delay = backoff_delay(attempts, rng=self.rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, BACKOFF_CAP_S))
        due = self.clock() + delay
        self.rows.defer(op.id, attempts, due, _kind_of(exc), str(exc)[:2000], _now())

    def _defer_throttled(self, op: Operation, exc: CrmThrottled) -> float:
        """Due again when the CRM said; the attempts stay as they were. Returns when."""
        wait = exc.retry_after if exc.retry_after is not None else BACKOFF_BASE_S
        due = self.clock() + max(0.0, wait)
        self.rows.defer(op.id, op.attempts, due, _kind_of(exc), str(exc)[:2000], _now())
        return due

    def _park(self, op: Operation, exc: BaseException, on_parked: OnParked | None) -> None:
        code = getattr(exc, "code", "") or _kind_of(exc)
        message = getattr(exc, "message", "") or str(exc)
        with self.store.transaction():
            self.rows.park(op.id, code, message[:2000], _now())
            if on_parked is not None:
                on_parked(op, Failure(code, message))


@dataclass
class _Pass:
    """The state of one replay: operations tried (each once, unless released for a retry),
    those a failed request deferred, the retry budget left and the failures in a row."""

    budget: float
    seen: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    in_a_row: int = 0
    released: bool = False
    cancelled: bool = False


def _replace_state(op: Operation, state: OpState) -> Operation:
    from dataclasses import replace

    return replace(op, state=state)


#: The ``last_error_code`` names (``_kind_of``) of a CRM that could not be reached: what
#: ``_run_one`` defers as "offline". Not ``CrmThrottled`` (the CRM answered and said when),
#: nor ``CrmRequestFailed`` / ``CrmAmbiguousResponse`` (one request failed while the CRM was
#: there: that operation keeps its own backoff, so one that always fails is not retried at
#: every reconnect).
OFFLINE_ERRORS = frozenset(
    {
        "CrmUnavailable",
        "CrmCertificateError",
        "TimeoutError",
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "BrokenPipeError",
    }
)


def _offline_code(code: str | None) -> bool:
    return bool(code) and str(code).split(" ", 1)[0] in OFFLINE_ERRORS


def _kind_of(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}" + (f" {status}" if status else "")


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = [
    "BACKOFF_CAP_S",
    "MAX_FAILURES_IN_A_ROW",
    "MAX_THROTTLE_WAIT_S",
    "MAX_TRANSIENT_WAIT_S",
    "Applier",
    "Checkpoint",
    "Committer",
    "OpKind",
    "OpState",
    "Operation",
    "Outbox",
    "OutboxStatus",
    "PermanentFailure",
    "Progress",
    "ReplayResult",
    "TransientFailure",
    "backoff_delay",
    "crm_operations_only",
    "mail_actions_only",
]
