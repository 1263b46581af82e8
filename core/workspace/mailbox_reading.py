"""Reading mail: a message for the reading pane, and its raw MIME (from the store's cache, or
fetched from the mailbox and cached).

What the pane shows is prepared here, on the worker, with bounded cost (``core.mail.display``):
the first ``DISPLAY_PARTS`` parts, the first part of a long body; "Show all" runs
:attr:`MessageView.show_all` on a worker too.
"""

from __future__ import annotations

import dataclasses

from core.domain.html_sanitize import count_blocked_resources
from core.domain.model import MessageHeader
from core.mail import parse_message
from core.mail.display import prepare_body
from core.mail.parse import DISPLAY_PARTS
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
        parsed = parse_message(raw, row.header.ref, max_parts=DISPLAY_PARTS)
        body = prepare_body(parsed.text, parsed.html)
        # The view's HTML is the prepared one: the sender's whole HTML is never sanitised here.
        view = build_view(
            row, dataclasses.replace(parsed, html=None), record_url=self._remotes.record_url
        )
        text, html = parsed.text, parsed.html
        return dataclasses.replace(
            view,
            body_html=body.html,
            blocked_resources=count_blocked_resources(html) if html else 0,
            display=body,
            parts_not_shown=parsed.parts_not_shown,
            show_all=lambda: prepare_body(text, html, full=True),
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
