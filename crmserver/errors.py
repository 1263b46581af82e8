"""One HTTP error type for the emulator, rendered as the Dataverse OData error body.

Every failure a client can cause ends here as ``{"error": {"code": "0x…", "message": "…"}}``
with the status Dataverse uses; unexpected exceptions become a 500 with the same body and no
stack trace (the traceback goes to the server log only).
"""

from __future__ import annotations

import http
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("crmserver")

# Dataverse error codes (see reference section 2); the code is unrelated to the status.
INVALID_ARGUMENT = "0x80040203"
NOT_FOUND = "0x80040217"
PRECONDITION_FAILED = "0x80060882"
PRIVILEGE_DENIED = "0x80040220"
QUERY_SYNTAX = "0x80060888"
NOT_SUPPORTED = "0x8006088a"
DUPLICATE = "0x80040237"
UNAUTHORIZED = "0x80040229"
TOO_LARGE = "0x8004f014"
METHOD_NOT_ALLOWED = "0x8006088a"
INTERNAL = "0x80040216"


class ODataError(Exception):
    """An error answered to the client: HTTP status, Dataverse code and a message.

    ``message`` defaults to the HTTP reason phrase, as Starlette's HTTPException does.
    """

    def __init__(
        self,
        status: int,
        code: str = "",
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message if message is not None else http.HTTPStatus(status).phrase
        self.headers = headers or {}
        super().__init__(self.message)


def bad_request(message: str, code: str = INVALID_ARGUMENT) -> ODataError:
    return ODataError(400, code, message)


def not_found(logical: str, key: object) -> ODataError:
    return ODataError(404, NOT_FOUND, f"{logical} With Id = {key} Does Not Exist")


def forbidden(message: str) -> ODataError:
    return ODataError(403, PRIVILEGE_DENIED, message)


def error_response(err: ODataError) -> Response:
    headers = {"OData-Version": "4.0", **err.headers}
    return JSONResponse(
        {"error": {"code": err.code, "message": err.message}},
        status_code=err.status,
        headers=headers,
    )


async def odata_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ODataError)
    return error_response(exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 for paths outside the OData router."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", None)
    code = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}.get(status, "")
    return error_response(ODataError(status, code, str(detail) if detail else None))


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(ODataError(500, INTERNAL, "An unexpected error occurred."))


def conflict(message: str, code: str = DUPLICATE) -> ODataError:
    """409: the change would duplicate a value that must be unique (a user's address)."""
    return ODataError(409, code, message)
