"""The SQL layer: schema, transactions, version numbers, the deletion log, credentials and
the sign-in state (OAuth clients, authorization codes, refresh-token families, device codes,
the token signing key, the tenant id).

Plain ``sqlite3`` behind this one class (the routes never see a connection). One connection
is shared by the server threads under a re-entrant lock; SQLite in WAL mode makes the file
safe for a second process (the CLI) to read while the server runs. Every write takes the next
value of one organisation-wide counter as its ``versionnumber``: that gives the etags and lets
change tracking read "rows with versionnumber > token" from an index, so a delta costs what
changed, not the table size.

Schema notes, so that PostgreSQL can follow: one table per logical entity, one column per
attribute; polymorphic lookups carry a ``<attr>__type`` column with the target's logical name;
strings compare case-insensitively (``COLLATE NOCASE``, as Dataverse does).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .entities import ACTIVITY_ENTITIES, ENTITIES, Attribute, Entity

SCHEMA_VERSION = 1
Row = dict[str, Any]

_SQL_TYPES = {
    "guid": "TEXT",
    "string": "TEXT COLLATE NOCASE",
    "memo": "TEXT COLLATE NOCASE",
    "int": "INTEGER",
    "bigint": "INTEGER",
    "bool": "INTEGER",
    "datetime": "TEXT",
    "money": "REAL",
    "decimal": "REAL",
    "picklist": "INTEGER",
    "state": "INTEGER",
    "status": "INTEGER",
    "lookup": "TEXT",
    "owner": "TEXT",
}

_INDEXED = (
    "ownerid",
    "emailaddress1",
    "emailaddress2",
    "emailaddress3",
    "emailaddress",
    "internalemailaddress",
    "messageid",
    "trackingtoken",
    "conversationindex",
    "baseconversationindexhash",
    "regardingobjectid",
    "activityid",
    "partyid",
    "objectid",
    "parentcustomerid",
    "customerid",
    "addressused",
    "inreplyto",
    "tbx_smartkey",
)


def now_iso() -> str:
    """UTC time as Dataverse writes it: ``2026-11-22T13:35:40Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def columns(entity: Entity) -> list[str]:
    cols = []
    for attr in entity.attributes.values():
        cols.append(attr.name)
        if attr.is_lookup:
            cols.append(attr.name + "__type")
    return cols


def _column_sql(entity: Entity, attr: Attribute) -> list[str]:
    if attr.name == entity.key:
        return [f'"{attr.name}" TEXT PRIMARY KEY']
    out = [f'"{attr.name}" {_SQL_TYPES[attr.type]}']
    if attr.is_lookup:
        out.append(f'"{attr.name}__type" TEXT')
    return out


