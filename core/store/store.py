"""The per-profile local store: one SQLite file (WAL, foreign keys on) behind sqlite-utils.

Threading: a ``Store`` object belongs to one thread at a time (sqlite3 connections are not
shared). A worker thread or process opens its own ``Store`` on the same file; WAL lets any
number of readers run alongside one writer, and writers wait up to ``busy_timeout`` for each
other. Every write method is one transaction; ``transaction()`` groups several calls (e.g. the
outbox enqueueing an operation and marking the message *pending*) into one.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from core.domain.crm_settings import TrackingTokenSettings
from core.domain.model import (
    Folder,
    FolderRole,
    MailRef,
    MessageHeader,
)
from core.domain.subjects import find_token
from core.private_files import chmod_if_there, private_file
from core.store.cache import BodyCache, SettingsSnapshots
from core.store.rows import (
    DEFAULT_TOKENS,
    HEADER_COLUMNS,
    ROW_SELECT,
    TRACK_COLUMNS,
    MessageRow,
    header_values,
    message_row,
    sort_key,
)
from core.store.schema import SCHEMA_VERSION, migrate, schema_version
from core.store.tracking import TrackedStates

log = logging.getLogger("trackbox.store")

#: ``message_rows(order_by=…)`` → indexed column.
ORDER_COLUMNS: dict[str, str] = {
    "date": "date_ts",
    "sender": "sender_sort",
    "subject": "subject_sort",
    "size": "size",
    "track_state": "track_state",
    "regarding": "regarding_sort",
}

DEFAULT_BODY_CACHE_BYTES = 256 * 1024 * 1024
#: SQLite's heap in the whole process (``PRAGMA soft_heap_limit``: page caches give pages
#: back beyond it rather than grow; a soft limit, so nothing fails).
SQLITE_HEAP_BYTES = 32 * 1024 * 1024
_BATCH = 1000

_UPSERT_SQL = (
    f"INSERT INTO messages ({', '.join(HEADER_COLUMNS)}) VALUES {{rows}} "
    "ON CONFLICT (folder, uid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in HEADER_COLUMNS[2:])
    # A ref that now holds another Message-ID (a backend reusing ids) loses the old state;
    # _INHERIT_SQL then gives it the new Message-ID's state, if any.
    + ", "
    + ", ".join(
        f"{c} = CASE WHEN message_id = excluded.message_id THEN {c} ELSE {d} END"
        for c, d in (
            ("track_state", "'not_tracked'"),
            ("activity_id", "NULL"),
            ("regarding_entity", "NULL"),
            ("regarding_id", "NULL"),
            ("regarding_name", "NULL"),
            ("regarding_sort", "''"),
            ("reason_code", "NULL"),
            ("reason_text", "NULL"),
            ("tracked_by_other", "0"),
        )
    )
)
_ROW = "(" + ", ".join("?" for _ in HEADER_COLUMNS) + ")"


# Copies of a Message-ID that arrive after it was tracked (or before a header arrived)
# take the state recorded for it: one UPDATE for the Message-IDs of one upsert statement.
_INHERIT_SQL = (
    "UPDATE messages SET "
    + ", ".join(f"{c} = t.{c}" for c in TRACK_COLUMNS)
    + ", regarding_sort = sort_key(coalesce(nullif(t.regarding_name, ''), t.regarding_id))"
    " FROM tracking AS t WHERE t.message_id IN ({ids}) AND messages.message_id = t.message_id"
)


@functools.lru_cache(maxsize=8)
def _upsert_sql(rows: int) -> tuple[str, str]:
    """The upsert of ``rows`` rows as one statement (multi-row VALUES), and the inheritance
    of tracked state for their Message-IDs; see :meth:`Store._write_batch`."""
    return (
        _UPSERT_SQL.format(rows=", ".join([_ROW] * rows)),
        _INHERIT_SQL.format(ids=", ".join(["?"] * rows)),
    )


@dataclass(frozen=True, slots=True)
class HeaderRows:
    """Headers turned into store rows (:meth:`Store.header_rows`): per upsert statement, the
    row count, the bound values and the rows' Message-IDs."""

    statements: tuple[tuple[int, list[Any], list[str]], ...]

    def __len__(self) -> int:
        return sum(count for count, _, _ in self.statements)


class FlagChangeLike(Protocol):
    """The shape of ``core.mail.base.FlagChange`` (the store does not import the backends)."""

    @property
    def ref(self) -> MailRef: ...
    @property
    def is_read(self) -> bool: ...
    @property
    def keywords(self) -> tuple[str, ...]: ...
    @property
    def tracked_marker(self) -> str | None: ...


