"""Running a saved view as a query: ``GET /contacts?savedQuery=<id>`` (a system view,
``savedquery``) and ``?userQuery=<id>`` (a personal view, ``userquery``), as the Web API does.

The view's FetchXML is translated to the emulator's SQL filter, its ``<attribute>`` list
becomes the ``$select`` and its ``<order>`` the ``$orderby`` when the request has none (an
explicit ``$filter`` is ANDed with the view's). Supported FetchXML: one ``<entity>``
(matching the entity set), ``<attribute>``, ``<all-attributes>``, ``<order>``, nested
``<filter type="and|or">`` and ``<condition>`` with the operators in :data:`OPERATORS`.
Anything else (``link-entity``, aggregates, other operators) is answered 400, saying what.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

from .entities import ENTITIES, Attribute, Entity
from .errors import bad_request, not_found
from .filter_sql import Compiled, format_datetime
from .odata_filter import FilterError
from .query import QueryOptions
from .records import Caller, Records, parse_guid

#: Error code for FetchXML the emulator cannot run (Dataverse's "invalid argument").
INVALID = "0x80040203"
MAX_FETCH = 64_000
PARAMETERS = {"savedQuery": "savedquery", "userQuery": "userquery"}


class FetchError(ValueError):
    """A view's FetchXML the emulator cannot run (answered with 400)."""


def apply(
    records: Records,
    caller: Caller,
    entity: Entity,
    params: Mapping[str, str],
    opts: QueryOptions,
) -> None:
    """Narrow ``opts`` by the view named in ``savedQuery``/``userQuery``, if any."""
    named = [(p, params[p]) for p in PARAMETERS if p in params]
    if not named:
        return
    if len(named) > 1:
        raise bad_request("Use either savedQuery or userQuery, not both.", INVALID)
    param, value = named[0]
    view = _view(records, caller, PARAMETERS[param], value)
    if (view.get("returnedtypecode") or "").lower() != entity.logical:
        raise bad_request(
            f"The view '{view.get('name')}' returns {view.get('returnedtypecode')} records, "
            f"not {entity.logical} records.",
            INVALID,
        )
    try:
        fetch = translate(entity, view.get("fetchxml") or "", caller.user_id)
    except FetchError as exc:
        raise bad_request(f"The view '{view.get('name')}' cannot be run: {exc}", INVALID) from exc
    opts.filter = fetch.filter if opts.filter is None else _and(opts.filter, fetch.filter)
    if opts.select is None and fetch.columns:
        opts.select = fetch.columns
    if not opts.orderby:
        opts.orderby = fetch.orders


def _view(records: Records, caller: Caller, logical: str, value: str) -> dict[str, Any]:
    key = parse_guid(value)
    if key is None:
        raise bad_request(f"'{value}' is not a valid view id.", INVALID)
    entity = ENTITIES[logical]
    row = records.storage.get(entity, key)
    if row is None or not records.can_read(caller, entity, row):
        raise not_found(logical, key)
    return row


def _and(a: Compiled, b: Compiled) -> Compiled:
    return Compiled(f"({a.sql}) AND ({b.sql})", [*a.params, *b.params])


class Fetch:
    """A translated view: filter SQL on alias ``t0``, columns and sort order."""

    def __init__(
        self, flt: Compiled, columns: list[Attribute], orders: list[tuple[Attribute, bool]]
    ) -> None:
        self.filter = flt
        self.columns = columns
        self.orders = orders


def translate(entity: Entity, fetchxml: str, user_id: str) -> Fetch:
    """FetchXML → :class:`Fetch` for ``entity``; raises FetchError."""
    if len(fetchxml) > MAX_FETCH or "<!DOCTYPE" in fetchxml or "<!ENTITY" in fetchxml:
        raise FetchError("the FetchXML is too long or declares a document type.")
    try:
        root = ET.fromstring(fetchxml)
    except ET.ParseError as exc:
        raise FetchError(f"the FetchXML is not well-formed ({exc}).") from exc
    if root.tag != "fetch" or root.get("aggregate") == "true":
        raise FetchError("the document must be a <fetch> without aggregates.")
    nodes = list(root)
    if len(nodes) != 1 or nodes[0].tag != "entity":
        raise FetchError("<fetch> must hold exactly one <entity>.")
    node = nodes[0]
    if node.get("name") != entity.logical:
        raise FetchError(f"<entity name='{node.get('name')}'> is not {entity.logical}.")
    params: list[Any] = []
    clauses: list[str] = []
    columns: list[Attribute] = []
    orders: list[tuple[Attribute, bool]] = []
    for child in node:
        if child.tag == "attribute":
            columns.append(_attr(entity, child.get("name")))
        elif child.tag == "all-attributes":
            columns = list(entity.attributes.values())
        elif child.tag == "order":
            orders.append(
                (_attr(entity, child.get("attribute")), child.get("descending") == "true")
            )
        elif child.tag == "filter":
            clauses.append(_filter(entity, child, user_id, params))
        else:
            raise FetchError(f"<{child.tag}> is not supported by this server.")
    sql = " AND ".join(clauses) or "1 = 1"
    return Fetch(Compiled(f"({sql})", params), columns, orders)


def _attr(entity: Entity, name: str | None) -> Attribute:
    attr = entity.attributes.get(name or "")
    if attr is None:
        raise FetchError(
            f"'{entity.logical}' entity doesn't contain attribute with Name = '{name}'."
        )
    return attr


