"""Correlation: which tracked e-mail, if any, an incoming or outgoing message belongs to.

Follows the CRM's documented order (reference section 8): In-Reply-To (and References, for
clients that thread that way) → tracking token → conversation index → smart matching, each step
switchable in :class:`~core.domain.crm_settings.OrgSettings`, all beneath
``emailcorrelationenabled``. In token-only mode (``tbx_tokenonlycorrelation``) only the token
step runs. A correlated message inherits the matched e-mail's regarding record.

Shared by the client's sync engine and the CRM emulator, so neither does I/O here: tracked
e-mails are looked up through a :class:`CorrelationIndex` (in memory here, SQLite in the store).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

from core.domain.conversation_index import (
    ConversationIndex,
    ConversationIndexError,
    message_id_key,
    message_id_keys,
    parse_thread_index,
    raw_thread_index,
)
from core.domain.crm_settings import (
    DEFAULT_HASH_FILTER_KEYWORDS,
    OrgSettings,
    TrackingTokenSettings,
)
from core.domain.model import MessageHeader, RecordRef
from core.domain.subjects import (
    cached_smart_key,
    clear_caches,
    compile_filter_keywords,
    find_token,
    format_token,
    normalize_subject,
    smart_match_key,
    strip_token,
)

__all__ = [
    "Correlation",
    "CorrelationIndex",
    "CorrelationMethod",
    "Correlator",
    "ConversationIndex",
    "ConversationIndexError",
    "InMemoryCorrelationIndex",
    "SmartMatcher",
    "TrackedEmail",
    "TrackingTokenSettings",
    "clear_caches",
    "find_token",
    "format_token",
    "message_id_key",
    "message_id_keys",
    "normalize_subject",
    "smart_match_key",
    "strip_token",
]


class CorrelationMethod(enum.StrEnum):
    """How a message was matched; ``crm_value`` is the CRM's ``correlationmethod``."""

    IN_REPLY_TO = "in_reply_to"
    TOKEN = "token"
    CONVERSATION_INDEX = "conversation_index"
    SMART_MATCH = "smart_match"

    @property
    def crm_value(self) -> int:
        return _CRM_METHOD[self]

    @property
    def label(self) -> str:
        """How the method is named to a person."""
        return _LABELS[self]


_CRM_METHOD = {
    CorrelationMethod.IN_REPLY_TO: 3,
    CorrelationMethod.TOKEN: 4,
    CorrelationMethod.CONVERSATION_INDEX: 5,
    CorrelationMethod.SMART_MATCH: 6,
}
_LABELS = {
    CorrelationMethod.IN_REPLY_TO: "In-Reply-To header",
    CorrelationMethod.TOKEN: "tracking token",
    CorrelationMethod.CONVERSATION_INDEX: "Outlook conversation",
    CorrelationMethod.SMART_MATCH: "smart matching",
}


@dataclass(frozen=True, slots=True)
class TrackedEmail:
    """What correlation needs to know about one tracked e-mail activity.

    Keys are stored pre-computed (``message_id`` via :func:`message_id_key`, ``token`` in the
    canonical form of :func:`find_token`, ``conversation_root`` = ``ConversationIndex.root``,
    ``smart_key`` via :func:`smart_match_key`, ``addresses`` case-folded) so that any index
    implementation can look them up by equality. Build one with :meth:`Correlator.tracked_email`.
    """

    activity_id: str
    regarding: RecordRef | None = None
    message_id: str | None = None
    token: str | None = None
    conversation_index: str | None = None
    conversation_root: str | None = None
    smart_key: str = ""
    addresses: frozenset[str] = frozenset()
    subject: str = ""
    sent_on: datetime | None = None
    owner_id: str | None = None  # the CRM's owner of the activity, when known


