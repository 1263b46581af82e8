"""A message being written (``Draft``) and the RFC 5322 bytes and header it becomes: pure
building, shared by the compose verbs and Pending Send (mail written in the CRM)."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from core.domain.conversation_index import ConversationIndex, parse_thread_index
from core.domain.model import Address, MailRef, MessageHeader, RecordRef


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


__all__ = ["Draft", "DraftAttachment", "build_mime", "draft_header", "thread_index_for"]
