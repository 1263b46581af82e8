"""SOAP/XML for the fake EWS server: namespaces, envelopes, and the rendering of folders and
items as Exchange 2016 would (only the properties the client asked for)."""

from __future__ import annotations

import base64
from datetime import UTC
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from xml.sax.saxutils import escape

from lxml import etree

from tests.fakes.ews_store import PATH_TO_DISTINGUISHED, Item, folder_id

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"  # SOAP autodiscover
WSA = "http://www.w3.org/2005/08/addressing"
NS = {"s": S, "m": M, "t": T, "a": A, "wsa": WSA}

#: Item field URIs this server can answer (anything else requested fails the test).
ITEM_FIELDS = {
    "item:Subject",
    "message:Sender",
    "message:From",
    "message:ToRecipients",
    "message:CcRecipients",
    "item:DateTimeSent",
    "item:DateTimeReceived",
    "item:Size",
    "item:HasAttachments",
    "message:IsRead",
    "message:ConversationIndex",
    "item:InReplyTo",
    "message:References",
    "item:Categories",
    "message:InternetMessageId",
    "item:MimeContent",
    "item:ItemClass",
}
FOLDER_FIELDS = {
    "folder:DisplayName",
    "folder:FolderClass",
    "folder:ParentFolderId",
    "folder:TotalCount",
    "folder:ChildFolderCount",
    "folder:UnreadCount",
    "folder:DistinguishedFolderId",
    "folder:PermissionSet",
    "folder:EffectiveRights",
    "folder:ManagedFolderInformation",
    "folder:FolderId",
}
CRMID = ("PublicStrings", "crmid", "String")
#: PR_FLAG_STATUS, Outlook's follow-up flag, as exchangelib names it by tag.
FLAG_STATUS = ("", "0x1090", "Integer")


def q(tag: str) -> str:
    """``"m:Items"`` → ``"{http://...messages}Items"`` (prefixes: :data:`NS`)."""
    prefix, _, local = tag.partition(":")
    return f"{{{NS[prefix]}}}{local}"


class NotUnderstood(Exception):
    """The request contains something this fake does not implement (EWS or autodiscover): the
    server answers with an error and records it as a test failure."""


def only_children(elem: etree._Element, allowed: set[str], *, local_names: bool = False) -> None:
    """Raise :class:`NotUnderstood` for a child element of ``elem`` not in ``allowed``:
    qualified tags (``q("a:Request")``), or with ``local_names`` tags without namespace."""
    for child in elem:
        if not isinstance(child.tag, str):  # a comment or processing instruction
            continue
        name = child.tag.split("}", 1)[1] if local_names else child.tag
        if name not in allowed:
            raise NotUnderstood(f"<{name}> in <{elem.tag}>")


def envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{S}"><s:Header>'
        f'<h:ServerVersionInfo xmlns:h="{T}" MajorVersion="15" MinorVersion="1" '
        'MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/>'
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def response(op: str, messages: list[str]) -> bytes:
    return envelope(
        f'<m:{op}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>'
        + "".join(messages)
        + f"</m:ResponseMessages></m:{op}Response>"
    )


def ok(op: str, inner: str = "") -> str:
    return (
        f'<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError'
        f"</m:ResponseCode>{inner}</m:{op}ResponseMessage>"
    )


def error(op: str, code: str, text: str) -> str:
    # Exchange's Sync* errors still carry an (empty) SyncState and IncludesLast…InRange,
    # and exchangelib reads them before the error code.
    extra = {
        "SyncFolderItems": "<m:SyncState/><m:IncludesLastItemInRange>true"
        "</m:IncludesLastItemInRange>",
        "SyncFolderHierarchy": "<m:SyncState/><m:IncludesLastFolderInRange>true"
        "</m:IncludesLastFolderInRange>",
    }.get(op, "")
    return (
        f'<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>{escape(text)}'
        f"</m:MessageText><m:ResponseCode>{code}</m:ResponseCode>"
        f"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{extra}</m:{op}ResponseMessage>"
    )


def folder_xml(path: str, unread: int, total: int, children: int) -> str:
    """A ``t:Folder``. ``""`` is msgfolderroot, ``"\\0root"`` the root of the hierarchy."""
    if path == "\x00root":
        fid, parent, name = folder_id(path), None, "root"
    elif path == "":
        fid, parent, name = folder_id(path), folder_id("\x00root"), "Top of Information Store"
    else:
        head, _, name = path.rpartition("/")
        fid, parent = folder_id(path), folder_id(head)
        if not head:
            parent = folder_id("")
    dist = PATH_TO_DISTINGUISHED.get(path)
    parts = [f'<t:FolderId Id="{fid}" ChangeKey="AQAAAA=="/>']
    if parent:
        parts.append(f'<t:ParentFolderId Id="{parent}" ChangeKey="AQAAAA=="/>')
    if path not in ("", "\x00root"):
        parts.append("<t:FolderClass>IPF.Note</t:FolderClass>")
    parts.append(f"<t:DisplayName>{escape(name)}</t:DisplayName>")
    parts.append(f"<t:TotalCount>{total}</t:TotalCount>")
    parts.append(f"<t:ChildFolderCount>{children}</t:ChildFolderCount>")
    if dist:
        parts.append(f"<t:DistinguishedFolderId>{dist}</t:DistinguishedFolderId>")
    parts.append(f"<t:UnreadCount>{unread}</t:UnreadCount>")
    return "<t:Folder>" + "".join(parts) + "</t:Folder>"