class StoreError(Exception):
    """Root of the store's errors."""


@dataclass(frozen=True, slots=True)
class StoreDb:
    """The store's connection. (It was a ``sqlite_utils.Database`` used for nothing but its
    ``conn``: importing sqlite_utils cost every start-up ~0.1 s and ~12 MiB.)"""

    conn: sqlite3.Connection


class Store:
    """See the module docstring for the threading rule."""

    def __init__(
        self,
        db: StoreDb,
        path: str,
        *,
        tokens: TrackingTokenSettings = DEFAULT_TOKENS,
        body_cache_bytes: int = DEFAULT_BODY_CACHE_BYTES,
    ) -> None:
        self.db = db
        self.path = path
        self.tokens = tokens
        self.body_cache_bytes = body_cache_bytes
        self.tracking = TrackedStates(self)
        self.snapshots = SettingsSnapshots(self)
        self.bodies = BodyCache(self)
        self._depth = 0
        self._deferring = False
        self._rows_per_statement = max(
            1,
            min(
                _BATCH,
                db.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(HEADER_COLUMNS),
            ),
        )

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        tokens: TrackingTokenSettings | None = None,
        body_cache_bytes: int = DEFAULT_BODY_CACHE_BYTES,
        busy_timeout_ms: int = 10_000,
    ) -> Store:
        """Open (creating or migrating) the store at ``path``.

        ``tokens`` (the organisation's tracking-token settings) decides what the ``token``
        column of new headers holds. Raises ``core.store.SchemaTooNew`` when a newer Trackbox
        wrote the file.
        """
        text = str(path)
        if text != ":memory:":
            private_file(Path(text))
        # Autocommit mode: we issue BEGIN/COMMIT ourselves so a "transaction" is exactly that.
        conn = sqlite3.connect(text, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            # 32 MiB page cache: 100,000-row folders and address books stay in memory.
            conn.execute("PRAGMA cache_size = -32768")
            # ...but all connections together (one per thread) keep at most this much: each
            # filled its 32 MiB on a million-message store, ~140 MiB in all (bench/memory.py).
            conn.execute(f"PRAGMA soft_heap_limit = {SQLITE_HEAP_BYTES}")
            # The sort keys SQL writes are the ones Python writes (SQLite's lower() folds
            # ASCII only and keeps padding).
            conn.create_function("sort_key", 1, sort_key, deterministic=True)
            migrate(conn, text)
            if text != ":memory:":
                for suffix in ("-wal", "-shm"):  # SQLite copies the file's mode; made sure
                    chmod_if_there(Path(text + suffix), 0o600)
        except BaseException:
            conn.close()
            raise
        return cls(
            StoreDb(conn),
            text,
            tokens=tokens or DEFAULT_TOKENS,
            body_cache_bytes=body_cache_bytes,
        )

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return schema_version(self.db.conn)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); nested uses join the outer one."""
        conn = self.db.conn
        if self._depth:
            self._depth += 1
            try:
                yield conn
            finally:
                self._depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield conn
        except BaseException:
            self._depth = 0
            conn.execute("ROLLBACK")
            raise
        self._depth = 0
        conn.execute("COMMIT")

    @contextmanager
    def deferred_checkpoint(self) -> Iterator[None]:
        """For bulk loads: no WAL checkpoint (and its fsyncs) every few megabytes; the WAL
        grows by the size of the load, and one checkpoint runs afterwards on a helper thread
        with its own connection, so the caller does not wait for the disk. Nests."""
        if self._deferring:
            yield
            return
        conn = self.db.conn
        pages = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
            if self.path != ":memory:":
                threading.Thread(
                    target=_checkpoint, args=(self.path,), name="trackbox-checkpoint", daemon=True
                ).start()

    # -- folders -------------------------------------------------------------------------

    def upsert_folders(self, folders: Iterable[Folder]) -> None:
        rows = [(f.path, f.name, f.role.value if f.role else None, f.parent) for f in folders]
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO folders (path, name, role, parent) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET name = excluded.name, role = excluded.role, "
                "parent = excluded.parent",
                rows,
            )

    def folders(self) -> list[Folder]:
        rows = self.conn.execute("SELECT path, name, role, parent FROM folders ORDER BY path")
        return [Folder(p, n, FolderRole(r) if r else None, parent) for p, n, r, parent in rows]

    def remove_folders(self, paths: Iterable[str]) -> int:
        """Forget folders and every message stored in them (tracked state by Message-ID
        stays, so copies elsewhere keep it)."""
        removed = 0
        with self.transaction() as conn:
            for path in paths:
                conn.execute("DELETE FROM messages WHERE folder = ?", (path,))
                removed += conn.execute("DELETE FROM folders WHERE path = ?", (path,)).rowcount
        return removed

    def clear_folder(self, folder: str) -> int:
        """Drop a folder's messages and sync state (e.g. after an IMAP UIDVALIDITY change)."""
        with self.transaction() as conn:
            count = conn.execute("DELETE FROM messages WHERE folder = ?", (folder,)).rowcount
            conn.execute("UPDATE folders SET sync_state = NULL WHERE path = ?", (folder,))
        return count

    def folder_sync_state(self, folder: str) -> str | None:
        row = self.conn.execute(
            "SELECT sync_state FROM folders WHERE path = ?", (folder,)
        ).fetchone()
        return row[0] if row else None

    def set_folder_sync_state(self, folder: str, state: str | None) -> None:
        """Store the backend's opaque sync state; creates the folder row when unknown."""
        name = folder.rsplit("/", 1)[-1]
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO folders (path, name, sync_state) VALUES (?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET sync_state = excluded.sync_state",
                (folder, name, state),
            )

    # -- messages ------------------------------------------------------------------------

    def header_rows(self, headers: Iterable[MessageHeader]) -> HeaderRows:
        """``headers`` as rows ready for :meth:`upsert_headers`, without touching the
        database: a sync thread prepares them while the store's thread writes the previous
        ones (then the writing thread holds the GIL hardly at all)."""
        tokens = self.tokens
        rows = [header_values(header, tokens) for header in headers]
        per = self._rows_per_statement
        return HeaderRows(
            tuple(
                (
                    len(part),
                    [value for values in part for value in values],
                    [values[2] for values in part],
                )
                for part in (rows[i : i + per] for i in range(0, len(rows), per))
            )
        )

    def upsert_headers(self, headers: Iterable[MessageHeader] | HeaderRows) -> int:
        """Insert or update headers keyed by (folder, uid); tracked state is kept, and new
        copies of an already tracked Message-ID inherit its state. Returns rows written."""
        prepared = headers if isinstance(headers, HeaderRows) else self.header_rows(headers)
        with self.transaction() as conn:
            # Many rows per statement, not executemany: SQLite keeps the GIL released for
            # the whole statement instead of taking it back for every row, so the sync
            # thread parsing the next batch runs alongside (with executemany the two
            # threads took turns, each row waiting out the other's switch interval).
            for count, params, message_ids in prepared.statements:
                upsert, inherit = _upsert_sql(count)
                conn.execute(upsert, params)
                conn.execute(inherit, message_ids)
        return len(prepared)

    def apply_flag_changes(self, changes: Iterable[FlagChangeLike]) -> int:
        """Update read flag, keywords and tracked marker of stored copies (a mail backend's
        ``FlagChange``); unknown refs are ignored. Returns rows changed."""
        with self.transaction() as conn:
            # A copy with a mail action (read, flag) still queued keeps what the user set: the
            # server's older state must not undo it before the queue has written it.
            cursor = conn.executemany(
                "UPDATE messages SET is_read = ?, keywords_json = ?, tracked_marker = ?"
                " WHERE folder = ? AND uid = ? AND NOT EXISTS (SELECT 1 FROM outbox"
                " WHERE outbox.message_id = 'mail:' || messages.message_id"
                " AND outbox.state = 'queued')",
                (
                    (
                        int(c.is_read),
                        json.dumps(list(c.keywords), ensure_ascii=False),
                        c.tracked_marker,
                        c.ref.folder,
                        c.ref.uid,
                    )
                    for c in changes
                ),
            )
            return cursor.rowcount

    # -- the user's mail actions, shown at once (the outbox writes them to the server) ---------

    def set_read_rows(self, row_ids: Iterable[int], read: bool) -> int:
        """Mark stored copies read or unread. Returns rows changed."""
        with self.transaction() as conn:
            cursor = conn.executemany(
                "UPDATE messages SET is_read = ? WHERE id = ? AND is_read != ?",
                ((int(read), int(i), int(read)) for i in row_ids),
            )
            return cursor.rowcount

    def set_keyword_rows(self, row_ids: Iterable[int], keyword: str, on: bool) -> int:
        """Add or remove ``keyword`` (e.g. the flag) on stored copies. Returns rows changed."""
        changed = 0
        with self.transaction() as conn:
            for rid in row_ids:
                found = conn.execute(
                    "SELECT keywords_json FROM messages WHERE id = ?", (int(rid),)
                ).fetchone()
                if found is None:
                    continue
                words = [w for w in json.loads(found[0]) if w != keyword]
                if on:
                    words.append(keyword)
                text = json.dumps(words, ensure_ascii=False)
                if text != found[0]:
                    conn.execute(
                        "UPDATE messages SET keywords_json = ? WHERE id = ?", (text, int(rid))
                    )
                    changed += 1
        return changed

    def move_row(self, row_id: int, ref: MailRef) -> bool:
        """Give a stored copy another ref (folder and uid), keeping its row and state."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE messages SET folder = ?, uid = ? WHERE id = ?",
                (ref.folder, ref.uid, int(row_id)),
            )
            return cursor.rowcount > 0

    def rename_ref(self, old: MailRef, new: MailRef) -> bool:
        """The server gave ``old`` (a placeholder) its real ref ``new``. If a sync stored
        ``new`` already, the placeholder row goes. Whether a row was renamed."""
        with self.transaction() as conn:
            if self.message_by_ref(new) is not None:
                conn.execute(
                    "DELETE FROM messages WHERE folder = ? AND uid = ?", (old.folder, old.uid)
                )
                return False
            cursor = conn.execute(
                "UPDATE messages SET folder = ?, uid = ? WHERE folder = ? AND uid = ?",
                (new.folder, new.uid, old.folder, old.uid),
            )
            return cursor.rowcount > 0

    def copy_row(self, row_id: int, ref: MailRef) -> int | None:
        """A copy of a stored message at ``ref`` (its tracked state follows its Message-ID).
        Returns the new row's id."""
        row = self.message(row_id)
        if row is None:
            return None
        with self.transaction():
            self.upsert_headers([replace(row.header, ref=ref)])
            made = self.message_by_ref(ref)
        return made.id if made else None

    def delete_rows(self, row_ids: Iterable[int]) -> int:
        with self.transaction() as conn:
            cursor = conn.executemany(
                "DELETE FROM messages WHERE id = ?", ((int(i),) for i in row_ids)
            )
            return cursor.rowcount

    def remove_messages(self, refs: Iterable[MailRef]) -> int:
        with self.transaction() as conn:
            cursor = conn.executemany(
                "DELETE FROM messages WHERE folder = ? AND uid = ?",
                ((r.folder, r.uid) for r in refs),
            )
            return cursor.rowcount

    def message_count(self, folder: str) -> int:
        row = self.conn.execute("SELECT count(*) FROM messages WHERE folder = ?", (folder,))
        return int(row.fetchone()[0])

    def folder_counts(self) -> dict[str, tuple[int, int]]:
        """``{folder path: (messages, unread)}`` for every folder that holds mail, in one
        grouped read (the folder tree's counts)."""
        rows = self.conn.execute(
            "SELECT folder, count(*), sum(is_read = 0) FROM messages GROUP BY folder"
        )
        return {path: (int(total), int(unread or 0)) for path, total, unread in rows}

    def message_rows(
        self,
        folder: str,
        offset: int,
        limit: int,
        *,
        order_by: str = "date",
        descending: bool = True,
    ) -> list[MessageRow]:
        """One page of a folder's messages; every order has its own index (folder, col, id),
        so a page costs the same at row 10 and at row 100,000 minus the offset walk."""
        column = ORDER_COLUMNS.get(order_by)
        if column is None:
            raise ValueError(f"order_by must be one of {sorted(ORDER_COLUMNS)}, not {order_by!r}")
        direction = "DESC" if descending else "ASC"
        rows = self.conn.execute(
            f"SELECT {ROW_SELECT} FROM messages WHERE folder = ? "
            f"ORDER BY {column} {direction}, id {direction} LIMIT ? OFFSET ?",
            (folder, int(limit), int(offset)),
        )
        return [message_row(r) for r in rows]

    def message_position(
        self,
        folder: str | None,
        row_id: int,
        *,
        order_by: str = "date",
        descending: bool = True,
        state: str | None = None,
    ) -> int | None:
        """Where message ``row_id`` stands (0-based) in the order of :meth:`message_rows`, or
        None when it is not in ``folder`` (any more): one indexed count of the rows before
        it, so the message list keeps a selection on its message after a sort or a sync
        without reading the rows in between. With ``folder=None``, the scope is ``state``
        across folders instead (the CRM views, ``messages_in_state``)."""
        column, where, scope = self._order_scope(folder, state, order_by)
        found = self.conn.execute(
            f"SELECT {column} FROM messages WHERE id = ? AND {where}", (int(row_id), scope)
        ).fetchone()
        if found is None:
            return None
        key = found[0]
        before = ">" if descending else "<"

        def count(condition: str, *params: object) -> int:
            sql = f"SELECT count(*) FROM messages WHERE {where} AND {condition}"
            return int(self.conn.execute(sql, (scope, *params)).fetchone()[0])

        # The rows before it: (key, id) {before} (its key, its id), as two index ranges (the
        # row-value form walks the same entries but compares each: three times slower).
        # SQLite sorts NULL keys first ascending and last descending, and no comparison with
        # NULL holds, so rows without a key are counted apart.
        if key is None:
            among_nulls = count(f"{column} IS NULL AND id {before} ?", int(row_id))
            return among_nulls + (count(f"{column} IS NOT NULL") if descending else 0)
        same_key = count(f"{column} = ? AND id {before} ?", key, int(row_id))
        keyed = count(f"{column} {before} ?", key) + same_key
        return keyed + (0 if descending else count(f"{column} IS NULL"))

    def message_ids(
        self,
        folder: str | None,
        *,
        order_by: str = "date",
        descending: bool = True,
        state: str | None = None,
    ) -> list[int]:
        """Every row id of ``folder`` (or of ``state`` across folders) in the order of
        :meth:`message_rows`: one scan of the order's covering index, for placing a large
        selection after a sort or a sync (a row's position is its index in this list)."""
        column, where, scope = self._order_scope(folder, state, order_by)
        direction = "DESC" if descending else "ASC"
        rows = self.conn.execute(
            f"SELECT id FROM messages WHERE {where} ORDER BY {column} {direction}, id {direction}",
            (scope,),
        ).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _order_scope(folder: str | None, state: str | None, order_by: str) -> tuple[str, str, str]:
        """The indexed sort column, the WHERE clause and its value of a list order: a folder's
        messages, or (``folder=None``) one tracked state's across folders."""
        column = ORDER_COLUMNS.get(order_by)
        if column is None:
            raise ValueError(f"order_by must be one of {sorted(ORDER_COLUMNS)}, not {order_by!r}")
        if folder is not None:
            return column, "folder = ?", folder
        if state is None:
            raise ValueError("a folder or a state is needed")
        return column, "track_state = ?", str(state)

    def message(self, row_id: int) -> MessageRow | None:
        row = self.conn.execute(f"SELECT {ROW_SELECT} FROM messages WHERE id = ?", (row_id,))
        found = row.fetchone()
        return message_row(found) if found else None

    def message_by_ref(self, ref: MailRef) -> MessageRow | None:
        row = self.conn.execute(
            f"SELECT {ROW_SELECT} FROM messages WHERE folder = ? AND uid = ?",
            (ref.folder, ref.uid),
        ).fetchone()
        return message_row(row) if row else None

    def messages_by_message_id(self, message_id: str) -> list[MessageRow]:
        return self._rows_where("message_id = ?", message_id.strip())

    def messages_by_token(self, token: str) -> list[MessageRow]:
        """Copies whose subject carries this tracking token (canonical form, see
        ``core.domain.subjects.find_token``; any spelling of a known prefix is accepted)."""
        return self._rows_where("token = ?", find_token(token, self.tokens) or token)

    def messages_by_thread_root(self, root: str) -> list[MessageRow]:
        """Copies in the conversation whose Thread-Index header is ``root``
        (hex of the first 22 bytes; see ``core.store.rows.thread_root``)."""
        return self._rows_where("thread_root = ?", root)

    def _rows_where(self, where: str, value: object) -> list[MessageRow]:
        rows = self.conn.execute(
            f"SELECT {ROW_SELECT} FROM messages WHERE {where} ORDER BY date_ts DESC, id DESC",
            (value,),
        )
        return [message_row(r) for r in rows]


def _checkpoint(path: str) -> None:
    """Fold the WAL into the database file (PASSIVE: never blocks readers or writers)."""
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=rw", uri=True, timeout=10)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()
    except sqlite3.Error:  # the store went away (tests) or is busy: the next one will do
        log.debug("background checkpoint of %s skipped", path, exc_info=True)


__all__ = [
    "ORDER_COLUMNS",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
]
