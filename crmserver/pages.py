"""The read-only record page at the Dynamics record-URL shape
``/main.aspx?etn=<logical name>&id=<guid>&pagetype=entityrecord``, so that "View in CRM" in
the client works against the emulator. E-mails show their parties, regarding record,
correlation method and attachments. Every value is HTML-escaped; the page loads nothing
external and sends a strict Content-Security-Policy.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .entities import ENTITIES, Entity
from .errors import ODataError
from .records import parse_guid

if TYPE_CHECKING:
    from .app import Service

CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:"
    "collapse}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;"
    "vertical-align:top}th{color:#555;font-weight:600}h1{font-size:20px}"
    "h2{font-size:16px;margin-top:1.5em}"
)
ROLES = {1: "From", 2: "To", 3: "Cc", 4: "Bcc", 5: "Required", 6: "Optional", 7: "Organizer"}


def _page(title: str, body: str, status: int = 200) -> Response:
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(
        doc,
        status_code=status,
        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"},
    )


def record_url(logical: str, key: str) -> str:
    return "main.aspx?" + urlencode({"etn": logical, "id": key, "pagetype": "entityrecord"})


def _link(service: Service, logical: str | None, key: str | None) -> str:
    if not logical or not key:
        return ""
    name = service.records.primary_name(logical, key) or key
    return (
        f"<a href='{html.escape(record_url(logical, key), quote=True)}'>"
        f"{html.escape(str(name))}</a> <small>({html.escape(logical)})</small>"
    )


def _value(service: Service, entity: Entity, name: str, row: dict[str, Any]) -> str:
    attr = entity.attributes[name]
    value = row.get(name)
    if value is None:
        return ""
    if attr.is_lookup:
        return _link(service, row.get(name + "__type") or attr.targets[0], value)
    if attr.options and value in attr.options:
        return html.escape(f"{attr.options[value]} ({value})")
    if attr.type == "bool":
        return "Yes" if value else "No"
    if name == "description" or name == "body":
        # the body is shown as text: a record page must never run mail HTML
        return f"<pre style='white-space:pre-wrap'>{html.escape(str(value))[:20000]}</pre>"
    return html.escape(str(value))


async def record_page(service: Service, request: Request) -> Response:
    try:  # the same throttle and worker-thread password check as the Web API
        caller = await service.auth.authenticate_async(request, service.signin.context.throttle)
    except ODataError as err:
        resp = _page("Sign in", "<p>Sign in with your CRM e-mail address and password.</p>", 401)
        resp.headers.update(err.headers)
        return resp
    etn = request.query_params.get("etn", "")
    key = parse_guid(request.query_params.get("id", ""))
    entity = ENTITIES.get(etn)
    if entity is None or key is None:
        return _page("Not found", "<p>Unknown record type or id.</p>", 404)
    row = service.storage.get(entity, key)
    if row is None or not service.records.can_read(caller, entity, row):
        return _page(
            "Not found",
            f"<p>{html.escape(etn)} with id {html.escape(key)} does not "
            f"exist or you may not see it.</p>",
            404,
        )
    return _page(_title(entity, row), _render(service, entity, row))


def _title(entity: Entity, row: dict[str, Any]) -> str:
    name = row.get(entity.primary_name) if entity.primary_name else None
    return f"{entity.logical}: {name or row[entity.key]}"


def _render(service: Service, entity: Entity, row: dict[str, Any]) -> str:
    parts = [f"<h1>{html.escape(_title(entity, row))}</h1>"]
    if entity.logical == "email":
        parts.append(_email_summary(service, row))
    parts.append("<h2>All fields</h2><table>")
    for name in entity.attributes:
        cell = _value(service, entity, name, row)
        if cell:
            parts.append(f"<tr><th>{html.escape(name)}</th><td>{cell}</td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _email_summary(service: Service, row: dict[str, Any]) -> str:
    key = row["activityid"]
    email = ENTITIES["email"]
    out = [
        "<table>",
        f"<tr><th>Regarding</th><td>{_value(service, email, 'regardingobjectid', row)}</td></tr>",
        f"<tr><th>Correlation</th><td>{_value(service, email, 'correlationmethod', row)}</td></tr>",
        f"<tr><th>Status</th><td>{_value(service, email, 'statuscode', row)}</td></tr>",
        "</table><h2>Parties</h2><table><tr><th>Role</th><th>Address</th><th>Record</th></tr>",
    ]
    for p in service.storage.query(
        "SELECT * FROM activityparty WHERE activityid = ? ORDER BY participationtypemask, rowid",
        (key,),
    ):
        record = _link(service, p.get("partyid__type"), p.get("partyid")) or "<em>unresolved</em>"
        out.append(
            f"<tr><td>{html.escape(ROLES.get(p['participationtypemask'], '?'))}</td>"
            f"<td>{html.escape(p.get('addressused') or '')}</td><td>{record}</td></tr>"
        )
    out.append(
        "</table><h2>Attachments</h2><table><tr><th>File</th><th>Type</th><th>Size</th></tr>"
    )
    for a in service.storage.query(
        "SELECT filename, mimetype, filesize FROM activitymimeattachment WHERE objectid = ?"
        " ORDER BY attachmentnumber",
        (key,),
    ):
        out.append(
            f"<tr><td>{html.escape(a['filename'] or '')}</td>"
            f"<td>{html.escape(a['mimetype'] or '')}</td>"
            f"<td>{html.escape(str(a['filesize'] or 0))} bytes</td></tr>"
        )
    out.append("</table>")
    return "".join(out)
