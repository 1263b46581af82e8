"""The EWS operations of the fake Exchange server (:mod:`tests.fakes.ews_server`), one function
per SOAP operation, over a user's mailbox (:mod:`tests.fakes.ews_store`).

A function reads only the elements it implements (:meth:`Request.children`); anything else
raises :class:`NotUnderstood`, which the server answers with ``ErrorInvalidOperation`` and
records as a test failure. Per-item errors stay per item, one response message per id.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING

from lxml import etree

from tests.fakes.ews_store import (
    DISTINGUISHED,
    FakeEwsError,
    Props,
    decode_state,
    encode_state,
    folder_id,
    path_of_folder_id,
    ref_of_item_id,
)
from tests.fakes.ews_xml import (
    CRMID,
    FLAG_STATUS,
    FOLDER_FIELDS,
    ITEM_FIELDS,
    NotUnderstood,
    error,
    ext_uri,
    folder_xml,
    item_xml,
    ok,
    only_children,
    q,
    response,
)

if TYPE_CHECKING:
    from tests.fakes.ews_server import FakeEwsServer

Handler = Callable[["Request"], bytes]


class Request:
    """One SOAP request for one user's mailbox."""

    def __init__(self, server: FakeEwsServer, user: str, body: etree._Element) -> None:
        self.server = server
        self.user = user
        self.op = body
        self.box = server.mailbox(user)

    def children(self, allowed: set[str], elem: etree._Element | None = None) -> None:
        """Fail on any child element (of the operation, or of ``elem``) we do not implement;
        ``allowed`` holds names without namespace."""
        only_children(self.op if elem is None else elem, allowed, local_names=True)

    def shape(self, tag: str) -> tuple[set[str], set[tuple[str, str, str]]]:
        shape = self.op.find(q(tag))
        if shape is None:
            raise NotUnderstood(f"no {tag}")
        self.children({"BaseShape", "AdditionalProperties"}, shape)
        base = shape.findtext(q("t:BaseShape"))
        if base not in ("IdOnly", "Default", "AllProperties"):
            raise NotUnderstood(f"BaseShape {base}")
        fields: set[str] = set()
        ext: set[tuple[str, str, str]] = set()
        props = shape.find(q("t:AdditionalProperties"))
        for p in props if props is not None else ():
            if p.tag == q("t:FieldURI"):
                fields.add(p.get("FieldURI", ""))
            elif p.tag == q("t:ExtendedFieldURI"):
                ext.add(ext_uri(p))
            else:
                raise NotUnderstood(f"property {p.tag}")
        known = ITEM_FIELDS | FOLDER_FIELDS
        unknown = {f for f in fields if f not in known}
        if unknown or ext - {CRMID, FLAG_STATUS}:
            extra = sorted(ext - {CRMID, FLAG_STATUS})
            raise NotUnderstood(f"properties {sorted(unknown)} {extra}")
        if base in ("Default", "AllProperties"):
            fields |= {
                "item:Subject",
                "message:From",
                "message:IsRead",
                "item:Size",
                "item:DateTimeSent",
                "message:ToRecipients",
                "item:HasAttachments",
            }
        return fields, ext

    def folder_path(self, elem: etree._Element) -> str:
        if elem.tag == q("t:DistinguishedFolderId"):
            dist = elem.get("Id", "")
            if dist not in DISTINGUISHED:
                raise FakeEwsError("ErrorFolderNotFound", f"no distinguished folder {dist}")
            return DISTINGUISHED[dist]
        if elem.tag == q("t:FolderId"):
            path = path_of_folder_id(elem.get("Id", ""))
            self.box.check_folder(path)
            return path
        raise NotUnderstood(f"folder id {elem.tag}")


# --- operations -----------------------------------------------------------------------------


def _each(
    req: Request, op: str, elems: list[etree._Element], fn: Callable[[etree._Element], str]
) -> bytes:
    """One response message per requested id, in order; per-item errors stay per item."""
    out = []
    for e in elems:
        try:
            out.append(ok(op, fn(e)))
        except FakeEwsError as exc:
            out.append(error(op, exc.code, exc.text))
    return response(op, out)


def _folder(req: Request, path: str) -> str:
    if path in ("", "\x00root"):
        return folder_xml(path, 0, 0, 1)
    items = req.box.items(path)
    children = sum(1 for p in req.box.folder_paths() if p.rpartition("/")[0] == path)
    return folder_xml(path, sum(1 for i in items if not i.is_read), len(items), children)


