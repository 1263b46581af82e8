"""MIME parsing for the message list and the reading pane (stdlib ``email``, modern policy).

Rule (DESIGN.md, "Bad input"): any byte string is a message. A malformed message is shown with
whatever could be read and a list of ``parse_errors``; nothing here raises on bad input. RFC 2047
encoded words, RFC 2231 parameters and unknown charsets are decoded by the modern policy, with
our own fall-backs where it gives up.

For display (``max_parts``) the cost is bounded whatever the sender did: the stdlib parser costs
about half a millisecond per part, so a message of 100,000 parts is cut, by a linear scan of its
delimiter lines, after ``max_parts`` parts before the parser sees it; the rest is counted in
``parts_not_shown``.
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
    "DISPLAY_PARTS",
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
    parts_not_shown: int = 0  # parts left out by ``max_parts`` (display only)


DISPLAY_PARTS = 1_000  # the parts the reading pane reads of one message


def parse_message(
    raw: bytes, ref: MailRef | None = None, *, max_parts: int | None = None
) -> ParsedMessage:
    """Parse a whole message: header, best text body, HTML body, attachments. Never raises.

    With ``max_parts`` (display), only the first ``max_parts`` parts are read; how many more
    there are is ``parts_not_shown``. Without it (the CRM gets the whole message), all are."""
    ref = ref or MailRef("", "")
    header = parse_headers(raw, ref)
    errors = list(header.parse_errors)
    block = split_header_block(raw)
    fixed = _repair(block, [])
    if fixed is not block:  # lines without a colon would end the headers early
        raw = fixed + raw[len(block) :]
    skipped = 0
    if max_parts is not None:
        raw, skipped = _bound_parts(raw, max_parts)
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:
        return ParsedMessage(
            header, raw.decode("utf-8", "replace"), None, (), (*errors, f"body unreadable: {exc}")
        )
    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    leaves = 0
    for part in _walk(msg):
        for d in part.defects:
            errors.append(f"part: {type(d).__name__}")
        if part.get_content_maintype() == "multipart":
            continue
        leaves += 1
        if max_parts is not None and leaves > max_parts:
            skipped += 1
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
                html_parts.append(body)
            else:
                text_parts.append(body)
            continue
        attachments.append(_attachment(part, ctype, filename, cid, disposition, errors))
    text = "\n".join(text_parts)
    html = "".join(html_parts) if html_parts else None
    if not text and html:
        text = html_to_text(html)
    header = _with_attachments(header, any(not a.inline for a in attachments))
    return ParsedMessage(
        header, text, html, tuple(attachments), tuple(dict.fromkeys(errors)), skipped
    )


# --- helpers ---------------------------------------------------------------------------------


def _walk(part: Message) -> Iterator[Message]:
    """Like ``Message.walk`` but a forwarded message (message/rfc822) is one leaf, shown as
    an attachment, not spliced into the outer message's text. Iterative: a deeply nested
    message cannot exhaust the stack."""
    stack = [part]
    while stack:
        part = stack.pop()
        yield part
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            subs = part.get_payload()
            if isinstance(subs, list):
                stack.extend(sub for sub in reversed(subs) if isinstance(sub, Message))


_BOUNDARY_PARAM = re.compile(rb'(?i)\bboundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))')
_DASH_LINE = re.compile(rb"(?m)^--")
_MAX_DEPTH = 50  # multiparts nested deeper are not read for display (the parser recurses)


def _bound_parts(raw: bytes, max_parts: int) -> tuple[bytes, int]:
    """``raw`` cut before its delimiter line number ``max_parts + 1`` (each starts a part) or
    one that would nest multiparts deeper than ``_MAX_DEPTH``, with the multiparts still open
    closed, and how many parts were cut off. Linear: one scan for the declared boundaries,
    one for lines starting with ``--``."""
    boundaries = {m.group(1) or m.group(2) for m in _BOUNDARY_PARAM.finditer(raw)}
    if not boundaries:
        return raw, 0
    longest = max(len(b) for b in boundaries)
    opened: list[bytes] = []  # boundaries whose multipart is open, innermost last
    seen = shown = 0
    cut: int | None = None
    for m in _DASH_LINE.finditer(raw):
        start = m.start()
        end = raw.find(b"\n", start, start + longest + 80)
        line = raw[start + 2 : end if end >= 0 else start + longest + 80]
        bnd, closing = _delimiter(line, boundaries)
        if bnd is None:
            continue
        if closing:
            if cut is None and bnd in opened:
                del opened[opened.index(bnd) :]
            continue
        seen += 1
        if cut is None:
            deeper = bnd not in opened
            if seen > max_parts or (deeper and len(opened) >= _MAX_DEPTH):
                cut, shown = start, seen - 1
            elif deeper:
                opened.append(bnd)
    if cut is None:
        return raw, 0
    eol = b"\r\n" if b"\r\n" in raw[max(0, cut - 200) : cut] else b"\n"
    tail = b"".join(b"--" + b + b"--" + eol for b in reversed(opened))
    return raw[:cut] + tail, seen - shown


def _delimiter(line: bytes, boundaries: set[bytes]) -> tuple[bytes | None, bool]:
    """Which declared boundary a line (after its ``--``) delimits, and whether it closes it."""
    stripped = line.rstrip(b" \t\r")
    if stripped.endswith(b"--") and stripped[:-2] in boundaries:
        return stripped[:-2], True
    if stripped in boundaries:
        return stripped, False
    return None, False


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
        size = _encoded_size(part, ctype)
        if size is None:
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


def _encoded_size(part: Message, ctype: str) -> int | None:
    """The decoded size of a base64 part from its encoded text, without decoding it (a
    50 MB attachment is not copied to show its size); None: decode to know."""
    if ctype == "message/rfc822" or part.get("content-transfer-encoding", "").lower() != "base64":
        return None
    text = part.get_payload()
    if not isinstance(text, str):
        return None
    tail = text.rstrip()[-4:]
    chars = len(text) - text.count("\n") - text.count("\r") - text.count(" ")
    return max(0, chars * 3 // 4 - tail.count("="))


_SCRIPT_RE = re.compile(r"<(script|style)\b", re.I)
_TAG_RE = re.compile(r"<[^<>]+>")  # stops at the next "<": no rescan of the rest per "<"


def html_to_text(html: str) -> str:
    """A plain-text rendering for previews and CRM descriptions (no markup, no scripts).
    Linear in the HTML: an unclosed ``<script`` ends the text, as in a browser."""
    import html as _html

    kept: list[str] = []
    pos = 0
    lower: str | None = None
    while (m := _SCRIPT_RE.search(html, pos)) is not None:
        kept.append(html[pos : m.start()])
        lower = lower if lower is not None else html.lower()
        close = lower.find("</" + m.group(1).lower(), m.end())
        end = html.find(">", close) if close >= 0 else -1
        pos = end + 1 if end >= 0 else len(html)
    kept.append(html[pos:])
    text = _TAG_RE.sub(" ", " ".join(kept))
    return "\n".join(
        " ".join(line.split()) for line in _html.unescape(text).splitlines() if line.strip()
    )


def _with_attachments(header: MessageHeader, value: bool) -> MessageHeader:
    from dataclasses import replace

    return replace(header, has_attachments=value)
