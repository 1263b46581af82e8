"""Graph's JSON for the fake server: a message's properties read from its MIME, ``$select``
and ``$expand=singleValueExtendedProperties($filter=id eq '…')`` as Graph reads them, folders,
error bodies, and a MIME message built from a JSON ``message`` (for ``sendMail``)."""

from __future__ import annotations

import base64
import email
import email.policy
import functools
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parsedate_to_datetime
from typing import Any

from tests.fakes.graph_store import Folder, GraphError, Mailbox, Message

#: Every message property the fake can answer; ``$select`` of anything else is not understood.
MESSAGE_FIELDS = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isRead",
    "isDraft",
    "body",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "internetMessageHeaders",
)
#: What Graph answers without ``$select`` (``internetMessageHeaders`` only on request).
DEFAULT_FIELDS = tuple(f for f in MESSAGE_FIELDS if f != "internetMessageHeaders")
FOLDER_FIELDS = (
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
)
_EXPAND = re.compile(r"^singleValueExtendedProperties\(\$filter=(.+)\)$", re.IGNORECASE)
_EXPAND_ID = re.compile(r"^id eq '((?:[^']|'')+)'$", re.IGNORECASE)
#: PidTagMessageSize, which Graph computes (a message has no ``size`` property in v1.0).
MESSAGE_SIZE = "integer 0x0e08"


