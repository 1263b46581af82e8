"""Pending Send: e-mails created in the CRM for a user whose mail goes out through this client.

Each cycle asks the CRM for them with ``BackgroundSendEmail`` (the CRM hands each one to one
caller only, marking it *Sending*), builds the MIME once — subject with its tracking token,
a fresh Message-ID — and queues a ``SendPending`` outbox operation, all before anything is
sent. The outbox then sends it through the mailbox and marks it *Sent* with that Message-ID.

Crash windows: a crash after the CRM handed mail out but before it was queued leaves it
*Sending* in the CRM; ``orphans`` finds such mail of ours (older than ``ORPHAN_AGE``, so a
second running client is not raced) and it is queued again. A crash after the SMTP server
accepted a message but before the outbox recorded it would send it twice; the window is one
local write wide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.crm import CrmClient
from core.domain.entities import entity
from core.domain.model import Address
from core.mail.drafts import Draft, build_mime
from core.mail.parse import html_to_text
from core.outbox.kinds import SendPending

log = logging.getLogger(__name__)

ORPHAN_AGE = timedelta(minutes=15)
_MASK_ROLE = {1: "from", 2: "to", 3: "cc", 4: "bcc"}
#: Where a recipient bound by id is looked for, in this order.
_PARTY_ENTITIES = ("contact", "account", "lead", "systemuser")


@dataclass(frozen=True, slots=True)
class PendingMail:
    activity_id: str
    subject: str
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    body_html: str
    owner_id: str | None = None


def fetch_pending(crm: CrmClient, limit: int = 50) -> list[PendingMail]:
    """Take this user's Pending Send mail from the CRM (it is *Sending* from now on)."""
    query = {
        "@odata.type": "Microsoft.Dynamics.CRM.QueryExpression",
        "EntityName": "email",
        "ColumnSet": {"AllColumns": True},
        "PageInfo": {"Count": limit, "PageNumber": 1},
    }
    result = crm.execute_action("BackgroundSendEmail", {"Query": query})
    rows = result.get("EntityCollection") or []
    if isinstance(rows, dict):
        rows = rows.get("Entities") or rows.get("value") or []
    return [_pending(crm, row) for row in rows if isinstance(row, dict)]


def orphans(crm: CrmClient, user_id: str, known: set[str]) -> list[PendingMail]:
    """Our mail left *Sending* by a crash between hand-out and queueing."""
    cutoff = (datetime.now(UTC) - ORPHAN_AGE).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = crm.query(
        "emails",
        filter=(f"statuscode eq 7 and _ownerid_value eq {user_id} and modifiedon lt {cutoff}"),
        expand="email_activity_parties($select=addressused,participationtypemask,_partyid_value)",
    )
    return [_pending(crm, r) for r in rows if str(r.get("activityid")).lower() not in known]


def _pending(crm: CrmClient, row: dict[str, Any]) -> PendingMail:
    roles: dict[str, list[Address]] = {"to": [], "cc": [], "bcc": []}
    for party in row.get("email_activity_parties") or []:
        role = _MASK_ROLE.get(int(party.get("participationtypemask") or 0))
        if role not in roles:
            continue
        email = party.get("addressused") or _party_email(crm, party)
        if email:
            roles[role].append(Address(email, party.get("partyidname") or ""))
    return PendingMail(
        activity_id=str(row["activityid"]).lower(),
        subject=str(row.get("subject") or ""),
        to=tuple(roles["to"]),
        cc=tuple(roles["cc"]),
        bcc=tuple(roles["bcc"]),
        body_html=str(row.get("description") or ""),
        owner_id=row.get("_ownerid_value"),
    )


def _party_email(crm: CrmClient, party: dict[str, Any]) -> str | None:
    """A party bound by id without ``addressused``: read the record's primary address."""
    party_id = party.get("_partyid_value")
    if not party_id:
        return None
    for table in map(entity, _PARTY_ENTITIES):
        column = table.primary_email or ""
        rows = list(
            crm.query(table.entity_set, select=[column], filter=f"{table.key} eq {party_id}")
        )
        if rows and rows[0].get(column):
            return str(rows[0][column])
    return None


def mime_for(mail: PendingMail, sender: Address, message_id: str) -> bytes:
    text = html_to_text(mail.body_html)
    draft = Draft(
        to=mail.to,
        cc=mail.cc,
        bcc=mail.bcc,
        subject=mail.subject,
        body_text=text,
        body_html=mail.body_html or None,
    )
    return build_mime(draft, sender, message_id=message_id)


def message_id_for(mail: PendingMail, sender: Address) -> str:
    domain = sender.email.rpartition("@")[2] or "trackbox.invalid"
    return f"<crm.{mail.activity_id}@{domain}>"


def send_operation(mail: PendingMail, sender: Address) -> SendPending:
    """The outbox operation that sends ``mail`` and marks it Sent: its MIME and Message-ID
    are fixed here, once, so every replay sends the same bytes."""
    message_id = message_id_for(mail, sender)
    return SendPending(
        message_id,
        mime_for(mail, sender, message_id),
        subject=mail.subject,
        activity_id=mail.activity_id,
    )


__all__ = [
    "ORPHAN_AGE",
    "PendingMail",
    "fetch_pending",
    "message_id_for",
    "mime_for",
    "orphans",
    "send_operation",
]
