"""What the workspace talks to (the CRM, the mailbox) and whether it may: working offline
(chosen) or unreachable (found) is a state the verbs consult, not an error."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from core.crm import CrmClient
from core.domain.changes import Changes
from core.mail import MailBackend
from core.outbox.queue import OpState, Outbox

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


@dataclass(frozen=True, slots=True)
class ConnectionSwitch:
    """What working offline, or going back online, did — for the GUI and the CLI to show.

    ``online``: whether the workspace is online now (back online, the CRM may still not
    answer the replay). ``due``: the queued operations made due at once by going online (0
    when going offline). ``replayed``: what the replay that going online runs changed
    (nothing when going offline)."""

    work_offline: bool
    online: bool
    due: int = 0
    replayed: Changes = field(default_factory=Changes)


class ConnectionState:
    """Online = not working offline and the CRM answered last time."""

    def __init__(self, outbox: Callable[[], Outbox]) -> None:
        self._outbox = outbox
        self.work_offline = False
        self._reachable = True

    @property
    def online(self) -> bool:
        return not self.work_offline and self._reachable

    def set_work_offline(self, offline: bool) -> ConnectionSwitch:
        """Work offline or go back online (the caller then replays the queue): the new state
        and, going online, how many queued operations are due now."""
        self.work_offline = offline
        log.info("work offline=%s", offline)
        if offline:
            return ConnectionSwitch(work_offline=True, online=False)
        self.note_reachable(True)
        outbox = self._outbox()
        outbox.reset_backoff()
        due = outbox.counts()[OpState.QUEUED.value]
        return ConnectionSwitch(work_offline=False, online=self.online, due=due)

    def note_reachable(self, reachable: bool) -> None:
        """The CRM answered (or not). Back from unreachable, queued work is due at once."""
        if reachable != self._reachable:
            log.info("crm reachable=%s", reachable)
            if reachable:
                self._outbox().reset_backoff()
        self._reachable = reachable
