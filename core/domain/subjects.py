"""Subject lines: reply/forward prefixes and tracking tokens.

``normalize_subject`` strips what mail clients add when replying or forwarding, in the
languages they actually use (prefix lists from the localised Outlook, Thunderbird, Apple Mail
and Gmail builds; see Wikipedia "List of email subject abbreviations"), plus the tags that mail
gateways add (``[EXTERNAL]``). It is a fixpoint of one stripping step, hence idempotent.

``smart_match_key`` is the subject as the CRM's smart matching compares it (section 9).

Tracking tokens follow the CRM's format ``<prefix><0><user number><counter>`` (reference
section 6): the prefix is matched case-insensitively and a token never matches inside a longer
word or number.
"""

from __future__ import annotations

import re
from functools import lru_cache

from core.domain.crm_settings import DEFAULT_HASH_FILTER_KEYWORDS, TrackingTokenSettings

# Reply and forward abbreviations, matched case-insensitively as whole words before a colon.
_PREFIX_WORDS = (
    # English, and what most localised clients still send
    "re",
    "fwd",
    "fw",
    # German AW/WG (Lotus Notes: Antwort); Dutch Antw/Doorst; French RE/TR; Spanish RE/RV;
    # Italian R/RIF/I; Portuguese RES/ENC
    "aw",
    "wg",
    "antwort",
    "antw",
    "doorst",
    "tr",
    "rv",
    "rif",
    "r",
    "i",
    "res",
    "enc",
    # Nordic: Danish/Norwegian/Swedish SV, VS, VB; Finnish VS, VL; Icelandic SV, FS
    "sv",
    "vs",
    "vb",
    "vl",
    "fs",
    # Polish Odp/PD; Czech Odp/PŘ; Turkish YNT/İLT; Hungarian VÁ/TOV
    "odp",
    "pd",
    "př",
    "ynt",
    "ilt",
    "İlt",
    "vá",
    "tov",
    # Greek
    "απ",
    "σχετ",
    "πρθ",
    # Russian, Hebrew, Arabic, Korean (clients localise these too)
    "отв",
    "пересл",
    "השב",
    "הועבר",
    "رد",
    "توجيه",
    "회신",
    "전달",
    # Chinese and Japanese (Outlook, Foxmail, Thunderbird localisations)
    "回复",
    "回覆",
    "答复",
    "答覆",
    "转发",
    "轉寄",
    "转寄",
    "轉發",
    "返信",
    "転送",
)

_PREFIXES = frozenset(w.casefold() for w in _PREFIX_WORDS)
# A number after the prefix: RE[2]:, Re^3:, Re(2):. ("RE 2:" is too ambiguous to strip.)
_COUNT = r"(?:\s*\[\d{1,4}\]|\^\d{1,4}|\s*\(\d{1,4}\))?"
_COLON = r"\s*[:：]"  # ASCII and full-width colon (CJK clients)
# One short word of letters, an optional count, a colon. The word is then looked up in
# _PREFIXES: much faster than one regex alternating over every language's prefixes.
_PREFIX_RE = re.compile(rf"^([^\W\d_]{{1,10}}){_COUNT}{_COLON}\s*")
# "[Fwd: original subject]" as Netscape/old Thunderbird forwarded it.
_BRACKETED_RE = re.compile(rf"^\[([^\W\d_]{{1,10}}){_COUNT}{_COLON}\s*(.*)\]$", re.DOTALL)
# Gateway tags: [EXTERNAL], *EXTERNAL*, [EXT], [Extern], [SPAM], [Suspected Spam], CAUTION:.
_TAG_RE = re.compile(
    r"^(?:[\[(*]\s*(?:external|extern|externe|externo|esterno|ext|spam|suspected spam|"
    r"possible spam|caution|warning|phishing)\s*[\])*]|(?:external|caution)\s*:)\s*",
    re.IGNORECASE,
)


