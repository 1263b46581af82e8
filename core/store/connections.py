"""The ``mail_connections`` table: the records a tracked mail is linked to beyond its one
regarding (Dataverse connections), as the CRM last said and as the queue will make them.

The banner reads it (offline too); a fetch from the CRM replaces a message's 'linked' rows;
the outbox marks a link 'adding' or 'removing' when queued and settles it when done. Writes
join the caller's transaction (the outbox applies its local effect in the one that marks the
operation done).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.domain.model import RecordRef
from core.store.store import Store

LINKED = "linked"
ADDING = "adding"
REMOVING = "removing"


@dataclass(frozen=True, slots=True)
class MailConnection:
    """One link of a mail to a record. ``connection_id`` is the CRM's (None until added);
    ``state`` is :data:`LINKED`, :data:`ADDING` or :data:`REMOVING`."""

    record: RecordRef
    connection_id: str | None = None
    state: str = LINKED


class ConnectionRows:
    """Reads and writes of ``mail_connections`` on one store connection (one thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def of(self, message_id: str) -> list[MailConnection]:
        """The links of ``message_id`` in the order they were made (removals included: the
        caller shows them as going)."""
        rows = self.store.conn.execute(
            "SELECT entity, record_id, name, connection_id, state FROM mail_connections"
            " WHERE message_id = ? ORDER BY rowid",
            (message_id,),
        )
        return [
            MailConnection(RecordRef(entity, record_id, name), connection_id, state)
            for entity, record_id, name, connection_id, state in rows
        ]

    def mark(self, message_id: str, record: RecordRef, state: str) -> None:
        """Show a link as queued (``ADDING``) or going (``REMOVING``)."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO mail_connections (message_id, entity, record_id, name, state,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id, entity, record_id) DO UPDATE SET state = excluded.state,"
                " name = CASE WHEN excluded.name != '' THEN excluded.name ELSE name END,"
                " updated_at = excluded.updated_at",
                (message_id, record.entity, record.id.lower(), record.name, state, _now()),
            )

    def linked(self, message_id: str, record: RecordRef, connection_id: str | None) -> None:
        """The CRM has the link (its connection's id)."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO mail_connections (message_id, entity, record_id, name,"
                " connection_id, state, updated_at) VALUES (?, ?, ?, ?, ?, 'linked', ?)"
                " ON CONFLICT (message_id, entity, record_id) DO UPDATE SET state = 'linked',"
                " connection_id = excluded.connection_id,"
                " name = CASE WHEN excluded.name != '' THEN excluded.name ELSE name END,"
                " updated_at = excluded.updated_at",
                (
                    message_id,
                    record.entity,
                    record.id.lower(),
                    record.name,
                    connection_id,
                    _now(),
                ),
            )

    def forget(self, message_id: str, record: RecordRef) -> None:
        """The link is gone (removed, or its queued addition discarded)."""
        with self.store.transaction() as conn:
            conn.execute(
                "DELETE FROM mail_connections WHERE message_id = ? AND entity = ?"
                " AND record_id = ?",
                (message_id, record.entity, record.id.lower()),
            )

    def replace_linked(self, message_id: str, found: Iterable[MailConnection]) -> None:
        """What the CRM says now replaces the message's settled links (those still listed
        keep their place); links the queue is still adding or removing keep their state."""
        found = list(found)
        keys = {(c.record.entity, c.record.id.lower()) for c in found}
        with self.store.transaction():
            pending = set()
            for link in self.of(message_id):
                key = (link.record.entity, link.record.id.lower())
                if link.state != LINKED:
                    pending.add(key)
                elif key not in keys:
                    self.forget(message_id, link.record)
            for link in found:
                if (link.record.entity, link.record.id.lower()) not in pending:
                    self.linked(message_id, link.record, link.connection_id)


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["ADDING", "LINKED", "REMOVING", "ConnectionRows", "MailConnection"]
