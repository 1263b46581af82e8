"""Dataverse / Dynamics 365 Web API client (OData v4 over HTTPS), see
``reference/dataverse-web-api.md``.

One ``httpx.Client`` per ``CrmClient`` (connection reuse, one timeout policy). Every response
is classified once, in ``_send``, into the typed errors of ``core.crm.errors``. Safe requests
(GET) are retried a few times on transient failures, honouring Retry-After up to a cap; writes
are never retried here: the outbox owns retries of writes, with idempotency keys.

Unreachable or one request failed: a connection that cannot be made (refused, DNS, connect
timeout) is a plain ``CrmUnavailable`` — the CRM is away. Anything that goes wrong once the
request is on its way — a 5xx, a reset or timeout mid-answer, a truncated body (fewer bytes
than its Content-Length), a 2xx whose body is not JSON — is ``CrmRequestFailed``, and for a
write ``CrmAmbiguousResponse`` (the CRM may have done it). An unreadable 2xx is transient
by decision: in practice a proxy or a broken connection garbled it and the next answer reads
fine, and an outbox operation parked for it would never be retried although the CRM has done
it. A *readable* answer that is not what the Web API sends (JSON that is not an object, an
action result without its id) stays a ``CrmProtocolError``: asking again cannot help.

Service protection (``core.crm.throttle``): every request passes the client's one
:class:`~core.crm.throttle.Throttle`, shared by all threads using the client. After a 429
nothing new is sent until Retry-After has passed; a throttled GET waits at the gate and is
sent again (a 429 means the CRM ran nothing), a throttled write raises
:class:`~core.crm.throttle.CrmThrottled` for the outbox to defer. ``with crm.interactive():``
marks the calls of a block as the user's (served first, failing fast instead of waiting long);
``crm.throttle.state()`` is what the status bar shows.

Thread-safety: httpx.Client and the throttle are thread-safe; one CrmClient is shared by the
workers of a workspace. Nothing here logs headers or bodies, so secrets and mail content never
reach a log.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import httpx

from core.crm.auth import CrmAuth
from core.crm.batch import encode_batch, parse_batch, send_in_batches
from core.crm.deadline import DeadlineTransport, environment_proxy
from core.crm.errors import (
    CrmAmbiguousResponse,
    CrmCertificateError,
    CrmError,
    CrmForeignOrigin,
    CrmProtocolError,
    CrmRequestFailed,
    CrmUnavailable,
)
from core.crm.throttle import CrmThrottled, Throttle
from core.crm.types import (
    Attachment,
    BatchRequest,
    BatchResponse,
    DeltaPage,
    DeltaResult,
    EmailInfo,
    WhoAmI,
)
from core.crm.wire import (
    addr,
    addr_list,
    b64,
    entity_id_from_url,
    error_for,
    is_deleted,
    json_default,
    literal,
    looks_like_guid,
    lookup_ref,
    lower,
    odata_string,
    safe_url,
)
from core.domain.model import Address

log = logging.getLogger("trackbox.crm")

API_PATH = "/api/data/v9.2/"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Methods that change nothing: their failures are never ambiguous.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Transport errors raised before anything reached the server: the CRM cannot be reached.
_UNREACHABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)
_API_PREFIX = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]+/api/data/v9\.\d+/", re.IGNORECASE)


def api_relative(link: str) -> str:
    """A next/delta link relative to the Web API root, so that a stored link outlives a change
    of the server's address (an org renamed or moved; the demo emulator's port) — the token in
    it is what matters, not the host it was handed out by."""
    return _API_PREFIX.sub("", link, count=1)


ODATA_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
}
MESSAGE_ID_BATCH = 50
#: The e-mail activity's subject column takes 800 characters (Dataverse's and the emulator's):
#: a longer one is cut rather than refused.
EMAIL_SUBJECT_MAX = 800
LOOKUP_ANNOTATIONS = (
    'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname,'
    'OData.Community.Display.V1.FormattedValue"'
)


class CrmClient:
    """The Web API of one organisation. ``base_url`` is the org root
    (``https://org.crm.dynamics.com`` or the emulator's ``http://127.0.0.1:PORT``)."""

    def __init__(
        self,
        base_url: str,
        auth: CrmAuth,
        *,
        timeout: float = 30.0,
        get_retries: int = 2,
        max_retry_wait: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | str | bool = True,
        throttle: Throttle | None = None,
        throttle_retries: int = 8,
        deadline: float | None = None,
    ) -> None:
        """``verify``: True (the system's CAs), or a CA file (PEM) / SSL context to trust, for
        an on-premises CRM or the emulator with a private CA. ``throttle``: the gate every
        request passes (a new one by default); ``throttle_retries``: how often one GET is sent
        again after 429s before the error is raised. ``timeout`` bounds each read or write;
        ``deadline`` a whole request, body included (:class:`DeadlineTransport`, its default
        when None), so that a server trickling its answer cannot hold a sync."""
        self.base_url = base_url.rstrip("/")
        self.api_url = self.base_url + API_PATH
        self.origin = origin_of(httpx.URL(self.api_url))
        self.auth = auth
        self.get_retries = get_retries
        self.max_retry_wait = max_retry_wait
        self.throttle = throttle or Throttle()
        self.throttle_retries = throttle_retries
        context = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        if transport is None:
            proxy = environment_proxy(self.api_url)
            transport = DeadlineTransport(deadline=deadline, verify=context, proxy=proxy)
        self._http = httpx.Client(
            base_url=self.api_url,
            auth=auth,
            headers=ODATA_HEADERS,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            verify=context,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CrmClient({self.base_url!r}, {self.auth.describe()})"

    def interactive(self, max_wait: float | None = None) -> AbstractContextManager[None]:
        """``with crm.interactive():`` — this thread's requests in the block are the user's
        (Track now, the regarding picker): served before background ones, and raising
        :class:`~core.crm.throttle.CrmThrottled` at once (nothing sent) rather than waiting
        longer than ``max_wait`` seconds for the CRM's Retry-After to pass."""
        return self.throttle.interactive(max_wait)

    # -- wire ------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request through the throttle's gate, classified. GETs retry on transient
        failures and, after waiting at the gate, on 429s."""
        extra = dict(headers or {})
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False, default=json_default).encode()
            extra.setdefault("Content-Type", "application/json; charset=utf-8")
        attempts = 1 + (self.get_retries if method == "GET" else 0)
        attempt = throttled = 0
        last_429: CrmThrottled | None = None
        while True:
            try:
                outcome = self._exchange(method, url, params, extra, content)
            except CrmThrottled:
                if last_429 is not None:
                    raise last_429 from None  # the CRM's own 429 rather than the gate's refusal
                raise
            if isinstance(outcome, httpx.Response):
                return outcome
            error, wait = outcome, min(self.max_retry_wait, 0.2 * 2**attempt)
            if isinstance(error, CrmThrottled):
                last_429 = error
                throttled += 1
                if method != "GET" or throttled > self.throttle_retries:
                    raise error
                continue  # the next exchange waits at the gate until Retry-After has passed
            if not isinstance(error, CrmUnavailable):
                raise error
            if error.status is not None:
                wait = error.retry_after if error.retry_after is not None else 0.2 * 2**attempt
                if wait > self.max_retry_wait:
                    raise error
            attempt += 1
            if attempt >= attempts:
                raise error
            log.info("%s %s unavailable (%s); retrying in %.1fs", method, url, error, wait)
            time.sleep(wait)

    def _exchange(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        content: bytes | None,
    ) -> httpx.Response | CrmError:
        """Send once, holding a slot of the gate (waiting for it; raises ``CrmThrottled``
        when the gate stays closed too long), and tell the throttle how it went. Returns the
        response, or the error it is classified as."""
        with self.throttle.slot(method, url):
            try:
                # params=None keeps a nextLink/deltaLink byte for byte (merging re-encodes).
                request = self._http.build_request(
                    method, url, params=params or None, headers=headers, content=content
                )
                self._same_origin(request.url, "a request", method)
                response = self._http.send(request)
            except httpx.TransportError as exc:
                return _transport_error(exc, method, url)
            log.debug("%s %s -> %s", method, safe_url(request.url), response.status_code)
            if response.status_code in _REDIRECTS:
                return self._redirect_error(response, method)
            if response.status_code < 400 or response.status_code == 304:
                self.throttle.succeeded()
                return response
            error = _per_request(error_for(response, method, safe_url(request.url)))
            if not isinstance(error, CrmThrottled):
                self.throttle.succeeded()  # answered, not throttled
                return error
            error.retry_after = self.throttle.throttled(error.retry_after)
            log.info(
                "%s %s throttled (%s); the CRM asked to wait %.1fs",
                method,
                url,
                error.limit or error.code or error.status,
                error.retry_after,
            )
            return error

    def _same_origin(self, url: httpx.URL, what: str, method: str | None = None) -> None:
        """Raise ``CrmForeignOrigin`` unless ``url`` is on the configured CRM's origin: every
        request carries the CRM's credentials, so a link the CRM hands out (a next or delta
        link) is followed only to the CRM itself."""
        if url.is_absolute_url or url.host:
            origin = origin_of(url)
            if origin != self.origin:
                raise CrmForeignOrigin(origin, what=what, method=method)

    def _link(self, body: Mapping[str, Any], key: str) -> str | None:
        """The ``@odata.nextLink`` / ``@odata.deltaLink`` of a page, checked to be on the
        CRM's origin before anything follows or stores it."""
        link = body.get(key)
        if link is None:
            return None
        if not isinstance(link, str) or not link:
            raise CrmProtocolError(f"{key} is not a link", url=self.api_url)
        self._same_origin(httpx.URL(link), key, "GET")
        return link

    def _redirect_error(self, response: httpx.Response, method: str) -> CrmError:
        """Redirects are not followed (``follow_redirects=False``): the credentials must not
        travel to where the CRM points. One to another origin is named as such; one on the
        CRM's own origin is a protocol error (the Web API does not redirect)."""
        where = safe_url(response.request.url)
        location = response.headers.get("Location", "")
        try:
            target = response.request.url.join(location)
        except httpx.InvalidURL:
            target = None
        if target is not None and origin_of(target) != self.origin:
            return CrmForeignOrigin(origin_of(target), what="a redirect", method=method)
        return CrmProtocolError(
            f"unexpected redirect to {safe_url(target) if target is not None else location!r}",
            method=method,
            url=where,
            status=response.status_code,
        )

    def _send_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> dict[str, Any]:
        """``_send`` then ``_json``. A GET whose answer cannot be read is asked again, like
        any transient failure of a GET; a write never is (the outbox retries writes)."""
        attempt = 0
        while True:
            response = self._send(method, url, params=params, headers=headers, json_body=json_body)
            try:
                return self._json(response)
            except CrmRequestFailed as error:
                if method not in _SAFE_METHODS or attempt >= self.get_retries:
                    raise
                wait = min(self.max_retry_wait, 0.2 * 2**attempt)
                attempt += 1
                log.info(
                    "%s %s unreadable answer (%s); retrying in %.1fs", method, url, error, wait
                )
                time.sleep(wait)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        """The answer's JSON object. Not JSON at all (garbled on its way, see the module
        docstring): ``CrmRequestFailed``, for a write ``CrmAmbiguousResponse``."""
        if response.status_code == 204 or not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            method = response.request.method
            unreadable = CrmRequestFailed if method in _SAFE_METHODS else CrmAmbiguousResponse
            raise unreadable(
                f"response is not JSON: {exc}",
                method=method,
                url=safe_url(response.request.url),
                status=response.status_code,
            ) from None
        if not isinstance(body, dict):
            raise CrmProtocolError(
                "response is not a JSON object", url=safe_url(response.request.url)
            )
        return body

    # -- generic OData ---------------------------------------------------------------------

    def get(
        self,
        entity_set: str,
        id: str,
        *,
        select: Sequence[str] | None = None,
        expand: str | None = None,
        annotations: bool = False,
    ) -> dict[str, Any]:
        params: dict[str, str] = {}
        if select:
            params["$select"] = ",".join(select)
        if expand:
            params["$expand"] = expand
        headers = {"Prefer": LOOKUP_ANNOTATIONS} if annotations else None
        return self._send_json("GET", f"{entity_set}({id})", params=params, headers=headers)

    def query_pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        expand: str | None = None,
        page_size: int | None = None,
        annotations: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a collection query, following ``@odata.nextLink`` unchanged."""
        params: dict[str, str] = {}
        if select:
            params["$select"] = ",".join(select)
        if filter:
            params["$filter"] = filter
        if orderby:
            params["$orderby"] = orderby
        if top is not None:
            params["$top"] = str(top)
        if expand:
            params["$expand"] = expand
        headers = {"Prefer": self._prefer(page_size=page_size, annotations=annotations)}
        url: str | None = entity_set
        while url is not None:
            body = self._send_json("GET", url, params=params, headers=headers)
            yield list(body.get("value", []))
            url = self._link(body, "@odata.nextLink")
            params = {}  # the next link carries every option

    def query(self, entity_set: str, **options: Any) -> Iterator[dict[str, Any]]:
        """Rows of a collection query across pages (options as ``query_pages``)."""
        for page in self.query_pages(entity_set, **options):
            yield from page

    def track_changes_pages(
        self,
        entity_set: str,
        select: Sequence[str],
        delta_link: str | None = None,
        *,
        page_size: int | None = None,
        annotations: bool | str = False,
    ) -> Iterator[DeltaPage]:
        """Stream a change-tracking read: a full read with ``Prefer: odata.track-changes``
        when ``delta_link`` is None, else the changes since it (or the rest of a read from
        one of its pages' ``next_link``). The last page carries the new delta link. Raises
        CrmPermanentError when the token has expired."""
        headers = {
            "Prefer": self._prefer(page_size=page_size, track_changes=True, annotations=annotations)
        }
        url: str | None
        params: dict[str, str] = {}
        if delta_link is None:
            url = entity_set
            params["$select"] = ",".join(select)
        else:
            url = api_relative(delta_link)  # a stored link rebased on this CRM
            self._same_origin(httpx.URL(url), "the stored delta link", "GET")
        while url is not None:
            body = self._send_json("GET", url, params=params, headers=headers)
            params = {}
            rows: list[dict[str, Any]] = []
            deleted: list[str] = []
            for item in body.get("value", []):
                if is_deleted(item):
                    deleted.append(str(item.get("id", "")).lower())
                else:
                    rows.append(item)
            url = self._link(body, "@odata.nextLink")
            link = None if url else self._link(body, "@odata.deltaLink")
            if link is not None:
                link = api_relative(link)
            if url is None and link is None:
                raise CrmProtocolError(
                    "change-tracking response without @odata.deltaLink", url=entity_set
                )
            yield DeltaPage(rows, deleted, link, api_relative(url) if url else None)

    def track_changes(
        self,
        entity_set: str,
        select: Sequence[str],
        delta_link: str | None = None,
        *,
        page_size: int | None = None,
        annotations: bool | str = False,
    ) -> DeltaResult:
        rows: list[dict[str, Any]] = []
        deleted: list[str] = []
        link = ""
        for page in self.track_changes_pages(
            entity_set, select, delta_link, page_size=page_size, annotations=annotations
        ):
            rows.extend(page.rows)
            deleted.extend(page.deleted)
            link = page.delta_link or link
        return DeltaResult(rows, deleted, link)

    def create(self, entity_set: str, data: Mapping[str, Any]) -> str:
        """Create a record; returns its id (from OData-EntityId, Location or the body)."""
        response = self._send("POST", entity_set, json_body=dict(data))
        for header in ("OData-EntityId", "Location"):
            value = response.headers.get(header)
            if value and (found := entity_id_from_url(value)):
                return found
        body = self._json(response)
        for key, value in body.items():
            if key.endswith("id") and isinstance(value, str) and looks_like_guid(value):
                return value.lower()
        raise CrmProtocolError(
            "create answered without the new record's id",
            url=entity_set,
            status=response.status_code,
        )

    def update(
        self,
        entity_set: str,
        id: str,
        data: Mapping[str, Any],
        *,
        if_match: str | None = "*",
    ) -> None:
        """PATCH a record. ``if_match="*"`` (default) refuses to create a missing record
        (404) instead of upserting; pass an etag for optimistic concurrency, None to upsert."""
        headers = {"If-Match": if_match} if if_match else None
        # The answer is read, not only its status: a 2xx whose body is garbage (a captive
        # portal, a broken proxy) does not prove the CRM did it (CrmAmbiguousResponse).
        self._send_json("PATCH", f"{entity_set}({id})", json_body=dict(data), headers=headers)

    def delete(self, entity_set: str, id: str) -> None:
        self._send_json("DELETE", f"{entity_set}({id})")

    def execute_action(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        bound_to: str | None = None,
    ) -> dict[str, Any]:
        """POST an action. ``bound_to`` is ``emails`` (collection-bound) or ``emails(<id>)``
        (entity-bound); the action is then addressed as ``Microsoft.Dynamics.CRM.<name>``."""
        path = f"{bound_to}/Microsoft.Dynamics.CRM.{name}" if bound_to else name
        return self._send_json("POST", path, json_body=dict(params or {}))

    def call_function(self, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET a function with its parameters passed as aliases (``Name(P=@p1)?@p1=…``)."""
        params = dict(params or {})
        aliases = {f"@p{i}": literal(v) for i, v in enumerate(params.values(), start=1)}
        inner = ",".join(f"{k}=@p{i}" for i, k in enumerate(params, start=1))
        return self._send_json("GET", f"{name}({inner})", params=aliases)

    def batch(
        self,
        requests: Sequence[BatchRequest],
        *,
        change_set: bool = False,
    ) -> list[BatchResponse]:
        """Send several operations in one ``$batch``. In a change set they succeed or fail
        together (one error response); otherwise each item carries its own outcome."""
        boundary = f"batch_{uuid.uuid4()}"
        body = encode_batch(requests, boundary, API_PATH, change_set=change_set)
        response = self._send(
            "POST",
            "$batch",
            content=body,
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
        )
        return parse_batch(response, API_PATH)

    def batch_all(self, requests: Sequence[BatchRequest]) -> list[BatchResponse]:
        """Send many independent operations in ``$batch`` requests sized by the throttle
        (AIMD: 10 at first, larger after each answered batch, halved after a 429; a throttled
        batch ran nothing and is sent again after Retry-After). Answers in request order."""
        return send_in_batches(self.batch, requests, self.throttle, retries=self.throttle_retries)

    # -- CRM messages ----------------------------------------------------------------------

    def who_am_i(self) -> WhoAmI:
        body = self._send_json("GET", "WhoAmI")
        try:
            return WhoAmI(
                user_id=str(body["UserId"]).lower(),
                business_unit_id=str(body["BusinessUnitId"]).lower(),
                organization_id=str(body["OrganizationId"]).lower(),
            )
        except KeyError as exc:
            raise CrmProtocolError(f"WhoAmI answered without {exc}", url="WhoAmI") from None

    def deliver_promote_email(
        self,
        *,
        message_id: str,
        subject: str,
        sender: Address | str,
        to: Sequence[Address | str],
        cc: Sequence[Address | str] = (),
        bcc: Sequence[Address | str] = (),
        received_on: datetime | None,
        body: str,
        attachments: Sequence[Attachment] = (),
        extra_properties: Mapping[str, Any] | None = None,
        submitted_by: str | None = None,
        importance: str | None = None,
    ) -> str:
        """ "Track in CRM": the CRM creates (or, for a Message-ID it already has, returns)
        the e-mail activity. Returns its id (``EmailId``)."""
        params: dict[str, Any] = {
            "MessageId": message_id,
            "Subject": subject[:EMAIL_SUBJECT_MAX],
            "From": addr(sender),
            "To": addr_list(to),
            "Cc": addr_list(cc),
            "Bcc": addr_list(bcc),
            "ReceivedOn": received_on.isoformat() if received_on else None,
            "Body": body,
            "Attachments": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.activitymimeattachment",
                    "filename": a.filename,
                    "mimetype": a.mimetype,
                    "body": b64(a.content),
                }
                for a in attachments
            ],
        }
        if submitted_by is not None:
            params["SubmittedBy"] = submitted_by
        if importance is not None:
            params["Importance"] = importance
        if extra_properties:
            params["ExtraProperties"] = {
                "@odata.type": "Microsoft.Dynamics.CRM.email",
                **extra_properties,
            }
        params = {k: v for k, v in params.items() if v is not None}
        result = self.execute_action("DeliverPromoteEmail", params, bound_to="emails")
        email_id = result.get("EmailId") or result.get("activityid")
        if not isinstance(email_id, str) or not looks_like_guid(email_id):
            raise CrmProtocolError(
                "DeliverPromoteEmail answered without EmailId", url="DeliverPromoteEmail"
            )
        return email_id.lower()

    def find_emails_by_message_id(
        self, ids: Sequence[str], *, batch_size: int = MESSAGE_ID_BATCH
    ) -> dict[str, EmailInfo]:
        """Which of these Message-IDs the CRM has as e-mail activities (anyone's). Sent as
        ``$filter`` with ``or``, ``batch_size`` ids per request. Keys are the ids as given;
        when the CRM holds several activities for one id, the oldest wins."""
        wanted = list(dict.fromkeys(i for i in ids if i))
        by_lower = {i.lower(): i for i in wanted}
        found: dict[str, EmailInfo] = {}
        select = [
            "activityid",
            "messageid",
            "subject",
            "statuscode",
            "_regardingobjectid_value",
            "_ownerid_value",
            "createdon",
        ]
        for start in range(0, len(wanted), batch_size):
            chunk = wanted[start : start + batch_size]
            filter_ = " or ".join(f"messageid eq {odata_string(i)}" for i in chunk)
            for row in self.query(
                "emails", select=select, filter=filter_, orderby="createdon asc", annotations=True
            ):
                # The CRM compares strings case-insensitively; map back to the caller's id.
                key = by_lower.get(str(row.get("messageid") or "").lower())
                if key is None or key in found:
                    continue
                found[key] = EmailInfo(
                    activity_id=str(row["activityid"]).lower(),
                    message_id=str(row.get("messageid")),
                    regarding=lookup_ref(row, "regardingobjectid"),
                    owner_id=lower(row.get("_ownerid_value")),
                    subject=str(row.get("subject") or ""),
                    status_code=row.get("statuscode"),
                )
        return found

    def delete_email(self, activity_id: str) -> None:
        self.delete("emails", activity_id)

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _prefer(
        *,
        page_size: int | None = None,
        annotations: bool | str = False,
        track_changes: bool = False,
    ) -> str:
        """``annotations``: True for lookup names and formatted values, or the exact
        ``odata.include-annotations`` list (fewer annotations, smaller pages)."""
        parts = []
        if page_size:
            parts.append(f"odata.maxpagesize={int(page_size)}")
        if isinstance(annotations, str) and annotations:
            parts.append(f'odata.include-annotations="{annotations}"')
        elif annotations:
            parts.append(LOOKUP_ANNOTATIONS)
        if track_changes:
            parts.append("odata.track-changes")
        return ",".join(parts)


