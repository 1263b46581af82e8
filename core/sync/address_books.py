"""The CRM address books, cached in the profile's store so that resolution, the regarding
picker and search work offline and fast.

What is cached (issue 6, DESIGN "Address books"): the active records of the e-mail-enabled
tables of ``core.domain.entities`` (contacts, accounts, leads, users, queues and
facilities/equipment) that have a *primary* e-mail address; contacts either only those I own
(the CRM for Outlook default, "contacts I synchronise") or all I can see.

How: the first population is a change-tracking read (``Prefer: odata.track-changes``) streamed
into the store while the next pages download and become cache rows on a helper thread
(``prefetched``), ``bulk_rows`` records per transaction so the mail sync and the outbox keep
writing in between, WAL checkpoints deferred
to the end (``Store.deferred_checkpoint``); it ends with a delta link. Every later sync reads
only that delta (changed rows, then ``$deletedEntity`` entries). An expired or refused delta
token, or a change of scope, falls back to a full read that also drops rows no longer seen.
The owner filter is applied here, not in ``$filter``: Dataverse rejects ``$filter`` together
with track-changes.

The rows, the sync state and the FTS5 search index (prefix queries, diacritics folded) live in
``core.store.address_books``: a full read writes with the index triggers standing aside and
either indexes its new rows batch by batch (a first population) or marks the index stale for
one rebuild at the end of the sync (a re-read, which also updates and drops rows).

Threading: like the store it sits on, one ``AddressBook`` per thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.crm import CrmClient, CrmPermanentError, DeltaPage
from core.crm.paging import prefetched
from core.domain.entities import CrmEntity, entity
from core.domain.model import RecordRef
from core.domain.resolution import sender_order_key
from core.store import Store
from core.store.address_books import (
    SEARCH_CANDIDATES,
    AddressBookEntry,
    AddressBookRows,
    CachedRow,
    cached_row,
)

FORMATTED = "@OData.Community.Display.V1.FormattedValue"


@dataclass(frozen=True, slots=True)
class Source:
    """How one e-mail-enabled table (``core.domain.entities``) maps onto address-book rows:
    where the company comes from, whether records have an owner, what marks them disabled."""

    entity: CrmEntity
    company: str | None = None  # attribute holding the company text, if any
    company_lookup: str | None = None  # lookup whose formatted value is the company
    owned: bool = True
    disabled_flag: str | None = None

    def __post_init__(self) -> None:
        if not (self.entity.primary_email and self.entity.name_column):
            raise ValueError(f"{self.entity.logical} has no primary e-mail or name column")

    @property
    def logical(self) -> str:
        return self.entity.logical

    @property
    def set_name(self) -> str:
        return self.entity.entity_set

    @property
    def key(self) -> str:
        return self.entity.key

    @property
    def name(self) -> str:
        return self.entity.name_column or self.entity.key

    @property
    def email(self) -> str:
        """The primary e-mail column: the only one cached."""
        return self.entity.primary_email or ""

    def select(self) -> list[str]:
        cols = [self.key, self.name, self.email, "statecode"]
        if self.company:
            cols.append(self.company)
        if self.company_lookup:
            cols.append(f"_{self.company_lookup}_value")
        if self.owned:
            cols.append("_ownerid_value")
        if self.disabled_flag:
            cols.append(self.disabled_flag)
        return cols


#: The e-mail-enabled tables, in the entity table's order (the order they are synced).
SOURCES: dict[str, Source] = {
    s.logical: s
    for s in (
        Source(entity("contact"), company_lookup="parentcustomerid"),
        Source(entity("account")),
        Source(entity("lead"), company="companyname"),
        Source(entity("systemuser"), owned=False, disabled_flag="isdisabled"),
        Source(entity("queue")),
        Source(entity("equipment"), owned=False, disabled_flag="isdisabled"),
    )
}


@dataclass(frozen=True, slots=True)
class EntitySyncResult:
    """What one sync did for one entity. ``error`` is set (and nothing changed) when the
    CRM refused this entity permanently (e.g. no read privilege); other entities went on."""

    entity: str
    full: bool
    upserted: int = 0
    removed: int = 0
    error: CrmPermanentError | None = None


Progress = Callable[[str, int], None]
#: Rows converted for the cache: those to keep, and the ids of those to drop.
Converted = tuple[list[CachedRow], list[str]]

BULK_ROWS = 20_000
#: Rows per page asked of the CRM (``odata.maxpagesize``). Decoding a page is one ``json.loads``
#: that holds the GIL throughout: 5,000 rows took 20-25 ms and froze the GUI thread that long
#: (bench/gui_folder.py max_stall); 2,000 rows stay near 5 ms, and the round trips added
#: stay within bench/addressbook_sync.py's target. Transactions still gather
#: ``bulk_rows`` rows, so the store sees no more commits than before.
PAGE_SIZE = 2000


class AddressBook:
    """The cached address books of one profile; a ``core.domain.resolution.Resolver``.

    ``user_id`` is the CRM user (WhoAmI) whose contacts "I own" means; when None, ``sync``
    asks the CRM. ``contacts_scope`` is ``"owned"`` or ``"all"``. ``internal_domains`` are
    the organisation's own mail domains, for ``is_internal``. ``sources`` maps entity names
    to how they are read (default ``SOURCES``; custom e-mail-enabled tables can be added).
    ``bulk_rows`` is how many rows a full read writes per transaction.
    """

    def __init__(
        self,
        store: Store,
        *,
        contacts_scope: str = "owned",
        entities: Sequence[str] = tuple(SOURCES),
        user_id: str | None = None,
        internal_domains: Iterable[str] = (),
        sources: Mapping[str, Source] = SOURCES,
        bulk_rows: int = BULK_ROWS,
    ) -> None:
        if contacts_scope not in ("owned", "all"):
            raise ValueError(f"contacts_scope must be 'owned' or 'all', not {contacts_scope!r}")
        unknown = [e for e in entities if e not in sources]
        if unknown:
            raise ValueError(f"not address-book entities: {', '.join(unknown)}")
        self.store = store
        self.rows = AddressBookRows(store)
        self.sources = sources
        self.bulk_rows = bulk_rows
        self.contacts_scope = contacts_scope
        self.entities = tuple(entities)
        self.user_id = user_id.lower() if user_id else None
        self.internal_domains = frozenset(d.lower().lstrip("@") for d in internal_domains)

    # -- sync ------------------------------------------------------------------------------

    def sync(
        self,
        crm: CrmClient,
        *,
        page_size: int = PAGE_SIZE,
        progress: Progress | None = None,
    ) -> list[EntitySyncResult]:
        """Bring every configured entity up to date: a delta when a delta link is stored,
        else a full read. Raises CrmUnavailable / CrmAuthError (the cycle goes offline);
        a permanent refusal for one entity is reported in its result instead."""
        if self.user_id is None and self.contacts_scope == "owned" and "contact" in self.entities:
            self.user_id = crm.who_am_i().user_id
        self.rows.rebuild_if_stale()
        results = []
        with self.store.deferred_checkpoint():
            try:
                for logical in self.entities:
                    try:
                        results.append(
                            self.sync_entity(
                                crm, logical, page_size=page_size, progress=progress, rebuild=False
                            )
                        )
                    except CrmPermanentError as exc:
                        results.append(EntitySyncResult(logical, full=True, error=exc))
                # Entities dropped from the configuration leave the cache.
                self.rows.keep_only(self.entities)
            finally:
                self.rows.rebuild_if_stale()
        return results

    def sync_entity(
        self,
        crm: CrmClient,
        logical: str,
        *,
        page_size: int = PAGE_SIZE,
        progress: Progress | None = None,
        rebuild: bool = True,
    ) -> EntitySyncResult:
        """Sync one entity (see ``sync``); ``rebuild=False`` leaves the search index to be
        rebuilt by the caller after a full read."""
        source = self.sources[logical]
        if rebuild:
            self.rows.rebuild_if_stale()
        scope = self._scope(logical)
        state = self.rows.sync_state(logical)
        if state and state.scope == scope and state.delta_link:
            try:
                return self._delta(crm, source, state.delta_link, page_size, progress)
            except CrmPermanentError:
                # Expired/invalid token (Dataverse keeps changes for a limited number of
                # days): read everything again. A real refusal fails again below and surfaces.
                pass
        try:
            with self.store.deferred_checkpoint():
                return self._full(crm, source, scope, page_size, progress)
        finally:
            if rebuild:
                self.rows.rebuild_if_stale()

    def _scope(self, logical: str) -> str:
        if logical == "contact" and self.contacts_scope == "owned":
            return f"owned:{self.user_id}"
        return "all"

    def _converter(self, source: Source) -> Callable[[Iterable[Mapping[str, Any]]], Converted]:
        """Rows of ``source`` as ``(cached rows, ids to drop)``: the rows that belong in the
        cache, and the ids of those that do not. Everything about the source is looked up
        once, not per row: a first population converts a hundred thousand of them, on the
        thread that downloads the pages (``_full``)."""
        email_col, key_col, name_col = source.email, source.key, source.name
        logical, disabled = source.logical, source.disabled_flag
        if source.company:
            company_col: str | None = source.company
        elif source.company_lookup:
            company_col = f"_{source.company_lookup}_value{FORMATTED}"
        else:
            company_col = None
        only_owner = logical == "contact" and self.contacts_scope == "owned"
        me = self.user_id

        def convert(rows: Iterable[Mapping[str, Any]]) -> Converted:
            keep: list[CachedRow] = []
            drops: list[str] = []
            for row in rows:
                email = str(row.get(email_col) or "").strip()
                owner = row.get("_ownerid_value")
                owner = str(owner).lower() if owner else None
                if (
                    not email
                    or "@" not in email
                    or row.get("statecode") not in (None, 0)
                    or (disabled and row.get(disabled))
                    or (only_owner and owner != me)
                ):
                    if row.get(key_col):
                        drops.append(str(row[key_col]).lower())
                    continue
                company = str(row.get(company_col) or "") if company_col else ""
                keep.append(
                    cached_row(
                        logical,
                        str(row[key_col]).lower(),
                        str(row.get(name_col) or ""),
                        email,
                        company,
                        owner,
                    )
                )
            return keep, drops

        return convert

    def _apply(
        self,
        source: Source,
        rows: Iterable[Mapping[str, Any]] | Converted,
        deleted: Iterable[str],
        *,
        bulk: bool = False,
        index_inserts: bool = False,
    ) -> tuple[int, int, list[str]]:
        """Write one batch: the rows that belong in the cache are upserted, the others and
        ``deleted`` dropped (see ``AddressBookRows.write`` for ``bulk``/``index_inserts``).
        ``rows`` may come converted already (:meth:`_converter`). Returns (upserted, removed,
        upserted ids)."""
        upserts, drops = rows if isinstance(rows, tuple) else self._converter(source)(rows)
        drops = drops + [d.lower() for d in deleted]
        removed = self.rows.write(
            source.logical, upserts, drops, bulk=bulk, index_inserts=index_inserts
        )
        return len(upserts), removed, [u[1] for u in upserts]

    def _full(
        self, crm: CrmClient, source: Source, scope: str, page_size: int, progress: Progress | None
    ) -> EntitySyncResult:
        had_rows = self.count(source.logical) > 0
        if had_rows:  # rows get updated and dropped without the triggers: rebuild at the end
            self.rows.mark_index_stale()
        pages = crm.track_changes_pages(
            source.set_name, source.select(), page_size=page_size, annotations=_annotations(source)
        )
        # The next page downloads while this one is written: the store stays on this thread
        # (sqlite3 connections are per thread), only HTTP + JSON run on the helper.
        # As many pages ahead as one transaction holds, so that downloading never waits
        # while a batch is written.
        convert = self._converter(source)
        converted = ((page, convert(page.rows)) for page in pages)
        stream = prefetched(converted, depth=max(4, self.bulk_rows // max(1, page_size)))
        try:  # within sync_entity's deferred_checkpoint
            upserted, seen, link = self._load(source, stream, had_rows, progress)
        finally:
            stream.close()
        removed = self.rows.drop_unseen(source.logical, seen) if had_rows else 0
        self.rows.save_sync_state(source.logical, scope, link)
        return EntitySyncResult(source.logical, True, upserted, removed)

    def _load(
        self,
        source: Source,
        pages: Iterator[tuple[DeltaPage, Converted]],
        had_rows: bool,
        progress: Progress | None,
    ) -> tuple[int, set[str], str | None]:
        keep: list[CachedRow] = []
        drops: list[str] = []
        seen: set[str] = set()
        upserted = 0
        link = None
        for page, (page_keep, page_drops) in pages:
            keep.extend(page_keep)
            drops.extend(page_drops)
            link = page.delta_link or link
            # A few pages per transaction: random-keyed index pages are then written once
            # instead of once per page (4x less I/O), and the write lock is still short.
            if len(keep) + len(drops) >= self.bulk_rows or link is not None:
                count, _, ids = self._apply(
                    source, (keep, drops), (), bulk=True, index_inserts=not had_rows
                )
                keep, drops = [], []
                upserted += count
                if had_rows:
                    seen.update(ids)
                if progress:
                    progress(source.logical, upserted)
        return upserted, seen, link

    def _delta(
        self, crm: CrmClient, source: Source, link: str, page_size: int, progress: Progress | None
    ) -> EntitySyncResult:
        upserted = removed = 0
        new_link = None
        for page in crm.track_changes_pages(
            source.set_name,
            source.select(),
            link,
            page_size=page_size,
            annotations=_annotations(source),
        ):
            count, gone, _ = self._apply(source, page.rows, page.deleted)
            upserted += count
            removed += gone
            new_link = page.delta_link or new_link
            if progress:
                progress(source.logical, upserted)
        self.rows.save_sync_state(source.logical, self._scope(source.logical), new_link)
        return EntitySyncResult(source.logical, False, upserted, removed)

    def reset(self, entity: str | None = None) -> None:
        """Forget cached records and delta links (all, or one entity): next sync reads all."""
        self.rows.reset(entity)

    def last_synced(self, entity: str) -> datetime | None:
        return self.rows.last_synced(entity)

    # -- queries (offline) -------------------------------------------------------------------

    def count(self, entity: str | None = None) -> int:
        return self.rows.count(entity)

    def browse(
        self, entity: str | None = None, *, offset: int = 0, limit: int = 200
    ) -> list[AddressBookEntry]:
        """A page of cached records by name (case-insensitive), all entities or one."""
        return self.rows.browse(entity, offset=offset, limit=limit)

    def lookup(self, address: str) -> list[RecordRef]:
        """Every cached record whose primary e-mail is ``address`` (case-insensitive), in
        the CRM's resolution order."""
        return [e.record for e in self.entries_for(address)]

    def is_internal(self, address_key: str) -> bool:
        """A CRM user or queue address, or one of ``internal_domains``."""
        key = address_key.strip().lower()
        if self.rows.is_internal_email(key):
            return True
        domain = key.rpartition("@")[2]
        return bool(domain) and domain in self.internal_domains

    def entries_for(self, address: str) -> list[AddressBookEntry]:
        entries = self.rows.with_email(address.strip().lower())
        # The CRM's resolution order (a From address takes the first; To/Cc list them all).
        entries.sort(key=lambda e: (sender_order_key(e.record), e.record.name, e.record.id))
        return entries

    def search(
        self,
        text: str,
        *,
        limit: int = 50,
        entities: Sequence[str] | None = None,
    ) -> list[AddressBookEntry]:
        """Records whose name, e-mail or company contain words starting with every word of
        ``text`` (``"fab inc"``, ``"priya"``, ``"contoso.example"``), best match first."""
        return self.rows.search(text, limit=limit, entities=entities)


def _annotations(source: Source) -> str:
    """Only the formatted values, and only when a company comes from a lookup."""
    return "OData.Community.Display.V1.FormattedValue" if source.company_lookup else ""


__all__ = [
    "SEARCH_CANDIDATES",
    "SOURCES",
    "AddressBook",
    "AddressBookEntry",
    "EntitySyncResult",
    "Source",
]
