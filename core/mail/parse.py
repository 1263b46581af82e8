"""MIME parsing for the message list and the reading pane (stdlib ``email``, modern policy).

Rule (DESIGN.md, "Bad input"): any byte string is a message. A malformed message is shown with
whatever could be read and a list of ``parse_errors``; nothing here raises on bad input. RFC 2047
encoded words, RFC 2231 parameters and unknown charsets are decoded by the modern policy, with
our own fall-backs where it gives up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from core.model import Address, MailRef, MessageHeader

_HEADER_PARSER = BytesParser(policy=policy.default)
_MSGID_RE = re.compile(r"<[^<>\s]+>")
_ATTACH_RE = re.compile(rb"(?im)^content-disposition:[ \t]*attachment")
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


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


def split_header_block(raw: bytes) -> bytes:
    """The header block of a raw message (up to and including the blank line)."""
    m = _HEADER_END_RE.search(raw)
    return raw[: m.end()] if m else raw


def parse_headers(raw: bytes, ref: MailRef, *, size: int | None = None,
                  is_read: bool = False, keywords: tuple[str, ...] = (),
                  has_attachments: bool | None = None,
                  tracked_marker: str | None = None) -> MessageHeader:
    """Build a :class:`MessageHeader` from a raw message or just its header block.

    Values the server knows better (size, flags, keywords, has-attachments) are passed in.
    Without ``has_attachments``, a ``Content-Disposition: attachment`` anywhere in ``raw``
    (or, for a header block alone, a ``multipart/mixed`` top level) counts as attachments.
    Never raises.
    """
    errors: list[str] = []
    try:
        msg = _HEADER_PARSER.parsebytes(split_header_block(raw), headersonly=True)
    except Exception as exc:  # the parser is lenient; this is a last resort
        msg = EmailMessage()
        errors.append(f"headers unreadable: {exc}")
    for d in msg.defects:
        errors.append(f"message: {type(d).__name__}")

    message_id = _msgid(_get(msg, "message-id", errors)) or ""
    if not message_id:
        errors.append("no Message-ID")
    subject = _clean(_get(msg, "subject", errors))
    sender = _first(_addresses(msg, "from", errors))
    if sender is None:
        sender = _first(_addresses(msg, "sender", errors))
    to = tuple(_addresses(msg, "to", errors))
    cc = tuple(_addresses(msg, "cc", errors))
    date = _date(msg, errors)
    in_reply_to = _msgid(_get(msg, "in-reply-to", errors))
    references = tuple(_MSGID_RE.findall(_get(msg, "references", errors)))
    thread_index = _get(msg, "thread-index", errors).strip() or None
    if has_attachments is None:
        has_attachments = _guess_attachments(msg, raw)
    return MessageHeader(
        ref=ref, message_id=message_id, subject=subject, sender=sender, to=to, cc=cc,
        date=date, size=len(raw) if size is None else size, has_attachments=has_attachments,
        is_read=is_read, thread_index=thread_index, in_reply_to=in_reply_to,
        references=references, keywords=tuple(keywords), tracked_marker=tracked_marker,
        parse_errors=tuple(dict.fromkeys(errors)),
    )


def parse_message(raw: bytes, ref: MailRef | None = None) -> ParsedMessage:
    """Parse a whole message: header, best text body, HTML body, attachments. Never raises."""
    ref = ref or MailRef("", "")
    header = parse_headers(raw, ref)
    errors = list(header.parse_errors)
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:
        return ParsedMessage(header, raw.decode("utf-8", "replace"), None, (),
                             (*errors, f"body unreadable: {exc}"))
    text_parts: list[str] = []
    html: str | None = None
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        for d in part.defects:
            errors.append(f"part: {type(d).__name__}")
        ctype = part.get_content_type()
        try:
            disposition = part.get_content_disposition()
            filename = part.get_filename()
        except Exception as exc:
            errors.append(f"part header: {exc}")
            disposition, filename = None, None
        cid = _msgid(str(part.get("content-id", "") or "")) if part.get("content-id") else None
        is_body = disposition != "attachment" and not filename and ctype in (
            "text/plain", "text/html")
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
        text = _html_to_text(html)
    header = _with_attachments(header, any(not a.inline for a in attachments))
    return ParsedMessage(header, text, html, tuple(attachments),
                         tuple(dict.fromkeys(errors)))


# --- helpers ---------------------------------------------------------------------------------

def _get(msg: Message, name: str, errors: list[str]) -> str:
    """A header as text; on a header the policy cannot parse, the raw value, decoded loosely."""
    try:
        value = msg.get(name)
        if value is None:
            return ""
        for d in getattr(value, "defects", ()):
            errors.append(f"{name}: {type(d).__name__}")
        return str(value)
    except Exception as exc:
        errors.append(f"{name}: {exc}")
        for k, v in msg.raw_items():
            if k.lower() == name:
                return _loose(v)
        return ""


def _loose(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _clean(text: str) -> str:
    """Collapse folding whitespace and drop control characters (they break list rendering)."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join("".join(c if c >= " " or c == "\t" else " " for c in text).split())


