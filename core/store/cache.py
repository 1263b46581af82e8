"""Settings snapshots and the bounded body cache: what the store keeps so that the client
works offline, and may throw away (bodies) under a size bound."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.store.search import body_text, index_body

if TYPE_CHECKING:
    from core.store.store import Store


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SettingsSnapshots:
    """``store.snapshots``: the last known settings of each kind (organisation, user
    settings, …), so that the tracking rules work offline."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, kind: str, data: dict[str, Any]) -> None:
        """Keep the last known settings of ``kind`` (e.g. ``"organization"``,
        ``"usersettings"``) so tracking rules work offline."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO settings_snapshot (kind, data_json, saved_at)"
                " VALUES (?, ?, ?)",
                (kind, json.dumps(data, ensure_ascii=False, default=str), _now()),
            )

    def get(self, kind: str) -> dict[str, Any] | None:
        row = self.store.conn.execute(
            "SELECT data_json FROM settings_snapshot WHERE kind = ?", (kind,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def saved_at(self, kind: str) -> datetime | None:
        row = self.store.conn.execute(
            "SELECT saved_at FROM settings_snapshot WHERE kind = ?", (kind,)
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None


def prepare_bodies(
    bodies: Iterable[tuple[int, bytes]], bound: int, *, text: bool = True
) -> list[tuple[int, bytes, str | None]]:
    """``(row id, raw, search text)`` of the bodies that fit under ``bound``: the slow part
    of caching, done without the store (any thread). ``text=False`` leaves the text out
    (None): :meth:`BodyCache.put_prepared` then lists the body in ``search_backlog``."""
    return [(r, raw, body_text(raw) if text else None) for r, raw in bodies if len(raw) <= bound]


class BodyCache:
    """``store.bodies``: raw MIME of messages read, least recently used first to go past the
    store's bound (``Store.body_cache_bytes``). A body's text is in the search index while
    the body is cached (core/store/search.py): put here, emptied by the eviction trigger."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def put(self, row_id: int, content: bytes) -> None:
        """Cache a message's raw MIME; evicts least recently used bodies past the bound.
        A body larger than the whole bound is not cached."""
        if len(content) > self.store.body_cache_bytes:
            return
        text = body_text(content)  # before the write lock: parsing takes a while
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bodies (message_row, content, size, fetched_at, last_used)"
                " VALUES (?, ?, ?, ?, ?)",
                (row_id, content, len(content), _now(), time.time()),
            )
            index_body(conn, row_id, text)
            self._evict(conn, self.store.body_cache_bytes, keep=row_id)

    def put_many(self, bodies: Iterable[tuple[int, bytes]]) -> int:
        """Cache many bodies in one transaction, indexed for search (bulk loads: prefetch,
        tests, benchmarks); the text is extracted before the write lock is taken. Then
        evicts past the bound like :meth:`put`. Returns how many were cached."""
        return self.put_prepared(prepare_bodies(bodies, self.store.body_cache_bytes))

    def put_prepared(
        self, items: list[tuple[int, bytes, str | None]], *, evict: bool = True
    ) -> int:
        """:meth:`put_many` of bodies whose search text :func:`prepare_bodies` extracted,
        maybe on another thread while this one wrote the previous ones. A body without text
        goes into ``search_backlog``: ``core.store.search.index_backlog`` indexes it later.
        ``evict=False`` leaves the bound to the caller (one :meth:`evict` after many puts:
        summing the sizes reads every cached body's pages)."""
        bound = self.store.body_cache_bytes
        items = [item for item in items if len(item[1]) <= bound]
        at, now = _now(), time.time()
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO bodies (message_row, content, size, fetched_at, last_used)"
                " VALUES (?, ?, ?, ?, ?)",
                ((r, raw, len(raw), at, now) for r, raw, _ in items),
            )
            conn.executemany(
                "UPDATE message_search SET body = ? WHERE rowid = ?",
                ((text, r) for r, _, text in items if text is not None),
            )
            conn.executemany(
                "DELETE FROM search_backlog WHERE message_row = ?",
                ((r,) for r, _, text in items if text is not None),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO search_backlog (message_row) VALUES (?)",
                ((r,) for r, _, text in items if text is None),
            )
            if evict:
                self._evict(conn, bound)
        return len(items)

    def missing(self, folder: str) -> list[tuple[int, str, int]]:
        """``(row id, uid, size)`` of the folder's messages whose body is not cached, in
        row order (bulk caching of a folder's bodies, see ``core.sync.mailbox``)."""
        rows = self.store.conn.execute(
            "SELECT m.id, m.uid, m.size FROM messages m"
            " WHERE m.folder = ? AND NOT EXISTS"
            " (SELECT 1 FROM bodies b WHERE b.message_row = m.id) ORDER BY m.id",
            (folder,),
        )
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    def get(self, row_id: int) -> bytes | None:
        row = self.store.conn.execute(
            "SELECT content FROM bodies WHERE message_row = ?", (row_id,)
        ).fetchone()
        if row is None:
            return None
        # Touch outside a transaction of its own would still be one; cheap enough.
        self.store.conn.execute(
            "UPDATE bodies SET last_used = ? WHERE message_row = ?", (time.time(), row_id)
        )
        return bytes(row[0])

    def size(self) -> int:
        return int(
            self.store.conn.execute("SELECT coalesce(sum(size), 0) FROM bodies").fetchone()[0]
        )

    def evict(self, max_bytes: int) -> int:
        """Drop least recently used bodies until at most ``max_bytes`` remain."""
        with self.store.transaction() as conn:
            return self._evict(conn, max_bytes)

    @staticmethod
    def _evict(conn: sqlite3.Connection, max_bytes: int, keep: int | None = None) -> int:
        total = int(conn.execute("SELECT coalesce(sum(size), 0) FROM bodies").fetchone()[0])
        removed = 0
        if total <= max_bytes:
            return 0
        victims = conn.execute(
            "SELECT message_row, size FROM bodies ORDER BY last_used, message_row"
        ).fetchall()
        for row_id, size in victims:
            if total <= max_bytes:
                break
            if row_id == keep:
                continue
            conn.execute("DELETE FROM bodies WHERE message_row = ?", (row_id,))
            total -= size
            removed += 1
        return removed
