"""Thread headers: Outlook's conversation index (``Thread-Index``, PidTagConversationIndex)
and the RFC 5322 Message-IDs of In-Reply-To and References.

Layout ([MS-OXOMSG] 2.2.1.3): a 22-byte header block — one reserved byte ``0x01``, five bytes
of FILETIME (with the reserved byte, the high 48 bits of a UTC FILETIME), a 16-byte GUID — then
one 5-byte child block per reply: 1-bit delta code, 31-bit time delta, 8 random bits. Two
messages are in the same thread when their header blocks are equal; a reply's index is its
parent's plus one child block.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HEADER_LEN = 22
CHILD_LEN = 5
_RESERVED = 0x01
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_MAX_HEADER_CHARS = 4096  # conversationindex is str2048 in the CRM; leave room, bound the work


class ConversationIndexError(ValueError):
    """A ``Thread-Index`` value is not a valid conversation index. Callers catch this and
    treat the message as having no conversation index."""

    def __init__(self, value: object, problem: str) -> None:
        shown = repr(value)
        super().__init__(f"Invalid conversation index {shown[:80]}: {problem}")
        self.value = value
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ConversationIndex:
    """A parsed conversation index. Construct from the header text (base64) or raw bytes.

    :raises ConversationIndexError: the value is not base64, too short, has a partial child
        block, or does not start with the reserved byte.
    """

    raw: bytes

    def __init__(self, value: bytes | bytearray | str) -> None:
        object.__setattr__(self, "raw", _decode(value))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def new(cls, when: datetime | None = None, guid: uuid.UUID | None = None) -> ConversationIndex:
        """A fresh index for a new conversation, as Outlook makes when composing."""
        when = when or datetime.now(UTC)
        ticks = _filetime(when) >> 16
        guid = guid or uuid.uuid4()
        head = ticks.to_bytes(6, "big")
        if head[0] != _RESERVED:
            # Outside 1972..2087 the top FILETIME byte is not 0x01; clamp to keep the format.
            head = bytes([_RESERVED]) + head[1:]
        return cls(head + guid.bytes)

    def child(
        self,
        when: datetime | None = None,
        random_byte: int | None = None,
    ) -> ConversationIndex:
        """The index of a reply to this message: this index plus one child block."""
        when = when or datetime.now(UTC)
        delta = max(0, _filetime(when) - self.filetime)
        if delta < 1 << 49:
            value = delta >> 18
        else:
            value = (1 << 31) | min(delta >> 23, (1 << 31) - 1)
        rand = secrets.randbits(8) if random_byte is None else random_byte & 0xFF
        return ConversationIndex(self.raw + ((value << 8) | rand).to_bytes(CHILD_LEN, "big"))

    # -- properties ---------------------------------------------------------------------------

    @property
    def header(self) -> str:
        """The ``Thread-Index`` header text (base64)."""
        return base64.b64encode(self.raw).decode("ascii")

    @property
    def root(self) -> str:
        """The thread's identity: the header block as base64 (a stable look-up key)."""
        return base64.b64encode(self.raw[:HEADER_LEN]).decode("ascii")

    @property
    def root_hash(self) -> int:
        """A signed 32-bit hash of the header block, like ``baseconversationindexhash``."""
        value = zlib.crc32(self.raw[:HEADER_LEN])
        return value - (1 << 32) if value >= 1 << 31 else value

    @property
    def depth(self) -> int:
        """Number of replies between the thread's first message and this one."""
        return (len(self.raw) - HEADER_LEN) // CHILD_LEN

    @property
    def parent(self) -> ConversationIndex | None:
        """The index of the message this one replies to, or ``None`` for a thread's first."""
        if self.depth == 0:
            return None
        return ConversationIndex(self.raw[:-CHILD_LEN])

    @property
    def filetime(self) -> int:
        """The header's FILETIME (100 ns ticks since 1601), low 16 bits zero."""
        return int.from_bytes(self.raw[:6], "big") << 16

    @property
    def created(self) -> datetime:
        """When the conversation started (header time, UTC)."""
        return _FILETIME_EPOCH + timedelta(microseconds=self.filetime // 10)

    def is_descendant_of(self, other: ConversationIndex) -> bool:
        """True when this message is a (direct or indirect) reply to ``other``."""
        return len(self.raw) > len(other.raw) and self.raw.startswith(other.raw)

    def same_thread(self, other: ConversationIndex) -> bool:
        return self.raw[:HEADER_LEN] == other.raw[:HEADER_LEN]


def parse_thread_index(value: str | None) -> ConversationIndex | None:
    """The conversation index of a header value, or ``None`` when absent or malformed."""
    if not value:
        return None
    try:
        return ConversationIndex(value)
    except ConversationIndexError:
        return None


def _decode(value: bytes | bytearray | str) -> bytes:
    if isinstance(value, str):
        if len(value) > _MAX_HEADER_CHARS:
            raise ConversationIndexError(value, "longer than any real Thread-Index")
        text = "".join(value.split())  # folded headers may carry white space
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
            raise ConversationIndexError(value, f"not base64 ({exc})") from None
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
    else:
        raise ConversationIndexError(value, "expected base64 text or bytes")
    if len(raw) < HEADER_LEN:
        raise ConversationIndexError(value, f"{len(raw)} bytes, the header block alone is 22")
    if (len(raw) - HEADER_LEN) % CHILD_LEN:
        raise ConversationIndexError(value, "ends in a partial 5-byte child block")
    if raw[0] != _RESERVED:
        raise ConversationIndexError(value, f"first byte is {raw[0]:#04x}, expected 0x01")
    return raw


def _filetime(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def raw_thread_index(header: str | None) -> bytes:
    """The bytes of a stored Thread-Index (stored ones were validated when tracked)."""
    if not header:
        return b""
    try:
        return binascii.a2b_base64(header)
    except (binascii.Error, ValueError):
        return b""


# --- Message-IDs -----------------------------------------------------------------------------

_MSGID_RE = re.compile(r"<([^<>\s]+)>")


def message_id_keys(value: str | None) -> list[str]:
    """The Message-IDs in a header value (In-Reply-To may hold several), as ``<id>``.

    A bare id without angle brackets (some gateways drop them) is accepted and wrapped.
    """
    if not value:
        return []
    if value[0] == "<" and value[-1] == ">" and value.count("<") == 1:
        return [value] if " " not in value else [f"<{value[1:-1].strip()}>"]
    found = _MSGID_RE.findall(value)
    if found:
        return [f"<{f}>" for f in found]
    bare = value.strip().split()
    return [f"<{bare[0]}>"] if bare and "@" in bare[0] else []


def message_id_key(value: str | None) -> str | None:
    """The normalised form of one Message-ID (``<id>``), or ``None``."""
    keys = message_id_keys(value)
    return keys[0] if keys else None
