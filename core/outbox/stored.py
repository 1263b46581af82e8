"""Reading a stored operation back, whichever Trackbox wrote it (the format rules are in
``core.outbox.kinds``).

Two formats exist: v1 (``{"v": 1, …}``, written by ``to_json``) and v0, the unversioned dicts
Trackbox stored before operations were typed. The v0 readers take those dicts exactly as they
were written and are exactly as lenient as the replay code that read them then: a field that
code read with a default may be missing, one it required may not. Anything else — not JSON, a
missing or mistyped field, an unknown kind, a format newer than this version — raises
:class:`~core.outbox.kinds.PayloadError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

from core.domain.model import Address, MailRef, MessageHeader, Reason, RecordRef
from core.outbox.kinds import (
    FORMAT_VERSION,
    AddConnection,
    Columns,
    CreateRecord,
    OperationPayload,
    OpKind,
    PayloadError,
    Promote,
    RemoveConnection,
    SendPending,
    SetRegarding,
    Untrack,
    UpdateUserSettings,
)

#: What promotion assumed when a v0 payload had no reason.
V0_DEFAULT_REASON = Reason("manual", "Tracked manually")


def from_json(kind: OpKind | str, text: str) -> OperationPayload:
    """The operation of ``kind`` stored as ``text``; :class:`PayloadError` if unreadable."""
    try:
        known = OpKind(kind)
    except ValueError:
        raise PayloadError(
            str(kind), "it is a kind of operation this version does not know"
        ) from None
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise PayloadError(known, f"it is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PayloadError(known, "it is not a JSON object")
    version = data.get("v", 0)
    if type(version) is not int or version < 0:
        raise PayloadError(known, f"its format version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise PayloadError(
            known,
            f"it was written in format v{version} by a newer Trackbox "
            f"(this one reads up to v{FORMAT_VERSION})",
        )
    reader = (_V1 if version == 1 else _V0)[known]
    return reader(_Fields(data, known))


# -- v1 -----------------------------------------------------------------------------------------


def _promote_v1(f: _Fields) -> Promote:
    reason = f.nested("reason")
    return Promote(
        header=_header_v1(f.nested("header")),
        reason=Reason(reason.text("code"), reason.text("text")),
        regarding=_record(f.optional_nested("regarding")),
        source=f.text("source"),
        body=f.optional_text("body"),
        mime=f.optional_blob("mime"),
        attachments=f.flag("attachments", True),
        attachment_limit=f.count("attachment_limit"),
        needs_review=f.flag("needs_review", False),
    )


def _header_v1(f: _Fields) -> MessageHeader:
    sender = f.optional_nested("sender")
    return MessageHeader(
        ref=MailRef(f.text("folder"), f.text("uid")),
        message_id=f.text("message_id"),
        subject=f.text("subject"),
        sender=_address_v1(sender) if sender is not None else None,
        to=tuple(_address_v1(a) for a in f.nested_list("to")),
        cc=tuple(_address_v1(a) for a in f.nested_list("cc")),
        date=f.timestamp("date"),
        in_reply_to=f.optional_text("in_reply_to"),
        thread_index=f.optional_text("thread_index"),
    )


def _address_v1(f: _Fields) -> Address:
    return Address(f.text("email"), f.text("name"))


def _untrack_v1(f: _Fields) -> Untrack:
    return Untrack(f.text("message_id"), f.optional_text("activity_id"))


def _set_regarding_v1(f: _Fields) -> SetRegarding:
    return SetRegarding(f.text("message_id"), _required_record(f))


def _send_v1(f: _Fields) -> SendPending:
    return SendPending(
        message_id=f.text("message_id"),
        mime=f.blob("mime"),
        subject=f.text("subject"),
        activity_id=f.optional_text("activity_id"),
    )


def _create_v1(f: _Fields) -> CreateRecord:
    return CreateRecord(
        entity_set=f.text("entity_set"),
        record_id=f.text("record_id"),
        data=f.columns("data"),
        subject=f.text("subject"),
        message_id=f.optional_text("message_id"),
    )


def _settings_v1(f: _Fields) -> UpdateUserSettings:
    return UpdateUserSettings(f.columns("data"), f.optional_text("user_id"))


def _add_connection_v1(f: _Fields) -> AddConnection:
    """v1 only (connections came after v0): v0 maps here too, as lenient as v1."""
    return AddConnection(f.text("message_id"), _linked_record(f))


def _remove_connection_v1(f: _Fields) -> RemoveConnection:
    return RemoveConnection(
        f.text("message_id"), _linked_record(f), f.optional_text("connection_id")
    )


def _linked_record(f: _Fields) -> RecordRef:
    record = _record(f.optional_nested("record"))
    if record is None:
        f.fail("record", "is missing")
    return record


# -- v0: the dicts stored before operations were typed -----------------------------------------


def _promote_v0(f: _Fields) -> Promote:
    """``promote_payload``'s dict: the header flat, addresses as ``[email, name]``, the reason
    as ``[code, text]``, plus ``mime`` (base64) for a mail written here."""
    reason = f.pair("reason")
    return Promote(
        header=MessageHeader(
            ref=MailRef(f.lenient_text("folder"), f.lenient_text("uid")),
            message_id=f.text("message_id"),
            subject=f.lenient_text("subject"),
            sender=_address_v0(f, "sender", f.raw("sender")),
            to=tuple(a for a in (_address_v0(f, "to", v) for v in f.raw_list("to")) if a),
            cc=tuple(a for a in (_address_v0(f, "cc", v) for v in f.raw_list("cc")) if a),
            date=f.timestamp("date"),
            in_reply_to=f.optional_text("in_reply_to"),
            thread_index=f.optional_text("thread_index"),
        ),
        reason=Reason(*reason) if reason else V0_DEFAULT_REASON,
        regarding=_record(f.optional_nested("regarding")),
        source=f.optional_text("source") or "user",
        body=f.optional_text("body"),
        mime=f.optional_blob("mime") or None,  # an empty string meant "no MIME"
        attachments=f.flag("attachments", True),
        attachment_limit=f.count("attachment_limit"),
        needs_review=f.flag("needs_review", False),
    )


def _address_v0(f: _Fields, key: str, value: Any) -> Address | None:
    if not value:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        f.fail(key, "must hold addresses as [e-mail, name]")
    return Address(value[0], value[1] if len(value) > 1 else "")


def _untrack_v0(f: _Fields) -> Untrack:
    return Untrack(f.text("message_id"), f.optional_text("activity_id"))


def _set_regarding_v0(f: _Fields) -> SetRegarding:
    return SetRegarding(f.text("message_id"), _required_record(f))


def _send_v0(f: _Fields) -> SendPending:
    return SendPending(
        message_id=f.text("message_id"),
        mime=f.blob("mime"),
        subject=f.optional_text("subject") or "",
        activity_id=f.optional_text("activity_id"),
    )


def _create_v0(f: _Fields) -> CreateRecord:
    """``enqueue_new_records``'s dict: the GUID was ``id``; the Message-ID was not kept."""
    return CreateRecord(
        entity_set=f.text("entity_set"),
        record_id=f.text("id"),
        data=f.columns("data"),
        subject=f.optional_text("subject") or "",
    )