def _names(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


class Storage:
    """All persistence for one organisation (one SQLite file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.lock = threading.RLock()
        self._depth = 0
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        self.conn.execute("PRAGMA busy_timeout=10000")
        self.conn.execute("PRAGMA cache_size=-65536")  # 64 MB: paging reads whole tables
        self.conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS tbx_gone_party (activityid TEXT, partyid TEXT)"
        )
        self._create_schema()
        self._watch_parties()
        self._columns = {name: columns(e) for name, e in ENTITIES.items()}

    # -- schema -------------------------------------------------------------------------

    def _create_schema(self) -> None:
        with self.transaction():
            ex = self.conn.execute
            ex("CREATE TABLE IF NOT EXISTS tbx_meta (key TEXT PRIMARY KEY, value TEXT)")
            ex("INSERT OR IGNORE INTO tbx_meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            ex("INSERT OR IGNORE INTO tbx_meta VALUES ('version', '1000')")
            ex(
                "CREATE TABLE IF NOT EXISTS tbx_deleted (entity TEXT NOT NULL, id TEXT NOT NULL,"
                " versionnumber INTEGER NOT NULL)"
            )
            ex("CREATE INDEX IF NOT EXISTS tbx_deleted_v ON tbx_deleted (entity, versionnumber)")
            if "readers" not in {r[1] for r in ex("PRAGMA table_info(tbx_deleted)")}:
                # who could read the row when it was deleted (JSON list of user ids)
                ex("ALTER TABLE tbx_deleted ADD COLUMN readers TEXT")
            ex(
                "CREATE TABLE IF NOT EXISTS tbx_credential (systemuserid TEXT PRIMARY KEY,"
                " password_hash TEXT NOT NULL)"
            )
            ex(
                "CREATE TABLE IF NOT EXISTS tbx_application (client_id TEXT PRIMARY KEY,"
                " secret_hash TEXT NOT NULL, systemuserid TEXT NOT NULL, name TEXT)"
            )
            ex("INSERT OR IGNORE INTO tbx_meta VALUES ('tenant_id', ?)", (str(uuid.uuid4()),))
            for sql in _SIGNIN_TABLES:
                ex(sql)
            for entity in ENTITIES.values():
                if entity.read_only_set:
                    continue
                cols = [c for a in entity.attributes.values() for c in _column_sql(entity, a)]
                ex(f'CREATE TABLE IF NOT EXISTS "{entity.logical}" ({", ".join(cols)})')
                self._add_new_columns(entity)
                ex(
                    f'CREATE INDEX IF NOT EXISTS "{entity.logical}__v" '
                    f'ON "{entity.logical}" (versionnumber)'
                )
                for name in _INDEXED:
                    if name in entity.attributes and name != entity.key:
                        ex(
                            f'CREATE INDEX IF NOT EXISTS "{entity.logical}__{name}" '
                            f'ON "{entity.logical}" ("{name}")'
                        )
            pointer = ENTITIES["activitypointer"]
            shared = ", ".join(f'"{c}"' for c in columns(pointer))
            ex("DROP VIEW IF EXISTS activitypointer")
            ex(
                "CREATE VIEW activitypointer AS "
                + " UNION ALL ".join(
                    f'SELECT {shared} FROM "{logical}"' for logical in ACTIVITY_ENTITIES
                )
            )

    def _add_new_columns(self, entity: Entity) -> None:
        """Columns added to an entity since this database was created (issue 19 added the
        mailbox's server-side columns): added empty, so an existing organisation still
        opens."""
        have = {r[1] for r in self.conn.execute(f'PRAGMA table_info("{entity.logical}")')}
        for attr in entity.attributes.values():
            for sql in _column_sql(entity, attr):
                name = sql.split('"')[1]
                if name not in have and "PRIMARY KEY" not in sql:
                    self.conn.execute(f'ALTER TABLE "{entity.logical}" ADD COLUMN {sql}')

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # -- transactions and versions -------------------------------------------------------

    def _watch_parties(self) -> None:
        """Remember the parties removed in the current transaction: an activity's parties are
        deleted before the activity itself, and its tombstone must still name them as readers."""
        self.conn.execute(
            "CREATE TEMP TRIGGER IF NOT EXISTS tbx_gone_party_t BEFORE DELETE ON activityparty"
            " BEGIN INSERT INTO tbx_gone_party VALUES (old.activityid, old.partyid); END"
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested calls join the outer one."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM temp.tbx_gone_party")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def next_versions(self, n: int = 1) -> int:
        """Reserve ``n`` version numbers; returns the first."""
        with self.transaction():
            cur = int(
                self.conn.execute("SELECT value FROM tbx_meta WHERE key='version'").fetchone()[0]
            )
            self.conn.execute("UPDATE tbx_meta SET value=? WHERE key='version'", (cur + n,))
            return cur + 1

    def current_version(self) -> int:
        with self.lock:
            return int(
                self.conn.execute("SELECT value FROM tbx_meta WHERE key='version'").fetchone()[0]
            )

    # -- rows -------------------------------------------------------------------------------

    def insert(self, entity: Entity, values: Row) -> Row:
        """Insert one row; fills createdon/modifiedon/versionnumber. Returns the stored row."""
        with self.transaction():
            row = dict(values)
            stamp = now_iso()
            row.setdefault("createdon", stamp)
            row["modifiedon"] = row.get("modifiedon") or stamp
            row["versionnumber"] = self.next_versions()
            names = [c for c in row if c in self._columns[entity.logical]]
            self.conn.execute(
                f'INSERT INTO "{entity.logical}" ({_names(names)})'
                f" VALUES ({', '.join('?' * len(names))})",
                [row[n] for n in names],
            )
            return self.get(entity, row[entity.key]) or row

    def insert_many(self, entity: Entity, rows: Sequence[Row]) -> None:
        """Bulk insert in the caller's transaction (seeding); rows share one column set."""
        if not rows:
            return
        with self.transaction():
            first = self.next_versions(len(rows))
            stamp = now_iso()
            names = [c for c in rows[0] if c in self._columns[entity.logical]]
            names += [c for c in ("createdon", "modifiedon", "versionnumber") if c not in names]
            sql = (
                f'INSERT INTO "{entity.logical}" ({_names(names)})'
                f" VALUES ({', '.join('?' * len(names))})"
            )
            data = []
            for i, r in enumerate(rows):
                extra = {
                    "createdon": r.get("createdon") or stamp,
                    "modifiedon": r.get("modifiedon") or stamp,
                    "versionnumber": first + i,
                }
                data.append([r.get(n, extra.get(n)) if n not in extra else extra[n] for n in names])
            self.conn.executemany(sql, data)

    def update(self, entity: Entity, key: str, values: Row) -> Row | None:
        """Update columns of one row, bumping its version; ``None`` when it does not exist."""
        with self.transaction():
            row = {k: v for k, v in values.items() if k in self._columns[entity.logical]}
            row["modifiedon"] = now_iso()
            row["versionnumber"] = self.next_versions()
            sets = ", ".join(f'"{n}"=?' for n in row)
            cur = self.conn.execute(
                f'UPDATE "{entity.logical}" SET {sets} WHERE "{entity.key}"=?',
                [*row.values(), key],
            )
            if cur.rowcount == 0:
                return None
            return self.get(entity, key)

    def delete(self, entity: Entity, key: str) -> bool:
        with self.transaction():
            row = self.get(entity, key) if entity.change_tracking else None
            cur = self.conn.execute(
                f'DELETE FROM "{entity.logical}" WHERE "{entity.key}"=?', (key,)
            )
            if cur.rowcount and row is not None:
                self.conn.execute(
                    "INSERT INTO tbx_deleted (entity, id, versionnumber, readers)"
                    " VALUES (?, ?, ?, ?)",
                    (entity.logical, key, self.next_versions(), self._readers(entity, row)),
                )
            return bool(cur.rowcount)

    def _readers(self, entity: Entity, row: Row) -> str | None:
        """The users who could read ``row`` (JSON), for a delta to list its deletion only to
        them; None when the row has no owner (readable by everyone)."""
        if entity.logical == "usersettings":
            return json.dumps([row["systemuserid"]])
        if not row.get("ownerid"):
            return None
        readers = {row["ownerid"]}
        if entity.is_activity:
            key = row[entity.key]
            for table in ("activityparty", "temp.tbx_gone_party"):
                for (party,) in self.conn.execute(
                    f"SELECT partyid FROM {table} WHERE activityid=? AND partyid IS NOT NULL",
                    (key,),
                ):
                    readers.add(party)
        return json.dumps(sorted(readers))

    def get(self, entity: Entity, key: str) -> Row | None:
        rows = self.query(f'SELECT * FROM "{entity.logical}" WHERE "{entity.key}"=?', (key,))
        return rows[0] if rows else None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a SELECT built by the query compiler (parameters only, never spliced values)."""
        with self.lock:
            cur = self.conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.lock:
            row = self.conn.execute(sql, params).fetchone()
            return row[0] if row else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.transaction():
            return self.conn.execute(sql, params).rowcount

    def deleted_since(
        self, entity: Entity, version: int, reader: str | None = None
    ) -> list[tuple[str, int]]:
        """Deletions after ``version``; with ``reader``, only those of rows that user could
        read (a tombstone without readers, from before they were recorded, is withheld)."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT id, versionnumber, readers FROM tbx_deleted WHERE entity=?"
                " AND versionnumber>? ORDER BY versionnumber",
                (entity.logical, version),
            ).fetchall()
        return [
            (key, ver)
            for key, ver, readers in rows
            if reader is None or (readers is not None and reader in json.loads(readers))
        ]

    # -- credentials ------------------------------------------------------------------------

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.execute(
            "INSERT OR REPLACE INTO tbx_credential VALUES (?, ?)", (user_id, password_hash)
        )

    def password_hash(self, user_id: str) -> str | None:
        value = self.scalar(
            "SELECT password_hash FROM tbx_credential WHERE systemuserid=?", (user_id,)
        )
        return None if value is None else str(value)

    def add_application(self, client_id: str, secret_hash: str, user_id: str, name: str) -> None:
        self.execute(
            "INSERT OR REPLACE INTO tbx_application VALUES (?, ?, ?, ?)",
            (client_id, secret_hash, user_id, name),
        )

    def application(self, client_id: str) -> Row | None:
        rows = self.query("SELECT * FROM tbx_application WHERE client_id=?", (client_id,))
        return rows[0] if rows else None

    def grant_app_roles(self, client_id: str, resource: str, roles: Sequence[str]) -> None:
        """The tenant admin consents application permissions (``roles``) of ``resource``
        (Microsoft Graph's ``Mail.ReadWrite``...) to an application (issue 19: the router)."""
        for role in roles:
            self.execute(
                "INSERT OR IGNORE INTO tbx_app_role VALUES (?, ?, ?)", (client_id, resource, role)
            )

    def app_roles(self, client_id: str, resource: str) -> tuple[str, ...]:
        rows = self.query(
            "SELECT role FROM tbx_app_role WHERE client_id=? AND resource=? ORDER BY role",
            (client_id, resource),
        )
        return tuple(str(r["role"]) for r in rows)

    # -- sign-in state (codes and refresh tokens are stored as hashes only) -----------------

    def organization(self) -> Row | None:
        rows = self.query("SELECT * FROM organization LIMIT 1")
        return rows[0] if rows else None

    def tenant_id(self) -> str:
        """The organisation's directory (tenant) id: a GUID made once with the database."""
        return str(self.scalar("SELECT value FROM tbx_meta WHERE key='tenant_id'"))

    def signing_key(self) -> Row | None:
        rows = self.query("SELECT kid, private_pem FROM tbx_signing_key WHERE slot='current'")
        return rows[0] if rows else None

    def add_signing_key(self, kid: str, private_pem: str, now: float) -> None:
        """Keep the first key stored (another process may have made one meanwhile)."""
        self.execute(
            "INSERT OR IGNORE INTO tbx_signing_key VALUES ('current', ?, ?, ?)",
            (kid, private_pem, now),
        )

    def add_oauth_client(
        self,
        client_id: str,
        name: str,
        *,
        public: bool,
        redirect_uris: Sequence[str] = (),
        replace: bool = True,
    ) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self.execute(
            f"{verb} INTO tbx_oauth_client VALUES (?, ?, ?, ?)",
            (client_id, name, int(public), "\n".join(redirect_uris)),
        )

    def oauth_client(self, client_id: str) -> Row | None:
        rows = self.query("SELECT * FROM tbx_oauth_client WHERE client_id=?", (client_id,))
        return rows[0] if rows else None

    def add_auth_code(self, row: Row) -> None:
        self._insert_row("tbx_auth_code", row)

    def auth_code(self, code_hash: str) -> Row | None:
        rows = self.query("SELECT * FROM tbx_auth_code WHERE code_hash=?", (code_hash,))
        return rows[0] if rows else None

    def redeem_auth_code(self, code_hash: str) -> bool:
        """Mark a code used; False when it already was (single use, also under races)."""
        return bool(
            self.execute(
                "UPDATE tbx_auth_code SET used=1 WHERE code_hash=? AND used=0", (code_hash,)
            )
        )

    def set_auth_code_family(self, code_hash: str, family_id: str) -> None:
        self.execute(
            "UPDATE tbx_auth_code SET family_id=? WHERE code_hash=?", (family_id, code_hash)
        )

    def add_token_family(self, row: Row) -> None:
        self._insert_row("tbx_token_family", row)

    def token_family(self, family_id: str) -> Row | None:
        rows = self.query("SELECT * FROM tbx_token_family WHERE family_id=?", (family_id,))
        return rows[0] if rows else None

    def revoke_token_family(self, family_id: str) -> None:
        self.execute("UPDATE tbx_token_family SET revoked=1 WHERE family_id=?", (family_id,))

    def add_refresh_token(self, token_hash: str, family_id: str, expires: float) -> None:
        """A new refresh token in a family; the family lives as long as its newest token."""
        with self.transaction():
            self.execute(
                "INSERT INTO tbx_refresh_token VALUES (?, ?, ?, 0)",
                (token_hash, family_id, expires),
            )
            self.execute(
                "UPDATE tbx_token_family SET expires=MAX(expires, ?) WHERE family_id=?",
                (expires, family_id),
            )

    def refresh_token(self, token_hash: str) -> Row | None:
        """The refresh token with its family's columns (``used``, ``expires``, ``family_id``,
        ``client_id``, ``user_id``, ``authority``, ``scope``, ``auth_time``, ``revoked``)."""
        rows = self.query(
            "SELECT f.*, t.used, t.expires FROM tbx_refresh_token t"
            " JOIN tbx_token_family f ON f.family_id = t.family_id WHERE t.token_hash=?",
            (token_hash,),
        )
        return rows[0] if rows else None

    def rotate_refresh_token(self, token_hash: str) -> bool:
        """Mark a refresh token used; False when it already was."""
        return bool(
            self.execute(
                "UPDATE tbx_refresh_token SET used=1 WHERE token_hash=? AND used=0", (token_hash,)
            )
        )

    def add_device_code(self, row: Row) -> bool:
        """False when the user code is taken (the caller draws another)."""
        try:
            self._insert_row("tbx_device_code", row)
        except sqlite3.IntegrityError:
            return False
        return True

    def device_code(self, *, device_hash: str = "", user_code_hash: str = "") -> Row | None:
        if device_hash:
            sql, key = "SELECT * FROM tbx_device_code WHERE device_hash=?", device_hash
        else:
            sql, key = "SELECT * FROM tbx_device_code WHERE user_code_hash=?", user_code_hash
        rows = self.query(sql, (key,))
        return rows[0] if rows else None

    def update_device_code(self, device_hash: str, values: Row, *, status: str = "") -> bool:
        """Set columns of a device code (only while its status is ``status``, when given)."""
        sets = ", ".join(f'"{name}"=?' for name in values)
        sql = f"UPDATE tbx_device_code SET {sets} WHERE device_hash=?"
        params = [*values.values(), device_hash]
        if status:
            sql += " AND status=?"
            params.append(status)
        return bool(self.execute(sql, params))

    def purge_signin_state(self, now: float) -> None:
        """Forget expired codes and refresh tokens (a replayed expired one is refused anyway)."""
        with self.transaction():
            self.execute("DELETE FROM tbx_auth_code WHERE expires < ?", (now,))
            self.execute("DELETE FROM tbx_device_code WHERE expires < ?", (now,))
            self.execute("DELETE FROM tbx_refresh_token WHERE expires < ?", (now,))
            self.execute(
                "DELETE FROM tbx_token_family WHERE expires < ? AND family_id NOT IN"
                " (SELECT family_id FROM tbx_refresh_token)",
                (now,),
            )

    def _insert_row(self, table: str, row: Row) -> None:
        self.execute(
            f"INSERT INTO {table} ({_names(list(row))}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )


#: The sign-in state; secrets (codes, refresh tokens, user codes) only as SHA-256 hashes.
_SIGNIN_TABLES = (
    "CREATE TABLE IF NOT EXISTS tbx_signing_key (slot TEXT PRIMARY KEY, kid TEXT NOT NULL,"
    " private_pem TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tbx_oauth_client (client_id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL, public INTEGER NOT NULL, redirect_uris TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tbx_auth_code (code_hash TEXT PRIMARY KEY,"
    " client_id TEXT NOT NULL, user_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,"
    " scope TEXT NOT NULL, nonce TEXT, code_challenge TEXT, authority TEXT NOT NULL,"
    " auth_time REAL NOT NULL, expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0,"
    " family_id TEXT)",
    "CREATE TABLE IF NOT EXISTS tbx_token_family (family_id TEXT PRIMARY KEY,"
    " client_id TEXT NOT NULL, user_id TEXT NOT NULL, authority TEXT NOT NULL,"
    " scope TEXT NOT NULL, auth_time REAL NOT NULL, expires REAL NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS tbx_refresh_token (token_hash TEXT PRIMARY KEY,"
    " family_id TEXT NOT NULL, expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS tbx_refresh_token_family ON tbx_refresh_token (family_id)",
    "CREATE TABLE IF NOT EXISTS tbx_app_role (client_id TEXT NOT NULL, resource TEXT NOT NULL,"
    " role TEXT NOT NULL, PRIMARY KEY (client_id, resource, role))",
    "CREATE TABLE IF NOT EXISTS tbx_device_code (device_hash TEXT PRIMARY KEY,"
    " user_code_hash TEXT NOT NULL UNIQUE, client_id TEXT NOT NULL, scope TEXT NOT NULL,"
    " authority TEXT NOT NULL, expires REAL NOT NULL, interval REAL NOT NULL,"
    " last_poll REAL, status TEXT NOT NULL, user_id TEXT, auth_time REAL)",
)
