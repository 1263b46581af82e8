"""The Graph v1.0 mail requests the fake server answers, one handler each, over a
:class:`~tests.fakes.graph_store.Mailbox`. :func:`route` finds the handler for a path below
``/me`` or ``/users/{address}``; anything it does not know raises a :class:`GraphError`
marked ``unknown`` (answered 400/501 and recorded by the server)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.graph_json import (
    FOLDER_FIELDS,
    MESSAGE_FIELDS,
    complete_mime,
    folder_json,
    message_json,
    mime_from_json,
    parse_expand,
    parse_select,
    recipients_of,
)
from tests.fakes.graph_store import Folder, GraphError, Mailbox

if TYPE_CHECKING:
    from tests.fakes.graph_auth import Caller
    from tests.fakes.graph_server import FakeGraphServer

DEFAULT_DELTA_PAGE = 10
DEFAULT_FOLDER_PAGE = 10
_PROPERTY_ID = re.compile(
    r"^(String|Integer|Boolean|SystemTime|Binary|Long|Double) "
    r"(\{[0-9a-fA-F-]{36}\} (Name \S.*|Id 0x[0-9a-fA-F]{1,4})|0x[0-9a-fA-F]{4})$"
)
FLAG_STATES = ("notFlagged", "flagged", "complete")


@dataclass
class Answer:
    """A handler's answer: status, JSON (or raw bytes with ``content_type``), headers."""

    status: int
    json: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One request as a handler sees it (``prefix``: ``/me`` or ``/users/{address}``)."""

    server: FakeGraphServer
    caller: Caller
    box: Mailbox
    shared: bool
    prefix: str
    method: str
    args: list[str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def base(self) -> str:
        return f"{self.server.url}{self.prefix}"

    def read(self, *scopes: str) -> None:
        self._require("Mail.ReadWrite", "Mail.Read", *scopes)

    def write(self) -> None:
        self._require("Mail.ReadWrite")

    def send(self) -> None:
        self._require("Mail.Send")

    def _require(self, *scopes: str) -> None:
        self.caller.require(*(s + ".Shared" if self.shared else s for s in scopes))

    def options(self, *allowed: str) -> None:
        extra = set(self.query) - set(allowed)
        if extra:
            raise GraphError(
                400,
                "BadRequest",
                f"Query option(s) {sorted(extra)} not understood here.",
                unknown=True,
            )

    def json_body(self, *allowed: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not self.headers.get("content-type", "").startswith("application/json"):
            raise GraphError(
                415, "UnsupportedMediaType", "Content-Type must be application/json.", unknown=True
            )
        try:
            body = json.loads(self.body or b"null")
        except ValueError as exc:
            raise GraphError(
                400, "BadRequest", f"Unable to read JSON: {exc}", unknown=True
            ) from exc
        if not isinstance(body, dict) or set(body) - set(allowed) or set(required) - set(body):
            raise GraphError(
                400,
                "RequestBodyRead",
                f"Body not understood (allowed {allowed}, required {required}): {body!r}",
                unknown=True,
            )
        return body

    def mime_body(self) -> bytes:
        if not self.headers.get("content-type", "").startswith("text/plain"):
            raise GraphError(
                415, "UnsupportedMediaType", "MIME must be sent as base64 text/plain.", unknown=True
            )
        try:
            mime = base64.b64decode(self.body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise GraphError(
                400,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.",
            ) from exc
        if not mime.strip():
            raise GraphError(400, "ErrorMimeContentInvalid", "The MIME content is empty.")
        return mime

    def folder(self, ref: str) -> Folder:
        return self.box.folder(ref)


def _context(call: Call, what: str) -> str:
    return f"{call.server.url}/$metadata#{what}"


# -- folders ------------------------------------------------------------------------------


def list_folders(call: Call, parent: Folder, what: str) -> Answer:
    call.read()
    call.options("$top", "$skip", "$select")
    select = parse_select(call.query.get("$select"), FOLDER_FIELDS, "MailFolder")
    top = _number(call.query.get("$top"), DEFAULT_FOLDER_PAGE, 1, 1000)
    skip = _number(call.query.get("$skip"), 0, 0, 10**6)
    children = call.box.children(parent.id)
    page = children[skip : skip + top]
    body: dict[str, Any] = {
        "@odata.context": _context(call, "mailFolders"),
        "value": [folder_json(call.box, f, select) for f in page],
    }
    if skip + top < len(children):
        query = f"$top={top}&$skip={skip + top}"
        if select is not None:
            query += "&$select=" + ",".join(select)
        body["@odata.nextLink"] = f"{call.base}/{what}?{query}"
    return Answer(200, body)


def _number(raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for a paging option.")
    return int(raw)


def get_folder(call: Call) -> Answer:
    call.read()
    call.options("$select")
    select = parse_select(call.query.get("$select"), FOLDER_FIELDS, "MailFolder")
    body = {"@odata.context": _context(call, "mailFolders/$entity")}
    body.update(folder_json(call.box, call.folder(call.args[0]), select))
    return Answer(200, body)


def create_folder(call: Call, parent: Folder) -> Answer:
    call.write()
    call.options()
    body = call.json_body("displayName", "isHidden", required=("displayName",))
    name = body["displayName"]
    if not isinstance(name, str) or not name.strip() or body.get("isHidden"):
        raise GraphError(400, "ErrorInvalidRequest", "displayName must be a non-empty string.")
    made = call.box.create_folder(parent.id, name)
    return Answer(201, folder_json(call.box, made, None))


def rename_folder(call: Call) -> Answer:
    call.write()
    call.options()
    body = call.json_body("displayName", required=("displayName",))
    folder = call.folder(call.args[0])
    name = body["displayName"]
    if folder.well_known or folder.id == call.box.root.id:
        raise GraphError(403, "ErrorAccessDenied", "A well-known folder cannot be renamed.")
    if not isinstance(name, str) or not name.strip():
        raise GraphError(400, "ErrorInvalidRequest", "displayName must be a non-empty string.")
    if any(
        f.name.lower() == name.lower() and f.id != folder.id
        for f in call.box.children(folder.parent_id)
    ):
        raise GraphError(
            409, "ErrorFolderExists", "A folder with the specified name already exists."
        )
    folder.name = name
    return Answer(200, folder_json(call.box, folder, None))


def delete_folder(call: Call) -> Answer:
    call.write()
    call.options()
    call.box.delete_folder(call.folder(call.args[0]))
    return Answer(204)


def move_folder(call: Call) -> Answer:
    call.write()
    call.options()
    body = call.json_body("destinationId", required=("destinationId",))
    folder = call.folder(call.args[0])
    destination = call.folder(str(body["destinationId"]))
    if folder.well_known or destination.id in call.box.subtree(folder):
        raise GraphError(400, "ErrorMoveCopyFailed", "The folder cannot be moved there.")
    if any(f.name.lower() == folder.name.lower() for f in call.box.children(destination.id)):
        raise GraphError(
            409, "ErrorFolderExists", "A folder with the specified name already exists."
        )
    folder.parent_id = destination.id
    return Answer(201, folder_json(call.box, folder, None))


# -- messages -----------------------------------------------------------------------------


def get_message(call: Call) -> Answer:
    call.read()
    call.options("$select", "$expand")
    select = parse_select(call.query.get("$select"), MESSAGE_FIELDS, "Message")
    expand = parse_expand(call.query.get("$expand"))
    body = {"@odata.context": _context(call, "messages/$entity")}
    body.update(message_json(call.box, call.box.message(call.args[0]), select, expand))
    return Answer(200, body)


def get_mime(call: Call) -> Answer:
    call.read()
    call.options()
    message = call.box.message(call.args[0])
    return Answer(200, raw=message.mime, content_type="text/plain")


def patch_message(call: Call) -> Answer:
    call.write()
    call.options()
    body = call.json_body("isRead", "flag", "categories", "singleValueExtendedProperties")
    message = call.box.message(call.args[0])
    if "isRead" in body:
        if not isinstance(body["isRead"], bool):
            raise GraphError(400, "ErrorInvalidRequest", "isRead must be a boolean.", unknown=True)
        message.is_read = body["isRead"]
    if "flag" in body:
        message.flag = _flag(body["flag"])
    if "categories" in body:
        categories = body["categories"]
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise GraphError(
                400, "ErrorInvalidRequest", "categories must be strings.", unknown=True
            )
        message.categories = list(categories)
    for prop in body.get("singleValueExtendedProperties", []):
        prop_id, value = _property(prop)
        message.properties[prop_id.lower()] = (prop_id, value)
    call.box.touch(message)
    return Answer(200, message_json(call.box, message, None, None))


def _flag(flag: Any) -> str:
    if not isinstance(flag, dict) or set(flag) != {"flagStatus"}:
        raise GraphError(400, "ErrorInvalidRequest", f"flag not understood: {flag!r}", unknown=True)
    if flag["flagStatus"] not in FLAG_STATES:
        raise GraphError(400, "ErrorInvalidRequest", f"flagStatus {flag['flagStatus']!r}")
    return str(flag["flagStatus"])


def _property(prop: Any) -> tuple[str, str]:
    if (
        not isinstance(prop, dict)
        or set(prop) != {"id", "value"}
        or not isinstance(prop["value"], str)
        or not _PROPERTY_ID.match(str(prop["id"]))
    ):
        raise GraphError(
            400,
            "ErrorInvalidProperty",
            f"singleValueExtendedProperty not understood: {prop!r}",
            unknown=True,
        )
    return str(prop["id"]), prop["value"]


def delete_message(call: Call) -> Answer:
    call.write()
    call.options()
    call.box.remove(call.box.message(call.args[0]), "deleted")
    return Answer(204)


def move_or_copy(call: Call) -> Answer:
    call.write()
    call.options()
    body = call.json_body("destinationId", required=("destinationId",))
    message = call.box.message(call.args[0])
    destination = call.folder(str(body["destinationId"]))
    if destination.id == call.box.root.id:
        raise GraphError(400, "ErrorMoveCopyFailed", "Messages cannot be put at the top.")
    if call.args[1].lower() == "move":
        made = call.box.move(message, destination)
    else:
        made = call.box.copy(message, destination)
    return Answer(201, message_json(call.box, made, None, None))


def create_message(call: Call) -> Answer:
    """A message from MIME in a folder: Graph makes it a draft (``isDraft`` true)."""
    call.write()
    call.options()
    mime = call.mime_body()
    made = call.box.add(call.folder(call.args[0]), mime, is_draft=True, is_read=True)
    return Answer(201, message_json(call.box, made, None, None))


def send_mail(call: Call) -> Answer:
    call.send()
    call.options()
    save = True
    if call.headers.get("content-type", "").startswith("text/plain"):
        mime = call.mime_body()
    else:
        body = call.json_body("message", "saveToSentItems", required=("message",))
        save = body.get("saveToSentItems", True)
        if not isinstance(save, bool):
            raise GraphError(400, "ErrorInvalidRequest", "saveToSentItems must be a boolean.")
        mime = mime_from_json(body["message"], call.box.address)
    mime = complete_mime(mime, call.box.address)
    if not recipients_of(mime):
        raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
    saved = None
    if save:
        saved = call.box.add(call.box.folder("sentitems"), mime, is_read=True).id
    call.server.record_sent(call.box.address, mime, recipients_of(mime), saved)
    return Answer(202)


# -- routing ------------------------------------------------------------------------------

Handler = Callable[[Call], Answer]


def _folders(call: Call) -> Answer:
    if call.method == "GET":
        return list_folders(call, call.box.root, "mailFolders")
    return create_folder(call, call.box.root)


def _children(call: Call) -> Answer:
    parent = call.folder(call.args[0])
    if call.method == "GET":
        return list_folders(call, parent, f"mailFolders/{parent.id}/childFolders")
    return create_folder(call, parent)


def _delta(call: Call) -> Answer:
    return call.server.delta(call)


#: (segment pattern, method) -> handler; ``*`` is an id, other segments match ignoring case.
ROUTES: dict[tuple[tuple[str, ...], str], Handler] = {
    (("mailfolders",), "GET"): _folders,
    (("mailfolders",), "POST"): _folders,
    (("mailfolders", "*"), "GET"): get_folder,
    (("mailfolders", "*"), "PATCH"): rename_folder,
    (("mailfolders", "*"), "DELETE"): delete_folder,
    (("mailfolders", "*", "move"), "POST"): move_folder,
    (("mailfolders", "*", "childfolders"), "GET"): _children,
    (("mailfolders", "*", "childfolders"), "POST"): _children,
    (("mailfolders", "*", "messages"), "POST"): create_message,
    (("mailfolders", "*", "messages", "delta"), "GET"): _delta,
    (("messages", "*"), "GET"): get_message,
    (("messages", "*"), "PATCH"): patch_message,
    (("messages", "*"), "DELETE"): delete_message,
    (("messages", "*", "$value"), "GET"): get_mime,
    (("messages", "*", "move"), "POST"): move_or_copy,
    (("messages", "*", "copy"), "POST"): move_or_copy,
    (("sendmail",), "POST"): send_mail,
}


def route(method: str, segments: list[str]) -> tuple[Handler, list[str]]:
    """The handler for ``method`` on ``segments`` (below the mailbox) and the path's ids
    (plus the last segment, for handlers that serve two verbs)."""
    known_path = False
    for (pattern, verb), handler in ROUTES.items():
        if len(pattern) != len(segments):
            continue
        args = [s for p, s in zip(pattern, segments, strict=True) if p == "*"]
        if all(p == "*" or p == s.lower() for p, s in zip(pattern, segments, strict=True)):
            known_path = True
            if verb == method:
                return handler, [*args, segments[-1]]
    if known_path:
        raise GraphError(
            501, "NotImplemented", f"{method} is not supported on this resource.", unknown=True
        )
    raise GraphError(
        400,
        "BadRequest",
        f"Resource not found for the segment '{'/'.join(segments)}'.",
        unknown=True,
    )
