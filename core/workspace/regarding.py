"""Search for the regarding picker: which CRM record is this mail about?

The picker must answer at once and keep working offline, so a search runs in two steps that
the GUI calls separately (each on a worker):

1. :meth:`RegardingSearch.local` — recently used records that match, then the cached address
   books (``core.sync.address_books``: accounts, contacts, leads and any other e-mail-enabled
   type the cache holds), through the FTS index. No network.
2. :meth:`RegardingSearch.remote` — the CRM itself (``CrmClient.query`` with ``contains`` /
   ``startswith`` filters) for accounts, contacts, leads and the records the cache never holds:
   open opportunities and active cases.

:meth:`RegardingSearch.related` gives, for a contact, the account it belongs to and the open
opportunities and cases of that contact and account (what the CRM for Outlook showed under a
contact). Recently used records are kept in the store's settings snapshot
(``recent_regarding``), newest first.

Results are :class:`RegardingHit` values, already ordered by :func:`group_hits`: recent first,
then one group per entity type in :data:`GROUP_ORDER`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.crm import CrmClient
from core.crm.client import odata_string
from core.domain import entities
from core.domain.model import Address, MessageHeader, RecordRef
from core.store import Store
from core.sync.address_books import FORMATTED, AddressBook, AddressBookEntry

RECENT_KIND = "recent_regarding"
RECENT_LIMIT = 10

#: Entities a mail can be regarding (``core.domain.entities``), in the order the picker groups
#: them: customers first.
GROUP_ORDER = ("account", "contact", "lead", "opportunity", "incident")

#: The picker's suggestions for a mail (before anything is typed), in this order of groups.
SUGGESTION_GROUPS = {
    "suggested-people": "People on this mail",
    "suggested-accounts": "Their accounts",
    "suggested-opportunities": "Open opportunities",
    "suggested-cases": "Open cases",
    "recent": "Recently used",
}
#: A related record's entity → its suggestion group.
_RELATED_GROUP = {
    "account": "suggested-accounts",
    "opportunity": "suggested-opportunities",
    "incident": "suggested-cases",
}
#: Where the CRM's answers for suggestions are kept, for suggestions offline.
RELATED_KIND = "regarding_related"
RELATED_KEEP = 200
#: People of a mail whose accounts, opportunities and cases are asked for (a mail to 500
#: people must not cost 1,500 queries).
RELATED_PEOPLE = 5

ENTITY_LABELS = {
    "recent": "Recently used",
    **{e: entities.entity(e).plural for e in GROUP_ORDER},
    **SUGGESTION_GROUPS,
}


def can_be_regarding(logical: str) -> bool:
    """Whether an e-mail can be filed regarding a record of this type (cached people and
    resources, users, queues, facilities, cannot)."""
    known = entities.ENTITIES.get(logical)
    return known is not None and known.regarding


@dataclass(frozen=True, slots=True)
class CrmSearchSpec:
    """How one entity is searched in the CRM: its table (set, key, primary name), the
    attributes a ``contains`` filter looks at, the detail shown under the name, and the
    "open" filter."""

    table: entities.CrmEntity
    search: tuple[str, ...]
    detail: str | None = None
    detail_lookup: str | None = None  # lookup whose formatted value is the detail
    open_filter: str = "statecode eq 0"

    @property
    def entity(self) -> str:
        return self.table.logical

    @property
    def set_name(self) -> str:
        return self.table.entity_set

    @property
    def key(self) -> str:
        return self.table.key

    @property
    def name(self) -> str:
        return self.table.name_column or self.table.key


CRM_SPECS: dict[str, CrmSearchSpec] = {
    s.entity: s
    for s in (
        CrmSearchSpec(
            entities.entity("account"), ("name", "emailaddress1"), detail="emailaddress1"
        ),
        CrmSearchSpec(
            entities.entity("contact"),
            ("fullname", "emailaddress1"),
            detail="emailaddress1",
            detail_lookup="parentcustomerid",
        ),
        CrmSearchSpec(
            entities.entity("lead"),
            ("fullname", "companyname", "emailaddress1"),
            detail="companyname",
        ),
        CrmSearchSpec(entities.entity("opportunity"), ("name",), detail_lookup="customerid"),
        CrmSearchSpec(
            entities.entity("incident"),
            ("title", "ticketnumber"),
            detail="ticketnumber",
            detail_lookup="customerid",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class RegardingHit:
    """One line of the picker. ``group`` is ``"recent"`` or the entity name; ``source`` says
    where it came from (``recent``, ``cache``, ``crm``); ``parent`` is set on records listed
    under a contact by :meth:`RegardingSearch.related`."""

    record: RecordRef
    group: str
    detail: str = ""
    source: str = "cache"
    parent: RecordRef | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.record.entity, self.record.id.lower())


def group_hits(hits: Iterable[RegardingHit]) -> list[RegardingHit]:
    """Order hits for display: recent first, then by :data:`GROUP_ORDER` (other types last),
    keeping each group's own order and dropping duplicates (the first occurrence wins)."""
    rank = {g: i for i, g in enumerate(("recent", *GROUP_ORDER))}
    seen: set[tuple[str, str]] = set()
    unique = []
    for hit in hits:
        if hit.key not in seen:
            seen.add(hit.key)
            unique.append(hit)
    order = sorted(
        range(len(unique)), key=lambda i: (rank.get(unique[i].group, len(rank)), unique[i].group, i)
    )
    return [unique[i] for i in order]