@runtime_checkable
class CorrelationIndex(Protocol):
    """Look-up of tracked e-mails by the keys correlation uses.

    Keys arrive already normalised (see :class:`TrackedEmail`); implementations compare them
    by equality, except tokens, which compare case-insensitively. Sequences may be in any order.
    """

    def by_message_id(self, message_id: str) -> TrackedEmail | None:
        """The tracked e-mail whose Message-ID is ``message_id``."""
        ...

    def by_token(self, token: str) -> TrackedEmail | None:
        """The e-mail that owns ``token`` (the first one stored with it)."""
        ...

    def by_conversation_root(self, root: str) -> Sequence[TrackedEmail]:
        """Every tracked e-mail of the Outlook conversation ``root``."""
        ...

    def by_smart_key(self, key: str) -> Sequence[TrackedEmail]:
        """Every tracked e-mail whose subject has smart-matching key ``key``."""
        ...

    def add(self, email: TrackedEmail) -> None:
        """Store (or replace, by ``activity_id``) a tracked e-mail."""
        ...

    def remove(self, activity_id: str) -> None:
        """Forget a tracked e-mail (untracked or deleted); unknown ids are ignored."""
        ...


class InMemoryCorrelationIndex:
    """A :class:`CorrelationIndex` in dictionaries: for tests, the emulator and benchmarks."""

    def __init__(self, emails: Iterable[TrackedEmail] = ()) -> None:
        self._by_id: dict[str, TrackedEmail] = {}
        self._by_message_id: dict[str, TrackedEmail] = {}
        self._by_token: dict[str, list[TrackedEmail]] = {}
        self._by_root: dict[str, list[TrackedEmail]] = {}
        self._by_smart_key: dict[str, list[TrackedEmail]] = {}
        for email in emails:
            self.add(email)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterable[TrackedEmail]:
        return iter(list(self._by_id.values()))

    def get(self, activity_id: str) -> TrackedEmail | None:
        return self._by_id.get(activity_id)

    def by_message_id(self, message_id: str) -> TrackedEmail | None:
        return self._by_message_id.get(message_id)

    def by_token(self, token: str) -> TrackedEmail | None:
        owners = self._by_token.get(token.casefold())
        return owners[0] if owners else None

    def by_conversation_root(self, root: str) -> Sequence[TrackedEmail]:
        return self._by_root.get(root, ())

    def by_smart_key(self, key: str) -> Sequence[TrackedEmail]:
        return self._by_smart_key.get(key, ())

    def add(self, email: TrackedEmail) -> None:
        activity_id = email.activity_id
        if activity_id in self._by_id:
            self.remove(activity_id)
        self._by_id[activity_id] = email
        if email.message_id:
            self._by_message_id[email.message_id] = email
        if email.token:
            _append(self._by_token, email.token.casefold(), email)
        if email.conversation_root:
            _append(self._by_root, email.conversation_root, email)
        if email.smart_key:
            _append(self._by_smart_key, email.smart_key, email)

    def remove(self, activity_id: str) -> None:
        email = self._by_id.pop(activity_id, None)
        if email is None:
            return
        if email.message_id and self._by_message_id.get(email.message_id) is email:
            del self._by_message_id[email.message_id]
        if email.token:
            _discard(self._by_token, email.token.casefold(), email)
        if email.conversation_root:
            _discard(self._by_root, email.conversation_root, email)
        if email.smart_key:
            _discard(self._by_smart_key, email.smart_key, email)


def _append(table: dict[str, list[TrackedEmail]], key: str, email: TrackedEmail) -> None:
    items = table.get(key)
    if items is None:
        table[key] = [email]  # no setdefault: it would build a list for every call
    else:
        items.append(email)


def _discard(table: dict[str, list[TrackedEmail]], key: str, email: TrackedEmail) -> None:
    items = table.get(key)
    if items is None:
        return
    items[:] = [e for e in items if e is not email]
    if not items:
        del table[key]


# --- smart matching --------------------------------------------------------------------------


