"""A fake Exchange Web Services server that exchangelib talks to unchanged.

It answers the operations the EWS backend uses — GetFolder, FindFolder, CreateFolder,
SyncFolderItems, GetItem, CreateItem (SaveOnly, SendAndSaveCopy), UpdateItem (IsRead,
Categories, the ``crmid`` extended property), MoveItem, DeleteItem — over per-user Maildirs
(:mod:`tests.fakes.ews_store`). Anything else, or any element in a request it does not
understand, is answered with ``ErrorInvalidOperation`` *and* recorded in :attr:`problems`, which
the test fixtures turn into a test failure: a fake that guesses lets tests pass for the wrong
reason.

Auth: HTTP Basic with :attr:`password`, or ``Bearer`` with a token from :meth:`add_token`.
Fault injection: :meth:`fail_next` answers the next request with an EWS error code.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lxml import etree

from tests.fakes.ews_store import (
    DISTINGUISHED,
    FakeEwsError,
    Props,
    UserMailbox,
    decode_state,
    encode_state,
    folder_id,
    path_of_folder_id,
)
from tests.fakes.ews_xml import (
    CRMID,
    FOLDER_FIELDS,
    ITEM_FIELDS,
    error,
    ext_uri,
    folder_xml,
    item_xml,
    ok,
    q,
    response,
)

Handler = Callable[["Request"], bytes]


class NotUnderstood(Exception):
    """The request contains something this fake does not implement."""


class Request:
    """One SOAP request for one user's mailbox."""

    def __init__(self, server: FakeEwsServer, user: str, body: etree._Element) -> None:
        self.server = server
        self.user = user
        self.op = body
        self.box = server.mailbox(user)

    def children(self, allowed: set[str], elem: etree._Element | None = None) -> None:
        """Fail on any child element we do not implement."""
        for child in (self.op if elem is None else elem):
            if not isinstance(child.tag, str):
                continue
            local = child.tag.split("}", 1)[1]
            if local not in allowed:
                raise NotUnderstood(f"<{local}> in <{(elem if elem is not None else self.op).tag}>")

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
        if unknown or ext - {CRMID}:
            raise NotUnderstood(f"properties {sorted(unknown)} {sorted(ext - {CRMID})}")
        if base in ("Default", "AllProperties"):
            fields |= {"item:Subject", "message:From", "message:IsRead", "item:Size",
                       "item:DateTimeSent", "message:ToRecipients", "item:HasAttachments"}
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


class FakeEwsServer:
    """Start with :meth:`start`; ``url()`` is the ``ews+http://`` mailbox URL."""

    def __init__(self, root: Path, password: str = "secret-pw") -> None:
        self.root = root
        self.password = password
        self.tokens: dict[str, str] = {}
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.sent: list[bytes] = []
        self._fail: list[str] = []
        self._boxes: dict[str, UserMailbox] = {}
        self._lock = threading.Lock()
        self._users = 0
        self.httpd: ThreadingHTTPServer | None = None

    # -- lifecycle and test helpers --

    def start(self) -> FakeEwsServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # else every request stalls ~40 ms
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                status, data = server.handle(self.headers.get("Authorization", ""), body)
                self.send_response(status)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="fake-ews"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                server.problems.append(f"GET {self.path}")
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return int(self.httpd.server_address[1])

    def url(self) -> str:
        return f"ews+http://127.0.0.1:{self.port}/EWS/Exchange.asmx"

    def new_user(self, prefix: str = "ews") -> str:
        with self._lock:
            self._users += 1
            return f"{prefix}{self._users}@test.example"

    def add_token(self, token: str, user: str) -> None:
        self.tokens[token] = user

    def fail_next(self, code: str) -> None:
        self._fail.append(code)

    def mailbox(self, user: str) -> UserMailbox:
        with self._lock:
            if user not in self._boxes:
                self._boxes[user] = UserMailbox(self.root / user)
            return self._boxes[user]

    # -- request handling --

    def _user(self, auth: str) -> str | None:
        kind, _, cred = auth.partition(" ")
        if kind.lower() == "basic":
            try:
                user, _, pw = base64.b64decode(cred).decode().partition(":")
            except ValueError:
                return None
            return user if pw == self.password and "@" in user else None
        if kind.lower() == "bearer":
            return self.tokens.get(cred)
        return None

    def handle(self, auth: str, body: bytes) -> tuple[int, bytes]:
        user = self._user(auth)
        if user is None:
            return 401, b""
        try:
            doc = etree.fromstring(body)
            op = doc.find(f"{q('s:Body')}/*")
        except etree.XMLSyntaxError as exc:
            self.problems.append(f"unparseable request: {exc}")
            return 400, b""
        if op is None:
            self.problems.append("SOAP request without a body element")
            return 400, b""
        name = op.tag.split("}", 1)[1]
        self.requests.append(name)
        if self._fail:
            code = self._fail.pop(0)
            return 200, response(name, [error(name, code, f"injected {code}")])
        handler = _OPS.get(name)
        req = Request(self, user, op)
        try:
            if handler is None:
                raise NotUnderstood(f"operation {name}")
            with req.box.lock:
                return 200, handler(req)
        except NotUnderstood as exc:
            self.problems.append(f"{name}: {exc}")
            return 200, response(name, [error(name, "ErrorInvalidOperation", str(exc))])
        except Exception as exc:  # a bug in the fake: fail the test, say where
            import traceback

            self.problems.append(f"{name}: fake server crashed: {traceback.format_exc()}")
            return 500, response(name, [error(name, "ErrorInternalServerError", repr(exc))])


