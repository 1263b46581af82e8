"""Incoming mail, server-side: sync a mailbox's Inbox into its own state and decide each new
mail with the desktop's rules (``core.sync.decisions``), queueing promotions in the
mailbox's own outbox (``core.outbox``), as the desktop cycle does.

Crash safety: a new mail is marked *undecided* in the same transaction that stores its
header and the folder's sync state, so a run that dies before deciding leaves it for the
next run; a decision and its queued promotion are one transaction; the outbox promotes by
Message-ID (``CrmApplier``, the CRM returns the e-mail it has). Nothing is decided twice and
nothing is promoted twice.

Who the e-mail belongs to: the router promotes as the service; :class:`RouterApplier` then
assigns the new e-mail to its owner (the mailbox's user, the forwarding user), read from
this mailbox's ``router_mail`` table, which also carries the queue follow-ups
(``router.queues``, ``router.cases``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from core.crm import CrmClient, CrmError
from core.domain.correlation import Correlator
from core.domain.crm_settings import IncomingFilter, OrgSettings, UserOptions
from core.domain.mailbox_delivery import MailboxDelivery
from core.domain.model import MessageHeader, Reason, RecordRef, TrackState
from core.domain.resolution import Resolver
from core.mail import MailBackend
from core.outbox.kinds import Promote, SendPending
from core.outbox.operations import CrmApplier
from core.outbox.queue import Checkpoint, Operation, Outbox, Progress
from core.outbox.results import OpResult
from core.store import SqliteCorrelationIndex, Store
from core.sync.address_books import AddressBook
from core.sync.crm_lookup import Questions, ask_crm
from core.sync.decisions import (
    OPEN_STATES,
    DecisionPlan,
    DecisionRules,
    apply_decisions,
    lookups_needed,
    plan_decisions,
    select_candidates,
    waiting_for_crm,
)
from core.sync.mailbox import apply_batch

log = logging.getLogger("trackbox.router.incoming")

#: Undecided mail taken up per run (more waits for the next one).
MAX_PER_RUN = 2000
#: ``email.statuscode`` Sent.
SENT = 3
NEW_REASON = Reason("undecided", "New mail: the router decides it on its next pass")

_FOLLOWUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS router_mail (
    message_id TEXT PRIMARY KEY,
    owner_id TEXT,
    queue_id TEXT,
    eligible INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
)
"""


# -- sync ----------------------------------------------------------------------------------


def sync_inbox(
    store: Store,
    backend: MailBackend,
    roles: Sequence[str] = ("inbox",),
    *,
    resume_after: datetime | None = None,
) -> int:
    """Bring the mailbox's folders with these roles (the Inbox; for a user, Sent Items too)
    up to date in ``store``; mail that arrived since the last pass is marked undecided in
    the transaction that stores it. Returns the new mail.

    The first pass over a folder in this state takes what is there as the baseline (old
    mail is not tracked, as on the desktop), except mail dated after ``resume_after``: when
    the CRM says the mailbox was processed before (on another machine, or before this state
    was lost), that mail is decided again — promotion by Message-ID finds what the other
    pass tracked, the same rules leave untracked what it left — so mail that arrived since
    that pass is not lost."""
    folders = [backend.folder(role) for role in roles]
    store.upsert_folders(folders)
    return sum(_sync_folder(store, backend, folder.path, resume_after) for folder in folders)


def _is_new(header: MessageHeader, baseline: bool, resume_after: datetime | None) -> bool:
    if not baseline:
        return True
    if resume_after is None or header.date is None:
        return False
    date = header.date if header.date.tzinfo else header.date.replace(tzinfo=UTC)
    return date >= resume_after


def _sync_folder(
    store: Store, backend: MailBackend, folder: str, resume_after: datetime | None = None
) -> int:
    state = store.folder_sync_state(folder)
    baseline = state is None
    new = 0
    for batch in backend.sync(folder, state, 500):
        with store.transaction():
            apply_batch(store, folder, batch)
            if batch.reset and not baseline:
                continue
            for header in (h for h in batch.added if _is_new(h, baseline, resume_after)):
                if store.tracking.state_of(header.message_id) is TrackState.NOT_TRACKED:
                    store.tracking.set_state(
                        header.message_id, TrackState.UNDECIDED, reason=NEW_REASON
                    )
                    new += 1
    return new


def undecided(store: Store) -> list[MessageHeader]:
    """Mail waiting for a decision, that nothing has queued yet."""
    outbox = Outbox(store)
    left = [
        row.header for row in store.tracking.messages_in_state(TrackState.UNDECIDED, 0, MAX_PER_RUN)
    ]
    states = {h.message_id: store.tracking.state_of(h.message_id) for h in left}
    queued = {mid for mid, s in states.items() if s in OPEN_STATES and outbox.pending_for(mid)}
    return select_candidates(left, [], states, queued)