def _matches(text: str, *fields: str) -> bool:
    words = text.casefold().split()
    hay = " ".join(fields).casefold()
    return all(w in hay for w in words)


class RegardingSearch:
    """The picker's search. ``store`` is a callable giving this thread's store (e.g.
    ``Workspace.store``): each method runs on whichever worker thread calls it."""

    def __init__(
        self,
        store: Callable[[], Store],
        crm: CrmClient | None = None,
        *,
        entities: Sequence[str] = GROUP_ORDER,
    ) -> None:
        self._store = store
        self.crm = crm
        self.entities = tuple(entities)

    # -- recently used -----------------------------------------------------------------------
    def recent(self) -> list[RegardingHit]:
        data = self._store().snapshots.get(RECENT_KIND) or {}
        hits = []
        for item in data.get("records", []):
            try:
                ref = RecordRef(str(item["entity"]), str(item["id"]), str(item.get("name", "")))
            except (KeyError, TypeError):
                continue  # a damaged entry is skipped, the rest still shows
            hits.append(RegardingHit(ref, "recent", str(item.get("detail", "")), "recent"))
        return hits

    def remember(self, record: RecordRef, detail: str = "") -> None:
        """Put ``record`` at the top of the recently used list (kept to RECENT_LIMIT)."""
        items = [
            {
                "entity": h.record.entity,
                "id": h.record.id,
                "name": h.record.name,
                "detail": h.detail,
            }
            for h in self.recent()
            if h.key != (record.entity, record.id.lower())
        ]
        items.insert(
            0, {"entity": record.entity, "id": record.id, "name": record.name, "detail": detail}
        )
        self._store().snapshots.save(RECENT_KIND, {"records": items[:RECENT_LIMIT]})

    # -- step 1: local ------------------------------------------------------------------------
    def local(self, text: str, *, limit: int = 30) -> list[RegardingHit]:
        """Recent records matching ``text`` (all of them when ``text`` is blank), then the
        cached address books. Never touches the network."""
        text = text.strip()
        recent = [h for h in self.recent() if not text or _matches(text, h.record.name, h.detail)]
        if not text:
            return recent
        book = AddressBook(self._store())
        cached = [
            e for e in book.search(text, limit=limit * 2) if can_be_regarding(e.record.entity)
        ]
        hits = [
            RegardingHit(
                e.record, e.record.entity, " · ".join(p for p in (e.company, e.email) if p), "cache"
            )
            for e in cached[:limit]
        ]
        return group_hits([*recent, *hits])

    # -- step 2: the CRM -------------------------------------------------------------------------
    def remote(self, text: str, *, per_type: int = 10) -> list[RegardingHit]:
        """Ask the CRM, one query per type. Raises ``CrmError`` (the picker says so and
        keeps the local results)."""
        text = text.strip()
        if not text or self.crm is None:
            return []
        hits: list[RegardingHit] = []
        for entity in self.entities:
            spec = CRM_SPECS.get(entity)
            if spec is None:
                continue
            hits.extend(self._query(spec, _contains_filter(spec, text), per_type))
        return group_hits(hits)

    def related(self, contact: RecordRef, *, per_type: int = 10) -> list[RegardingHit]:
        """For a contact: its parent account, then the open opportunities and active cases of
        the contact and of that account. Raises ``CrmError``."""
        if self.crm is None or contact.entity != "contact":
            return []
        table = entities.entity("contact")
        row = self.crm.get(
            table.entity_set,
            contact.id,
            select=[table.key, "_parentcustomerid_value"],
            annotations=True,
        )
        parent_id = row.get("_parentcustomerid_value")
        parent_type = row.get(
            "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname", "account"
        )
        hits: list[RegardingHit] = []
        owners = [contact.id]
        if parent_id and parent_type == "account":
            name = str(row.get(f"_parentcustomerid_value{FORMATTED}") or "")
            hits.append(
                RegardingHit(
                    RecordRef("account", str(parent_id).lower(), name),
                    "account",
                    "Account of this contact",
                    "crm",
                    contact,
                )
            )
            owners.append(str(parent_id))
        for entity, lookups in (
            ("opportunity", ("customerid", "parentcontactid", "parentaccountid")),
            ("incident", ("customerid",)),
        ):
            spec = CRM_SPECS[entity]
            who = " or ".join(f"_{lk}_value eq {_guid(o)}" for lk in lookups for o in owners)
            for hit in self._query(spec, f"({who}) and {spec.open_filter}", per_type):
                hits.append(RegardingHit(hit.record, hit.group, hit.detail, "crm", contact))
        return hits

    def related_of(self, record: RecordRef, *, per_type: int = 10) -> list[RegardingHit]:
        """:meth:`related` for a contact; for an account, its open opportunities and active
        cases. Raises ``CrmError``."""
        if record.entity == "contact":
            return self.related(record, per_type=per_type)
        if self.crm is None or record.entity != "account":
            return []
        hits: list[RegardingHit] = []
        for entity, lookups in (
            ("opportunity", ("customerid", "parentaccountid")),
            ("incident", ("customerid",)),
        ):
            spec = CRM_SPECS[entity]
            who = " or ".join(f"_{lk}_value eq {_guid(record.id)}" for lk in lookups)
            for hit in self._query(spec, f"({who}) and {spec.open_filter}", per_type):
                hits.append(RegardingHit(hit.record, hit.group, hit.detail, "crm", record))
        return hits

    def store(self) -> Store:
        """This thread's store."""
        return self._store()

    def _query(self, spec: CrmSearchSpec, filter_: str, top: int) -> list[RegardingHit]:
        assert self.crm is not None
        select = [spec.key, spec.name]
        if spec.detail:
            select.append(spec.detail)
        if spec.detail_lookup:
            select.append(f"_{spec.detail_lookup}_value")
        rows: list[dict[str, Any]] = []
        for page in self.crm.query_pages(
            spec.set_name,
            select=select,
            filter=filter_,
            orderby=spec.name,
            top=top,
            annotations=spec.detail_lookup is not None,
        ):
            rows.extend(page)
            if len(rows) >= top:
                break
        hits = []
        for row in rows[:top]:
            record = RecordRef(
                spec.entity, str(row[spec.key]).lower(), str(row.get(spec.name) or "")
            )
            parts = []
            if spec.detail_lookup:
                parts.append(str(row.get(f"_{spec.detail_lookup}_value{FORMATTED}") or ""))
            if spec.detail:
                parts.append(str(row.get(spec.detail) or ""))
            hits.append(RegardingHit(record, spec.entity, " · ".join(p for p in parts if p), "crm"))
        return hits


