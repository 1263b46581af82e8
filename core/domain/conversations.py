"""Conversations: which messages of a folder belong together, and what to say about one.

The grouping rules, strongest first (as Outlook and Thunderbird thread mail):

1. **Thread-Index.** Messages whose ``Thread-Index`` has the same 22-byte header block
   (``ConversationIndex.root``) are one conversation, whatever their subjects say. A value
   that does not parse is ignored (the message falls through to the other rules).
2. **References / In-Reply-To.** A message joins every Message-ID it names and every message
   that names the same ones (union-find over Message-IDs), so a reply whose parent is missing
   from the folder still joins its siblings through any shared reference. At most
   :data:`MAX_REFERENCES` references per message are used (the first, which names the
   thread's start, and the last ones, which name its parents): a hostile header cannot make
   the work grow without bound.
3. **Subject.** Only for replies and forwards: a message whose subject carried a reply or
   forward prefix (``RE:``, ``AW:``, ``Fwd:`` …, see :mod:`core.domain.subjects`) joins the
   message before it with the same normalised subject (case-folded) when it is at most
   :data:`SUBJECT_WINDOW` seconds (30 days) later. Subjects that say nothing
   (:func:`is_trivial_subject`: under four letters or digits, or a filler such as "hi",
   "test", "question") and undated messages never join by subject. Two mails that are not
   replies ("Weekly report", every week) stay apart.

The rules combine: a conversation is a connected set under all three. Everything is one pass
of union-find plus one sort per subject, O(n log n) for n messages; no Qt, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.domain.conversation_index import (
    CHILD_LEN,
    HEADER_LEN,
    message_id_key,
    message_id_keys,
    parse_thread_index,
)
from core.domain.model import TrackState
from core.domain.subjects import normalize_subject

#: Replies join by subject at most this long after the message before them (30 days).
SUBJECT_WINDOW = 30 * 86_400.0
#: References used per message: the first one and the last ``MAX_REFERENCES - 1``.
MAX_REFERENCES = 200
#: Fewer letters or digits than this and a subject says nothing.
MIN_SUBJECT_CHARS = 4
#: Subjects too common to say that two mails are one conversation.
FILLER_SUBJECTS = frozenset(
    {"hi", "hello", "hey", "test", "thanks", "thank you", "question", "fyi", "info", "update"}
    | {"no subject", "(no subject)", "meeting", "call", "hallo", "bonjour", "urgent"}
)

_ENOUGH_CHARS = re.compile(rf"\w(?:\W*\w){{{MIN_SUBJECT_CHARS - 1}}}")
_MAX_THREAD_INDEX = 4096  # as core.domain.conversation_index: longer is not a real one

#: States that count as "tracked" in a conversation's summary (the CRM has the mail).
TRACKED_STATES = frozenset(
    {TrackState.TRACKED, TrackState.TRACKED_BY_OTHER, TrackState.NEEDS_ATTENTION}
)
#: States that count as "pending" (the CRM is about to have it, or must decide first).
PENDING_STATES = frozenset({TrackState.PENDING, TrackState.UNDECIDED})


@dataclass(frozen=True, slots=True)
class ThreadFacts:
    """What grouping and a conversation's summary need of one stored message."""

    row_id: int
    message_id: str = ""
    thread_index: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str = ""
    date_ts: float | None = None
    is_read: bool = True
    track_state: TrackState = TrackState.NOT_TRACKED
    regarding: str | None = None  # the regarding record's name, when tracked regarding one


