"""What a finished (or half-finished) outbox operation left behind, typed: the CRM's activity,
the record it is filed under, what was deleted, how far a multi-step send got.

Stored as JSON in the operation's row (``result_json``) with a version, like the payloads
(``core/outbox/kinds.py``). Rows written before results were typed (version 0) hold the same
keys without ``"v"``, a created record's GUID under ``"id"``; they read as the same values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.domain.model import RecordRef

#: The version :meth:`OpResult.to_json` writes.
VERSION = 1


@dataclass(frozen=True, slots=True)
class OpResult:
    """One operation's result. Every field is optional: each kind fills what it knows.

    ``activity_id``: the CRM e-mail activity tracked, refiled or marked sent;
    ``regarding``: the record it is filed under; ``owner_id``: the activity's owner;
    ``deleted``: the activity an untrack deleted (None: there was none);
    ``record_id``: the record a create wrote; ``smtp_sent``: the SMTP server accepted the mail
    (checkpointed as soon as it did, so that a re-run never sends it twice)."""

    activity_id: str | None = None
    regarding: RecordRef | None = None
    owner_id: str | None = None
    deleted: str | None = None
    record_id: str | None = None
    smtp_sent: bool = False

    def to_json(self) -> str:
        data: dict[str, Any] = {"v": VERSION}
        for name in ("activity_id", "owner_id", "deleted", "record_id"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.regarding is not None:
            r = self.regarding
            data["regarding"] = {"entity": r.entity, "id": r.id, "name": r.name}
        if self.smtp_sent:
            data["smtp_sent"] = True
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> OpResult | None:
        """The stored result (None when there is none). Unknown keys are ignored, a value of
        the wrong type reads as absent: a result is information, never a reason to fail."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        record = data.get("record_id", data.get("id") if data.get("v") is None else None)
        return cls(
            activity_id=_text(data.get("activity_id")),
            regarding=_ref(data.get("regarding")),
            owner_id=_text(data.get("owner_id")),
            deleted=_text(data.get("deleted")),
            record_id=_text(record),
            smtp_sent=data.get("smtp_sent") is True,
        )


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an operation was parked: the error's code (an HTTP status or exception kind) and
    its message, as the queue view shows them."""

    code: str
    message: str


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _ref(value: object) -> RecordRef | None:
    if not isinstance(value, dict):
        return None
    entity, id_ = _text(value.get("entity")), _text(value.get("id"))
    if entity is None or id_ is None:
        return None
    return RecordRef(entity, id_, _text(value.get("name")) or "")


__all__ = ["VERSION", "Failure", "OpResult"]
