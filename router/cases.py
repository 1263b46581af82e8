"""E-mail to case: the queue's active automatic record creation rules (``convertrules`` and
their ``convertruleitems``) turn a queue's new mail into a case.

Mail qualifies when it has no tracking token and did not correlate with tracked mail (a
reply carrying the token of the case's mail is filed under that case by correlation, and
opens no new one), and an item of the rule accepts it (a rule without items accepts all;
an item's filters — ``tbx_subjectcontains``, ``tbx_fromdomain`` — exclude what they do not
match). A known sender (contact or account) is the case's customer; an unknown one gets a
new contact when the rule allows unknown senders, else no case. The case, the contact and
the acknowledgement have ids derived from the e-mail's, so a retried pass creates each once.
The acknowledgement is a CRM e-mail in Pending Send from the queue: the queue mailbox's
outgoing step sends it with its tracking token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from core.crm import CrmClient
from core.domain.entities import entity, regarding_target
from core.domain.mailbox_delivery import MailboxDelivery
from core.domain.subjects import find_token
from core.store import Store
from router.incoming import FINISHED, QUEUED, Followup, followups, org_settings, set_stage

#: Namespace of the ids of what a case rule creates (derived from the e-mail's id).
CASE_NAMESPACE = uuid.UUID("5d7c1a40-58b8-4a5e-9d5e-2f6b3e1c0a19")
CUSTOMERS = ("contact", "account")
PARTIES = "email_activity_parties($select=addressused,participationtypemask,_partyid_value)"


@dataclass(frozen=True, slots=True)
class Sender:
    address: str
    logical: str | None
    record_id: str | None


def derived_id(kind: str, activity_id: str) -> str:
    return str(uuid.uuid5(CASE_NAMESPACE, f"{kind}:{activity_id.lower()}"))


def active_rules(crm: CrmClient, queue_id: str) -> list[dict[str, Any]]:
    rows = crm.query("convertrules", filter=f"_queueid_value eq {queue_id} and statecode eq 1")
    return list(rows)


def rule_items(crm: CrmClient, rule_id: str) -> list[dict[str, Any]]:
    rows = crm.query(
        "convertruleitems", filter=f"_convertruleid_value eq {rule_id}", orderby="sequencenumber"
    )
    return list(rows)


def item_accepts(item: dict[str, Any], subject: str, sender: str) -> bool:
    contains = str(item.get("tbx_subjectcontains") or "").strip().lower()
    domain = str(item.get("tbx_fromdomain") or "").strip().lower().lstrip("@")
    if contains and contains not in subject.lower():
        return False
    return not domain or sender.lower().rpartition("@")[2] == domain


def rule_accepts(crm: CrmClient, rule: dict[str, Any], subject: str, sender: str) -> bool:
    items = rule_items(crm, str(rule["convertruleid"]))
    return not items or any(item_accepts(i, subject, sender) for i in items)


def sender_of(email: dict[str, Any]) -> Sender | None:
    for party in email.get("email_activity_parties") or []:
        if int(party.get("participationtypemask") or 0) != 1:
            continue
        logical = party.get("_partyid_value@Microsoft.Dynamics.CRM.lookuplogicalname")
        return Sender(
            str(party.get("addressused") or "").strip().lower(),
            str(logical) if logical else None,
            str(party["_partyid_value"]).lower() if party.get("_partyid_value") else None,
        )
    return None


def process(crm: CrmClient, store: Store, box: MailboxDelivery) -> int:
    """Run the queue's case rules on its newly queued mail; returns cases created."""
    pending = followups(store, QUEUED)
    if not pending:
        return 0
    rules = active_rules(crm, box.owner_id or "") if box.owner_id else []
    tokens = org_settings(crm).tokens if rules else None
    created = 0
    for mail in pending:
        if mail.eligible and rules and tokens is not None:
            created += _case_for(crm, mail, rules, tokens)
        set_stage(store, mail.message_id, FINISHED)
    return created