def _settings_v0(f: _Fields) -> UpdateUserSettings:
    return UpdateUserSettings(f.columns("data"), f.optional_text("user_id"))


# -- shared ---------------------------------------------------------------------------------------


def _record(f: _Fields | None) -> RecordRef | None:
    if f is None:
        return None
    return RecordRef(f.text("entity"), f.text("id"), f.optional_text("name") or "")


def _required_record(f: _Fields) -> RecordRef:
    record = _record(f.optional_nested("regarding"))
    if record is None:
        f.fail("regarding", "is missing")
    return record


_Reader = Callable[["_Fields"], OperationPayload]
_V1: dict[OpKind, _Reader] = {
    OpKind.PROMOTE: _promote_v1,
    OpKind.UNTRACK: _untrack_v1,
    OpKind.SET_REGARDING: _set_regarding_v1,
    OpKind.SEND_PENDING: _send_v1,
    OpKind.CREATE_RECORD: _create_v1,
    OpKind.UPDATE_USER_SETTINGS: _settings_v1,
    OpKind.ADD_CONNECTION: _add_connection_v1,
    OpKind.REMOVE_CONNECTION: _remove_connection_v1,
}
_V0: dict[OpKind, _Reader] = {
    OpKind.PROMOTE: _promote_v0,
    OpKind.UNTRACK: _untrack_v0,
    OpKind.SET_REGARDING: _set_regarding_v0,
    OpKind.SEND_PENDING: _send_v0,
    OpKind.CREATE_RECORD: _create_v0,
    OpKind.UPDATE_USER_SETTINGS: _settings_v0,
    OpKind.ADD_CONNECTION: _add_connection_v1,
    OpKind.REMOVE_CONNECTION: _remove_connection_v1,
}