# -- suggestions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suggestions:
    """What the picker shows for a mail before anything is typed. ``complete``: the
    accounts, opportunities and cases of every person are in (from the CRM or its kept
    answers); False when some need the CRM."""

    hits: list[RegardingHit]
    complete: bool = True


def mail_addresses(header: MessageHeader) -> list[Address]:
    """The sender, then the To and Cc recipients, each address once."""
    seen: set[str] = set()
    out = []
    for address in (header.sender, *header.to, *header.cc):
        if address is not None and address.email and address.email.lower() not in seen:
            seen.add(address.email.lower())
            out.append(address)
    return out


def choose_suggestions(
    people: Sequence[RegardingHit],
    related: Mapping[tuple[str, str], Sequence[RegardingHit]],
    recent: Sequence[RegardingHit],
    *,
    per_group: int = 10,
) -> list[RegardingHit]:
    """The suggestions, grouped in :data:`SUGGESTION_GROUPS` order: the mail's people (in
    address order), their accounts, open opportunities and cases (``related`` by person's
    key), then recent choices. A record shows once, in its first group; each group keeps at
    most ``per_group``. Pure: the caller gathers the inputs."""
    groups: dict[str, list[RegardingHit]] = {g: [] for g in SUGGESTION_GROUPS}
    candidates: list[RegardingHit] = [
        RegardingHit(h.record, "suggested-people", h.detail, h.source)
        for h in people
        if can_be_regarding(h.record.entity)
    ]
    for person in people:
        for hit in related.get(person.key, ()):
            group = _RELATED_GROUP.get(hit.record.entity)
            if group is not None:
                candidates.append(RegardingHit(hit.record, group, hit.detail, hit.source))
    candidates.extend(RegardingHit(h.record, "recent", h.detail, h.source) for h in recent)
    seen: set[tuple[str, str]] = set()
    for hit in candidates:
        if hit.key in seen or len(groups[hit.group]) >= per_group:
            continue
        seen.add(hit.key)
        groups[hit.group].append(hit)
    return [hit for group in groups.values() for hit in group]


