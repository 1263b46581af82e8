"""Queues and cases for server-side synchronisation (issue 19): the ``AddToQueue`` action,
the columns Dataverse fills on a queue item (title, object type, entered on) and a case's
auto-numbered ``ticketnumber``.

A record is in at most one queue: adding it again moves its one active queue item to the
destination queue (or keeps it, when it is already there), as ``AddToQueue`` "moves an entity
record from a source queue to a destination queue".
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from .entities import ENTITIES, QUEUE_OBJECTS_ALL
from .errors import bad_request, not_found
from .records import BIND_RE, parse_guid
from .storage import Row, Storage, now_iso

if TYPE_CHECKING:
    from .records import Caller, Records

CRM = "Microsoft.Dynamics.CRM."
TICKET_PREFIX = "CAS-"
TICKET_FIRST = 1000
_TICKET_RE = re.compile(r"^CAS-(\d+)")
_SUFFIX = "BCDFGHJKLMNPQRSTVWXZ0123456789"


def next_ticket_number(storage: Storage) -> str:
    """``CAS-01004-K7Q2BZ``: the next case number after the highest in use, and a random
    suffix as Dataverse's auto-numbering adds (emulator format)."""
    highest = TICKET_FIRST
    for (number,) in storage.conn.execute(
        "SELECT ticketnumber FROM incident WHERE ticketnumber LIKE 'CAS-%'"
    ):
        m = _TICKET_RE.match(str(number))
        if m:
            highest = max(highest, int(m.group(1)))
    suffix = "".join(secrets.choice(_SUFFIX) for _ in range(6))
    return f"{TICKET_PREFIX}{highest + 1:05d}-{suffix}"


def derive_incident(storage: Storage, row: Row) -> None:
    if not row.get("ticketnumber"):
        row["ticketnumber"] = next_ticket_number(storage)


def derive_queueitem(records: Records, row: Row) -> None:
    """The server-set columns of a queue item: its object's type code and name, and when it
    entered the queue."""
    kind = row.get("objectid__type")
    if not row.get("objectid") or kind not in QUEUE_OBJECTS_ALL:
        raise bad_request("A queue item needs 'objectid' (an activity or a case).")
    if not row.get("queueid"):
        raise bad_request("A queue item needs 'queueid'.")
    row["objecttypecode"] = QUEUE_OBJECTS_ALL[kind]
    row["title"] = (records.primary_name(kind, row["objectid"]) or "")[:300] or None
    row["enteredon"] = row.get("enteredon") or now_iso()


def _target(records: Records, caller: Caller, target: Any) -> tuple[str, str]:
    """``Target`` as the Web API sends an entity parameter: ``{"@odata.type":
    "Microsoft.Dynamics.CRM.email", "activityid": "<id>"}``, or ``{"@odata.id":
    "emails(<id>)"}``. Returns (logical name, id) of a record the caller may read."""
    if not isinstance(target, dict):
        raise bad_request("AddToQueue needs 'Target', the record to add (an entity object).")
    logical, key = None, None
    ref = target.get("@odata.id")
    if isinstance(ref, str) and (m := BIND_RE.search(ref.strip())):
        ent = next((e for e in ENTITIES.values() if e.set_name == m.group(1)), None)
        logical, key = (ent.logical if ent else None), m.group(2).lower()
    else:
        declared = str(target.get("@odata.type") or "").removeprefix("#").removeprefix(CRM)
        ent = ENTITIES.get(declared)
        if ent is not None:
            logical, key = declared, parse_guid(str(target.get(ent.key) or ""))
    if logical not in QUEUE_OBJECTS_ALL or key is None:
        raise bad_request("AddToQueue: 'Target' must be an activity or a case, with its key.")
    ent = ENTITIES[logical]
    row = records.storage.get(ent, key)
    if row is None or not records.can_read(caller, ent, row):
        raise not_found(logical, key)
    return logical, key


def add_to_queue(records: Records, caller: Caller, queue_id: str, params: Any) -> dict[str, Any]:
    """``queues(<id>)/Microsoft.Dynamics.CRM.AddToQueue``: the target's one active queue item
    in this queue (moved here from another queue when it was in one), as ``QueueItemId``."""
    if not isinstance(params, dict):
        raise bad_request("Action parameters must be a JSON object.")
    queue_ent, item_ent = ENTITIES["queue"], ENTITIES["queueitem"]
    queue = records.storage.get(queue_ent, queue_id)
    if queue is None or not records.can_read(caller, queue_ent, queue):
        raise not_found("queue", queue_id)
    logical, key = _target(records, caller, params.get("Target"))
    extra = params.get("QueueItemProperties") or {}
    if not isinstance(extra, dict):
        raise bad_request("QueueItemProperties must be a queueitem entity object.")
    extra = {
        k: v
        for k, v in extra.items()
        if not k.startswith(("queueid", "objectid", "@odata.type", "queueitemid"))
    }
    with records.storage.transaction():
        existing = records.storage.query(
            "SELECT * FROM queueitem WHERE objectid = ? AND statecode = 0"
            " ORDER BY createdon LIMIT 1",
            (key,),
        )
        if existing:
            item = existing[0]
            moved: Row = {}
            if item["queueid"] != queue_id:
                moved = {"queueid": queue_id, "queueid__type": "queue", "enteredon": now_iso()}
            records.update(caller, item_ent, item["queueitemid"], extra, trusted=moved)
            return {"QueueItemId": item["queueitemid"]}
        body = {
            **extra,
            "queueid@odata.bind": f"/queues({queue_id})",
            f"objectid_{logical}@odata.bind": f"/{ENTITIES[logical].set_name}({key})",
        }
        row = records.create(caller, item_ent, body)
        return {"QueueItemId": row["queueitemid"]}
