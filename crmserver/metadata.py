"""Service document, ``$metadata`` and EntityDefinitions: filled in below."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from .entities import ENTITIES
from .errors import ODataError
from .http import Segment, json_response

if TYPE_CHECKING:
    from .app import Service


class Metadata:
    def __init__(self, service: Service) -> None:
        self.service = service

    def service_document(self, base: str) -> Response:
        return json_response({
            "@odata.context": f"{base}/$metadata",
            "value": [{"name": e.set_name, "kind": "EntitySet", "url": e.set_name}
                      for e in ENTITIES.values()]})

    async def csdl(self, request: Request) -> Response:
        raise ODataError(501, "0x8006088a", "$metadata is not implemented yet.")

    def entity_definitions(self, request: Request, base: str, segments: list[Segment]
                           ) -> Response:
        raise ODataError(501, "0x8006088a", "EntityDefinitions is not implemented yet.")
