"""The CRM address books, cached in the profile's store so that resolution, the regarding
picker and search work offline and fast.

What is cached (issue 6, DESIGN "Address books"): active contacts, accounts, leads, users,
queues and facilities/equipment that have a *primary* e-mail address (``emailaddress1``,
``internalemailaddress`` or ``emailaddress``); contacts either only those I own (the CRM for
Outlook default, "contacts I synchronise") or all I can see.

How: the first population is a change-tracking read (``Prefer: odata.track-changes``) streamed
into the store while the next pages download (``prefetched``), ``bulk_rows`` records per
transaction so the mail sync and the outbox keep writing in between, WAL checkpoints deferred
to the end (``Store.deferred_checkpoint``); it ends with a delta link. Every later sync reads
only that delta (changed rows, then ``$deletedEntity`` entries). An expired or refused delta
token, or a change of scope, falls back to a full read that also drops rows no longer seen.
The owner filter is applied here, not in ``$filter``: Dataverse rejects ``$filter`` together
with track-changes.

Search uses an FTS5 index over name, e-mail and company (prefix queries, diacritics folded).
A full read loads rows with the index triggers standing aside (``ab_bulk``): a first
population indexes each batch of new rows with one INSERT … SELECT in the same transaction
(row-by-row triggers cost 2.5x more); a re-read, which also updates and drops rows, marks the
index "stale" in the settings snapshot and rebuilds it once at the end of the sync. The mark
makes the next sync rebuild first should the process die in between (a delta must never
update an index that lacks the rows it deletes).

Threading: like the store it sits on, one ``AddressBook`` per thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.crm import CrmClient, CrmPermanentError, DeltaPage
from core.crm.paging import prefetched
from core.domain.model import Address, RecordRef
from core.domain.resolution import sender_order_key
from core.store import Store

FORMATTED = "@OData.Community.Display.V1.FormattedValue"


@dataclass(frozen=True, slots=True)
class Source:
    """How one entity set maps onto address-book rows."""

    logical: str
    set_name: str
    key: str
    name: str
    email: str
    company: str | None = None  # attribute holding the company text, if any
    company_lookup: str | None = None  # lookup whose formatted value is the company
    owned: bool = True
    disabled_flag: str | None = None

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


SOURCES: dict[str, Source] = {
    s.logical: s
    for s in (
        Source(
            "contact",
            "contacts",
            "contactid",
            "fullname",
            "emailaddress1",
            company_lookup="parentcustomerid",
        ),
        Source("account", "accounts", "accountid", "name", "emailaddress1"),
        Source("lead", "leads", "leadid", "fullname", "emailaddress1", company="companyname"),
        Source(
            "systemuser",
            "systemusers",
            "systemuserid",
            "fullname",
            "internalemailaddress",
            owned=False,
            disabled_flag="isdisabled",
        ),
        Source("queue", "queues", "queueid", "name", "emailaddress"),
        Source(
            "equipment",
            "equipments",
            "equipmentid",
            "name",
            "emailaddress",
            owned=False,
            disabled_flag="isdisabled",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class AddressBookEntry:
    record: RecordRef
    email: str
    company: str = ""
    owner_id: str | None = None

    @property
    def address(self) -> Address:
        return Address(self.email, self.record.name)


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

_UPSERT = (
    "INSERT INTO ab_records (entity, record_id, name, email, email_key, company, owner_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entity, record_id) DO UPDATE SET"
    " name = excluded.name, email = excluded.email, email_key = excluded.email_key,"
    " company = excluded.company, owner_id = excluded.owner_id"
)
_WORD = re.compile(r"\w+", re.UNICODE)
_INDEX_STATE = "addressbook.search_index"
SEARCH_CANDIDATES = 2000
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
        self._rebuild_if_stale()
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
                self._forget_other_entities()
            finally:
                self._rebuild_if_stale()
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
            self._rebuild_if_stale()
        scope = self._scope(logical)
        state = self.store.conn.execute(
            "SELECT scope, delta_link FROM ab_sync WHERE entity = ?", (logical,)
        ).fetchone()
        if state and state[0] == scope and state[1]:
            try:
                return self._delta(crm, source, state[1], page_size, progress)
            except CrmPermanentError:
                # Expired/invalid token (Dataverse keeps changes for a limited number of
                # days): read everything again. A real refusal fails again below and surfaces.
                pass
        try:
            with self.store.deferred_checkpoint():
                return self._full(crm, source, scope, page_size, progress)
        finally:
            if rebuild:
                self._rebuild_if_stale()

    def _scope(self, logical: str) -> str:
        if logical == "contact" and self.contacts_scope == "owned":
            return f"owned:{self.user_id}"
        return "all"

    def _keep(self, source: Source, row: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Row values for ab_records, or None when the record does not belong in the cache."""
        email = str(row.get(source.email) or "").strip()
        if not email or "@" not in email:
            return None
        if row.get("statecode") not in (None, 0):
            return None
        if source.disabled_flag and row.get(source.disabled_flag):
            return None
        owner = row.get("_ownerid_value")
        owner = str(owner).lower() if owner else None
        if (
            source.logical == "contact"
            and self.contacts_scope == "owned"
            and (owner != self.user_id)
        ):
            return None
        if source.company:
            company = str(row.get(source.company) or "")
        elif source.company_lookup:
            company = str(row.get(f"_{source.company_lookup}_value{FORMATTED}") or "")
        else:
            company = ""
        record_id = str(row[source.key]).lower()
        return (
            source.logical,
            record_id,
            str(row.get(source.name) or ""),
            email,
            email.lower(),
            company,
            owner,
        )

    def _apply(
        self,
        source: Source,
        rows: Iterable[Mapping[str, Any]],
        deleted: Iterable[str],
        *,
        bulk: bool = False,
        index_inserts: bool = False,
    ) -> tuple[int, int, list[str]]:
        """Write one batch. ``bulk``: the search-index triggers stand aside. With
        ``index_inserts`` (a first population) the new rows are indexed in the same
        transaction by one INSERT … SELECT; anything else than pure inserts marks the index
        stale for a rebuild."""
        upserts: list[tuple[Any, ...]] = []
        drops = [d.lower() for d in deleted]
        for row in rows:
            values = self._keep(source, row)
            if values is None:
                if row.get(source.key):
                    drops.append(str(row[source.key]).lower())
            else:
                upserts.append(values)
        removed = 0
        with self.store.transaction() as conn:
            before = conn.execute("SELECT coalesce(max(rowid), 0) FROM ab_records").fetchone()[0]
            if bulk:
                conn.execute("INSERT OR IGNORE INTO ab_bulk VALUES (1)")
            if upserts:
                conn.executemany(_UPSERT, upserts)
            if drops:
                removed = conn.executemany(
                    "DELETE FROM ab_records WHERE entity = ? AND record_id = ?",
                    ((source.logical, d) for d in drops),
                ).rowcount
            if bulk:
                conn.execute("DELETE FROM ab_bulk")
            if index_inserts:
                after = conn.execute("SELECT coalesce(max(rowid), 0) FROM ab_records").fetchone()
                if after[0] - before == len(upserts) and not removed:
                    conn.execute(
                        "INSERT INTO ab_fts (rowid, name, email, company) SELECT rowid, name,"
                        " email, company FROM ab_records WHERE rowid > ?",
                        (before,),
                    )
                else:  # a record seen twice in one read: let the rebuild sort it out
                    self._mark_stale()
        return len(upserts), removed, [u[1] for u in upserts]

    def _rebuild_if_stale(self) -> None:
        if (self.store.settings(_INDEX_STATE) or {}).get("stale"):
            with self.store.transaction() as conn:
                conn.execute("INSERT INTO ab_fts (ab_fts) VALUES ('rebuild')")
                self.store.save_settings(_INDEX_STATE, {"stale": False})

    def _mark_stale(self) -> None:
        if not (self.store.settings(_INDEX_STATE) or {}).get("stale"):
            self.store.save_settings(_INDEX_STATE, {"stale": True})

    def _full(
        self, crm: CrmClient, source: Source, scope: str, page_size: int, progress: Progress | None
    ) -> EntitySyncResult:
        had_rows = self.count(source.logical) > 0
        if had_rows:  # rows get updated and dropped without the triggers: rebuild at the end
            self._mark_stale()
        pages = crm.track_changes_pages(
            source.set_name, source.select(), page_size=page_size, annotations=_annotations(source)
        )
        # The next page downloads while this one is written: the store stays on this thread
        # (sqlite3 connections are per thread), only HTTP + JSON run on the helper.
        # As many pages ahead as one transaction holds, so that downloading never waits
        # while a batch is written.
        stream = prefetched(pages, depth=max(4, self.bulk_rows // max(1, page_size)))
        try:  # within sync_entity's deferred_checkpoint
            upserted, seen, link = self._load(source, stream, had_rows, progress)
        finally:
            stream.close()
        removed = self._drop_unseen(source.logical, seen) if had_rows else 0
        self._save_state(source.logical, scope, link)
        return EntitySyncResult(source.logical, True, upserted, removed)

    def _load(
        self, source: Source, pages: Iterator[DeltaPage], had_rows: bool, progress: Progress | None
    ) -> tuple[int, set[str], str | None]:
        buffer: list[Mapping[str, Any]] = []
        seen: set[str] = set()
        upserted = 0
        link = None
        for page in pages:
            buffer.extend(page.rows)
            link = page.delta_link or link
            # A few pages per transaction: random-keyed index pages are then written once
            # instead of once per page (4x less I/O), and the write lock is still short.
            if len(buffer) >= self.bulk_rows or link is not None:
                count, _, ids = self._apply(
                    source, buffer, (), bulk=True, index_inserts=not had_rows
                )
                buffer = []
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
        self._save_state(source.logical, self._scope(source.logical), new_link)
        return EntitySyncResult(source.logical, False, upserted, removed)

    def _drop_unseen(self, logical: str, seen: set[str]) -> int:
        with self.store.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO ab_bulk VALUES (1)")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS ab_seen (id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM temp.ab_seen")
            conn.executemany("INSERT OR IGNORE INTO temp.ab_seen VALUES (?)", ((i,) for i in seen))
            removed = conn.execute(
                "DELETE FROM ab_records WHERE entity = ? AND record_id NOT IN "
                "(SELECT id FROM temp.ab_seen)",
                (logical,),
            ).rowcount
            conn.execute("DELETE FROM temp.ab_seen")
            conn.execute("DELETE FROM ab_bulk")
        return removed

    def _save_state(self, logical: str, scope: str, link: str | None) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO ab_sync (entity, scope, delta_link, synced_at,"
                " record_count) VALUES (?, ?, ?, ?,"
                " (SELECT count(*) FROM ab_records WHERE entity = ?))",
                (logical, scope, link, datetime.now(UTC).isoformat(), logical),
            )

    def _forget_other_entities(self) -> None:
        marks = ", ".join("?" for _ in self.entities)
        with self.store.transaction() as conn:
            conn.execute(f"DELETE FROM ab_sync WHERE entity NOT IN ({marks})", self.entities)
            if conn.execute(
                f"SELECT 1 FROM ab_records WHERE entity NOT IN ({marks}) LIMIT 1", self.entities
            ).fetchone():
                self._mark_stale()
                conn.execute("INSERT OR IGNORE INTO ab_bulk VALUES (1)")
                conn.execute(f"DELETE FROM ab_records WHERE entity NOT IN ({marks})", self.entities)
                conn.execute("DELETE FROM ab_bulk")

    def reset(self, entity: str | None = None) -> None:
        """Forget cached records and delta links (all, or one entity): next sync reads all."""
        where, args = ("WHERE entity = ?", (entity,)) if entity else ("", ())
        with self.store.transaction() as conn:
            self._mark_stale()
            conn.execute("INSERT OR IGNORE INTO ab_bulk VALUES (1)")
            conn.execute(f"DELETE FROM ab_records {where}", args)
            conn.execute(f"DELETE FROM ab_sync {where}", args)
            conn.execute("DELETE FROM ab_bulk")
            self._rebuild_if_stale()

    def last_synced(self, entity: str) -> datetime | None:
        row = self.store.conn.execute(
            "SELECT synced_at FROM ab_sync WHERE entity = ?", (entity,)
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    # -- queries (offline) -------------------------------------------------------------------

    def count(self, entity: str | None = None) -> int:
        if entity is None:
            row = self.store.conn.execute("SELECT count(*) FROM ab_records").fetchone()
        else:
            row = self.store.conn.execute(
                "SELECT count(*) FROM ab_records WHERE entity = ?", (entity,)
            ).fetchone()
        return int(row[0])

    def browse(
        self, entity: str | None = None, *, offset: int = 0, limit: int = 200
    ) -> list[AddressBookEntry]:
        """A page of cached records by name (case-insensitive), all entities or one."""
        sql = "SELECT entity, record_id, name, email, company, owner_id FROM ab_records"
        args: list[Any] = []
        if entity:
            sql += " WHERE entity = ?"
            args.append(entity)
        sql += " ORDER BY name COLLATE NOCASE, record_id LIMIT ? OFFSET ?"
        args += [int(limit), int(offset)]
        return [_entry(r) for r in self.store.conn.execute(sql, args)]

    def lookup(self, address: str) -> list[RecordRef]:
        """Every cached record whose primary e-mail is ``address`` (case-insensitive), in
        the CRM's resolution order."""
        return [e.record for e in self.entries_for(address)]

    def is_internal(self, address_key: str) -> bool:
        """A CRM user or queue address, or one of ``internal_domains``."""
        key = address_key.strip().lower()
        row = self.store.conn.execute(
            "SELECT 1 FROM ab_records WHERE email_key = ? AND entity IN ('systemuser', 'queue')"
            " LIMIT 1",
            (key,),
        ).fetchone()
        if row:
            return True
        domain = key.rpartition("@")[2]
        return bool(domain) and domain in self.internal_domains

    def entries_for(self, address: str) -> list[AddressBookEntry]:
        rows = self.store.conn.execute(
            "SELECT entity, record_id, name, email, company, owner_id FROM ab_records"
            " WHERE email_key = ?",
            (address.strip().lower(),),
        ).fetchall()
        entries = [_entry(r) for r in rows]
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
        words = _WORD.findall(text)
        if not words:
            return []
        match = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
        # Ranking every match of a short prefix ("a") costs ~100 ms at 100,000 records, so
        # rank at most SEARCH_CANDIDATES matches: exact for narrow queries, "good enough"
        # for a broad one the user is still typing.
        where = "ab_fts MATCH ?"
        args: list[Any] = [match]
        if entities:
            where += f" AND r.entity IN ({', '.join('?' for _ in entities)})"
            args.extend(entities)
        sql = (
            "SELECT entity, record_id, name, email, company, owner_id FROM ("
            " SELECT r.entity, r.record_id, r.name, r.email, r.company, r.owner_id,"
            " ab_fts.rank AS score"
            " FROM ab_fts JOIN ab_records AS r ON r.rowid = ab_fts.rowid"
            f" WHERE {where} LIMIT ?) ORDER BY score, name LIMIT ?"
        )
        args += [SEARCH_CANDIDATES, int(limit)]
        return [_entry(r) for r in self.store.conn.execute(sql, args)]


def _annotations(source: Source) -> str:
    """Only the formatted values, and only when a company comes from a lookup."""
    return "OData.Community.Display.V1.FormattedValue" if source.company_lookup else ""


def _entry(row: Sequence[Any]) -> AddressBookEntry:
    entity, record_id, name, email, company, owner = row
    return AddressBookEntry(RecordRef(entity, record_id, name), email, company or "", owner)


__all__ = [
    "SOURCES",
    "AddressBook",
    "AddressBookEntry",
    "EntitySyncResult",
    "Source",
]
