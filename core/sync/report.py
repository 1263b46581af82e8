"""Values the workspace verbs and the sync cycle hand back to the GUI and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.domain.changes import Changes
from core.domain.problems import SyncProblem

if TYPE_CHECKING:
    from core.outbox.queue import Operation


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """One step of a running cycle: ``total`` is None when not known in advance."""

    step: str
    done: int = 0
    total: int | None = None


@dataclass(frozen=True)
class SyncReport:
    """The outcome of one cycle. ``ok``: every step ran without error; ``online``: the CRM
    answered. ``counts`` holds figures per step (headers, decisions, promoted, sent …)."""

    ok: bool
    online: bool
    started: datetime
    finished: datetime
    changes: Changes = Changes()
    errors: tuple[SyncProblem, ...] = ()
    cancelled: bool = False
    mail_online: bool = True
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "online": self.online,
            "mail_online": self.mail_online,
            "cancelled": self.cancelled,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "errors": [p.to_dict() for p in self.errors],
            "counts": dict(self.counts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncReport:
        return cls(
            ok=bool(data["ok"]),
            online=bool(data["online"]),
            mail_online=bool(data.get("mail_online", True)),
            cancelled=bool(data.get("cancelled")),
            started=datetime.fromisoformat(data["started"]),
            finished=datetime.fromisoformat(data["finished"]),
            errors=tuple(SyncProblem.from_value(v) for v in data.get("errors") or ()),
            counts=dict(data.get("counts") or {}),
        )


@dataclass(frozen=True, slots=True)
class QueuedOperation:
    """One outbox operation as the queue view and ``trackbox queue list`` show it.
    ``subject`` is the mail's when the operation knows it; ``summary`` says what the
    operation does, for people."""

    id: int
    kind: str
    message_id: str | None
    subject: str
    state: str  # "queued" | "running" | "parked"
    attempts: int
    last_error: str | None
    created: datetime
    next_attempt_at: float = 0.0
    summary: str = ""

    @classmethod
    def of(cls, op: Operation) -> QueuedOperation:
        return cls(
            id=op.id,
            kind=str(op.kind),
            message_id=op.message_id,
            subject=op.payload.subject,
            state=op.state.value,
            attempts=op.attempts,
            last_error=op.last_error,
            created=op.created,
            next_attempt_at=op.next_attempt_at,
            summary=op.payload.describe(),
        )
