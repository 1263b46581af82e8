"""A message being written (``Draft``) and the RFC 5322 bytes and header it becomes: pure
building, shared by the compose verbs and Pending Send (mail written in the CRM).

A draft saved to the mailbox carries ``X-Trackbox-Draft-Id`` (which local draft it is, so that
a re-save replaces the right server copy) and ``X-Trackbox-Track`` (the Track toggle the user
set); :func:`draft_from_mime` reads a draft back from such bytes (or from any other client's).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid

from core.domain.conversation_index import ConversationIndex, parse_thread_index
from core.domain.html_sanitize import sanitize_html
from core.domain.model import Address, MailRef, MessageHeader, RecordRef
from core.mail.line_limits import shorten_lines
from core.mail.parse import parse_message


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
    #: The user turned "Track in CRM" off for this message: no automatic rule tracks it.
    track_refused: bool = False


DRAFT_ID_HEADER = "X-Trackbox-Draft-Id"
TRACK_HEADER = "X-Trackbox-Track"
RFC822 = "message/rfc822"


def sanitized(draft: Draft) -> Draft:
    """``draft`` with its HTML made safe (no scripts, handlers or remote resources) before it
    becomes MIME: what the compose editor produced is never trusted as is."""
    if not draft.body_html:
        return draft
    return replace(draft, body_html=sanitize_html(draft.body_html))


def build_mime(
    draft: Draft,
    sender: Address,
    *,
    replied: MessageHeader | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> bytes:
    """RFC 5322 bytes for ``draft`` sent by ``sender`` (``extra_headers``: a saved draft's).
    No line is longer than SMTP allows (``core.mail.line_limits``): ``email``'s policy
    encodes long text as quoted-printable or base64, a forwarded message is re-encoded."""
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
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(draft.body_text or "")
    if draft.body_html:
        msg.add_alternative(draft.body_html, subtype="html")
    for att in draft.attachments:
        if att.mimetype == RFC822:  # forwarded as attachment: a message part, not base64
            inner = BytesParser(policy=policy.default).parsebytes(att.content)
            shorten_lines(inner)  # a message/rfc822 part is sent as is: no line over 998
            msg.add_attachment(inner, filename=att.filename)
            continue
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


def draft_from_mime(raw: bytes) -> tuple[Draft, str | None]:
    """A draft read back from saved MIME (ours or another client's) and its
    ``X-Trackbox-Draft-Id`` if it has one. Forgiving: what cannot be read stays empty."""
    parsed = parse_message(raw)
    msg = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)

    def addresses(name: str) -> tuple[Address, ...]:
        pairs = getaddresses([str(v) for v in msg.get_all(name, [])])
        return tuple(Address(a.strip(), n.strip()) for n, a in pairs if "@" in a)

    track = str(msg.get(TRACK_HEADER, "") or "").strip().lower()
    draft = Draft(
        to=addresses("To"),
        cc=addresses("Cc"),
        bcc=addresses("Bcc"),
        subject=parsed.header.subject or "",
        body_text=parsed.text,
        body_html=sanitize_html(parsed.html) if parsed.html else None,
        track=track == "yes",
        track_refused=track == "no",
        attachments=tuple(
            DraftAttachment(a.filename, a.payload(), a.content_type)
            for a in parsed.attachments
            if not a.inline
        ),
    )
    draft_id = str(msg.get(DRAFT_ID_HEADER, "") or "").strip() or None
    return draft, draft_id


__all__ = [
    "DRAFT_ID_HEADER",
    "RFC822",
    "TRACK_HEADER",
    "Draft",
    "DraftAttachment",
    "build_mime",
    "draft_from_mime",
    "draft_header",
    "sanitized",
    "thread_index_for",
]
