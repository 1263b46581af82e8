"""The SQL of the Maildir demo's PIM items (``core.pim.local_side``): contacts, appointments
and tasks kept on this machine, in a table of the profile's PIM file (``pim.sqlite``).

Each write takes the next value of one change sequence (per file); a deletion keeps the key
with no fields (a tombstone) so that "changes since sequence N" sees it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS local_item (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    fields TEXT,
    PRIMARY KEY (kind, key)
)
"""

#: (key, sequence, fields or None for a deletion)
LocalRow = tuple[str, int, dict[str, Any] | None]


class LocalItems:
    """One file's items, all kinds. One instance per thread."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(Path(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def last_seq(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(seq), 0) FROM local_item").fetchone()[0])

    def since(self, kind: str, seq: int | None) -> list[LocalRow]:
        """Items changed after ``seq`` (deletions included), or every live item (None)."""
        q = "SELECT key, seq, fields FROM local_item WHERE kind=?"
        args: list[Any] = [kind]
        if seq is None:
            q += " AND fields IS NOT NULL"
        else:
            q += " AND seq>?"
            args.append(seq)
        return [(k, s, _load(f)) for k, s, f in self._db.execute(q + " ORDER BY seq", args)]

    def get(self, kind: str, key: str) -> LocalRow | None:
        row = self._db.execute(
            "SELECT key, seq, fields FROM local_item WHERE kind=? AND key=? AND fields IS NOT NULL",
            (kind, key),
        ).fetchone()
        return (row[0], row[1], _load(row[2])) if row else None

    def write(self, kind: str, key: str, fields: dict[str, Any] | None) -> int:
        """Store an item (``None``: a tombstone) under the next sequence; returns it. Call
        inside :meth:`transaction`."""
        seq = self.last_seq() + 1
        self._db.execute(
            "INSERT OR REPLACE INTO local_item VALUES (?,?,?,?)",
            (kind, key, seq, json.dumps(fields, default=str) if fields is not None else None),
        )
        return seq


def _load(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


__all__ = ["LocalItems", "LocalRow"]