# -- rules ---------------------------------------------------------------------------------


def org_settings(crm: CrmClient) -> OrgSettings:
    return OrgSettings.from_crm(next(iter(crm.query("organizations", top=1)), {}))


def owner_options(crm: CrmClient, box: MailboxDelivery) -> UserOptions:
    """The options mail of ``box`` is decided by: the owning user's ``usersettings``, or
    the queue's own filter (queues default to all mail)."""
    own = (box.address,) if box.address else ()
    if box.is_queue and box.owner_id:
        row = crm.get("queues", box.owner_id, select=["incomingemailfilteringmethod"])
        method = int(row.get("incomingemailfilteringmethod") or 0)
        return UserOptions(
            incoming_filter=IncomingFilter(method),
            mailbox_owner=RecordRef("queue", box.owner_id),
            mailbox_addresses=own,
        )
    if not box.owner_id:
        return UserOptions(mailbox_addresses=own)
    return user_options(crm, box.owner_id, own)


def user_options(crm: CrmClient, user_id: str, own: Sequence[str] = ()) -> UserOptions:
    """A user's options (``usersettings``), with the user's own address among ``own``."""
    settings = crm.get("usersettingscollection", user_id)
    user = crm.get("systemusers", user_id, select=["internalemailaddress"])
    address = str(user.get("internalemailaddress") or "").strip().lower()
    addresses = tuple(dict.fromkeys([*own, *([address] if address else [])]))
    return UserOptions.from_crm(settings, mailbox_addresses=addresses)


def address_book(crm: CrmClient, shared: Store) -> AddressBook:
    """The organisation's address book (every record, not one user's), brought up to date."""
    book = AddressBook(shared, contacts_scope="all")
    book.sync(crm)
    return book


def decision_rules(
    store: Store, options: UserOptions, org: OrgSettings, resolver: Resolver
) -> DecisionRules:
    return DecisionRules(options, org, resolver, Correlator(org, SqliteCorrelationIndex(store)))


# -- decide --------------------------------------------------------------------------------


def decide(
    store: Store, crm: CrmClient, candidates: Sequence[MessageHeader], rules: DecisionRules
) -> DecisionPlan:
    """The desktop's decision on each candidate; what the local index cannot answer is
    asked of the CRM first (the organisation's tracked mail, which the service reads)."""
    states = {h.message_id: store.tracking.state_of(h.message_id) for h in candidates}
    lookups = lookups_needed(candidates, rules)
    waiting = waiting_for_crm(lookups)
    if waiting:
        asked = Questions()
        for mid in waiting:
            asked.add(lookups[mid])
        try:
            ask_crm(crm, rules.correlator, asked)
            waiting = set()
        except CrmError as exc:
            log.info("router lookups failed: %s", type(exc).__name__)
    return plan_decisions(candidates, states, waiting, rules)


def apply_plan(
    store: Store,
    plan: DecisionPlan,
    *,
    owner_id: str | None,
    queue_id: str | None = None,
) -> None:
    """Record who each promoted mail belongs to (and its queue follow-up), then queue the
    promotions and record the other decisions (``apply_decisions``)."""
    remember(
        store,
        (
            (p.message_id, owner_id, queue_id, p.decision.queue_rules_eligible)
            for p in plan.promotions
        ),
    )
    apply_decisions(store, Outbox(store), plan)


# -- the mailbox's own table ------------------------------------------------------------------


def ensure_schema(store: Store) -> None:
    store.conn.execute(_FOLLOWUP_SCHEMA)


def remember(store: Store, rows: Iterable[tuple[str, str | None, str | None, bool]]) -> None:
    """Who owns each promoted mail and which queue it goes to (upsert: a re-decided mail
    keeps one row; a follow-up already done stays done)."""
    with store.transaction():
        for mid, owner, queue, eligible in rows:
            store.conn.execute(
                "INSERT INTO router_mail (message_id, owner_id, queue_id, eligible)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(message_id) DO UPDATE SET"
                " owner_id = excluded.owner_id, queue_id = excluded.queue_id,"
                " eligible = excluded.eligible",
                (mid, owner, queue, int(eligible)),
            )


def owner_of(store: Store, message_id: str) -> str | None:
    row = store.conn.execute(
        "SELECT owner_id FROM router_mail WHERE message_id = ?", (message_id,)
    ).fetchone()
    return str(row[0]) if row and row[0] else None


#: ``router_mail.done``: a queue's mail waiting to join the queue, waiting for the case
#: rules, finished.
NEW, QUEUED, FINISHED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Followup:
    """A queue's promoted mail and what is left to do with it."""

    message_id: str
    activity_id: str
    queue_id: str
    eligible: bool


