"""Outgoing mail, server-side: the CRM's e-mails in Pending Send from a mailbox's owner (a
user or a queue) are claimed (*Sending*), given a tracking token, and queued in the
mailbox's outbox as ``SendPending`` operations (``core.sync.pending_send``); the outbox
sends each once through the mailbox (SMTP, saved to Sent Items) and marks it Sent
(``core.outbox.operations.CrmApplier``). A failure is an alert on the mailbox: a
``tracelog`` row the administrator sees (``router.mailbox_status``).

Claiming is atomic: ``BackgroundSendEmail`` (as CRM for Outlook and the E-mail Router did)
hands each Pending Send mail to one caller only and marks it *Sending* in the same CRM
transaction, so two workers (a lock that expired, two machines) never both send it. The
router's application user gets every server-side mailbox's mail; the query asks for this
mailbox's only (a ``sendermailboxid`` condition). A CRM that ignored the condition and handed
out another mailbox's mail gets it put back in Pending Send for that mailbox's own pass.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from core.crm import CrmClient, CrmPermanentError
from core.domain.crm_settings import OrgSettings
from core.domain.mailbox_delivery import MailboxDelivery
from core.domain.model import Address, Reason, TrackState
from core.domain.subjects import find_token
from core.outbox.kinds import OpKind
from core.outbox.queue import Outbox
from core.store import Store
from core.sync.pending_send import ORPHAN_AGE, PendingMail, _pending, send_operation

log = logging.getLogger("trackbox.router.outgoing")

PARTIES = "email_activity_parties($select=addressused,participationtypemask,_partyid_value)"
#: Statuses of a mail waiting for this router: Pending Send, and Sending left by a crash.
PENDING_SEND, SENDING = 6, 7
MAX_PER_RUN = 50


def pending_filter(box: MailboxDelivery, status: int) -> str:
    """The mailbox's mail in ``status``: sent through it (``SendEmail`` records the sender
    mailbox), or from its owner."""
    return (
        f"statuscode eq {status} and (_sendermailboxid_value eq {box.mailbox_id} or "
        f"email_activity_parties/any(p: p/participationtypemask eq 1 and "
        f"p/_partyid_value eq {box.owner_id}))"
    )


def hand_out_query(box: MailboxDelivery, limit: int = MAX_PER_RUN) -> dict[str, Any]:
    """The ``BackgroundSendEmail`` QueryExpression for this mailbox's Pending Send mail."""
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.QueryExpression",
        "EntityName": "email",
        "ColumnSet": {"AllColumns": True},
        "Criteria": {
            "Conditions": [
                {
                    "AttributeName": "sendermailboxid",
                    "Operator": "Equal",
                    "Values": [{"Value": box.mailbox_id, "Type": "System.Guid"}],
                }
            ]
        },
        "PageInfo": {"Count": limit, "PageNumber": 1},
    }


def hand_out(crm: CrmClient, box: MailboxDelivery) -> list[dict[str, Any]]:
    """This mailbox's Pending Send mail, now *Sending* and ours alone (atomic in the CRM)."""
    result = crm.execute_action("BackgroundSendEmail", {"Query": hand_out_query(box)})
    rows = result.get("EntityCollection") or []
    if isinstance(rows, dict):
        rows = rows.get("Entities") or rows.get("value") or []
    mine = []
    for row in (r for r in rows if isinstance(r, dict)):
        sender_box = str(row.get("_sendermailboxid_value") or "").lower()
        if sender_box and sender_box != box.mailbox_id.lower():
            _put_back(crm, row)  # another mailbox's: its own pass sends it
        else:
            mine.append(row)
    return mine


def _put_back(crm: CrmClient, row: dict[str, Any]) -> None:
    log.warning("router: the CRM handed out mail of another mailbox; put back in Pending Send")
    crm.update("emails", str(row["activityid"]), {"statecode": 1, "statuscode": PENDING_SEND})


def claim_pending(crm: CrmClient, box: MailboxDelivery, known: set[str]) -> list[PendingMail]:
    """The mailbox's Pending Send mail, handed out to this pass alone (*Sending*, with its
    token in the subject), and the mailbox's *Sending* mail a crash left unqueued (older
    than ``ORPHAN_AGE``)."""
    if not box.owner_id:
        return []
    rows = hand_out(crm, box)
    org = OrgSettings.from_crm(next(iter(crm.query("organizations", top=1)), {})) if rows else None
    claimed = [_with_token(crm, org, row) for row in rows if org is not None]
    cutoff = datetime.now(UTC) - ORPHAN_AGE
    for row in crm.query("emails", filter=pending_filter(box, SENDING), expand=PARTIES):
        activity = str(row.get("activityid")).lower()
        if activity not in known and _older(row.get("modifiedon"), cutoff):
            claimed.append(row)
    return [_pending(crm, row) for row in claimed]


def _with_token(crm: CrmClient, org: OrgSettings, row: dict[str, Any]) -> dict[str, Any]:
    """Give mail put in Pending Send without a token one (``SendEmail`` gives one already);
    the mail is ours alone by now, so this PATCH races nobody."""
    subject = str(row.get("subject") or "")
    if find_token(subject, org.tokens) is not None or not org.correlation_enabled:
        return row
    token = _new_token(crm, subject)
    if not token:
        return row
    subject = f"{subject} {token}".strip()
    values = {"statecode": 1, "statuscode": SENDING, "subject": subject, "trackingtoken": token}
    crm.update("emails", str(row["activityid"]), values)  # a closed activity restates its state
    return {**row, "subject": subject}


def _new_token(crm: CrmClient, subject: str) -> str | None:
    """A token for mail put in Pending Send without ``SendEmail`` (which gives one). The
    service may have no token numbers of its own: the mail then goes without one."""
    try:
        answer = crm.execute_action("GetTrackingTokenEmail", {"Subject": subject})
    except CrmPermanentError as exc:
        log.warning("router: no tracking token for a Pending Send e-mail: %s", exc)
        return None
    return str(answer.get("TrackingToken") or "") or None


def _older(value: object, cutoff: datetime) -> bool:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return when < cutoff


def queue_sends(store: Store, crm: CrmClient, box: MailboxDelivery) -> int:
    """Claim the owner's Pending Send mail and queue one send operation each."""
    outbox = Outbox(store)
    known = {key.removeprefix("send:") for key in outbox.keys_of(OpKind.SEND_PENDING)}
    sender = Address(box.address, box.name)
    mails = claim_pending(crm, box, known)
    for mail in mails:
        send = send_operation(mail, sender)
        with store.transaction():
            outbox.enqueue(send)
            store.tracking.set_state(
                send.message_id,
                TrackState.PENDING,
                activity_id=mail.activity_id,
                reason=Reason("pending-send", "Waiting to be sent by the router"),
            )
    return len(mails)


__all__ = [
    "claim_pending",
    "hand_out",
    "hand_out_query",
    "pending_filter",
    "queue_sends",
]
