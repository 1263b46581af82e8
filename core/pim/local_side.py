"""The mailbox side of the Maildir demo: contacts, appointments and tasks kept on this machine
(a Maildir has no address book or calendar), in the profile's PIM file
(``core.pim.state.FILE_NAME``; the SQL is ``core.store.pim_local``).

Each write bumps a per-file change sequence; the sync token is the last sequence seen, so
``changes`` is incremental like a DAV sync-token, deletions included (tombstones). The
desktop's views read and edit items here through :meth:`LocalSide.items` and ``put``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from core.pim.sides import ChangePage, PimKind, PimRecord, SideChange, VersionConflict
from core.store.pim_local import LocalItems


class LocalSide:
    """One kind's items in a local file. ``version`` is the item's sequence number."""

    def __init__(self, path: Path | str, kind: PimKind) -> None:
        self.kind = kind
        self._items = LocalItems(path)

    def close(self) -> None:
        self._items.close()

    def changes(self, token: str | None) -> ChangePage:
        since = int(token) if token and token.isdigit() else None
        rows = self._items.since(self.kind, since)
        out = [
            SideChange(key, PimRecord(self.kind, fields) if fields is not None else None, str(seq))
            for key, seq, fields in rows
        ]
        last = max([since or 0, *(seq for _, seq, _ in rows)])
        if since is None:
            last = self._items.last_seq()
        return ChangePage(out, str(last), full=since is None)

    def get(self, key: str) -> SideChange | None:
        row = self._items.get(self.kind, key)
        if row is None or row[2] is None:
            return None
        return SideChange(key, PimRecord(self.kind, row[2]), str(row[1]))

    def items(self) -> list[SideChange]:
        """Every live item (for the desktop's views)."""
        return [c for c in self.changes(None).changes if c.record is not None]

    def put(self, key: str | None, record: PimRecord, version: str | None) -> tuple[str, str]:
        """Create, or update the given fields of an item (the others are kept)."""
        with self._items.transaction():
            fields: dict[str, Any] = {}
            if key is None:
                key = self.new_key()
            else:
                current = self.get(key)
                if current is None or current.record is None:
                    raise VersionConflict(f"{key} is gone", retryable=False)
                if version is not None and version != current.version:
                    raise VersionConflict(f"{key} changed since {version}")
                fields = dict(current.record.fields)
            fields.update(record.fields)
            seq = self._items.write(self.kind, key, fields)
        return key, str(seq)

    def new_key(self) -> str:
        return str(uuid.uuid4())

    def create_at(self, key: str, record: PimRecord) -> str:
        with self._items.transaction():
            return str(self._items.write(self.kind, key, dict(record.fields)))

    def delete(self, key: str, version: str | None) -> None:
        current = self.get(key)
        if current is None:
            return
        if version is not None and version != current.version:
            raise VersionConflict(f"{key} changed since {version}")
        with self._items.transaction():
            self._items.write(self.kind, key, None)


__all__ = ["LocalSide"]
