"""Header parsing for the message list: :func:`parse_headers` (stdlib ``email``, modern policy).

Rule (DESIGN.md, "Bad input"): any byte string is a message. A malformed header block gives what
could be read plus ``parse_errors``; nothing here raises on bad input. Plain ASCII headers take a
fast path that gives the modern policy's answers (checked by property tests); everything else —
RFC 2047 encoded words, 8-bit bytes, comments, groups — goes through the modern policy.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from email import policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from core.model import Address, MailRef, MessageHeader

_HEADER_PARSER = BytesParser(policy=policy.default)
MSGID_RE = re.compile(r"<[^<>\s]+>")
_MSGID_RE = MSGID_RE
_ATTACH_RE = re.compile(rb"(?im)^content-disposition:[ \t]*attachment")
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


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
    src = _Source(split_header_block(raw), errors)
    message_id = _msgid(src.text("message-id")) or ""
    if not message_id:
        errors.append("no Message-ID")
    subject = _clean(src.text("subject"))
    if "\ufffd" in subject and "=?" in src.raw("subject"):
        errors.append("subject: undecodable encoded word")
        subject = _clean(src.raw("subject"))
    sender = _first(src.addresses("from")) or _first(src.addresses("sender"))
    to = tuple(src.addresses("to"))
    cc = tuple(src.addresses("cc"))
    date = _parse_date(src.raw("date"), errors)
    in_reply_to = _msgid(src.text("in-reply-to"))
    references = tuple(_MSGID_RE.findall(src.text("references")))
    thread_index = src.text("thread-index").strip() or None
    if has_attachments is None:
        has_attachments = _guess_attachments(src, raw)
    if src.fields is None and not src.block.isascii():
        try:
            src.block.decode("utf-8")  # RFC 6532 UTF-8 headers are not an error
            errors[:] = [e for e in errors if "UndecodableBytesDefect" not in e]
        except UnicodeDecodeError:
            errors.append("8-bit header bytes that are not UTF-8")
    # Every string leaves here as valid Unicode (no lone surrogates from 8-bit bytes): the
    # store, the GUI and the CRM would each choke on them differently.
    message_id, in_reply_to = _clean(message_id), _clean(in_reply_to or "") or None
    references = tuple(_clean(r) for r in references)
    thread_index = _clean(thread_index or "") or None
    sender = _clean_address(sender) if sender else None
    to, cc = tuple(map(_clean_address, to)), tuple(map(_clean_address, cc))
    return MessageHeader(
        ref=ref, message_id=message_id, subject=subject, sender=sender, to=to, cc=cc,
        date=date, size=len(raw) if size is None else size, has_attachments=has_attachments,
        is_read=is_read, thread_index=thread_index, in_reply_to=in_reply_to,
        references=references, keywords=tuple(keywords), tracked_marker=tracked_marker,
        parse_errors=tuple(dict.fromkeys(errors)),
    )


# --- header access: a fast path for plain headers, the modern policy for the rest -------------

_WANTED = frozenset({"message-id", "subject", "from", "sender", "to", "cc", "date",
                     "in-reply-to", "references", "thread-index", "content-type"})
_FIELD_NAME_RE = re.compile(r"[!-9;-~]+")
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_ADDR = f"{_LOCAL}@{_DOMAIN}"
_ADDR_ITEM_RE = re.compile(
    rf'[ \t]*(?:"(?P<q>[^"\\]*)"[ \t]*<(?P<a1>{_ADDR})>'
    rf"|(?P<n>[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~ -]*?)[ \t]*<(?P<a2>{_ADDR})>"
    rf"|(?P<a3>{_ADDR}))[ \t]*(?:,|$)")
_CTYPE_RE = re.compile(r"\s*([A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+)\s*(?:;|$)")


class _Source:
    """Header values of one message.

    Parsing every header through the modern policy's header registry costs ~1 ms a message,
    which dominates a 10,000-message first sync. Headers that are plain ASCII with no encoded
    words and simple address lists are read directly (the same values the modern policy gives:
    ``tests/mail/test_parse.py`` checks the two paths agree); anything else — encoded words,
    8-bit bytes, comments, groups, malformed lines — goes through the modern policy, parsed
    once, on first need.
    """

    def __init__(self, block: bytes, errors: list[str]) -> None:
        self.block = _repair(block, errors)
        self.errors = errors
        self.fields = _plain_fields(block)
        self._msg: Message | None = None

    @property
    def msg(self) -> Message:
        if self._msg is None:
            try:
                self._msg = _HEADER_PARSER.parsebytes(self.block, headersonly=True)
            except Exception as exc:  # the parser is lenient; this is a last resort
                self._msg = EmailMessage()
                self.errors.append(f"headers unreadable: {exc}")
            for d in self._msg.defects:
                self.errors.append(f"message: {type(d).__name__}")
        return self._msg

    def raw(self, name: str) -> str:
        if self.fields is not None:
            return self.fields.get(name, "")
        for k, v in self.msg.raw_items():
            if k.lower() == name:
                return _loose(v)
        return ""

    def text(self, name: str) -> str:
        if self.fields is not None:
            value = self.fields.get(name)
            if value is None:
                return ""
            if "=?" not in value:
                return value
            decoded = decode_words(value)
            if decoded is not None:
                return decoded
        else:
            value = self.raw(name)
            if "=?" not in value and _SURROGATE_RE.search(value):
                return value  # raw 8-bit text: _clean decodes it (UTF-8 or Windows-1252)
        return _get(self.msg, name, self.errors)

    def addresses(self, name: str) -> list[Address]:
        if self.fields is not None:
            value = self.fields.get(name)
            if value is None:
                return []
            simple = simple_addresses(value)
            if simple is not None:
                return simple
        return _addresses(self.msg, name, self.errors)

    def content_type(self) -> str:
        value = self.raw("content-type")
        m = _CTYPE_RE.match(value)
        if m:
            return m.group(1).lower()
        try:
            return self.msg.get_content_type() if value else "text/plain"
        except Exception:
            return "text/plain"

    def modern_addresses(self, name: str) -> list[Address]:
        """The modern policy's answer, for tests that compare the two paths."""
        return _addresses(self.msg, name, self.errors)


