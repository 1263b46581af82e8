"""E-mail correlation inside the emulator: which stored e-mail an incoming or promoted one
continues (reference section 8), and tracking-token generation (section 6).

This is the stop-gap until ``core/correlation.py`` (issue 4) lands; the functions keep the
same small surface (find a token, match a thread) so the switch is local to this module.
Order: In-Reply-To (3), tracking token (4), conversation index (5); token-only mode keeps only
the token step, and ``emailcorrelationenabled`` switches all of them off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from .storage import Row, Storage

IN_REPLY_TO, TRACKING_TOKEN, CONVERSATION_INDEX = 3, 4, 5


def token_prefixes(org: Row) -> list[str]:
    """``trackingprefix`` is a history list; the first entry is the current prefix."""
    raw = org.get("trackingprefix") or "CRM:"
    return [p.strip() for p in raw.split(";") if p.strip()] or ["CRM:"]


def counter_digits(org: Row) -> int:
    return len(str(org.get("maximumtrackingnumber") or 999))


def find_token(subject: str | None, org: Row) -> str | None:
    """The tracking token in a subject (any prefix of the history list), or None."""
    if not subject:
        return None
    digits = int(org.get("trackingtokeniddigits") or 3)
    for prefix in token_prefixes(org):
        m = re.search(re.escape(prefix) + rf"(\d{{{digits + 2},}})", subject, re.IGNORECASE)
        if m:
            return prefix + m.group(1)
    return None


def make_token(org: Row, user_number: int, counter: int) -> str:
    """``<prefix>0<user number, zero-padded><counter>`` e.g. ``CRM:0001001``."""
    digits = int(org.get("trackingtokeniddigits") or 3)
    base = int(org.get("trackingtokenidbase") or 0)
    return (token_prefixes(org)[0] + "0" + str(base + user_number).zfill(digits)
            + str(counter).zfill(counter_digits(org)))


def decode_index(value: str | None) -> bytes | None:
    if not value:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) >= 22 and (len(raw) - 22) % 5 == 0 else None


def index_hash(value: str | None) -> int | None:
    """``baseconversationindexhash``: a signed 32-bit hash of the 22-byte header."""
    raw = decode_index(value)
    if raw is None:
        return None
    return int.from_bytes(hashlib.sha1(raw[:22]).digest()[:4], "big", signed=True)


@dataclass(frozen=True)
class Match:
    email: Row
    method: int


def correlate(storage: Storage, org: Row, *, subject: str | None, in_reply_to: str | None,
              conversation_index: str | None, exclude: str | None = None) -> Match | None:
    """The stored e-mail this one continues, with the correlation method."""
    if not org.get("emailcorrelationenabled", True):
        return None
    token_only = bool(org.get("tbx_tokenonlycorrelation"))
    steps: list[Any] = []
    if not token_only:
        steps.append(lambda: _by_messageid(storage, in_reply_to, exclude))
    steps.append(lambda: _by_token(storage, org, subject, exclude))
    if not token_only:
        steps.append(lambda: _by_index(storage, conversation_index, exclude))
    for step in steps:
        found = step()
        if found is not None:
            return found
    return None


def _one(storage: Storage, sql: str, params: list[Any]) -> Row | None:
    rows = storage.query(sql + " ORDER BY createdon DESC, versionnumber DESC LIMIT 1", params)
    return rows[0] if rows else None


def _by_messageid(storage: Storage, in_reply_to: str | None, exclude: str | None
                  ) -> Match | None:
    if not in_reply_to:
        return None
    row = _one(storage, "SELECT * FROM email WHERE messageid = ? AND activityid IS NOT ?",
               [in_reply_to.strip(), exclude])
    return Match(row, IN_REPLY_TO) if row else None


def _by_token(storage: Storage, org: Row, subject: str | None, exclude: str | None
              ) -> Match | None:
    token = find_token(subject, org)
    if token is None:
        return None
    row = _one(storage, "SELECT * FROM email WHERE trackingtoken = ? AND activityid IS NOT ?",
               [token, exclude])
    return Match(row, TRACKING_TOKEN) if row else None


def _by_index(storage: Storage, index: str | None, exclude: str | None) -> Match | None:
    raw = decode_index(index)
    if raw is None:
        return None
    if len(raw) > 22:
        parent = base64.b64encode(raw[:-5]).decode()
        row = _one(storage, "SELECT * FROM email WHERE conversationindex = ? "
                            "AND activityid IS NOT ?", [parent, exclude])
        if row:
            return Match(row, CONVERSATION_INDEX)
    row = _one(storage, "SELECT * FROM email WHERE baseconversationindexhash = ? "
                        "AND activityid IS NOT ?", [index_hash(index), exclude])
    return Match(row, CONVERSATION_INDEX) if row else None