def followups(store: Store, stage: int) -> list[Followup]:
    """The queue's tracked mail at ``stage`` (mail not tracked yet waits)."""
    rows = store.conn.execute(
        "SELECT r.message_id, t.activity_id, r.queue_id, r.eligible FROM router_mail r"
        " JOIN tracking t ON t.message_id = r.message_id"
        " WHERE r.done = ? AND r.queue_id IS NOT NULL AND t.activity_id IS NOT NULL"
        " AND t.track_state IN (?, ?)",
        (stage, TrackState.TRACKED.value, TrackState.NEEDS_ATTENTION.value),
    )
    return [Followup(str(m), str(a), str(q), bool(e)) for m, a, q, e in rows]


def set_stage(store: Store, message_id: str, stage: int) -> None:
    with store.transaction():
        store.conn.execute(
            "UPDATE router_mail SET done = ? WHERE message_id = ?", (stage, message_id)
        )


# -- promotion -------------------------------------------------------------------------------


class FiledFor:
    """The service's CRM client, filing each promotion for its owner: ``DeliverPromoteEmail``
    gets ``ownerid@odata.bind`` in ExtraProperties (the e-mail is the owner's from the
    start, its direction judged from the owner's address). Everything else passes through."""

    def __init__(self, crm: CrmClient) -> None:
        self.crm = crm
        self.owner: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.crm, name)

    def deliver_promote_email(self, **params: Any) -> str:
        if self.owner:
            extra = dict(params.get("extra_properties") or {})
            extra["ownerid@odata.bind"] = f"/systemusers({self.owner})"
            params["extra_properties"] = extra
        return self.crm.deliver_promote_email(**params)


class RouterApplier:
    """``CrmApplier`` (promotion by Message-ID, sending) with each promotion filed for its
    owner (:class:`FiledFor`); a CRM that ignores the bind gets the e-mail assigned after.
    Safe to run twice."""

    def __init__(
        self,
        crm: CrmClient,
        store: Store,
        *,
        body_source: Callable[[Promote], bytes] | None = None,
        send: Callable[[bytes], None] | None = None,
    ) -> None:
        self.crm = crm
        self.store = store
        self.filed_for = FiledFor(crm)
        self.inner = CrmApplier(cast(CrmClient, self.filed_for), body_source=body_source, send=send)
        self._service_id: str | None = None

    def __call__(self, op: Operation, checkpoint: Checkpoint) -> OpResult:
        if isinstance(op.payload, SendPending) and already_sent(self.crm, op):
            # Another machine's pass sent it (this state is stale): never a second time.
            return OpResult(op.payload.activity_id, smtp_sent=True)
        owner = None
        if isinstance(op.payload, Promote):
            owner = owner_of(self.store, op.payload.message_id)
        self.filed_for.owner = owner
        result = self.inner(op, checkpoint)
        # Only what the service itself filed: an e-mail someone else tracked first (their
        # desktop, another mailbox) keeps its owner.
        if owner and result.activity_id and result.owner_id == self.service_id():
            assign(self.crm, result.activity_id, owner)
            result = dataclasses.replace(result, owner_id=owner)
        return result

    def service_id(self) -> str:
        if self._service_id is None:
            self._service_id = self.crm.who_am_i().user_id
        return self._service_id


def already_sent(crm: CrmClient, op: Operation) -> bool:
    """A Pending Send mail not sent by this state yet that the CRM has as Sent: a pass on
    another machine (with its own state) sent it after this state had queued it."""
    payload = op.payload
    if not isinstance(payload, SendPending) or not payload.activity_id:
        return False
    if Progress.from_result(op.result).smtp_sent:
        return False  # this state sent it: only marking it Sent is left
    row = crm.get("emails", payload.activity_id, select=["statuscode"])
    return int(row.get("statuscode") or 0) == SENT


def assign(crm: CrmClient, activity_id: str, owner_id: str) -> None:
    """Give the e-mail to ``owner_id`` (closed activities take a PATCH that restates their
    state)."""
    row: dict[str, Any] = crm.get("emails", activity_id, select=["statecode", "statuscode"])
    crm.update(
        "emails",
        activity_id,
        {
            "ownerid@odata.bind": f"/systemusers({owner_id})",
            "statecode": row.get("statecode"),
            "statuscode": row.get("statuscode"),
        },
    )


__all__ = [
    "FINISHED",
    "FiledFor",
    "NEW",
    "QUEUED",
    "Followup",
    "RouterApplier",
    "followups",
    "set_stage",
    "apply_plan",
    "assign",
    "decide",
    "decision_rules",
    "ensure_schema",
    "org_settings",
    "owner_options",
    "remember",
    "sync_inbox",
    "undecided",
    "user_options",
]
