"""Outgoing mail, server-side: the CRM's e-mails in Pending Send from a mailbox's owner (a
user or a queue) are claimed (*Sending*), given a tracking token, and queued in the
mailbox's outbox as ``SendPending`` operations (``core.sync.pending_send``); the outbox
sends each once through the mailbox (SMTP, saved to Sent Items) and marks it Sent
(``core.outbox.operations.CrmApplier``). A failure is an alert on the mailbox: a
``tracelog`` row the administrator sees.

The service reads every user's mail, so Pending Send is found by a query on the sender
party rather than ``BackgroundSendEmail`` (which hands out only the caller's own mail).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from core.crm import CrmClient, CrmError, CrmPermanentError
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
#: ``tracelog.level``: 3 is an error.
ALERT_ERROR = 3


def pending_filter(box: MailboxDelivery, status: int) -> str:
    """The mailbox's mail in ``status``: sent through it (``SendEmail`` records the sender
    mailbox), or from its owner."""
    return (
        f"statuscode eq {status} and (_sendermailboxid_value eq {box.mailbox_id} or "
        f"email_activity_parties/any(p: p/participationtypemask eq 1 and "
        f"p/_partyid_value eq {box.owner_id}))"
    )


def claim_pending(crm: CrmClient, box: MailboxDelivery, known: set[str]) -> list[PendingMail]:
    """The owner's Pending Send mail, claimed (*Sending*, with its token in the subject),
    and the owner's *Sending* mail a crash left unqueued (older than ``ORPHAN_AGE``)."""
    if not box.owner_id:
        return []
    rows = list(
        crm.query(
            "emails",
            filter=pending_filter(box, PENDING_SEND),
            expand=PARTIES,
            top=MAX_PER_RUN,
        )
    )
    org = OrgSettings.from_crm(next(iter(crm.query("organizations", top=1)), {})) if rows else None
    claimed = [_claim(crm, org, row) for row in rows if org is not None]
    cutoff = datetime.now(UTC) - ORPHAN_AGE
    for row in crm.query("emails", filter=pending_filter(box, SENDING), expand=PARTIES):
        activity = str(row.get("activityid")).lower()
        if activity not in known and _older(row.get("modifiedon"), cutoff):
            claimed.append(row)
    return [_pending(crm, row) for row in claimed]


def _claim(crm: CrmClient, org: OrgSettings, row: dict[str, Any]) -> dict[str, Any]:
    """Mark the mail *Sending* (no other pass takes it) with a tracking token."""
    subject = str(row.get("subject") or "")
    token = find_token(subject, org.tokens)
    values: dict[str, Any] = {"statecode": 1, "statuscode": SENDING}
    if token is None and org.correlation_enabled:
        token = _new_token(crm, subject)
        if token:
            subject = f"{subject} {token}".strip()
            values.update(subject=subject, trackingtoken=token)
    crm.update("emails", str(row["activityid"]), values)
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


def record_alert(crm: CrmClient, box: MailboxDelivery, text: str, code: str) -> None:
    """An alert on the mailbox (``tracelog``); never raises (the run reports it anyway)."""
    body = {
        "regardingobjectid_mailbox@odata.bind": f"/mailboxes({box.mailbox_id})",
        "level": ALERT_ERROR,
        "text": text[:4000],
        "tracecode": code[:100],
        "machinename": "trackbox-router",
    }
    try:
        crm.create("tracelogs", body)
    except CrmError as exc:
        log.warning("router alert for mailbox %s not recorded: %s", box.mailbox_id, exc)


__all__ = ["claim_pending", "pending_filter", "queue_sends", "record_alert"]
