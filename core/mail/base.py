"""The one interface every mailbox backend implements (Maildir, IMAP/SMTP, Exchange EWS).

Terms used throughout ``core/mail``:

FOLDER PATH
    Backend-neutral folder path with ``/`` separators (``Inbox/Projects/Fabrikam``); the Inbox
    is always ``Inbox``. ``Folder.path`` values from :meth:`MailBackend.folders` are what the
    other methods accept.
REF
    :class:`core.domain.model.MailRef`: folder path + an opaque backend id (IMAP
    ``uidvalidity:uid``, Maildir key, EWS ItemId). A ref is only valid in the folder it names;
    ``move`` returns a new one.
SYNC STATE
    An opaque string the caller stores per folder and hands back to :meth:`MailBackend.sync`.
    ``None`` means "never synced". Each :class:`SyncBatch` carries the state that is valid
    *after* that batch is applied, so a caller that commits batch and state together can stop
    at any point (crash, cancel) and resume without duplicates or gaps.

Modelled on vdirsyncer's ``storage/base.py``: one ABC that defines its terms, and a contract
test suite (``tests/mail/test_contract.py``) that every backend passes.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from core.domain.model import Folder, MailRef, MessageHeader

#: IMAP keyword / Maildir keyword that marks a message as tracked in the CRM. Other devices
#: (Outlook with the CRM add-in, another Trackbox) see it as well.
TRACKED_KEYWORD = "$CRMTracked"
#: EWS category that marks a tracked message, as the Dynamics CRM for Outlook add-in showed it.
TRACKED_CATEGORY = "Tracked to CRM"
#: Pseudo-keyword in :attr:`MessageHeader.keywords` / :attr:`FlagChange.keywords` of a message
#: flagged for follow-up (IMAP ``\\Flagged``, Maildir ``F``, the EWS and Graph flag): the store
#: keeps it with the keywords, so no column is needed.
FLAGGED_KEYWORD = "\\Flagged"


class MailError(Exception):
    """Root of every error raised by a mail backend.

    ``detail`` says what we were doing; ``server_says`` holds the server's own words (IMAP
    response text, SOAP fault, OS error) so the UI can show them verbatim. Wording for people
    belongs to ``desktop/``, not here.
    """

    def __init__(
        self,
        detail: str,
        *,
        server_says: str = "",
        ref: MailRef | None = None,
        folder: str | None = None,
    ) -> None:
        super().__init__(detail if not server_says else f"{detail}: {server_says}")
        self.detail = detail
        self.server_says = server_says
        self.ref = ref
        self.folder = folder


class MailUnavailable(MailError):
    """The server cannot be reached or is busy: retry later (offline mode)."""


class MailAuthError(MailError):
    """The server refused our credentials: ask the user, do not retry blindly."""


class MailProtocolError(MailError):
    """The server answered something we cannot use (unexpected response, refused command)."""


class MailNotFound(MailProtocolError):
    """The folder or message named does not exist (any more) on the server."""


@dataclass(frozen=True, slots=True)
class FlagChange:
    """A message whose read flag, keywords/categories or tracked marker changed.

    Only the mutable parts of a message: the rest of a :class:`MessageHeader` never changes.
    ``tracked_marker`` follows :attr:`MessageHeader.tracked_marker`.
    """

    ref: MailRef
    is_read: bool
    keywords: tuple[str, ...] = ()
    tracked_marker: str | None = None


@dataclass(frozen=True, slots=True)
class SyncBatch:
    """One step of a folder sync.

    Apply in this order: if ``reset``, forget every ref the caller knows in this folder (the
    server invalidated them, e.g. a new IMAP UIDVALIDITY or an expired EWS sync state: the
    folder is then listed again from scratch in ``added``, so nothing is duplicated; where the
    backend still knows the void refs, e.g. IMAP from its old state, they are in ``removed``
    too); then ``removed``, ``changed``, ``added``. Then store ``state`` for the folder.
    Only the first batch carries ``reset``; ``removed`` and ``changed`` may come in any batch.
    """

    state: str
    added: tuple[MessageHeader, ...] = ()
    changed: tuple[FlagChange, ...] = ()
    removed: tuple[MailRef, ...] = ()
    reset: bool = False

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed or self.reset)


class MailBackend(abc.ABC):
    """A mailbox: folders, incremental header sync, raw MIME access, send and move.

    Methods block (network I/O); callers run them on a worker. A backend instance is used by
    one thread at a time. Every error raised is a :class:`MailError`.
    """

    @abc.abstractmethod
    def folders(self) -> list[Folder]:
        """The folder tree, parents before children, with well-known roles set."""

    @abc.abstractmethod
    def sync(self, folder: str, state: str | None, batch_size: int = 500) -> Iterator[SyncBatch]:
        """What changed in ``folder`` since ``state`` (``None``: everything is new).

        Yields batches of at most ``batch_size`` added headers (streaming: a 100,000-message
        first sync never holds all headers in memory) and always yields at least one batch, so
        the last batch's ``state`` is the new state even when nothing changed. A message the
        parser cannot read fully still comes as a header with ``parse_errors`` set.
        """

    @abc.abstractmethod
    def create_folder(self, path: str) -> Folder:
        """Create ``path`` (and missing parents); an existing folder is not an error."""

    @abc.abstractmethod
    def fetch(self, ref: MailRef) -> bytes:
        """The raw RFC 5322 message. Raises :class:`MailNotFound` if it is gone."""

    @abc.abstractmethod
    def send(self, mime: bytes) -> None:
        """Send a complete message (recipients from To/Cc/Bcc; Bcc is stripped) and keep a
        copy in the Sent folder unless the server already does."""

    @abc.abstractmethod
    def append(self, folder: str, mime: bytes, *, is_read: bool = True) -> MailRef:
        """Store a message in ``folder`` (drafts, imported mail) and return its ref."""

    @abc.abstractmethod
    def move(self, ref: MailRef, folder: str) -> MailRef:
        """Move a message to ``folder``; returns the new ref."""

    @abc.abstractmethod
    def delete(self, ref: MailRef) -> None:
        """Delete a message permanently (callers move to Deleted Items for a soft delete)."""

    @abc.abstractmethod
    def set_read(self, ref: MailRef, read: bool) -> None:
        """Set or clear the read flag."""

    def copy(self, ref: MailRef, folder: str) -> MailRef:
        """Copy a message to ``folder``; returns the copy's ref. The default fetches and
        appends (read state kept); backends with a server-side copy override it."""
        return self.append(folder, self.fetch(ref), is_read=True)

    def set_flagged(self, ref: MailRef, flagged: bool) -> None:
        """Flag a message for follow-up, or clear the flag (reported back by :meth:`sync` as
        :data:`FLAGGED_KEYWORD` in the keywords)."""
        raise MailProtocolError("this mailbox cannot flag messages", ref=ref)

    @abc.abstractmethod
    def set_tracked(self, ref: MailRef, activity_id: str | None) -> None:
        """Mark (``activity_id`` given) or unmark (``None``) a message as tracked in the CRM,
        on the server where it can hold it, so that other devices see it."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call twice."""

    def folder(self, role: str) -> Folder:
        """The folder with a well-known role (``inbox``, ``sent``, …)."""
        for f in self.folders():
            if f.role is not None and f.role.value == role:
                return f
        raise MailNotFound(f"no folder with role {role!r}")

    def __enter__(self) -> MailBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def folder_path(parts: list[str]) -> str:
    """A folder's neutral path from its names, top first ("/" inside a name is kept apart)."""
    return "/".join(p.replace("/", "\u2215") for p in parts)


