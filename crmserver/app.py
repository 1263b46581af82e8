"""The Starlette application: settings, the service objects one organisation needs, and the
routes as data (no module state: two apps in one process do not share anything)."""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import Api
from .auth import Authenticator
from .batch import Batch
from .entities import ENTITIES
from .errors import (
    ODataError,
    http_exception_handler,
    odata_error_handler,
    unexpected_error_handler,
)
from .metadata import Metadata
from .records import Records
from .storage import Storage


@dataclass
class Settings:
    """How to run one emulator instance.

    ``db_path``: the organisation's SQLite file (created when missing).
    ``seed``: ``"demo"`` fills an empty database with the demo organisation.
    ``max_request_bytes``: larger bodies are answered with 413.
    ``owner_only``: user-owned entities (e.g. ``("lead",)``) that only their owner and
    administrators may read; by default customer records are readable organisation-wide.
    """

    db_path: str | Path
    seed: str | None = None
    max_request_bytes: int = 32 * 1024 * 1024
    owner_only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        allowed = {
            e.logical for e in ENTITIES.values() if e.ownership == "user" and not e.is_activity
        }
        for name in self.owner_only:
            if name not in allowed:
                raise ValueError(
                    f"Setting 'owner_only' has value {name!r}. Expected one of "
                    f"{', '.join(sorted(allowed))}."
                )
        if self.seed not in (None, "", "demo"):
            raise ValueError(f"Setting 'seed' has value {self.seed!r}. Expected 'demo' or None.")
        if not isinstance(self.max_request_bytes, int) or self.max_request_bytes <= 0:
            raise ValueError(
                f"Setting 'max_request_bytes' has value "
                f"{self.max_request_bytes!r}. Not a positive integer."
            )


class Service:
    """Everything a request handler needs, built once per app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = Storage(settings.db_path)
        self.records = Records(self.storage, frozenset(settings.owner_only))
        self.auth = Authenticator(self.storage)
        self.metadata = Metadata(self)
        self.batch = Batch(self)
        self.api = Api(self)
        if settings.seed == "demo":
            from .seed import seed_demo

            seed_demo(self.storage)


def create_app(settings: Settings, *, middleware: Sequence[Middleware] = ()) -> Starlette:
    """Build the emulator for one organisation database; ``middleware`` wraps it (outermost
    first), e.g. the service protection limits."""
    service = Service(settings)

    async def api(request: Request) -> Response:
        return await service.api.dispatch(request)

    async def token(request: Request) -> Response:
        return await service.auth.token_endpoint(request)

    async def record_page(request: Request) -> Response:
        from .pages import record_page as render

        return await render(service, request)

    async def root(request: Request) -> Response:
        return Response(
            f"<!doctype html><title>trackbox-crm</title><p>trackbox-crm: the "
            f"Web API is at <code>{html.escape(str(request.base_url))}api/data/"
            f"v9.2/</code>.</p>",
            media_type="text/html; charset=utf-8",
        )

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    routes = [
        Route("/", root, methods=["GET"]),
        Route("/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/main.aspx", record_page, methods=["GET"]),
        Route("/api/data/v{version}", api, methods=methods),
        Route("/api/data/v{version}/", api, methods=methods),
        Route("/api/data/v{version}/{rest:path}", api, methods=methods),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.storage.close()

    app = Starlette(
        routes=routes,
        exception_handlers={
            ODataError: odata_error_handler,
            HTTPException: http_exception_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
        middleware=list(middleware),
    )
    app.state.service = service
    return app
