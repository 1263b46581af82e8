"""The address-book cache's tables: cached records (``ab_records``), per-entity sync state
(``ab_sync``) and the FTS5 search index over name, e-mail and company (``ab_fts``).

``core.sync.address_books`` decides what to read from the CRM and which rows to keep; this
module is how they are written and found. Bulk writes let the index triggers stand aside
(``ab_bulk``): a first population indexes each batch of new rows with one INSERT … SELECT in
the same transaction (row-by-row triggers cost 2.5x more); anything else marks the index
"stale" in the settings snapshot and :meth:`AddressBookRows.rebuild_if_stale` rebuilds it once.
The mark survives a crash, so the next sync rebuilds first (a delta must never update an index
that lacks the rows it deletes).

Threading: like the store it sits on, one per thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from core.domain.model import Address, RecordRef
from core.domain.resolution import INTERNAL_ENTITIES
from core.store.store import Store

#: One ``ab_records`` row as written: entity, record id, name, e-mail, e-mail key, company,
#: owner id. A plain tuple: a full read writes a hundred thousand of them.
CachedRow: TypeAlias = tuple[str, str, str, str, str, str, str | None]

#: Matches ranked at most per search: ranking every match of a short prefix ("a") costs
#: ~100 ms at 100,000 records; exact for narrow queries, "good enough" for a broad one the
#: user is still typing.
SEARCH_CANDIDATES = 2000

_UPSERT = (
    "INSERT INTO ab_records (entity, record_id, name, email, email_key, company, owner_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entity, record_id) DO UPDATE SET"
    " name = excluded.name, email = excluded.email, email_key = excluded.email_key,"
    " company = excluded.company, owner_id = excluded.owner_id"
)
_ENTRY = "SELECT entity, record_id, name, email, company, owner_id FROM ab_records"
_WORD = re.compile(r"\w+", re.UNICODE)
_INDEX_STATE = "addressbook.search_index"
_INTERNAL = tuple(sorted(INTERNAL_ENTITIES))


@dataclass(frozen=True, slots=True)
class AddressBookEntry:
    """One cached record with its primary e-mail address."""

    record: RecordRef
    email: str
    company: str = ""
    owner_id: str | None = None

    @property
    def address(self) -> Address:
        return Address(self.email, self.record.name)


def cached_row(
    entity: str, record_id: str, name: str, email: str, company: str, owner_id: str | None
) -> CachedRow:
    """The row for one record; the look-up key is the address case-folded like
    ``Address.key`` (Python's folding: SQLite's ``lower`` knows only ASCII)."""
    return (entity, record_id, name, email, email.lower(), company, owner_id)


@dataclass(frozen=True, slots=True)
class SyncState:
    """Where one entity's sync stands: the scope its rows were read for and its delta link."""

    scope: str
    delta_link: str | None


