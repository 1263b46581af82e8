"""Address resolution: which CRM records the addresses of a message stand for.

Two policies (:class:`~core.domain.crm_settings.ResolutionPolicy`):

- all matches (Dynamics, reference section 1): a recipient links to every record with that
  address; the sender to the first match in the CRM's order SystemUser, Contact, Account, Lead,
  Equipment, Team, Business unit, then other e-mail-enabled tables (queues, custom);
- unique sender: the sender links only when exactly one *person* record (contact, lead, user)
  matches; otherwise the mailbox owner stands in and the mail is flagged for review.

Unresolved addresses are listed so the GUI can show them under "Needs attention". The address
books themselves sit behind :class:`Resolver` (in memory here, SQLite in the store).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from core.domain.crm_settings import AutoCreate, ResolutionPolicy
from core.domain.entities import TABLE
from core.domain.model import Address, MessageHeader, Party, RecordRef

#: Sender resolution order when several records share an address.
SENDER_ORDER = ("systemuser", "contact", "account", "lead", "equipment", "team", "businessunit")
PERSON_ENTITIES = frozenset({"contact", "lead", "systemuser"})
CUSTOMER_ENTITIES = frozenset({"contact", "account", "lead"})
INTERNAL_ENTITIES = frozenset({"systemuser", "queue"})

#: How a reason names a record's table ("Sender Jane Doe is a CRM contact"): from the one
#: entity table, ``core.domain.entities``; a table it does not list reads "a CRM <name>".
ENTITY_LABELS: Mapping[str, str] = MappingProxyType({e.logical: f"a CRM {e.label}" for e in TABLE})


@runtime_checkable
class Resolver(Protocol):
    """Look-up of address books. ``address_key`` is case-folded (``Address.key``)."""

    def lookup(self, address_key: str) -> Sequence[RecordRef]:
        """Every active e-mail-enabled record with this primary address, any entity type."""
        ...

    def is_internal(self, address_key: str) -> bool:
        """True for the organisation's own people: a CRM user or queue (or, if configured,
        an address of the organisation's own domains)."""
        ...


#: The same interface under the name the GUI and the store use for it.
AddressBook = Resolver


class InMemoryResolver:
    """A :class:`Resolver` over a dictionary, for tests, the emulator and the demo."""

    def __init__(
        self, entries: Iterable[tuple[str, RecordRef]] = (), internal_domains: Iterable[str] = ()
    ) -> None:
        self._records: dict[str, list[RecordRef]] = {}
        self._internal_domains = frozenset(d.lower().lstrip("@") for d in internal_domains)
        for address, record in entries:
            self.add(address, record)

    def add(self, address: str, record: RecordRef) -> None:
        records = self._records.setdefault(address.strip().lower(), [])
        if record not in records:
            records.append(record)

    def lookup(self, address_key: str) -> Sequence[RecordRef]:
        return tuple(self._records.get(address_key, ()))

    def is_internal(self, address_key: str) -> bool:
        if any(r.entity in INTERNAL_ENTITIES for r in self._records.get(address_key, ())):
            return True
        domain = address_key.rpartition("@")[2]
        return bool(domain) and domain in self._internal_domains

    @classmethod
    def from_demo(cls) -> InMemoryResolver:
        """The demo organisation's address books, with stable ids (``demo_record_id``)."""
        from core.domain import demo_data as demo

        entries: list[tuple[str, RecordRef]] = []
        for user in demo.USERS:
            entries.append((user.email, demo_record("systemuser", user.email, user.full_name)))
        for account in demo.ACCOUNTS:
            entries.append((account.email, demo_record("account", account.email, account.name)))
        for contact in demo.CONTACTS:
            entries.append(
                (contact.email, demo_record("contact", contact.email, contact.full_name))
            )
        for lead in demo.LEADS:
            entries.append((lead.email, demo_record("lead", lead.email, lead.full_name)))
        return cls(entries, internal_domains=[demo.INTERNAL_DOMAIN])


