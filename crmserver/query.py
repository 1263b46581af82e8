"""Collection queries: OData query options → one keyset-paged SQL query, and rows → the
Dataverse JSON shape (lookups as ``_x_value`` with their annotations, etags, expansions).

Paging uses a cursor on the sort key plus the primary key (never OFFSET), carried in a
``$skiptoken`` that looks like the Dataverse paging cookie, so a page boundary stays put when
rows are inserted concurrently and each row is returned exactly once.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from .entities import (
    ACTIVITY_CHILD_PARENT,
    ACTIVITY_ENTITIES,
    ENTITIES,
    Attribute,
    CollectionNav,
    Entity,
)
from .errors import QUERY_SYNTAX, bad_request
from .filter_sql import Compiled, compile_filter, resolve_property
from .odata_filter import FilterError
from .records import ADMIN_READ, Caller, Records
from .storage import Row

MAX_PAGE = 5000
MAX_TOP = 5000
MAX_EXPAND_DEPTH = 2
MAX_EXPAND_ROWS = 5000
FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_NAME = "Microsoft.Dynamics.CRM.associatednavigationproperty"
UNSUPPORTED = ("$skip", "$search", "$format", "$apply", "$levels", "$compute", "$index")


@dataclass
class Expand:
    nav: str
    options: QueryOptions
    lookup: Attribute | None = None
    target: str | None = None
    collection: CollectionNav | None = None


@dataclass
class QueryOptions:
    entity: Entity
    select: list[Attribute] | None = None
    filter: Compiled | None = None
    orderby: list[tuple[Attribute, bool]] = field(default_factory=list)
    top: int | None = None
    count: bool = False
    expand: list[Expand] = field(default_factory=list)
    skiptoken: str | None = None
    deltatoken: str | None = None


def split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    out: list[str] = []
    cur: list[str] = []
    depth, quoted = 0, False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0 or quoted:
        raise bad_request("Unbalanced parentheses or quotes in the query.", QUERY_SYNTAX)
    out.append("".join(cur))
    return out


#: The query options a collection read accepts.
SUPPORTED = (
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$count",
    "$expand",
    "$skiptoken",
    "$deltatoken",
)


def parse_options(
    entity: Entity, params: Mapping[str, str], user_id: str | None, depth: int = 0
) -> QueryOptions:
    """Validate and parse ``$select $filter $orderby $top $count $expand`` (400 on error)."""
    opts = QueryOptions(entity)
    aliases = {k: v for k, v in params.items() if k.startswith("@")}
    _check_supported(params)
    try:
        if (sel := params.get("$select")) is not None:
            names = [s.strip() for s in sel.split(",") if s.strip()]
            if not names:
                raise bad_request("$select is empty.", QUERY_SYNTAX)
            opts.select = [_select_attr(entity, n) for n in names]
        if (flt := params.get("$filter")) is not None:
            opts.filter = compile_filter(entity, flt, user_id=user_id, aliases=aliases)
        if (order := params.get("$orderby")) is not None:
            opts.orderby = _parse_orderby(entity, order, aliases)
    except FilterError as exc:
        raise bad_request(str(exc), QUERY_SYNTAX) from exc
    if (top := params.get("$top")) is not None:
        opts.top = _parse_top(top)
    if (count := params.get("$count")) is not None:
        if count not in ("true", "false"):
            raise bad_request(f"Invalid value '{count}' for $count.", QUERY_SYNTAX)
        opts.count = count == "true"
    if (expand := params.get("$expand")) is not None:
        opts.expand = [
            _parse_expand(entity, item.strip(), user_id, depth)
            for item in split_top(expand, ",")
            if item.strip()
        ]
    opts.skiptoken = params.get("$skiptoken")
    opts.deltatoken = params.get("$deltatoken")
    return opts


def _check_supported(params: Mapping[str, str]) -> None:
    """400 for a query option the Web API does not support, or that this emulator does not."""
    for key in params:
        if key in UNSUPPORTED:
            raise bad_request(f"The query parameter {key} is not supported", "0x80060888")
        if key.startswith("$") and key not in SUPPORTED:
            raise bad_request(f"The query parameter {key} is not supported", QUERY_SYNTAX)


def _parse_orderby(
    entity: Entity, order: str, aliases: Mapping[str, str]
) -> list[tuple[Attribute, bool]]:
    """``$orderby`` items: (column, descending); a name may be a parameter alias. Raises
    FilterError for an unknown column."""
    out = []
    for item in split_top(order, ","):
        bits = item.split()
        if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1] not in ("asc", "desc")):
            raise bad_request(f"Invalid $orderby item '{item}'.", QUERY_SYNTAX)
        name = aliases.get(bits[0], bits[0]) if bits[0].startswith("@") else bits[0]
        out.append(
            (resolve_property(entity, name.strip("'")), len(bits) == 2 and bits[1] == "desc")
        )
    return out


def _parse_top(top: str) -> int:
    if not top.isdigit() or int(top) < 0:
        raise bad_request(f"Invalid value '{top}' for $top query option.", QUERY_SYNTAX)
    if int(top) > MAX_TOP:
        raise bad_request(f"The $top value {top} exceeds the maximum of {MAX_TOP}.", QUERY_SYNTAX)
    return int(top)


def _select_attr(entity: Entity, name: str) -> Attribute:
    try:
        return resolve_property(entity, name)
    except FilterError as exc:
        raise bad_request(str(exc), QUERY_SYNTAX) from exc


def _parse_expand(entity: Entity, item: str, user_id: str | None, depth: int) -> Expand:
    if depth + 1 > MAX_EXPAND_DEPTH:
        raise bad_request(f"$expand nesting is limited to {MAX_EXPAND_DEPTH} levels.", QUERY_SYNTAX)
    m = re.fullmatch(r"([A-Za-z_]\w*)\s*(?:\((.*)\))?", item, re.S)
    if m is None:
        raise bad_request(f"Invalid $expand item '{item}'.", QUERY_SYNTAX)
    nav, inner = m.group(1), m.group(2)
    params: dict[str, str] = {}
    for part in split_top(inner or "", ";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("$select", "$filter", "$orderby", "$top", "$expand"):
            raise bad_request(f"Invalid option '{part}' in $expand of '{nav}'.", QUERY_SYNTAX)
        params[key.strip()] = value
    if nav in entity.collection_navs:
        cnav = entity.collection_navs[nav]
        child = ENTITIES[cnav.child]
        return Expand(nav, parse_options(child, params, user_id, depth + 1), collection=cnav)
    found = entity.lookup_for_nav(nav)
    if found is None or found[1] is None:
        raise bad_request(
            f"Could not find a property named '{nav}' on type "
            f"'Microsoft.Dynamics.CRM.{entity.logical}'.",
            QUERY_SYNTAX,
        )
    attr, target = found
    assert target is not None
    if any(k != "$select" for k in params):
        raise bad_request(
            "Only $select is allowed when expanding a single-valued navigation property.",
            QUERY_SYNTAX,
        )
    return Expand(
        nav, parse_options(ENTITIES[target], params, user_id, depth + 1), lookup=attr, target=target
    )


# -- annotations and shaping ----------------------------------------------------------------


class Annotations:
    """The ``odata.include-annotations`` preference as a matcher."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = patterns

    def wants(self, term: str) -> bool:
        for p in self.patterns:
            if p.startswith("-"):
                continue
            if fnmatch.fnmatchcase(term, p):
                return True
        return False

    @property
    def any(self) -> bool:
        return bool(self.patterns)