def origin_of(url: httpx.URL) -> str:
    """``scheme://host:port`` of a URL, the port made explicit (``https://x`` and
    ``https://x:443`` are one origin)."""
    scheme = url.scheme.lower()
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(scheme)
    host = url.host.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"


def _transport_error(exc: httpx.TransportError, method: str, url: str) -> CrmUnavailable:
    """A failure below HTTP, classified: the connection could not be made (the CRM cannot be
    reached: plain ``CrmUnavailable``), or it broke once the request was on its way (a reset,
    a read timeout, a truncated body: ``CrmRequestFailed``, ambiguous for a write)."""
    text = f"{type(exc).__name__}: {exc}"
    if _untrusted(exc):
        return CrmCertificateError(text, method=method, url=url)
    if isinstance(exc, _UNREACHABLE):
        return CrmUnavailable(text, method=method, url=url)
    if method in _SAFE_METHODS or isinstance(exc, httpx.PoolTimeout):  # nothing was sent
        return CrmRequestFailed(text, method=method, url=url)
    return CrmAmbiguousResponse(text, method=method, url=url)


def _per_request(error: CrmError) -> CrmError:
    """A 5xx is one request failing, not the CRM being away (a gateway in front of it, one
    overloaded node): ``CrmRequestFailed``, ambiguous for a write. Others as classified."""
    if type(error) is not CrmUnavailable or error.status is None or error.status < 500:
        return error
    method = error.method or ""
    failed = CrmRequestFailed if method in _SAFE_METHODS else CrmAmbiguousResponse
    return failed(
        error.message,
        retry_after=error.retry_after,
        method=error.method,
        url=error.url,
        status=error.status,
    )


def _untrusted(exc: BaseException) -> bool:
    """Whether a transport error comes from a TLS certificate the system does not trust (by
    the type of an error in its chain: httpx wraps the ``ssl`` error it met)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


__all__ = ["API_PATH", "CrmClient", "entity_id_from_url", "lookup_ref", "odata_string"]