def _filter(entity: Entity, node: ET.Element, user_id: str, params: list[Any]) -> str:
    kind = (node.get("type") or "and").lower()
    if kind not in ("and", "or"):
        raise FetchError(f"filter type '{kind}' is not and/or.")
    parts = []
    for child in node:
        if child.tag == "condition":
            parts.append(_condition(entity, child, user_id, params))
        elif child.tag == "filter":
            parts.append(_filter(entity, child, user_id, params))
        else:
            raise FetchError(f"<{child.tag}> is not supported inside <filter>.")
    if not parts:
        return "(1 = 1)"
    return "(" + f" {kind.upper()} ".join(parts) + ")"


def _condition(entity: Entity, node: ET.Element, user_id: str, params: list[Any]) -> str:
    if node.get("entityname"):
        raise FetchError("conditions on linked entities are not supported.")
    attr = _attr(entity, node.get("attribute"))
    op = node.get("operator") or ""
    handler = OPERATORS.get(op)
    if handler is None:
        raise FetchError(f"the condition operator '{op}' is not supported by this server.")
    col = f't0."{attr.name}"'
    values = [v.text or "" for v in node if v.tag == "value"]
    if node.get("value") is not None:
        values.insert(0, node.get("value") or "")
    return handler(_Cond(attr, col, values, user_id, params))


class _Cond:
    """One condition being compiled: its column, its raw values and the parameter list."""

    def __init__(
        self, attr: Attribute, col: str, values: list[str], user_id: str, params: list[Any]
    ) -> None:
        self.attr, self.col, self.values = attr, col, values
        self.user_id, self.params = user_id, params

    def one(self) -> str:
        if len(self.values) != 1:
            raise FetchError(f"the condition on '{self.attr.name}' needs one value.")
        return self.param(convert(self.attr, self.values[0]))

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"


def convert(attr: Attribute, text: str) -> Any:
    """A FetchXML value → the stored representation of the attribute's type."""
    t = attr.type
    try:
        if t in ("int", "bigint", "picklist", "state", "status"):
            return int(text)
        if t in ("money", "decimal"):
            return float(text)
        if t == "bool":
            if text.lower() not in ("0", "1", "true", "false"):
                raise ValueError(text)
            return int(text.lower() in ("1", "true"))
        if t in ("guid", "lookup", "owner"):
            guid = parse_guid(text)
            if guid is None:
                raise ValueError(text)
            return guid
        if t == "datetime":
            return format_datetime(text)
    except (ValueError, FilterError) as exc:
        raise FetchError(f"'{text}' is not a valid value for '{attr.name}'.") from exc
    return text


def _compare(sql_op: str) -> Callable[[_Cond], str]:
    return lambda c: f"({c.col} {sql_op} {c.one()})"


def _null(negate: bool) -> Callable[[_Cond], str]:
    return lambda c: f"({c.col} IS {'NOT ' if negate else ''}NULL)"


def _user(negate: bool) -> Callable[[_Cond], str]:
    def fn(c: _Cond) -> str:
        if c.attr.type not in ("lookup", "owner", "guid"):
            raise FetchError(f"'{c.attr.name}' is not a lookup: eq-userid needs one.")
        return f"({c.col} {'<>' if negate else '='} {c.param(c.user_id)})"

    return fn


def _in(negate: bool) -> Callable[[_Cond], str]:
    def fn(c: _Cond) -> str:
        if not c.values:
            raise FetchError(f"the 'in' condition on '{c.attr.name}' has no <value>.")
        marks = ", ".join(c.param(convert(c.attr, v)) for v in c.values)
        return f"({c.col} {'NOT IN' if negate else 'IN'} ({marks}))"

    return fn


def _like(negate: bool) -> Callable[[_Cond], str]:
    def fn(c: _Cond) -> str:
        if c.attr.type not in ("string", "memo"):
            raise FetchError(f"'like' needs a text attribute, not '{c.attr.name}'.")
        return f"({c.col} {'NOT LIKE' if negate else 'LIKE'} {c.one()})"

    return fn


def _day(c: _Cond) -> date:
    if c.attr.type != "datetime" or len(c.values) != 1:
        raise FetchError(f"'{c.attr.name}' needs a date-time attribute and one date.")
    try:
        return date.fromisoformat(format_datetime(c.values[0])[:10])
    except (ValueError, FilterError) as exc:
        raise FetchError(f"'{c.values[0]}' is not a date.") from exc


def _on_or_after(c: _Cond) -> str:
    return f"({c.col} >= {c.param(_day(c).isoformat() + 'T00:00:00Z')})"


def _on_or_before(c: _Cond) -> str:
    nxt = _day(c) + timedelta(days=1)
    return f"({c.col} < {c.param(nxt.isoformat() + 'T00:00:00Z')})"


def _on(c: _Cond) -> str:
    return f"({_on_or_after(c)} AND {_on_or_before(c)})"


OPERATORS: dict[str, Callable[[_Cond], str]] = {
    "eq": _compare("="),
    "ne": _compare("<>"),
    "neq": _compare("<>"),
    "gt": _compare(">"),
    "ge": _compare(">="),
    "lt": _compare("<"),
    "le": _compare("<="),
    "null": _null(False),
    "not-null": _null(True),
    "eq-userid": _user(False),
    "ne-userid": _user(True),
    "in": _in(False),
    "not-in": _in(True),
    "like": _like(False),
    "not-like": _like(True),
    "on": _on,
    "on-or-after": _on_or_after,
    "on-or-before": _on_or_before,
}