class SmartMatcher:
    """The CRM's smart matching over tracked e-mails (reference section 9).

    A tracked e-mail is a candidate when its subject key equals the message's and at least
    ``min_addresses`` addresses (from/to/cc) are shared. More than ``max_candidates``
    candidates means the subject is too common to tell: no match. Otherwise the newest
    candidate wins. Only ``hashdeltasubjectcount`` = 0 (exact subject) is implemented.
    """

    def __init__(
        self,
        *,
        min_addresses: int = 2,
        max_candidates: int = 20,
        filter_keywords: str = DEFAULT_HASH_FILTER_KEYWORDS,
        tokens: TrackingTokenSettings | None = None,
        max_words: int = 20,
    ) -> None:
        self.min_addresses = min_addresses
        self.max_candidates = max_candidates
        self.filter_keywords = filter_keywords
        self.tokens = tokens
        self.max_words = max_words
        self._filter = compile_filter_keywords(filter_keywords)

    @classmethod
    def from_settings(cls, org: OrgSettings) -> SmartMatcher:
        return cls(
            min_addresses=org.hash_min_address_count,
            max_candidates=org.hash_max_count,
            filter_keywords=org.hash_filter_keywords,
            tokens=org.tokens,
            max_words=org.hash_max_count,
        )

    def key(self, subject: str) -> str:
        return cached_smart_key(subject, self._filter, self.tokens, self.max_words)

    def candidates(
        self,
        subject: str,
        addresses: Iterable[str],
        tracked: CorrelationIndex | Iterable[TrackedEmail],
    ) -> list[TrackedEmail]:
        """Tracked e-mails sharing the key and enough addresses (case-folded ``addresses``)."""
        key = self.key(subject)
        if not key:
            return []
        if hasattr(tracked, "by_smart_key"):  # an index (isinstance on a Protocol is slow)
            pool: Iterable[TrackedEmail] = tracked.by_smart_key(key)
        else:
            pool = (t for t in tracked if t.smart_key == key)
        return self.sharing_addresses(pool, addresses)

    def sharing_addresses(
        self, pool: Iterable[TrackedEmail], addresses: Iterable[str]
    ) -> list[TrackedEmail]:
        """Those of ``pool`` that share at least ``min_addresses`` of ``addresses``."""
        wanted = frozenset(a.strip().lower() for a in addresses)
        need = self.min_addresses
        return [t for t in pool if len(wanted & t.addresses) >= need]

    def choose(self, found: Sequence[TrackedEmail]) -> TrackedEmail | None:
        """The newest candidate, or none when there are too many to tell."""
        if not found or len(found) > self.max_candidates:
            return None
        return _newest(found)

    def match(
        self,
        subject: str,
        addresses: Iterable[str],
        tracked: CorrelationIndex | Iterable[TrackedEmail],
    ) -> TrackedEmail | None:
        return self.choose(self.candidates(subject, addresses, tracked))


def _newest(emails: Sequence[TrackedEmail]) -> TrackedEmail:
    """The most recent e-mail; undated ones count as older, ties go to the last stored."""
    best = emails[-1]
    for email in reversed(emails):
        if email.sent_on is not None and (best.sent_on is None or _later(email, best)):
            best = email
    return best


def _later(a: TrackedEmail, b: TrackedEmail) -> bool:
    try:
        return a.sent_on > b.sent_on  # type: ignore[operator]
    except TypeError:  # naive vs aware datetimes: do not guess
        return False


# --- correlator ------------------------------------------------------------------------------


