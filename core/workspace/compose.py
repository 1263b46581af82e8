"""A new mail written in Trackbox (or a CRM e-mail sent through the mailbox), turned into MIME.

The MIME is built once, when the mail is queued, so a replay after a crash sends the very same
bytes with the same Message-ID (the key the CRM tracks it by).
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from core.domain.conversation_index import ConversationIndex, parse_thread_index
from core.domain.correlation import Correlator
from core.domain.crm_settings import OrgSettings, UserOptions
from core.domain.model import Address, Decision, MailRef, MessageHeader, Party, RecordRef
from core.domain.tracking import TrackContext, decide
from core.outbox.kinds import Promote, SendPending
from core.outbox.promotion import queue_promotion
from core.outbox.queue import Outbox
from core.store import SqliteCorrelationIndex, Store
from core.sync.report import Changes

if TYPE_CHECKING:
    from core.sync.address_books import AddressBook


@dataclass(frozen=True, slots=True)
class DraftAttachment:
    filename: str
    content: bytes
    mimetype: str = ""


@dataclass(frozen=True, slots=True)
class Draft:
    """What the compose window holds. ``in_reply_to`` is the store row id of the message
    replied to (threading headers and the tracked-thread rule come from it)."""

    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    subject: str = ""
    body_text: str = ""
    body_html: str | None = None
    track: bool = False
    regarding: RecordRef | None = None
    in_reply_to: int | None = None
    attachments: tuple[DraftAttachment, ...] = ()


def build_mime(
    draft: Draft,
    sender: Address,
    *,
    replied: MessageHeader | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """RFC 5322 bytes for ``draft`` sent by ``sender``."""
    msg = EmailMessage()
    msg["From"] = sender.display()
    if draft.to:
        msg["To"] = ", ".join(a.display() for a in draft.to)
    if draft.cc:
        msg["Cc"] = ", ".join(a.display() for a in draft.cc)
    if draft.bcc:
        msg["Bcc"] = ", ".join(a.display() for a in draft.bcc)
    msg["Subject"] = draft.subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    domain = sender.email.rpartition("@")[2] or "trackbox.invalid"
    msg["Message-ID"] = message_id or make_msgid(domain=domain)
    if replied is not None and replied.message_id:
        msg["In-Reply-To"] = replied.message_id
        msg["References"] = " ".join((*replied.references, replied.message_id))
    # Outlook threads by Thread-Index: a reply carries a child of its parent's index, a new
    # mail a new root, so that replies correlate by conversation even without a token.
    msg["Thread-Index"] = thread_index_for(replied)
    msg.set_content(draft.body_text or "")
    if draft.body_html:
        msg.add_alternative(draft.body_html, subtype="html")
    for att in draft.attachments:
        kind = att.mimetype or mimetypes.guess_type(att.filename)[0] or "application/octet-stream"
        main, _, sub = kind.partition("/")
        msg.add_attachment(
            att.content, maintype=main, subtype=sub or "octet-stream", filename=att.filename
        )
    return msg.as_bytes()


def thread_index_for(replied: MessageHeader | None) -> str:
    parent = parse_thread_index(replied.thread_index) if replied is not None else None
    return (parent.child() if parent is not None else ConversationIndex.new()).header


def draft_header(
    draft: Draft, sender: Address, message_id: str, replied: MessageHeader | None = None
) -> MessageHeader:
    """The header the tracking rules see for an outgoing draft."""
    return MessageHeader(
        ref=MailRef("", ""),
        message_id=message_id,
        subject=draft.subject,
        sender=sender,
        to=draft.to,
        cc=draft.cc,
        date=datetime.now(UTC),
        size=len(draft.body_text) + sum(len(a.content) for a in draft.attachments),
        has_attachments=bool(draft.attachments),
        in_reply_to=replied.message_id if replied else None,
        references=(*replied.references, replied.message_id) if replied else (),
        thread_index=replied.thread_index if replied else None,
    )


class ComposeVerbs:
    """The workspace's compose and address verbs (``core.workspace.facade.Workspace`` mixes them
    in; kept here so the facade stays readable)."""

    owner: Address

    if TYPE_CHECKING:

        def store(self) -> Store: ...
        def outbox(self) -> Outbox: ...
        def org_settings(self) -> OrgSettings: ...
        def user_options(self) -> UserOptions: ...
        def address_book(self, store: Store | None = None) -> AddressBook: ...
        def replay_outbox(self, cancel: threading.Event | None = None) -> Changes: ...

    def _replied(self, draft: Draft) -> MessageHeader | None:
        if draft.in_reply_to is None:
            return None
        row = self.store().message(draft.in_reply_to)
        return row.header if row else None

    def compose_decision(
        self, draft: Draft, message_id: str = "<draft@trackbox.invalid>"
    ) -> Decision:
        """Would this outgoing mail be tracked, and why (``core.domain.tracking.decide``)."""
        store = self.store()
        org = self.org_settings()
        header = draft_header(draft, self.owner, message_id, self._replied(draft))
        return decide(
            header,
            self.user_options(),
            org,
            self.address_book(store),
            Correlator(org, SqliteCorrelationIndex(store)),
            TrackContext(manual=draft.track, regarding=draft.regarding, bcc=draft.bcc),
        )

    def send(self, draft: Draft) -> Changes:
        """Send through the mailbox via the outbox (offline, it waits there), tracked when
        the draft says so or the rules do; the promotion runs after the send."""
        domain = self.owner.email.rpartition("@")[2] or "trackbox.invalid"
        mid = make_msgid(domain=domain)
        replied = self._replied(draft)
        mime = build_mime(draft, self.owner, replied=replied, message_id=mid)
        decision = self.compose_decision(draft, mid)
        store, outbox = self.store(), self.outbox()
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
                    attachment_limit=self.org_settings().max_upload_bytes,
                )
                queue_promotion(store, outbox, promote, decision=decision)
            else:
                store.record_decision(mid, decision, source="user")
        return self.replay_outbox().merge(Changes(queue=True))

    def resolve(self, addresses: Iterable[Address]) -> list[Party]:
        book = self.address_book()
        return [Party(a, "to", tuple(book.lookup(a.key))) for a in addresses]

    def unresolved_for(self, row_id: int) -> tuple[Address, ...]:
        row = self.store().message(row_id)
        if row is None:
            return ()
        h = row.header
        book = self.address_book()
        candidates = [a for a in (h.sender, *h.to, *h.cc) if a is not None]
        return tuple(
            a for a in candidates if a.key != self.owner.email.lower() and not book.lookup(a.key)
        )


__all__ = ["ComposeVerbs", "Draft", "DraftAttachment", "build_mime", "draft_header"]
