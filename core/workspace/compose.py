"""A new mail written in Trackbox (or a CRM e-mail sent through the mailbox), turned into MIME.

The MIME is built once, when the mail is queued, so a replay after a crash sends the very same
bytes with the same Message-ID (the key the CRM tracks it by).
"""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import make_msgid
from typing import TYPE_CHECKING

from core.domain.changes import Changes
from core.domain.correlation import Correlator
from core.domain.model import Address, Decision, MessageHeader, Party, Reason
from core.domain.tracking import TrackContext, decide
from core.mail.drafts import Draft, DraftAttachment, build_mime, draft_header, sanitized
from core.outbox.kinds import Promote, SendPending
from core.outbox.promotion import queue_promotion
from core.store import SqliteCorrelationIndex

if TYPE_CHECKING:
    from core.workspace.replay import Replayer
    from core.workspace.settings import SettingsService
    from core.workspace.stores import StorePool


#: :attr:`Decision.reason` code when the user turned Track off for the message.
REFUSED = "track_refused"
REFUSED_TEXT = "Not tracked: you turned Track in CRM off for this message"


class ComposeVerbs:
    """The workspace's compose and address verbs, over the store, the options and the
    outbox's replay."""

    def __init__(
        self, stores: StorePool, settings: SettingsService, replayer: Replayer, owner: Address
    ) -> None:
        self._stores = stores
        self._settings = settings
        self._replayer = replayer
        self.owner = owner

    def _replied(self, draft: Draft) -> MessageHeader | None:
        if draft.in_reply_to is None:
            return None
        row = self._stores.store().message(draft.in_reply_to)
        return row.header if row else None

    def compose_decision(
        self, draft: Draft, message_id: str = "<draft@trackbox.invalid>"
    ) -> Decision:
        """Would this outgoing mail be tracked, and why (``core.domain.tracking.decide``).
        A Track toggle the user turned off wins over every automatic rule (a reply in a
        tracked thread included): the window never says one thing and sends another."""
        if draft.track_refused and not draft.track:
            return Decision(False, Reason(REFUSED, REFUSED_TEXT))
        store = self._stores.store()
        org = self._settings.org_settings()
        header = draft_header(draft, self.owner, message_id, self._replied(draft))
        return decide(
            header,
            self._settings.user_options(),
            org,
            self._settings.address_book(store),
            Correlator(org, SqliteCorrelationIndex(store)),
            TrackContext(manual=draft.track, regarding=draft.regarding, bcc=draft.bcc),
        )

    def send(self, draft: Draft) -> Changes:
        """Send through the mailbox via the outbox (offline, it waits there), tracked when
        the draft says so or the rules do; the promotion runs after the send. The HTML is
        sanitised before it becomes MIME."""
        draft = sanitized(draft)
        domain = self.owner.email.rpartition("@")[2] or "trackbox.invalid"
        mid = make_msgid(domain=domain)
        replied = self._replied(draft)
        mime = build_mime(draft, self.owner, replied=replied, message_id=mid)
        decision = self.compose_decision(draft, mid)
        store, outbox = self._stores.store(), self._stores.outbox()
        with store.transaction():
            outbox.enqueue(SendPending(mid, mime, subject=draft.subject))
            if decision.track:
                promote = Promote(
                    draft_header(draft, self.owner, mid, replied),
                    decision.reason,
                    regarding=decision.regarding or draft.regarding,
                    source="user",
                    mime=mime,  # promoted as sent, after the send (same Message-ID: it waits)
                    attachments=not decision.attachments_dropped,
                    attachment_limit=self._settings.org_settings().max_upload_bytes,
                )
                queue_promotion(store, outbox, promote, decision=decision)
            else:
                store.tracking.record_decision(mid, decision, source="user")
        return self._replayer.replay_outbox().merge(Changes(queue=True))

    def resolve(self, addresses: Iterable[Address]) -> list[Party]:
        book = self._settings.address_book()
        return [Party(a, "to", tuple(book.lookup(a.key))) for a in addresses]


__all__ = ["ComposeVerbs", "Draft", "DraftAttachment", "build_mime", "draft_header"]
