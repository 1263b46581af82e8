"""Value types shared by every layer of Trackbox.

These are plain, immutable dataclasses with no behaviour beyond normalisation, so that the
mail backends, the store, the tracking rules, the CRM client and the GUI can pass them around
without importing each other. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox address as seen in a header: display name plus e-mail."""

    email: str
    name: str = ""

    @property
    def key(self) -> str:
        """Case-folded address used for look-ups (local parts are matched case-insensitively,
        as Dynamics does)."""
        return self.email.strip().lower()

    def display(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class FolderRole(enum.StrEnum):
    """Well-known folder roles; custom folders have no role."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    OUTBOX = "outbox"
    DELETED = "deleted"
    JUNK = "junk"


@dataclass(frozen=True, slots=True)
class Folder:
    """A mailbox folder. ``path`` is the backend-neutral path with ``/`` separators
    (``Inbox/Projects``), unique within a mailbox."""

    path: str
    name: str
    role: FolderRole | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class MailRef:
    """Where a message lives on the mail server: folder path + backend-specific id
    (IMAP UID as text, EWS ItemId, Maildir key)."""

    folder: str
    uid: str


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """Everything the list, the store and the tracking rules need, without the body.

    ``message_id`` is the RFC 5322 Message-ID *with* angle brackets, as sent; it is the
    idempotency key for promotion to the CRM.
    """

    ref: MailRef
    message_id: str
    subject: str = ""
    sender: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    date: datetime | None = None
    size: int = 0
    has_attachments: bool = False
    is_read: bool = False
    thread_index: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    tracked_marker: str | None = None
    parse_errors: tuple[str, ...] = ()


class TrackState(enum.StrEnum):
    """What the icon column shows for a message."""

    NOT_TRACKED = "not_tracked"
    PENDING = "pending"
    TRACKED = "tracked"
    TRACKED_BY_OTHER = "tracked_by_other"
    FAILED = "failed"
    NEEDS_ATTENTION = "needs_attention"
    #: New mail whose decision needs an answer only the CRM has (a token, a reply or a
    #: conversation the local index does not know) while the CRM cannot be reached.
    UNDECIDED = "undecided"


#: States that say "the CRM has it" (needs attention: tracked, and flagged for review); the
#: tracked-state refresh changes them when the CRM says otherwise.
SHOWN_TRACKED = (TrackState.TRACKED, TrackState.TRACKED_BY_OTHER, TrackState.NEEDS_ATTENTION)

#: States in which the CRM has the mail, or is about to: Untrack applies to them (to no other),
#: and Set Regarding changes their regarding record instead of tracking them.
UNTRACKABLE_STATES = frozenset(
    {
        TrackState.TRACKED,
        TrackState.TRACKED_BY_OTHER,
        TrackState.PENDING,
        TrackState.NEEDS_ATTENTION,
    }
)


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A CRM record: logical entity name (``contact``, ``account``, ``lead``, ``opportunity``,
    ``incident``, ``systemuser``, ``queue``, ``equipment``, ``email`` …) and its GUID."""

    entity: str
    id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a message is or is not tracked: a stable machine code plus one sentence a person
    understands (shown in the tracking banner and kept in the audit log)."""

    code: str
    text: str


@dataclass(frozen=True, slots=True)
class Party:
    """A resolved (or unresolved) participant of an e-mail: the address used and the CRM
    records it resolved to (empty when unresolved)."""

    address: Address
    role: str  # "from", "to", "cc", "bcc"
    records: tuple[RecordRef, ...] = ()

    @property
    def resolved(self) -> bool:
        return bool(self.records)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of the tracking rules for one message."""

    track: bool
    reason: Reason
    regarding: RecordRef | None = None
    parties: tuple[Party, ...] = ()
    needs_review: bool = False
    attachments_dropped: bool = False
    queue_rules_eligible: bool = True
    crm_reason_code: int = -1
    correlated_activity: str | None = None
    correlation_method: str | None = None
    unresolved: tuple[Address, ...] = field(default=())
