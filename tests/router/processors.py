"""Processing functions of the tests' own, injected into the router like the real one.

``--processor tests.router.processors:from_config`` with a JSON ``--config``:
``{"redis": url, "mailboxes": [...], "sleep": s, "first_sleep": s, "fail": {id: n}}``. Each
pass records into that Redis, so the tests see what worker processes did:

- ``t:active:<id>`` / ``t:overlaps``: a pass that began while another pass over the same
  mailbox was running adds the mailbox to the overlaps set (the per-mailbox lock's check);
- ``t:running`` / ``t:max_running``: passes running at once, over all processes, and the most
  ever (the scale-out check: a count, not a time);
- ``t:effects``: the idempotent effect, one entry per (mailbox, message), written with HSETNX
  as promotion by Message-ID is; ``t:attempts:<id>``: passes begun; ``t:started``: their order.

The pass writes its effect first and then sleeps (``first_sleep`` on a mailbox's first
attempt, ``sleep`` after): a worker killed while it sleeps has done the work but not
acknowledged the message.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.crm.throttle import CrmThrottled
from core.domain.mailbox_delivery import IncomingDelivery, MailboxDelivery, OutgoingDelivery

_ENTER = """
local n = redis.call('incr', KEYS[1])
if n > tonumber(redis.call('get', KEYS[2]) or '0') then redis.call('set', KEYS[2], n) end
if redis.call('incr', KEYS[3]) > 1 then redis.call('sadd', KEYS[4], ARGV[1]) end
return n
"""


@dataclass(frozen=True)
class Run:
    mailbox_id: str
    started: datetime
    finished: datetime
    promoted: int = 0
    queued: int = 0
    cases: int = 0
    sent: int = 0
    errors: tuple[str, ...] = ()


def mailbox(mailbox_id: str) -> MailboxDelivery:
    return MailboxDelivery(
        mailbox_id=mailbox_id,
        name=f"Mailbox {mailbox_id}",
        address=f"{mailbox_id}@test.example",
        owner_id=f"user-{mailbox_id}",
        owner_type="systemuser",
        incoming=IncomingDelivery.SERVER_SIDE,
        outgoing=OutgoingDelivery.SERVER_SIDE,
    )


class RedisRecordingProcessor:
    def __init__(self, settings: dict[str, Any]) -> None:
        import redis

        self.client = redis.Redis.from_url(settings["redis"])
        self.ids: list[str] = list(settings.get("mailboxes", []))
        self.sleep = float(settings.get("sleep", 0.0))
        self.first_sleep = float(settings.get("first_sleep", self.sleep))
        self.fail: dict[str, int] = dict(settings.get("fail", {}))
        self._enter = self.client.register_script(_ENTER)

    def list_mailboxes(self) -> Sequence[MailboxDelivery]:
        self.client.incr("t:listed")
        self.client.sadd("t:listers", os.getpid())
        return [mailbox(i) for i in self.ids]

    def run_mailbox(self, mailbox_id: str) -> Run:
        started = datetime.now(UTC)
        keys = ["t:running", "t:max_running", f"t:active:{mailbox_id}", "t:overlaps"]
        self._enter(keys=keys, args=[mailbox_id])
        try:
            attempt = int(self.client.incr(f"t:attempts:{mailbox_id}"))
            self.client.rpush("t:started", f"{mailbox_id}:{os.getpid()}")
            if attempt <= self.fail.get(mailbox_id, 0):
                raise RuntimeError(f"mail server refused {mailbox_id} (attempt {attempt})")
            new = self.client.hsetnx("t:effects", f"{mailbox_id}:msg-1", os.getpid())
            time.sleep(self.first_sleep if attempt == 1 else self.sleep)
        finally:
            self.client.decr(f"t:active:{mailbox_id}")
            self.client.decr("t:running")
        return Run(mailbox_id, started, datetime.now(UTC), promoted=int(new), sent=1)


def from_config(config: Path | None) -> RedisRecordingProcessor:
    assert config is not None
    return RedisRecordingProcessor(json.loads(config.read_text()))


@dataclass
class LocalRecordingProcessor:
    """The same records in this process (embedded tests, no Redis anywhere)."""

    ids: list[str]
    sleep: float = 0.0
    fail: dict[str, int] = field(default_factory=dict)
    throttle: dict[str, int] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    effects: set[str] = field(default_factory=set)
    overlaps: set[str] = field(default_factory=set)
    threads: set[str] = field(default_factory=set)
    running: int = 0
    max_running: int = 0
    mutex: threading.Lock = field(default_factory=threading.Lock)

    def list_mailboxes(self) -> Sequence[MailboxDelivery]:
        return [mailbox(i) for i in self.ids]

    def run_mailbox(self, mailbox_id: str) -> Run:
        started = datetime.now(UTC)
        with self.mutex:
            self.active[mailbox_id] = self.active.get(mailbox_id, 0) + 1
            if self.active[mailbox_id] > 1:
                self.overlaps.add(mailbox_id)
            self.attempts[mailbox_id] = attempt = self.attempts.get(mailbox_id, 0) + 1
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            if attempt <= self.fail.get(mailbox_id, 0):
                raise RuntimeError(f"mail server refused {mailbox_id} (attempt {attempt})")
            if attempt <= self.throttle.get(mailbox_id, 0):
                raise CrmThrottled("429 Too Many Requests", retry_after=0.2)
            with self.mutex:
                new = f"{mailbox_id}:msg-1" not in self.effects
                self.effects.add(f"{mailbox_id}:msg-1")
            time.sleep(self.sleep)
        finally:
            with self.mutex:
                self.active[mailbox_id] -= 1
                self.running -= 1
        return Run(mailbox_id, started, datetime.now(UTC), promoted=int(new), sent=1)


#: The processor ``local_from_config`` made last, for the embedded tests to inspect.
LAST_LOCAL: list[LocalRecordingProcessor] = []


def local_from_config(config: Path | None) -> LocalRecordingProcessor:
    assert config is not None
    settings = json.loads(config.read_text())
    processor = LocalRecordingProcessor(
        list(settings["mailboxes"]),
        float(settings.get("sleep", 0.0)),
        settings.get("fail", {}),
        settings.get("throttle", {}),
    )
    LAST_LOCAL.append(processor)
    return processor
