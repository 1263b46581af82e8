"""Tracked state by Message-ID and the audit log: the part of the store the tracking rules,
the outbox and the "Tracked in CRM" / "Needs attention" views use."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.domain.model import Decision, MailRef, Reason, RecordRef, TrackState
from core.store.rows import (
    ROW_SELECT,
    TRACK_COLUMNS,
    AuditEntry,
    MessageRow,
    message_row,
    record_ref,
    sort_key,
)

if TYPE_CHECKING:
    from core.store.store import Store


def _now() -> str:
    return datetime.now(UTC).isoformat()


_TRACKING_SQL = (
    f"INSERT OR REPLACE INTO tracking (message_id, {', '.join(TRACK_COLUMNS)}, updated_at)"
    f" VALUES ({', '.join('?' * (len(TRACK_COLUMNS) + 2))})"
)
_MESSAGES_SQL = (
    "UPDATE messages SET "
    + ", ".join(f"{c} = ?" for c in TRACK_COLUMNS)
    + ", regarding_sort = ? WHERE message_id = ?"
)

# The copies of a set of Message-IDs (a JSON array) take their ``tracking`` rows, in SQL.
# The Regarding sort key is written apart, only where it changes: an UPDATE that sets an
# indexed column moves its index entry whether or not the value changed, and most changes
# (tracked from elsewhere without a regarding record, untracked) keep the key ''.
_REGARDING_SORT = (
    "CASE WHEN t.regarding_id IS NULL THEN ''"
    " ELSE sort_key(coalesce(nullif(t.regarding_name, ''), t.regarding_id)) END"
)
_MIRROR_SQL = (
    "UPDATE messages SET "
    + ", ".join(f"{c} = t.{c}" for c in TRACK_COLUMNS)
    + " FROM tracking AS t WHERE t.message_id IN (SELECT value FROM json_each(?))"
    " AND messages.message_id = t.message_id"
)
_MIRROR_SORT_SQL = (
    f"UPDATE messages SET regarding_sort = {_REGARDING_SORT}"
    " FROM tracking AS t WHERE t.message_id IN (SELECT value FROM json_each(?))"
    f" AND messages.message_id = t.message_id AND messages.regarding_sort != {_REGARDING_SORT}"
)


def _rows(
    message_id: str,
    state: TrackState,
    activity_id: str | None,
    regarding: RecordRef | None,
    reason: Reason | None,
    by_other: bool,
    now: str,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The ``tracking`` row and the ``messages`` update of one Message-ID's state."""
    mid = message_id.strip()
    values = (
        state.value,
        activity_id,
        regarding.entity if regarding else None,
        regarding.id if regarding else None,
        regarding.name if regarding else None,
        reason.code if reason else None,
        reason.text if reason else None,
        int(by_other),
    )
    regarding_sort = sort_key((regarding.name or regarding.id) if regarding else "")
    return (mid, *values, now), (*values, regarding_sort, mid)


