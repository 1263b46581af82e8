"""The e-mail messages of the Web API (reference section 5) with their real parameter and
response names: WhoAmI, GetTrackingTokenEmail, SendEmail, BackgroundSendEmail,
CheckPromoteEmail, CheckIncomingEmail, DeliverPromoteEmail, DeliverIncomingEmail.

Promotion is idempotent by Message-ID: the check and the insert run in one write transaction,
so two users promoting the same message at the same moment still get one activity.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from email.utils import getaddresses
from typing import Any

from core.domain import entities as crm_table
from core.domain.resolution import SENDER_ORDER

from . import correlate
from .entities import ENTITIES
from .errors import ODataError, bad_request, not_found
from .records import BIND_RE, Caller, Records, coerce
from .storage import Row, now_iso

#: The e-mail-enabled tables in the CRM's resolution order (the other tables, queues, last).
RESOLVE_ORDER = tuple(
    sorted(
        crm_table.EMAIL_ENABLED,
        key=lambda e: SENDER_ORDER.index(e) if e in SENDER_ORDER else len(SENDER_ORDER),
    )
)
REASON_DUPLICATE, REASON_NO_CORRELATION, REASON_CORRELATION = 0, 1, 2
REASON_NO_RECIPIENT, REASON_INTERNAL, REASON_SENDER, REASON_ACCEPT_ALL = 3, 4, 5, 6
MASKS = {"From": 1, "To": 2, "Cc": 3, "Bcc": 4}


def org_row(records: Records) -> Row:
    rows = records.storage.query("SELECT * FROM organization LIMIT 1")
    if not rows:
        raise ODataError(500, "0x80040216", "The organisation is not set up.")
    return rows[0]


def parse_addresses(value: Any) -> list[tuple[str, str]]:
    """``"Jane <jane@x>; bob@y"`` → [(name, address)], skipping empty entries."""
    if value is None:
        return []
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    if not isinstance(value, str):
        raise bad_request("Address parameters must be ';'-separated strings.")
    parts = [p.strip() for p in value.replace(",", ";").split(";") if p.strip()]
    out = []
    for name, addr in getaddresses(parts):
        if addr and "@" in addr:
            out.append((name, addr.strip()))
    return out


def resolve_address(records: Records, address: str) -> list[tuple[str, str, int]]:
    """Every active e-mail-enabled record with this address: (logical, id, column number).

    A user is a party only through an address that is theirs alone: user addresses are unique
    and only an administrator sets them (records.py), and should two users still share one
    (a database from before that rule) neither is resolved — being a party grants read access
    to the e-mail, and which of them merely claimed the address cannot be told (issue 18)."""
    found: list[tuple[str, str, int]] = []
    for logical in RESOLVE_ORDER:
        ent = ENTITIES[logical]
        for num, col in enumerate(ent.email_attrs, start=1):
            active = "isdisabled = 0" if "isdisabled" in ent.attributes else "statecode = 0"
            rows = records.storage.query(
                f'SELECT "{ent.key}" AS k FROM "{logical}" WHERE "{col}" = ? COLLATE NOCASE '
                f"AND {active}",
                (address,),
            )
            if logical == "systemuser" and len(rows) > 1:
                continue
            for row in rows:
                if all(f[1] != row["k"] for f in found):
                    found.append((logical, row["k"], num))
    return found


def _user_email(records: Records, user_id: str) -> str:
    return str(
        records.storage.scalar(
            "SELECT internalemailaddress FROM systemuser WHERE systemuserid = ?", (user_id,)
        )
        or ""
    )


def _importance(value: Any) -> int:
    if value is None or value == "":
        return 1
    text = str(value).strip().lower()
    mapping = {"0": 0, "1": 1, "2": 2, "low": 0, "normal": 1, "high": 2}
    if text not in mapping:
        raise bad_request(f"Importance '{value}' is not valid; use 0, 1 or 2.")
    return mapping[text]


def _text(params: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise bad_request(f"The parameter '{name}' is required.")
        return None
    if not isinstance(value, str):
        raise bad_request(f"The parameter '{name}' must be a string.")
    return value


def _extra_properties(records: Records, extra: Any) -> tuple[Row, dict[str, Any]]:
    """ExtraProperties (an email entity) → (trusted columns, binds for the create body)."""
    if extra is None:
        return {}, {}
    if isinstance(extra, list):  # SDK-style [{"Key":..., "Value":...}]
        extra = {i.get("Key"): i.get("Value") for i in extra if isinstance(i, dict)}
    if not isinstance(extra, dict):
        raise bad_request("ExtraProperties must be an email entity object.")
    email = ENTITIES["email"]
    columns: Row = {}
    binds: dict[str, Any] = {}
    for key, value in extra.items():
        if key.startswith("@") or key in ("activityid",):
            continue
        if key.endswith("@odata.bind"):
            binds[key] = value
            continue
        attr = email.attributes.get(key)
        if attr is None or attr.is_lookup:
            raise bad_request(f"ExtraProperties: '{key}' is not an attribute of email.")
        if key in ("inreplyto", "conversationindex", "trackingtoken", "correlationmethod"):
            columns[key] = coerce(email, attr, value)
        elif key in ("messageid", "statecode", "statuscode", "directioncode"):
            continue
        else:
            binds[key] = value
    return columns, binds


def _promoted_columns(
    params: dict[str, Any],
    message_id: str,
    outgoing: bool,
    received: str | None,
    extra_cols: Row,
) -> Row:
    """The server-set columns of a promoted e-mail: completed (received, or sent when it is
    the caller's own outgoing message), dated by ``ReceivedOn``."""
    email = ENTITIES["email"]
    trusted: Row = {
        "messageid": message_id,
        "directioncode": int(outgoing),
        "statecode": 1,
        "statuscode": 3 if outgoing else 4,
        "submittedby": _text(params, "SubmittedBy"),
        "prioritycode": _importance(params.get("Importance")),
        **extra_cols,
    }
    if received:
        trusted["actualend"] = coerce(email, email.attributes["actualend"], received)
        if outgoing:
            trusted["senton"] = trusted["actualend"]
    return trusted


def _correlated_columns(match: correlate.Match, *, keep_regarding: bool) -> Row:
    """Link the new e-mail to the one it correlates with, inheriting its regarding record
    unless the client set one (``keep_regarding``)."""
    cols: Row = {
        "correlationmethod": match.method,
        "correlatedactivityid": match.email["activityid"],
        "correlatedactivityid__type": "email",
    }
    if match.sets_parent:
        cols["parentactivityid"] = match.email["activityid"]
        cols["parentactivityid__type"] = "email"
    if not keep_regarding and match.email.get("regardingobjectid"):
        cols["regardingobjectid"] = match.email["regardingobjectid"]
        cols["regardingobjectid__type"] = match.email["regardingobjectid__type"]
    return cols


def _filed_for(caller: Caller, binds: dict[str, Any]) -> str:
    """Whose mail a promotion files: the caller's, or for the application user (server-side
    synchronisation) the owner it binds in ExtraProperties (``ownerid@odata.bind``)."""
    ref = binds.get("ownerid@odata.bind") or binds.get("ownerid_systemuser@odata.bind")
    if caller.is_application and isinstance(ref, str) and (m := BIND_RE.search(ref.strip())):
        return m.group(2).lower()
    return caller.user_id


def _activity_parties(
    records: Records, caller: Caller, roles: list[tuple[str, list[tuple[str, str]]]]
) -> list[dict[str, Any]]:
    """The ``email_activity_parties`` of a promoted e-mail: for each address, one party per
    record it resolves to that the caller may read (a party is a lookup bound as the caller,
    and binding to an unreadable record is refused), or one unresolved party carrying just
    the address."""
    parties: list[dict[str, Any]] = []
    for role, addrs in roles:
        for _name, addr in addrs:
            hits = [
                hit
                for hit in resolve_address(records, addr)
                if _readable(records, caller, hit[0], hit[1])
            ]
            if not hits:
                parties.append({"addressused": addr, "participationtypemask": MASKS[role]})
            for logical, key, num in hits:
                table = crm_table.entity(logical)
                parties.append(
                    {
                        f"{table.party_nav}@odata.bind": table.bind(key),
                        "addressused": addr,
                        "addressusedemailcolumnnumber": num,
                        "participationtypemask": MASKS[role],
                    }
                )
    return parties


def _readable(records: Records, caller: Caller, logical: str, key: str) -> bool:
    ent = ENTITIES[logical]
    row = records.storage.get(ent, key)
    return row is not None and records.can_read(caller, ent, row)


def promote(
    records: Records, caller: Caller, params: dict[str, Any], *, incoming: bool = False
) -> str:
    """DeliverPromoteEmail / DeliverIncomingEmail: create (or find) the e-mail activity."""
    if not isinstance(params, dict):
        raise bad_request("The request body must be a JSON object.")
    message_id = _text(params, "MessageId", required=True)
    assert message_id is not None
    subject = _text(params, "Subject") or ""
    body_html = _text(params, "Body")
    senders = parse_addresses(params.get("From"))
    lists = {role: parse_addresses(params.get(role)) for role in ("To", "Cc", "Bcc")}
    received = _text(params, "ReceivedOn")
    extra_cols, extra_binds = _extra_properties(records, params.get("ExtraProperties"))
    attachments = params.get("Attachments") or []
    if not isinstance(attachments, list):
        raise bad_request("Attachments must be a collection of attachment entities.")
    email = ENTITIES["email"]
    org = org_row(records)
    with records.storage.transaction():
        existing = records.storage.scalar(
            "SELECT activityid FROM email WHERE messageid = ? ORDER BY createdon LIMIT 1",
            (message_id,),
        )
        if existing:
            return str(existing)
        me = _user_email(records, _filed_for(caller, extra_binds)).lower()
        outgoing = bool(senders) and senders[0][1].lower() == me and not incoming
        trusted = _promoted_columns(params, message_id, outgoing, received, extra_cols)
        body: dict[str, Any] = {"subject": subject[:800], "description": body_html, **extra_binds}
        has_regarding = any(k.startswith("regardingobjectid") for k in extra_binds)
        match = correlate.correlate(
            records.storage,
            org,
            subject=subject,
            in_reply_to=trusted.get("inreplyto"),
            conversation_index=trusted.get("conversationindex"),
            message_id=message_id,
            sender=senders[0] if senders else None,
            to=lists["To"],
            cc=lists["Cc"],
        )
        if match is not None:
            trusted.update(_correlated_columns(match, keep_regarding=has_regarding))
        roles = [("From", senders), *lists.items()]
        body["email_activity_parties"] = _activity_parties(records, caller, roles)
        kept, dropped = _attachments(attachments, int(org.get("maxuploadfilesize") or 0))
        body["email_activity_mime_attachment"] = kept
        if dropped:
            trusted["notifications"] = 1
        row = records.create(caller, email, body, trusted=trusted)
        return str(row["activityid"])


def _attachments(items: list[Any], limit: int) -> tuple[list[dict[str, Any]], int]:
    kept, dropped = [], 0
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise bad_request("Each attachment must be an object.")

        def field(*names: str, item: dict[str, Any] = item) -> Any:
            for name in names:
                if name in item:
                    return item[name]
            return None

        content = field("body", "Body", "documentbody") or ""
        try:
            size = len(base64.b64decode(content, validate=True))
        except (binascii.Error, ValueError, TypeError) as exc:
            raise bad_request("Attachment bodies must be base64.") from exc
        if limit and size > limit:
            dropped += 1
            continue
        kept.append(
            {
                "filename": field("filename", "FileName", "Filename"),
                "mimetype": field("mimetype", "MimeType") or "application/octet-stream",
                "body": content,
                "subject": field("subject", "Subject"),
                "attachmentnumber": n,
            }
        )
    return kept, dropped


def who_am_i(records: Records, caller: Caller) -> dict[str, Any]:
    return {
        "BusinessUnitId": caller.business_unit_id,
        "UserId": caller.user_id,
        "OrganizationId": org_row(records)["organizationid"],
    }


def next_tracking_token(records: Records, user_id: str) -> str:
    """Allocate the caller's next token from usersettings (counter wraps at the org max)."""
    org = org_row(records)
    settings_ent = ENTITIES["usersettings"]
    with records.storage.transaction():
        row = records.storage.get(settings_ent, user_id)
        if row is None:
            raise not_found("usersettings", user_id)
        counter = int(row.get("nexttrackingnumber") or 1)
        maximum = int(org.get("maximumtrackingnumber") or 999)
        token = correlate.make_token(org, int(row.get("trackingtokenid") or 1), counter)
        records.storage.update(
            settings_ent, user_id, {"nexttrackingnumber": counter + 1 if counter < maximum else 0}
        )
        return token


def get_tracking_token(records: Records, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    subject = _text(params, "Subject") or ""
    org = org_row(records)
    existing = correlate.find_token(subject, org)
    return {"TrackingToken": existing or next_tracking_token(records, caller.user_id)}


def sender_mailbox(records: Records, email_id: str, owner: str) -> Row | None:
    rows = records.storage.query(
        "SELECT partyid FROM activityparty WHERE activityid = ? AND participationtypemask = 1"
        " AND partyid__type IN ('systemuser', 'queue') LIMIT 1",
        (email_id,),
    )
    regarding = rows[0]["partyid"] if rows else owner
    boxes = records.storage.query(
        "SELECT * FROM mailbox WHERE regardingobjectid = ? LIMIT 1", (regarding,)
    )
    return boxes[0] if boxes else None


def send_email(
    records: Records, caller: Caller, email_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    """SendEmail: add the token, then mark Sent (IssueSend false), or leave it Pending Send
    for whoever sends the sender mailbox's mail: the desktop client or, for server-side
    synchronisation, the router (issue 19)."""
    ent = ENTITIES["email"]
    row = records.storage.get(ent, email_id)
    if row is None or not records.can_read(caller, ent, row):
        raise not_found("email", email_id)
    records.check_write(caller, ent, row)
    if row["statecode"] != 0:
        raise bad_request("Only an open (draft) e-mail can be sent.", "0x8004360d")
    issue = params.get("IssueSend", True)
    if not isinstance(issue, bool):
        raise bad_request("IssueSend must be a Boolean.")
    org = org_row(records)
    token = _text(params, "TrackingToken")
    subject = row.get("subject") or ""
    if token is None and not correlate.find_token(subject, org):
        sender = row.get("ownerid") if caller.is_application else None
        token = next_tracking_token(records, sender or caller.user_id)
    token = token or correlate.find_token(subject, org)
    if token and token not in subject:
        subject = f"{subject} {token}".strip()
    parties = records.storage.query(
        "SELECT partyid, participationtypemask FROM activityparty WHERE activityid = ?", (email_id,)
    )
    if not any(p["participationtypemask"] in (2, 3, 4) for p in parties):
        raise bad_request(
            "The e-mail must have at least one recipient before it can be sent.", "0x8004360c"
        )
    unresolved = [p for p in parties if p["partyid"] is None]
    if issue and unresolved and not org.get("allowunresolvedpartiesonemailsend"):
        raise bad_request(
            "The e-mail contains one or more unresolved parties and the "
            "organisation does not allow sending to them.",
            "0x80048a00",
        )
    now = now_iso()
    values: Row = {"subject": subject, "trackingtoken": token, "statecode": 1}
    if not issue:
        values.update(statuscode=3, senton=now, actualend=now)
    else:
        box = sender_mailbox(records, email_id, row.get("ownerid") or caller.user_id)
        method = box.get("outgoingemaildeliverymethod") if box else 0
        if method in (1, 2):
            # Pending Send: the desktop client (1) or the router (2) sends it and marks it Sent
            values.update(statuscode=6)
        else:
            raise bad_request(
                "The sender's mailbox has no outgoing e-mail delivery method.", "0x8005e238"
            )
        if box is not None:
            values["sendermailboxid"], values["sendermailboxid__type"] = box["mailboxid"], "mailbox"
    records.update(caller, ent, email_id, {}, trusted=values)
    return {"Subject": subject}


def background_send(
    records: Records, caller: Caller, params: dict[str, Any], shape: Any
) -> dict[str, Any]:
    """BackgroundSendEmail: hand out the caller's Pending Send e-mails and mark them Sending
    (7) in the same transaction, so no other caller gets them."""
    query = params.get("Query") or {}
    limit = 50
    if isinstance(query, dict):
        page = query.get("PageInfo") or {}
        for candidate in (
            query.get("TopCount"),
            page.get("Count") if isinstance(page, dict) else None,
        ):
            if isinstance(candidate, int) and candidate > 0:
                limit = min(candidate, 500)
    sql, args = _pending_send_sql(caller), _pending_args(caller)
    sender_box = _sender_mailbox_condition(query)
    if sender_box is not None:  # the router asks one mailbox's mail at a time
        sql = sql.replace(" ORDER BY", " AND sendermailboxid = ? ORDER BY")
        args = (*args, sender_box)
    with records.storage.transaction():
        rows = records.storage.query(sql, (*args, limit))
        handed = []
        for row in rows:
            updated = records.storage.update(
                ENTITIES["email"], row["activityid"], {"statuscode": 7}
            )
            if updated is not None:
                handed.append(updated)
    has = [bool(r.get("attachmentcount")) for r in handed]
    return {"EntityCollection": shape(handed), "HasAttachments": has}


#: Pending Send e-mail whose sender mailbox is sent by server-side synchronisation.
_SERVER_SENT = (
    "sendermailboxid IN (SELECT mailboxid FROM mailbox WHERE outgoingemaildeliverymethod = 2)"
)


def _pending_send_sql(caller: Caller) -> str:
    """Which Pending Send e-mail a BackgroundSendEmail caller gets: the application user
    (the router) every server-side mailbox's; a user their own, except what the router
    sends, so that nothing is sent twice (issue 19)."""
    if caller.is_application:
        return (
            f"SELECT * FROM email WHERE statuscode = 6 AND {_SERVER_SENT}"
            " ORDER BY modifiedon, activityid LIMIT ?"
        )
    return (
        "SELECT * FROM email WHERE statuscode = 6 AND (ownerid = ? OR activityid IN ("
        "SELECT activityid FROM activityparty WHERE participationtypemask = 1 AND "
        f"partyid = ?)) AND NOT (sendermailboxid IS NOT NULL AND {_SERVER_SENT})"
        " ORDER BY modifiedon, activityid LIMIT ?"
    )


def _pending_args(caller: Caller) -> tuple[str, ...]:
    return () if caller.is_application else (caller.user_id, caller.user_id)


def _sender_mailbox_condition(query: object) -> str | None:
    """The mailbox id of a QueryExpression condition ``sendermailboxid Equal <id>`` (the only
    criterion BackgroundSendEmail honours here); None when there is none. Anything else in
    the criteria is refused rather than silently ignored."""
    criteria = query.get("Criteria") if isinstance(query, dict) else None
    if not criteria:
        return None
    conditions = criteria.get("Conditions") if isinstance(criteria, dict) else None
    if not isinstance(conditions, list) or len(conditions) != 1:
        raise bad_request("BackgroundSendEmail: only a sendermailboxid condition is supported.")
    cond = conditions[0]
    values = cond.get("Values") if isinstance(cond, dict) else None
    if (
        not isinstance(cond, dict)
        or str(cond.get("AttributeName", "")).lower() != "sendermailboxid"
        or cond.get("Operator") not in ("Equal", 0)
        or not isinstance(values, list)
        or len(values) != 1
    ):
        raise bad_request("BackgroundSendEmail: only a sendermailboxid condition is supported.")
    value = values[0].get("Value") if isinstance(values[0], dict) else values[0]
    return str(value).lower()


def check_promote(records: Records, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    message_id = _text(params, "MessageId", required=True)
    if records.storage.scalar("SELECT 1 FROM email WHERE messageid = ? LIMIT 1", (message_id,)):
        return {"ShouldPromote": False, "ReasonCode": REASON_DUPLICATE}
    org = org_row(records)
    subject = _text(params, "Subject")
    match = correlate.correlate(
        records.storage, org, subject=subject, in_reply_to=None, conversation_index=None
    )
    if match is not None:
        return {"ShouldPromote": True, "ReasonCode": REASON_CORRELATION}
    return {"ShouldPromote": True, "ReasonCode": REASON_ACCEPT_ALL}


def check_incoming(records: Records, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    """CheckIncomingEmail: duplicate check, internal-mail rule, then each internal recipient's
    ``incomingemailfilteringmethod``."""
    message_id = _text(params, "MessageId", required=True)
    if records.storage.scalar("SELECT 1 FROM email WHERE messageid = ? LIMIT 1", (message_id,)):
        return {"ShouldDeliver": False, "ReasonCode": REASON_DUPLICATE}
    org = org_row(records)
    senders = parse_addresses(params.get("From"))
    if not senders:
        return {"ShouldDeliver": False, "ReasonCode": 7}
    sender_hits = resolve_address(records, senders[0][1])
    internal = any(h[0] in ("systemuser", "queue") for h in sender_hits)
    if internal and org.get("ignoreinternalemail"):
        return {"ShouldDeliver": False, "ReasonCode": REASON_INTERNAL}
    extra_cols, _ = _extra_properties(records, params.get("ExtraProperties"))
    subject = _text(params, "Subject")
    to, cc = parse_addresses(params.get("To")), parse_addresses(params.get("Cc"))
    match = correlate.correlate(
        records.storage,
        org,
        subject=subject,
        in_reply_to=extra_cols.get("inreplyto"),
        conversation_index=extra_cols.get("conversationindex"),
        message_id=message_id,
        sender=senders[0],
        to=to,
        cc=cc,
    )

    def recipients() -> Iterator[tuple[str, str]]:
        yield from to
        yield from cc
        yield from parse_addresses(params.get("Bcc"))  # read only if To and Cc decide nothing

    best: tuple[bool, int] | None = None
    for _name, addr in recipients():
        for logical, key, _num in resolve_address(records, addr):
            if logical not in ("systemuser", "queue"):
                continue
            method = _filtering(records, logical, key)
            verdict = _verdict(method, match is not None, sender_hits)
            if verdict[0]:
                return {"ShouldDeliver": True, "ReasonCode": verdict[1]}
            best = best or verdict
    if best is None:
        return {"ShouldDeliver": False, "ReasonCode": REASON_NO_RECIPIENT}
    return {"ShouldDeliver": False, "ReasonCode": best[1]}


def _filtering(records: Records, logical: str, key: str) -> int:
    if logical == "queue":
        return int(
            records.storage.scalar(
                "SELECT incomingemailfilteringmethod FROM queue WHERE queueid = ?", (key,)
            )
            or 0
        )
    value = records.storage.scalar(
        "SELECT incomingemailfilteringmethod FROM usersettings WHERE systemuserid = ?", (key,)
    )
    return 1 if value is None else int(value)


def _verdict(
    method: int, correlated: bool, sender_hits: list[tuple[str, str, int]]
) -> tuple[bool, int]:
    if method == 0:
        return True, REASON_ACCEPT_ALL
    if correlated and method in (1, 2, 3):
        return True, REASON_CORRELATION
    if method == 2 and any(h[0] in ("contact", "account", "lead") for h in sender_hits):
        return True, REASON_SENDER
    if method == 3 and sender_hits:
        return True, REASON_SENDER
    if method == 1:
        return False, REASON_NO_CORRELATION
    return False, REASON_NO_RECIPIENT if method == 4 else 7


def deliver_incoming(records: Records, caller: Caller, params: dict[str, Any]) -> str:
    if params.get("ValidateBeforeCreate"):
        verdict = check_incoming(records, caller, params)
        if not verdict["ShouldDeliver"] and verdict["ReasonCode"] != REASON_DUPLICATE:
            raise bad_request(
                f"The e-mail was not delivered (ReasonCode {verdict['ReasonCode']}).", "0x80048f0c"
            )
    return promote(records, caller, params, incoming=True)
