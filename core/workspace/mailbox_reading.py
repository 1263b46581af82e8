"""Reading mail: a message for the reading pane, and its raw MIME (from the store's cache, or
fetched from the mailbox and cached)."""

from __future__ import annotations

from core.domain.model import MessageHeader
from core.mail import parse_message
from core.outbox.kinds import Promote
from core.outbox.operations import MailSession
from core.store import Store
from core.workspace.connection import Remotes
from core.workspace.reading import MessageView, build_view
from core.workspace.stores import StorePool


class MailboxReading:
    def __init__(self, stores: StorePool, remotes: Remotes) -> None:
        self._stores = stores
        self._remotes = remotes

    def load_message(self, row_id: int) -> MessageView:
        """Headers, safe body and tracking facts for the reading pane."""
        store = self._stores.store()
        row = store.message(row_id)
        if row is None:
            raise LookupError(f"message {row_id} is no longer in the store")
        raw = self.raw(store, row_id, row.header)
        return build_view(
            row, parse_message(raw, row.header.ref), record_url=self._remotes.record_url
        )

    def raw(
        self, store: Store, row_id: int, header: MessageHeader, session: MailSession | None = None
    ) -> bytes:
        raw = store.bodies.get(row_id)
        if raw is None:
            if session is not None:
                raw = session.fetch(header.ref)
            else:
                with self._remotes.open_mailbox() as backend:
                    raw = backend.fetch(header.ref)
            store.bodies.put(row_id, raw)
        return raw

    def body_for(self, promote: Promote, session: MailSession) -> bytes:
        store = self._stores.store()
        row = store.message_by_ref(promote.header.ref)
        if row is None:
            copies = store.messages_by_message_id(promote.message_id)
            if not copies:
                from core.outbox.queue import PermanentFailure

                raise PermanentFailure("the message is no longer in the mailbox")
            row = copies[0]
        return self.raw(store, row.id, row.header, session)
