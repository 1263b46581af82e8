"""The identity of a message: its Message-ID when usable, else one derived from its content.

The Message-ID is the key of a message everywhere (store, outbox, CRM ``messageid``). Mail
without a usable one (missing, empty, malformed, longer than the CRM's column) would share the
key ``""``: tracking one would mark them all and the CRM refuses the empty id. Such a message
gets ``<tb.<hash>@trackbox.invalid>``, a hash of what every sync of the same backend reads
alike (as Outlook and the CRM derive one for mail without it), so a re-sync and a colleague's
client agree on it and promotion stores that id in the CRM. Pure: no I/O.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime

#: The CRM's ``messageid`` column takes this many characters.
MAX_MESSAGE_ID = 320
#: RFC 2606 reserves ``.invalid``: a synthetic id can never be a real one.
SYNTHETIC_DOMAIN = "trackbox.invalid"
#: The parse error of a message without a Message-ID field (or an empty one).
MISSING = "no Message-ID"
#: The prefix of the parse error of a Message-ID that is there but unusable.
UNUSABLE = "no usable Message-ID"

_BRACKETED_RE = re.compile(r"<[^<>\s]*>")
# Printable ASCII but "<", ">" (and "@" after the last one): the usual id, checked fast.
_PLAIN_RE = re.compile(r"<[!-;=?-~]+@[!-;=?A-~]+>")
_SYNTHETIC_RE = re.compile(r"<tb\.[0-9a-f]{32}@trackbox\.invalid>")


def usable_message_id(value: str | None) -> str | None:
    """The Message-ID of a Message-ID field, with angle brackets, or None when it has no
    usable one (see :func:`unusable_reason`)."""
    candidate = _candidate(value)
    return candidate if candidate is not None and _problem(candidate) is None else None


def unusable_reason(value: str | None) -> str:
    """Why a field value gives no usable Message-ID: :data:`MISSING` when blank, else
    ``"no usable Message-ID: <why>"``; ``""`` when it is usable."""
    if value is None or not value.strip():
        return MISSING
    candidate = _candidate(value)
    if candidate is None:
        return f"{UNUSABLE}: not an id"
    problem = _problem(candidate)
    return f"{UNUSABLE}: {problem}" if problem else ""


def _candidate(value: str | None) -> str | None:
    """The id a field holds, bracketed: the first ``<…>``, else the bare value (mailers
    that leave the brackets out)."""
    if value is None:
        return None
    text = value.strip(" \t\r\n")
    if not text:
        return None
    m = _BRACKETED_RE.search(text)
    if m is not None:
        return m.group(0)
    return f"<{text}>"


def _problem(candidate: str) -> str | None:
    """What makes a bracketed id unusable as a key the CRM accepts; None when nothing."""
    if len(candidate) > MAX_MESSAGE_ID:
        return f"longer than {MAX_MESSAGE_ID} characters"
    if _PLAIN_RE.fullmatch(candidate):  # the usual id, at the cost of one match
        return None
    inner = candidate[1:-1]
    if any(c in "<>" or c.isspace() or not c.isprintable() for c in inner):
        return "white space or control characters"
    left, at, right = inner.rpartition("@")
    if not at or not left or not right:
        return "no '@'"
    return None


def synthetic_message_id(
    *,
    date: datetime | None,
    sender: str | None,
    to: Iterable[str] = (),
    cc: Iterable[str] = (),
    subject: str = "",
    size: int | None = None,
    extra: Iterable[str] = (),
) -> str:
    """A stable Message-ID for a message without a usable one, from normalised header
    values: the date to the second in UTC, addresses lower-cased, the subject's white space
    collapsed. ``size`` and ``extra`` only where the backend reads them alike every sync
    (a Maildir file's size, IMAP RFC822.SIZE; not an Exchange item's size, which changes
    with its categories)."""
    fields = [
        _date_key(date),
        _address_key(sender or ""),
        sorted(_address_key(a) for a in to),
        sorted(_address_key(a) for a in cc),
        " ".join(unicodedata.normalize("NFC", subject).split()),
        size,
        list(extra),
    ]
    blob = json.dumps(fields, ensure_ascii=True, separators=(",", ":"))
    digest = hashlib.sha256(blob.encode("ascii")).hexdigest()[:32]
    return f"<tb.{digest}@{SYNTHETIC_DOMAIN}>"


def is_synthetic(message_id: str) -> bool:
    """Whether Trackbox made this id up (the UI says so; the CRM stores it as any other)."""
    return _SYNTHETIC_RE.fullmatch(message_id) is not None


def _date_key(date: datetime | None) -> str:
    """Seconds since the epoch in UTC (a naive date is UTC); by ``utctimetuple``, which
    datetime subclasses with their own zone types (exchangelib's) answer alike."""
    if date is None:
        return ""
    return str(calendar.timegm(date.utctimetuple()))


def _address_key(address: str) -> str:
    return address.strip().lower()