def etag(row: Row) -> str:
    """The weak ETag of a stored row (its version number)."""
    return f'W/"{row["versionnumber"]}"'


class Shaper:
    """Turns stored rows into response objects for one entity, select and annotation set."""

    def __init__(
        self,
        records: Records,
        entity: Entity,
        select: list[Attribute] | None,
        annotations: Annotations,
        base: str,
        caller: Caller | None = None,
    ) -> None:
        self.records = records
        self.caller = caller  # names of lookup targets only as this caller may read them
        self.entity = entity
        attrs = list(entity.attributes.values()) if select is None else select
        if entity.attributes[entity.key] not in attrs:
            attrs = [*attrs, entity.attributes[entity.key]]
        self.attrs = attrs
        self.base = base
        self.fmt = annotations.wants(FORMATTED)
        self.lookup_ann = annotations.wants(LOOKUP_NAME)
        self.nav_ann = annotations.wants(NAV_NAME)
        self.plan: list[tuple[str, str, Callable[[Any], Any]]] = []
        for a in attrs:
            if a.type == "bool":
                self.plan.append((a.name, a.name, _to_bool))
            elif a.is_lookup:
                self.plan.append((a.name, a.value_name, _same))
            else:
                self.plan.append((a.name, a.name, _same))

    def columns(self) -> list[str]:
        cols = {self.entity.key, "versionnumber"}
        for a in self.attrs:
            cols.add(a.name)
            if a.is_lookup:
                cols.add(a.name + "__type")
        return sorted(cols)

    def shape_many(self, rows: list[Row]) -> list[dict[str, Any]]:
        names: dict[tuple[str, str], str | None] = {}
        if self.fmt:
            names = self._lookup_names(rows)
        out = []
        for row in rows:
            obj: dict[str, Any] = {"@odata.etag": etag(row)}
            for col, name, conv in self.plan:
                obj[name] = conv(row[col])
            if self.fmt or self.lookup_ann or self.nav_ann:
                self._annotate(row, obj, names)
            out.append(obj)
        return out

    def _annotate(
        self, row: Row, obj: dict[str, Any], names: dict[tuple[str, str], str | None]
    ) -> None:
        for a in self.attrs:
            value = row.get(a.name)
            if value is None:
                continue
            vn = a.value_name
            if a.is_lookup:
                target = row.get(a.name + "__type") or a.targets[0]
                if self.fmt:
                    obj[f"{vn}@{FORMATTED}"] = names.get((target, value))
                if self.nav_ann:
                    obj[f"{vn}@{NAV_NAME}"] = self.entity.nav_name(a, target)
                if self.lookup_ann:
                    obj[f"{vn}@{LOOKUP_NAME}"] = target
            elif self.fmt:
                if a.options and value in a.options:
                    obj[f"{vn}@{FORMATTED}"] = a.options[value]
                elif a.type == "bool":
                    obj[f"{vn}@{FORMATTED}"] = "Yes" if value else "No"
                elif a.type in ("int", "bigint"):
                    obj[f"{vn}@{FORMATTED}"] = f"{value:,}"
                elif a.type == "money":
                    obj[f"{vn}@{FORMATTED}"] = f"${value:,.2f}"
                elif a.type == "datetime":
                    obj[f"{vn}@{FORMATTED}"] = _format_date(value)

    def _lookup_names(self, rows: list[Row]) -> dict[tuple[str, str], str | None]:
        wanted: dict[str, set[str]] = {}
        for a in self.attrs:
            if not a.is_lookup:
                continue
            for row in rows:
                if row.get(a.name):
                    wanted.setdefault(row.get(a.name + "__type") or a.targets[0], set()).add(
                        row[a.name]
                    )
        names: dict[tuple[str, str], str | None] = {}
        for target, ids in wanted.items():
            ent = ENTITIES[target]
            if not ent.primary_name:
                continue
            id_list = sorted(ids)
            for i in range(0, len(id_list), 500):
                chunk = id_list[i : i + 500]
                params: list[Any] = list(chunk)
                where = f't0."{ent.key}" IN ({",".join("?" * len(chunk))})'
                if self.caller is not None:
                    rule = read_predicate(self.records, ent, self.caller, "t0", params)
                    where += f" AND {rule}" if rule else ""
                for r in self.records.storage.query(
                    f'SELECT t0."{ent.key}" AS k, t0."{ent.primary_name}" AS n FROM '
                    f'"{ent.logical}" t0 WHERE {where}',
                    params,
                ):
                    names[(target, r["k"])] = r["n"]
        return names