class RegardingSuggestions:
    """The picker's suggestions for one mail (each method on a worker): :meth:`local` from
    the address books, the CRM's kept answers and recent choices (no network), then
    :meth:`remote`, which asks the CRM and keeps its answers for offline use."""

    def __init__(self, search: RegardingSearch, header: MessageHeader) -> None:
        self.search = search
        self.header = header

    def people(self) -> list[RegardingHit]:
        """The address-book records of the mail's addresses (those a mail can be regarding)."""
        book = AddressBook(self.search.store())
        hits = []
        for address in mail_addresses(self.header):
            role = "From" if address == self.header.sender else "To"
            for record in book.lookup(address.email):
                if can_be_regarding(record.entity):
                    hits.append(RegardingHit(record, record.entity, f"{role}: {address.email}"))
        return hits

    def local(self) -> Suggestions:
        people = self.people()
        kept = self._kept()
        related = {p.key: kept[p.key] for p in people if p.key in kept}
        wanted = [p for p in people if p.record.entity in ("contact", "account")]
        complete = all(p.key in related for p in wanted[:RELATED_PEOPLE])
        hits = choose_suggestions(people, related, self.search.recent())
        return Suggestions(hits, complete)

    def remote(self) -> Suggestions:
        """Ask the CRM for the accounts, open opportunities and cases of the mail's contacts
        and accounts. Raises ``CrmError``."""
        people = self.people()
        related: dict[tuple[str, str], list[RegardingHit]] = {}
        for person in [p for p in people if p.record.entity in ("contact", "account")][
            :RELATED_PEOPLE
        ]:
            related[person.key] = self.search.related_of(person.record)
        self._keep(related)
        return Suggestions(choose_suggestions(people, related, self.search.recent()), True)

    def _kept(self) -> dict[tuple[str, str], list[RegardingHit]]:
        data = self.search.store().snapshots.get(RELATED_KIND) or {}
        out: dict[tuple[str, str], list[RegardingHit]] = {}
        for item in data.get("people", []):
            try:
                key = (str(item["entity"]), str(item["id"]).lower())
                out[key] = [
                    RegardingHit(
                        RecordRef(str(h["entity"]), str(h["id"]), str(h.get("name", ""))),
                        str(h["entity"]),
                        str(h.get("detail", "")),
                        "cache",
                    )
                    for h in item.get("related", [])
                ]
            except (KeyError, TypeError):
                continue  # a damaged entry is skipped
        return out

    def _keep(self, related: Mapping[tuple[str, str], Sequence[RegardingHit]]) -> None:
        kept = {k: v for k, v in self._kept().items() if k not in related}
        merged = [*related.items(), *kept.items()][:RELATED_KEEP]
        people = [
            {
                "entity": key[0],
                "id": key[1],
                "related": [
                    {
                        "entity": h.record.entity,
                        "id": h.record.id,
                        "name": h.record.name,
                        "detail": h.detail,
                    }
                    for h in hits
                ],
            }
            for key, hits in merged
        ]
        self.search.store().snapshots.save(RELATED_KIND, {"people": people})


def _contains_filter(spec: CrmSearchSpec, text: str) -> str:
    """Every word must appear in one of the searched attributes; open records only."""
    clauses = []
    for word in text.split():
        literal = odata_string(word)
        ors = " or ".join(f"contains({attr},{literal})" for attr in spec.search)
        clauses.append(f"({ors})")
    return " and ".join([*clauses, spec.open_filter])


def _guid(value: str) -> str:
    """A GUID literal for ``$filter`` (only hex digits and dashes survive)."""
    return "".join(ch for ch in value if ch in "0123456789abcdefABCDEF-")


def browse(
    store: Store, entity: str | None = None, *, offset: int = 0, limit: int = 200
) -> list[AddressBookEntry]:
    """A page of the cached address books by name (the address-book dialog's browse mode,
    before anything is typed)."""
    return AddressBook(store).browse(entity, offset=offset, limit=limit)


__all__ = [
    "CRM_SPECS",
    "ENTITY_LABELS",
    "GROUP_ORDER",
    "SUGGESTION_GROUPS",
    "RegardingHit",
    "RegardingSearch",
    "RegardingSuggestions",
    "Suggestions",
    "browse",
    "can_be_regarding",
    "choose_suggestions",
    "group_hits",
    "mail_addresses",
]
