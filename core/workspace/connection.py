"""What the workspace talks to (the CRM, the mailbox) and whether it may: working offline
(chosen) or unreachable (found) is a state the verbs consult, not an error."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from core.crm import CrmClient
from core.mail import MailBackend
from core.outbox.queue import Outbox

log = logging.getLogger(__name__)


@dataclass
class Remotes:
    """The CRM client and the mailbox opener; either may be replaced while the workspace
    lives (a new sign-in, a test's failing server), so the services share this one holder."""

    crm: CrmClient
    open_mailbox: Callable[[], MailBackend]

    def record_url(self, entity: str, record_id: str) -> str:
        """The CRM's own web page for a record (the Dynamics record-URL shape)."""
        return (
            f"{self.crm.base_url.rstrip('/')}/main.aspx?etn={entity}&id={record_id}"
            "&pagetype=entityrecord"
        )


class ConnectionState:
    """Online = not working offline and the CRM answered last time."""

    def __init__(self, outbox: Callable[[], Outbox]) -> None:
        self._outbox = outbox
        self.work_offline = False
        self._reachable = True

    @property
    def online(self) -> bool:
        return not self.work_offline and self._reachable

    def set_work_offline(self, offline: bool) -> None:
        """Work offline or go back online (the caller then replays the queue)."""
        self.work_offline = offline
        log.info("work offline=%s", offline)
        if not offline:
            self.note_reachable(True)
            self._outbox().reset_backoff()

    def note_reachable(self, reachable: bool) -> None:
        """The CRM answered (or not). Back from unreachable, queued work is due at once."""
        if reachable != self._reachable:
            log.info("crm reachable=%s", reachable)
            if reachable:
                self._outbox().reset_backoff()
        self._reachable = reachable
