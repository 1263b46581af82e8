"""The operations the outbox carries: one frozen dataclass per kind, and how each is written.

An operation may be replayed by a later Trackbox than the one that queued it (an upgrade with
work still queued, a crash, the CLI and the GUI on one profile), so its stored form is explicit
JSON, never pickle:

- ``to_json()`` writes format ``FORMAT_VERSION``: ``{"v": 1, …}`` with the kind's fields,
  value types as objects (``{"email", "name"}``, ``{"entity", "id", "name"}``,
  ``{"code", "text"}``), bytes as base64, times as ISO 8601.
- ``core.outbox.stored.from_json(kind, text)`` reads every format ever written: v1, and the
  unversioned dicts stored before operations were typed (v0). What it cannot read raises
  :class:`PayloadError`, and the replay parks that operation with the error's message.

Version rule: any change to what a kind writes (a field added, renamed, or read differently)
bumps ``FORMAT_VERSION`` and adds a reader for the new version next to the old ones, which stay
as long as a store may hold them. An older Trackbox then parks what it cannot read rather than
doing half of it.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from core.domain.model import Address, MessageHeader, Reason, RecordRef

FORMAT_VERSION = 1

#: CRM column values as the Web API takes them (a record to create, per-user settings).
Columns: TypeAlias = dict[str, str | int | float | bool | None]


class OpKind(enum.StrEnum):
    PROMOTE = "promote"
    UNTRACK = "untrack"
    SET_REGARDING = "set_regarding"
    SEND_PENDING = "send_pending"
    CREATE_RECORD = "create_record"
    UPDATE_USER_SETTINGS = "update_user_settings"
    ADD_CONNECTION = "add_connection"
    REMOVE_CONNECTION = "remove_connection"


class MailKind(enum.StrEnum):
    """The kinds of the user's mail actions (read, flag, move, copy, delete): outbox
    operations too, but on the mailbox alone (see "mail actions" below)."""

    MAIL_SET_READ = "mail_set_read"
    MAIL_SET_FLAG = "mail_set_flag"
    MAIL_MOVE = "mail_move"
    MAIL_COPY = "mail_copy"
    MAIL_DELETE = "mail_delete"


class UnknownKind(str):
    """A kind this version does not know (written by a newer Trackbox), kept as stored. It
    reads like an ``OpKind`` (``value``) so that listings show it; the replay parks it."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str(self)


class PayloadError(Exception):
    """A stored payload this version cannot read: not JSON, a field missing or of the wrong
    type, an unknown kind, or a newer format. ``message`` is what the queue view shows."""

    code = "unreadable-payload"

    def __init__(self, kind: str, problem: str) -> None:
        self.kind = str(kind)
        self.problem = problem
        self.message = (
            f"This version of Trackbox cannot read this queued {self.kind} operation: "
            f"{problem}. It is kept; retry it after updating Trackbox, or discard it."
        )
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class Promote:
    """Track a message: promote it to an e-mail activity, keyed by its Message-ID.

    The body is read at replay time (the body cache, else the mailbox) unless it came with the
    operation: ``mime`` for a mail written here (the bytes as sent), ``body`` as HTML. Only the
    header fields promotion needs are kept (and stored); see :func:`promoted_header`.
    """

    kind: ClassVar[OpKind] = OpKind.PROMOTE

    header: MessageHeader
    reason: Reason
    regarding: RecordRef | None = None
    source: str = "user"  # who decided: "user" or "auto" (the audit log's word)
    body: str | None = None
    mime: bytes | None = None
    # False when the size policy dropped them; a limit of 0 means "no limit known".
    attachments: bool = True
    attachment_limit: int = 0
    # Tracked, but filed against the mailbox owner for want of a unique sender: the message
    # then shows "needs attention" until someone sets its regarding.
    needs_review: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", promoted_header(self.header))

    @property
    def message_id(self) -> str:
        return self.header.message_id

    @property
    def key(self) -> str:
        return self.header.message_id

    @property
    def subject(self) -> str:
        return self.header.subject

    def describe(self) -> str:
        about = f" regarding {record_label(self.regarding)}" if self.regarding else ""
        return f"Track “{self.subject or self.message_id}”{about}"

    def to_json(self) -> str:
        return _dump(
            {
                "header": _header(self.header),
                "reason": {"code": self.reason.code, "text": self.reason.text},
                "regarding": _record(self.regarding),
                "source": self.source,
                "body": self.body,
                "mime": _base64(self.mime),
                "attachments": self.attachments,
                "attachment_limit": self.attachment_limit,
                "needs_review": self.needs_review,
            }
        )


