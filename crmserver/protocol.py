"""HTTP helpers shared by the routes: OData path segments, the Prefer header, function
parameters, JSON responses with the OData headers, and a size-limited body reader."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .errors import QUERY_SYNTAX, TOO_LARGE, ODataError, bad_request
from .odata_filter import FilterError, Literal, Parser
from .query import Annotations, split_top

JSON_TYPE = "application/json; odata.metadata=minimal"


@dataclass(frozen=True)
class Segment:
    name: str
    args: str | None  # text between the parentheses, if any


def split_path(path: str) -> list[Segment]:
    """``emails(<id>)/Microsoft.Dynamics.CRM.SendEmail`` → segments; slashes inside quotes or
    parentheses (Message-IDs in function parameters) do not split."""
    parts = split_top(path, "/")
    out = []
    for part in parts:
        if part == "":
            continue
        m = re.fullmatch(r"([^()]+)(?:\((.*)\))?", part, re.S)
        if m is None:
            raise ODataError(404, "0x80060888", f"Resource not found for the segment '{part}'.")
        out.append(Segment(m.group(1), m.group(2)))
    return out


@dataclass
class Prefer:
    representation: bool = False
    annotations: tuple[str, ...] = ()
    maxpagesize: int | None = None
    track_changes: bool = False


_PREF_RE = re.compile(r'\s*([A-Za-z0-9_.\-]+)\s*(?:=\s*("([^"]*)"|[^,;]*))?\s*(?:;[^,]*)?,?')


def parse_prefer(request: Request) -> Prefer:
    pref = Prefer()
    for header in request.headers.getlist("prefer"):
        pos = 0
        while pos < len(header):
            m = _PREF_RE.match(header, pos)
            if m is None or m.end() == pos:
                break
            pos = m.end()
            name = m.group(1).lower()
            value = m.group(3) if m.group(3) is not None else (m.group(2) or "").strip()
            if name == "return" and value == "representation":
                pref.representation = True
            elif name == "odata.include-annotations":
                pref.annotations = tuple(v.strip() for v in value.split(",") if v.strip())
            elif name == "odata.maxpagesize" and value.strip().isdigit():
                pref.maxpagesize = max(1, min(int(value), 5000))
            elif name == "odata.track-changes":
                pref.track_changes = True
    return pref


def annotations_of(pref: Prefer) -> Annotations:
    return Annotations(list(pref.annotations))


def applied(
    pref: Prefer, *, representation: bool = False, paging: bool = False, tracking: bool = False
) -> list[tuple[str, str]]:
    """One ``Preference-Applied`` header per honoured preference."""
    out = []
    if representation and pref.representation:
        out.append(("Preference-Applied", "return=representation"))
    if pref.annotations:
        out.append(
            ("Preference-Applied", f'odata.include-annotations="{",".join(pref.annotations)}"')
        )
    if paging and pref.maxpagesize:
        out.append(("Preference-Applied", f"odata.maxpagesize={pref.maxpagesize}"))
    if tracking and pref.track_changes:
        out.append(("Preference-Applied", "odata.track-changes"))
    return out


def json_response(
    body: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    resp = Response(data, status_code=status, media_type=JSON_TYPE)
    resp.headers["OData-Version"] = "4.0"
    for k, v in headers or []:
        resp.headers.append(k, v)
    return resp


def empty_response(status: int = 204, headers: list[tuple[str, str]] | None = None) -> Response:
    resp = Response(b"", status_code=status)
    resp.headers["OData-Version"] = "4.0"
    for k, v in headers or []:
        resp.headers.append(k, v)
    return resp


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ODataError(413, TOO_LARGE, f"The request is larger than {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ODataError(413, TOO_LARGE, f"The request is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


MAX_JSON_DEPTH = 64


def parse_json(data: bytes) -> Any:
    """Strict JSON in UTF-8 (no NaN or Infinity, at most ``MAX_JSON_DEPTH`` levels deep); an
    empty body is ``{}``. Anything else is a 400 saying what was wrong, never a crash."""
    if not data.strip():
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(
            f"The request body is not valid UTF-8 (byte {exc.start}: {exc.reason})."
        ) from exc
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise bad_request("The request body is nested too deeply.") from exc
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.") from exc
    if _too_deep(value):
        raise bad_request(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")
    return value


def parse_json_object(data: bytes) -> dict[str, Any]:
    """A body that must be a JSON object (records, action parameters); an empty body is
    ``{}``."""
    value = parse_json(data)
    if not isinstance(value, dict):
        raise bad_request(f"The request body must be a JSON object, not {json_kind(value)}.")
    return value


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _too_deep(value: Any) -> bool:
    """Whether containers nest deeper than ``MAX_JSON_DEPTH`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > MAX_JSON_DEPTH:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def function_params(args: str | None, query: dict[str, str]) -> dict[str, Any]:
    """``MessageId=@p1,DirectionCode=0`` with ``@p1`` from the query → Python values."""
    out: dict[str, Any] = {}
    if not args or not args.strip():
        return out
    try:
        parser = Parser(args)
        while parser.peek() is not None:
            name = parser.take()
            parser.expect("=")
            tok = parser.peek()
            if tok is not None and tok.kind == "alias":
                parser.take()
                text = query.get(tok.text)
                if text is None:
                    raise bad_request(f"The parameter alias '{tok.text}' has no value.")
                out[name.text] = _literal_value(text)
            else:
                node = parser.operand()
                if not isinstance(node, Literal):
                    raise bad_request(f"The value of '{name.text}' must be a literal.")
                out[name.text] = node.value
            if parser.peek() is not None:
                parser.expect(",")
    except FilterError as exc:
        raise bad_request(str(exc), QUERY_SYNTAX) from exc
    return out


def _literal_value(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):
            pass
    try:
        sub = Parser(stripped)
        node = sub.operand()
        if isinstance(node, Literal) and sub.peek() is None:
            return node.value
    except FilterError:
        pass
    raise bad_request(f"'{text}' is not a valid parameter value.", QUERY_SYNTAX)
