"""Graph message JSON to Trackbox's headers, the tracked marker's properties, and the
per-folder sync state of the Graph backend (pure: no I/O).

Sync state: a delta round tells a created message from a changed one in no way, but the
sync contract (and the sync cycle's "new mail") needs to. So the state is the delta link plus
the set of message ids the caller was given in that folder, each as a 48-bit hash (8
characters): about 80 kB for 10,000 messages. A 410 starts a round from scratch with an
empty set.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from core.domain.message_identity import synthetic_message_id, unusable_reason, usable_message_id
from core.domain.model import Address, MailRef, MessageHeader
from core.mail.base import TRACKED_CATEGORY, FlagChange
from core.mail.headers import MSGID_RE

#: The category Dynamics 365 App for Outlook shows on tracked mail; Trackbox sets it too.
TRACKED_CATEGORY_365 = "Tracked to Dynamics 365"
#: PS_PUBLIC_STRINGS, the property set of the named property ``crmid`` that holds the activity
#: id: the one the EWS backend (and the Dynamics CRM for Outlook add-in) reads and writes, so a
#: mailbox marked over EWS reads as tracked over Graph and the other way round.
PS_PUBLIC_STRINGS = "{00020329-0000-0000-C000-000000000046}"
ACTIVITY_PROPERTY = f"String {PS_PUBLIC_STRINGS} Name crmid"
#: PidTagMessageSize: Graph's message has no ``size``; this extended property is the size.
SIZE_PROPERTY = "Integer 0x0E08"
#: Categories that say "tracked" without an activity id (the second: the older add-in's).
TRACKED_CATEGORIES = (TRACKED_CATEGORY_365, TRACKED_CATEGORY)

#: Exactly the message properties a header needs (In-Reply-To and References come from
#: ``internetMessageHeaders``; size and the activity id from the expanded properties).
HEADER_SELECT = (
    "internetMessageId",
    "subject",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "sentDateTime",
    "receivedDateTime",
    "isRead",
    "categories",
    "hasAttachments",
    "conversationIndex",
    "internetMessageHeaders",
)
HEADER_EXPAND = (
    f"singleValueExtendedProperties($filter=id eq '{ACTIVITY_PROPERTY}' or id eq '{SIZE_PROPERTY}')"
)
_STATE_VERSION = "graph1"


def _address(entry: Any) -> Address | None:
    mail = entry.get("emailAddress") if isinstance(entry, dict) else None
    if not isinstance(mail, dict) or not mail.get("address"):
        return None
    address = str(mail["address"])
    name = str(mail.get("name") or "")
    return Address(address, "" if name == address else name)


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _property(row: dict[str, Any], wanted: str) -> str | None:
    """An expanded extended property's value; ids compare as Graph does (case, and a tag's
    hex digits, ``0xe08`` = ``0x0E08``, aside)."""
    key = _property_key(wanted)
    for prop in row.get("singleValueExtendedProperties") or ():
        if isinstance(prop, dict) and _property_key(str(prop.get("id", ""))) == key:
            value = prop.get("value")
            return str(value) if value is not None else None
    return None


@functools.lru_cache(maxsize=256)  # a few ids, asked twice for every row of a delta page
def _property_key(prop_id: str) -> str:
    kind, _, rest = prop_id.strip().partition(" ")
    if rest.lower().startswith("0x"):
        try:
            rest = hex(int(rest, 16))
        except ValueError:
            pass
    return f"{kind} {rest}".casefold()


def marker_of(row: dict[str, Any]) -> str | None:
    """The tracked marker: the activity id where set (an empty value is "untracked"), else the
    tracked category, else None."""
    activity = _property(row, ACTIVITY_PROPERTY)
    if activity:
        return activity
    categories = row.get("categories") or ()
    return next((c for c in TRACKED_CATEGORIES if c in categories), None)


#: The internet headers a header is made with (the first of each counts).
_WANTED_HEADERS = frozenset({"date", "in-reply-to", "references"})


def _internet_headers(row: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in row.get("internetMessageHeaders") or ():
        name = h.get("name") if isinstance(h, dict) else None
        if isinstance(name, str):
            key = name.lower()
            if key in _WANTED_HEADERS and key not in out:
                out[key] = str(h.get("value") or "")
    return out


def header_of(folder: str, row: dict[str, Any]) -> MessageHeader:
    """A header from a delta row (no MIME download for the list)."""
    headers = _internet_headers(row)
    errors: list[str] = []
    raw_date = row.get("sentDateTime")
    date = _date(raw_date)
    if "date" in headers and date is not None and not _parsable_date(headers["date"]):
        date = None  # Exchange filled in a Date the message does not have a readable one of
    if date is None:
        errors.append("date: missing or unreadable")
    subject = " ".join(str(row.get("subject") or "").split())
    sender = _address(row.get("from")) or _address(row.get("sender"))
    to = tuple(a for a in map(_address, row.get("toRecipients") or ()) if a)
    cc = tuple(a for a in map(_address, row.get("ccRecipients") or ()) if a)
    raw_id = row.get("internetMessageId")
    message_id = usable_message_id(raw_id)
    if message_id is None:
        errors.insert(0, unusable_reason(raw_id))
        message_id = synthetic_message_id(
            date=date,
            sender=sender.email if sender else None,
            to=(a.email for a in to),
            cc=(a.email for a in cc),
            subject=subject,
            extra=(str(raw_id),) if str(raw_id or "").strip() else (),
        )
    in_reply_to = MSGID_RE.findall(headers.get("in-reply-to", ""))
    size = _property(row, SIZE_PROPERTY)
    return MessageHeader(
        ref=MailRef(folder, str(row["id"])),
        message_id=message_id,
        subject=subject,
        sender=sender,
        to=to,
        cc=cc,
        date=date,
        size=int(size) if size and size.isdigit() else 0,
        has_attachments=bool(row.get("hasAttachments")),
        is_read=bool(row.get("isRead")),
        thread_index=row.get("conversationIndex") or None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(MSGID_RE.findall(headers.get("references", ""))),
        keywords=tuple(str(c) for c in row.get("categories") or ()),
        tracked_marker=marker_of(row),
        parse_errors=tuple(errors),
    )


def _parsable_date(value: str) -> bool:
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    return True


def change_of(folder: str, row: dict[str, Any]) -> FlagChange:
    return FlagChange(
        MailRef(folder, str(row["id"])),
        bool(row.get("isRead")),
        tuple(str(c) for c in row.get("categories") or ()),
        marker_of(row),
    )


# -- sync state -------------------------------------------------------------------------------


def id_key(message_id: str) -> bytes:
    """The 6-byte hash of a Graph message id the sync state keeps."""
    return hashlib.blake2b(message_id.encode(), digest_size=6).digest()


class KnownIds:
    """The ids (hashes) of a folder the caller was given, kept packed as they grow: a state
    is written with every batch, and packing every id again for each (sort, base64, JSON)
    made a first sync quadratic: 3.3 s of a 100,000-message first sync went on it, 0.04 s now.
    6-byte keys are whole base64 quanta, so the packed form is the parts' concatenation."""

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        self._keys = set(keys)
        self._packed: str | None = None  # base64 of the keys packed so far; None: repack
        self._new: list[bytes] = []

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: bytes) -> None:
        if key not in self._keys:
            self._keys.add(key)
            self._new.append(key)

    def discard(self, key: bytes) -> None:
        if key in self._keys:
            self._keys.discard(key)
            self._packed, self._new = None, []

    def packed(self) -> str:
        """Every key, base64 of their concatenation (in no particular order)."""
        if self._packed is None:
            self._packed, self._new = _b64(self._keys), []
        elif self._new:
            self._packed, self._new = self._packed + _b64(self._new), []
        return self._packed


def _b64(keys: Iterable[bytes]) -> str:
    return base64.b64encode(b"".join(keys)).decode("ascii")


def dump_state(link: str, known: KnownIds | Iterable[bytes]) -> str:
    """The folder's sync state: the link to follow next and the ids the caller has (the
    packed ids are base64, which JSON takes as it is)."""
    packed = known.packed() if isinstance(known, KnownIds) else _b64(known)
    head = json.dumps({"v": _STATE_VERSION, "link": link})[:-1]
    return f'{head}, "known": "{packed}"}}'


def load_state(state: str) -> tuple[str, KnownIds] | None:
    """The link and known ids of a state; None for a state that is not ours (another
    backend's, or damaged): the folder then starts again from scratch."""
    try:
        doc = json.loads(state)
        if not isinstance(doc, dict) or doc.get("v") != _STATE_VERSION:
            return None
        link, packed = str(doc["link"]), base64.b64decode(doc["known"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if len(packed) % 6 or not link.startswith("https://"):
        return None
    return link, KnownIds(packed[i : i + 6] for i in range(0, len(packed), 6))