class AddressBookRows:
    """The SQL of the address-book cache, over one ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- sync state ------------------------------------------------------------------------

    def sync_state(self, entity: str) -> SyncState | None:
        row = self.store.conn.execute(
            "SELECT scope, delta_link FROM ab_sync WHERE entity = ?", (entity,)
        ).fetchone()
        return SyncState(row[0], row[1]) if row else None

    def save_sync_state(self, entity: str, scope: str, delta_link: str | None) -> None:
        """Record a finished sync of ``entity`` with its row count."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO ab_sync (entity, scope, delta_link, synced_at,"
                " record_count) VALUES (?, ?, ?, ?,"
                " (SELECT count(*) FROM ab_records WHERE entity = ?))",
                (entity, scope, delta_link, datetime.now(UTC).isoformat(), entity),
            )

    def last_synced(self, entity: str) -> datetime | None:
        row = self.store.conn.execute(
            "SELECT synced_at FROM ab_sync WHERE entity = ?", (entity,)
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    # -- writes ----------------------------------------------------------------------------

    def write(
        self,
        entity: str,
        rows: Sequence[CachedRow],
        drops: Iterable[str],
        *,
        bulk: bool = False,
        index_inserts: bool = False,
    ) -> int:
        """Upsert ``rows`` and delete the records ``drops`` of ``entity`` in one transaction;
        returns how many were deleted. ``bulk``: the index triggers stand aside. With
        ``index_inserts`` (a first population) the new rows are indexed by one INSERT …
        SELECT; anything but pure inserts then marks the index stale."""
        drops = list(drops)
        removed = 0
        with self.store.transaction() as conn:
            before = conn.execute("SELECT coalesce(max(rowid), 0) FROM ab_records").fetchone()[0]
            if bulk:
                conn.execute("INSERT OR IGNORE INTO ab_bulk VALUES (1)")
            if rows:
                conn.executemany(_UPSERT, rows)
            if drops:
                removed = conn.executemany(
                    "DELETE FROM ab_records WHERE entity = ? AND record_id = ?",
                    ((entity, d) for d in drops),
                ).rowcount
            if bulk:
                conn.execute("DELETE FROM ab_bulk")
            if index_inserts:
                after = conn.execute("SELECT coalesce(max(rowid), 0) FROM ab_records").fetchone()
                if after[0] - before == len(rows) and not removed:
                    conn.execute(
                        "INSERT INTO ab_fts (rowid, name, email, company) SELECT rowid, name,"
                        " email, company FROM ab_records WHERE rowid > ?",
                        (before,),
                    )
                else:  # a record seen twice in one read: let the rebuild sort it out
                    self.mark_index_stale()
        return removed

    def drop_unseen(self, entity: str, seen: Iterable[str]) -> int:
        """Delete the records of ``entity`` a full read did not see (index left stale)."""
        with self.store.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO ab_bulk VALUES (1)")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS ab_seen (id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM temp.ab_seen")
            conn.executemany("INSERT OR IGNORE INTO temp.ab_seen VALUES (?)", ((i,) for i in seen))
            removed: int = conn.execute(
                "DELETE FROM ab_records WHERE entity = ? AND record_id NOT IN "
                "(SELECT id FROM temp.ab_seen)",
                (entity,),
            ).rowcount
            conn.execute("DELETE FROM temp.ab_seen")
            conn.execute("DELETE FROM ab_bulk")
        return removed

    def keep_only(self, entities: Sequence[str]) -> None:
        """Forget the records and sync state of every entity not in ``entities``."""
        marks = ", ".join("?" for _ in entities)
        with self.store.transaction() as conn:
            conn.execute(f"DELETE FROM ab_sync WHERE entity NOT IN ({marks})", entities)
            if conn.execute(
                f"SELECT 1 FROM ab_records WHERE entity NOT IN ({marks}) LIMIT 1", entities
            ).fetchone():
                self.mark_index_stale()
                conn.execute("INSERT OR IGNORE INTO ab_bulk VALUES (1)")
                conn.execute(f"DELETE FROM ab_records WHERE entity NOT IN ({marks})", entities)
                conn.execute("DELETE FROM ab_bulk")

    def reset(self, entity: str | None = None) -> None:
        """Forget records and sync state (all, or of one entity) and rebuild the index."""
        where, args = ("WHERE entity = ?", (entity,)) if entity else ("", ())
        with self.store.transaction() as conn:
            self.mark_index_stale()
            conn.execute("INSERT OR IGNORE INTO ab_bulk VALUES (1)")
            conn.execute(f"DELETE FROM ab_records {where}", args)
            conn.execute(f"DELETE FROM ab_sync {where}", args)
            conn.execute("DELETE FROM ab_bulk")
            self.rebuild_if_stale()

    # -- the search index ------------------------------------------------------------------

    def index_stale(self) -> bool:
        return bool((self.store.snapshots.get(_INDEX_STATE) or {}).get("stale"))

    def mark_index_stale(self) -> None:
        if not self.index_stale():
            self.store.snapshots.save(_INDEX_STATE, {"stale": True})

    def rebuild_if_stale(self) -> None:
        if self.index_stale():
            with self.store.transaction() as conn:
                conn.execute("INSERT INTO ab_fts (ab_fts) VALUES ('rebuild')")
                self.store.snapshots.save(_INDEX_STATE, {"stale": False})

    # -- queries ---------------------------------------------------------------------------

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
        sql = _ENTRY
        args: list[Any] = []
        if entity:
            sql += " WHERE entity = ?"
            args.append(entity)
        sql += " ORDER BY name COLLATE NOCASE, record_id LIMIT ? OFFSET ?"
        args += [int(limit), int(offset)]
        return [_entry(r) for r in self.store.conn.execute(sql, args)]

    def with_email(self, email_key: str) -> list[AddressBookEntry]:
        """Every cached record whose e-mail key is ``email_key``, in no particular order."""
        rows = self.store.conn.execute(f"{_ENTRY} WHERE email_key = ?", (email_key,)).fetchall()
        return [_entry(r) for r in rows]

    def is_internal_email(self, email_key: str) -> bool:
        """One of the organisation's own records (a CRM user or queue) has this e-mail key."""
        marks = ", ".join("?" for _ in _INTERNAL)
        row = self.store.conn.execute(
            f"SELECT 1 FROM ab_records WHERE email_key = ? AND entity IN ({marks}) LIMIT 1",
            (email_key, *_INTERNAL),
        ).fetchone()
        return row is not None

    def search(
        self, text: str, *, limit: int = 50, entities: Sequence[str] | None = None
    ) -> list[AddressBookEntry]:
        """Records whose name, e-mail or company contain words starting with every word of
        ``text``, best match first (at most ``SEARCH_CANDIDATES`` ranked)."""
        words = _WORD.findall(text)
        if not words:
            return []
        match = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
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


def _entry(row: Sequence[Any]) -> AddressBookEntry:
    entity, record_id, name, email, company, owner = row
    return AddressBookEntry(RecordRef(entity, record_id, name), email, company or "", owner)


__all__ = [
    "SEARCH_CANDIDATES",
    "AddressBookEntry",
    "AddressBookRows",
    "CachedRow",
    "SyncState",
    "cached_row",
]
