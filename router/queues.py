"""Queues: mail the router tracked from a queue's mailbox becomes a queue item of that queue
(``queues(<id>)/Microsoft.Dynamics.CRM.AddToQueue``, which keeps one active item per
record: adding it again changes nothing, so a retried pass adds nothing twice)."""

from __future__ import annotations

from core.crm import CrmClient
from core.store import Store
from router.incoming import NEW, QUEUED, followups, set_stage


def add_to_queue(crm: CrmClient, queue_id: str, activity_id: str) -> str | None:
    """Put the e-mail activity in the queue; the queue item's id when the CRM says it."""
    target = {"@odata.type": "Microsoft.Dynamics.CRM.email", "activityid": activity_id}
    answer = crm.execute_action("AddToQueue", {"Target": target}, bound_to=f"queues({queue_id})")
    item = answer.get("QueueItemId")
    return str(item) if item else None


def process(crm: CrmClient, store: Store) -> int:
    """Add the queue's newly tracked mail to the queue; returns how many were added."""
    added = 0
    for mail in followups(store, NEW):
        add_to_queue(crm, mail.queue_id, mail.activity_id)
        set_stage(store, mail.message_id, QUEUED)
        added += 1
    return added


__all__ = ["add_to_queue", "process"]