class Coverage(enum.StrEnum):
    """How much of a conversation is tracked (the conversation row's state icon)."""

    TRACKED = "tracked"
    PARTLY = "partly_tracked"
    NOT_TRACKED = "not_tracked"


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation: its messages newest first and what its list row shows."""

    messages: tuple[ThreadFacts, ...]  # newest first (undated last)
    subject: str  # the topic: the oldest message's normalised subject
    newest: float | None
    unread: int
    tracked: int
    pending: int
    failed: int

    @property
    def key(self) -> int:
        """A stable name for the conversation: its smallest row id (kept while that message
        stays), so a regrouping keeps expanded and selected conversations."""
        return min(m.row_id for m in self.messages)

    @property
    def row_ids(self) -> tuple[int, ...]:
        return tuple(m.row_id for m in self.messages)

    @property
    def count(self) -> int:
        return len(self.messages)

    @property
    def not_tracked(self) -> int:
        return self.count - self.tracked - self.pending - self.failed

    @property
    def coverage(self) -> Coverage:
        if self.tracked == self.count:
            return Coverage.TRACKED
        return Coverage.PARTLY if self.tracked or self.pending else Coverage.NOT_TRACKED


# --- grouping --------------------------------------------------------------------------------


def is_trivial_subject(normalised: str) -> bool:
    """Whether a normalised subject is too empty or common to join mails by."""
    text = normalised.casefold().strip()
    return _ENOUGH_CHARS.search(text) is None or text in FILLER_SUBJECTS


class _UnionFind:
    """Union-find over 0..n-1 with path halving and union by size; grows on demand."""

    __slots__ = ("parent", "size")

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def add(self) -> int:
        self.parent.append(len(self.parent))
        self.size.append(1)
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]


def _references(message: ThreadFacts) -> list[str]:
    refs = list(message.references)
    if len(refs) > MAX_REFERENCES:
        refs = [refs[0], *refs[-(MAX_REFERENCES - 1) :]]
    keys = [k for ref in refs if (k := message_id_key(ref)) is not None]
    keys.extend(message_id_keys(message.in_reply_to)[:MAX_REFERENCES])
    return keys


def _thread_root(value: str | None) -> bytes | None:
    """The 22-byte header block of a valid Thread-Index (``ConversationIndex.root`` as bytes),
    decoded without building the index: the same checks, a third of the time."""
    if not value:
        return None
    if len(value) > _MAX_THREAD_INDEX:
        return None
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        index = parse_thread_index(value)  # folded white space, or not base64 at all
        raw = index.raw if index is not None else b""
    if len(raw) < HEADER_LEN or (len(raw) - HEADER_LEN) % CHILD_LEN or raw[0] != 1:
        return None
    return raw[:HEADER_LEN]


def _own_key(message_id: str) -> str | None:
    """The message's own Message-ID key; stored ones are nearly always ``<id>`` already."""
    if message_id[:1] == "<" and message_id[-1:] == ">" and message_id.count("<") == 1:
        return message_id if " " not in message_id else message_id_key(message_id)
    return message_id_key(message_id)


def _join_by_headers(messages: Sequence[ThreadFacts], uf: _UnionFind) -> None:
    """Rules 1 and 2: a message is joined to the node of its Thread-Index root and of each
    Message-ID it has or names; the first message with a key is that key's node (a key only
    named so far gets a node of its own)."""
    nodes: dict[str | bytes, int] = {}
    union, add, get = uf.union, uf.add, nodes.get
    for i, message in enumerate(messages):
        root = _thread_root(message.thread_index) if message.thread_index else None
        keys: list[str | bytes] = [] if root is None else [root]
        own = _own_key(message.message_id)
        if own is not None:
            keys.append(own)
        if message.references or message.in_reply_to:
            keys.extend(_references(message))
        for key in keys:
            found = get(key)
            if found is None:
                if key is root or key is own:
                    nodes[key] = i
                    continue
                found = nodes[key] = add()
            union(i, found)


def _join_by_subject(messages: Sequence[ThreadFacts], uf: _UnionFind, window: float) -> None:
    """Rule 3: a reply joins the message before it with the same subject, within ``window``."""
    by_subject: dict[str, list[tuple[float, int, bool]]] = {}
    topics: dict[str, tuple[str, bool] | None] = {}  # subject -> (key, is a reply); subjects repeat
    for i, message in enumerate(messages):
        if message.date_ts is None:
            continue
        subject = message.subject
        if subject not in topics:
            topic = normalize_subject(subject)
            reply = topic != " ".join(subject.split())
            topics[subject] = None if is_trivial_subject(topic) else (topic.casefold(), reply)
        known = topics[subject]
        if known is not None:
            by_subject.setdefault(known[0], []).append((message.date_ts, i, known[1]))
    for entries in by_subject.values():
        if len(entries) < 2:
            continue
        entries.sort()
        for (before, i, _), (when, j, is_reply) in zip(entries, entries[1:], strict=False):
            if is_reply and when - before <= window:
                uf.union(i, j)