def tree_order(path: str) -> tuple[bool, list[str]]:
    """Sort key of folder paths: Inbox and its subfolders first, then the rest; parents
    before their children."""
    return path.split("/")[0] != "Inbox", path.casefold().split("/")


def role_for_name(name: str) -> str | None:
    """Well-known role of a top-level folder from its (localised) name, for servers without
    SPECIAL-USE and for Maildir. Returns the :class:`core.domain.model.FolderRole` value or None."""
    return _ROLE_NAMES.get(name.strip().casefold())


_ROLE_NAMES: dict[str, str] = {
    "inbox": "inbox",
    "sent": "sent",
    "sent items": "sent",
    "sent messages": "sent",
    "sent mail": "sent",
    "gesendete elemente": "sent",
    "éléments envoyés": "sent",
    "drafts": "drafts",
    "draft": "drafts",
    "entwürfe": "drafts",
    "brouillons": "drafts",
    "outbox": "outbox",
    "postausgang": "outbox",
    "boîte d'envoi": "outbox",
    "deleted items": "deleted",
    "trash": "deleted",
    "deleted": "deleted",
    "deleted messages": "deleted",
    "gelöschte elemente": "deleted",
    "corbeille": "deleted",
    "junk": "junk",
    "junk e-mail": "junk",
    "junk email": "junk",
    "spam": "junk",
    "junk-e-mail": "junk",
    "courrier indésirable": "junk",
}
