"""Value types returned by the Web API client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.crm.errors import CrmError
from core.crm.wire import entity_id_from_url
from core.domain.model import RecordRef


@dataclass(frozen=True, slots=True)
class WhoAmI:
    user_id: str
    business_unit_id: str
    organization_id: str


@dataclass(frozen=True, slots=True)
class EmailInfo:
    """What the CRM knows about a tracked e-mail, found by its Message-ID."""

    activity_id: str
    message_id: str
    regarding: RecordRef | None
    owner_id: str | None
    subject: str = ""
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to promote along with an e-mail (``activitymimeattachment``)."""

    filename: str
    mimetype: str
    content: bytes


@dataclass(frozen=True, slots=True)
class DeltaPage:
    """One page of a change-tracking read. ``delta_link`` is set on the last page only;
    ``next_link`` on the others (it resumes the read where this page ended)."""

    rows: list[dict[str, Any]]
    deleted: list[str]
    delta_link: str | None
    next_link: str | None = None


@dataclass(frozen=True, slots=True)
class DeltaResult:
    """All pages of a change-tracking read: changed/new rows, deleted ids, next delta link."""

    rows: list[dict[str, Any]]
    deleted: list[str]
    delta_link: str


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One operation of a ``$batch``; ``path`` is relative to the API root (``contacts``,
    ``emails(<id>)``) or a ``$<content-id>`` reference inside a change set."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """One operation's outcome; a failed item carries its error instead of raising."""

    status: int
    headers: dict[str, str]
    body: Any
    error: CrmError | None = None

    @property
    def entity_id(self) -> str | None:
        """The id of a record created by this operation (from OData-EntityId)."""
        url = self.headers.get("odata-entityid") or self.headers.get("location")
        return entity_id_from_url(url) if url else None


__all__ = [
    "Attachment",
    "BatchRequest",
    "BatchResponse",
    "DeltaPage",
    "DeltaResult",
    "EmailInfo",
    "WhoAmI",
]