def group_conversations(
    messages: Sequence[ThreadFacts], *, subject_window: float = SUBJECT_WINDOW
) -> list[Conversation]:
    """The conversations of ``messages``, newest conversation first (see the module's rules).

    Every message is in exactly one conversation; a message alone is a conversation of one.
    """
    uf = _UnionFind(len(messages))
    _join_by_headers(messages, uf)
    _join_by_subject(messages, uf, subject_window)
    groups: dict[int, list[ThreadFacts]] = {}
    for i, message in enumerate(messages):
        groups.setdefault(uf.find(i), []).append(message)
    conversations = [summarise(members) for members in groups.values()]
    conversations.sort(key=_newest_first)
    return conversations


def _newest_first(conversation: Conversation) -> tuple[bool, float, int]:
    newest = conversation.newest
    return (newest is None, -(newest or 0.0), -conversation.key)


def _message_order(message: ThreadFacts) -> tuple[bool, float, int]:
    return (message.date_ts is None, -(message.date_ts or 0.0), -message.row_id)


def summarise(members: Iterable[ThreadFacts]) -> Conversation:
    """A conversation of these messages: ordered newest first, counted."""
    ordered = tuple(members)
    if len(ordered) > 1:
        ordered = tuple(sorted(ordered, key=_message_order))
    if not ordered:
        raise ValueError("a conversation has at least one message")
    unread = tracked = pending = failed = 0
    for m in ordered:
        state = m.track_state
        unread += not m.is_read
        tracked += state in TRACKED_STATES
        pending += state in PENDING_STATES
        failed += state is TrackState.FAILED
    newest = ordered[0].date_ts
    oldest = ordered[-1]
    if newest is not None and oldest.date_ts is None:  # undated ones sort last
        oldest = next(m for m in reversed(ordered) if m.date_ts is not None)
    return Conversation(
        messages=ordered,
        subject=normalize_subject(oldest.subject),
        newest=newest,
        unread=unread,
        tracked=tracked,
        pending=pending,
        failed=failed,
    )


# --- what the banner says --------------------------------------------------------------------

#: Regarding records a banner names before "and N more".
SHOWN_REGARDING = 3


def banner_text(conversation: Conversation) -> str:
    """What the reading pane's banner says of a conversation row, e.g. "Conversation of 5
    messages: 3 tracked (regarding Contoso deal), 2 not tracked"."""
    n = conversation.count
    parts = []
    if conversation.tracked:
        parts.append(f"{conversation.tracked} tracked{_regarding(conversation)}")
    if conversation.pending:
        parts.append(f"{conversation.pending} pending")
    if conversation.failed:
        parts.append(f"{conversation.failed} failed")
    if conversation.not_tracked:
        parts.append(f"{conversation.not_tracked} not tracked")
    if conversation.tracked == n:
        parts[0] = ("all tracked" if n > 1 else "tracked") + _regarding(conversation)
    elif conversation.not_tracked == n:
        parts = ["none tracked" if n > 1 else "not tracked"]
    noun = "message" if n == 1 else "messages"
    return f"Conversation of {n:,} {noun}: " + ", ".join(parts)


def _regarding(conversation: Conversation) -> str:
    """ " (regarding A, B and 2 more)" over the tracked messages' records, most used first;
    tracked mail without a record says so."""
    tracked = [m for m in conversation.messages if m.track_state in TRACKED_STATES]
    names = Counter(m.regarding for m in tracked if m.regarding)
    if not names:
        return ""
    shown = [name for name, _ in names.most_common(SHOWN_REGARDING)]
    text = ", ".join(shown)
    if len(names) > SHOWN_REGARDING:
        text += f" and {len(names) - SHOWN_REGARDING} more"
    without = sum(1 for m in tracked if not m.regarding)
    if without:
        text += f"; {without} without a regarding record"
    return f" (regarding {text})"
