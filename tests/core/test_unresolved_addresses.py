"""``unresolved_addresses``: which of a message's addresses no CRM record has (what the reading
pane offers to add), on the demo organisation's address books."""

from __future__ import annotations

from core.domain.model import Address
from core.domain.resolution import InMemoryResolver, unresolved_addresses
from tests.core import JANE, STRANGER, X, message

OTHER = Address("someone@unknown.example")


def test_sender_then_recipients_without_a_record_and_never_the_owner() -> None:
    mail = message("Order", sender=STRANGER, to=(X, JANE, OTHER), cc=(X,))
    book = InMemoryResolver.from_demo()
    assert unresolved_addresses(mail, book, X) == (STRANGER, OTHER)


def test_owner_is_left_out_whatever_the_case_of_its_address() -> None:
    mail = message("Note", sender=JANE, to=(Address(X.email.upper()),))
    assert unresolved_addresses(mail, InMemoryResolver(), X) == (JANE,)
