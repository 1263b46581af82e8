"""MIME parsing for the message list and the reading pane (stdlib ``email``, modern policy).

Rule (DESIGN.md, "Bad input"): any byte string is a message. A malformed message is shown with
whatever could be read and a list of ``parse_errors``; nothing here raises on bad input. RFC 2047
encoded words, RFC 2231 parameters and unknown charsets are decoded by the modern policy, with
our own fall-backs where it gives up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser

from core.domain.model import MailRef, MessageHeader
from core.mail.headers import (
    MSGID_RE,
    _clean,
    _msgid,
    _repair,
    parse_headers,
    split_header_block,
)

__all__ = [
    "Attachment",
    "ParsedMessage",
    "html_to_text",
    "parse_headers",
    "parse_message",
    "split_header_block",
    "MSGID_RE",
]


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment (or inline part with a filename / Content-ID)."""

    filename: str
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    _payload: Callable[[], bytes] = field(repr=False, compare=False)

    def payload(self) -> bytes:
        """The decoded content (base64/quoted-printable undone)."""
        return self._payload()


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A whole message for the reading pane and for promotion to the CRM. ``html`` is the
    sender's HTML as sent: sanitising it is the viewer's job (it is never trusted)."""

    header: MessageHeader
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    parse_errors: tuple[str, ...] = ()


def parse_message(raw: bytes, ref: MailRef | None = None) -> ParsedMessage:
    """Parse a whole message: header, best text body, HTML body, attachments. Never raises."""
    ref = ref or MailRef("", "")
    header = parse_headers(raw, ref)
    errors = list(header.parse_errors)
    block = split_header_block(raw)
    fixed = _repair(block, [])
    if fixed is not block:  # lines without a colon would end the headers early
        raw = fixed + raw[len(block) :]
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:
        return ParsedMessage(
            header, raw.decode("utf-8", "replace"), None, (), (*errors, f"body unreadable: {exc}")
        )
    text_parts: list[str] = []
    html: str | None = None
    attachments: list[Attachment] = []
    for part in _walk(msg):
        for d in part.defects:
            errors.append(f"part: {type(d).__name__}")
        if part.get_content_maintype() == "multipart":
            continue
        ctype = part.get_content_type()
        try:
            disposition = part.get_content_disposition()
            filename = part.get_filename()
        except Exception as exc:
            errors.append(f"part header: {exc}")
            disposition, filename = None, None
        cid = _msgid(str(part.get("content-id", "") or "")) if part.get("content-id") else None
        is_body = (
            disposition != "attachment" and not filename and ctype in ("text/plain", "text/html")
        )
        if is_body:
            body = _text(part, errors)
            if ctype == "text/html":
                html = body if html is None else html + body
            else:
                text_parts.append(body)
            continue
        attachments.append(_attachment(part, ctype, filename, cid, disposition, errors))
    text = "\n".join(text_parts)
    if not text and html:
        text = html_to_text(html)
    header = _with_attachments(header, any(not a.inline for a in attachments))
    return ParsedMessage(header, text, html, tuple(attachments), tuple(dict.fromkeys(errors)))


# --- helpers ---------------------------------------------------------------------------------


def _walk(part: Message) -> Iterator[Message]:
    """Like ``Message.walk`` but a forwarded message (message/rfc822) is one leaf, shown as
    an attachment, not spliced into the outer message's text."""
    yield part
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                yield from _walk(sub)


def _text(part: Message, errors: list[str]) -> str:
    """The part's text: its declared charset if that decodes cleanly, else UTF-8, else
    Windows-1252 (mislabelled and unlabelled 8-bit mail), noting the fall-back."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload())
    declared = part.get_content_charset() or "us-ascii"
    for charset in dict.fromkeys([declared, "utf-8"]):
        try:
            text = payload.decode(charset)
        except LookupError:
            errors.append(f"body charset: unknown encoding: {declared}")
            continue
        except UnicodeDecodeError:
            if charset == declared and declared not in ("us-ascii", "ascii"):
                errors.append(f"body charset: not {declared}")
            continue
        return text
    return payload.decode("cp1252", "replace")


def _attachment(
    part: Message,
    ctype: str,
    filename: str | None,
    cid: str | None,
    disposition: str | None,
    errors: list[str],
) -> Attachment:
    def payload() -> bytes:
        if ctype == "message/rfc822":  # a forwarded message: its bytes, as an .eml
            inner = part.get_payload()
            msg = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(msg, Message):
                return msg.as_bytes(policy=policy.SMTP)
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            return data
        return str(part.get_payload()).encode("utf-8", "surrogateescape")

    try:
        size = len(payload())
    except Exception as exc:
        errors.append(f"attachment {filename!r}: {exc}")
        size = 0
    if not filename:
        import mimetypes

        ext = {"message/rfc822": ".eml", "text/calendar": ".ics"}.get(ctype) or (
            mimetypes.guess_extension(ctype) or ""
        )
        filename = f"attachment{ext}"
    inline = disposition == "inline" or (disposition is None and cid is not None)
    return Attachment(_clean(filename), ctype, size, cid, inline, payload)


_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.S | re.I)


def html_to_text(html: str) -> str:
    """A plain-text rendering for previews and CRM descriptions (no markup, no scripts)."""
    import html as _html

    text = _TAG_RE.sub(" ", html)
    return "\n".join(
        " ".join(line.split()) for line in _html.unescape(text).splitlines() if line.strip()
    )


def _with_attachments(header: MessageHeader, value: bool) -> MessageHeader:
    from dataclasses import replace

    return replace(header, has_attachments=value)