@dataclass(frozen=True, slots=True)
class Untrack:
    """Delete the CRM's e-mail activity of a message. ``activity_id`` is None when it was not
    known yet (the promotion was still queued): the replay looks it up by Message-ID."""

    kind: ClassVar[OpKind] = OpKind.UNTRACK

    message_id: str
    activity_id: str | None = None

    @property
    def key(self) -> str:
        return self.message_id

    @property
    def subject(self) -> str:
        return ""

    def describe(self) -> str:
        return f"Untrack {self.message_id}"

    def to_json(self) -> str:
        return _dump({"message_id": self.message_id, "activity_id": self.activity_id})


@dataclass(frozen=True, slots=True)
class SetRegarding:
    """File a tracked message's activity against another record."""

    kind: ClassVar[OpKind] = OpKind.SET_REGARDING

    message_id: str
    regarding: RecordRef

    @property
    def key(self) -> str:
        return self.message_id

    @property
    def subject(self) -> str:
        return ""

    def describe(self) -> str:
        return f"Set regarding of {self.message_id} to {record_label(self.regarding)}"

    def to_json(self) -> str:
        return _dump({"message_id": self.message_id, "regarding": _record(self.regarding)})


@dataclass(frozen=True, slots=True)
class SendPending:
    """Send MIME built when queued (same bytes, same Message-ID on every replay) through the
    mailbox; with ``activity_id`` (a CRM e-mail in Pending Send) mark that activity Sent."""

    kind: ClassVar[OpKind] = OpKind.SEND_PENDING

    message_id: str
    mime: bytes
    subject: str = ""
    activity_id: str | None = None  # None: a mail written here, nothing to mark in the CRM

    @property
    def key(self) -> str:
        # The Pending Send step strips "send:" to know which CRM e-mails are queued already.
        return f"send:{self.activity_id or self.message_id}"

    def describe(self) -> str:
        return f"Send “{self.subject or self.message_id}”"

    def to_json(self) -> str:
        return _dump(
            {
                "message_id": self.message_id,
                "mime": _base64(self.mime),
                "subject": self.subject,
                "activity_id": self.activity_id,
            }
        )


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """ "Automatically create records": a contact or lead upserted on a GUID chosen when
    queued, so a replay updates it instead of creating a second one. ``message_id`` is the
    mail whose promotion it precedes (unknown in operations stored before v1)."""

    kind: ClassVar[OpKind] = OpKind.CREATE_RECORD

    entity_set: str
    record_id: str
    data: Columns
    subject: str = ""  # for people: "New contact jane@example.com"
    message_id: str | None = None

    @property
    def key(self) -> str:
        return self.message_id or f"record:{self.record_id}"

    def describe(self) -> str:
        return self.subject or f"Create {self.entity_set} {self.record_id}"

    def to_json(self) -> str:
        return _dump(
            {
                "entity_set": self.entity_set,
                "record_id": self.record_id,
                "data": self.data,
                "subject": self.subject,
                "message_id": self.message_id,
            }
        )


@dataclass(frozen=True, slots=True)
class UpdateUserSettings:
    """The user's CRM options (``usersettingscollection``); ``user_id`` None: ask ``WhoAmI``
    at replay."""

    kind: ClassVar[OpKind] = OpKind.UPDATE_USER_SETTINGS

    data: Columns
    user_id: str | None = None

    @property
    def key(self) -> str:
        return "usersettings"

    @property
    def message_id(self) -> None:
        return None

    @property
    def subject(self) -> str:
        return ""

    def describe(self) -> str:
        return "Save your CRM options"

    def to_json(self) -> str:
        return _dump({"data": self.data, "user_id": self.user_id})


@dataclass(frozen=True, slots=True)
class AddConnection:
    """Link a tracked message's activity to one more record (a Dataverse connection, beyond
    its regarding). The replay first looks for a connection between the same two records, so
    running it twice never links twice."""

    kind: ClassVar[OpKind] = OpKind.ADD_CONNECTION

    message_id: str
    record: RecordRef

    @property
    def key(self) -> str:
        return self.message_id

    @property
    def subject(self) -> str:
        return ""

    def describe(self) -> str:
        return f"Link {self.message_id} to {record_label(self.record)}"

    def to_json(self) -> str:
        return _dump({"message_id": self.message_id, "record": _record(self.record)})


