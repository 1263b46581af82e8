"""The sync cycle's decisions as a pure plan (``core.sync.decisions``), on plain values: which
messages are decided, which wait for the CRM, and what each plan says — then one plan applied
to a store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest

from core.domain.crm_settings import AutoCreate, IncomingFilter, OrgSettings, ResolutionPolicy
from core.domain.model import MessageHeader, RecordRef, TrackState
from core.domain.resolution import InMemoryResolver
from core.outbox.kinds import OpKind
from core.outbox.queue import Outbox
from core.store import Store
from core.sync.decisions import (
    UNDECIDED_REASON,
    AuditRecord,
    DecisionFailure,
    DecisionPlan,
    DecisionRules,
    NotTracked,
    Promotion,
    Undecided,
    apply_decisions,
    lookups_needed,
    plan_decisions,
    select_candidates,
    waiting_for_crm,
)
from tests.core import JANE, OPPORTUNITY, PRIYA, STRANGER, World, message, reply

MB = 1024 * 1024


def rules(world: World) -> DecisionRules:
    return DecisionRules(world.options, world.org, world.resolver, world.correlator)


def plan(
    world: World,
    *headers: MessageHeader,
    states: dict[str, TrackState] | None = None,
    waiting: Sequence[str] = (),
) -> DecisionPlan:
    return plan_decisions(list(headers), states or {}, set(waiting), rules(world))


def only(result: DecisionPlan) -> object:
    assert len(result.actions) == 1
    return result.actions[0]


def all_mail(**options: object) -> World:
    world = World()
    world.options = replace(world.options, incoming_filter=IncomingFilter.ALL, **options)  # type: ignore[arg-type]
    return world


# --- which messages are decided ----------------------------------------------------------------


def test_candidates_undecided_first_then_new_once_each_and_only_open_ones() -> None:
    left = message("left undecided", sender=JANE)
    new = [
        message("new", sender=JANE),
        left,  # the same Message-ID again: decided once
        message("already tracked", sender=JANE),
        message("queued by the user", sender=JANE),
        message("never seen", sender=JANE),
    ]
    states = {
        left.message_id: TrackState.UNDECIDED,
        new[0].message_id: TrackState.NOT_TRACKED,
        new[2].message_id: TrackState.TRACKED,
        new[3].message_id: TrackState.NOT_TRACKED,
    }
    chosen = select_candidates([left], new, states, queued={new[3].message_id})
    assert chosen == [left, new[0], new[4]]  # a Message-ID without a state is not tracked


@pytest.mark.parametrize("state", [TrackState.PENDING, TrackState.TRACKED_BY_OTHER])
def test_candidates_leave_closed_states_alone(state: TrackState) -> None:
    mail = message("hello", sender=JANE)
    assert select_candidates([], [mail], {mail.message_id: state}, queued=()) == []


def test_lookups_ask_only_what_the_index_does_not_know() -> None:
    world = World()  # responses to CRM mail: correlation decides
    sent = world.send_from_crm("Quote", to=JANE)
    known = reply(sent, JANE)
    unknown = message("RE: Quote CRM:0999999", sender=JANE)
    lookups = lookups_needed([known, unknown], rules(world))
    assert not lookups[known.message_id]
    assert lookups[unknown.message_id].tokens == {"CRM:0999999"}
    assert waiting_for_crm(lookups) == {unknown.message_id}


@pytest.mark.parametrize(
    "world",
    [
        World(options=replace(World().options, automatic_tracking_enabled=False)),
        World(options=replace(World().options, incoming_filter=IncomingFilter.NONE)),
    ],
    ids=["automatic off", "filter none"],
)
def test_no_lookups_when_correlation_cannot_change_the_decision(world: World) -> None:
    mail = message("RE: Quote CRM:0999999", sender=JANE)
    assert lookups_needed([mail], rules(world)) == {}


# --- the plan ------------------------------------------------------------------------------------


def test_tracked_by_rule_is_a_promotion_with_its_decision_and_audit_entry() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    answer = reply(sent, JANE)
    result = plan(world, answer)
    action = only(result)
    assert isinstance(action, Promotion)
    assert action.message_id == answer.message_id
    assert action.decision.track and action.decision.reason.code == "correlated"
    promote = action.promote
    assert promote.source == "auto" and promote.regarding == OPPORTUNITY
    assert promote.reason == action.decision.reason
    assert promote.attachments and not promote.needs_review
    assert promote.attachment_limit == world.org.max_upload_bytes
    assert action.new_records == ()
    assert result.audit == (AuditRecord(answer.message_id, action.decision, "auto"),)
    assert result.promotions == (action,) and result.decided == 1


def test_not_tracked_by_rule_keeps_the_reason() -> None:
    mail = message("Newsletter", sender=STRANGER)
    result = plan(World(), mail)  # responses only: not a reply to tracked mail
    action = only(result)
    assert isinstance(action, NotTracked)
    assert action.reason.code == "not_a_response"
    assert result.audit == (AuditRecord(mail.message_id, action.decision),)
    assert result.not_tracked == (action,) and result.promotions == ()


def test_sender_rule_tracks_a_contact_and_not_a_stranger() -> None:
    world = World()
    world.options = replace(
        world.options, incoming_filter=IncomingFilter.FROM_EMAIL_ENABLED_RECORDS
    )
    jane, stranger = message("Hi", sender=JANE), message("Hi", sender=STRANGER)
    result = plan(world, jane, stranger)
    assert [type(a) for a in result.actions] == [Promotion, NotTracked]
    assert result.not_tracked[0].reason.code == "sender_not_in_crm"


def test_already_tracked_mail_is_not_tracked_again() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    action = only(plan(world, sent))
    assert isinstance(action, NotTracked) and action.reason.code == "already_tracked"


def test_automatic_tracking_off() -> None:
    world = all_mail(automatic_tracking_enabled=False)
    action = only(plan(world, message("Hi", sender=JANE)))
    assert isinstance(action, NotTracked) and action.reason.code == "automatic_off"


def test_token_only_mode() -> None:
    world = World(org=OrgSettings(token_only=True))
    sent = world.send_from_crm("Quote", to=JANE)
    with_token, without = reply(sent, JANE), reply(sent, JANE, keep_token=False)
    result = plan(world, with_token, without)
    tracked, dropped = result.actions
    assert isinstance(tracked, Promotion) and tracked.promote.regarding == OPPORTUNITY
    assert isinstance(dropped, NotTracked) and dropped.reason.code == "token_only_no_token"


def test_unanswered_crm_lookup_leaves_the_mail_undecided() -> None:
    world = World()
    fresh = message("RE: Quote CRM:0999999", sender=JANE)
    again = message("RE: Quote CRM:0999998", sender=JANE)
    states = {fresh.message_id: TrackState.NOT_TRACKED, again.message_id: TrackState.UNDECIDED}
    result = plan(world, fresh, again, states=states, waiting=[fresh.message_id, again.message_id])
    assert result.actions == (
        Undecided(fresh.message_id, UNDECIDED_REASON, write=True),
        Undecided(again.message_id, UNDECIDED_REASON, write=False),  # already shows it
    )
    assert result.decided == 0 and result.audit == ()


def test_answered_lookup_decides_like_any_other_mail() -> None:
    mail = message("RE: Quote CRM:0999999", sender=JANE)
    action = only(plan(World(), mail, waiting=[]))
    assert isinstance(action, NotTracked) and action.reason.code == "token_unknown"


def test_size_limit_drops_attachments_or_the_mail() -> None:
    world = all_mail()
    world.org = OrgSettings(max_upload_bytes=5 * MB)
    with_files = message("Big files", sender=JANE, size=9 * MB, has_attachments=True)
    too_big = message("Big text", sender=JANE, size=9 * MB)
    result = plan(world, with_files, too_big)
    dropped, refused = result.actions
    assert isinstance(dropped, Promotion)
    assert not dropped.promote.attachments and dropped.decision.attachments_dropped
    assert dropped.promote.attachment_limit == 5 * MB
    assert isinstance(refused, NotTracked) and refused.reason.code == "too_large"


def test_internal_mail_is_ignored_when_the_organisation_says_so() -> None:
    world = all_mail()
    world.org = OrgSettings(ignore_internal_email=True)
    internal, customer = message("Lunch?", sender=PRIYA), message("Order", sender=JANE)
    result = plan(world, internal, customer)
    assert isinstance(result.actions[0], NotTracked)
    assert result.actions[0].reason.code == "internal_ignored"
    assert isinstance(result.actions[1], Promotion)


def test_unknown_sender_gets_a_record_to_create_before_the_promotion() -> None:
    world = all_mail(auto_create=AutoCreate.LEAD)
    mail = message("Interested", sender=STRANGER)
    action = only(plan(world, mail))
    assert isinstance(action, Promotion)
    (record,) = action.new_records
    assert record.entity_set == "leads" and record.message_id == mail.message_id
    assert record.data == {
        "firstname": "Chris",
        "lastname": "Parker",
        "emailaddress1": STRANGER.email,
    }
    known = only(plan(world, message("Hi", sender=JANE)))
    assert isinstance(known, Promotion) and known.new_records == ()


def test_unique_sender_policy_flags_the_promotion_for_review() -> None:
    world = all_mail(resolution_policy=ResolutionPolicy.UNIQUE_SENDER)
    action = only(plan(world, message("Hi", sender=STRANGER)))
    assert isinstance(action, Promotion) and action.promote.needs_review


class BrokenResolver(InMemoryResolver):
    """Address books that fail on one address (bad data in a look-up)."""

    def lookup(self, address_key: str) -> Sequence[RecordRef]:
        if address_key == STRANGER.key:
            raise ValueError("unreadable address book row")
        return super().lookup(address_key)


def test_a_failed_decision_is_reported_and_the_others_still_decided() -> None:
    world = all_mail()
    world.resolver = BrokenResolver(
        [(JANE.email, RecordRef("contact", "c1", "Jane Doe"))], internal_domains=[]
    )
    bad, good = message("Hi", sender=STRANGER), message("Hi", sender=JANE)
    result = plan(world, bad, good)
    failure, promotion = result.actions
    assert isinstance(failure, DecisionFailure) and failure.message_id == bad.message_id
    assert isinstance(failure.error, ValueError)
    assert isinstance(promotion, Promotion)
    assert result.failures == (failure,) and result.decided == 2


def test_planning_changes_nothing() -> None:
    world = World()
    sent = world.send_from_crm("Quote", to=JANE)
    before = (len(world.index), world.resolver.lookup(STRANGER.key))
    plan(world, reply(sent, JANE), message("Hi", sender=STRANGER))
    assert (len(world.index), world.resolver.lookup(STRANGER.key)) == before


# --- applying a plan -----------------------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open(":memory:") as s:
        yield s


def test_apply_queues_promotions_and_shows_every_state(store: Store) -> None:
    world = all_mail(auto_create=AutoCreate.CONTACT)
    world.org = OrgSettings(ignore_internal_email=True)
    tracked, internal, waiting, left = (
        message("Interested", sender=STRANGER),
        message("Lunch?", sender=PRIYA),
        message("RE: Quote CRM:0999999", sender=JANE),
        message("RE: Quote CRM:0999998", sender=JANE),
    )
    store.tracking.set_state(left.message_id, TrackState.UNDECIDED, reason=UNDECIDED_REASON)
    states = {h.message_id: store.tracking.state_of(h.message_id) for h in (waiting, left)}
    result = plan(
        world,
        tracked,
        internal,
        waiting,
        left,
        states=states,
        waiting=[waiting.message_id, left.message_id],
    )
    outbox = Outbox(store)
    apply_decisions(store, outbox, result)

    state = store.tracking.state_of
    assert state(tracked.message_id) is TrackState.PENDING
    assert state(internal.message_id) is TrackState.NOT_TRACKED
    assert state(waiting.message_id) is TrackState.UNDECIDED
    assert state(left.message_id) is TrackState.UNDECIDED
    kinds = [(op.kind, op.message_id) for op in outbox.pending()]
    assert kinds == [
        (OpKind.CREATE_RECORD, tracked.message_id),
        (OpKind.PROMOTE, tracked.message_id),
    ]
    for entry, mail in zip(result.audit, (tracked, internal), strict=True):
        (logged,) = store.tracking.audit_log(mail.message_id)
        assert logged.source == entry.source == "auto"
        assert logged.track is entry.decision.track
        assert logged.reason == entry.decision.reason
    assert store.tracking.audit_log(waiting.message_id) == []
