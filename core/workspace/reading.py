"""What the reading pane shows for one message: headers, safe body, attachments, and the
tracking banner's facts (state, regarding, reason, unresolved addresses)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.domain.html_sanitize import count_blocked_resources, sanitize_html
from core.domain.model import Address, MessageHeader, Reason, RecordRef, TrackState
from core.domain.resolution import Resolver, unresolved_addresses
from core.mail.display import DisplayBody
from core.mail.parse import ParsedMessage

if TYPE_CHECKING:
    from core.store import MessageRow, Store


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    filename: str
    content_type: str
    size: int


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
            AttachmentInfo(a.filename, a.content_type, a.size)
            for a in parsed.attachments
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