# --- operations -----------------------------------------------------------------------------

def _each(req: Request, op: str, elems: list[etree._Element],
          fn: Callable[[etree._Element], str]) -> bytes:
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
    return _each(req, "GetFolder", ids,
                 lambda e: f"<m:Folders>{_folder(req, req.folder_path(e))}</m:Folders>")


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
            found = [p for p in found if p.rpartition("/")[0] == parent
                     or (parent == "" and "/" not in p)]
        page = found[offset:offset + limit]
        last = "true" if offset + len(page) >= len(found) else "false"
        return (f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" TotalItemsInView='
                f'"{len(found)}" IncludesLastItemInRange="{last}"><t:Folders>'
                + "".join(_folder(req, p) for p in page) + "</t:Folders></m:RootFolder>")
    return _each(req, "FindFolder", list(req.op.find(q("m:ParentFolderIds"))), one)


def create_folder(req: Request) -> bytes:
    req.children({"ParentFolderId", "Folders"})
    parent = req.folder_path(req.op.find(q("m:ParentFolderId"))[0])

    def one(e: etree._Element) -> str:
        if e.tag != q("t:Folder"):
            raise NotUnderstood(f"create {e.tag}")
        req.children({"DisplayName", "FolderClass"}, e)
        path = req.box.create_folder(parent, e.findtext(q("t:DisplayName")) or "")
        return f'<m:Folders><t:Folder><t:FolderId Id="{folder_id(path)}" ' \
               'ChangeKey="AQAAAA=="/></t:Folder></m:Folders>'
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
            parts.append(f'<t:ReadFlagChange><t:ItemId Id="{it.id}" ChangeKey="{it.version}"/>'
                         f"<t:IsRead>{'true' if is_read else 'false'}</t:IsRead>"
                         "</t:ReadFlagChange>")
        else:
            assert not isinstance(it, str)
            parts.append(f"<t:{kind}>{item_xml(it, fields, ext)}</t:{kind}>")
    inner = (f"<m:SyncState>{state}</m:SyncState><m:IncludesLastItemInRange>"
             f"{'true' if last else 'false'}</m:IncludesLastItemInRange>"
             f"<m:Changes>{''.join(parts)}</m:Changes>")
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
        return response("SyncFolderHierarchy", [error("SyncFolderHierarchy", exc.code,
                                                      exc.text)])
    now = req.box.folder_paths()
    parts = [f'<t:Delete><t:FolderId Id="{folder_id(p)}"/></t:Delete>'
             for p in sorted(known - set(now))]
    parts += [f"<t:Create>{_folder(req, p)}</t:Create>"
              for p in sorted((p for p in now if p not in known), key=lambda p: p.count("/"))]
    state = encode_state(dict.fromkeys(now, ""))
    inner = (f"<m:SyncState>{state}</m:SyncState><m:IncludesLastFolderInRange>true"
             f"</m:IncludesLastFolderInRange><m:Changes>{''.join(parts)}</m:Changes>")
    return response("SyncFolderHierarchy", [ok("SyncFolderHierarchy", inner)])