def _case_for(crm: CrmClient, mail: Followup, rules: list[dict[str, Any]], tokens: Any) -> int:
    """The case for one mail, by the first rule that takes it (0 or 1)."""
    email = crm.get(
        "emails",
        mail.activity_id,
        select=["subject", "_regardingobjectid_value", "statecode", "statuscode"],
        expand=PARTIES,
        annotations=True,
    )
    subject = str(email.get("subject") or "")
    sender = sender_of(email)
    if email.get("_regardingobjectid_value") or find_token(subject, tokens) or sender is None:
        return 0  # filed already (a reply, or a retried pass), or a token: no new case
    for rule in rules:
        if not rule_accepts(crm, rule, subject, sender.address):
            continue
        customer = _customer(crm, rule, sender, mail.activity_id)
        if customer is None:
            continue
        case_id = _open_case(crm, mail.activity_id, subject, customer)
        _file_under(crm, mail.activity_id, email, case_id)
        if rule.get("sendresponsetocustomer"):
            _acknowledge(crm, rule, mail, case_id, subject, customer, sender.address)
        return 1
    return 0


def _customer(
    crm: CrmClient, rule: dict[str, Any], sender: Sender, activity_id: str
) -> tuple[str, str] | None:
    """The case's customer: the known sender, else (when the rule allows) a new contact."""
    if sender.logical in CUSTOMERS and sender.record_id:
        return sender.logical, sender.record_id
    if sender.logical is not None or not rule.get("allowunknownsender") or not sender.address:
        return None  # a user, a queue…: not a customer
    contact_id = derived_id("contact", activity_id)
    local = sender.address.partition("@")[0]
    crm.update(
        "contacts",
        contact_id,
        {"lastname": local or sender.address, "emailaddress1": sender.address},
        if_match=None,
    )
    return "contact", contact_id


def _open_case(crm: CrmClient, activity_id: str, subject: str, customer: tuple[str, str]) -> str:
    case_id = derived_id("incident", activity_id)
    logical, record_id = customer
    body = {
        "title": subject[:200] or "(no subject)",
        f"customerid_{logical}@odata.bind": entity(logical).bind(record_id),
    }
    crm.update("incidents", case_id, body, if_match=None)
    return case_id


def _file_under(crm: CrmClient, activity_id: str, email: dict[str, Any], case_id: str) -> None:
    table = regarding_target("incident")
    crm.update(
        "emails",
        activity_id,
        {
            f"{table.regarding_bind}@odata.bind": table.bind(case_id),
            "statecode": email.get("statecode"),
            "statuscode": email.get("statuscode"),
        },
    )


def _acknowledge(
    crm: CrmClient,
    rule: dict[str, Any],
    mail: Followup,
    case_id: str,
    subject: str,
    customer: tuple[str, str],
    address: str,
) -> None:
    """The acknowledgement: an e-mail from the queue regarding the case, owned by the
    queue's owner and sent with ``SendEmail`` (the CRM gives it the owner's tracking token
    and leaves it in Pending Send for the queue mailbox's outgoing step)."""
    ack_id = derived_id("acknowledgement", mail.activity_id)
    existing = list(crm.query("emails", select=["statecode"], filter=f"activityid eq {ack_id}"))
    if not existing:
        crm.create("emails", _ack_body(crm, rule, mail, case_id, subject, customer, address))
    elif existing[0].get("statecode") != 0:
        return  # sent by an earlier pass
    crm.execute_action("SendEmail", {"IssueSend": True}, bound_to=f"emails({ack_id})")


def _ack_body(
    crm: CrmClient,
    rule: dict[str, Any],
    mail: Followup,
    case_id: str,
    subject: str,
    customer: tuple[str, str],
    address: str,
) -> dict[str, Any]:
    logical, record_id = customer
    table, queue = regarding_target("incident"), entity("queue")
    owner = crm.get("queues", mail.queue_id, select=["_ownerid_value"]).get("_ownerid_value")
    body: dict[str, Any] = {
        "activityid": derived_id("acknowledgement", mail.activity_id),
        "subject": str(rule.get("tbx_responsesubject") or f"Re: {subject}")[:400],
        "description": str(rule.get("tbx_responsetext") or ""),
        f"{table.regarding_bind}@odata.bind": table.bind(case_id),
        "email_activity_parties": [
            {
                f"{queue.party_nav}@odata.bind": queue.bind(mail.queue_id),
                "participationtypemask": 1,
            },
            {
                f"{entity(logical).party_nav}@odata.bind": entity(logical).bind(record_id),
                "addressused": address,
                "participationtypemask": 2,
            },
        ],
    }
    if owner:
        body["ownerid@odata.bind"] = f"/systemusers({owner})"
    return body


__all__ = ["active_rules", "derived_id", "item_accepts", "process", "sender_of"]
