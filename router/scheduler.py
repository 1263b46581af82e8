"""One scheduler for the whole organisation: enqueue one job per due mailbox.

Every router process may run a scheduler, but only the *leader* enqueues: leadership is a lease
in Redis (:mod:`router.locks`, ``SET NX PX``) that the leader renews on every tick, well within
its TTL. A leader that dies stops renewing; after the TTL another process takes the lease and
carries on from the schedule in the shared state (the next run of each mailbox lives there, not
in the leader's memory). Embedded, the in-process lease makes the one scheduler the leader.

A mailbox is due when its next run has come; it is skipped while its previous job is still
queued or running (the *pending* marker, cleared by that job when it has recorded its run).
The marker carries the message id, made before the message is enqueued so a fast job can never
finish before its marker exists.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.domain.mailbox_delivery import MailboxDelivery
from router.locks import Locks, new_token
from router.state import RouterState

log = logging.getLogger(__name__)

LEADER_LOCK = "scheduler-leader"


def scheduler_identity() -> str:
    """Who leads, as ``status`` shows it: host, process id, and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_token()[:8]}"


class LeaderElection:
    """Hold (or try to take) the leadership lease; call :meth:`is_leader` at least every
    TTL/3."""

    def __init__(self, locks: Locks, ttl_s: float = 15.0, identity: str | None = None) -> None:
        self.locks = locks
        self.ttl_s = ttl_s
        self.identity = identity or scheduler_identity()
        self._held = False

    def is_leader(self) -> bool:
        if self._held and self.locks.renew(LEADER_LOCK, self.identity, self.ttl_s):
            return True
        if self._held:
            log.warning("scheduler %s lost the leadership", self.identity)
        token = self.locks.acquire(LEADER_LOCK, self.ttl_s, token=self.identity)
        if token is not None and not self._held:
            log.info("scheduler %s is the leader", self.identity)
        self._held = token is not None
        return self._held

    def resign(self) -> None:
        if self._held:
            self.locks.release(LEADER_LOCK, self.identity)
            self._held = False


#: Makes a message for a mailbox and returns (message id, a function that enqueues it).
Planner = Callable[[str], tuple[str, Callable[[], Any]]]


class Scheduler:
    """Plans and enqueues. ``list_mailboxes`` is asked again every ``refresh_s`` seconds;
    ``interval_for`` gives each mailbox its interval (default: ``interval_s`` for all)."""

    def __init__(
        self,
        *,
        list_mailboxes: Callable[[], Sequence[MailboxDelivery]],
        plan: Planner,
        state: RouterState,
        election: LeaderElection,
        interval_s: float = 300.0,
        refresh_s: float = 300.0,
        pending_ttl_s: float = 900.0,
        interval_for: Callable[[MailboxDelivery], float] | None = None,
    ) -> None:
        self.list_mailboxes = list_mailboxes
        self.plan = plan
        self.state = state
        self.election = election
        self.interval_for = interval_for or (lambda _box: interval_s)
        self.refresh_s = refresh_s
        self.pending_ttl_s = pending_ttl_s
        self._mailboxes: list[MailboxDelivery] = []
        self._listed_at: float | None = None
        self.enqueued = 0

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._listed_at is None or now - self._listed_at >= self.refresh_s:
            self._mailboxes = list(self.list_mailboxes())
            self._listed_at = now
            self.state.register(self._mailboxes)

    def tick(self, *, force: bool = False) -> int:
        """One round: as the leader, enqueue every due mailbox (all of them with ``force``).
        Answers how many jobs were enqueued."""
        if not self.election.is_leader():
            return 0
        self.state.set_meta("leader", self.election.identity)
        self._refresh()
        now = datetime.now(UTC)
        count = 0
        for box in self._mailboxes:
            due = self.state.next_run(box.mailbox_id)
            if not force and due is not None and due > now:
                continue
            if self._enqueue(box.mailbox_id):
                count += 1
                interval = timedelta(seconds=self.interval_for(box))
                self.state.set_next_run(box.mailbox_id, now + interval)
        self.enqueued += count
        return count

    def _enqueue(self, mailbox_id: str) -> bool:
        message_id, send = self.plan(mailbox_id)
        if not self.state.mark_pending(mailbox_id, message_id, self.pending_ttl_s):
            return False  # the previous job is still queued or running
        try:
            send()
        except Exception:
            self.state.clear_pending(mailbox_id, message_id)
            raise
        return True

    def mailbox_ids(self) -> list[str]:
        return [box.mailbox_id for box in self._mailboxes]

    def run(
        self,
        stop: threading.Event,
        tick_s: float = 1.0,
        after_tick: Callable[[], None] | None = None,
    ) -> None:
        """Tick until ``stop`` is set (tick_s must stay under the lease's TTL/3)."""
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    if after_tick is not None:
                        after_tick()
                except Exception:  # Redis or the CRM away for a moment: the next tick retries
                    log.exception("scheduler tick failed")
                stop.wait(tick_s)
        finally:
            self.election.resign()
