"""Reading entity sets: one page of a collection, expansions, ``$count``, and change tracking
(delta links with ``$deletedEntity`` entries).

A delta reads "rows with versionnumber in (token, snapshot]" from the versionnumber index and
the deletion log, so its cost follows the number of changes, not the size of the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode

from .entities import ACTIVITY_CHILD_PARENT, ENTITIES, Entity
from .errors import QUERY_SYNTAX, bad_request
from .query import (
    MAX_EXPAND_ROWS,
    MAX_PAGE,
    Annotations,
    Expand,
    QueryOptions,
    Shaper,
    bind_filter,
    decode_skiptoken,
    encode_skiptoken,
    keyset_after,
    read_predicate,
)
from .records import Caller, Records
from .storage import Row


@dataclass
class PageRequest:
    """What the route knows about the HTTP request besides the options."""

    base: str  # .../api/data/v9.2
    path: str  # entity set path as requested
    params: list[tuple[str, str]]  # original query parameters, in order
    page_size: int | None
    tracking: bool
    annotations: Annotations


def context_url(base: str, entity: Entity, opts: QueryOptions, delta: bool = False) -> str:
    sel = ""
    if opts.select is not None:
        sel = "(" + ",".join(a.value_name for a in opts.select) + ")"
    return f"{base}/$metadata#{entity.set_name}{sel}" + ("/$delta" if delta else "")


def count_rows(records: Records, entity: Entity, opts: QueryOptions, caller: Caller) -> int:
    params: list[Any] = []
    where = _where(records, entity, opts, caller, params)
    return int(
        records.storage.scalar(
            f'SELECT COUNT(*) FROM "{entity.logical}" t0' + (f" WHERE {where}" if where else ""),
            params,
        )
    )


def _where(
    records: Records, entity: Entity, opts: QueryOptions, caller: Caller, params: list[Any]
) -> str:
    clauses = []
    rule = read_predicate(records, entity, caller, "t0", params)
    if rule:
        clauses.append(rule)
    if opts.filter is not None:
        sql, bound = bind_filter(opts.filter, records, caller)
        clauses.append(sql)
        params.extend(bound)
    return " AND ".join(clauses)


def _check_tracking(entity: Entity, opts: QueryOptions) -> None:
    """400 unless change tracking may be used on ``entity`` with these options."""
    if not entity.change_tracking:
        raise bad_request(
            f"Change tracking is not enabled for entity '{entity.logical}'.", "0x80048269"
        )
    if opts.filter or opts.orderby or opts.expand or opts.top is not None:
        raise bad_request(
            "$filter, $orderby, $expand and $top cannot be used with change tracking.", QUERY_SYNTAX
        )


def _page_limit(opts: QueryOptions, req: PageRequest) -> int:
    """Rows per page: the client's ``odata.maxpagesize``, else ``$top``, else the server's
    maximum."""
    if req.page_size is not None:
        return req.page_size
    if opts.top is not None:
        return opts.top
    return MAX_PAGE


def _page_sql(entity: Entity, cols: list[str], where: str, sort: list[tuple[str, bool]]) -> str:
    """The keyset-paged SELECT; its one ``?`` is the limit (one row more than the page, to
    tell whether another page follows)."""
    return (
        f"SELECT {', '.join(f't0.{chr(34)}{c}{chr(34)}' for c in cols)} "
        f'FROM "{entity.logical}" t0'
        + (f" WHERE {where}" if where else "")
        + " ORDER BY "
        + ", ".join(f"{c} {'DESC' if d else 'ASC'}" for c, d in sort)
        + " LIMIT ?"
    )


def _count_annotations(total: int) -> dict[str, Any]:
    """``$count=true`` as Dataverse answers it: the count stops at 5,000, and beyond that the
    total record count is flagged as exceeded (-1)."""
    body: dict[str, Any] = {"@odata.count": min(total, 5000)}
    if total > 5000:
        body["@Microsoft.Dynamics.CRM.totalrecordcount"] = -1
        body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = True
    return body


def read_page(
    records: Records, entity: Entity, opts: QueryOptions, caller: Caller, req: PageRequest
) -> dict[str, Any]:
    """One page of a collection (or of a delta when ``opts.deltatoken`` is set)."""
    if opts.deltatoken is not None:
        return read_delta(records, entity, opts, caller, req)
    if req.tracking:
        _check_tracking(entity, opts)
    shaper = Shaper(records, entity, opts.select, req.annotations, req.base, caller)
    params: list[Any] = []
    where = _where(records, entity, opts, caller, params)
    sort = [(f't0."{a.name}"', desc) for a, desc in opts.orderby]
    sort_cols = [a.name for a, _ in opts.orderby]
    sort.append((f't0."{entity.key}"', False))
    sort_cols.append(entity.key)
    page_no, extra = 1, dict[str, Any]()
    if opts.skiptoken:
        page_no, last, extra = decode_skiptoken(opts.skiptoken)
        after = keyset_after(sort, last, params)
        where = f"{where} AND {after}" if where else after
    snapshot = extra.get("v")
    if req.tracking and snapshot is None:
        snapshot = records.storage.current_version()
    limit = _page_limit(opts, req)
    cols = sorted(set(shaper.columns()) | set(sort_cols) | expand_columns(opts))
    sql = _page_sql(entity, cols, where, sort)
    params.append(limit + 1)
    rows = records.storage.query(sql, params)
    more = len(rows) > limit and (req.page_size is not None or opts.top is None)
    rows = rows[:limit]
    body: dict[str, Any] = {"@odata.context": context_url(req.base, entity, opts)}
    if opts.count:
        body.update(_count_annotations(count_rows(records, entity, opts, caller)))
    values = shaper.shape_many(rows)
    if opts.expand:
        expand_rows(records, entity, rows, values, opts.expand, caller, req)
    body["value"] = values
    if more and rows:
        last = [rows[-1][c] for c in sort_cols]
        if snapshot is not None:
            extra = {**extra, "v": snapshot}
        token = encode_skiptoken(entity, page_no, last, rows[0][entity.key], extra)
        body["@odata.nextLink"] = next_link(req, {"$skiptoken": token})
    elif snapshot is not None:
        body["@odata.deltaLink"] = next_link(
            req, {"$deltatoken": delta_token(snapshot)}, drop=("$skiptoken",)
        )
    return body


def delta_token(version: int) -> str:
    return f"{version}!{datetime.now(UTC).strftime('%m/%d/%Y %H:%M:%S')}"


def parse_delta_token(token: str, expire_days: int = 0) -> int:
    """``<version>!<MM/dd/yyyy HH:mm:ss>`` → version; 400 when malformed or older than the
    organisation's ``expirechangetrackingindays``."""
    head, _, stamp = unquote(token).partition("!")
    if not head.isdigit():
        raise bad_request("The $deltatoken is not valid.", "0x80044352")
    if expire_days > 0 and stamp:
        try:
            issued = datetime.strptime(stamp, "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
        except ValueError as exc:
            raise bad_request("The $deltatoken is not valid.", "0x80044352") from exc
        if (datetime.now(UTC) - issued).days >= expire_days:
            raise bad_request(
                "Version stamp associated with the client has expired. Please perform a full sync.",
                "0x80044352",
            )
    return int(head)


def next_link(req: PageRequest, add: dict[str, str], drop: tuple[str, ...] = ()) -> str:
    kept = [(k, v) for k, v in req.params if k not in add and k not in drop]
    query = urlencode([*kept, *add.items()], quote_via=quote, safe="$,()'@")
    return f"{req.base}/{req.path}?{query}"


def read_delta(
    records: Records, entity: Entity, opts: QueryOptions, caller: Caller, req: PageRequest
) -> dict[str, Any]:
    """Rows changed since the token (changed/new first, then deletions) and a new deltaLink."""
    _check_tracking(entity, opts)
    expire = int(records.org().get("expirechangetrackingindays") or 0)
    since = parse_delta_token(opts.deltatoken or "", expire)
    if since > records.storage.current_version():
        raise bad_request("The $deltatoken is not valid.", "0x80044352")
    shaper = Shaper(records, entity, opts.select, req.annotations, req.base, caller)
    start = since
    snapshot: int | None = None
    extra: dict[str, Any] = {}
    if opts.skiptoken:
        _, last, extra = decode_skiptoken(opts.skiptoken)
        if not isinstance(last[0], int) or isinstance(last[0], bool):
            raise bad_request("The $skiptoken does not match the query.", QUERY_SYNTAX)
        start, snapshot = last[0], extra.get("v")
    if snapshot is None:
        snapshot = records.storage.current_version()
    limit = req.page_size or MAX_PAGE
    params: list[Any] = [start, snapshot]
    where = 't0."versionnumber" > ? AND t0."versionnumber" <= ?'
    rule = read_predicate(records, entity, caller, "t0", params)
    if rule:
        where += f" AND {rule}"
    # deletions only of rows the caller could read (no rule: everyone could)
    reader = caller.user_id if rule else None
    cols = shaper.columns()
    rows = records.storage.query(
        f"SELECT {', '.join(f't0.{chr(34)}{c}{chr(34)}' for c in cols)} FROM "
        f'"{entity.logical}" t0 WHERE {where} ORDER BY t0."versionnumber" LIMIT ?',
        [*params, limit + 1],
    )
    more = len(rows) > limit
    rows = rows[:limit]
    body: dict[str, Any] = {
        "@odata.context": context_url(req.base, entity, opts, delta=True),
        "value": shaper.shape_many(rows),
    }
    if more:
        token = encode_skiptoken(
            entity, 1, [rows[-1]["versionnumber"]], rows[0][entity.key], {"v": snapshot, "d": since}
        )
        body["@odata.nextLink"] = next_link(req, {"$skiptoken": token})
        return body
    first_since = int(extra.get("d", since))
    for key, version in records.storage.deleted_since(entity, first_since, reader):
        if version <= snapshot:
            body["value"].append(
                {
                    "@odata.context": f"{req.base}/$metadata#{entity.set_name}/$deletedEntity",
                    "id": key,
                    "reason": "deleted",
                }
            )
    body["@odata.deltaLink"] = next_link(
        req, {"$deltatoken": delta_token(snapshot)}, drop=("$skiptoken",)
    )
    return body


def expand_columns(opts: QueryOptions) -> set[str]:
    """Lookup columns the single-valued expansions need from the parent rows."""
    out = set()
    for exp in opts.expand:
        if exp.lookup is not None:
            out |= {exp.lookup.name, exp.lookup.name + "__type"}
    return out


def expand_rows(
    records: Records,
    entity: Entity,
    rows: list[Row],
    values: list[dict[str, Any]],
    expands: list[Expand],
    caller: Caller,
    req: PageRequest,
) -> None:
    """Fill ``$expand`` navigation properties in place (one query per navigation)."""
    for exp in expands:
        if exp.collection is not None:
            _expand_collection(records, entity, rows, values, exp, caller, req)
        else:
            _expand_single(records, entity, rows, values, exp, caller, req)


def _expand_collection(
    records: Records,
    entity: Entity,
    rows: list[Row],
    values: list[dict[str, Any]],
    exp: Expand,
    caller: Caller,
    req: PageRequest,
) -> None:
    assert exp.collection is not None
    child = ENTITIES[exp.collection.child]
    fk = exp.collection.child_attr
    shaper = Shaper(records, child, exp.options.select, req.annotations, req.base, caller)
    keys = [r[entity.key] for r in rows]
    by_parent: dict[str, list[Row]] = {k: [] for k in keys}
    cols = sorted(set(shaper.columns()) | {fk} | expand_columns(exp.options))
    order = ", ".join(
        [f'"{a.name}" {"DESC" if d else "ASC"}' for a, d in exp.options.orderby] + ["rowid"]
    )
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        params: list[Any] = list(chunk)
        where = f't0."{fk}" IN ({",".join("?" * len(chunk))})'
        if ACTIVITY_CHILD_PARENT.get(child.logical) != fk:
            # children readable on their own terms, not through the (readable) parent row
            rule = read_predicate(records, child, caller, "t0", params)
            where += f" AND {rule}" if rule else ""
        if exp.options.filter is not None:
            sql, bound = bind_filter(exp.options.filter, records, caller)
            where += f" AND {sql}"
            params.extend(bound)
        sql = (
            f"SELECT {', '.join(f't0.{chr(34)}{c}{chr(34)}' for c in cols)} FROM "
            f'"{child.logical}" t0 WHERE {where} ORDER BY {order} LIMIT {MAX_EXPAND_ROWS}'
        )
        for r in records.storage.query(sql, params):
            by_parent[r[fk]].append(r)
    for row, obj in zip(rows, values, strict=True):
        kids = by_parent[row[entity.key]]
        if exp.options.top is not None:
            kids = kids[: exp.options.top]
        shaped = shaper.shape_many(kids)
        if exp.options.expand:
            expand_rows(records, child, kids, shaped, exp.options.expand, caller, req)
        obj[exp.nav] = shaped


def _expand_single(
    records: Records,
    entity: Entity,
    rows: list[Row],
    values: list[dict[str, Any]],
    exp: Expand,
    caller: Caller,
    req: PageRequest,
) -> None:
    assert exp.lookup is not None and exp.target is not None
    target = ENTITIES[exp.target]
    shaper = Shaper(records, target, exp.options.select, req.annotations, req.base, caller)
    col = exp.lookup.name
    ids = sorted(
        {r[col] for r in rows if r.get(col) and (r.get(col + "__type") or exp.target) == exp.target}
    )
    found: dict[str, tuple[Row, dict[str, Any]]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        cols = shaper.columns()
        got = records.storage.query(
            f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)} FROM "
            f'"{target.logical}" WHERE "{target.key}" IN ({",".join("?" * len(chunk))})',
            chunk,
        )
        got = [g for g in got if records.can_read(caller, target, g)]
        for g, shaped in zip(got, shaper.shape_many(got), strict=True):
            found[g[target.key]] = (g, shaped)
    for row, obj in zip(rows, values, strict=True):
        hit = found.get(row.get(col) or "")
        ok = hit is not None and (row.get(col + "__type") or exp.target) == exp.target
        obj[exp.nav] = hit[1] if ok and hit else None
