"""Track to more than one record: link a tracked mail to further CRM records (Dataverse
connections) beside its one regarding, unlink it, and list its links for the banner.

Linking and unlinking are outbox operations (``AddConnection`` / ``RemoveConnection``): they
show at once in the local list (``adding`` / ``removing``) and reach the CRM on replay,
exactly once. The list is read from the CRM on a worker (:meth:`ConnectionsService.refresh`)
and kept in the store, so the banner shows it offline (:meth:`ConnectionsService.cached`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.crm import connections as crm_links
from core.domain.changes import Changes
from core.domain.entities import CONNECTION_TARGETS
from core.domain.model import UNTRACKABLE_STATES, RecordRef
from core.outbox.kinds import AddConnection, RemoveConnection
from core.store.connections import ADDING, REMOVING, ConnectionRows, MailConnection

if TYPE_CHECKING:
    from core.workspace.facade import Workspace


class NotLinkable(ValueError):
    """The mail is not tracked (nothing in the CRM to link), or the record cannot be linked."""


def linkable(row_state: object) -> bool:
    """Whether a mail in this tracked state can be linked to more records."""
    return row_state in UNTRACKABLE_STATES


def banner_text(links: list[MailConnection]) -> str:
    """``Also linked to: Contoso Ltd (account), Ben Ng (contact)``; empty without links.
    Links being removed are left out; links being added say so."""
    shown = [
        f"{c.record.name or c.record.id} ({c.record.entity})"
        + (" (waiting for the CRM)" if c.state == ADDING else "")
        for c in links
        if c.state != REMOVING
    ]
    return f"Also linked to: {', '.join(shown)}" if shown else ""


class ConnectionsService:
    """The links of one workspace's mail. Every method blocks (store, network): run them on
    a worker."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def _message(self, row_id: int) -> tuple[str, str | None]:
        """The Message-ID and activity of a linkable mail; :class:`NotLinkable` if not."""
        row = self._ws.store().message(row_id)
        if row is None or not linkable(row.track_state):
            raise NotLinkable("Only a tracked mail can be linked to more records.")
        return row.header.message_id, row.activity_id

    def enqueue_link(self, row_id: int, record: RecordRef) -> Changes:
        """Queue a link from the mail to ``record`` and show it (no network)."""
        if record.entity not in CONNECTION_TARGETS:
            raise NotLinkable(f"A mail cannot be linked to a {record.entity}.")
        message_id, _activity = self._message(row_id)
        store = self._ws.store()
        with store.transaction():
            self._ws.outbox().enqueue(AddConnection(message_id, record))
            ConnectionRows(store).mark(message_id, record, ADDING)
        return Changes(messages=True, row_ids=frozenset({row_id}), queue=True)

    def enqueue_unlink(self, row_id: int, link: MailConnection) -> Changes:
        """Queue removing one link and show it going (no network)."""
        row = self._ws.store().message(row_id)
        if row is None:
            raise NotLinkable("The mail is no longer here.")
        message_id = row.header.message_id
        store = self._ws.store()
        with store.transaction():
            self._ws.outbox().enqueue(RemoveConnection(message_id, link.record, link.connection_id))
            ConnectionRows(store).mark(message_id, link.record, REMOVING)
        return Changes(messages=True, row_ids=frozenset({row_id}), queue=True)

    def link(self, row_id: int, record: RecordRef) -> Changes:
        """Queue the link, then replay the queue (which does nothing while offline)."""
        return self.enqueue_link(row_id, record).merge(self._ws.replay_outbox())

    def unlink(self, row_id: int, link: MailConnection) -> Changes:
        return self.enqueue_unlink(row_id, link).merge(self._ws.replay_outbox())

    def cached(self, row_id: int) -> list[MailConnection]:
        """The links as last known here (no network)."""
        row = self._ws.store().message(row_id)
        if row is None:
            return []
        return ConnectionRows(self._ws.store()).of(row.header.message_id)

    def refresh(self, row_id: int) -> list[MailConnection]:
        """The links as the CRM has them now, kept in the store (links the queue is still
        adding or removing stay as they are). Offline, or for a mail the CRM does not have,
        the cached list. Raises ``CrmError`` when the CRM fails."""
        row = self._ws.store().message(row_id)
        if row is None or not linkable(row.track_state) or not self._ws.online:
            return self.cached(row_id)
        message_id, activity_id = row.header.message_id, row.activity_id
        crm = self._ws.crm
        if not activity_id:
            info = crm.find_emails_by_message_id([message_id]).get(message_id)
            if info is None:
                return self.cached(row_id)
            activity_id = info.activity_id
        found = [
            MailConnection(link.record, link.connection_id)
            for link in crm_links.links_of(crm, activity_id)
        ]
        ConnectionRows(self._ws.store()).replace_linked(message_id, found)
        return self.cached(row_id)


__all__ = ["ConnectionsService", "NotLinkable", "banner_text", "linkable"]
