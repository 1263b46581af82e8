"""Resolving an address the CRM does not know (issue 17): create a contact or lead from it,
or link it to an existing record; and the records the address book lists without an address
to write to.

The CRM change is a queued :class:`~core.outbox.kinds.CreateRecord` (durable, replayed
exactly once: an upsert on a GUID chosen when queued). A link is the same operation on the
existing record's GUID with only the chosen e-mail column. Online, the queue runs at once and
the record's address book is read again (a delta), so the mail's party resolves without
waiting for the next sync; offline, the operation waits in the queue and the next sync does
both. Every function blocks (store, network): call it on a worker.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.crm import CrmClient, CrmError
from core.crm.client import odata_string
from core.domain.changes import Changes
from core.domain.entities import entity
from core.domain.model import RecordRef
from core.domain.new_party import (
    EMAIL_COLUMNS,
    REASON_COLUMNS,
    LinkPlan,
    email_exclusion_reason,
    link_column,
)
from core.outbox.kinds import CreateRecord
from core.outbox.queue import OpState

if TYPE_CHECKING:
    from core.workspace.facade import Workspace

log = logging.getLogger(__name__)

#: The records a new address can be linked to, and where their names are searched.
LINKABLE = ("contact", "account", "lead")


@dataclass(frozen=True, slots=True)
class PartyOutcome:
    """What a create or link did: ``done`` (the CRM has it), else ``queued`` (it waits for
    the CRM) or ``error`` (the CRM refused it: it is parked in the queue)."""

    record: RecordRef
    done: bool = False
    queued: bool = False
    error: str | None = None
    changes: Changes = field(default_factory=Changes)
    column: str = EMAIL_COLUMNS[0]  # where the address went

    def message(self) -> str:
        label = entity(self.record.entity).label.lower() or self.record.entity
        name = self.record.name or label
        if self.done and self.column != EMAIL_COLUMNS[0]:
            # The address books cache a record's primary address only (core.sync.address_books).
            return (
                f"The address is now an additional e-mail address of {name} in the CRM. "
                "Trackbox's address book knows records by their first address only, so "
                "this mail still lists it as unresolved here."
            )
        if self.done:
            return f"{name} is in the CRM; the mail's address now resolves to it."
        if self.error:
            return f"The CRM refused it: {self.error} It is kept in the queue."
        return (
            f"The CRM cannot be reached: the {label} {name} will be created when it is "
            "reachable. The queue lists it."
        )


def create_party(
    ws: Workspace, logical: str, columns: dict[str, str], name: str = ""
) -> PartyOutcome:
    """Queue a new contact or lead with ``columns`` and, online, carry it out."""
    table = entity(logical)
    record_id = str(uuid.uuid4())
    email = columns.get("emailaddress1", "")
    op = CreateRecord(
        entity_set=table.entity_set,
        record_id=record_id,
        data=dict(columns),
        subject=f"New {logical} {name} <{email}>" if name else f"New {logical} {email}",
    )
    return _run(ws, op, RecordRef(logical, record_id, name))


def link_plan(ws: Workspace, record: RecordRef, email: str) -> LinkPlan:
    """Which e-mail column of ``record`` a link fills (reads the record: network)."""
    table = entity(record.entity)
    columns = [c for c in EMAIL_COLUMNS if c in table.email_columns] or list(EMAIL_COLUMNS)
    row = ws.crm.get(table.entity_set, record.id, select=[table.key, *columns])
    return link_column(row, email)


def link_address(ws: Workspace, record: RecordRef, email: str, column: str) -> PartyOutcome:
    """Queue writing ``email`` into ``column`` of ``record`` and, online, carry it out."""
    if column not in EMAIL_COLUMNS:
        raise ValueError(f"not an e-mail column: {column}")
    op = CreateRecord(
        entity_set=entity(record.entity).entity_set,
        record_id=record.id,
        data={column: email},
        subject=f"Link {email} to {record.name or record.entity}",
    )
    return _run(ws, op, record, column)


def _run(
    ws: Workspace, op: CreateRecord, record: RecordRef, column: str = EMAIL_COLUMNS[0]
) -> PartyOutcome:
    op_id = ws.outbox().enqueue(op)
    if not ws.online:
        return PartyOutcome(record, queued=True, changes=Changes(queue=True), column=column)
    changes = ws.replay_outbox()
    stored = ws.outbox().get(op_id)
    if stored is None or stored.state is not OpState.DONE:
        parked = stored is not None and stored.state is OpState.PARKED
        error = (stored.last_error or "it was not accepted.") if parked and stored else None
        return PartyOutcome(record, queued=not parked, error=error, changes=changes, column=column)
    refresh_address_book(ws, record.entity)
    changes = changes.merge(Changes(messages=True))
    return PartyOutcome(record, done=True, changes=changes, column=column)


def refresh_address_book(ws: Workspace, logical: str) -> None:
    """Read ``logical``'s address book again (a delta) so that a record just written
    resolves now; a failure leaves it to the next sync."""
    book = ws.address_book()
    if logical not in book.entities:
        return
    try:
        if book.user_id is None and book.contacts_scope == "owned" and logical == "contact":
            book.user_id = ws.crm.who_am_i().user_id.lower()
        book.sync_entity(ws.crm, logical)
    except CrmError:
        log.info("address book refresh after a new record failed", exc_info=True)


def records_with_address(
    crm: CrmClient, email: str, entities: Sequence[str] = LINKABLE
) -> list[RecordRef]:
    """The records that have ``email`` in any e-mail column, whether or not the address
    books cache them (a colleague's contact, a second address): creating another would
    make a duplicate. Raises ``CrmError``."""
    found: list[RecordRef] = []
    literal = odata_string(email.strip())
    for logical in entities:
        table = entity(logical)
        columns = [c for c in EMAIL_COLUMNS if c in table.email_columns] or [EMAIL_COLUMNS[0]]
        name = table.name_column or table.key
        rows = next(
            iter(
                crm.query_pages(
                    table.entity_set,
                    select=[table.key, name],
                    filter=" or ".join(f"{c} eq {literal}" for c in columns),
                    top=5,
                )
            ),
            [],
        )
        found.extend(
            RecordRef(logical, str(r[table.key]).lower(), str(r.get(name) or "")) for r in rows
        )
    return found


# -- records without an address to write to ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExcludedRecord:
    """A record the address books leave out, and why (``email_exclusion_reason``)."""

    record: RecordRef
    email: str
    reason: str


def excluded_records(
    crm: CrmClient, text: str, entities: Sequence[str] = LINKABLE, *, per_type: int = 20
) -> list[ExcludedRecord]:
    """Records whose name contains every word of ``text`` that have no address to write to:
    no primary e-mail, "Do not allow e-mail", disabled or inactive (network: the cache never
    holds them). Raises ``CrmError``."""
    words = text.split()
    if not words:
        return []
    found: list[ExcludedRecord] = []
    for logical in entities:
        table = entity(logical)
        columns = list(REASON_COLUMNS.get(logical, ()))
        name = table.name_column or table.key
        clauses = [f"contains({name},{odata_string(w)})" for w in words]
        rows = next(
            iter(
                crm.query_pages(
                    table.entity_set,
                    select=[table.key, name, *columns],
                    filter=" and ".join(clauses),
                    orderby=name,
                    top=per_type * 3,
                )
            ),
            [],
        )
        kept = 0
        for row in rows:
            reason = email_exclusion_reason(logical, row)
            if reason is None:
                continue
            ref = RecordRef(logical, str(row[table.key]).lower(), str(row.get(name) or ""))
            email = str(row.get(columns[0]) or "") if columns else ""
            found.append(ExcludedRecord(ref, email, reason))
            kept += 1
            if kept >= per_type:
                break
    return found


__all__ = [
    "LINKABLE",
    "ExcludedRecord",
    "PartyOutcome",
    "create_party",
    "excluded_records",
    "link_address",
    "link_plan",
    "records_with_address",
    "refresh_address_book",
]
