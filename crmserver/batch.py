"""``$batch``: filled in below."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from .errors import ODataError
from .records import Caller

if TYPE_CHECKING:
    from .app import Service


class Batch:
    def __init__(self, service: Service) -> None:
        self.service = service

    async def handle(self, request: Request, caller: Caller, base: str) -> Response:
        raise ODataError(501, "0x8006088a", "$batch is not implemented yet.")
