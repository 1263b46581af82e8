"""``$batch`` bodies: multipart/mixed encoding of requests and parsing of the answer
(OData v4 JSON-less batch format, as Dataverse speaks it; a change set is a nested
multipart/mixed whose parts carry ``Content-ID``) — and sending many operations in batches
whose size follows the CRM's service protection limits (:func:`send_in_batches`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx

from core.crm.errors import CrmError, CrmProtocolError
from core.crm.throttle import CrmThrottled, Throttle
from core.crm.types import BatchRequest, BatchResponse
from core.crm.wire import error_for


def _part(request: BatchRequest, api_path: str, content_id: int | None) -> bytes:
    path = request.path if request.path.startswith(("$", "/", "http")) else api_path + request.path
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{request.method.upper()} {path} HTTP/1.1"]
    headers = dict(request.headers)
    body = b""
    if request.body is not None:
        body = json.dumps(request.body, ensure_ascii=False).encode()
        headers.setdefault("Content-Type", "application/json; type=entry")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body + b"\r\n"


def encode_batch(
    requests: Sequence[BatchRequest], boundary: str, api_path: str, *, change_set: bool
) -> bytes:
    out = b""
    if change_set:
        inner = f"changeset_{uuid.uuid4()}"
        out += (f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={inner}\r\n\r\n").encode()
        for number, request in enumerate(requests, start=1):
            out += f"--{inner}\r\n".encode() + _part(request, api_path, number)
        out += f"--{inner}--\r\n".encode()
    else:
        for request in requests:
            out += f"--{boundary}\r\n".encode() + _part(request, api_path, None)
    return out + f"--{boundary}--\r\n".encode()


def _parse_http(payload: bytes, url: str) -> BatchResponse:
    head, _, body = payload.partition(b"\r\n\r\n")
    if not _:
        head, _, body = payload.partition(b"\n\n")
    lines = head.decode("utf-8", "replace").splitlines()
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise CrmProtocolError(f"bad status line in $batch part: {lines[:1]}", url=url) from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    body = body.strip()
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", "replace")
    error: CrmError | None = None
    if status >= 400:
        error = error_for(httpx.Response(status, content=body, headers=headers), "BATCH", url)
    return BatchResponse(status, headers, parsed, error)


def parse_batch(response: httpx.Response, api_path: str) -> list[BatchResponse]:
    """The responses of a ``$batch``, in order, change-set parts flattened."""
    url = api_path + "$batch"
    content_type = response.headers.get("Content-Type", "")
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + response.content
    message = BytesParser(policy=HTTP).parsebytes(raw)
    if not message.is_multipart():
        raise CrmProtocolError(
            "$batch answer is not multipart", url=url, status=response.status_code
        )
    results: list[BatchResponse] = []

    def walk(part: Any) -> None:
        if part.is_multipart():
            for sub in part.iter_parts():
                walk(sub)
            return
        payload = part.get_payload(decode=True) or b""
        results.append(_parse_http(payload, url))

    for part in message.iter_parts():
        walk(part)
    return results


def send_in_batches(
    send: Callable[[Sequence[BatchRequest]], list[BatchResponse]],
    requests: Sequence[BatchRequest],
    throttle: Throttle,
    *,
    retries: int = 8,
) -> list[BatchResponse]:
    """Send ``requests`` (independent operations, no change set) as several ``$batch``es
    through ``send``, each as large as ``throttle.batch_size()`` says: Microsoft's advice is to
    start small (10) and grow while the CRM keeps up — a large batch counts as one request but
    costs its whole execution time. An answered batch grows the size, a throttled one halves
    it and is sent again (a 429 means none of it ran; ``send`` waits at the gate). Raises the
    last :class:`CrmThrottled` after ``retries`` throttles in a row. Answers in order."""
    answers: list[BatchResponse] = []
    start = 0
    in_a_row = 0
    while start < len(requests):
        chunk = requests[start : start + throttle.batch_size()]
        try:
            answered = send(chunk)
        except CrmThrottled:
            throttle.batch_throttled()
            in_a_row += 1
            if in_a_row > retries:
                raise
            continue
        in_a_row = 0
        throttle.batch_answered()
        answers.extend(answered)
        start += len(chunk)
    return answers
