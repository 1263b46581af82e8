"""The local copy of the CRM's e-mail activities that the user can see (issue 13).

The CRM is the truth about which mail is tracked. Its e-mail activities are read once in full
(paged, resumable: the next page's link is saved with each page) and then followed through
change tracking, into the correlation index (``tracked_emails``), so that correlation and the
tracked-state column answer from the CRM's truth at the cost of a local look-up. A full pull
marks every e-mail it sees with its generation and ends by dropping the ones it did not see
(deleted in the CRM while no delta could tell); e-mails tracked from here in between carry no
mark and are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.domain.model import SHOWN_TRACKED, Reason, RecordRef, TrackState
from core.store.rows import record_ref
from core.store.store import Store

#: Local states that the CRM's answer may change (pending, failed and undecided mail is the
#: outbox's or the decision step's business; undecided mail that the CRM has is decided).
REFRESHED_STATES = (
    TrackState.NOT_TRACKED,
    TrackState.TRACKED,
    TrackState.TRACKED_BY_OTHER,
    TrackState.NEEDS_ATTENTION,
    TrackState.UNDECIDED,
)


_SHOWN = "(" + ", ".join(f"'{s.value}'" for s in SHOWN_TRACKED) + ")"
_REFRESHED = "(" + ", ".join(f"'{s.value}'" for s in REFRESHED_STATES) + ")"

#: ``refresh_states``: per wanted Message-ID with a stored copy and no outbox work, its local
#: state (``tracking``, default not tracked) and its latest stored CRM e-mail; the rows whose
#: state changes are written to ``tracking`` and returned.
_REFRESH_SQL = f"""
INSERT OR REPLACE INTO tracking (message_id, track_state, activity_id, regarding_entity,
    regarding_id, regarding_name, reason_code, reason_text, tracked_by_other, updated_at)
SELECT mid,
    CASE WHEN activity IS NULL THEN 'not_tracked'
        WHEN mine THEN 'tracked' ELSE 'tracked_by_other' END,
    activity, regarding_entity, regarding_id, regarding_name,
    CASE WHEN activity IS NULL THEN :untracked_code
        WHEN mine THEN :tracked_code ELSE :other_code END,
    CASE WHEN activity IS NULL THEN :untracked_text
        WHEN mine THEN :tracked_text ELSE :other_text END,
    activity IS NOT NULL AND NOT mine,
    :now
FROM (
    SELECT w.value AS mid, coalesce(t.track_state, 'not_tracked') AS state,
        t.activity_id AS had, e.activity_id AS activity, e.regarding_entity,
        e.regarding_id, e.regarding_name,
        (:me IS NULL OR e.owner_id IS NULL OR e.owner_id = :me) AS mine
    FROM json_each(:ids) AS w
    LEFT JOIN tracking AS t ON t.message_id = w.value
    LEFT JOIN tracked_emails AS e ON e.seq = (
        SELECT max(x.seq) FROM tracked_emails AS x WHERE x.message_id = w.value)
    WHERE EXISTS (SELECT 1 FROM messages AS m WHERE m.message_id = w.value)
        AND NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.message_id = w.value
            AND o.state IN ('queued', 'parked'))
)
WHERE state IN {_REFRESHED} AND CASE WHEN activity IS NULL THEN state IN {_SHOWN}
    ELSE NOT (state IN {_SHOWN} AND had IS activity) END
RETURNING message_id, track_state, activity_id, regarding_entity, regarding_id,
    regarding_name, reason_code