def get_item(req: Request) -> bytes:
    req.children({"ItemShape", "ItemIds"})
    fields, ext = req.shape("m:ItemShape")

    def one(e: etree._Element) -> str:
        if e.tag != q("t:ItemId"):
            raise NotUnderstood(f"item id {e.tag}")
        return f"<m:Items>{item_xml(req.box.item(e.get('Id', '')), fields, ext)}</m:Items>"
    return _each(req, "GetItem", list(req.op.find(q("m:ItemIds"))), one)


_CREATE_FIELDS = {"MimeContent", "IsRead", "IsResponseRequested", "IsDeliveryReceiptRequested",
                  "IsReadReceiptRequested", "Sensitivity", "Importance", "ReminderIsSet",
                  "ReminderMinutesBeforeStart", "Subject", "Body", "Categories"}


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
            req.server.sent.append(mime)
            _deliver(req, mime)
            req.box.create(folder, mime, True)
            return "<m:Items/>"
        if disposition != "SaveOnly":
            raise NotUnderstood(f"MessageDisposition {disposition}")
        is_read = _bool(e.findtext(q("t:IsRead")))
        it = req.box.create(folder, mime, is_read)
        return (f'<m:Items><t:Message><t:ItemId Id="{it.id}" ChangeKey="{it.version}"/>'
                "</t:Message></m:Items>")
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
        return (f'<m:Items><t:Message><t:ItemId Id="{it.id}" ChangeKey="{it.version}"/>'
                '</t:Message></m:Items><m:ConflictResults><t:Count>0</t:Count>'
                "</m:ConflictResults>")
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
        props.categories = ([s.text or "" for s in value.iter(q("t:String"))]
                            if kind == "SetItemField" else [])
    elif uri.tag == q("t:ExtendedFieldURI") and ext_uri(uri) == CRMID:
        props.crmid = (value.findtext(f"{q('t:ExtendedProperty')}/{q('t:Value')}")
                       if kind == "SetItemField" else None)
    else:
        raise NotUnderstood(f"update of {etree.tostring(uri).decode()}")


def move_item(req: Request) -> bytes:
    req.children({"ToFolderId", "ItemIds", "ReturnNewItemIds"})
    dest = req.folder_path(req.op.find(q("m:ToFolderId"))[0])

    def one(e: etree._Element) -> str:
        it = req.box.move(e.get("Id", ""), dest)
        return (f'<m:Items><t:Message><t:ItemId Id="{it.id}" ChangeKey="{it.version}"/>'
                "</t:Message></m:Items>")
    return _each(req, "MoveItem", list(req.op.find(q("m:ItemIds"))), one)


def delete_item(req: Request) -> bytes:
    req.children({"ItemIds"})
    if req.op.get("DeleteType") != "HardDelete":
        raise NotUnderstood(f"DeleteType {req.op.get('DeleteType')}")

    def one(e: etree._Element) -> str:
        req.box.delete(e.get("Id", ""))
        return ""
    return _each(req, "DeleteItem", list(req.op.find(q("m:ItemIds"))), one)


_OPS: dict[str, Handler] = {
    "GetFolder": get_folder, "FindFolder": find_folder, "CreateFolder": create_folder,
    "SyncFolderItems": sync_folder_items, "SyncFolderHierarchy": sync_folder_hierarchy,
    "GetItem": get_item, "CreateItem": create_item,
    "UpdateItem": update_item, "MoveItem": move_item, "DeleteItem": delete_item,
}
