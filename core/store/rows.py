"""Conversion between the shared value types and store rows, plus the row types the store
returns. Kept apart from the SQL so the mapping can be read (and tested) in one place."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.domain.conversation_index import parse_thread_index
from core.domain.crm_settings import TrackingTokenSettings
from core.domain.model import (
    Address,
    MailRef,
    MessageHeader,
    Reason,
    RecordRef,
    TrackState,
)
from core.domain.subjects import find_token

#: Default tracking-token settings (``CRM:0001001``); Store.open takes the organisation's.
DEFAULT_TOKENS = TrackingTokenSettings()

_PREFIX = re.compile(r"^(\s*[\w]{1,4}\s?:\s*)+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One stored copy of a message (a Message-ID may have copies in several folders)."""

    id: int
    header: MessageHeader
    track_state: TrackState
    activity_id: str | None
    regarding: RecordRef | None
    reason: Reason | None
    tracked_by_other: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One tracking decision as recorded: what was decided, when, why and by whom
    (``source`` is e.g. ``"auto"``, ``"user"``, ``"sync"``)."""

    id: int
    message_id: str
    at: datetime
    source: str
    track: bool
    reason: Reason
    regarding: RecordRef | None
    details: dict[str, Any]


def thread_root(thread_index: str | None) -> str | None:
    """The conversation root of a Thread-Index header (``ConversationIndex.root``, the same
    key core/correlation uses), or None when missing or malformed."""
    index = parse_thread_index(thread_index)
    return index.root if index is not None else None


def sort_key(text: str | None) -> str:
    return (text or "").casefold().strip()


def subject_sort_key(subject: str) -> str:
    """Subjects sort without their reply/forward prefixes, as mail clients do."""
    return sort_key(_PREFIX.sub("", subject or ""))


# One encoder for every row: json.dumps(..., ensure_ascii=False) builds a new encoder per
# call, which was a fifth of a first sync's store time (five columns per header).
_encode = json.JSONEncoder(ensure_ascii=False).encode
_quote = json.encoder.encode_basestring


def _json_list(values: tuple[str, ...]) -> str:
    # The encoder's own string escaping (C), without its per-call set-up: the same text.
    return "[" + ", ".join(map(_quote, values)) + "]" if values else "[]"


# The address lists and subjects of a mailbox repeat (the same correspondents, a thread's
# replies), so their column values are cached: together they were a third of the time to
# turn a header into a row.
@functools.lru_cache(maxsize=4096)
def _addresses(values: tuple[Address, ...]) -> str:
    return _encode([[a.email, a.name] for a in values]) if values else "[]"


@functools.lru_cache(maxsize=4096)
def _subject_values(subject: str, tokens: TrackingTokenSettings) -> tuple[str, str | None]:
    """The subject's sort key and tracking token."""
    return subject_sort_key(subject), find_token(subject, tokens)


def _parse_addresses(text: str) -> tuple[Address, ...]:
    return tuple(Address(email, name) for email, name in json.loads(text))


def header_values(header: MessageHeader, tokens: TrackingTokenSettings) -> tuple[Any, ...]:
    """Column values in the order of ``HEADER_COLUMNS``."""
    sender = header.sender
    date = header.date
    if date is not None and date.tzinfo is None:  # naive dates are taken as UTC
        date = date.replace(tzinfo=UTC)
    subject = header.subject or ""
    subject_sort, token = _subject_values(subject, tokens)
    message_id = header.message_id.strip()
    if not message_id:
        # The key of tracking, the outbox and the CRM: an empty one would be shared by every
        # such message. Backends give each a synthetic id (core.domain.message_identity).
        raise ValueError(f"message {header.ref.folder}/{header.ref.uid} has no Message-ID key")
    return (
        header.ref.folder,
        header.ref.uid,
        message_id,
        subject,
        subject_sort,
        sender.email if sender else None,
        sender.name if sender else None,
        sender.key if sender else None,
        sort_key((sender.name or sender.email) if sender else ""),
        _addresses(header.to),
        _addresses(header.cc),
        header.date.isoformat() if header.date else None,
        date.timestamp() if date is not None else None,
        int(header.size),
        int(header.has_attachments),
        int(header.is_read),
        header.thread_index,
        thread_root(header.thread_index),
        header.in_reply_to,
        _json_list(header.references),
        _json_list(header.keywords),
        header.tracked_marker,
        _json_list(header.parse_errors),
        token,
    )


HEADER_COLUMNS: tuple[str, ...] = (
    "folder",
    "uid",
    "message_id",
    "subject",
    "subject_sort",
    "sender_email",
    "sender_name",
    "sender_key",
    "sender_sort",
    "to_json",
    "cc_json",
    "date",
    "date_ts",
    "size",
    "has_attachments",
    "is_read",
    "thread_index",
    "thread_root",
    "in_reply_to",
    "references_json",
    "keywords_json",
    "tracked_marker",
    "parse_errors_json",
    "token",
)

TRACK_COLUMNS: tuple[str, ...] = (
    "track_state",
    "activity_id",
    "regarding_entity",
    "regarding_id",
    "regarding_name",
    "reason_code",
    "reason_text",
    "tracked_by_other",
)

ROW_COLUMNS = ("id", *HEADER_COLUMNS, *TRACK_COLUMNS)
ROW_SELECT = ", ".join(ROW_COLUMNS)


def record_ref(entity: str | None, id_: str | None, name: str | None) -> RecordRef | None:
    if not entity or not id_:
        return None
    return RecordRef(entity, id_, name or "")


def message_row(values: tuple[Any, ...]) -> MessageRow:
    """Build a MessageRow from a ``SELECT ROW_SELECT`` result."""
    r = dict(zip(ROW_COLUMNS, values, strict=True))
    sender = Address(r["sender_email"], r["sender_name"] or "") if r["sender_email"] else None
    header = MessageHeader(
        ref=MailRef(r["folder"], r["uid"]),
        message_id=r["message_id"],
        subject=r["subject"],
        sender=sender,
        to=_parse_addresses(r["to_json"]),
        cc=_parse_addresses(r["cc_json"]),
        date=datetime.fromisoformat(r["date"]) if r["date"] else None,
        size=r["size"],
        has_attachments=bool(r["has_attachments"]),
        is_read=bool(r["is_read"]),
        thread_index=r["thread_index"],
        in_reply_to=r["in_reply_to"],
        references=tuple(json.loads(r["references_json"])),
        keywords=tuple(json.loads(r["keywords_json"])),
        tracked_marker=r["tracked_marker"],
        parse_errors=tuple(json.loads(r["parse_errors_json"])),
    )
    reason = Reason(r["reason_code"], r["reason_text"] or "") if r["reason_code"] else None
    return MessageRow(
        id=r["id"],
        header=header,
        track_state=TrackState(r["track_state"]),
        activity_id=r["activity_id"],
        regarding=record_ref(r["regarding_entity"], r["regarding_id"], r["regarding_name"]),
        reason=reason,
        tracked_by_other=bool(r["tracked_by_other"]),
    )