@dataclass(frozen=True, slots=True)
class RemoveConnection:
    """Unlink a tracked message's activity from a record: delete the connection
    (``connection_id`` when known, else every one between the two records; gone already is
    done)."""

    kind: ClassVar[OpKind] = OpKind.REMOVE_CONNECTION

    message_id: str
    record: RecordRef
    connection_id: str | None = None

    @property
    def key(self) -> str:
        return self.message_id

    @property
    def subject(self) -> str:
        return ""

    def describe(self) -> str:
        return f"Unlink {self.message_id} from {record_label(self.record)}"

    def to_json(self) -> str:
        return _dump(
            {
                "message_id": self.message_id,
                "record": _record(self.record),
                "connection_id": self.connection_id,
            }
        )


# -- mail actions -------------------------------------------------------------------------------
#
# Changes to the mailbox the user made here (read, flag, move, copy, delete): the store shows
# them at once, the queue writes them to the mail server. They never wait for the CRM: their
# outbox ``message_id`` is ``mail:<Message-ID>`` (see :func:`mail_key`), so they run in order
# among themselves and apart from the CRM operations on the same message, in a pass of their
# own (``core.workspace.replay``). ``folder``/``uid`` name the copy as the store knew it when
# queued; the replay finds its current ref in the store (an earlier move may have given it a
# new one). ``local_uid`` is the placeholder uid the store gave a moved or copied row until
# the server says its ref.

MAIL_PREFIX = "mail:"


def mail_key(message_id: str) -> str:
    """The outbox ``message_id`` (and key) of a mail action on ``message_id``."""
    return MAIL_PREFIX + message_id


@dataclass(frozen=True, slots=True)
class _MailAction:
    mail_id: str  # the RFC 5322 Message-ID
    folder: str
    uid: str

    @property
    def key(self) -> str:
        return mail_key(self.mail_id)

    @property
    def message_id(self) -> str:
        return mail_key(self.mail_id)

    @property
    def subject(self) -> str:
        return ""

    def _fields(self) -> dict[str, Any]:
        return {"mail_id": self.mail_id, "folder": self.folder, "uid": self.uid}


@dataclass(frozen=True, slots=True)
class MarkRead(_MailAction):
    """Set or clear the read flag on the server."""

    kind: ClassVar[MailKind] = MailKind.MAIL_SET_READ

    read: bool = True

    def describe(self) -> str:
        return f"Mark {self.mail_id} {'read' if self.read else 'unread'}"

    def to_json(self) -> str:
        return _dump({**self._fields(), "read": self.read})


@dataclass(frozen=True, slots=True)
class FlagMail(_MailAction):
    """Flag for follow-up, or clear the flag, on the server."""

    kind: ClassVar[MailKind] = MailKind.MAIL_SET_FLAG

    flagged: bool = True

    def describe(self) -> str:
        return f"{'Flag' if self.flagged else 'Clear the flag of'} {self.mail_id}"

    def to_json(self) -> str:
        return _dump({**self._fields(), "flagged": self.flagged})


@dataclass(frozen=True, slots=True)
class MoveMail(_MailAction):
    """Move to ``target`` (created first when ``create_target``: Archive, as Outlook does)."""

    kind: ClassVar[MailKind] = MailKind.MAIL_MOVE

    target: str = ""
    local_uid: str = ""
    create_target: bool = False

    def describe(self) -> str:
        return f"Move {self.mail_id} to {self.target}"

    def to_json(self) -> str:
        return _dump(
            {
                **self._fields(),
                "target": self.target,
                "local_uid": self.local_uid,
                "create_target": self.create_target,
            }
        )


@dataclass(frozen=True, slots=True)
class CopyMail(_MailAction):
    """Copy to ``target``."""

    kind: ClassVar[MailKind] = MailKind.MAIL_COPY

    target: str = ""
    local_uid: str = ""

    def describe(self) -> str:
        return f"Copy {self.mail_id} to {self.target}"

    def to_json(self) -> str:
        return _dump({**self._fields(), "target": self.target, "local_uid": self.local_uid})


@dataclass(frozen=True, slots=True)
class DeleteMail(_MailAction):
    """Delete for good (a soft delete is a :class:`MoveMail` to Deleted Items)."""

    kind: ClassVar[MailKind] = MailKind.MAIL_DELETE

    def describe(self) -> str:
        return f"Delete {self.mail_id} for good"

    def to_json(self) -> str:
        return _dump(self._fields())


MailAction: TypeAlias = MarkRead | FlagMail | MoveMail | CopyMail | DeleteMail

