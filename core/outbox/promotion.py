"""Queue a promotion and show the message pending: what "Track in CRM", the sync cycle's
automatic tracking and sending a tracked mail all do, in one transaction so that the queue and
the tracked state never disagree."""

from __future__ import annotations

from collections.abc import Iterable

from core.domain.model import Decision, Reason, TrackState
from core.outbox.kinds import CreateRecord, Promote
from core.outbox.queue import Outbox
from core.store import Store


def queue_promotion(
    store: Store,
    outbox: Outbox,
    promote: Promote,
    *,
    decision: Decision | None = None,
    new_records: Iterable[CreateRecord] = (),
    pending: Reason | None = None,
) -> int:
    """Record ``decision`` in the audit log (when given, as ``promote.source``), queue
    ``new_records`` then ``promote``, and show the message pending with its regarding and
    ``pending`` (default: the promotion's own reason). Returns the promotion's operation id."""
    mid = promote.message_id
    with store.transaction():
        if decision is not None:
            store.tracking.record_decision(mid, decision, source=promote.source)
        for record in new_records:
            outbox.enqueue(record)
        op_id = outbox.enqueue(promote)
        store.tracking.set_state(
            mid, TrackState.PENDING, regarding=promote.regarding, reason=pending or promote.reason
        )
    return op_id


__all__ = ["queue_promotion"]
