"""The decisions step of the sync cycle, split in two: a pure plan and its application.

:func:`plan_decisions` takes plain values — the messages to decide, their local tracked
state, which of them still wait for an answer from the CRM, and the rules to decide by (the
user's options, the organisation's settings, the address books and the correlation index as
look-ups) — and returns a :class:`DecisionPlan`: which messages to promote and with which
:class:`~core.domain.model.Decision`, which to mark not tracked or undecided and why, and the
audit entries. It changes nothing and talks to nothing, so every rule is tested on values
(``tests/sync/test_decisions_plan.py``). :func:`apply_decisions` then carries the plan out
through the store and the outbox, one message per transaction, as the cycle always did.

Choosing the messages (:func:`select_candidates`) and the look-ups to ask of the CRM
(:func:`lookups_needed`) are pure too; asking the CRM itself is the cycle's
(``core/sync/crm_lookup.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.domain.correlation import Correlator
from core.domain.crm_settings import OrgSettings, UserOptions
from core.domain.model import Decision, MessageHeader, Reason, TrackState
from core.domain.never_track import NeverTrack, StoppedConversations
from core.domain.resolution import Resolver
from core.domain.tracking import TrackContext, decide
from core.outbox.kinds import CreateRecord, Promote
from core.outbox.operations import new_records
from core.outbox.promotion import queue_promotion
from core.outbox.queue import Outbox
from core.store import Store
from core.sync.crm_lookup import Questions, decision_may_correlate, unanswered

#: Who decided, as the audit log words it.
SOURCE = "auto"
UNDECIDED_REASON = Reason(
    "undecided", "Waiting for the CRM: it must say whether this mail belongs to tracked mail"
)
#: States in which a message is still open to an automatic decision.
OPEN_STATES = (TrackState.NOT_TRACKED, TrackState.UNDECIDED)


@dataclass(frozen=True, slots=True)
class DecisionRules:
    """What decisions are made by: the options, the settings and the two look-ups
    (``correlator`` must be built with the same ``org``), and the user's own exclusions
    (the never-track list and the stopped conversations, from the local options).
    ``tracked_by_server``: the organisation's server-side synchronisation tracks this
    user's mail (the CRM's mailbox record, issue 19), so nothing is tracked automatically
    here."""

    options: UserOptions
    org: OrgSettings
    resolver: Resolver
    correlator: Correlator
    never_track: NeverTrack = NeverTrack()
    stopped: StoppedConversations = StoppedConversations()
    tracked_by_server: bool = False

    @property
    def context(self) -> TrackContext:
        """The context every automatic decision is made in."""
        return TrackContext(
            never_track=self.never_track,
            stopped=self.stopped,
            tracked_by_server=self.tracked_by_server,
        )

    def excluded(self, header: MessageHeader) -> bool:
        """Turned down whatever the CRM would say: a party on the never-track list, or the
        message's own headers in a stopped conversation (no look-up can change that)."""
        own = self.options.mailbox_addresses
        return self.never_track.match(header, own) is not None or self.stopped.contains(header)


@dataclass(frozen=True, slots=True)
class Promotion:
    """Track: record ``decision``, queue ``new_records`` then ``promote``, show it pending."""

    promote: Promote
    decision: Decision
    new_records: tuple[CreateRecord, ...] = ()

    @property
    def message_id(self) -> str:
        return self.promote.message_id


@dataclass(frozen=True, slots=True)
class NotTracked:
    """Record ``decision`` and show the message not tracked, with the decision's reason."""

    message_id: str
    decision: Decision

    @property
    def reason(self) -> Reason:
        return self.decision.reason


@dataclass(frozen=True, slots=True)
class Undecided:
    """The decision needs the CRM's answer, which did not come: the message waits.
    ``write`` is False when it already shows undecided (nothing to store)."""

    message_id: str
    reason: Reason = UNDECIDED_REASON
    write: bool = True


@dataclass(frozen=True, slots=True)
class DecisionFailure:
    """Deciding on one message raised (bad data, a bug): the others are still decided."""

    message_id: str
    error: Exception


Action = Promotion | NotTracked | Undecided | DecisionFailure


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry the audit log gets: the decision on a message and who made it."""

    message_id: str
    decision: Decision
    source: str = SOURCE


@dataclass(frozen=True, slots=True)
class DecisionPlan:
    """One action per message, in the order the messages came."""

    actions: tuple[Action, ...] = ()

    @property
    def promotions(self) -> tuple[Promotion, ...]:
        return tuple(a for a in self.actions if isinstance(a, Promotion))

    @property
    def not_tracked(self) -> tuple[NotTracked, ...]:
        return tuple(a for a in self.actions if isinstance(a, NotTracked))

    @property
    def undecided(self) -> tuple[Undecided, ...]:
        return tuple(a for a in self.actions if isinstance(a, Undecided))

    @property
    def failures(self) -> tuple[DecisionFailure, ...]:
        return tuple(a for a in self.actions if isinstance(a, DecisionFailure))

    @property
    def decided(self) -> int:
        """Messages not left waiting (a failed decision counts: it was attempted)."""
        return len(self.actions) - len(self.undecided)

    @property
    def audit(self) -> tuple[AuditRecord, ...]:
        """The audit log's new entries, in order (promotions and not tracked alike)."""
        return tuple(
            AuditRecord(a.message_id, a.decision)
            for a in self.actions
            if isinstance(a, Promotion | NotTracked)
        )