def normalize_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and gateway tags, white space folded.

    Everything else, including case and non-ASCII text, is kept exactly. Never raises for any
    ``str``; ``None`` or other types give ``""``. Idempotent.
    """
    if not isinstance(subject, str):
        return ""
    return _normalize(subject)


def _normalize(subject: str) -> str:
    # str.split() and re's \s agree on what white space is (both use Py_UNICODE_ISSPACE).
    text = " ".join(subject.split())
    while True:
        if _cannot_strip(text):
            return text
        stripped = _strip_one(text)
        if stripped == text:
            return text
        text = stripped


def _cannot_strip(text: str) -> bool:
    """Fast path for most subjects: every prefix or tag either starts with a bracket or
    has its colon within the first 20 characters (longest prefix + "[9999]" + spaces)."""
    head = text[:20]
    return text[:1] not in _TAG_OPENERS and ":" not in head and "：" not in head


_TAG_OPENERS = frozenset("[(*")


def _strip_one(text: str) -> str:
    prefix = _PREFIX_RE.match(text)
    if prefix is not None and prefix.group(1).casefold() in _PREFIXES:
        return text[prefix.end() :].strip()
    tag = _TAG_RE.match(text)
    if tag is not None:
        return text[tag.end() :].strip()
    bracketed = _BRACKETED_RE.match(text)
    if bracketed is not None and bracketed.group(1).casefold() in _PREFIXES:
        return bracketed.group(2).strip()
    return text


# --- tracking tokens -------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _compile_token_re(settings: TrackingTokenSettings) -> re.Pattern[str]:
    prefixes = "|".join(re.escape(p) for p in sorted(settings.prefixes, key=len, reverse=True))
    digits = 1 + settings.user_digits + settings.counter_digits
    # Not inside a longer word or number: no word character on either side.
    return re.compile(
        rf"(?<!\w)(?P<prefix>{prefixes})(?P<digits>[0-9]{{{digits}}})(?![\w])", re.IGNORECASE
    )


class _TokenMatcher:
    """Finds tokens of one settings object. ASCII subjects (nearly all) take a fast path:
    ``str.find`` on the lower-cased subject, then a short anchored match of the digits; other
    subjects use the case-insensitive regex."""

    def __init__(self, settings: TrackingTokenSettings) -> None:
        self.settings = settings
        self.regex = _compile_token_re(settings)
        ascii_only = all(p.isascii() for p in settings.prefixes)
        # lower-cased prefix -> configured spelling; the first (current) prefix wins ties
        self.lowered: dict[str, str] = {}
        if ascii_only:
            for prefix in settings.prefixes:
                self.lowered.setdefault(prefix.lower(), prefix)
        digits = 1 + settings.user_digits + settings.counter_digits
        self.digits = re.compile(rf"[0-9]{{{digits}}}(?!\w)")
        # The last subject searched and the result: correlation looks for the token, then
        # strips it for the smart-matching key, in the same subject. One tuple: thread-safe.
        self._last: tuple[str | None, re.Match[str] | tuple[str, str] | None] = (None, None)

    def find(self, subject: str) -> re.Match[str] | tuple[str, str] | None:
        last = self._last
        if last[0] is subject:
            return last[1]
        found = self._find(subject)
        self._last = (subject, found)
        return found

    def _find(self, subject: str) -> re.Match[str] | tuple[str, str] | None:
        if not (self.lowered and subject.isascii()):
            return self.regex.search(subject)
        low = subject.lower()
        best: tuple[int, str, str] | None = None
        for lowered, prefix in self.lowered.items():
            at = low.find(lowered)
            while at != -1 and (best is None or at < best[0]):
                digits = self.digits.match(low, at + len(lowered))
                if digits is not None and (at == 0 or not _is_word(low[at - 1])):
                    best = (at, prefix, digits.group())
                    break
                at = low.find(lowered, at + 1)
        return None if best is None else (best[1], best[2])


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


# The matcher of the settings object last used, swapped whole so threads never see another's;
# hashing the settings on every call would cost more than the search itself.
_last_matcher: _TokenMatcher | None = None


def _matcher(settings: TrackingTokenSettings) -> _TokenMatcher:
    global _last_matcher
    last = _last_matcher
    if last is None or last.settings is not settings:
        last = _last_matcher = _TokenMatcher(settings)
    return last


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
    return f"{settings.prefix}0{user:0{settings.user_digits}d}{wrapped:0{settings.counter_digits}d}"


def find_token(subject: str, settings: TrackingTokenSettings) -> str | None:
    """The first tracking token in ``subject``, or ``None``.

    The token is returned in canonical form: the configured spelling of whichever prefix
    matched (current or older), then the digits, so that it can be used as a look-up key.
    """
    if not subject or not isinstance(subject, str):
        return None
    found = _matcher(settings).find(subject)
    if found is None:
        return None
    if isinstance(found, tuple):
        return found[0] + found[1]
    return _canonical_prefix(settings, found.group("prefix")) + found.group("digits")


def strip_token(subject: str, settings: TrackingTokenSettings) -> str:
    """``subject`` without its tracking token(s), white space folded and trimmed."""
    if not subject or not isinstance(subject, str):
        return ""
    matcher = _matcher(settings)
    if matcher.find(subject) is not None:
        subject = matcher.regex.sub(" ", subject)
    return " ".join(subject.split())


def _canonical_prefix(settings: TrackingTokenSettings, found: str) -> str:
    folded = found.casefold()
    for prefix in settings.prefixes:
        if prefix.casefold() == folded:
            return prefix
    return found  # unreachable in practice: the regex only matches configured prefixes


# --- smart matching keys -------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+")


def smart_match_key(
    subject: str,
    *,
    filter_keywords: str = DEFAULT_HASH_FILTER_KEYWORDS,
    tokens: TrackingTokenSettings | None = None,
    max_words: int = 20,
) -> str:
    """The subject as smart matching compares it: tokens and reply prefixes removed,
    ``hashfilterkeywords`` matches removed, then the case-folded words (the first
    ``max_words``, as the CRM hashes at most ``hashmaxcount`` subject words) sorted and joined
    by one space — the CRM compares per-word hashes, so word order does not count.

    ``""`` means the subject says nothing (empty once filtered) and must not smart-match.
    """
    return cached_smart_key(subject, compile_filter_keywords(filter_keywords), tokens, max_words)


@lru_cache(maxsize=65_536)
def cached_smart_key(
    subject: str, filter_re: re.Pattern[str], tokens: TrackingTokenSettings | None, max_words: int
) -> str:
    text = subject
    if tokens is not None and _matcher(tokens).find(subject) is not None:
        text = strip_token(subject, tokens)
    text = _normalize(text)
    if filter_re.pattern != DEFAULT_HASH_FILTER_KEYWORDS:
        text = filter_re.sub(" ", text)
    elif ":" in text:  # the default is anchored and needs a colon: one match at the start
        found = filter_re.match(text)
        if found is not None:
            text = text[found.end() :]
    return " ".join(sorted(_WORD_RE.findall(text.casefold())[:max_words]))


@lru_cache(maxsize=32)
def compile_filter_keywords(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:  # OrgSettings.from_crm already warned about it
        return re.compile(DEFAULT_HASH_FILTER_KEYWORDS, re.IGNORECASE)


def clear_caches() -> None:
    """Forget memoised subject keys (benchmarks use this to time cold look-ups)."""
    cached_smart_key.cache_clear()