class TrackedStates:
    """``store.tracking``: tracked state by Message-ID, the audit log, the CRM views' reads."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def set_state(
        self,
        message_id: str,
        state: TrackState,
        *,
        activity_id: str | None = None,
        regarding: RecordRef | None = None,
        reason: Reason | None = None,
        tracked_by_other: bool | None = None,
    ) -> int:
        """Set the state of every copy of ``message_id`` (any folder), and of copies that
        arrive later. ``tracked_by_other`` defaults to ``state is TRACKED_BY_OTHER``.
        Returns the number of stored copies changed."""
        by_other = (
            state is TrackState.TRACKED_BY_OTHER if tracked_by_other is None else (tracked_by_other)
        )
        return self._write(
            [_rows(message_id, state, activity_id, regarding, reason, by_other, _now())]
        )

    def set_states(
        self,
        items: Iterable[tuple[str, TrackState, str | None, RecordRef | None, Reason | None]],
    ) -> int:
        """``set_state`` for many Message-IDs in one transaction (a page of the CRM's
        e-mails): ``(message id, state, activity id, regarding, reason)`` each."""
        now = _now()
        by_other = TrackState.TRACKED_BY_OTHER
        return self._write(
            [
                _rows(mid, state, activity, regarding, reason, state is by_other, now)
                for mid, state, activity, regarding, reason in items
            ]
        )

    def mirror(self, message_ids: list[str]) -> int:
        """Copy the ``tracking`` rows of these Message-IDs onto their stored copies (after
        a set-based write of ``tracking``, see ``CrmEmailCopy.refresh_states``). Returns
        the number of copies updated."""
        ids = json.dumps(message_ids)
        with self.store.transaction() as conn:
            count = conn.execute(_MIRROR_SQL, (ids,)).rowcount
            conn.execute(_MIRROR_SORT_SQL, (ids,))
        return count

    def _write(self, rows: list[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> int:
        """The ``tracking`` rows and the copies' columns, in one transaction."""
        with self.store.transaction() as conn:
            conn.executemany(_TRACKING_SQL, [r[0] for r in rows])
            return conn.executemany(_MESSAGES_SQL, [r[1] for r in rows]).rowcount

    def state_of(self, message_id: str) -> TrackState:
        """State by Message-ID, whether or not a copy is stored."""
        row = self.store.conn.execute(
            "SELECT track_state FROM tracking WHERE message_id = ?", (message_id.strip(),)
        ).fetchone()
        return TrackState(row[0]) if row else TrackState.NOT_TRACKED

    def record_decision(self, message_id: str, decision: Decision, *, source: str) -> None:
        """Append the decision to the audit log (never updated, never pruned by the store)."""
        details: dict[str, Any] = {
            "needs_review": decision.needs_review,
            "attachments_dropped": decision.attachments_dropped,
            "crm_reason_code": decision.crm_reason_code,
            "correlated_activity": decision.correlated_activity,
            "correlation_method": decision.correlation_method,
            "unresolved": [a.email for a in decision.unresolved],
            "parties": [
                {
                    "role": p.role,
                    "address": p.address.email,
                    "records": [[r.entity, r.id] for r in p.records],
                }
                for p in decision.parties
            ],
        }
        reg = decision.regarding
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO audit_log (message_id, at, source, track, reason_code, reason_text,"
                " regarding_entity, regarding_id, regarding_name, details_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id.strip(),
                    _now(),
                    source,
                    int(decision.track),
                    decision.reason.code,
                    decision.reason.text,
                    reg.entity if reg else None,
                    reg.id if reg else None,
                    reg.name if reg else None,
                    json.dumps(details, ensure_ascii=False),
                ),
            )

    def audit_log(self, message_id: str) -> list[AuditEntry]:
        rows = self.store.conn.execute(
            "SELECT id, message_id, at, source, track, reason_code, reason_text,"
            " regarding_entity, regarding_id, regarding_name, details_json"
            " FROM audit_log WHERE message_id = ? ORDER BY id",
            (message_id.strip(),),
        )
        return [
            AuditEntry(
                id=i,
                message_id=m,
                at=datetime.fromisoformat(at),
                source=src,
                track=bool(t),
                reason=Reason(code, text),
                regarding=record_ref(re_, ri, rn),
                details=json.loads(details),
            )
            for i, m, at, src, t, code, text, re_, ri, rn, details in rows
        ]

    def state_counts(self) -> dict[TrackState, int]:
        """Stored copies per state (a Message-ID in two folders counts twice), every state
        present with 0 when empty."""
        counts = dict.fromkeys(TrackState, 0)
        rows = self.store.conn.execute("SELECT track_state, count(*) FROM messages GROUP BY 1")
        for state, count in rows:
            counts[TrackState(state)] = count
        return counts

    def messages_in_state(self, state: TrackState, offset: int, limit: int) -> list[MessageRow]:
        """All folders' copies in ``state``, newest first (the cross-folder views)."""
        rows = self.store.conn.execute(
            f"SELECT {ROW_SELECT} FROM messages WHERE track_state = ? "
            "ORDER BY date_ts DESC, id DESC LIMIT ? OFFSET ?",
            (state.value, int(limit), int(offset)),
        )
        return [message_row(r) for r in rows]

    def markers_due(self, limit: int, untrack_kind: str) -> list[tuple[MailRef, str | None]]:
        """Copies whose tracked marker on the mail server disagrees with what Trackbox did:
        tracked with no marker (setting it failed, or the mail was tracked elsewhere without
        one) → ``(ref, activity_id)``; a marker left on mail the user untracked here →
        ``(ref, None)``. Read back by the next mail sync, so each is asked for until it holds.
        A marker set by another device on mail this store never untracked is not touched.
        ``untrack_kind`` is the outbox kind of an untrack (the outbox's, not the store's)."""
        rows = self.store.conn.execute(
            "SELECT folder, uid, activity_id FROM messages"
            " WHERE track_state = ? AND activity_id IS NOT NULL AND tracked_marker IS NULL"
            " UNION ALL SELECT folder, uid, NULL FROM messages m"
            " WHERE track_state = ? AND tracked_marker IS NOT NULL AND EXISTS ("
            "   SELECT 1 FROM outbox o WHERE o.message_id = m.message_id AND o.kind = ?"
            "   AND o.state = 'done' AND o.id = ("
            "     SELECT max(id) FROM outbox WHERE message_id = m.message_id AND state = 'done'))"
            " LIMIT ?",
            (TrackState.TRACKED.value, TrackState.NOT_TRACKED.value, untrack_kind, int(limit)),
        )
        return [(MailRef(folder, uid), activity) for folder, uid, activity in rows]