def get_folder(req: Request) -> bytes:
    req.children({"FolderShape", "FolderIds"})
    req.shape("m:FolderShape")
    ids = list(req.op.find(q("m:FolderIds")))
    return _each(
        req,
        "GetFolder",
        ids,
        lambda e: f"<m:Folders>{_folder(req, req.folder_path(e))}</m:Folders>",
    )


def find_folder(req: Request) -> bytes:
    req.children({"FolderShape", "ParentFolderIds", "IndexedPageFolderView"})
    req.shape("m:FolderShape")
    if req.op.get("Traversal") not in ("Deep", "Shallow"):
        raise NotUnderstood(f"Traversal {req.op.get('Traversal')}")
    view = req.op.find(q("m:IndexedPageFolderView"))
    offset = int(view.get("Offset", "0")) if view is not None else 0
    limit = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000

    def one(e: etree._Element) -> str:
        parent = req.folder_path(e)
        paths = req.box.folder_paths()
        if parent == "\x00root":
            found = ["", *paths]
        else:
            found = [p for p in paths if parent == "" or p.startswith(parent + "/")]
        if req.op.get("Traversal") == "Shallow":
            found = [
                p
                for p in found
                if p.rpartition("/")[0] == parent or (parent == "" and "/" not in p)
            ]
        page = found[offset : offset + limit]
        last = "true" if offset + len(page) >= len(found) else "false"
        return (
            f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" TotalItemsInView='
            f'"{len(found)}" IncludesLastItemInRange="{last}"><t:Folders>'
            + "".join(_folder(req, p) for p in page)
            + "</t:Folders></m:RootFolder>"
        )

    return _each(req, "FindFolder", list(req.op.find(q("m:ParentFolderIds"))), one)


def create_folder(req: Request) -> bytes:
    req.children({"ParentFolderId", "Folders"})
    parent = req.folder_path(req.op.find(q("m:ParentFolderId"))[0])

    def one(e: etree._Element) -> str:
        if e.tag != q("t:Folder"):
            raise NotUnderstood(f"create {e.tag}")
        req.children({"DisplayName", "FolderClass"}, e)
        path = req.box.create_folder(parent, e.findtext(q("t:DisplayName")) or "")
        return (
            f'<m:Folders><t:Folder><t:FolderId Id="{folder_id(path)}" '
            'ChangeKey="AQAAAA=="/></t:Folder></m:Folders>'
        )

    return _each(req, "CreateFolder", list(req.op.find(q("m:Folders"))), one)


def sync_folder_items(req: Request) -> bytes:
    req.children({"ItemShape", "SyncFolderId", "SyncState", "MaxChangesReturned", "SyncScope"})
    fields, ext = req.shape("m:ItemShape")
    try:
        path = req.folder_path(req.op.find(q("m:SyncFolderId"))[0])
        limit = int(req.op.findtext(q("m:MaxChangesReturned")) or "512")
        changes, state, last = req.box.sync(path, req.op.findtext(q("m:SyncState")), limit)
    except FakeEwsError as exc:
        return response("SyncFolderItems", [error("SyncFolderItems", exc.code, exc.text)])
    parts = []
    for kind, it, is_read in changes:
        if kind == "Delete":
            parts.append(f'<t:Delete><t:ItemId Id="{it}"/></t:Delete>')
        elif kind == "ReadFlagChange":
            assert not isinstance(it, str)
            parts.append(
                f'<t:ReadFlagChange><t:ItemId Id="{it.id}" ChangeKey="{it.version}"/>'
                f"<t:IsRead>{'true' if is_read else 'false'}</t:IsRead>"
                "</t:ReadFlagChange>"
            )
        else:
            assert not isinstance(it, str)
            parts.append(f"<t:{kind}>{item_xml(it, fields, ext)}</t:{kind}>")
    inner = (
        f"<m:SyncState>{state}</m:SyncState><m:IncludesLastItemInRange>"
        f"{'true' if last else 'false'}</m:IncludesLastItemInRange>"
        f"<m:Changes>{''.join(parts)}</m:Changes>"
    )
    return response("SyncFolderItems", [ok("SyncFolderItems", inner)])


