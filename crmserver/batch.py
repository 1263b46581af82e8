"""``$batch``: multipart/mixed requests with change sets and ``Content-ID`` references
(OData v4 multipart batch format, as Dataverse implements it).

Each inner request runs through the same dispatcher as a normal request, as the same caller.
A change set runs in one database transaction: if any request in it fails, everything it did
is rolled back and the change set answers with that one error. ``$<Content-ID>`` at the start
of a URL, or as a whole ``@odata.bind`` value, refers to the entity created earlier in the
same change set.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from .errors import ODataError, bad_request, error_response
from .protocol import read_body
from .records import Caller

if TYPE_CHECKING:
    from .app import Service

MAX_PARTS = 1000


@dataclass
class InnerRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    requests: list[InnerRequest] = field(default_factory=list)


def _boundary(content_type: str) -> str:
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m or not content_type.lower().startswith("multipart/mixed"):
        raise bad_request("A $batch request must be multipart/mixed with a boundary.")
    return m.group(1)


def _split_parts(body: bytes, boundary: str) -> list[bytes]:
    delim = b"--" + boundary.encode()
    chunks = body.split(delim)
    if len(chunks) < 2:
        raise bad_request("The $batch body has no parts for its boundary.")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.lstrip(b"\r\n") if chunk.startswith((b"\r\n", b"\n")) else chunk)
    if len(parts) > MAX_PARTS:
        raise ODataError(400, "0x80060888", f"A $batch may hold at most {MAX_PARTS} requests.")
    return parts


def _head_body(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    m = re.search(rb"\r?\n\r?\n", data)
    if m is None:
        head, rest = data, b""
    else:
        head, rest = data[: m.start()], data[m.end() :]
    headers = []
    for line in head.decode("utf-8", "replace").splitlines():
        if ":" in line:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
    return headers, rest


def _strip_trailing_newline(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


def _parse_http(part: bytes) -> InnerRequest:
    mime_headers, payload = _head_body(part)
    mime = {k.lower(): v for k, v in mime_headers}
    if "application/http" not in mime.get("content-type", "application/http").lower():
        raise bad_request("Each $batch part must be application/http.")
    payload = _strip_trailing_newline(payload).lstrip(b"\r\n")
    line_end = payload.find(b"\n")
    request_line = (
        (payload if line_end < 0 else payload[:line_end]).decode("utf-8", "replace").strip()
    )
    bits = request_line.split()
    if len(bits) < 2 or bits[0] not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        raise bad_request(f"Invalid request line in $batch: '{request_line}'.")
    headers, body = _head_body(b"" if line_end < 0 else payload[line_end + 1 :])
    return InnerRequest(bits[0], bits[1], headers, body.strip(b"\r\n"), mime.get("content-id"))


def parse_batch(body: bytes, content_type: str) -> list[InnerRequest | ChangeSet]:
    items: list[InnerRequest | ChangeSet] = []
    for part in _split_parts(body, _boundary(content_type)):
        headers, payload = _head_body(part)
        ctype = {k.lower(): v for k, v in headers}.get("content-type", "")
        if ctype.lower().startswith("multipart/mixed"):
            cs = ChangeSet()
            for inner in _split_parts(payload, _boundary(ctype)):
                req = _parse_http(inner)
                if req.method == "GET":
                    raise bad_request("GET requests are not allowed inside a change set.")
                cs.requests.append(req)
            items.append(cs)
        else:
            items.append(_parse_http(part))
    return items


class Batch:
    def __init__(self, service: Service) -> None:
        self.service = service

    async def handle(self, request: Request, caller: Caller, base: str) -> Response:
        if request.method != "POST":
            raise ODataError(405, "0x80060888", "$batch needs POST.")
        data = await read_body(request, self.service.settings.max_request_bytes)
        items = parse_batch(data, request.headers.get("content-type", ""))
        prefer_continue = "odata.continue-on-error" in request.headers.get("prefer", "")
        boundary = f"batchresponse_{uuid.uuid4()}"
        out: list[bytes] = []
        for item in items:
            if isinstance(item, ChangeSet):
                out.append(
                    b"Content-Type: multipart/mixed; boundary="
                    + (cs_boundary := f"changesetresponse_{uuid.uuid4()}").encode()
                    + b"\r\n\r\n"
                    + await self.change_set(request, item, cs_boundary)
                )
                failed = b"HTTP/1.1 4" in out[-1] or b"HTTP/1.1 5" in out[-1]
            else:
                resp = await self.run_one(request, item, {})
                out.append(_part(resp, None))
                failed = resp.status_code >= 400
            if failed and not prefer_continue:
                break
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in out)
        body += b"--" + boundary.encode() + b"--\r\n"
        resp = Response(body, media_type=f"multipart/mixed; boundary={boundary}")
        resp.headers["OData-Version"] = "4.0"
        return resp

    async def change_set(self, request: Request, cs: ChangeSet, boundary: str) -> bytes:
        refs: dict[str, str] = {}
        done: list[tuple[Response, str | None]] = []
        storage = self.service.storage
        try:
            # No real I/O happens inside: the inner requests read their bodies from memory,
            # so the transaction is never interleaved with another request's writes.
            with storage.transaction():
                for req in cs.requests:
                    resp = await self.run_one(request, req, refs)
                    if resp.status_code >= 400:
                        raise _Abort(resp, req.content_id)
                    entity_id = resp.headers.get("OData-EntityId")
                    if req.content_id and entity_id:
                        refs[req.content_id] = entity_id
                    done.append((resp, req.content_id))
        except _Abort as abort:
            done = [(abort.response, abort.content_id)]
        parts = [b"--" + boundary.encode() + b"\r\n" + _part(r, cid) + b"\r\n" for r, cid in done]
        return b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"

    async def run_one(self, outer: Request, inner: InnerRequest, refs: dict[str, str]) -> Response:
        url = inner.url
        m = re.match(r"^\$([\w-]+)(.*)$", url)
        if m:
            if m.group(1) not in refs:
                return error_response(
                    bad_request(
                        f"Content-ID reference '${m.group(1)}' is not defined in this change set."
                    )
                )
            url = refs[m.group(1)] + m.group(2)
        body = inner.body
        if refs and body:
            body = _replace_refs(body, refs)
        parts = urlsplit(url)
        path = parts.path
        vm = re.search(r"/api/data/v(\d+\.\d+)/?(.*)$", path)
        if vm:
            version, rest = vm.group(1), vm.group(2)
        else:
            version, rest = outer.path_params.get("version", "9.2"), path.lstrip("/")
        headers = [
            (k.lower().encode(), v.encode())
            for k, v in inner.headers
            if k.lower() not in ("authorization", "content-length", "host")
        ]
        headers += [(k, v) for k, v in outer.scope["headers"] if k in (b"authorization", b"host")]
        headers.append((b"content-length", str(len(body)).encode()))
        scope = dict(outer.scope)
        scope.update(
            method=inner.method,
            path=f"/api/data/v{version}/{rest}",
            raw_path=f"/api/data/v{version}/{rest}".encode(),
            query_string=parts.query.encode(),
            headers=headers,
            path_params={"version": version, "rest": rest},
        )
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            return await self.service.api.dispatch(Request(scope, receive))
        except ODataError as err:
            return error_response(err)


class _Abort(Exception):
    def __init__(self, response: Response, content_id: str | None) -> None:
        self.response = response
        self.content_id = content_id


def _replace_refs(body: bytes, refs: dict[str, str]) -> bytes:
    """``$1`` strings in a change set's JSON body → the URLs of earlier parts; a body that is
    not JSON (or too deep to walk) is passed on for the handler to refuse with a 400."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith("$") and value[1:] in refs:
            return refs[value[1:]]
        return value

    try:
        return json.dumps(walk(data)).encode()
    except (RecursionError, ValueError):
        return body


def _part(resp: Response, content_id: str | None) -> bytes:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        head.append(f"Content-ID: {content_id}")
    phrase = HTTPStatus(resp.status_code).phrase
    lines = [f"HTTP/1.1 {resp.status_code} {phrase}"]
    lines += [f"{k}: {v}" for k, v in resp.headers.items() if k.lower() != "content-length"]
    return ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + bytes(
        resp.body
    )
