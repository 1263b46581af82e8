"""Errors of the sign-in endpoints, answered in Microsoft Entra's shape.

A token-endpoint error is JSON ``{"error", "error_description", "error_codes", "timestamp",
"trace_id", "correlation_id"}`` whose description starts with the ``AADSTS`` code,
as Entra's does (clients log and show it). The correlation id is the client's
``client-request-id`` header when it sent a GUID (MSAL does).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse

# AADSTS codes used here (Microsoft's numbers, so that clients and people recognise them).
TENANT_NOT_FOUND = 90002
CLIENT_NOT_FOUND = 700016
REDIRECT_MISMATCH = 50011
CODE_REDIRECT_MISMATCH = 500112
MISSING_PARAMETER = 900144
INVALID_SCOPE = 70011
RESOURCE_NOT_FOUND = 500011
PKCE_REQUIRED = 9002325
PKCE_MISMATCH = 501481
INVALID_GRANT = 70000
CODE_REDEEMED = 54005
EXPIRED = 70008
OTHER_TENANT = 700005
BAD_PASSWORD = 50126
USER_DISABLED = 50057
LOCKED_OUT = 50053
PENDING = 70016
DEVICE_CODE_EXPIRED = 70019
DECLINED = 65004
UNSUPPORTED_GRANT = 70003
UNSUPPORTED_RESPONSE_TYPE = 70005
BAD_SECRET = 7000215
PUBLIC_CLIENT_SECRET = 700025
NOT_PUBLIC_CLIENT = 7000218
REVOKED = 50173
REFRESH_EXPIRED = 700082
MALFORMED = 9002313
LOGIN_REQUIRED = 50058
TOO_LARGE = 90056


class OAuthError(Exception):
    """An OAuth error: ``error`` (RFC 6749 code), ``code`` (AADSTS number), ``description``,
    the HTTP ``status`` and extra ``headers`` (e.g. ``Retry-After``)."""

    def __init__(
        self,
        error: str,
        code: int,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.error = error
        self.code = code
        self.description = description
        self.status = status
        self.headers = headers or {}

    @property
    def text(self) -> str:
        return f"AADSTS{self.code}: {self.description}"


def tenant_not_found(tenant: str) -> OAuthError:
    return OAuthError(
        "invalid_request",
        TENANT_NOT_FOUND,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud.",
    )


def correlation_id(request: Request) -> str:
    given = request.headers.get("client-request-id", "")
    try:
        return str(uuid.UUID(given))
    except ValueError:
        return str(uuid.uuid4())


def oauth_error_response(err: OAuthError, request: Request) -> JSONResponse:
    trace, correlation = str(uuid.uuid4()), correlation_id(request)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": err.error,
        "error_description": f"{err.text} Trace ID: {trace} Correlation ID: {correlation} "
        f"Timestamp: {stamp}",
        "error_codes": [err.code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
    }
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **err.headers}
    return JSONResponse(body, status_code=err.status, headers=headers)