def _to_bool(v: Any) -> Any:
    return None if v is None else bool(v)


def _same(v: Any) -> Any:
    return v


def _format_date(value: str) -> str:
    try:
        y, mo, d = value[0:4], value[5:7], value[8:10]
        hh, mm = int(value[11:13]), value[14:16]
        ampm = "AM" if hh < 12 else "PM"
        return f"{int(mo)}/{int(d)}/{y} {hh % 12 or 12}:{mm} {ampm}"
    except (ValueError, IndexError):
        return value


# -- paging cookie ----------------------------------------------------------------------------


def encode_skiptoken(
    entity: Entity, page: int, last: list[Any], first_key: str, extra: dict[str, Any]
) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps({"k": last, **extra}, separators=(",", ":")).encode()
    ).decode()
    inner = (
        f'<cookie page="{page}" tbx="{payload}"><{entity.key} last="{{{last[-1]}}}" '
        f'first="{{{first_key}}}" /></cookie>'
    )
    tracking = "True" if "v" in extra else "False"
    return (
        f'<cookie pagenumber="{page + 1}" pagingcookie="{quote(quote(inner))}" '
        f'istracking="{tracking}" />'
    )


def decode_skiptoken(token: str) -> tuple[int, list[Any], dict[str, Any]]:
    m = re.search(r'pagenumber="(\d+)"[^>]*pagingcookie="([^"]*)"', token)
    inner = unquote(unquote(m.group(2))) if m else ""
    p = re.search(r'tbx="([A-Za-z0-9_=-]+)"', inner)
    if m is None or p is None:
        raise bad_request("The $skiptoken is not valid.", QUERY_SYNTAX)
    try:
        data = json.loads(base64.urlsafe_b64decode(p.group(1)))
        last = data.pop("k")
        if not isinstance(last, list) or not last:
            raise ValueError("bad cursor")
        # The token comes back from the client: a forged one may hold anything JSON can.
        if not all(v is None or isinstance(v, str | int | float) for v in last):
            raise ValueError("bad cursor value")
        if not isinstance(data.get("v", 0), int) or isinstance(data.get("v"), bool):
            raise ValueError("bad snapshot")
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("The $skiptoken is not valid.", QUERY_SYNTAX) from exc
    return int(m.group(1)), last, data


