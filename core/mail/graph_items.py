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
import re
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


_ADDRESSES: dict[tuple[str, str], Address] = {}  # a mailbox's correspondents repeat


def _address(entry: Any) -> Address | None:
    try:
        mail = entry["emailAddress"]
        address, name = mail["address"], mail.get("name")
    except (TypeError, KeyError, AttributeError):
        return None
    if not address:
        return None
    if type(address) is not str or (name is not None and type(name) is not str):
        address, name = str(address), str(name or "")
    key = (address, name or "")
    found = _ADDRESSES.get(key)
    if found is None:
        if len(_ADDRESSES) > 4096:
            _ADDRESSES.clear()
        text = str(address)
        shown = str(name or "")
        found = _ADDRESSES[key] = Address(text, "" if shown == text else shown)
    return found


def _addresses(entries: Any) -> tuple[Address, ...]:
    if not entries:
        return ()
    found = [_address(e) for e in entries]
    return tuple(a for a in found if a is not None)


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _properties(row: dict[str, Any]) -> tuple[str | None, str | None]:
    """The expanded activity id and size, each None when absent; ids compare as Graph
    does (case, and a tag's hex digits, ``0xe08`` = ``0x0E08``, aside)."""
    found: dict[str, str | None] = {}
    for prop in row.get("singleValueExtendedProperties") or ():
        if isinstance(prop, dict):
            key = _property_key(str(prop.get("id", "")))
            if key not in found:
                value = prop.get("value")
                found[key] = str(value) if value is not None else None
    return found.get(_ACTIVITY_KEY), found.get(_SIZE_KEY)


@functools.lru_cache(maxsize=256)  # a few ids, asked for every row of a delta page
def _property_key(prop_id: str) -> str:
    kind, _, rest = prop_id.strip().partition(" ")
    if rest.lower().startswith("0x"):
        try:
            rest = hex(int(rest, 16))
        except ValueError:
            pass
    return f"{kind} {rest}".casefold()


_ACTIVITY_KEY = _property_key(ACTIVITY_PROPERTY)
_SIZE_KEY = _property_key(SIZE_PROPERTY)


def _marker(activity: str | None, categories: Any) -> str | None:
    if activity:
        return activity
    return next((c for c in TRACKED_CATEGORIES if c in categories), None) if categories else None


def marker_of(row: dict[str, Any]) -> str | None:
    """The tracked marker: the activity id where set (an empty value is "untracked"), else the
    tracked category, else None."""
    return _marker(_properties(row)[0], row.get("categories"))


def _internet_headers(row: dict[str, Any]) -> tuple[str | None, str, str]:
    """Date, In-Reply-To and References of ``internetMessageHeaders`` (the first of each
    counts; Date None when absent)."""
    date = in_reply_to = references = None
    for h in row.get("internetMessageHeaders") or ():
        try:
            key = h["name"].lower()
        except (TypeError, KeyError, AttributeError):
            continue
        if key == "date":
            if date is None:
                date = str(h.get("value") or "")
        elif key == "in-reply-to":
            if in_reply_to is None:
                in_reply_to = str(h.get("value") or "")
        elif key == "references" and references is None:
            references = str(h.get("value") or "")
    return date, in_reply_to or "", references or ""


def header_of(folder: str, row: dict[str, Any]) -> MessageHeader:
    """A header from a delta row (no MIME download for the list). Every row of a first sync
    comes through here: one pass over each part of the row, shared addresses."""
    get = row.get
    raw_date, in_reply_to_text, references_text = _internet_headers(row)
    errors: list[str] = []
    date = _date(get("sentDateTime"))
    if raw_date is not None and date is not None and not _parsable_date(raw_date):
        date = None  # Exchange filled in a Date the message does not have a readable one of
    if date is None:
        errors.append("date: missing or unreadable")
    subject = " ".join(str(get("subject") or "").split())
    sender = _address(get("from")) or _address(get("sender"))
    to = _addresses(get("toRecipients"))
    cc = _addresses(get("ccRecipients"))
    raw_id = get("internetMessageId")
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
    in_reply_to = MSGID_RE.search(in_reply_to_text) if in_reply_to_text else None
    activity, size = _properties(row)
    categories = get("categories") or ()
    return MessageHeader(
        MailRef(folder, str(row["id"])),
        message_id,
        subject,
        sender,
        to,
        cc,
        date,
        int(size) if size and size.isdigit() else 0,
        bool(get("hasAttachments")),
        bool(get("isRead")),
        get("conversationIndex") or None,
        in_reply_to.group(0) if in_reply_to else None,
        tuple(MSGID_RE.findall(references_text)) if references_text else (),
        tuple(map(str, categories)),
        _marker(activity, categories),
        tuple(errors),
    )


#: The usual Date (RFC 5322, numeric zone) with every field in range but the day-of-month
#: past 28 (those, and everything else, go to the full parser): what this matches parses.
_PLAIN_DATE = re.compile(
    r"(?:[A-Za-z]{3}, )?(?:0?[1-9]|1\d|2[0-8]) "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [1-9]\d{3} "
    r"(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)? [+-](?:[01]\d|2[0-3])[0-5]\d"
)


def _parsable_date(value: str) -> bool:
    if _PLAIN_DATE.fullmatch(value.strip()):
        return True
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