_HEADER_LINE_RE = re.compile(rb"[!-9;-~]+[ \t]*:")


def _repair(block: bytes, errors: list[str]) -> bytes:
    """Drop header lines that are neither ``Name: value`` nor a continuation (the stdlib
    parser would take such a line as the start of the body and lose every header after it).
    A block whose first line is not a header is left alone: it has no headers."""
    lines = block.split(b"\n")
    if not lines or not _HEADER_LINE_RE.match(lines[0]):
        return block
    kept = []
    dropped = 0
    for line in lines:
        if line in (b"", b"\r") or line[:1] in (b" ", b"\t") or _HEADER_LINE_RE.match(line):
            kept.append(line)
            if line in (b"", b"\r"):
                break
        else:
            dropped += 1
    if not dropped:
        return block
    errors.append(f"{dropped} header line(s) without a colon skipped")
    return b"\n".join(kept)


def _plain_fields(block: bytes) -> dict[str, str] | None:
    """The wanted headers, unfolded, if the block is plain ASCII ``Name: value`` lines;
    None (use the modern parser) otherwise."""
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError:
        return None
    fields: dict[str, str] = {}
    current: str | None = None
    skip = False
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            break
        if line[0] in " \t":
            if current is None and not skip:
                return None
            if current is not None:
                fields[current] += line
            continue
        name, sep, value = line.partition(":")
        if not sep or not _FIELD_NAME_RE.fullmatch(name) or "\r" in value or "\0" in value:
            return None
        key = name.lower()
        if key in _WANTED and key not in fields:
            fields[key] = value.lstrip(" \t")
            current, skip = key, False
        else:
            current, skip = None, True
    return fields


def simple_addresses(value: str) -> list[Address] | None:
    """Addresses of a plain address list (``Name <a@b>``, ``"Doe, Jane" <a@b>``, ``a@b``),
    or None when the value needs the full RFC 5322 parser."""
    out: list[Address] = []
    pos, end = 0, len(value)
    if not value.strip():
        return out
    if "(" in value:
        return None  # comments: the full parser
    while pos < end:
        m = _ADDR_ITEM_RE.match(value, pos)
        if m is None or m.end() == pos:
            return None
        if m.group("q") is not None:
            if "=?" in m.group("q"):
                return None  # encoded words inside quotes: not RFC 2047, the parser decides
            name = m.group("q")
        else:
            name = m.group("n") or ""
            if "=?" in name:
                decoded = decode_words(name)
                if decoded is None:
                    return None
                name = decoded
        out.append(Address(m.group("a1") or m.group("a2") or m.group("a3"), _clean(name)))
        pos = m.end()
    return out


_EW_RE = re.compile(r"=\?([A-Za-z0-9_.:+-]+)\?([BbQq])\?([!->@-~]*?)\?=")


def decode_words(value: str) -> str | None:
    """RFC 2047 encoded words decoded, whitespace between adjacent ones dropped; None when
    anything is unusual (a word glued to text, bad base64, unknown charset, a stray ``=?``):
    the modern policy then decides, with its defects."""
    out: list[str] = []
    pos = 0
    after_word = False
    for m in _EW_RE.finditer(value):
        start, end = m.span()
        between = value[pos:start]
        if (start > 0 and value[start - 1] not in " \t") or (
                end < len(value) and value[end] not in " \t"):
            return None
        if not (after_word and not between.strip(" \t")):
            out.append(between)
        charset, enc, text = m.groups()
        try:
            raw = (base64.b64decode(text, validate=True) if enc in "Bb"
                   else binascii.a2b_qp(text.encode("ascii"), header=True))
            out.append(raw.decode(charset))
        except (ValueError, LookupError, UnicodeError, binascii.Error):
            return None
        pos, after_word = end, True
    tail = value[pos:]
    if "=?" in tail:
        return None
    out.append(tail)
    return "".join(out)


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
    """A raw header value as text; 8-bit bytes stay as surrogates for :func:`_clean`."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


_SURROGATE_RE = re.compile("[\udc80-\udcff]")
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def _clean(text: str) -> str:
    """Collapse folding whitespace and drop control characters (they break list rendering).
    Raw 8-bit bytes (kept by the parser as surrogates) are UTF-8 (RFC 6532) or, failing
    that, taken as Windows-1252, what such mail nearly always is."""
    if not text.isascii() and _SURROGATE_RE.search(text):
        raw = text.encode("utf-8", "surrogateescape")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", "replace")
    return " ".join(_CONTROL_RE.sub(" ", text).split())


def _clean_address(a: Address) -> Address:
    return Address(_clean(a.email).replace(" ", ""), _clean(a.name))


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
            for d in getattr(value, "defects", ()):
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


def _parse_date(raw: str, errors: list[str]) -> datetime | None:
    if not raw.strip():
        return None
    try:
        value = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        errors.append(f"date: cannot read {raw.strip()[:60]!r}")
        return None
    if value.tzinfo is None:  # "-0000" means unknown zone: take it as UTC
        value = value.replace(tzinfo=UTC)
    return value


def _guess_attachments(src: _Source, raw: bytes) -> bool:
    if _ATTACH_RE.search(raw):
        return True
    if len(raw) > len(src.block) + 2:
        return False  # the whole message was there and nothing is an attachment
    return src.content_type() == "multipart/mixed"