def _mailbox(name: str, addr: str) -> str:
    return (
        f"<t:Mailbox><t:Name>{escape(name or addr)}</t:Name><t:EmailAddress>{escape(addr)}"
        "</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType>"
        "<t:MailboxType>OneOff</t:MailboxType></t:Mailbox>"
    )


def _addrs(msg: object, name: str) -> list[tuple[str, str]]:
    raw = [str(v) for v in msg.get_all(name, [])]  # type: ignore[attr-defined]
    return [(n, a) for n, a in getaddresses(raw) if a]


def _date(msg: object) -> str | None:
    try:
        d = parsedate_to_datetime(str(msg.get("date", "")))  # type: ignore[attr-defined]
    except (TypeError, ValueError, IndexError):
        return None
    if d.tzinfo is None:
        return None
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def item_xml(item: Item, fields: set[str], ext: set[tuple[str, str, str]]) -> str:
    """A ``t:Message`` with exactly the requested properties, derived from the stored MIME as
    Exchange derives them on delivery."""
    raw = item.path.read_bytes()
    msg = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    out = [
        f'<t:ItemId Id="{item.id}" ChangeKey="{item.version}"/>',
        f'<t:ParentFolderId Id="{folder_id(item.ref.folder)}" ChangeKey="AQAAAA=="/>',
    ]

    def text(tag: str, value: str | None) -> None:
        if value:
            out.append(f"<t:{tag}>{escape(value)}</t:{tag}>")

    if "item:MimeContent" in fields:
        out.append(
            f'<t:MimeContent CharacterSet="UTF-8">{base64.b64encode(raw).decode()}</t:MimeContent>'
        )
    if "item:ItemClass" in fields:
        text("ItemClass", "IPM.Note")
    if "item:Subject" in fields:
        text("Subject", _decoded(msg.get("subject")))
    if "item:DateTimeSent" in fields:
        text("DateTimeSent", _date(msg))
    if "item:DateTimeReceived" in fields:
        text("DateTimeReceived", _date(msg))
    if "item:Size" in fields:
        text("Size", str(len(raw)))
    if "item:Categories" in fields and item.props.categories:
        out.append(
            "<t:Categories>"
            + "".join(f"<t:String>{escape(c)}</t:String>" for c in item.props.categories)
            + "</t:Categories>"
        )
    if "item:HasAttachments" in fields:
        has = b"content-disposition: attachment" in raw.lower()
        text("HasAttachments", "true" if has else "false")
    if "item:InReplyTo" in fields:
        text("InReplyTo", str(msg.get("in-reply-to", "")).strip())
    for kind, src in (("Sender", "sender"), ("From", "from")):
        if f"message:{kind}" in fields:
            found = _addrs(msg, src) or (_addrs(msg, "from") if src == "sender" else [])
            if found:
                out.append(f"<t:{kind}>{_mailbox(_decoded(found[0][0]), found[0][1])}</t:{kind}>")
    for kind, src in (("ToRecipients", "to"), ("CcRecipients", "cc")):
        if f"message:{kind}" in fields and _addrs(msg, src):
            out.append(
                f"<t:{kind}>"
                + "".join(_mailbox(_decoded(n), a) for n, a in _addrs(msg, src))
                + f"</t:{kind}>"
            )
    if "message:ConversationIndex" in fields:
        text("ConversationIndex", str(msg.get("thread-index", "")).strip())
    if "message:InternetMessageId" in fields:
        text("InternetMessageId", str(msg.get("message-id", "")).strip())
    if "message:IsRead" in fields:
        text("IsRead", "true" if item.is_read else "false")
    if "message:References" in fields:
        text("References", " ".join(str(msg.get("references", "")).split()))
    if CRMID in ext and item.props.crmid is not None:
        out.append(
            f"<t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId="
            f'"PublicStrings" PropertyName="crmid" PropertyType="String"/>'
            f"<t:Value>{escape(item.props.crmid)}</t:Value></t:ExtendedProperty>"
        )
    if FLAG_STATUS in ext and item.props.flag_status is not None:
        out.append(
            '<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x1090" '
            'PropertyType="Integer"/>'
            f"<t:Value>{item.props.flag_status}</t:Value></t:ExtendedProperty>"
        )
    return "<t:Message>" + "".join(out) + "</t:Message>"


def _decoded(value: object) -> str:
    if value is None:
        return ""
    from email.errors import HeaderParseError
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError, HeaderParseError):
        return str(value)  # Exchange shows a broken encoded word as it is


def ext_uri(elem: etree._Element) -> tuple[str, str, str]:
    return (
        elem.get("DistinguishedPropertySetId") or elem.get("PropertySetId") or "",
        elem.get("PropertyName") or elem.get("PropertyTag") or "",
        elem.get("PropertyType") or "",
    )