def sync_folder_hierarchy(req: Request) -> bytes:
    """Folder changes since the state: a snapshot of folder paths, like the item sync's."""
    req.children({"FolderShape", "SyncFolderId", "SyncState"})
    req.shape("m:FolderShape")
    sync_id = req.op.find(q("m:SyncFolderId"))
    if sync_id is None or req.folder_path(sync_id[0]) != "":
        raise NotUnderstood("SyncFolderHierarchy is only implemented for msgfolderroot")
    try:
        known = set(decode_state(req.op.findtext(q("m:SyncState"))))
    except FakeEwsError as exc:
        return response("SyncFolderHierarchy", [error("SyncFolderHierarchy", exc.code, exc.text)])
    now = req.box.folder_paths()
    parts = [
        f'<t:Delete><t:FolderId Id="{folder_id(p)}"/></t:Delete>' for p in sorted(known - set(now))
    ]
    parts += [
        f"<t:Create>{_folder(req, p)}</t:Create>"
        for p in sorted((p for p in now if p not in known), key=lambda p: p.count("/"))
    ]
    state = encode_state(dict.fromkeys(now, ""))
    inner = (
        f"<m:SyncState>{state}</m:SyncState><m:IncludesLastFolderInRange>true"
        f"</m:IncludesLastFolderInRange><m:Changes>{''.join(parts)}</m:Changes>"
    )
    return response("SyncFolderHierarchy", [ok("SyncFolderHierarchy", inner)])


def get_item(req: Request) -> bytes:
    req.children({"ItemShape", "ItemIds"})
    fields, ext = req.shape("m:ItemShape")

    def one(e: etree._Element) -> str:
        if e.tag != q("t:ItemId"):
            raise NotUnderstood(f"item id {e.tag}")
        return f"<m:Items>{item_xml(req.box.item(e.get('Id', '')), fields, ext)}</m:Items>"

    return _each(req, "GetItem", list(req.op.find(q("m:ItemIds"))), one)


_CREATE_FIELDS = {
    "MimeContent",
    "IsRead",
    "IsResponseRequested",
    "IsDeliveryReceiptRequested",
    "IsReadReceiptRequested",
    "Sensitivity",
    "Importance",
    "ReminderIsSet",
    "ReminderMinutesBeforeStart",
    "Subject",
    "Body",
    "Categories",
}


def create_item(req: Request) -> bytes:
    req.children({"SavedItemFolderId", "Items"})
    disposition = req.op.get("MessageDisposition")
    saved = req.op.find(q("m:SavedItemFolderId"))
    folder = req.folder_path(saved[0]) if saved is not None else "Drafts"

    def one(e: etree._Element) -> str:
        if e.tag != q("t:Message"):
            raise NotUnderstood(f"create {e.tag}")
        req.children(_CREATE_FIELDS, e)
        mime = base64.b64decode(e.findtext(q("t:MimeContent")) or "")
        if not mime:
            raise NotUnderstood("CreateItem without MimeContent")
        if disposition == "SendAndSaveCopy":
            _deliver(req, mime)
            req.box.create(folder, mime, True)
            return "<m:Items/>"
        if disposition != "SaveOnly":
            raise NotUnderstood(f"MessageDisposition {disposition}")
        is_read = _bool(e.findtext(q("t:IsRead")))
        it = req.box.create(folder, mime, is_read)
        return (
            f'<m:Items><t:Message><t:ItemId Id="{it.id}" ChangeKey="{it.version}"/>'
            "</t:Message></m:Items>"
        )

    return _each(req, "CreateItem", list(req.op.find(q("m:Items"))), one)


def _bool(text: str | None) -> bool:
    """xsd:boolean: exchangelib sends ``1``/``0``, Outlook ``true``/``false``."""
    if text not in (None, "true", "false", "1", "0"):
        raise NotUnderstood(f"boolean {text!r}")
    return text in ("true", "1")


def _deliver(req: Request, mime: bytes) -> None:
    """Local recipients (other users of this server) get the message in their Inbox."""
    from email.parser import BytesHeaderParser
    from email.utils import getaddresses

    hdr = BytesHeaderParser().parsebytes(mime)
    for _, addr in getaddresses([str(v) for k in ("to", "cc") for v in hdr.get_all(k, [])]):
        if (req.server.root / addr).is_dir():
            req.server.mailbox(addr).create("Inbox", mime, False)


