"""The OAuth 2.0 / OpenID Connect endpoints that make the emulator a sign-in authority MSAL
for Python signs in against unchanged (see :mod:`crmserver.authorities` for the URLs).
:class:`SignIn` is what the routes call; each flow lives in its own module:

- :mod:`crmserver.oidc_authorize`: ``/authorize``, the sign-in page and its codes.
- :mod:`crmserver.oidc_grants`: ``/token`` and the ``authorization_code`` and rotated
  ``refresh_token`` grants; :mod:`crmserver.oidc_credential_grants`: ``client_credentials``
  and ``password``.
- :mod:`crmserver.oidc_device`: ``/devicecode``, its grant and the verification page.
- :mod:`crmserver.oidc_revoke`: ``/revoke`` (RFC 7009).
- :mod:`crmserver.oidc_issue`: the token responses; :mod:`crmserver.oidc_context`: the
  state and checks they share.

Failed passwords are slowed by :class:`~crmserver.signin_throttle.SigninThrottle`. Codes,
refresh tokens and user codes are stored as hashes; nothing here logs a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from . import oidc_authorize, oidc_device, oidc_grants, oidc_revoke
from .authorities import Authority
from .oidc_context import SignInContext

if TYPE_CHECKING:
    from .app import Service


class SignIn:
    """The sign-in endpoints of one organisation, as the routes and discovery see them."""

    def __init__(self, service: Service) -> None:
        self.context = SignInContext(service)

    def authority(self, request: Request, segment: str | None) -> Authority:
        return self.context.authority(request, segment)

    async def authorize(self, request: Request, segment: str) -> Response:
        return await oidc_authorize.authorize(self.context, request, segment)

    async def token(self, request: Request, segment: str | None) -> Response:
        return await oidc_grants.token(self.context, request, segment)

    async def devicecode(self, request: Request, segment: str) -> Response:
        return await oidc_device.devicecode(self.context, request, segment)

    async def devicelogin(self, request: Request) -> Response:
        return await oidc_device.devicelogin(self.context, request)

    async def revoke(self, request: Request, segment: str) -> Response:
        return await oidc_revoke.revoke(self.context, request, segment)
