"""The ``outbox`` table: every SQL statement of the durable queue (``core.outbox.queue`` owns
the semantics — order, back-off, exactly once — and maps rows to typed operations).

Rows come back as plain tuples in :data:`COLUMNS` order, so the store stays below the outbox
(it imports only the domain). Writes join the caller's transaction when there is one: the
queue marks an operation done and applies its local effect in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.store.store import Store

#: The columns of a row, in the order :class:`OutboxRows` returns them.
COLUMNS = (
    "id",
    "kind",
    "idempotency_key",
    "message_id",
    "payload_json",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error_code",
    "last_error_message",
    "result_json",
    "created_at",
    "updated_at",
)
_SELECT = ", ".join(COLUMNS)
_OPEN = "('queued', 'parked')"  # states an operation can still run from

Row = tuple[Any, ...]


class OutboxRows:
    """Reads and writes of the ``outbox`` table on one store connection (one thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reads ------------------------------------------------------------------------------

    def one(self, op_id: int) -> Row | None:
        row: Row | None = self.store.conn.execute(
            f"SELECT {_SELECT} FROM outbox WHERE id = ?", (op_id,)
        ).fetchone()
        return row

    def open_rows(self) -> Iterator[Row]:
        """Queued and parked operations, oldest first."""
        return iter(
            self.store.conn.execute(
                f"SELECT {_SELECT} FROM outbox WHERE state IN {_OPEN} ORDER BY id"
            )
        )

    def open_rows_for(self, message_id: str) -> Iterator[Row]:
        return iter(
            self.store.conn.execute(
                f"SELECT {_SELECT} FROM outbox WHERE message_id = ? AND state IN {_OPEN}"
                " ORDER BY id",
                (message_id,),
            )
        )

    def ready_rows(self, now: float, limit: int) -> Iterator[Row]:
        """Queued operations due at ``now`` whose earlier operations on the same message
        have finished (one message's operations run in order)."""
        return iter(
            self.store.conn.execute(
                f"SELECT {_SELECT} FROM outbox AS o WHERE state = 'queued'"
                " AND next_attempt_at <= ? AND (message_id IS NULL OR NOT EXISTS"
                " (SELECT 1 FROM outbox AS e WHERE e.message_id = o.message_id AND e.id < o.id"
                f" AND e.state IN {_OPEN})) ORDER BY id LIMIT ?",
                (now, limit),
            )
        )

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("queued", "parked", "done", "discarded"), 0)
        for state, n in self.store.conn.execute("SELECT state, count(*) FROM outbox GROUP BY 1"):
            counts[state] = n
        return counts

    def keys_of(self, kind: str) -> set[str]:
        """Idempotency keys of every operation of ``kind`` ever queued (payloads, which may
        hold whole messages, are not read)."""
        rows = self.store.conn.execute("SELECT idempotency_key FROM outbox WHERE kind = ?", (kind,))
        return {key for (key,) in rows}

    def last_open_for_key(self, key: str) -> tuple[int, str, str, str] | None:
        """``(id, kind, payload_json, state)`` of the newest open operation under ``key``."""
        row: tuple[int, str, str, str] | None = self.store.conn.execute(
            "SELECT id, kind, payload_json, state FROM outbox WHERE idempotency_key = ?"
            f" AND state IN {_OPEN} ORDER BY id DESC LIMIT 1",
            (key,),
        ).fetchone()
        return row

    # -- writes -----------------------------------------------------------------------------

    def insert(self, kind: str, key: str, message_id: str | None, payload: str, now: str) -> int:
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO outbox (kind, idempotency_key, message_id, payload_json, state,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (kind, key, message_id, payload, now, now),
            )
            return int(cursor.lastrowid or 0)

    def requeue(self, op_id: int, now: str) -> bool:
        """Queue an open operation again, due at once; False when there is none."""
        with self.store.transaction() as conn:
            return (
                conn.execute(
                    "UPDATE outbox SET state = 'queued', next_attempt_at = 0, updated_at = ?"
                    f" WHERE id = ? AND state IN {_OPEN}",
                    (now, op_id),
                ).rowcount
                > 0
            )

    def set_discarded(self, op_id: int, now: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'discarded', updated_at = ? WHERE id = ?", (now, op_id)
            )

    def make_all_due(self) -> int:
        with self.store.transaction() as conn:
            return conn.execute(
                "UPDATE outbox SET next_attempt_at = 0 WHERE state = 'queued'"
                " AND next_attempt_at > 0"
            ).rowcount

    def mark_done(self, op_id: int, result_json: str, now: str) -> bool:
        """Done, unless discarded or finished by another replayer meanwhile (then False)."""
        with self.store.transaction() as conn:
            return (
                conn.execute(
                    "UPDATE outbox SET state = 'done', attempts = attempts + 1, result_json = ?,"
                    " last_error_code = NULL, last_error_message = NULL, updated_at = ?"
                    " WHERE id = ? AND state = 'queued'",
                    (result_json, now, op_id),
                ).rowcount
                > 0
            )

    def save_result(self, op_id: int, result_json: str, now: str) -> None:
        """A checkpoint: progress kept across a crash."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET result_json = ?, updated_at = ? WHERE id = ?",
                (result_json, now, op_id),
            )

    def defer(
        self, op_id: int, attempts: int, due: float, code: str, message: str, now: str
    ) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error_code = ?,"
                " last_error_message = ?, updated_at = ? WHERE id = ?",
                (attempts, due, code, message, now, op_id),
            )

    def park(self, op_id: int, code: str, message: str, now: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'parked', attempts = attempts + 1,"
                " last_error_code = ?, last_error_message = ?, updated_at = ? WHERE id = ?",
                (code, message, now, op_id),
            )


__all__ = ["COLUMNS", "OutboxRows", "Row"]
