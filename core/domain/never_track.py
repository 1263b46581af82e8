"""The user's own exclusions from automatic tracking (issue 17): a "never track" list of
addresses and domains, and the conversations the user stopped tracking.

Entries of :class:`NeverTrack`: ``alice@x.com`` is that address (case-insensitive);
``x.com`` or ``@x.com`` is the domain *and its subdomains* (``lists.x.com``), because internal
lists and private mail usually live on subdomains of the one domain the user means. A domain
needs a dot, so ``com`` alone is refused. The user's own addresses are never matched.

A stopped conversation is kept as its *keys*: the Outlook conversation root
(``ConversationIndex.root``, prefix ``ti:``) and the Message-IDs of the thread known when it
was stopped (the message's own, its In-Reply-To and References, prefix ``mid:``). A later
reply shares at least one of them: Outlook keeps the Thread-Index root, other clients carry
the thread's Message-IDs in References or In-Reply-To. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.domain.conversation_index import message_id_key, message_id_keys, parse_thread_index
from core.domain.correlation import Correlation
from core.domain.model import Address, MessageHeader

__all__ = [
    "MAX_STOPPED_KEYS",
    "InvalidEntry",
    "NeverTrack",
    "NeverTrackMatch",
    "StoppedConversations",
    "conversation_keys",
    "normalise_entry",
]

#: Keys kept for stopped conversations (the oldest are forgotten past it).
MAX_STOPPED_KEYS = 5000

_LOCAL = r"[^\s@<>(),;:\"\[\]\\]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^(?:{_LABEL}\.)+{_LABEL}$")
_ADDRESS_RE = re.compile(rf"^{_LOCAL}@(?:{_LABEL}\.)+{_LABEL}$")


class InvalidEntry(ValueError):
    """A never-track entry that is neither an address nor a domain."""

    def __init__(self, entry: str) -> None:
        super().__init__(
            f"“{entry}” is neither an e-mail address (alice@example.com) "
            "nor a domain (example.com or @example.com)"
        )
        self.entry = entry


def normalise_entry(text: str) -> str:
    """The stored form: ``alice@x.com`` or ``@x.com`` (lower case, no blanks).

    :raises InvalidEntry: neither an address nor a domain with a dot.
    """
    entry = text.strip().lower().rstrip(".")
    if entry.startswith("<") and entry.endswith(">"):
        entry = entry[1:-1].strip()
    domain = entry[1:] if entry.startswith("@") else entry
    if "@" not in domain and _DOMAIN_RE.match(domain):
        return "@" + domain
    if _ADDRESS_RE.match(entry):
        return entry
    raise InvalidEntry(text.strip())


@dataclass(frozen=True, slots=True)
class NeverTrackMatch:
    """Who in a message is on the list, and the entry that matched."""

    address: str
    entry: str

    def reason_text(self) -> str:
        """The reason a person reads in the banner and the audit log."""
        text = f"Not tracked: {self.address} is on your never-track list"
        if self.entry != self.address:
            text += f" ({self.entry.removeprefix('@')})"
        return text


@dataclass(frozen=True, slots=True)
class NeverTrack:
    """Normalised entries (see the module docstring); build with :meth:`of`."""

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()  # without the "@"

    @classmethod
    def of(cls, entries: Iterable[str]) -> NeverTrack:
        """From stored or typed entries; an invalid one raises :class:`InvalidEntry`."""
        addresses: set[str] = set()
        domains: set[str] = set()
        for raw in entries:
            entry = normalise_entry(raw)
            if entry.startswith("@"):
                domains.add(entry[1:])
            else:
                addresses.add(entry)
        return cls(frozenset(addresses), frozenset(domains))

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains)

    def entry_for(self, email: str) -> str | None:
        """The entry ``email`` is caught by, or ``None``."""
        key = email.strip().lower()
        if key in self.addresses:
            return key
        domain = key.rpartition("@")[2]
        while domain:
            if domain in self.domains:
                return "@" + domain
            domain = domain.partition(".")[2]
        return None

    def match(
        self,
        message: MessageHeader,
        own: Iterable[str] = (),
        bcc: Iterable[Address] = (),
    ) -> NeverTrackMatch | None:
        """The first party on the list — sender, To, Cc, then Bcc — not one of ``own``
        (the user's addresses, case-folded)."""
        if not self:
            return None
        mine = {a.strip().lower() for a in own}
        parties = [message.sender] if message.sender is not None else []
        parties += [*message.to, *message.cc, *bcc]
        for party in parties:
            if party.key in mine or not party.key:
                continue
            entry = self.entry_for(party.key)
            if entry is not None:
                return NeverTrackMatch(party.key, entry)
        return None


def conversation_keys(message: MessageHeader) -> frozenset[str]:
    """The keys a later reply to ``message`` shares with it (see the module docstring)."""
    keys: set[str] = set()
    index = parse_thread_index(message.thread_index)
    if index is not None:
        keys.add("ti:" + index.root)
    ids = [message_id_key(message.message_id), *message_id_keys(message.in_reply_to)]
    ids += [message_id_key(r) for r in message.references]
    keys.update("mid:" + i for i in ids if i and len(i.split()) == 1)  # stored space-joined
    return frozenset(keys)


@dataclass(frozen=True, slots=True)
class StoppedConversations:
    """The conversations the user stopped tracking, each a group of keys; stored as one
    string per conversation, its keys joined by spaces (Message-ID keys hold none)."""

    groups: tuple[frozenset[str], ...] = ()

    @classmethod
    def of(cls, stored: Iterable[str]) -> StoppedConversations:
        return cls(tuple(frozenset(s.split()) for s in stored if s.split()))

    def stored(self) -> tuple[str, ...]:
        """The form :meth:`of` reads (keys sorted, so equal sets store alike)."""
        return tuple(" ".join(sorted(g)) for g in self.groups)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset().union(*self.groups)

    def __bool__(self) -> bool:
        return bool(self.groups)

    def stop(self, message: MessageHeader) -> StoppedConversations:
        """With ``message``'s conversation stopped (merged with any stopped group it shares
        a key with); the oldest groups go past :data:`MAX_STOPPED_KEYS` keys."""
        keys = conversation_keys(message)
        if not keys:
            return self
        joined = set(keys)
        kept: list[frozenset[str]] = []
        for group in self.groups:
            if group & keys:
                joined |= group
            else:
                kept.append(group)
        groups = [*kept, frozenset(joined)]
        while len(groups) > 1 and sum(len(g) for g in groups) > MAX_STOPPED_KEYS:
            groups.pop(0)
        return StoppedConversations(tuple(groups))

    def resume(self, message: MessageHeader) -> StoppedConversations:
        """Without every stopped conversation ``message`` belongs to."""
        keys = conversation_keys(message)
        return StoppedConversations(tuple(g for g in self.groups if not g & keys))

    def contains(self, message: MessageHeader, correlation: Correlation | None = None) -> bool:
        """Whether ``message`` belongs to a stopped conversation: by its own thread headers,
        or because what it correlates with (by token or smart matching too) does."""
        if not self.groups:
            return False
        keys = self.keys
        if keys & conversation_keys(message):
            return True
        if correlation is None:
            return False
        tracked = correlation.activity
        theirs = {"mid:" + tracked.message_id} if tracked.message_id else set()
        if tracked.conversation_root:
            theirs.add("ti:" + tracked.conversation_root)
        return bool(keys & theirs)
