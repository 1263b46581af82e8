"""Wire-level helpers of the Web API client: OData literals, entity ids, lookup columns, and
the one place where HTTP responses are classified into ``core.crm.errors``."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from core.crm.errors import CrmAuthError, CrmError, CrmPermanentError, CrmUnavailable
from core.crm.throttle import CrmThrottled, throttle_limit
from core.domain.model import Address, RecordRef

_GUID = re.compile(
    r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)\s*$"
)
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


def entity_id_from_url(url: str) -> str | None:
    """The GUID at the end of an ``OData-EntityId`` URL (``…/contacts(<guid>)``)."""
    match = _GUID.search(url)
    return match.group(1).lower() if match else None


def odata_string(value: str) -> str:
    """A quoted OData string literal (``'`` doubled)."""
    return "'" + value.replace("'", "''") + "'"


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    """The CRM's ``error.code`` and ``error.message``, tolerating any body."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return "", response.reason_phrase or ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", response.reason_phrase or ""
    return str(error.get("code") or ""), str(error.get("message") or response.reason_phrase)


def error_for(response: httpx.Response, method: str, url: str) -> CrmError:
    """Classify a non-success response (also used for the parts of a ``$batch``): 429 or a
    Dataverse service protection code is :class:`~core.crm.throttle.CrmThrottled` (a
    ``CrmUnavailable``)."""
    status = response.status_code
    code, message = _error_fields(response)
    if status == 401:
        return CrmAuthError(message, method=method, url=url, status=status)
    if status == 429 or throttle_limit(code) is not None:
        # Service protection: nothing ran; the client's gate waits Retry-After.
        return CrmThrottled(
            message,
            retry_after=retry_after(response),
            code=code,
            method=method,
            url=url,
            status=status,
        )
    if status in _TRANSIENT_STATUS:
        return CrmUnavailable(
            message, retry_after=retry_after(response), method=method, url=url, status=status
        )
    return CrmPermanentError(message, code=code, method=method, url=url, status=status)


def safe_url(url: httpx.URL) -> str:
    """The URL without its query (filters may hold addresses; keep logs lean)."""
    return str(url.copy_with(query=None))


def lookup_ref(row: Mapping[str, Any], attribute: str) -> RecordRef | None:
    """A lookup column (``_<attribute>_value`` + annotations) as a RecordRef."""
    value = row.get(f"_{attribute}_value")
    if not value:
        return None
    key = f"_{attribute}_value"
    entity = row.get(f"{key}@Microsoft.Dynamics.CRM.lookuplogicalname") or ""
    name = row.get(f"{key}@OData.Community.Display.V1.FormattedValue") or ""
    return RecordRef(str(entity), str(value).lower(), str(name))


def is_deleted(item: Mapping[str, Any]) -> bool:
    context = str(item.get("@odata.context", ""))
    return context.endswith("$deletedEntity") or (item.get("reason") == "deleted" and "id" in item)


def looks_like_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def lower(value: Any) -> str | None:
    return str(value).lower() if value else None


def addr(value: Address | str) -> str:
    return value.email if isinstance(value, Address) else value


def addr_list(values: Sequence[Address | str]) -> str:
    return ";".join(addr(v) for v in values)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def literal(value: Any) -> str:
    """An OData literal for a function parameter alias."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, Mapping | list):
        return json.dumps(value, default=json_default)
    if isinstance(value, datetime):
        return value.isoformat()
    return odata_string(str(value))