class Correlation(NamedTuple):
    """A message matched to a tracked e-mail. ``evidence`` is what matched: the Message-ID,
    the token, the conversation root or the smart-matching key. (A named tuple: immutable and
    made once per correlated message, so it must be cheap.)"""

    method: CorrelationMethod
    activity: TrackedEmail
    evidence: str

    @property
    def regarding(self) -> RecordRef | None:
        """The regarding record a correlated message inherits."""
        return self.activity.regarding

    @property
    def sets_parent(self) -> bool:
        """The CRM sets ``parentactivityid`` only for In-Reply-To and conversation index."""
        return self.method in (CorrelationMethod.IN_REPLY_TO, CorrelationMethod.CONVERSATION_INDEX)

    def describe(self) -> str:
        """One sentence for a person, e.g. "Reply to tracked e-mail CRM:0010023 (tracking
        token)"."""
        if self.method is CorrelationMethod.TOKEN:
            what = self.evidence
        elif self.activity.subject:
            what = f"“{self.activity.subject}”"
        else:
            what = self.activity.activity_id
        return f"Reply to tracked e-mail {what} ({self.method.label})"


class Correlator:
    """Correlates messages against an index of tracked e-mails under one org's settings."""

    def __init__(self, org_settings: OrgSettings, index: CorrelationIndex) -> None:
        self.settings = org_settings
        self.index = index
        self.smart = SmartMatcher.from_settings(org_settings)
        self._tokens = org_settings.tokens
        # Bound once: the steps run for every message, most of them for nothing.
        self._by_message_id = index.by_message_id
        self._index_by_token = index.by_token
        self._by_root = index.by_conversation_root
        self._by_smart_key = index.by_smart_key
        smart = self.smart
        self._smart_args = (smart._filter, smart.tokens, smart.max_words)  # noqa: SLF001
        self._steps = self._enabled_steps(org_settings)

    def _enabled_steps(
        self,
        org: OrgSettings,
    ) -> tuple[Callable[[MessageHeader], Correlation | None], ...]:
        """The steps in the CRM's order, decided once (settings are immutable)."""
        if not org.correlation_enabled:
            return ()
        if org.token_only:
            return (self._by_token,)
        wanted = (
            (org.correlate_in_reply_to, self._by_headers),
            (org.correlate_tracking_token, self._by_token),
            (org.correlate_conversation_index, self._by_conversation),
            (org.smart_matching, self._by_smart_match),
        )
        return tuple(step for on, step in wanted if on)

    def find_token(self, message: MessageHeader) -> str | None:
        """The tracking token in the message's subject (canonical form), if any."""
        return find_token(message.subject, self._tokens)

    def correlate(self, message: MessageHeader) -> Correlation | None:
        """The tracked e-mail ``message`` belongs to, or ``None``. Never raises for bad
        headers: a malformed Thread-Index or Message-ID just skips that step."""
        for step in self._steps:
            found = step(message)
            if found is not None:
                return found
        return None

    def _by_headers(self, message: MessageHeader) -> Correlation | None:
        lookup = self._by_message_id
        irt = message.in_reply_to
        if irt:
            for key in message_id_keys(irt):  # the usual single <id>: returned as it is
                email = lookup(key)
                if email is not None:
                    return Correlation(CorrelationMethod.IN_REPLY_TO, email, key)
        refs = message.references
        if not refs:
            return None
        # References lists the thread oldest first: the nearest ancestor is the last one.
        for ref in reversed(refs):
            ref_key = message_id_key(ref)
            if ref_key is not None:
                email = lookup(ref_key)
                if email is not None:
                    return Correlation(CorrelationMethod.IN_REPLY_TO, email, ref_key)
        return None

    def _by_token(self, message: MessageHeader) -> Correlation | None:
        token = find_token(message.subject, self._tokens)
        if token is None:
            return None
        email = self._index_by_token(token)
        return None if email is None else Correlation(CorrelationMethod.TOKEN, email, token)

    def _by_conversation(self, message: MessageHeader) -> Correlation | None:
        if not message.thread_index:
            return None
        index = parse_thread_index(message.thread_index)
        if index is None:
            return None
        thread = self._by_root(index.root)
        if not thread:
            return None
        # Prefer the parent, then the nearest tracked ancestor, then the newest of the thread.
        best: TrackedEmail | None = None
        best_len = -1
        raw = index.raw
        for email in thread:
            other = raw_thread_index(email.conversation_index)
            if len(other) >= len(raw) or not raw.startswith(other):
                continue
            if len(other) > best_len:
                best, best_len = email, len(other)
        if best is None:
            own = message_id_key(message.message_id)
            best = _newest([e for e in thread if e.message_id != own] or list(thread))
        return Correlation(CorrelationMethod.CONVERSATION_INDEX, best, index.root)

    def _by_smart_match(self, message: MessageHeader) -> Correlation | None:
        key = cached_smart_key(message.subject, *self._smart_args)  # = self.smart.key(…)
        pool = self._by_smart_key(key) if key else ()
        if not pool:  # most mail: no tracked e-mail has this subject, skip the addresses
            return None
        email = self.smart.choose(self.smart.sharing_addresses(pool, _address_keys(message)))
        if email is None:
            return None
        return Correlation(CorrelationMethod.SMART_MATCH, email, email.smart_key)

    # -- building index entries -------------------------------------------------------------

    def tracked_email(
        self, message: MessageHeader, activity_id: str, regarding: RecordRef | None = None
    ) -> TrackedEmail:
        """The index entry for ``message`` once tracked as activity ``activity_id``; the
        token found in the subject, if any, is recorded."""
        index = parse_thread_index(message.thread_index)
        return TrackedEmail(
            activity_id=activity_id,
            regarding=regarding,
            message_id=message_id_key(message.message_id),
            token=self.find_token(message),
            conversation_index=index.header if index else None,
            conversation_root=index.root if index else None,
            smart_key=self.smart.key(message.subject),
            addresses=frozenset(_address_keys(message)),
            subject=normalize_subject(strip_token(message.subject, self._tokens)),
            sent_on=message.date,
        )

    def crm_email(
        self,
        activity_id: str,
        *,
        subject: str = "",
        message_id: str | None = None,
        token: str | None = None,
        conversation_index: str | None = None,
        addresses: Iterable[str] = (),
        sent_on: datetime | None = None,
        regarding: RecordRef | None = None,
        owner_id: str | None = None,
    ) -> TrackedEmail:
        """The index entry for an e-mail activity read from the CRM (its own columns rather
        than a local message's headers): the same keys, so both kinds are found alike. The
        keys depend on the settings: see :meth:`key_settings`."""
        index = parse_thread_index(conversation_index) if conversation_index else None
        canonical = find_token(token, self._tokens) if token else None
        smart = self.settings.smart_matching  # keys only smart matching reads: skipped when off
        return TrackedEmail(
            activity_id=activity_id,
            regarding=regarding,
            message_id=message_id_key(message_id),
            token=canonical or find_token(subject, self._tokens),
            conversation_index=index.header if index else None,
            conversation_root=index.root if index else None,
            smart_key=self.smart.key(subject) if smart else "",
            addresses=frozenset(a.strip().casefold() for a in addresses if a.strip())
            if smart
            else frozenset(),
            subject=normalize_subject(strip_token(subject, self._tokens)),
            sent_on=sent_on,
            owner_id=owner_id,
        )

    def key_settings(self) -> str:
        """What the stored keys of :meth:`crm_email` depend on: when it changes, e-mails read
        from the CRM must be read again (smart matching switched on, a new token prefix)."""
        org = self.settings
        smart = (org.hash_filter_keywords, org.hash_max_count) if org.smart_matching else None
        return repr((org.tokens, smart))

    def track(
        self, message: MessageHeader, activity_id: str, regarding: RecordRef | None = None
    ) -> TrackedEmail:
        """Record ``message`` as tracked in the index and return the entry."""
        email = self.tracked_email(message, activity_id, regarding)
        self.index.add(email)
        return email


def _address_keys(message: MessageHeader) -> list[str]:
    keys = [a.key for a in message.to]
    keys.extend(a.key for a in message.cc)
    if message.sender is not None:
        keys.append(message.sender.key)
    return keys
