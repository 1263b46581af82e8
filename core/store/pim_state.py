"""The PIM engine's pairing state (``core.pim.engine``, issue 20): one SQLite file of its own
per profile (``pim.sqlite``).

A file apart from the profile's store on purpose: the engine's writes (one small transaction
before and one after each side write, see ``core.pim.engine``) never wait behind the mail
sync's, and it needs no migration of the store's numbered schema.

Tables (``SCHEMA_VERSION`` in ``meta``):

- ``pair`` — a CRM record and its mailbox item: both keys and versions, the values both
  sides agreed on at the last sync (``base``, JSON: the three-way merge compares against it),
  which side the *engine* created (``created``: ``mailbox`` or ``crm``; only such an item is
  deleted when its partner is), and ``status``: ``pending`` (a create is under way: its key
  is chosen and written here first, so a rerun after a crash completes it instead of creating
  a second item), ``synced``, or ``detached`` (the user deleted a mailbox item the CRM
  record was synced into: the CRM record stays, and is not pushed back).
- ``token`` — each side's sync token (CRM delta link, DAV sync-token…).
- ``seen`` — mailbox items seen and their primary e-mail / carried CRM id, so that a new CRM
  record pairs with an item that already holds it instead of duplicating it.
- ``conflict`` — both sides changed a field since the last sync: the value kept, the value
  that lost, and whether the user re-applied or dismissed it. Never deleted by the engine.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
FILE_NAME = "pim.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pair (
    kind TEXT NOT NULL,
    crm_key TEXT NOT NULL,
    mailbox_key TEXT,
    crm_version TEXT NOT NULL DEFAULT '',
    mailbox_version TEXT NOT NULL DEFAULT '',
    base TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'synced',
    PRIMARY KEY (kind, crm_key)
);
CREATE UNIQUE INDEX IF NOT EXISTS pair_mailbox ON pair (kind, mailbox_key)
    WHERE mailbox_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS pair_status ON pair (kind, status) WHERE status <> 'synced';
CREATE TABLE IF NOT EXISTS token (
    kind TEXT NOT NULL, side TEXT NOT NULL, token TEXT NOT NULL, PRIMARY KEY (kind, side)
);
CREATE TABLE IF NOT EXISTS seen (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    email TEXT,
    crm_id TEXT,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS seen_email ON seen (kind, email) WHERE email IS NOT NULL;
CREATE INDEX IF NOT EXISTS seen_crm ON seen (kind, crm_id) WHERE crm_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS conflict (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    crm_key TEXT NOT NULL,
    mailbox_key TEXT,
    field TEXT NOT NULL,
    kept TEXT,
    lost TEXT,
    base TEXT,
    winner TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open'
);
"""


class StateError(Exception):
    """The state file is from a newer Trackbox (its schema version is unknown here)."""


