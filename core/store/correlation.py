"""SQLite-backed :class:`core.domain.correlation.CorrelationIndex` on the profile's store.

Same semantics as ``InMemoryCorrelationIndex``: ``add`` replaces by activity id (and moves the
e-mail to the end of the insertion order), ``by_token`` returns the first e-mail stored with a
token, ``by_message_id`` the last one stored with that Message-ID. Every key is indexed, so a
look-up costs one B-tree search whatever the number of tracked e-mails.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.domain.correlation import TrackedEmail
from core.store.rows import record_ref
from core.store.store import Store

_COLUMNS = (
    "activity_id",
    "regarding_entity",
    "regarding_id",
    "regarding_name",
    "message_id",
    "token",
    "token_key",
    "conversation_index",
    "conversation_root",
    "smart_key",
    "addresses_json",
    "subject",
    "sent_on",
    "owner_id",
)
_SELECT = ", ".join(_COLUMNS)


def _values(email: TrackedEmail) -> tuple[Any, ...]:
    reg = email.regarding
    return (
        email.activity_id,
        reg.entity if reg else None,
        reg.id if reg else None,
        reg.name if reg else None,
        email.message_id,
        email.token,
        email.token.casefold() if email.token else None,
        email.conversation_index,
        email.conversation_root,
        email.smart_key or "",
        json.dumps(sorted(email.addresses), ensure_ascii=False) if email.addresses else "[]",
        email.subject,
        email.sent_on.isoformat() if email.sent_on else None,
        email.owner_id,
    )


_ROW = f"({', '.join('?' * (len(_COLUMNS) + 1))})"
_PER_STATEMENT = 500


@functools.lru_cache(maxsize=4)
def _insert_sql(rows: int) -> str:
    return f"INSERT OR REPLACE INTO tracked_emails ({_SELECT}, pull_mark) VALUES " + ", ".join(
        [_ROW] * rows
    )


@dataclass(frozen=True, slots=True)
class EmailRows:
    """E-mails turned into ``tracked_emails`` rows (:func:`email_rows`), ready to store: a
    helper thread prepares a page's rows while the store's thread writes the previous page."""

    rows: list[tuple[Any, ...]]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def activity_ids(self) -> list[str]:
        return [r[0] for r in self.rows]

    @property
    def message_ids(self) -> list[str]:
        """The rows' Message-IDs (keys), in order, without the e-mails that have none."""
        return [r[4] for r in self.rows if r[4] is not None]


def email_rows(emails: Iterable[TrackedEmail], pull_mark: int | None = None) -> EmailRows:
    """``emails`` as rows for :meth:`SqliteCorrelationIndex.add_many`, without touching the
    database. ``pull_mark``: see ``add_many``."""
    return EmailRows([(*_values(e), pull_mark) for e in emails])


def _email(row: Sequence[Any]) -> TrackedEmail:
    r = dict(zip(_COLUMNS, row, strict=True))
    return TrackedEmail(
        activity_id=r["activity_id"],
        regarding=record_ref(r["regarding_entity"], r["regarding_id"], r["regarding_name"]),
        message_id=r["message_id"],
        token=r["token"],
        conversation_index=r["conversation_index"],
        conversation_root=r["conversation_root"],
        smart_key=r["smart_key"],
        addresses=frozenset(json.loads(r["addresses_json"])),
        subject=r["subject"],
        sent_on=datetime.fromisoformat(r["sent_on"]) if r["sent_on"] else None,
        owner_id=r["owner_id"],
    )


class SqliteCorrelationIndex:
    """The correlation index kept in ``store`` (table ``tracked_emails``). Used from the
    store's thread, like the store itself."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _one(self, where: str, value: object, order: str = "seq") -> TrackedEmail | None:
        row = self.store.conn.execute(
            f"SELECT {_SELECT} FROM tracked_emails WHERE {where} ORDER BY {order} LIMIT 1",
            (value,),
        ).fetchone()
        return _email(row) if row else None

    def _all(self, where: str, value: object) -> list[TrackedEmail]:
        rows = self.store.conn.execute(
            f"SELECT {_SELECT} FROM tracked_emails WHERE {where} ORDER BY seq", (value,)
        )
        return [_email(r) for r in rows]

    def __len__(self) -> int:
        return int(self.store.conn.execute("SELECT count(*) FROM tracked_emails").fetchone()[0])

    def __iter__(self) -> Iterator[TrackedEmail]:
        return iter(self._all("1 = ?", 1))

    def get(self, activity_id: str) -> TrackedEmail | None:
        return self._one("activity_id = ?", activity_id)

    def by_message_id(self, message_id: str) -> TrackedEmail | None:
        return self._one("message_id = ?", message_id, order="seq DESC")

    def by_token(self, token: str) -> TrackedEmail | None:
        return self._one("token_key = ?", token.casefold())

    def by_conversation_root(self, root: str) -> Sequence[TrackedEmail]:
        return self._all("conversation_root = ?", root)

    def by_smart_key(self, key: str) -> Sequence[TrackedEmail]:
        if not key:
            return []
        return self._all("smart_key = ?", key)

    def add(self, email: TrackedEmail) -> None:
        self.add_many([email])

    def add_many(
        self, emails: Iterable[TrackedEmail] | EmailRows, *, pull_mark: int | None = None
    ) -> int:
        """Store many e-mails in one transaction (a page read from the CRM), or rows that
        :func:`email_rows` prepared (which carry their own mark). ``pull_mark``: the full
        pull that saw them (see ``core.store.crm_emails``); None for e-mails tracked from
        here, which no pull has confirmed yet."""
        prepared = emails if isinstance(emails, EmailRows) else email_rows(emails, pull_mark)
        # OR REPLACE (not upsert): a replaced e-mail is deleted and inserted again, so it
        # moves to the end of the order.
        rows = prepared.rows
        with self.store.transaction() as conn:
            for start in range(0, len(rows), _PER_STATEMENT):
                part = rows[start : start + _PER_STATEMENT]
                conn.execute(_insert_sql(len(part)), [v for row in part for v in row])
        return len(prepared)

    def remove(self, activity_id: str) -> None:
        self.remove_many([activity_id])

    def remove_many(self, activity_ids: Iterable[str]) -> list[str]:
        """Drop these activities; returns the Message-IDs they had (their copies' tracked
        state may change)."""
        ids = [(a,) for a in activity_ids]
        with self.store.transaction() as conn:
            gone = [
                r[0]
                for a in ids
                for r in conn.execute(
                    "SELECT message_id FROM tracked_emails WHERE activity_id = ?"
                    " AND message_id IS NOT NULL",
                    a,
                )
            ]
            conn.executemany("DELETE FROM tracked_emails WHERE activity_id = ?", ids)
        return gone

    def clear(self) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM tracked_emails")


__all__ = ["EmailRows", "SqliteCorrelationIndex", "email_rows"]