def _msgid(text: str) -> str | None:
    if not text:
        return None
    m = _MSGID_RE.search(text)
    if m:
        return m.group(0)
    text = text.strip()
    return f"<{text}>" if text and " " not in text else None


def _addresses(msg: Message, name: str, errors: list[str]) -> list[Address]:
    try:
        value = msg.get(name)
        if value is None:
            return []
        if isinstance(value, AddressHeader):
            for d in value.defects:
                errors.append(f"{name}: {type(d).__name__}")
            out = [Address(a.addr_spec.strip("<>"), _clean(a.display_name))
                   for a in value.addresses if a.addr_spec and a.addr_spec != "<>"]
            if out or not str(value).strip():
                return out
    except Exception as exc:
        errors.append(f"{name}: {exc}")
    # Fall back to the lenient parser of email.utils on the raw value.
    raws = [_loose(v) for k, v in msg.raw_items() if k.lower() == name]
    return [Address(addr, _clean(n)) for n, addr in getaddresses(raws) if addr]


def _first(items: list[Address]) -> Address | None:
    return items[0] if items else None


def _date(msg: Message, errors: list[str]) -> datetime | None:
    raw = ""
    for k, v in msg.raw_items():
        if k.lower() == "date":
            raw = _loose(v)
            break
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        errors.append(f"date: cannot read {raw.strip()[:60]!r}")
        return None
    if value.tzinfo is None:  # "-0000" means unknown zone: take it as UTC
        value = value.replace(tzinfo=UTC)
    return value


def _guess_attachments(msg: Message, raw: bytes) -> bool:
    if _ATTACH_RE.search(raw):
        return True
    if len(raw) > len(split_header_block(raw)) + 2:
        return False  # the whole message was there and nothing is an attachment
    try:
        return msg.get_content_type() == "multipart/mixed"
    except Exception:
        return False


def _text(part: Message, errors: list[str]) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, bytes):
            return content.decode("utf-8", "replace")
        return str(content)
    except (LookupError, UnicodeError, AssertionError, ValueError) as exc:
        # Unknown or lying charset: decode bytes as UTF-8, then Latin-1, rather than fail.
        errors.append(f"body charset: {exc}")
        payload = part.get_payload(decode=True) or b""
        if not isinstance(payload, bytes):
            return str(payload)
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("latin-1")


def _attachment(part: Message, ctype: str, filename: str | None, cid: str | None,
                disposition: str | None, errors: list[str]) -> Attachment:
    def payload() -> bytes:
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
        ext = {"message/rfc822": ".eml", "text/calendar": ".ics"}.get(ctype, "")
        filename = f"attachment{ext}"
    inline = disposition == "inline" or (disposition is None and cid is not None)
    return Attachment(_clean(filename), ctype, size, cid, inline, payload)


_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.S | re.I)


def _html_to_text(html: str) -> str:
    """A plain-text rendering for previews and CRM descriptions (no markup, no scripts)."""
    import html as _html

    text = _TAG_RE.sub(" ", html)
    return "\n".join(" ".join(line.split()) for line in _html.unescape(text).splitlines()
                     if line.strip())


def _with_attachments(header: MessageHeader, value: bool) -> MessageHeader:
    from dataclasses import replace

    return replace(header, has_attachments=value)
