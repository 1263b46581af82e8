"""Address resolution: all matches (Dynamics) and unique sender (review queue)."""

from __future__ import annotations

from core.domain.crm_settings import AutoCreate, IncomingFilter, ResolutionPolicy, UserOptions
from core.domain.model import Address
from core.domain.resolution import (
    InMemoryResolver,
    Resolver,
    demo_record,
    plan_new_records,
    resolve,
    split_name,
)
from tests.core import JANE, KENJI, PRIYA, RUTH, STRANGER, X_RECORD, World, X, message

BOOK = InMemoryResolver.from_demo()


def test_demo_resolver_meets_protocol() -> None:
    assert isinstance(BOOK, Resolver)
    assert BOOK.is_internal(PRIYA.key) and BOOK.is_internal("someone@contoso.example")
    assert not BOOK.is_internal(JANE.key)


def test_all_matches_links_every_recipient_record_and_first_sender_record() -> None:
    mail = message("Hi", sender=RUTH, to=(X, RUTH), cc=(STRANGER,))
    result = resolve(mail, BOOK, ResolutionPolicy.ALL_MATCHES, X_RECORD)
    sender = result.sender
    assert sender is not None and [r.entity for r in sender.records] == ["contact"]
    to_ruth = [p for p in result.parties if p.role == "to" and p.address == RUTH][0]
    assert sorted(r.entity for r in to_ruth.records) == ["contact", "lead"]
    assert result.unresolved == (STRANGER,)
    assert not result.needs_review


def test_sender_order_prefers_user_over_contact() -> None:
    book = InMemoryResolver(
        [
            (JANE.email, demo_record("contact", JANE.email, "Jane Doe")),
            (JANE.email, demo_record("systemuser", JANE.email, "Jane Doe")),
        ]
    )
    result = resolve(message("Hi", sender=JANE), book)
    assert result.sender is not None and result.sender.records[0].entity == "systemuser"


def test_unique_sender_links_single_person() -> None:
    result = resolve(message("Hi", sender=KENJI), BOOK, ResolutionPolicy.UNIQUE_SENDER, X_RECORD)
    assert result.sender is not None and result.sender.records[0].entity == "lead"
    assert not result.needs_review


def test_unique_sender_ambiguous_goes_to_owner_for_review() -> None:
    result = resolve(message("Hi", sender=RUTH), BOOK, ResolutionPolicy.UNIQUE_SENDER, X_RECORD)
    assert result.sender is not None and result.sender.records == (X_RECORD,)
    assert result.needs_review and "2 person records" in result.review_note
    assert RUTH in result.unresolved


def test_unique_sender_decision_flags_review_only_when_tracked() -> None:
    world = World(
        options=UserOptions(
            incoming_filter=IncomingFilter.ALL, resolution_policy=ResolutionPolicy.UNIQUE_SENDER
        )
    )
    decision = world.decide(message("Hi", sender=STRANGER))
    assert decision.track and decision.needs_review
    world.options = UserOptions(
        incoming_filter=IncomingFilter.NONE,
        resolution_policy=ResolutionPolicy.UNIQUE_SENDER,
        mailbox_owner=X_RECORD,
        mailbox_addresses=(X.email,),
    )
    assert not world.decide(message("Hi", sender=STRANGER)).needs_review


def test_plan_new_records_for_unknown_sender_only() -> None:
    mail = message("Hi", sender=STRANGER)
    planned = plan_new_records(mail, AutoCreate.CONTACT, BOOK, tracked=True)
    assert [(n.entity, n.first_name, n.last_name) for n in planned] == [
        ("contact", "Chris", "Parker")
    ]
    assert plan_new_records(mail, AutoCreate.NONE, BOOK, tracked=True) == ()
    assert plan_new_records(mail, AutoCreate.LEAD, BOOK, tracked=False) == ()
    known = message("Hi", sender=JANE)
    assert plan_new_records(known, AutoCreate.LEAD, BOOK, tracked=True) == ()
    internal = message("Hi", sender=Address("new.hire@contoso.example", "New Hire"))
    assert plan_new_records(internal, AutoCreate.LEAD, BOOK, tracked=True) == ()


def test_split_name() -> None:
    assert split_name(Address("a@x", "Jane Doe")) == ("Jane", "Doe")
    assert split_name(Address("a@x", "Doe, Jane")) == ("Jane", "Doe")
    assert split_name(Address("a@x", "Mary Ann Smith")) == ("Mary Ann", "Smith")
    assert split_name(Address("jd@x", "")) == ("", "jd")


def test_org_can_leave_shared_addresses_unresolved() -> None:
    mail = message("Hi", sender=RUTH, to=(X, RUTH))
    result = resolve(mail, BOOK, unresolve_multiple=True)
    assert result.sender is not None and not result.sender.resolved
    assert RUTH in result.unresolved
    assert all(p.resolved for p in result.parties if p.address == X)