def error_body(code: str, message: str, inner: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if inner:
        body["innerError"] = {"code": inner}
    return {"error": body}


def parse_select(raw: str | None, known: tuple[str, ...], entity: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    for name in names:
        if name not in known:  # Graph's property names are case-sensitive in $select
            raise GraphError(
                400,
                "RequestBroker--ParseUri",
                f"Could not find a property named '{name}' on type "
                f"'Microsoft.OutlookServices.{entity}'.",
                unknown=True,
            )
    return names


def parse_expand(raw: str | None) -> tuple[str, ...] | None:
    """The extended property ids of ``$expand``, the one form the fake understands:
    ``singleValueExtendedProperties($filter=id eq 'A' or id eq 'B')``."""
    if raw is None:
        return None
    found = _EXPAND.match(raw.strip())
    terms = re.split(r" or (?=id eq ')", found.group(1), flags=re.IGNORECASE) if found else []
    ids = [_EXPAND_ID.match(t.strip()) for t in terms]
    if not ids or not all(ids):
        raise GraphError(400, "BadRequest", f"$expand not understood: {raw}", unknown=True)
    return tuple(m.group(1).replace("''", "'") for m in ids if m)


def _parsed(mime: bytes) -> EmailMessage:
    message = email.message_from_bytes(mime, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _recipients(value: str | None) -> list[dict[str, Any]]:
    if not value:
        return []
    return [
        {"emailAddress": {"name": name or address, "address": address}}
        for name, address in getaddresses([value])
        if address
    ]


def _date(value: str | None, fallback: str) -> str:
    if not value:
        return fallback
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return fallback
    if parsed.tzinfo is None:
        return fallback
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):
        return ""


def _conversation_index(message: EmailMessage) -> str | None:
    raw = message.get("Thread-Index")
    if not raw:
        return None
    try:
        base64.b64decode(str(raw).strip(), validate=True)
    except ValueError:
        return None
    return str(raw).strip()


def message_fields(box: Mailbox, m: Message) -> dict[str, Any]:
    """Every property of ``m``: its state, and what its MIME says (the bytes are the truth)."""
    return {
        "id": m.id,
        "createdDateTime": m.created,
        "lastModifiedDateTime": m.modified,
        "changeKey": m.change_key,
        "categories": list(m.categories),
        "receivedDateTime": m.received,
        "importance": "normal",
        "parentFolderId": m.folder_id,
        "isRead": m.is_read,
        "isDraft": m.is_draft,
        "flag": {"flagStatus": m.flag},
        **_mime_fields(m.mime, m.received),
    }


@functools.lru_cache(maxsize=65536)
def _mime_fields(mime: bytes, received: str) -> dict[str, Any]:
    """The properties a message's MIME decides, parsed once per MIME (~1.7 ms a message:
    a bench's 10,000-message delta round would be the fake's parsing, not the client's
    work). Callers only read the answer (it is shared)."""
    parsed = _parsed(mime)
    text = _text(parsed)
    sender = _recipients(parsed.get("Sender")) or _recipients(parsed.get("From"))
    subject = str(parsed.get("Subject", ""))
    topic = re.sub(r"^((re|fw|fwd|aw|wg)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    return {
        "sentDateTime": _date(parsed.get("Date"), received),
        "hasAttachments": any(True for _ in parsed.iter_attachments()),
        "internetMessageId": str(parsed.get("Message-ID", "")).strip() or None,
        "subject": subject,
        "bodyPreview": " ".join(text.split())[:255],
        "conversationId": "AAQk" + base64.urlsafe_b64encode(topic.lower().encode()).decode()[:40],
        "conversationIndex": _conversation_index(parsed),
        "body": {"contentType": "text", "content": text},
        "from": next(iter(_recipients(parsed.get("From"))), None),
        "sender": next(iter(sender), None),
        "toRecipients": _recipients(parsed.get("To")),
        "ccRecipients": _recipients(parsed.get("Cc")),
        "bccRecipients": _recipients(parsed.get("Bcc")),
        "replyTo": _recipients(parsed.get("Reply-To")),
        "internetMessageHeaders": [{"name": k, "value": str(v)} for k, v in parsed.items()],
    }


def message_json(
    box: Mailbox, m: Message, select: tuple[str, ...] | None, expand: tuple[str, ...] | None
) -> dict[str, Any]:
    """``m`` as Graph shows it: ``@odata.etag``, then the selected properties (with ``id``),
    then the expanded extended properties the message has (absent when it has none of them;
    PidTagMessageSize is always there, computed from the MIME)."""
    fields = message_fields(box, m)
    names = DEFAULT_FIELDS if select is None else ("id", *(n for n in select if n != "id"))
    shown: dict[str, Any] = {"@odata.etag": f'W/"{m.change_key}"'}
    shown.update({name: fields[name] for name in names})
    found = []
    for prop_id in expand or ():
        if prop_id.lower() == MESSAGE_SIZE:
            found.append({"id": "Integer 0xe08", "value": str(len(m.mime))})
        elif prop_id.lower() in m.properties:
            stored_id, value = m.properties[prop_id.lower()]
            found.append({"id": stored_id, "value": value})
    if found:
        shown["singleValueExtendedProperties"] = found
    return shown


def folder_json(box: Mailbox, f: Folder, select: tuple[str, ...] | None) -> dict[str, Any]:
    names = FOLDER_FIELDS if select is None else ("id", *(n for n in select if n != "id"))
    fields: dict[str, Any] = {
        "id": f.id,
        "displayName": f.name,
        "parentFolderId": f.parent_id,
        "isHidden": False,
    }
    if "childFolderCount" in names:
        fields["childFolderCount"] = len(box.children(f.id))
    if "unreadItemCount" in names or "totalItemCount" in names:  # a scan: only when asked
        messages = box.in_folder(f.id)
        fields["unreadItemCount"] = sum(1 for m in messages if not m.is_read)
        fields["totalItemCount"] = len(messages)
    return {name: fields[name] for name in names}


def _address(entry: Any) -> str:
    try:
        email_address = entry["emailAddress"]
        name, address = email_address.get("name", ""), email_address["address"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise GraphError(400, "ErrorInvalidRecipients", f"bad recipient {entry!r}") from exc
    return f"{name} <{address}>" if name else str(address)


_JSON_MESSAGE_KEYS = {
    "subject",
    "body",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "from",
    "internetMessageHeaders",
    "categories",
}


def mime_from_json(message: Any, mailbox: str) -> bytes:
    """The MIME Graph would send for a JSON ``message`` (the fields the fake knows)."""
    if not isinstance(message, dict):
        raise GraphError(400, "ErrorInvalidRequest", "'message' must be an object", unknown=True)
    unknown = set(message) - _JSON_MESSAGE_KEYS
    if unknown:
        raise GraphError(
            400,
            "RequestBodyRead",
            f"message properties not understood: {sorted(unknown)}",
            unknown=True,
        )
    built = EmailMessage()
    built["From"] = _address(message["from"]) if "from" in message else mailbox
    for key, header in (
        ("toRecipients", "To"),
        ("ccRecipients", "Cc"),
        ("bccRecipients", "Bcc"),
        ("replyTo", "Reply-To"),
    ):
        if message.get(key):
            built[header] = ", ".join(_address(r) for r in message[key])
    built["Subject"] = str(message.get("subject", ""))
    built["Message-ID"] = make_msgid(domain=mailbox.split("@")[-1])
    built["Date"] = format_datetime(_utcnow())
    for header in message.get("internetMessageHeaders", []):
        name = str(header.get("name", ""))
        if not name.lower().startswith("x-"):
            raise GraphError(
                400,
                "InvalidInternetMessageHeader",
                "The internet message header name should start with 'x-' or 'X-'.",
            )
        built[name] = str(header.get("value", ""))
    body = message.get("body") or {}
    subtype = "html" if str(body.get("contentType", "text")).lower() == "html" else "plain"
    built.set_content(str(body.get("content", "")), subtype=subtype)
    return built.as_bytes()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def complete_mime(mime: bytes, mailbox: str) -> bytes:
    """What Exchange adds to sent MIME that lacks them: Message-ID and Date."""
    parsed = _parsed(mime)
    extra = b""
    if "Message-ID" not in parsed:
        extra += f"Message-ID: {make_msgid(domain=mailbox.split('@')[-1])}\r\n".encode()
    if "Date" not in parsed:
        extra += f"Date: {format_datetime(_utcnow())}\r\n".encode()
    return extra + mime


def recipients_of(mime: bytes) -> list[str]:
    parsed = _parsed(mime)
    values = [str(parsed.get(h, "")) for h in ("To", "Cc", "Bcc")]
    return [address for _, address in getaddresses([v for v in values if v]) if address]