def update_item(req: Request) -> bytes:
    req.children({"ItemChanges"})
    if req.op.get("MessageDisposition") not in (None, "SaveOnly"):
        raise NotUnderstood(f"MessageDisposition {req.op.get('MessageDisposition')}")

    def one(change: etree._Element) -> str:
        req.children({"ItemId", "Updates"}, change)
        iid = change.find(q("t:ItemId")).get("Id", "")
        req.box.item(iid)
        for upd in change.find(q("t:Updates")):
            _apply_update(req, iid, upd)
        it = req.box.item(iid)
        return (
            f'<m:Items><t:Message><t:ItemId Id="{it.id}" ChangeKey="{it.version}"/>'
            "</t:Message></m:Items><m:ConflictResults><t:Count>0</t:Count>"
            "</m:ConflictResults>"
        )

    return _each(req, "UpdateItem", list(req.op.find(q("m:ItemChanges"))), one)


def _apply_update(req: Request, iid: str, upd: etree._Element) -> None:
    kind = upd.tag.split("}", 1)[1]
    if kind not in ("SetItemField", "DeleteItemField"):
        raise NotUnderstood(f"update {kind}")
    uri = upd[0]
    props: Props = req.box.props_for(iid)
    value = upd.find(q("t:Message"))
    if uri.tag == q("t:FieldURI") and uri.get("FieldURI") == "message:IsRead":
        req.box.set_read(iid, kind == "SetItemField" and _bool(value.findtext(q("t:IsRead"))))
    elif uri.tag == q("t:FieldURI") and uri.get("FieldURI") == "item:Categories":
        props.categories = (
            [s.text or "" for s in value.iter(q("t:String"))] if kind == "SetItemField" else []
        )
    elif uri.tag == q("t:ExtendedFieldURI") and ext_uri(uri) == CRMID:
        props.crmid = (
            value.findtext(f"{q('t:ExtendedProperty')}/{q('t:Value')}")
            if kind == "SetItemField"
            else None
        )
    elif uri.tag == q("t:ExtendedFieldURI") and ext_uri(uri) == FLAG_STATUS:
        text = (
            value.findtext(f"{q('t:ExtendedProperty')}/{q('t:Value')}")
            if kind == "SetItemField"
            else None
        )
        props.flag_status = int(text) if text else None
    else:
        raise NotUnderstood(f"update of {etree.tostring(uri).decode()}")


def move_item(req: Request) -> bytes:
    req.children({"ToFolderId", "ItemIds", "ReturnNewItemIds"})
    dest = req.folder_path(req.op.find(q("m:ToFolderId"))[0])

    def one(e: etree._Element) -> str:
        it = req.box.move(e.get("Id", ""), dest)
        return (
            f'<m:Items><t:Message><t:ItemId Id="{it.id}" ChangeKey="{it.version}"/>'
            "</t:Message></m:Items>"
        )

    return _each(req, "MoveItem", list(req.op.find(q("m:ItemIds"))), one)


def delete_item(req: Request) -> bytes:
    req.children({"ItemIds"})
    if req.op.get("DeleteType") != "HardDelete":
        raise NotUnderstood(f"DeleteType {req.op.get('DeleteType')}")

    def one(e: etree._Element) -> str:
        req.box.delete(e.get("Id", ""))
        return ""

    return _each(req, "DeleteItem", list(req.op.find(q("m:ItemIds"))), one)


def convert_id(req: Request) -> bytes:
    """exchangelib's version probe converts the id ``DUMMY``: Exchange says it is malformed.
    Converting a real id is not implemented (and fails the test)."""
    req.children({"SourceIds"})
    if req.op.get("DestinationFormat") not in (
        "EwsId",
        "EntryId",
        "HexEntryId",
        "OwaId",
        "EwsLegacyId",
        "StoreId",
    ):
        raise NotUnderstood(f"DestinationFormat {req.op.get('DestinationFormat')}")

    def one(e: etree._Element) -> str:
        if e.tag != q("t:AlternateId") or e.get("Format") != "EwsId":
            raise NotUnderstood(f"convert {e.tag} {e.get('Format')}")
        try:
            ref_of_item_id(e.get("Id", ""))
        except FakeEwsError:
            raise FakeEwsError("ErrorInvalidIdMalformed", "Id is malformed.") from None
        raise NotUnderstood("ConvertId of a real item id")

    return _each(req, "ConvertId", list(req.op.find(q("m:SourceIds"))), one)


OPS: dict[str, Handler] = {
    "GetFolder": get_folder,
    "FindFolder": find_folder,
    "CreateFolder": create_folder,
    "SyncFolderItems": sync_folder_items,
    "SyncFolderHierarchy": sync_folder_hierarchy,
    "GetItem": get_item,
    "CreateItem": create_item,
    "UpdateItem": update_item,
    "MoveItem": move_item,
    "DeleteItem": delete_item,
    "ConvertId": convert_id,
}
