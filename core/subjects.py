"""Subject lines: reply/forward prefixes and tracking tokens.

``normalize_subject`` strips what mail clients add when replying or forwarding, in the
languages they actually use (prefix lists from the localised Outlook, Thunderbird, Apple Mail
and Gmail builds; see Wikipedia "List of email subject abbreviations"), plus the tags that mail
gateways add (``[EXTERNAL]``). It is a fixpoint of one stripping step, hence idempotent.

Tracking tokens follow the CRM's format ``<prefix><0><user number><counter>`` (reference
section 6): the prefix is matched case-insensitively and a token never matches inside a longer
word or number.
"""

from __future__ import annotations

import re
from functools import lru_cache

from core.settings import TrackingTokenSettings

# Reply and forward abbreviations. Longer alternatives first so that ``Fwd`` wins over ``Fw``.
_PREFIX_WORDS = (
    # English, and what most localised clients still send
    "re", "fwd", "fw",
    # German AW/WG (Lotus Notes: Antwort); Dutch Antw/Doorst; French RE/TR; Spanish RE/RV;
    # Italian R/RIF/I; Portuguese RES/ENC
    "aw", "wg", "antwort", "antw", "doorst", "tr", "rv", "rif", "r", "i", "res", "enc",
    # Nordic: Danish/Norwegian/Swedish SV, VS, VB; Finnish VS, VL; Icelandic SV, FS
    "sv", "vs", "vb", "vl", "fs",
    # Polish Odp/PD; Czech Odp/PŘ; Turkish YNT/İLT; Hungarian VÁ/TOV
    "odp", "pd", "př", "ynt", "ilt", "İlt", "vá", "tov",
    # Greek
    "απ", "σχετ", "πρθ",
    # Russian, Hebrew, Arabic, Korean (clients localise these too)
    "отв", "пересл", "השב", "הועבר", "رد", "توجيه", "회신", "전달",
    # Chinese and Japanese (Outlook, Foxmail, Thunderbird localisations)
    "回复", "回覆", "答复", "答覆", "转发", "轉寄", "转寄", "轉發", "返信", "転送",
)

_WORDS = "|".join(sorted({re.escape(w) for w in _PREFIX_WORDS}, key=len, reverse=True))
# A number after the prefix: RE[2]:, Re^3:, Re(2):, RE 2: is not a prefix (too ambiguous).
_COUNT = r"(?:\s*\[\d{1,4}\]|\^\d{1,4}|\s*\(\d{1,4}\))?"
_COLON = r"\s*[:：]"  # ASCII and full-width colon (CJK clients)
_PREFIX_RE = re.compile(rf"^(?:{_WORDS}){_COUNT}{_COLON}\s*", re.IGNORECASE)
# "[Fwd: original subject]" as Netscape/old Thunderbird forwarded it.
_BRACKETED_RE = re.compile(rf"^\[(?:{_WORDS}){_COUNT}{_COLON}\s*(.*)\]$",
                           re.IGNORECASE | re.DOTALL)
# Gateway tags: [EXTERNAL], *EXTERNAL*, [EXT], [Extern], [SPAM], [Suspected Spam], CAUTION:.
_TAG_RE = re.compile(
    r"^(?:[\[(*]\s*(?:external|extern|externe|externo|esterno|ext|spam|suspected spam|"
    r"possible spam|caution|warning|phishing)\s*[\])*]|(?:external|caution)\s*:)\s*",
    re.IGNORECASE,
)
_SPACE_RE = re.compile(r"\s+")


def normalize_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and gateway tags, white space folded.

    Everything else, including case and non-ASCII text, is kept exactly. Never raises for any
    ``str``; ``None`` or other types give ``""``. Idempotent.
    """
    if not isinstance(subject, str):
        return ""
    return _normalize_cached(subject)


@lru_cache(maxsize=65_536)
def _normalize_cached(subject: str) -> str:
    text = _SPACE_RE.sub(" ", subject).strip()
    while True:
        stripped = _strip_one(text)
        if stripped == text:
            return text
        text = stripped


def _strip_one(text: str) -> str:
    match = _PREFIX_RE.match(text) or _TAG_RE.match(text)
    if match:
        return text[match.end():].strip()
    bracketed = _BRACKETED_RE.match(text)
    if bracketed:
        return bracketed.group(1).strip()
    return text


# --- tracking tokens -------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _token_re(settings: TrackingTokenSettings) -> re.Pattern[str]:
    prefixes = "|".join(re.escape(p) for p in sorted(settings.prefixes, key=len, reverse=True))
    digits = 1 + settings.user_digits + settings.counter_digits
    # Not inside a longer word or number: no word character on either side.
    return re.compile(rf"(?<!\w)(?P<prefix>{prefixes})(?P<digits>[0-9]{{{digits}}})(?![\w])",
                      re.IGNORECASE)


def format_token(settings: TrackingTokenSettings, user_number: int, counter: int) -> str:
    """The token for ``user_number`` (1 = the first user) and the per-user ``counter``.

    The user part is ``base + user_number`` zero-padded to ``user_digits``; the counter wraps
    at ``10**counter_digits`` as the CRM recycles it (999 → 000 with 3 digits).

    :raises ValueError: the user number does not fit the configured digits, or is negative.
    """
    if user_number < 0 or counter < 0:
        raise ValueError("user number and counter must not be negative")
    user = settings.base + user_number
    if user >= 10**settings.user_digits:
        raise ValueError(f"user number {user} does not fit in {settings.user_digits} digits")
    wrapped = counter % 10**settings.counter_digits
    return (f"{settings.prefix}0{user:0{settings.user_digits}d}"
            f"{wrapped:0{settings.counter_digits}d}")


def find_token(subject: str, settings: TrackingTokenSettings) -> str | None:
    """The first tracking token in ``subject``, or ``None``.

    The token is returned in canonical form: the configured spelling of whichever prefix
    matched (current or older), then the digits, so that it can be used as a look-up key.
    """
    if not subject or not isinstance(subject, str):
        return None
    match = _token_re(settings).search(subject)
    if match is None:
        return None
    return _canonical_prefix(settings, match.group("prefix")) + match.group("digits")


def strip_token(subject: str, settings: TrackingTokenSettings) -> str:
    """``subject`` without its tracking token(s), white space folded and trimmed."""
    if not subject or not isinstance(subject, str):
        return ""
    return _SPACE_RE.sub(" ", _token_re(settings).sub(" ", subject)).strip()


def _canonical_prefix(settings: TrackingTokenSettings, found: str) -> str:
    folded = found.casefold()
    for prefix in settings.prefixes:
        if prefix.casefold() == folded:
            return prefix
    return found  # unreachable in practice: the regex only matches configured prefixes