def demo_record(entity: str, email: str, name: str) -> RecordRef:
    """A demo record with a GUID derived from entity and address (stable across runs)."""
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"trackbox-demo:{entity}:{email.lower()}")
    return RecordRef(entity, str(ident), name)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The parties of one message and what could not be resolved."""

    parties: tuple[Party, ...]
    unresolved: tuple[Address, ...]
    sender_matches: tuple[RecordRef, ...] = ()
    sender_internal: bool = False
    needs_review: bool = False
    review_note: str = ""

    @property
    def sender(self) -> Party | None:
        return next((p for p in self.parties if p.role == "from"), None)


def sender_order_key(record: RecordRef) -> int:
    try:
        return SENDER_ORDER.index(record.entity)
    except ValueError:
        return len(SENDER_ORDER)  # queues, custom tables: after the documented ones


def resolve(
    message: MessageHeader,
    resolver: Resolver,
    policy: ResolutionPolicy = ResolutionPolicy.ALL_MATCHES,
    owner: RecordRef | None = None,
    *,
    bcc: Sequence[Address] = (),
    unresolve_multiple: bool = False,
) -> Resolution:
    """Resolve sender and recipients of ``message`` under ``policy``.

    ``owner`` is the mailbox owner's systemuser record, used by the unique-sender policy.
    ``unresolve_multiple`` is the org's ``unresolveemailaddressifmultiplematch``: an address
    that several records share is left unresolved instead of linked to all (or the first).
    """
    parties: list[Party] = []
    unresolved: dict[str, Address] = {}
    matches: tuple[RecordRef, ...] = ()
    internal = False
    review = ""
    sender = message.sender
    if sender is not None and sender.key:
        matches = tuple(sorted(resolver.lookup(sender.key), key=sender_order_key))
        internal = resolver.is_internal(sender.key)
        if policy is ResolutionPolicy.UNIQUE_SENDER:
            persons = [r for r in matches if r.entity in PERSON_ENTITIES]
            if len(persons) == 1:
                linked: tuple[RecordRef, ...] = (persons[0],)
            else:
                linked = (owner,) if owner is not None else ()
                unresolved.setdefault(sender.key, sender)
                review = (
                    f"Sender {sender.display()} matches no person record in the CRM"
                    if not persons
                    else f"Sender {sender.display()} matches {len(persons)} person records "
                    f"in the CRM"
                )
        else:
            linked = () if unresolve_multiple and len(matches) > 1 else matches[:1]
            if not linked:
                unresolved.setdefault(sender.key, sender)
        parties.append(Party(sender, "from", linked))
    for role, addresses in (("to", message.to), ("cc", message.cc), ("bcc", bcc)):
        for address in addresses:
            if not address.key:
                continue
            records = tuple(resolver.lookup(address.key))
            if unresolve_multiple and len(records) > 1:
                records = ()
            parties.append(Party(address, role, records))
            if not records:
                unresolved.setdefault(address.key, address)
    return Resolution(
        tuple(parties),
        tuple(unresolved.values()),
        matches,
        internal,
        needs_review=bool(review),
        review_note=review,
    )


def unresolved_addresses(
    message: MessageHeader, resolver: Resolver, owner: Address
) -> tuple[Address, ...]:
    """The sender, To and Cc addresses of ``message`` that no CRM record has, in that order
    (the mailbox ``owner`` is never listed): what the reading pane offers to add to the CRM."""
    candidates = [a for a in (message.sender, *message.to, *message.cc) if a is not None]
    own = owner.email.lower()
    return tuple(a for a in candidates if a.key != own and not resolver.lookup(a.key))


def describe_sender(
    sender: Address | None, matches: Sequence[RecordRef], allowed: frozenset[str] | None = None
) -> str:
    """ "Sender Jane Doe is a CRM contact" for the first match (in ``allowed`` entities)."""
    pool = [r for r in matches if allowed is None or r.entity in allowed]
    who = display_name(sender, pool[0] if pool else None)
    if not pool:
        return f"Sender {who} is not in the CRM"
    label = ENTITY_LABELS.get(pool[0].entity, f"a CRM {pool[0].entity}")
    return f"Sender {who} is {label}"


def display_name(sender: Address | None, record: RecordRef | None = None) -> str:
    """How a person is named in reasons: display name, else record name, else address."""
    if sender is not None and sender.name:
        return sender.name
    if record is not None and record.name:
        return record.name
    return sender.email if sender is not None else "(no sender)"


# --- creating records for unknown senders ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A contact or lead to create for an unknown sender ("Automatically create records")."""

    entity: str
    email: str
    first_name: str
    last_name: str


def plan_new_records(
    message: MessageHeader, auto_create: AutoCreate, resolver: Resolver, *, tracked: bool
) -> tuple[NewRecord, ...]:
    """The record to create for the sender of a tracked mail when nobody in the CRM has the
    address (never for internal or ambiguous senders). The caller creates it, then tracks."""
    sender = message.sender
    if (
        not tracked
        or auto_create is AutoCreate.NONE
        or sender is None
        or not sender.key
        or "@" not in sender.key
        or resolver.lookup(sender.key)
        or resolver.is_internal(sender.key)
    ):
        return ()
    first, last = split_name(sender)
    return (NewRecord(auto_create.value, sender.email.strip(), first, last),)


def split_name(address: Address) -> tuple[str, str]:
    """First and last name from a display name ("Jane Doe", "Doe, Jane"); the CRM requires a
    last name, so the address's local part stands in when there is no name."""
    name = " ".join(address.name.replace('"', " ").split())
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip() or address.email.split("@")[0]
    if " " in name:
        first, _, last = name.rpartition(" ")
        return first, last
    return "", name or address.email.split("@")[0]
