"""JSON batching (``POST /v1.0/$batch``) for the fake Graph server: up to 20 requests, each
answered as if it came alone, in an order that honours ``dependsOn`` (a request whose
dependency failed is answered 424). A malformed batch is not understood (recorded)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tests.fakes.graph_json import error_body
from tests.fakes.graph_routes import Answer
from tests.fakes.graph_store import GraphError

if TYPE_CHECKING:
    from tests.fakes.graph_auth import Caller
    from tests.fakes.graph_server import FakeGraphServer

MAX_BATCH = 20
_KEYS = {"id", "method", "url", "headers", "body", "dependsOn"}
_METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message, unknown=True)


def _requests(headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
    if not headers.get("content-type", "").startswith("application/json"):
        raise _bad("A batch must be application/json.")
    try:
        doc = json.loads(body or b"null")
    except ValueError as exc:
        raise _bad(f"Unable to read the batch: {exc}") from exc
    if (
        not isinstance(doc, dict)
        or set(doc) != {"requests"}
        or not isinstance(doc["requests"], list)
    ):
        raise _bad("A batch is an object with one list, 'requests'.")
    requests: list[dict[str, Any]] = doc["requests"]
    if not requests:
        raise _bad("Invalid batch payload format: no requests.")
    if len(requests) > MAX_BATCH:
        raise _bad(f"The number of batch requests exceeds the limit of {MAX_BATCH}.")
    ids = [r.get("id") if isinstance(r, dict) else None for r in requests]
    if len(set(ids)) != len(ids):
        raise _bad("Batch request ids must be unique.")
    for request in requests:
        _check(request, ids)
    return requests


def _check(request: Any, ids: list[Any]) -> None:
    if not isinstance(request, dict) or set(request) - _KEYS:
        raise _bad(f"Batch request not understood: {request!r}")
    if not isinstance(request.get("id"), str) or request.get("method") not in _METHODS:
        raise _bad(f"Batch request needs a string id and a method: {request!r}")
    url = request.get("url")
    if not isinstance(url, str) or "$batch" in url or url.startswith(("http:", "https:")):
        raise _bad(f"Batch request url must be relative to /v1.0: {url!r}")
    depends = request.get("dependsOn", [])
    if not isinstance(depends, list) or any(d not in ids or d == request["id"] for d in depends):
        raise _bad(f"dependsOn names an unknown request: {depends!r}")
    if "body" in request and "content-type" not in {
        k.lower() for k in (request.get("headers") or {})
    }:
        raise _bad("A batch request with a body needs a Content-Type header.")


def _encoded(request: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
    if "body" not in request:
        return headers, b""
    body = request["body"]
    if headers["content-type"].startswith("application/json"):
        return headers, json.dumps(body).encode()
    if not isinstance(body, str):
        raise _bad("A non-JSON batch body must be a string.")
    return headers, body.encode()


def _order(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done: set[str] = set()
    ordered: list[dict[str, Any]] = []
    waiting = list(requests)
    while waiting:
        ready = [r for r in waiting if set(r.get("dependsOn", [])) <= done]
        if not ready:
            raise _bad("dependsOn makes a cycle.")
        for request in ready:
            waiting.remove(request)
            ordered.append(request)
            done.add(request["id"])
    return ordered


def run_batch(
    server: FakeGraphServer, caller: Caller, headers: dict[str, str], body: bytes
) -> Answer:
    """The batch's answer: 200 with one response per request, in the batch's order."""
    from tests.fakes.graph_server import batch_body

    requests = _order(_requests(headers, body))
    status: dict[str, int] = {}
    responses: dict[str, dict[str, Any]] = {}
    for request in requests:
        rid = request["id"]
        if any(status[d] >= 400 for d in request.get("dependsOn", [])):
            answer = Answer(424, error_body("FailedDependency", "A request it depends on failed."))
        else:
            sub_headers, sub_body = _encoded(request)
            url = request["url"] if request["url"].startswith("/") else "/" + request["url"]
            answer = server.sub_request(caller, request["method"], url, sub_headers, sub_body)
        status[rid] = answer.status
        shown = dict(answer.headers)
        if answer.raw is not None or answer.json is not None:
            shown["Content-Type"] = answer.content_type
        entry: dict[str, Any] = {"id": rid, "status": answer.status, "headers": shown}
        if answer.raw is not None or answer.json is not None:
            entry["body"] = batch_body(answer)
        responses[rid] = entry
    order = [r["id"] for r in json.loads(body)["requests"]]
    return Answer(200, {"responses": [responses[rid] for rid in order]})
