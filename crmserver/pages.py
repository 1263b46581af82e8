"""The read-only record page at the Dynamics record-URL shape: filled in below."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from .errors import ODataError

if TYPE_CHECKING:
    from .app import Service


async def record_page(service: Service, request: Request) -> Response:
    raise ODataError(501, "0x8006088a", "The record page is not implemented yet.")
