"""The router's own mailbox processing, watched: ``--processor
tests.router.scale_processor:from_config`` with the router's TOML config plus a ``[scale]``
table (``redis``: where to record, ``domain``: the test's mailboxes are those at it).

Each pass records in that Redis who is processing the mailbox (``t:active:<id>`` = pid and
thread, swapped in atomically): a pass that finds another *live* process or thread there adds
the mailbox to ``t:overlaps`` (a worker SIGKILLed mid-pass leaves its entry behind, but its
process is gone, so that is no overlap). ``t:attempts:<id>`` counts passes begun,
``t:done`` the passes that returned.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.domain.mailbox_delivery import MailboxDelivery
from router.cli import context_processor
from router.state import RunOutcome

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _alive(holder: str) -> bool:
    pid = int(holder.split(":", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class WatchedProcessor:
    def __init__(self, config: Path) -> None:
        import redis

        scale = tomllib.loads(config.read_text(encoding="utf-8"))["scale"]
        self.client: Any = redis.Redis.from_url(str(scale["redis"]))
        self.domain = "@" + str(scale["domain"]).lower()
        self.inner = context_processor(config)
        self.context = getattr(self.inner, "context", None)  # its state_dir, for the CLI
        self._release = self.client.register_script(_RELEASE)

    def list_mailboxes(self) -> Sequence[MailboxDelivery]:
        return [b for b in self.inner.list_mailboxes() if b.address.endswith(self.domain)]

    def run_mailbox(self, mailbox_id: str) -> RunOutcome:
        me = f"{os.getpid()}:{threading.get_ident()}"
        key = f"t:active:{mailbox_id}"
        before = self.client.getset(key, me)
        if before is not None and before.decode() != me and _alive(before.decode()):
            self.client.sadd("t:overlaps", mailbox_id)
        self.client.incr(f"t:attempts:{mailbox_id}")
        try:
            outcome = self.inner.run_mailbox(mailbox_id)
        finally:
            self._release(keys=[key], args=[me])
        self.client.incr("t:done")
        return outcome


def from_config(config: Path | None) -> WatchedProcessor:
    assert config is not None
    return WatchedProcessor(config)
