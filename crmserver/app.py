"""The Starlette application: settings, the service objects one organisation needs, and the
routes as data (no module state: two apps in one process do not share anything)."""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import discovery
from .api import Api
from .auth import Authenticator
from .authorities import ADFS
from .batch import Batch
from .entities import ENTITIES
from .errors import (
    ODataError,
    http_exception_handler,
    odata_error_handler,
    unexpected_error_handler,
)
from .metadata import Metadata
from .oauth_clients import register_default_clients
from .oidc import SignIn
from .records import Records
from .storage import Storage
from .tokens import TokenIssuer


@dataclass
class Settings:
    """How to run one emulator instance.

    ``db_path``: the organisation's SQLite file (created when missing).
    ``seed``: ``"demo"`` fills an empty database with the demo organisation.
    ``max_request_bytes``: larger bodies are answered with 413.
    ``owner_only``: user-owned entities (e.g. ``("lead",)``) that only their owner and
    administrators may read; by default customer records are readable organisation-wide.

    Sign-in (seconds): ``access_token_lifetime``, ``refresh_token_lifetime`` (each refresh
    token; rotation makes a new one), ``clock_skew`` (how far past ``exp`` / before ``nbf`` the
    Web API still accepts an access token), ``device_code_lifetime`` and
    ``device_poll_interval`` (the device flow). Password guessing:
    ``signin_failure_limit`` failures per account, or ``signin_address_failure_limit`` per
    client address, lock further attempts for ``signin_lockout_seconds``, doubling with each
    further failure.
    """

    db_path: str | Path
    seed: str | None = None
    max_request_bytes: int = 32 * 1024 * 1024
    owner_only: tuple[str, ...] = ()
    access_token_lifetime: int = 3600
    refresh_token_lifetime: int = 90 * 24 * 3600
    clock_skew: int = 60
    device_code_lifetime: int = 900
    device_poll_interval: int = 5
    signin_failure_limit: int = 5
    signin_address_failure_limit: int = 20
    signin_lockout_seconds: float = 30.0

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
        for name in (
            "max_request_bytes",
            "access_token_lifetime",
            "refresh_token_lifetime",
            "device_code_lifetime",
            "device_poll_interval",
            "signin_failure_limit",
            "signin_address_failure_limit",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Setting {name!r} has value {value!r}. Not a positive integer.")
        if not isinstance(self.clock_skew, int) or self.clock_skew < 0:
            raise ValueError(
                f"Setting 'clock_skew' has value {self.clock_skew!r}. Not a whole number of "
                "seconds (0 or more)."
            )
        lockout = self.signin_lockout_seconds
        if not isinstance(lockout, int | float) or isinstance(lockout, bool) or lockout <= 0:
            raise ValueError(
                f"Setting 'signin_lockout_seconds' has value {lockout!r}. Not a positive number."
            )


class Service:
    """Everything a request handler needs, built once per app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = Storage(settings.db_path)
        self.records = Records(self.storage, frozenset(settings.owner_only))
        self.tokens = TokenIssuer(
            self.storage,
            access_lifetime=settings.access_token_lifetime,
            clock_skew=settings.clock_skew,
        )
        self.auth = Authenticator(self.storage, self.tokens)
        self.metadata = Metadata(self)
        self.batch = Batch(self)
        self.api = Api(self)
        if settings.seed == "demo":
            from .seed import seed_demo

            seed_demo(self.storage)
        register_default_clients(self.storage)
        self.signin = SignIn(self)


def _per_tenant(
    handler: Callable[[Request, str], Awaitable[Response]], segment: str | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint under ``/{tenant}/…`` (or of the fixed authority ``segment``)."""

    async def endpoint(request: Request) -> Response:
        return await handler(request, segment or request.path_params["tenant"])

    return endpoint


async def _root(request: Request) -> Response:
    """A pointer to the Web API for someone who opens the server's root in a browser."""
    return Response(
        f"<!doctype html><title>trackbox-crm</title><p>trackbox-crm: the "
        f"Web API is at <code>{html.escape(str(request.base_url))}api/data/"
        f"v9.2/</code>.</p>",
        media_type="text/html; charset=utf-8",
    )


def _authority_routes(service: Service) -> list[Route]:
    """Sign-in and discovery of the AD FS-style and Entra-style authorities (MSAL's paths)."""
    signin = service.signin

    async def legacy_token(request: Request) -> Response:
        return await signin.token(request, None)

    async def configuration(request: Request, segment: str) -> Response:
        return await discovery.configuration(service, request, segment)

    async def keys(request: Request, segment: str) -> Response:
        return await discovery.keys(service, request, segment)

    form, post = ["GET", "POST"], ["POST"]
    return [
        # the AD FS-style authority R/adfs (MSAL uses no v2.0 paths there)
        Route("/adfs/.well-known/openid-configuration", _per_tenant(configuration, ADFS)),
        Route("/adfs/oauth2/authorize", _per_tenant(signin.authorize, ADFS), methods=form),
        Route("/adfs/oauth2/authorize/", _per_tenant(signin.authorize, ADFS), methods=form),
        Route("/adfs/oauth2/token", _per_tenant(signin.token, ADFS), methods=post),
        Route("/adfs/oauth2/token/", _per_tenant(signin.token, ADFS), methods=post),
        Route("/adfs/oauth2/devicecode", _per_tenant(signin.devicecode, ADFS), methods=post),
        Route("/adfs/oauth2/revoke", _per_tenant(signin.revoke, ADFS), methods=post),
        Route("/adfs/discovery/keys", _per_tenant(keys, ADFS)),
        # Entra-style authorities R/<tenant-id>, R/organizations, R/common
        Route("/oauth2/v2.0/token", legacy_token, methods=post),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", _per_tenant(configuration)),
        Route("/{tenant}/.well-known/openid-configuration", _per_tenant(configuration)),
        Route("/{tenant}/oauth2/v2.0/authorize", _per_tenant(signin.authorize), methods=form),
        Route("/{tenant}/oauth2/v2.0/token", _per_tenant(signin.token), methods=post),
        Route("/{tenant}/oauth2/v2.0/devicecode", _per_tenant(signin.devicecode), methods=post),
        Route("/{tenant}/oauth2/v2.0/revoke", _per_tenant(signin.revoke), methods=post),
        Route("/{tenant}/discovery/v2.0/keys", _per_tenant(keys)),
        Route("/devicelogin", signin.devicelogin, methods=form),
    ]


def _service_routes(service: Service) -> list[Route]:
    """Global discovery, the record page links open, and the Web API itself."""

    async def api(request: Request) -> Response:
        return await service.api.dispatch(request)

    async def instances(request: Request) -> Response:
        return await discovery.instances(service, request)

    async def record_page(request: Request) -> Response:
        from .pages import record_page as render

        return await render(service, request)

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    return [
        Route("/api/discovery/v2.0/Instances", instances, methods=["GET"]),
        Route("/main.aspx", record_page, methods=["GET"]),
        Route("/api/data/v{version}", api, methods=methods),
        Route("/api/data/v{version}/", api, methods=methods),
        Route("/api/data/v{version}/{rest:path}", api, methods=methods),
    ]


def create_app(settings: Settings, *, middleware: Sequence[Middleware] = ()) -> Starlette:
    """Build the emulator for one organisation database; ``middleware`` wraps it (outermost
    first), e.g. the service protection limits."""
    service = Service(settings)
    routes = [
        Route("/", _root, methods=["GET"], name="root"),
        *_authority_routes(service),
        *_service_routes(service),
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