#: The kinds of :data:`MailAction`.
MAIL_KINDS = frozenset(MailKind)


def read_mail_action(kind: MailKind, text: str) -> MailAction:
    """A stored mail action (format v1; they did not exist before). :class:`PayloadError`
    when unreadable. Here rather than in ``stored`` because only v1 exists."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise PayloadError(kind, f"it is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        raise PayloadError(kind, "it is not a v1 mail action")

    def text_of(name: str) -> str:
        value = data.get(name, "")
        if not isinstance(value, str):
            raise PayloadError(kind, f"its {name} is not text")
        return value

    def flag_of(name: str) -> bool:
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise PayloadError(kind, f"its {name} is not true or false")
        return value

    base = (text_of("mail_id"), text_of("folder"), text_of("uid"))
    if not base[0] or not base[1]:
        raise PayloadError(kind, "it names no message")
    if kind is MailKind.MAIL_SET_READ:
        return MarkRead(*base, read=flag_of("read"))
    if kind is MailKind.MAIL_SET_FLAG:
        return FlagMail(*base, flagged=flag_of("flagged"))
    if kind is MailKind.MAIL_MOVE:
        return MoveMail(*base, text_of("target"), text_of("local_uid"), flag_of("create_target"))
    if kind is MailKind.MAIL_COPY:
        return CopyMail(*base, text_of("target"), text_of("local_uid"))
    if kind is MailKind.MAIL_DELETE:
        return DeleteMail(*base)
    raise PayloadError(kind, "it is not a mail action")


#: Every operation the outbox can carry.
OperationPayload: TypeAlias = (
    Promote
    | Untrack
    | SetRegarding
    | SendPending
    | CreateRecord
    | UpdateUserSettings
    | AddConnection
    | RemoveConnection
    | MarkRead
    | FlagMail
    | MoveMail
    | CopyMail
    | DeleteMail
)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Stands for a stored payload this version cannot read. The row keeps its text; the
    replay parks it with :attr:`error`'s message, and the user retries or discards it."""

    kind_name: str
    problem: str

    @property
    def error(self) -> PayloadError:
        return PayloadError(self.kind_name, self.problem)

    @property
    def subject(self) -> str:
        return ""

    def describe(self) -> str:
        return f"Unreadable {self.kind_name} operation ({self.problem})"


def promoted_header(header: MessageHeader) -> MessageHeader:
    """The part of a header promotion uses and the outbox stores."""
    return MessageHeader(
        ref=header.ref,
        message_id=header.message_id,
        subject=header.subject,
        sender=header.sender,
        to=header.to,
        cc=header.cc,
        date=header.date,
        in_reply_to=header.in_reply_to,
        thread_index=header.thread_index,
    )


def record_label(ref: RecordRef | None) -> str:
    """A record as people name it (its name, else its entity and id)."""
    return (ref.name or f"{ref.entity} {ref.id}") if ref else "nothing"


# -- writing format v1 ------------------------------------------------------------------------


def _dump(fields: dict[str, Any]) -> str:
    return json.dumps({"v": FORMAT_VERSION, **fields}, ensure_ascii=False, sort_keys=True)


def _address(a: Address) -> dict[str, str]:
    return {"email": a.email, "name": a.name}


def _record(r: RecordRef | None) -> dict[str, str] | None:
    return {"entity": r.entity, "id": r.id, "name": r.name} if r else None


def _header(h: MessageHeader) -> dict[str, Any]:
    return {
        "message_id": h.message_id,
        "subject": h.subject,
        "sender": _address(h.sender) if h.sender else None,
        "to": [_address(a) for a in h.to],
        "cc": [_address(a) for a in h.cc],
        "date": h.date.isoformat() if h.date else None,
        "in_reply_to": h.in_reply_to,
        "thread_index": h.thread_index,
        "folder": h.ref.folder,
        "uid": h.ref.uid,
    }


def _base64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None


__all__ = [
    "FORMAT_VERSION",
    "AddConnection",
    "RemoveConnection",
    "MAIL_KINDS",
    "Columns",
    "CopyMail",
    "CreateRecord",
    "DeleteMail",
    "FlagMail",
    "MailAction",
    "MailKind",
    "MarkRead",
    "MoveMail",
    "mail_key",
    "read_mail_action",
    "OpKind",
    "OperationPayload",
    "PayloadError",
    "Promote",
    "SendPending",
    "SetRegarding",
    "UnknownKind",
    "Unreadable",
    "Untrack",
    "UpdateUserSettings",
    "promoted_header",
    "record_label",
]