def select_candidates(
    undecided: Iterable[MessageHeader],
    new: Iterable[MessageHeader],
    states: Mapping[str, TrackState],
    queued: Collection[str],
) -> list[MessageHeader]:
    """Mail left undecided by an earlier cycle, then this cycle's new mail, that nothing has
    decided or queued yet (its state in ``states`` is open, its Message-ID not in
    ``queued``); one header per Message-ID. A Message-ID missing from ``states`` is not
    tracked."""
    seen: set[str] = set()
    out: list[MessageHeader] = []
    for header in [*undecided, *new]:
        mid = header.message_id
        if mid in seen:
            continue
        seen.add(mid)
        if states.get(mid, TrackState.NOT_TRACKED) not in OPEN_STATES or mid in queued:
            continue
        out.append(header)
    return out


def lookups_needed(
    candidates: Iterable[MessageHeader], rules: DecisionRules
) -> dict[str, Questions]:
    """For each message whose decision a correlation could change, the correlation keys the
    local index does not know (empty when it knows them all). Mail the user excluded is
    never asked about: it waits for nothing, and neither does anything when the
    organisation's server-side synchronisation decides for this user."""
    if rules.tracked_by_server:
        return {}
    return {
        h.message_id: unanswered(h, rules.correlator)
        for h in candidates
        if decision_may_correlate(h, rules.options, rules.correlator) and not rules.excluded(h)
    }


def waiting_for_crm(lookups: Mapping[str, Questions]) -> set[str]:
    """The messages whose decision waits for the CRM's answer."""
    return {mid for mid, questions in lookups.items() if questions}


def plan_decisions(
    candidates: Sequence[MessageHeader],
    states: Mapping[str, TrackState],
    waiting: Collection[str],
    rules: DecisionRules,
) -> DecisionPlan:
    """The decision on each of ``candidates``: undecided when its Message-ID is in
    ``waiting`` (the CRM was not asked, or did not answer); else ``decide``'s verdict — a
    promotion (with the records "Automatically create records" asks for) or not tracked.
    A message ``decide`` fails on becomes a :class:`DecisionFailure`. Pure: reads the
    look-ups in ``rules``, changes nothing."""
    return DecisionPlan(tuple(_action(h, states, waiting, rules) for h in candidates))


def _action(
    header: MessageHeader,
    states: Mapping[str, TrackState],
    waiting: Collection[str],
    rules: DecisionRules,
) -> Action:
    mid = header.message_id
    if mid in waiting:
        shown = states.get(mid, TrackState.NOT_TRACKED)
        return Undecided(mid, write=shown is not TrackState.UNDECIDED)
    try:
        decision = decide(
            header, rules.options, rules.org, rules.resolver, rules.correlator, rules.context
        )
    except Exception as exc:  # one unreadable message never stops the others
        return DecisionFailure(mid, exc)
    if not decision.track:
        return NotTracked(mid, decision)
    return _promotion(header, decision, rules)


def _promotion(header: MessageHeader, decision: Decision, rules: DecisionRules) -> Promotion:
    promote = Promote(
        header,
        decision.reason,
        regarding=decision.regarding,
        source=SOURCE,
        attachments=not decision.attachments_dropped,
        attachment_limit=rules.org.max_upload_bytes,
        needs_review=decision.needs_review,
    )
    records = new_records(header, rules.options.auto_create, rules.resolver)
    return Promotion(promote, decision, records)


def apply_decisions(store: Store, outbox: Outbox, plan: DecisionPlan) -> None:
    """Carry ``plan`` out, in its order, each message in one transaction: promotions are
    queued and shown pending (``core.outbox.promotion``), decisions not to track are
    recorded and shown, waiting mail shows undecided. Failures are the caller's to report."""
    for action in plan.actions:
        if isinstance(action, Promotion):
            queue_promotion(
                store,
                outbox,
                action.promote,
                decision=action.decision,
                new_records=action.new_records,
            )
        elif isinstance(action, NotTracked):
            with store.transaction():
                store.tracking.record_decision(action.message_id, action.decision, source=SOURCE)
                store.tracking.set_state(
                    action.message_id, TrackState.NOT_TRACKED, reason=action.reason
                )
        elif isinstance(action, Undecided) and action.write:
            store.tracking.set_state(action.message_id, TrackState.UNDECIDED, reason=action.reason)


__all__ = [
    "OPEN_STATES",
    "UNDECIDED_REASON",
    "Action",
    "AuditRecord",
    "DecisionFailure",
    "DecisionPlan",
    "DecisionRules",
    "NotTracked",
    "Promotion",
    "Undecided",
    "apply_decisions",
    "lookups_needed",
    "plan_decisions",
    "select_candidates",
    "waiting_for_crm",
]