"""

#: One changed state: ``(message id, state, activity id, regarding, reason)``, the shape
#: ``TrackedStates.set_states`` takes.
StateRow = tuple[str, TrackState, str | None, RecordRef | None, Reason]


@dataclass(frozen=True, slots=True)
class RefreshReasons:
    """The reasons a refresh records (their wording is the sync layer's)."""

    tracked: Reason
    tracked_by_other: Reason
    untracked: Reason


@dataclass(frozen=True, slots=True)
class EmailSyncState:
    """Where the pull of the CRM's e-mails stands: ``next_link`` while a full pull is under
    way, then ``delta_link``; ``generation`` numbers the full pulls."""

    generation: int = 0
    key_settings: str | None = None
    next_link: str | None = None
    delta_link: str | None = None
    pulled_at: datetime | None = None
    synced_at: datetime | None = None

    @property
    def pulling(self) -> bool:
        return self.next_link is not None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class CrmEmailCopy:
    """Pull state, sweeps and the local side of a tracked-state refresh. Used from the
    store's thread, like the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def state(self) -> EmailSyncState:
        row = self.store.conn.execute(
            "SELECT generation, key_settings, next_link, delta_link, pulled_at, synced_at"
            " FROM crm_email_sync WHERE id = 1"
        ).fetchone()
        if row is None:
            return EmailSyncState()
        return EmailSyncState(int(row[0]), row[1], row[2], row[3], _when(row[4]), _when(row[5]))

    def _save(self, **values: object) -> None:
        names = list(values)
        with self.store.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO crm_email_sync (id) VALUES (1)")
            conn.execute(
                f"UPDATE crm_email_sync SET {', '.join(f'{n} = ?' for n in names)} WHERE id = 1",
                [values[n] for n in names],
            )

    def begin_pull(self, key_settings: str) -> int:
        """Start a new full pull, computing keys under ``key_settings``; returns its
        generation. Entries already stored count as "seen before": the pull's sweep drops
        those it does not see again."""
        generation = self.state().generation + 1
        with self.store.transaction() as conn:
            conn.execute("UPDATE tracked_emails SET pull_mark = 0 WHERE pull_mark IS NULL")
            self._save(
                generation=generation, next_link="", delta_link=None, key_settings=key_settings
            )
        return generation

    def save_next_link(self, link: str) -> None:
        """The page to resume the full pull from (saved in the transaction of the page)."""
        self._save(next_link=link)

    def finish_pull(self, generation: int, delta_link: str) -> list[str]:
        """End a full pull: drop what it did not see, keep the delta link. Returns the
        Message-IDs of the dropped e-mails."""
        now = datetime.now(UTC).isoformat()
        with self.store.transaction() as conn:
            gone = [
                r[0]
                for r in conn.execute(
                    "SELECT message_id FROM tracked_emails WHERE pull_mark IS NOT NULL"
                    " AND pull_mark != ? AND message_id IS NOT NULL",
                    (generation,),
                )
            ]
            conn.execute(
                "DELETE FROM tracked_emails WHERE pull_mark IS NOT NULL AND pull_mark != ?",
                (generation,),
            )
            self._save(next_link=None, delta_link=delta_link, pulled_at=now, synced_at=now)
        return gone

    def save_delta_link(self, link: str) -> None:
        self._save(delta_link=link, synced_at=datetime.now(UTC).isoformat())

    def forget(self) -> None:
        """Read everything again at the next refresh (an expired or refused delta link)."""
        self._save(next_link=None, delta_link=None)

    def refresh_states(
        self, message_ids: Iterable[str], me: str | None, reasons: RefreshReasons
    ) -> list[StateRow]:
        """Bring the stored copies of these Message-IDs to what the stored CRM e-mails say,
        in one statement for a page of the CRM's e-mails (no row goes through Python on its
        way from ``tracked_emails`` to ``tracking``); returns what changed, as
        ``(message id, state, activity id, regarding, reason)``.

        Only Message-IDs with a stored copy, in a state a refresh may change
        (:data:`REFRESHED_STATES`), and nothing the outbox still has to do. The CRM's answer
        for a Message-ID is its latest stored e-mail. The rules are
        ``core.sync.plan.plan_refresh`` (the tests hold the two to the same answers):

        - the CRM has it, mine or owner unknown (or ``me`` unknown): TRACKED;
        - the CRM has it, someone else's: TRACKED_BY_OTHER;
        - unchanged when already shown tracked with that same activity (a flag for review
          stays, and an activity I track stays mine whoever owns it);
        - the CRM does not have it but it was shown tracked: NOT_TRACKED.
        """
        wanted = json.dumps(list(dict.fromkeys(m for m in message_ids if m)))
        if wanted == "[]":
            return []
        now = datetime.now(UTC).isoformat()
        with self.store.transaction() as conn:
            rows = conn.execute(
                _REFRESH_SQL,
                {
                    "ids": wanted,
                    "me": me,
                    "now": now,
                    "tracked_code": reasons.tracked.code,
                    "tracked_text": reasons.tracked.text,
                    "other_code": reasons.tracked_by_other.code,
                    "other_text": reasons.tracked_by_other.text,
                    "untracked_code": reasons.untracked.code,
                    "untracked_text": reasons.untracked.text,
                },
            ).fetchall()
            if not rows:
                return []
            self.store.tracking.mirror([r[0] for r in rows])
        by_code = {
            r.code: r for r in (reasons.tracked, reasons.tracked_by_other, reasons.untracked)
        }
        states = {s.value: s for s in TrackState}
        return [
            (mid, states[state], activity, record_ref(ent, rid, name), by_code[code])
            for mid, state, activity, ent, rid, name, code in rows
        ]

    def shown_tracked_without_email(self) -> list[str]:
        """Message-IDs shown tracked here that no stored CRM e-mail carries (after a full
        pull: untracked while nobody could see it)."""
        rows = self.store.conn.execute(
            "SELECT t.message_id FROM tracking AS t WHERE t.track_state IN"
            " ('tracked', 'tracked_by_other', 'needs_attention') AND NOT EXISTS"
            " (SELECT 1 FROM tracked_emails AS e WHERE e.message_id = t.message_id)"
        )
        return [r[0] for r in rows]

    def message_ids_of(self, activity_ids: Iterable[str]) -> list[str]:
        """The stored Message-IDs of these activities (before a change replaces them)."""
        ids = list(activity_ids)
        out: list[str] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.extend(
                r[0]
                for r in self.store.conn.execute(
                    "SELECT message_id FROM tracked_emails WHERE message_id IS NOT NULL AND"
                    f" activity_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
            )
        return out


__all__ = ["REFRESHED_STATES", "CrmEmailCopy", "EmailSyncState", "RefreshReasons", "StateRow"]
