"""Queues: mail the router tracked from a queue's mailbox becomes a queue item of that queue
(``queues(<id>)/Microsoft.Dynamics.CRM.AddToQueue``, which keeps one active item per
record: adding it again changes nothing, so a retried pass adds nothing twice).

A mail that already has a queue item, in any queue and any state, is not added again: a pass
on another machine (with its own state) decides the mail again, and by then an agent may
have routed the item to another queue or removed it; adding it again would move it back.
"""

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


def has_queue_item(crm: CrmClient, activity_id: str) -> bool:
    """Whether the e-mail was ever put in a queue (an item active or not, in any queue)."""
    rows = crm.query(
        "queueitems", select=["queueitemid"], filter=f"_objectid_value eq {activity_id}", top=1
    )
    return next(iter(rows), None) is not None


def process(crm: CrmClient, store: Store) -> int:
    """Add the queue's newly tracked mail to the queue; returns how many were added."""
    added = 0
    for mail in followups(store, NEW):
        if has_queue_item(crm, mail.activity_id):  # queued by another pass already
            set_stage(store, mail.message_id, QUEUED)
            continue
        add_to_queue(crm, mail.queue_id, mail.activity_id)
        set_stage(store, mail.message_id, QUEUED)
        added += 1
    return added


__all__ = ["add_to_queue", "has_queue_item", "process"]
