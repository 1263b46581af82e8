"""Header parsing for the message list: :func:`parse_headers` (stdlib ``email``, modern policy).

Rule (DESIGN.md, "Bad input"): any byte string is a message. A malformed header block gives what
could be read plus ``parse_errors``; nothing here raises on bad input. Plain ASCII headers take a
fast path that gives the modern policy's answers (checked by property tests); everything else —
RFC 2047 encoded words, 8-bit bytes, comments, groups — goes through the modern policy.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from core.domain.message_identity import synthetic_message_id, unusable_reason, usable_message_id
from core.domain.model import Address, MailRef, MessageHeader

_HEADER_PARSER = BytesParser(policy=policy.default)
MSGID_RE = re.compile(r"<[^<>\s]+>")
_MSGID_RE = MSGID_RE
_ATTACH_RE = re.compile(rb"(?im)^content-disposition:[ \t]*attachment")


def split_header_block(raw: bytes) -> bytes:
    """The header block of a raw message (up to and including the blank line)."""
    # Every match of ``\r?\n\r?\n`` ends in ``\n\n`` or ``\n\r\n``: the first match ends
    # where the earlier of those two ends (two substring searches beat the regex 10x).
    lf, crlf = raw.find(b"\n\n"), raw.find(b"\n\r\n")
    ends = [i + n for i, n in ((lf, 2), (crlf, 3)) if i >= 0]
    return raw[: min(ends)] if ends else raw


def parse_headers(
    raw: bytes,
    ref: MailRef,
    *,
    size: int | None = None,
    is_read: bool = False,
    keywords: tuple[str, ...] = (),
    has_attachments: bool | None = None,
    tracked_marker: str | None = None,
) -> MessageHeader:
    """Build a :class:`MessageHeader` from a raw message or just its header block.

    Values the server knows better (size, flags, keywords, has-attachments) are passed in.
    Without ``has_attachments``, a ``Content-Disposition: attachment`` anywhere in ``raw``
    (or, for a header block alone, a ``multipart/mixed`` top level) counts as attachments.
    Never raises.
    """
    block = split_header_block(raw)
    fields = _plain_fields(block)
    if fields is not None:
        header = _plain_header(
            fields,
            raw,
            len(block),
            ref,
            size=size,
            is_read=is_read,
            keywords=keywords,
            has_attachments=has_attachments,
            tracked_marker=tracked_marker,
        )
        if header is not None:
            return header
    return _parse_general(
        raw,
        block,
        fields,
        ref,
        size=size,
        is_read=is_read,
        keywords=keywords,
        has_attachments=has_attachments,
        tracked_marker=tracked_marker,
    )


def _plain_header(
    fields: dict[str, str],
    raw: bytes,
    block_len: int,
    ref: MailRef,
    *,
    size: int | None,
    is_read: bool,
    keywords: tuple[str, ...],
    has_attachments: bool | None,
    tracked_marker: str | None,
) -> MessageHeader | None:
    """:func:`_parse_general`'s answer for a block of plain ASCII fields, or None when a
    value needs more than the plain reading (then the general path decides). It is the
    common case by far, and a first sync of 10,000 messages is mostly this function, so it
    takes the shortest way to each value; ``tests/mail/test_parse.py`` checks that the two
    paths agree."""
    get = fields.get
    subject_v = get("subject", "")
    subject = _decoded_subject(subject_v) if "=?" in subject_v else subject_v
    message_id_v, in_reply_to_v = get("message-id", ""), get("in-reply-to", "")
    references_v, thread_index_v = get("references", ""), get("thread-index", "")
    if (
        subject is None
        or "=?" in message_id_v
        or "=?" in in_reply_to_v
        or "=?" in references_v
        or "=?" in thread_index_v
    ):
        return None
    parties = _plain_parties(fields)
    if parties is None:
        return None
    senders, to, cc = parties
    if has_attachments is None:
        has_attachments = _plain_attachments(get("content-type", ""), raw, block_len)
        if has_attachments is None:
            return None
    errors: list[str] = []
    message_id = _message_id(message_id_v, errors)
    date = _parse_date(get("date", ""), errors)
    subject = _bounded_subject(_clean(subject), errors)
    sender = senders[0] if senders else None
    size = len(raw) if size is None else size
    # Addresses from simple_addresses are clean already; the rest as in _parse_general.
    return MessageHeader(
        ref=ref,
        message_id=message_id or _synthetic(message_id_v, date, sender, to, cc, subject, size),
        subject=subject,
        sender=sender,
        to=to,
        cc=cc,
        date=date,
        size=size,
        has_attachments=has_attachments,
        is_read=is_read,
        thread_index=_clean(thread_index_v.strip()) or None,
        in_reply_to=_clean(_msgid(in_reply_to_v) or "") or None,
        references=_references(references_v),
        keywords=tuple(keywords),
        tracked_marker=tracked_marker,
        parse_errors=tuple(errors),
    )


def _decoded_subject(subject: str) -> str | None:
    """The subject with its encoded words decoded; None when they do not decode cleanly."""
    decoded = decode_words(subject)
    return None if decoded is None or "\ufffd" in decoded else decoded


_Parties = tuple[tuple[Address, ...], tuple[Address, ...], tuple[Address, ...]]


def _plain_parties(fields: dict[str, str]) -> _Parties | None:
    """From (else Sender), To and Cc of plain address lists; None when one needs the full
    parser."""
    get = fields.get
    value = get("from")
    senders = simple_addresses(value) if value is not None else ()
    if senders is None:
        return None
    if not senders:
        value = get("sender")
        senders = simple_addresses(value) if value is not None else ()
        if senders is None:
            return None
    value = get("to")
    to = simple_addresses(value) if value is not None else ()
    value = get("cc")
    cc = simple_addresses(value) if value is not None else ()
    if to is None or cc is None:
        return None
    return senders, to, cc


def _plain_attachments(content_type: str, raw: bytes, block_len: int) -> bool | None:
    """Whether the message has attachments, from its body or else its plain top-level
    Content-Type; None when that Content-Type needs the full parser."""
    found = _attachments_in_body(raw, block_len)
    if found is not None:
        return found
    m = _CTYPE_RE.match(content_type)
    if m is None and content_type:
        return None
    return m is not None and m.group(1).lower() == "multipart/mixed"


def _parse_general(
    raw: bytes,
    block: bytes,
    fields: dict[str, str] | None,
    ref: MailRef,
    *,
    size: int | None,
    is_read: bool,
    keywords: tuple[str, ...],
    has_attachments: bool | None,
    tracked_marker: str | None,
) -> MessageHeader:
    """The header through :class:`_Source`: plain fields read directly, anything else
    through the modern policy."""
    errors: list[str] = []
    src = _Source(block, errors, fields)
    message_id_v = src.text("message-id")
    message_id = _message_id(message_id_v, errors)
    subject = _clean(src.text("subject"))
    if "\ufffd" in subject and "=?" in src.raw("subject"):
        errors.append("subject: undecodable encoded word")
        subject = _clean(src.raw("subject"))
    subject = _bounded_subject(subject, errors)
    sender = _first(src.addresses("from")) or _first(src.addresses("sender"))
    to = tuple(src.addresses("to"))
    cc = tuple(src.addresses("cc"))
    date = _parse_date(src.raw("date"), errors)
    in_reply_to = _msgid(src.text("in-reply-to"))
    references = tuple(_MSGID_RE.findall(src.text("references")))
    thread_index = src.text("thread-index").strip() or None
    if has_attachments is None:
        has_attachments = _guess_attachments(src, raw)
    _check_8bit(src, errors)
    # Every string leaves here as valid Unicode (no lone surrogates from 8-bit bytes): the
    # store, the GUI and the CRM would each choke on them differently.
    in_reply_to = _clean(in_reply_to or "") or None
    references = tuple(_clean(r) for r in references)
    thread_index = _clean(thread_index or "") or None
    sender = _clean_address(sender) if sender else None
    to, cc = tuple(map(_clean_address, to)), tuple(map(_clean_address, cc))
    size = len(raw) if size is None else size
    return MessageHeader(
        ref=ref,
        message_id=message_id or _synthetic(message_id_v, date, sender, to, cc, subject, size),
        subject=subject,
        sender=sender,
        to=to,
        cc=cc,
        date=date,
        size=size,
        has_attachments=has_attachments,
        is_read=is_read,
        thread_index=thread_index,
        in_reply_to=in_reply_to,
        references=references,
        keywords=tuple(keywords),
        tracked_marker=tracked_marker,
        parse_errors=tuple(dict.fromkeys(errors)),
    )


def _check_8bit(src: _Source, errors: list[str]) -> None:
    """8-bit header bytes: UTF-8 (RFC 6532) is not an error, anything else is."""
    if src.fields is None and not src.block.isascii():
        try:
            src.block.decode("utf-8")
            errors[:] = [e for e in errors if "UndecodableBytesDefect" not in e]
        except UnicodeDecodeError:
            errors.append("8-bit header bytes that are not UTF-8")


# --- header access: a fast path for plain headers, the modern policy for the rest -------------

_WANTED = frozenset(
    {
        "message-id",
        "subject",
        "from",
        "sender",
        "to",
        "cc",
        "date",
        "in-reply-to",
        "references",
        "thread-index",
        "content-type",
    }
)
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_ADDR = f"{_LOCAL}@{_DOMAIN}"
_ADDR_ITEM_RE = re.compile(
    rf'[ \t]*(?:"(?P<q>[^"\\]*)"[ \t]*<(?P<a1>{_ADDR})>'
    rf"|(?P<n>[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~ -]*?)[ \t]*<(?P<a2>{_ADDR})>"
    rf"|(?P<a3>{_ADDR}))[ \t]*(?:,|$)"
)
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

    def __init__(self, block: bytes, errors: list[str], fields: dict[str, str] | None) -> None:
        """``fields`` is ``_plain_fields(block)``, which the caller has at hand."""
        self.block = block
        self.errors = errors
        self.fields = fields
        self._msg: Message | None = None

    @property
    def msg(self) -> Message:
        if self._msg is None:
            # Repaired only here: a block the fast path can read has no line to repair.
            self.block = _repair(self.block, self.errors)
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

    def addresses(self, name: str) -> Sequence[Address]:
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
    if "\0" in text:
        return None
    # CRLF throughout (what IMAP servers send): split on it, and any CR left is stray.
    crlf = text.count("\n") == text.count("\r\n")
    lines = text.split("\r\n") if crlf else text.split("\n")
    fields: dict[str, str] = {}
    current: str | None = None
    skip = False
    for line in lines:
        if not crlf and line.endswith("\r"):
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
        # A field name is printable ASCII without space or colon (RFC 5322 ftext).
        if not sep or " " in name or not name.isprintable() or "\r" in value:
            return None
        key = name.lower()
        if key in _WANTED and key not in fields:
            fields[key] = value.lstrip(" \t")
            current, skip = key, False
        else:
            current, skip = None, True
    return fields


@functools.lru_cache(maxsize=4096)
def simple_addresses(value: str) -> tuple[Address, ...] | None:
    """Addresses of a plain address list (``Name <a@b>``, ``"Doe, Jane" <a@b>``, ``a@b``),
    or None when the value needs the full RFC 5322 parser.

    Cached: a mailbox's From, To and Cc lines repeat (the same correspondents, the same
    team lists), and reading one was a fifth of parsing a header; the answer is immutable."""
    out: list[Address] = []
    pos, end = 0, len(value)
    if not value.strip():
        return ()
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
    return tuple(out)


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
            end < len(value) and value[end] not in " \t"
        ):
            return None
        if not (after_word and not between.strip(" \t")):
            out.append(between)
        charset, enc, text = m.groups()
        try:
            raw = (
                base64.b64decode(text, validate=True)
                if enc in "Bb"
                else binascii.a2b_qp(text.encode("ascii"), header=True)
            )
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


#: Characters of a Subject kept: the list, the banner and the CRM (whose e-mail subject takes
#: 800) need no more, and a 1 MB subject would cost every repaint of the list.
MAX_SUBJECT = 2000


def _bounded_subject(subject: str, errors: list[str]) -> str:
    if len(subject) <= MAX_SUBJECT:
        return subject
    errors.append(f"subject: cut at {MAX_SUBJECT:,} of {len(subject):,} characters")
    return subject[: MAX_SUBJECT - 1] + "…"


def _clean(text: str) -> str:
    """Collapse folding whitespace and drop control characters (they break list rendering).
    Raw 8-bit bytes (kept by the parser as surrogates) are UTF-8 (RFC 6532) or, failing
    that, taken as Windows-1252, what such mail nearly always is."""
    if text.isprintable() and text.isascii():  # the common case: only spaces to collapse
        return (
            " ".join(text.split()) if "  " in text or text[:1] == " " or text[-1:] == " " else text
        )
    if not text.isascii() and _SURROGATE_RE.search(text):
        text = _decoded_8bit(text)
    return " ".join(_CONTROL_RE.sub(" ", text).split())


def _decoded_8bit(text: str) -> str:
    """Raw 8-bit bytes kept as surrogates, decoded as UTF-8 or else Windows-1252."""
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _clean_address(a: Address) -> Address:
    return Address(_clean(a.email).replace(" ", ""), _clean(a.name))


def _references(value: str) -> tuple[str, ...]:
    """The Message-IDs of a References field. They hold no white space, so a printable
    value needs no cleaning (the common case: a long thread's list is most of a header)."""
    found = _MSGID_RE.findall(value)
    return tuple(found) if value.isprintable() else tuple(_clean(r) for r in found)


def _message_id(value: str, errors: list[str]) -> str:
    """The usable Message-ID of a Message-ID field (``core.domain.message_identity``); ""
    and the reason in ``errors`` when it has none (the caller then gives it a synthetic one,
    and the error lets the UI say so)."""
    if not value.isascii() and _SURROGATE_RE.search(value):
        value = _decoded_8bit(value)
    message_id = usable_message_id(value)
    if message_id is None:
        errors.append(unusable_reason(value))
        return ""
    return message_id


def _synthetic(
    field: str,
    date: datetime | None,
    sender: Address | None,
    to: Sequence[Address],
    cc: Sequence[Address],
    subject: str,
    size: int,
) -> str:
    """The content-derived id of a message without a usable Message-ID: from the values a
    header sync reads alike every time (IMAP fetches these fields and RFC822.SIZE; Maildir
    reads the file's head and size). The unusable field itself counts too: two messages
    that differ only in their broken ids stay two."""
    return synthetic_message_id(
        date=date,
        sender=sender.email if sender else None,
        to=(a.email for a in to),
        cc=(a.email for a in cc),
        subject=subject,
        size=size,
        extra=(" ".join(field.split()),) if field.strip() else (),
    )


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
            raw = next((_loose(v) for k, v in msg.raw_items() if k.lower() == name), "")
            if _EW_RUN_RE.search(raw):
                try:
                    value = policy.default.header_factory(
                        name, _merge_encoded_words(_FOLD_RE.sub("", raw))
                    )
                except Exception:
                    pass  # the parse above stands, with its defects
            for d in getattr(value, "defects", ()):
                errors.append(f"{name}: {type(d).__name__}")
            out = [
                Address(a.addr_spec.strip("<>"), _clean(a.display_name))
                for a in value.addresses
                if a.addr_spec and a.addr_spec != "<>"
            ]
            if out or not str(value).strip():
                return out
    except Exception as exc:
        errors.append(f"{name}: {exc}")
    # Fall back to the lenient parser of email.utils on the raw value.
    raws = [_loose(v) for k, v in msg.raw_items() if k.lower() == name]
    return [Address(addr, _clean(n)) for n, addr in getaddresses(raws) if addr]


# Two or more encoded words with only white space between them: one piece of text (RFC 2047
# 6.2), but CPython's address parser keeps a space between them in display names, so a name
# split in two by the sender's encoder ("J=C3=BCrgen_M?= =?utf-8?q?=C3=BCller") would read
# "Jürgen M üller".
_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
_EW_RUN_RE = re.compile(r"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)+")


def _merge_encoded_words(value: str) -> str:
    """``value`` with each run of adjacent encoded words made one (UTF-8) encoded word; a run
    that does not decode cleanly is left for the parser to report."""

    def merged(m: re.Match[str]) -> str:
        if value.count('"', 0, m.start()) % 2:
            return m.group(0)  # inside a quoted string: not encoded words (RFC 2047 5)
        text = decode_words(" ".join(m.group(0).split()))
        if text is None:
            return m.group(0)
        return (
            "=?utf-8?b?"
            + base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")
            + "?="
        )

    return _EW_RUN_RE.sub(merged, value)


def _first(items: Sequence[Address]) -> Address | None:
    return items[0] if items else None


_DATE_RE = re.compile(
    r"[ \t]*(?:[A-Za-z]{3},[ \t]*)?(\d{1,2})[ \t]+([A-Za-z]{3})[ \t]+(\d{4})[ \t]+"
    r"(\d\d):(\d\d)(?::(\d\d))?[ \t]+([+-])(\d\d)(\d\d)[ \t]*"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_ZONES: dict[int, timezone] = {0: UTC}


def _zone(sign: str, offset: int) -> timezone | None:
    """A fixed-offset zone, cached (a mailbox has a handful); ``-0000`` is UTC too. An
    offset of a day or more raises ValueError, as email.utils does."""
    seconds = -offset if sign == "-" else offset
    return _ZONES.setdefault(seconds, timezone(timedelta(seconds=seconds)))


def _parse_date(raw: str, errors: list[str]) -> datetime | None:
    if not raw.strip():
        return None
    m = _DATE_RE.fullmatch(raw)
    if m is not None:  # the usual shape, read directly (email.utils takes 3x longer)
        day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
        try:
            offset = int(zh) * 3600 + int(zm) * 60
            tz = _ZONES.get(-offset if sign == "-" else offset) or _zone(sign, offset)
            return datetime(
                int(year), _MONTHS[mon.lower()], int(day), int(hh), int(mm), int(ss or 0), tzinfo=tz
            )
        except (ValueError, KeyError):
            pass  # e.g. 31 Feb: the general parser says what is wrong
    try:
        value = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        errors.append(f"date: cannot read {raw.strip()[:60]!r}")
        return None
    if value.tzinfo is None:  # "-0000" means unknown zone: take it as UTC
        value = value.replace(tzinfo=UTC)
    return value


def _attachments_in_body(raw: bytes, block_len: int) -> bool | None:
    """Whether ``raw`` has a part marked as an attachment; None when ``raw`` is the header
    block alone (then the top-level Content-Type decides)."""
    if b"ttachment" in raw.lower() and _ATTACH_RE.search(raw):
        return True
    if len(raw) > block_len + 2:
        return False  # the whole message was there and nothing is an attachment
    return None


def _guess_attachments(src: _Source, raw: bytes) -> bool:
    found = _attachments_in_body(raw, len(src.block))
    return src.content_type() == "multipart/mixed" if found is None else found