@dataclass(slots=True)
class Pair:
    kind: str
    crm_key: str
    mailbox_key: str | None
    crm_version: str = ""
    mailbox_version: str = ""
    base: dict[str, Any] = field(default_factory=dict)
    created: str = ""  # "mailbox" | "crm" | "" — which side the engine created
    status: str = "synced"  # "pending" | "synced" | "detached"


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both sides changed ``field`` since the last sync: ``kept`` went to both sides (the
    ``winner``'s value), ``lost`` is the other side's, kept here for the user to re-apply."""

    id: int
    kind: str
    crm_key: str
    mailbox_key: str | None
    field: str
    kept: Any
    lost: Any
    base: Any
    winner: str
    at: str
    status: str


class PimState:
    """The state file. One instance per thread (sqlite3 connections are per thread)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Safe against a crash of the process (what exactly-once is about); a power cut may
        # lose the last commits, which a rerun redoes idempotently.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._depth = 0
        self._init()

    @classmethod
    def in_profile(cls, profile_dir: Path | str) -> PimState:
        return cls(Path(profile_dir) / FILE_NAME)

    def _init(self) -> None:
        with self.batch():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StateError(f"{self.path} has schema {row[0]}; this Trackbox knows 1")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for the block (nested blocks join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    # -- pairs ---------------------------------------------------------------------------------

    def _pair(self, row: tuple[Any, ...] | None) -> Pair | None:
        if row is None:
            return None
        return Pair(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7])

    _COLS = "kind, crm_key, mailbox_key, crm_version, mailbox_version, base, created, status"

    def pair_by_crm(self, kind: str, crm_key: str) -> Pair | None:
        q = f"SELECT {self._COLS} FROM pair WHERE kind=? AND crm_key=?"
        return self._pair(self._db.execute(q, (kind, crm_key)).fetchone())

    def pair_by_mailbox(self, kind: str, mailbox_key: str) -> Pair | None:
        q = f"SELECT {self._COLS} FROM pair WHERE kind=? AND mailbox_key=?"
        return self._pair(self._db.execute(q, (kind, mailbox_key)).fetchone())

    def pairs(self, kind: str, status: str | None = None) -> list[Pair]:
        q = f"SELECT {self._COLS} FROM pair WHERE kind=?"
        args: list[Any] = [kind]
        if status is not None:
            q += " AND status=?"
            args.append(status)
        return [p for r in self._db.execute(q, args) if (p := self._pair(r)) is not None]

    def keys(self, kind: str, side: str) -> set[str]:
        column = "crm_key" if side == "crm" else "mailbox_key"
        q = f"SELECT {column} FROM pair WHERE kind=? AND {column} IS NOT NULL"
        return {r[0] for r in self._db.execute(q, (kind,))}

    def save_pair(self, pair: Pair) -> None:
        """Insert or replace; a pair whose mailbox key another pair holds replaces that one
        (the item now belongs to this CRM record)."""
        with self.batch():
            if pair.mailbox_key is not None:
                self._db.execute(
                    "DELETE FROM pair WHERE kind=? AND mailbox_key=? AND crm_key<>?",
                    (pair.kind, pair.mailbox_key, pair.crm_key),
                )
            self._db.execute(
                "INSERT OR REPLACE INTO pair VALUES (?,?,?,?,?,?,?,?)",
                (
                    pair.kind,
                    pair.crm_key,
                    pair.mailbox_key,
                    pair.crm_version,
                    pair.mailbox_version,
                    json.dumps(pair.base, sort_keys=True, default=str),
                    pair.created,
                    pair.status,
                ),
            )

    def drop_pair(self, kind: str, crm_key: str) -> None:
        self._db.execute("DELETE FROM pair WHERE kind=? AND crm_key=?", (kind, crm_key))

    def count_pairs(self, kind: str) -> int:
        q = "SELECT count(*) FROM pair WHERE kind=? AND status='synced'"
        return int(self._db.execute(q, (kind,)).fetchone()[0])

    # -- tokens --------------------------------------------------------------------------------

    def token(self, kind: str, side: str) -> str | None:
        q = "SELECT token FROM token WHERE kind=? AND side=?"
        row = self._db.execute(q, (kind, side)).fetchone()
        return str(row[0]) if row else None

    def save_token(self, kind: str, side: str, token: str | None) -> None:
        if token is None:
            q = "DELETE FROM token WHERE kind=? AND side=?"
            self._db.execute(q, (kind, side))
        else:
            q = "INSERT OR REPLACE INTO token VALUES (?,?,?)"
            self._db.execute(q, (kind, side, token))

    def reset(self, kind: str) -> None:
        """Forget tokens (the next pass lists both sides in full; pairs are kept)."""
        self._db.execute("DELETE FROM token WHERE kind=?", (kind,))

    # -- mailbox items seen --------------------------------------------------------------------

    def see(self, kind: str, items: Iterable[tuple[str, str | None, str | None]]) -> None:
        """Record mailbox items (key, primary e-mail, carried CRM id)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO seen VALUES (?,?,?,?)",
            [(kind, k, e.lower() if e else None, c) for k, e, c in items],
        )

    def unsee(self, kind: str, keys: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM seen WHERE kind=? AND key=?", [(kind, k) for k in keys])

    def forget_seen(self, kind: str) -> None:
        self._db.execute("DELETE FROM seen WHERE kind=?", (kind,))

    def seen_with(
        self, kind: str, *, email: str | None = None, crm_id: str | None = None
    ) -> list[str]:
        """Mailbox keys seen carrying ``crm_id``, or with primary e-mail ``email``."""
        if crm_id is not None:
            q, arg = "SELECT key FROM seen WHERE kind=? AND crm_id=?", crm_id
        elif email:
            q, arg = "SELECT key FROM seen WHERE kind=? AND email=?", email.lower()
        else:
            return []
        return [r[0] for r in self._db.execute(q, (kind, arg))]

    # -- conflicts -----------------------------------------------------------------------------

    def add_conflict(
        self,
        pair: Pair,
        name: str,
        *,
        kept: Any,
        lost: Any,
        base: Any,
        winner: str,
    ) -> None:
        self._db.execute(
            "INSERT INTO conflict (kind, crm_key, mailbox_key, field, kept, lost, base, winner,"
            " at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                pair.kind,
                pair.crm_key,
                pair.mailbox_key,
                name,
                json.dumps(kept, default=str),
                json.dumps(lost, default=str),
                json.dumps(base, default=str),
                winner,
                datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )

    def conflicts(self, kind: str | None = None, *, open_only: bool = True) -> list[Conflict]:
        q = (
            "SELECT id, kind, crm_key, mailbox_key, field, kept, lost, base, winner, at, status"
            " FROM conflict WHERE 1=1"
        )
        args: list[Any] = []
        if kind is not None:
            q += " AND kind=?"
            args.append(kind)
        if open_only:
            q += " AND status='open'"
        q += " ORDER BY id"
        return [
            Conflict(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                json.loads(r[5]),
                json.loads(r[6]),
                json.loads(r[7]),
                r[8],
                r[9],
                r[10],
            )
            for r in self._db.execute(q, args)
        ]

    def conflict(self, conflict_id: int) -> Conflict | None:
        found = [c for c in self.conflicts(open_only=False) if c.id == conflict_id]
        return found[0] if found else None

    def set_conflict_status(self, conflict_id: int, status: str) -> None:
        self._db.execute("UPDATE conflict SET status=? WHERE id=?", (status, conflict_id))


__all__ = ["FILE_NAME", "Conflict", "Pair", "PimState", "StateError"]
