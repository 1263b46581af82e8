"""The Web API endpoint ``/api/data/v9.x/…``: resolves the OData path to an entity set,
record, navigation, function or action, and runs it as the authenticated caller.

OData paths are not a fixed set of URL patterns (keys, bound actions, aliases inside
parentheses), so one Starlette route hands the path to :meth:`Api.dispatch`, which reads the
segments and picks the handler from the tables below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from . import actions, queues, saved_queries
from .collection import PageRequest, read_page
from .entities import BY_SET, ENTITIES, Entity
from .errors import ODataError, bad_request, not_found
from .protocol import (
    Prefer,
    Segment,
    annotations_of,
    applied,
    empty_response,
    function_params,
    json_response,
    parse_json_object,
    parse_prefer,
    read_body,
    split_path,
)
from .query import Shaper, etag, parse_options
from .records import Caller, parse_guid

if TYPE_CHECKING:
    from .app import Service

CRM = "Microsoft.Dynamics.CRM."
Handler = Callable[["Api", Request, Caller, dict[str, Any]], Awaitable[Response]]


class Api:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.records = service.records

    # -- entry point ----------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response:
        version = request.path_params["version"]
        if version not in ("9.0", "9.1", "9.2"):
            raise ODataError(404, "0x80060888", f"Version v{version} is not supported.")
        rest = request.path_params.get("rest", "")
        base = f"{str(request.base_url).rstrip('/')}/api/data/v{version}"
        segments = split_path(rest)
        caller = await self.service.auth.authenticate_async(
            request, self.service.signin.context.throttle
        )
        if segments and segments[0].name == "$metadata" and len(segments) == 1:
            return await self.service.metadata.csdl(request)
        if not segments:
            return self.service.metadata.service_document(base)
        first = segments[0]
        if first.name == "$batch":
            return await self.service.batch.handle(request, caller, base)
        if first.name == "EntityDefinitions":
            return self.service.metadata.entity_definitions(request, base, segments)
        name = first.name.removeprefix(CRM)
        if name in UNBOUND and len(segments) == 1:
            return await self.unbound(request, caller, name, first, base)
        entity = BY_SET.get(first.name)
        if entity is None:
            raise ODataError(
                404, "0x80060888", f"Resource not found for the segment '{first.name}'."
            )
        if first.args is None:
            return await self.on_collection(request, caller, entity, segments[1:], base)
        key = self.key_of(entity, first.args)
        return await self.on_record(request, caller, entity, key, segments[1:], base)

    def key_of(self, entity: Entity, args: str) -> str:
        text = args.strip()
        if "=" in text:
            name, _, value = text.partition("=")
            if name.strip() != entity.key:
                raise bad_request(
                    f"Alternate key '{name.strip()}' is not defined for entity '{entity.logical}'."
                )
            text = value.strip().strip("'")
        key = parse_guid(text)
        if key is None:
            raise bad_request(
                f"Bad Request - Error in query syntax: '{args}' is not a valid "
                f"key for {entity.set_name}.",
                "0x80060888",
            )
        return key

    async def body(self, request: Request) -> dict[str, Any]:
        """The request body, which must be a JSON object (or empty: ``{}``); else 400."""
        data = await read_body(request, self.service.settings.max_request_bytes)
        return parse_json_object(data)

    def page_request(self, request: Request, base: str, path: str, pref: Prefer) -> PageRequest:
        return PageRequest(
            base,
            path,
            list(request.query_params.multi_items()),
            pref.maxpagesize,
            pref.track_changes,
            annotations_of(pref),
        )

    # -- collections ------------------------------------------------------------------------

    async def on_collection(
        self, request: Request, caller: Caller, entity: Entity, rest: list[Segment], base: str
    ) -> Response:
        method = request.method
        if rest:
            seg = rest[0]
            if seg.name == "$count" and len(rest) == 1 and method == "GET":
                opts = parse_options(entity, dict(request.query_params), caller.user_id)
                saved_queries.apply(self.records, caller, entity, request.query_params, opts)
                from .collection import count_rows

                return PlainTextResponse(
                    str(count_rows(self.records, entity, opts, caller)),
                    headers={"OData-Version": "4.0"},
                )
            action = seg.name.removeprefix(CRM)
            if (
                seg.args is None
                and len(rest) == 1
                and action in COLLECTION_BOUND
                and method == "POST"
            ):
                return await COLLECTION_BOUND[action](
                    self, request, caller, {"entity": entity, "base": base}
                )
            raise ODataError(404, "0x80060888", f"Resource not found for the segment '{seg.name}'.")
        if method == "GET":
            pref = parse_prefer(request)
            opts = parse_options(entity, dict(request.query_params), caller.user_id)
            saved_queries.apply(self.records, caller, entity, request.query_params, opts)
            page = read_page(
                self.records,
                entity,
                opts,
                caller,
                self.page_request(request, base, entity.set_name, pref),
            )
            return json_response(page, headers=applied(pref, paging=True, tracking=True))
        if method == "POST":
            pref = parse_prefer(request)
            body = await self.body(request)
            row = self.records.create(caller, entity, body)
            return self.created(request, caller, entity, row, base, pref)
        raise ODataError(
            405,
            "0x80060888",
            f"The HTTP method {method} is not allowed on the entity set {entity.set_name}.",
        )

    def created(
        self,
        request: Request,
        caller: Caller,
        entity: Entity,
        row: dict[str, Any],
        base: str,
        pref: Prefer,
        status: int = 201,
    ) -> Response:
        url = f"{base}/{entity.set_name}({row[entity.key]})"
        headers = [("OData-EntityId", url), ("Location", url)]
        if pref.representation:
            return json_response(
                self.represent(request, caller, entity, row, base, pref),
                status,
                headers + applied(pref, representation=True),
            )
        return empty_response(204, headers)

    def represent(
        self,
        request: Request,
        caller: Caller,
        entity: Entity,
        row: dict[str, Any],
        base: str,
        pref: Prefer,
    ) -> dict[str, Any]:
        opts = parse_options(
            entity,
            {k: v for k, v in request.query_params.items() if k in ("$select", "$expand")},
            caller.user_id,
        )
        shaper = Shaper(self.records, entity, opts.select, annotations_of(pref), base, caller)
        obj = shaper.shape_many([row])[0]
        if opts.expand:
            from .collection import expand_rows

            expand_rows(
                self.records,
                entity,
                [row],
                [obj],
                opts.expand,
                caller,
                self.page_request(request, base, entity.set_name, pref),
            )
        sel = "" if opts.select is None else "(" + ",".join(a.value_name for a in opts.select) + ")"
        return {"@odata.context": f"{base}/$metadata#{entity.set_name}{sel}/$entity", **obj}

    # -- single records -------------------------------------------------------------------

    async def on_record(
        self,
        request: Request,
        caller: Caller,
        entity: Entity,
        key: str,
        rest: list[Segment],
        base: str,
    ) -> Response:
        method = request.method
        if rest:
            seg = rest[0]
            action = seg.name.removeprefix(CRM)
            if action in RECORD_BOUND and method == "POST" and len(rest) == 1:
                return await RECORD_BOUND[action](
                    self, request, caller, {"entity": entity, "key": key, "base": base}
                )
            if (
                len(rest) == 2
                and rest[1].name == "$ref"
                and method in ("PUT", "DELETE")
                and entity.lookup_for_nav(seg.name) is not None
            ):
                return await self.set_reference(request, caller, entity, key, seg.name)
            if seg.name in entity.collection_navs and method == "GET" and len(rest) == 1:
                return self.get_nav_collection(request, caller, entity, key, seg.name, base)
            is_attr = seg.name in entity.attributes or (
                seg.name.startswith("_") and seg.name[1:-6] in entity.attributes
            )
            if is_attr and method == "GET" and len(rest) == 1:
                return self.get_property(request, caller, entity, key, seg.name, base)
            if (
                is_attr
                and method in ("PUT", "DELETE")
                and len(rest) == 1
                and seg.name in entity.attributes
            ):
                return await self.set_property(request, caller, entity, key, seg.name)
            raise ODataError(404, "0x80060888", f"Resource not found for the segment '{seg.name}'.")
        pref = parse_prefer(request)
        if method == "GET":
            row = self.readable(caller, entity, key)
            tag = etag(row)
            if request.headers.get("if-none-match") in (tag, "*"):
                return empty_response(304, [("ETag", tag)])
            obj = self.represent(request, caller, entity, row, base, pref)
            return json_response(obj, headers=[("ETag", tag), *applied(pref)])
        if method == "PATCH":
            return await self.patch(request, caller, entity, key, base, pref)
        if method == "DELETE":
            row = self.readable(caller, entity, key)
            self.check_if_match(request, row)
            self.records.delete(caller, entity, key)
            return empty_response(204)
        raise ODataError(
            405,
            "0x80060888",
            f"The HTTP method {method} is not allowed on a {entity.logical} record.",
        )

    def readable(self, caller: Caller, entity: Entity, key: str) -> dict[str, Any]:
        row = self.records.storage.get(entity, key)
        if row is None or not self.records.can_read(caller, entity, row):
            raise not_found(entity.logical, key)
        return row

    def check_if_match(self, request: Request, row: dict[str, Any] | None) -> None:
        match = request.headers.get("if-match")
        if match is None:
            return
        if match.strip() == "*":
            return
        tags = [t.strip() for t in match.split(",")]
        if row is None or etag(row) not in tags:
            raise ODataError(
                412,
                "0x80060882",
                "The version of the existing record doesn't "
                "match the RowVersion property provided.",
            )

    async def patch(
        self, request: Request, caller: Caller, entity: Entity, key: str, base: str, pref: Prefer
    ) -> Response:
        body = await self.body(request)
        row = self.records.storage.get(entity, key)
        if row is not None and not self.records.can_read(caller, entity, row):
            raise not_found(entity.logical, key)
        if_match = request.headers.get("if-match")
        if_none = request.headers.get("if-none-match")
        url = f"{base}/{entity.set_name}({key})"
        if row is None:
            if if_match is not None:
                raise not_found(entity.logical, key)
            created = self.records.create(caller, entity, body, key=key)
            return self.created(request, caller, entity, created, base, pref)
        if if_none is not None and if_none.strip() == "*":
            raise ODataError(412, "0x80040237", "A record with matching key values already exists.")
        self.check_if_match(request, row)
        updated = self.records.update(caller, entity, key, body)
        headers = [("OData-EntityId", url), ("ETag", etag(updated))]
        if pref.representation:
            return json_response(
                self.represent(request, caller, entity, updated, base, pref),
                200,
                headers + applied(pref, representation=True),
            )
        return empty_response(204, headers)

    def get_property(
        self, request: Request, caller: Caller, entity: Entity, key: str, name: str, base: str
    ) -> Response:
        row = self.readable(caller, entity, key)
        attr = entity.attributes.get(name)
        if attr is None or attr.is_lookup:
            attr = entity.attributes.get(name[1:-6]) if name.startswith("_") else None
        if attr is None:
            raise ODataError(404, "0x80060888", f"Resource not found for the segment '{name}'.")
        value = row.get(attr.name)
        if attr.type == "bool" and value is not None:
            value = bool(value)
        return json_response(
            {"@odata.context": f"{base}/$metadata#{entity.set_name}({key})/{name}", "value": value}
        )

    async def set_property(
        self, request: Request, caller: Caller, entity: Entity, key: str, name: str
    ) -> Response:
        """``PUT <set>(<id>)/<attr>`` with ``{"value": …}``; ``DELETE`` sets it to null."""
        self.readable(caller, entity, key)
        if request.method == "DELETE":
            value = None
        else:
            body = await self.body(request)
            if not isinstance(body, dict) or "value" not in body:
                raise bad_request('The body of a single-property PUT is {"value": …}.')
            value = body["value"]
        self.records.update(caller, entity, key, {name: value})
        return empty_response(204)

    async def set_reference(
        self, request: Request, caller: Caller, entity: Entity, key: str, nav: str
    ) -> Response:
        """``PUT <set>(<id>)/<nav>/$ref`` with ``{"@odata.id": "<url>"}`` sets a lookup;
        ``DELETE`` clears it."""
        self.readable(caller, entity, key)
        target: Any = None
        if request.method == "PUT":
            body = await self.body(request)
            target = body.get("@odata.id") if isinstance(body, dict) else None
            if not isinstance(target, str):
                raise bad_request('The body of a $ref PUT is {"@odata.id": "<record URL>"}.')
        self.records.update(caller, entity, key, {f"{nav}@odata.bind": target})
        return empty_response(204)

    def get_nav_collection(
        self, request: Request, caller: Caller, entity: Entity, key: str, nav_name: str, base: str
    ) -> Response:
        self.readable(caller, entity, key)
        nav = entity.collection_navs[nav_name]
        child = ENTITIES[nav.child]
        pref = parse_prefer(request)
        params = dict(request.query_params)
        guard = f"_{nav.child_attr}_value eq {key}"
        params["$filter"] = f"({params['$filter']}) and {guard}" if "$filter" in params else guard
        opts = parse_options(child, params, caller.user_id)
        page = read_page(
            self.records,
            child,
            opts,
            caller,
            self.page_request(request, base, f"{entity.set_name}({key})/{nav_name}", pref),
        )
        return json_response(page, headers=applied(pref, paging=True))

    # -- functions and actions --------------------------------------------------------------

    async def unbound(
        self, request: Request, caller: Caller, name: str, seg: Segment, base: str
    ) -> Response:
        kind, handler = UNBOUND[name]
        if kind == "function":
            if request.method != "GET" and not (
                request.method == "POST" and name in ("CheckPromoteEmail", "CheckIncomingEmail")
            ):
                raise ODataError(405, "0x80060888", f"{name} is a function: use GET.")
            if request.method == "GET":
                params = function_params(seg.args, dict(request.query_params))
            else:
                params = await self.body(request)
        else:
            if request.method != "POST":
                raise ODataError(405, "0x80060888", f"{name} is an action: use POST.")
            params = await self.body(request)
            if not isinstance(params, dict):
                raise bad_request("Action parameters must be a JSON object.")
        return await handler(self, request, caller, {"params": params, "base": base})

    def action_result(self, base: str, name: str, result: dict[str, Any]) -> Response:
        return json_response({"@odata.context": f"{base}/$metadata#{CRM}{name}Response", **result})


async def _who_am_i(api: Api, request: Request, caller: Caller, ctx: dict[str, Any]) -> Response:
    return api.action_result(ctx["base"], "WhoAmI", actions.who_am_i(api.records, caller))


async def _get_token(api: Api, request: Request, caller: Caller, ctx: dict[str, Any]) -> Response:
    return api.action_result(
        ctx["base"],
        "GetTrackingTokenEmail",
        actions.get_tracking_token(api.records, caller, ctx["params"]),
    )


async def _deliver_promote(
    api: Api, request: Request, caller: Caller, ctx: dict[str, Any]
) -> Response:
    params = ctx.get("params")
    if params is None:
        params = await api.body(request)
    email_id = actions.promote(api.records, caller, params)
    return api.action_result(ctx["base"], "DeliverPromoteEmail", {"EmailId": email_id})


async def _deliver_incoming(
    api: Api, request: Request, caller: Caller, ctx: dict[str, Any]
) -> Response:
    params = ctx.get("params")
    if params is None:
        params = await api.body(request)
    email_id = actions.deliver_incoming(api.records, caller, params)
    return api.action_result(ctx["base"], "DeliverIncomingEmail", {"EmailId": email_id})


async def _check_promote(
    api: Api, request: Request, caller: Caller, ctx: dict[str, Any]
) -> Response:
    return api.action_result(
        ctx["base"], "CheckPromoteEmail", actions.check_promote(api.records, caller, ctx["params"])
    )


async def _check_incoming(
    api: Api, request: Request, caller: Caller, ctx: dict[str, Any]
) -> Response:
    return api.action_result(
        ctx["base"],
        "CheckIncomingEmail",
        actions.check_incoming(api.records, caller, ctx["params"]),
    )


async def _send_email(api: Api, request: Request, caller: Caller, ctx: dict[str, Any]) -> Response:
    params = await api.body(request) if "params" not in ctx else ctx["params"]
    if not isinstance(params, dict):
        raise bad_request("Action parameters must be a JSON object.")
    key = ctx.get("key")
    if key is None:
        key = parse_guid(str(params.get("EmailId", "")))
        if key is None:
            raise bad_request("The parameter 'EmailId' is required.")
    if ctx.get("entity") is not None and ctx["entity"].logical != "email":
        raise bad_request("SendEmail is bound to emails.")
    return api.action_result(
        ctx["base"], "SendEmail", actions.send_email(api.records, caller, key, params)
    )


async def _background_send(
    api: Api, request: Request, caller: Caller, ctx: dict[str, Any]
) -> Response:
    base = ctx["base"]
    pref = parse_prefer(request)
    email = ENTITIES["email"]

    def shape(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from .collection import expand_rows
        from .query import Expand, QueryOptions

        shaper = Shaper(api.records, email, None, annotations_of(pref), base, caller)
        values = shaper.shape_many(rows)
        parties = Expand(
            "email_activity_parties",
            QueryOptions(ENTITIES["activityparty"]),
            collection=email.collection_navs["email_activity_parties"],
        )
        expand_rows(
            api.records,
            email,
            rows,
            values,
            [parties],
            caller,
            api.page_request(request, base, "emails", pref),
        )
        return values

    return api.action_result(
        base,
        "BackgroundSendEmail",
        actions.background_send(api.records, caller, ctx["params"], shape),
    )


async def _create_multiple(
    api: Api, request: Request, caller: Caller, ctx: dict[str, Any]
) -> Response:
    entity: Entity = ctx["entity"]
    body = await api.body(request)
    targets = body.get("Targets") if isinstance(body, dict) else None
    if not isinstance(targets, list):
        raise bad_request("CreateMultiple needs 'Targets', an array of records.")
    ids = []
    with api.records.storage.transaction():
        for target in targets:
            if not isinstance(target, dict):
                raise bad_request("Each target must be an object.")
            _check_type(entity, target)
            ids.append(api.records.create(caller, entity, target)[entity.key])
    return api.action_result(ctx["base"], "CreateMultiple", {"Ids": ids})


async def _update_multiple(
    api: Api, request: Request, caller: Caller, ctx: dict[str, Any]
) -> Response:
    entity: Entity = ctx["entity"]
    body = await api.body(request)
    targets = body.get("Targets") if isinstance(body, dict) else None
    if not isinstance(targets, list):
        raise bad_request("UpdateMultiple needs 'Targets', an array of records.")
    with api.records.storage.transaction():
        for target in targets:
            if not isinstance(target, dict):
                raise bad_request("Each target must be an object.")
            _check_type(entity, target)
            key = parse_guid(str(target.get(entity.key, "")))
            if key is None:
                raise bad_request(f"Each target needs its key '{entity.key}'.")
            values = {k: v for k, v in target.items() if k != entity.key}
            if api.records.storage.get(entity, key) is None:
                api.records.create(caller, entity, values, key=key)
            else:
                api.records.update(caller, entity, key, values)
    return empty_response(204)


async def _add_to_queue(
    api: Api, request: Request, caller: Caller, ctx: dict[str, Any]
) -> Response:
    """``queues(<id>)/Microsoft.Dynamics.CRM.AddToQueue`` (issue 19)."""
    if ctx["entity"].logical != "queue":
        raise bad_request("AddToQueue is bound to queues.")
    params = await api.body(request)
    result = queues.add_to_queue(api.records, caller, ctx["key"], params)
    return api.action_result(ctx["base"], "AddToQueue", result)


def _check_type(entity: Entity, target: dict[str, Any]) -> None:
    declared = target.get("@odata.type")
    if declared and declared.removeprefix("#").removeprefix(CRM) != entity.logical:
        raise bad_request(
            f"Target type '{declared}' does not match entity set '{entity.set_name}'."
        )


UNBOUND: dict[str, tuple[str, Handler]] = {
    "WhoAmI": ("function", _who_am_i),
    "CheckPromoteEmail": ("function", _check_promote),
    "CheckIncomingEmail": ("function", _check_incoming),
    "GetTrackingTokenEmail": ("action", _get_token),
    "DeliverPromoteEmail": ("action", _deliver_promote),
    "DeliverIncomingEmail": ("action", _deliver_incoming),
    "BackgroundSendEmail": ("action", _background_send),
    "SendEmail": ("action", _send_email),
}
RECORD_BOUND: dict[str, Handler] = {
    "SendEmail": _send_email,
    "DeliverPromoteEmail": _deliver_promote,
    "AddToQueue": _add_to_queue,
}
COLLECTION_BOUND: dict[str, Handler] = {
    "DeliverIncomingEmail": _deliver_incoming,
    "DeliverPromoteEmail": _deliver_promote,
    "CreateMultiple": _create_multiple,
    "UpdateMultiple": _update_multiple,
}