class _Fields:
    """Typed access to one JSON object of a payload; every mismatch is a ``PayloadError``
    naming the field."""

    def __init__(self, data: dict[str, Any], kind: OpKind, path: str = "") -> None:
        self.data = data
        self.kind = kind
        self.path = path

    def fail(self, key: str, problem: str) -> NoReturn:
        raise PayloadError(self.kind, f"its field '{self.path}{key}' {problem}")

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            self.fail(key, "is missing" if value is None else "must be text")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(key, "must be text")
        return value

    def lenient_text(self, key: str) -> str:
        """v0's ``str(p.get(key) or "")``: missing is empty, a number is its digits."""
        value = self.data.get(key)
        if isinstance(value, dict | list):
            self.fail(key, "must be text")
        return str(value or "")

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
        return value

    def count(self, key: str) -> int:
        value = self.data.get(key) or 0
        if type(value) is not int or value < 0:
            self.fail(key, "must be a whole number of bytes")
        return value

    def timestamp(self, key: str) -> datetime | None:
        value = self.optional_text(key)
        if not value:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.fail(key, "must be an ISO 8601 time")

    def blob(self, key: str) -> bytes:
        value = self.text(key)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.fail(key, "must be base64")

    def optional_blob(self, key: str) -> bytes | None:
        return self.blob(key) if self.data.get(key) is not None else None

    def pair(self, key: str) -> tuple[str, str] | None:
        value = self.data.get(key)
        if not value:
            return None
        if not (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
        ):
            self.fail(key, "must be [code, text]")
        return value[0], value[1]

    def nested(self, key: str) -> _Fields:
        found = self.optional_nested(key)
        if found is None:
            self.fail(key, "is missing")
        return found

    def optional_nested(self, key: str) -> _Fields | None:
        value = self.data.get(key)
        if not value:
            return None
        if not isinstance(value, dict):
            self.fail(key, "must be an object")
        return _Fields(value, self.kind, f"{self.path}{key}.")

    def nested_list(self, key: str) -> list[_Fields]:
        values = self.raw_list(key)
        if not all(isinstance(v, dict) for v in values):
            self.fail(key, "must be a list of objects")
        return [_Fields(v, self.kind, f"{self.path}{key}[{i}].") for i, v in enumerate(values)]

    def raw_list(self, key: str) -> list[Any]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            self.fail(key, "must be a list")
        return value

    def columns(self, key: str) -> Columns:
        value = self.data.get(key)
        if not isinstance(value, dict):
            self.fail(key, "is missing" if value is None else "must be an object")
        if any(isinstance(v, dict | list) for v in value.values()):
            self.fail(key, "must map CRM columns to plain values")
        return dict(value)


__all__ = ["V0_DEFAULT_REASON", "from_json"]
