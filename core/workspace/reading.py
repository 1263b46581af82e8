"""What the reading pane shows for one message: headers, safe body, attachments, and the
tracking banner's facts (state, regarding, reason, unresolved addresses)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from core.domain.html_sanitize import count_blocked_resources, sanitize_html
from core.domain.model import Address, MessageHeader, Reason, RecordRef, TrackState
from core.domain.resolution import Resolver, unresolved_addresses
from core.mail.attachment_names import safe_filename
from core.mail.display import DisplayBody
from core.mail.parse import ParsedMessage

if TYPE_CHECKING:
    from core.store import MessageRow, Store


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """One attachment as listed: ``filename`` is the sender's, ``safe_name`` what it is shown
    and saved as (``core.mail.attachment_names``); ``index`` finds its bytes again."""

    filename: str
    content_type: str
    size: int
    index: int = 0  # position among the parsed message's attachments (inline ones included)
    safe_name: str = ""

    @property
    def name(self) -> str:
        return self.safe_name or safe_filename(self.filename, self.content_type)


#: What :meth:`AttachmentFiles.save_all` does with a name that exists in the folder: leave it
#: and report it ("new"), replace it, or save beside it as ``name (2).ext`` ("keep_both").
ExistingFiles = Literal["new", "replace", "keep_both"]


@dataclass(frozen=True, slots=True)
class SavedFiles:
    """What a save did: the files written, and the attachments not saved because a file of
    that name exists (mode "new"), by index and the path they would have had."""

    saved: tuple[Path, ...] = ()
    existing: tuple[tuple[int, Path], ...] = ()


class AttachmentFiles(Protocol):
    """One message's attachments as files. Every method reads the message (cache or mailbox)
    and writes files: call it on a worker, never on the GUI thread."""

    def payload(self, index: int) -> bytes: ...

    def save(self, index: int, path: Path, *, replace: bool = False) -> SavedFiles: ...

    def save_all(
        self, folder: Path, indexes: tuple[int, ...] | None = None, existing: ExistingFiles = "new"
    ) -> SavedFiles: ...

    def open_copy(self, index: int) -> Path: ...


@dataclass(frozen=True, slots=True)
class MessageView:
    row_id: int
    header: MessageHeader
    track_state: TrackState
    regarding: RecordRef | None
    reason: Reason | None
    activity_id: str | None
    activity_url: str | None
    regarding_url: str | None
    body_html: str | None  # sanitised; None for plain-text mail
    body_text: str
    attachments: tuple[AttachmentInfo, ...]
    blocked_resources: int = 0
    unresolved: tuple[Address, ...] = ()
    parse_errors: tuple[str, ...] = ()
    #: The body as the pane shows it, prepared with bounded cost (``core.mail.display``);
    #: None: the pane prepares ``body_text`` itself (a view built outside the workspace).
    display: DisplayBody | None = None
    parts_not_shown: int = 0  # parts beyond ``core.mail.parse.DISPLAY_PARTS``
    #: Prepares as much of the body as the pane can take ("Show all"): slow, on a worker.
    show_all: Callable[[], DisplayBody] | None = field(default=None, compare=False, repr=False)
    #: The attachments' bytes, saved or opened (on a worker); None for a view built elsewhere.
    files: AttachmentFiles | None = field(default=None, compare=False, repr=False)
    #: An invitation's one-line summary (``core.mail.invitation``), None without one.
    invitation: str | None = None


def build_view(
    row: MessageRow,
    parsed: ParsedMessage,
    *,
    record_url: Callable[[str, str], str] | None = None,
) -> MessageView:
    """Combine a store row and the parsed MIME into what the pane shows.

    ``record_url(entity, id)`` gives the CRM web page of a record, when the CRM has one.
    """
    html = parsed.html
    regarding = row.regarding
    activity_id = row.activity_id
    return MessageView(
        row_id=row.id,
        header=row.header,
        track_state=row.track_state,
        regarding=regarding,
        reason=row.reason,
        activity_id=activity_id,
        activity_url=record_url("email", activity_id) if record_url and activity_id else None,
        regarding_url=(
            record_url(regarding.entity, regarding.id) if record_url and regarding else None
        ),
        body_html=sanitize_html(html) if html else None,
        body_text=parsed.text,
        attachments=tuple(
            AttachmentInfo(
                a.filename, a.content_type, a.size, i, safe_filename(a.filename, a.content_type)
            )
            for i, a in enumerate(parsed.attachments)
            if not a.inline
        ),
        blocked_resources=count_blocked_resources(html) if html else 0,
        parse_errors=parsed.parse_errors,
    )


def unresolved_for(
    store: Store, row_id: int, book: Resolver, owner: Address
) -> tuple[Address, ...]:
    """The addresses of stored message ``row_id`` that no CRM record in ``book`` has (the
    banner's "not in the CRM" list; ``core.domain.resolution.unresolved_addresses``); none
    when the message is no longer stored."""
    row = store.message(row_id)
    return unresolved_addresses(row.header, book, owner) if row is not None else ()