def keyset_after(sort: list[tuple[str, bool]], last: list[Any], params: list[Any]) -> str:
    """SQL for "strictly after ``last``" in the order ``sort`` (NULLs first ascending, as
    SQLite sorts them)."""
    if len(last) != len(sort):
        raise bad_request("The $skiptoken does not match the query.", QUERY_SYNTAX)
    ors = []
    for i, (col, desc) in enumerate(sort):
        ands = []
        for j, (col_j, _desc) in enumerate(sort[:i]):
            v = last[j]
            if v is None:
                ands.append(f"{col_j} IS NULL")
            else:
                ands.append(f"{col_j} = ?")
                params.append(v)
        v = last[i]
        if v is None:
            if desc:
                continue
            ands.append(f"{col} IS NOT NULL")
        elif desc:
            ands.append(f"({col} < ? OR {col} IS NULL)")
            params.append(v)
        else:
            ands.append(f"{col} > ?")
            params.append(v)
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + (" OR ".join(ors) or "0") + ")"


def read_predicate(
    records: Records, entity: Entity, caller: Caller, alias: str, params: list[Any]
) -> str | None:
    """Row-level read rule as SQL (see records.Records.can_read)."""
    if caller.is_application:
        return None
    if entity.logical in ADMIN_READ:
        return None if caller.is_admin else "0"
    if entity.logical == "queueitem":
        return _queueitem_predicate(caller, alias, params)
    if entity.is_activity:
        params.extend([caller.user_id, caller.user_id])
        return (
            f'({alias}."ownerid" = ? OR {alias}."activityid" IN '
            f"(SELECT activityid FROM activityparty WHERE partyid = ?))"
        )
    if entity.logical in ACTIVITY_CHILD_PARENT:
        col = ACTIVITY_CHILD_PARENT[entity.logical]
        parts = []
        for logical in ACTIVITY_ENTITIES:
            parts.append(f'SELECT activityid FROM "{logical}" WHERE ownerid = ?')
            params.append(caller.user_id)
        parts.append("SELECT activityid FROM activityparty WHERE partyid = ?")
        params.append(caller.user_id)
        return f'{alias}."{col}" IN ({" UNION ".join(parts)})'
    if entity.logical == "usersettings" and not caller.is_admin:
        params.append(caller.user_id)
        return f'{alias}."systemuserid" = ?'
    if entity.logical in records.owner_only and not caller.is_admin:
        params.append(caller.user_id)
        return f'{alias}."ownerid" = ?'
    return None


def _queueitem_predicate(caller: Caller, alias: str, params: list[Any]) -> str:
    """A queue item is readable as its object is: a case by all, an activity by its owner
    and its parties (a queue item's title is the e-mail's subject)."""
    kinds = ", ".join(f"'{logical}'" for logical in ACTIVITY_ENTITIES)
    parts = []
    for logical in ACTIVITY_ENTITIES:
        parts.append(f'SELECT activityid FROM "{logical}" WHERE ownerid = ?')
        params.append(caller.user_id)
    parts.append("SELECT activityid FROM activityparty WHERE partyid = ?")
    params.append(caller.user_id)
    return (
        f'({alias}."objectid__type" IS NULL OR {alias}."objectid__type" NOT IN ({kinds})'
        f' OR {alias}."objectid" IN ({" UNION ".join(parts)}))'
    )


def bind_filter(compiled: Compiled, records: Records, caller: Caller) -> tuple[str, list[Any]]:
    """A compiled ``$filter`` with each navigation's read rule for ``caller`` filled in."""
    return compiled.bind(
        lambda ent, alias, params: read_predicate(records, ent, caller, alias, params)
    )
