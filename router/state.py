"""Run records: what ``trackbox-router status`` shows and what the scheduler plans from.

Per mailbox: its name and address, the last run (start, end, counts, the run's own errors),
the last failure (and whether the job gave up), consecutive failures, the next run, and
whether a job for it is pending (queued, running, or waiting for a retry: the scheduler does not
enqueue another).
Plus a few values for the whole router (the scheduler's leader, the queue depth the embedded
process last saw).

Kept where the workers can all reach it: Redis in the distributed mode (:class:`RedisState`),
a SQLite file in the state directory in the embedded mode (:class:`SqliteState`), so
``status`` in another process reads it either way. The pending marker holds the job's message
id, so only that job clears or extends it; it expires after ``ttl_s`` in case the message is
lost (a Redis that kept nothing; in the embedded mode, the process that held the queue in
memory: :meth:`forget_pending` at start). A job waiting for a retry extends it past the wait.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from core.domain.mailbox_delivery import MailboxDelivery
from router import KEY_PREFIX


class RunOutcome(Protocol):
    """What a pass over one mailbox reports (``router.processing.MailboxRun`` has these)."""

    @property
    def mailbox_id(self) -> str: ...
    @property
    def started(self) -> datetime: ...
    @property
    def finished(self) -> datetime: ...
    @property
    def promoted(self) -> int: ...
    @property
    def queued(self) -> int: ...
    @property
    def cases(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def errors(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    mailbox_id: str
    name: str = ""
    address: str = ""
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_counts: str = ""
    run_errors: tuple[str, ...] = ()
    last_error: str = ""
    gave_up: bool = False
    failures: int = 0
    next_run: datetime | None = None
    pending: bool = False


class RouterState(Protocol):
    def register(self, mailboxes: Sequence[MailboxDelivery]) -> None: ...
    def record_run(self, run: RunOutcome) -> None: ...
    def record_error(self, mailbox_id: str, error: str, *, gave_up: bool) -> None: ...
    def set_next_run(self, mailbox_id: str, when: datetime) -> None: ...
    def next_run(self, mailbox_id: str) -> datetime | None: ...
    def mark_pending(self, mailbox_id: str, token: str, ttl_s: float) -> bool: ...
    def clear_pending(self, mailbox_id: str, token: str) -> bool: ...
    def touch_pending(self, mailbox_id: str, token: str, ttl_s: float) -> None: ...
    def forget_pending(self) -> None: ...
    def is_pending(self, mailbox_id: str) -> bool: ...
    def snapshot(self) -> list[MailboxStatus]: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def meta(self, key: str) -> str | None: ...


def counts(run: RunOutcome) -> str:
    return f"promoted {run.promoted}, queued {run.queued}, cases {run.cases}, sent {run.sent}"


def _iso(when: datetime | None) -> str:
    return when.astimezone(UTC).isoformat() if when else ""


def _when(text: str | bytes | None) -> datetime | None:
    if isinstance(text, bytes):
        text = text.decode()
    return datetime.fromisoformat(text) if text else None


def _status(mailbox_id: str, fields: dict[str, str], pending: bool) -> MailboxStatus:
    return MailboxStatus(
        mailbox_id=mailbox_id,
        name=fields.get("name", ""),
        address=fields.get("address", ""),
        last_started=_when(fields.get("last_started")),
        last_finished=_when(fields.get("last_finished")),
        last_counts=fields.get("last_counts", ""),
        run_errors=tuple(json.loads(fields.get("run_errors") or "[]")),
        last_error=fields.get("last_error", ""),
        gave_up=fields.get("gave_up") == "1",
        failures=int(fields.get("failures") or 0),
        next_run=_when(fields.get("next_run")),
        pending=pending,
    )


def _run_fields(run: RunOutcome) -> dict[str, str]:
    return {
        "last_started": _iso(run.started),
        "last_finished": _iso(run.finished),
        "last_counts": counts(run),
        "run_errors": json.dumps(list(run.errors)),
        "last_error": "",
        "gave_up": "0",
        "failures": "0",
    }


class RedisState:
    """One hash per mailbox, a set of their ids, a pending key per mailbox, a meta hash."""

    def __init__(self, client: Any, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._clear = client.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
            "end return 0"
        )
        self._touch = client.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
        )

    def _key(self, mailbox_id: str) -> str:
        return f"{self.prefix}:mailbox:{mailbox_id}"

    def _pending(self, mailbox_id: str) -> str:
        return f"{self.prefix}:pending:{mailbox_id}"

    def _update(self, mailbox_id: str, fields: dict[str, str], failed: bool = False) -> None:
        pipe = self.client.pipeline()
        pipe.sadd(f"{self.prefix}:mailboxes", mailbox_id)
        pipe.hset(self._key(mailbox_id), mapping=fields)
        if failed:
            pipe.hincrby(self._key(mailbox_id), "failures", 1)
        pipe.execute()

    def register(self, mailboxes: Sequence[MailboxDelivery]) -> None:
        for box in mailboxes:
            self._update(box.mailbox_id, {"name": box.name, "address": box.address})

    def record_run(self, run: RunOutcome) -> None:
        self._update(run.mailbox_id, _run_fields(run))

    def record_error(self, mailbox_id: str, error: str, *, gave_up: bool) -> None:
        fields = {"last_error": error, "gave_up": "1" if gave_up else "0"}
        self._update(mailbox_id, fields, failed=True)

    def set_next_run(self, mailbox_id: str, when: datetime) -> None:
        self._update(mailbox_id, {"next_run": _iso(when)})

    def next_run(self, mailbox_id: str) -> datetime | None:
        return _when(self.client.hget(self._key(mailbox_id), "next_run"))

    def mark_pending(self, mailbox_id: str, token: str, ttl_s: float) -> bool:
        px = max(1, int(ttl_s * 1000))
        return bool(self.client.set(self._pending(mailbox_id), token, nx=True, px=px))

    def clear_pending(self, mailbox_id: str, token: str) -> bool:
        return bool(self._clear(keys=[self._pending(mailbox_id)], args=[token]))

    def touch_pending(self, mailbox_id: str, token: str, ttl_s: float) -> None:
        px = max(1, int(ttl_s * 1000))
        self._touch(keys=[self._pending(mailbox_id)], args=[token, px])

    def forget_pending(self) -> None:
        for key in self.client.scan_iter(match=f"{self.prefix}:pending:*"):
            self.client.delete(key)

    def is_pending(self, mailbox_id: str) -> bool:
        return bool(self.client.exists(self._pending(mailbox_id)))

    def snapshot(self) -> list[MailboxStatus]:
        ids = sorted(m.decode() for m in self.client.smembers(f"{self.prefix}:mailboxes"))
        out = []
        for mailbox_id in ids:
            raw = self.client.hgetall(self._key(mailbox_id))
            fields = {k.decode(): v.decode() for k, v in raw.items()}
            out.append(_status(mailbox_id, fields, self.is_pending(mailbox_id)))
        return out

    def set_meta(self, key: str, value: str) -> None:
        self.client.hset(f"{self.prefix}:meta", key, value)

    def meta(self, key: str) -> str | None:
        value = self.client.hget(f"{self.prefix}:meta", key)
        return value.decode() if isinstance(value, bytes) else None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS mailbox (mailbox_id TEXT PRIMARY KEY, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (mailbox_id TEXT PRIMARY KEY, token TEXT, until REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class SqliteState:
    """The same records in one SQLite file (embedded mode; ``status`` reads it from another
    process). One connection per call: workers are threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._mutex = threading.Lock()
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()

    def _update(self, mailbox_id: str, fields: dict[str, str]) -> None:
        with self._mutex, self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT fields FROM mailbox WHERE mailbox_id=?", (mailbox_id,))
            found = row.fetchone()
            merged = {**(json.loads(found[0]) if found else {}), **fields}
            db.execute(
                "INSERT OR REPLACE INTO mailbox VALUES (?, ?)", (mailbox_id, json.dumps(merged))
            )
            db.execute("COMMIT")

    def _fields(self, mailbox_id: str) -> dict[str, str]:
        with self._db() as db:
            row = db.execute("SELECT fields FROM mailbox WHERE mailbox_id=?", (mailbox_id,))
            found = row.fetchone()
        return dict(json.loads(found[0])) if found else {}

    def register(self, mailboxes: Sequence[MailboxDelivery]) -> None:
        for box in mailboxes:
            self._update(box.mailbox_id, {"name": box.name, "address": box.address})

    def record_run(self, run: RunOutcome) -> None:
        self._update(run.mailbox_id, _run_fields(run))

    def record_error(self, mailbox_id: str, error: str, *, gave_up: bool) -> None:
        failures = int(self._fields(mailbox_id).get("failures") or 0) + 1
        fields = {"last_error": error, "gave_up": "1" if gave_up else "0"}
        self._update(mailbox_id, {**fields, "failures": str(failures)})

    def set_next_run(self, mailbox_id: str, when: datetime) -> None:
        self._update(mailbox_id, {"next_run": _iso(when)})

    def next_run(self, mailbox_id: str) -> datetime | None:
        return _when(self._fields(mailbox_id).get("next_run"))

    def mark_pending(self, mailbox_id: str, token: str, ttl_s: float) -> bool:
        now = datetime.now(UTC).timestamp()
        with self._mutex, self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM pending WHERE mailbox_id=? AND until<=?", (mailbox_id, now))
            cur = db.execute(
                "INSERT OR IGNORE INTO pending VALUES (?, ?, ?)", (mailbox_id, token, now + ttl_s)
            )
            db.execute("COMMIT")
            return cur.rowcount == 1

    def clear_pending(self, mailbox_id: str, token: str) -> bool:
        with self._mutex, self._db() as db:
            cur = db.execute(
                "DELETE FROM pending WHERE mailbox_id=? AND token=?", (mailbox_id, token)
            )
            return cur.rowcount == 1

    def touch_pending(self, mailbox_id: str, token: str, ttl_s: float) -> None:
        until = datetime.now(UTC).timestamp() + ttl_s
        with self._mutex, self._db() as db:
            db.execute(
                "UPDATE pending SET until=? WHERE mailbox_id=? AND token=?",
                (until, mailbox_id, token),
            )

    def forget_pending(self) -> None:
        with self._mutex, self._db() as db:
            db.execute("DELETE FROM pending")

    def is_pending(self, mailbox_id: str) -> bool:
        now = datetime.now(UTC).timestamp()
        with self._db() as db:
            row = db.execute(
                "SELECT 1 FROM pending WHERE mailbox_id=? AND until>?", (mailbox_id, now)
            ).fetchone()
        return row is not None

    def snapshot(self) -> list[MailboxStatus]:
        with self._db() as db:
            rows = db.execute("SELECT mailbox_id, fields FROM mailbox ORDER BY mailbox_id")
            found = rows.fetchall()
        return [_status(i, json.loads(f), self.is_pending(i)) for i, f in found]

    def set_meta(self, key: str, value: str) -> None:
        with self._mutex, self._db() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None
