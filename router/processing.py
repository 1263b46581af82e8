"""What the router does with one mailbox in one pass (the execution layer calls
:func:`run_mailbox`; :func:`list_mailboxes` says which mailboxes there are).

A pass, in order: incoming mail (a user's or queue's mailbox: ``router.incoming``; the forward
mailbox: ``router.forward``) is synced and decided and its promotions queued; the mailbox's
outbox is replayed (promotions, then their owners); a queue's new mail joins the queue and
may open a case (``router.queues``, ``router.cases``); the owner's Pending Send mail is claimed
and sent (``router.outgoing``). Every step is idempotent on the mailbox's own SQLite state,
so a retried pass never duplicates an activity.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.crm import CrmError
from core.crm.throttle import CrmThrottled
from core.domain.mailbox_delivery import (
    MAILBOX_COLUMNS,
    IncomingDelivery,
    MailboxDelivery,
    OutgoingDelivery,
)
from core.mail import MailError
from core.outbox.kinds import OpKind
from core.outbox.operations import LocalEffects, MailSession
from core.outbox.queue import Operation, Outbox
from core.outbox.results import Failure
from core.store import Store
from router import cases, forward, incoming, mailbox_status, outgoing, queues
from router.context import RouterContext
from router.limits import MAX_REQUEST_WAIT_S, RequestWindowFull

log = logging.getLogger("trackbox.router")

#: How far before the mailbox's last successful pass a fresh state starts deciding mail.
RESUME_MARGIN = timedelta(hours=24)


@dataclass(frozen=True)
class MailboxRun:
    mailbox_id: str
    started: datetime
    finished: datetime
    promoted: int
    queued: int
    cases: int
    sent: int
    errors: tuple[str, ...]


def _processed(box: MailboxDelivery) -> bool:
    return (
        box.is_forward_mailbox
        or box.incoming is IncomingDelivery.SERVER_SIDE
        or box.outgoing is OutgoingDelivery.SERVER_SIDE
    )


def list_mailboxes(ctx: RouterContext) -> list[MailboxDelivery]:
    """The mailboxes the router processes: incoming or outgoing server-side, and forward
    mailboxes."""
    rows = ctx.crm.query("mailboxes", select=list(MAILBOX_COLUMNS), annotations=True)
    return [box for box in map(MailboxDelivery.from_row, rows) if _processed(box)]


def mailbox(ctx: RouterContext, mailbox_id: str) -> MailboxDelivery:
    row = ctx.crm.get("mailboxes", mailbox_id, select=list(MAILBOX_COLUMNS), annotations=True)
    return MailboxDelivery.from_row(row)


@dataclass
class Pass:
    """One pass over one mailbox: its state, its mail session, what it counted."""

    ctx: RouterContext
    box: MailboxDelivery
    store: Store
    session: MailSession
    errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: When the CRM says this mailbox last finished a pass without errors (None: never).
    last_success: datetime | None = None

    def step(self, name: str, work: Callable[[], object]) -> None:
        """Run one step; a failure is this pass's error, the next steps still run. A 429 the
        CRM client could not wait out ends the pass: the job waits for its Retry-After (and
        pauses the identity for every worker), the steps left would only be throttled too."""
        try:
            work()
        except CrmThrottled:
            raise
        except (CrmError, MailError, OSError, sqlite3.Error) as exc:
            log.info("router mailbox=%s step=%s failed: %s", self.box.mailbox_id, name, exc)
            self.errors.append(f"{name}: {exc}")

    def resume_after(self) -> datetime | None:
        """Mail dated after this is decided even on a first pass in this state (see
        ``incoming.sync_inbox``): the last success the CRM knows of, less a margin for mail
        that travelled slowly or a pass that ran long."""
        return self.last_success - RESUME_MARGIN if self.last_success else None

    def add(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def run_mailbox(ctx: RouterContext, mailbox_id: str) -> MailboxRun:
    """One incremental, idempotent pass over the mailbox (see the module docstring)."""
    started = datetime.now(UTC)
    box = mailbox(ctx, mailbox_id)
    store = Store.open(ctx.state_path(box.mailbox_id))
    session = MailSession(lambda: ctx.open_mailbox(box))
    run = Pass(ctx, box, store, session, last_success=mailbox_status.last_success(ctx.crm, box))
    try:
        incoming.ensure_schema(store)
        _run_steps(run)
    finally:
        session.close()
        store.close()
    outcome = MailboxRun(
        mailbox_id=box.mailbox_id,
        started=started,
        finished=datetime.now(UTC),
        promoted=run.counts.get("promoted", 0),
        queued=run.counts.get("queued", 0),
        cases=run.counts.get("cases", 0),
        sent=run.counts.get("sent", 0),
        errors=tuple(run.errors),
    )
    mailbox_status.record(ctx.crm, box, outcome, since=run.last_success)
    return outcome


def _run_steps(run: Pass) -> None:
    box = run.box
    if box.is_forward_mailbox:
        resume = run.resume_after()
        run.step(
            "forward mailbox", lambda: forward.process(run.ctx, run.store, run.session, resume)
        )
    elif box.incoming is IncomingDelivery.SERVER_SIDE:
        run.step("incoming mail", lambda: _incoming(run))
    run.step("tracking", lambda: _replay(run))
    if box.is_queue and box.incoming is IncomingDelivery.SERVER_SIDE:
        run.step("queue", lambda: run.add("queued", queues.process(run.ctx.crm, run.store)))
        run.step("cases", lambda: run.add("cases", cases.process(run.ctx.crm, run.store, box)))
    if box.outgoing is OutgoingDelivery.SERVER_SIDE:
        run.step("outgoing mail", lambda: outgoing.queue_sends(run.store, run.ctx.crm, box))
        run.step("sending", lambda: _replay(run))


def _incoming(run: Pass) -> None:
    ctx, box, store = run.ctx, run.box, run.store
    roles = ("inbox",) if box.is_queue else ("inbox", "sent")  # a user's own mail too
    incoming.sync_inbox(store, run.session.backend(), roles, resume_after=run.resume_after())
    candidates = incoming.undecided(store)
    if not candidates:
        return
    org = incoming.org_settings(ctx.crm)
    options = incoming.owner_options(ctx.crm, box)
    with Store.open(ctx.address_book_path) as shared:
        rules = incoming.decision_rules(store, options, org, incoming.address_book(ctx.crm, shared))
        plan = incoming.decide(store, ctx.crm, candidates, rules)
    owner = None if box.is_queue else box.owner_id
    queue = box.owner_id if box.is_queue else None
    incoming.apply_plan(store, plan, owner_id=owner, queue_id=queue)
    for failure in plan.failures:  # left undecided: the next pass tries again
        run.errors.append(f"deciding on {failure.message_id}: {failure.error}")


def _replay(run: Pass) -> None:
    """Run the mailbox's outbox: promotions (then their owner) and sends."""
    store, ctx = run.store, run.ctx
    outbox = Outbox(store)
    if not outbox.pending():
        return
    effects = LocalEffects(store, incoming.org_settings(ctx.crm))
    applier = incoming.RouterApplier(
        ctx.crm,
        store,
        body_source=lambda p: run.session.fetch(p.header.ref),
        send=run.session.send,
    )
    kinds = {op.id: op.kind for op in outbox.pending()}

    def parked(op: Operation, failure: Failure) -> None:
        effects.parked(op, failure)
        run.errors.append(f"{op.kind} {op.key}: {failure.message}")

    result = outbox.replay(
        applier,
        effects.commit,
        on_parked=parked,
        max_transient_wait=0,
        max_throttle_wait=MAX_REQUEST_WAIT_S,  # no longer than a job may sit on its lock
    )
    run.add("promoted", sum(1 for i in result.done if kinds.get(i) == OpKind.PROMOTE))
    run.add("sent", sum(1 for i in result.done if kinds.get(i) == OpKind.SEND_PENDING))
    if result.stopped == "throttled":  # the identity is paused already (the 429's hook)
        wait = max(1.0, (result.resume_at or 0.0) - outbox.clock())
        raise RequestWindowFull("the CRM throttled the mailbox's outbox", wait)
    if result.mail_offline or result.stopped in ("offline", "auth"):
        run.errors.append(f"the outbox stopped: {result.error or result.stopped or 'mail offline'}")


__all__ = ["MailboxRun", "list_mailboxes", "mailbox", "run_mailbox"]
