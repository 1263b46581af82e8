"""Which sign-in authority a URL names, and where its endpoints are.

The root R is the server's URL as the client sees it (``request.base_url``, which honours
``--public-url`` and trusted forwarded headers). Authorities: ``R/<tenant-id>``,
``R/organizations``, ``R/common`` (Entra-style, v2.0 endpoints) and ``R/adfs`` (AD FS-style:
MSAL recognises AD FS by that path and then fetches ``R/adfs/.well-known/openid-configuration``).
Any other tenant is unknown (Entra's AADSTS90002).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from .oauth_errors import tenant_not_found
from .tokens import Audience

ORGANIZATIONS = "organizations"
COMMON = "common"
ADFS = "adfs"


def root_of(request: Request) -> str:
    """R: ``scheme://host[:port]`` (plus a path prefix, if any), without a trailing slash."""
    return str(request.base_url).rstrip("/")


def accepted_issuers(root: str, tenant_id: str) -> tuple[str, ...]:
    """The issuers the Web API accepts in access tokens."""
    return (f"{root}/{tenant_id}/v2.0", f"{root}/{ADFS}")


@dataclass(frozen=True)
class Authority:
    root: str
    segment: str
    tenant_id: str

    @property
    def adfs(self) -> bool:
        return self.segment == ADFS

    @property
    def base(self) -> str:
        return f"{self.root}/{self.segment}"

    @property
    def issuer(self) -> str:
        """The ``iss`` of the tokens minted here."""
        return self.base if self.adfs else f"{self.root}/{self.tenant_id}/v2.0"

    @property
    def discovery_issuer(self) -> str:
        """The issuer the discovery document names: for the multi-tenant aliases Entra
        writes a ``{tenantid}`` placeholder."""
        if self.segment in (ORGANIZATIONS, COMMON):
            return f"{self.root}/{{tenantid}}/v2.0"
        return self.issuer

    def _endpoint(self, v2: str, adfs: str) -> str:
        return f"{self.base}/{adfs if self.adfs else v2}"

    @property
    def authorization_endpoint(self) -> str:
        return self._endpoint("oauth2/v2.0/authorize", "oauth2/authorize/")

    @property
    def token_endpoint(self) -> str:
        return self._endpoint("oauth2/v2.0/token", "oauth2/token/")

    @property
    def device_authorization_endpoint(self) -> str:
        return self._endpoint("oauth2/v2.0/devicecode", "oauth2/devicecode")

    @property
    def revocation_endpoint(self) -> str:
        return self._endpoint("oauth2/v2.0/revoke", "oauth2/revoke")

    @property
    def jwks_uri(self) -> str:
        return self._endpoint("discovery/v2.0/keys", "discovery/keys")

    @property
    def verification_uri(self) -> str:
        return f"{self.root}/devicelogin"

    def audience(self, client_id: str) -> Audience:
        return Audience(self.root, self.issuer, self.tenant_id, client_id, adfs=self.adfs)


def resolve(request: Request, segment: str | None, tenant_id: str) -> Authority:
    """The authority of a request: ``segment`` is the tenant path segment (``None`` for the
    tenant-less legacy token endpoint: this organisation). Raises ``OAuthError`` (AADSTS90002)
    for a tenant that is not this organisation's."""
    root = root_of(request)
    if segment is None:
        return Authority(root, tenant_id, tenant_id)
    lowered = segment.lower()
    if lowered in (ORGANIZATIONS, COMMON, ADFS):
        return Authority(root, lowered, tenant_id)
    if lowered == tenant_id.lower():
        return Authority(root, tenant_id, tenant_id)
    raise tenant_not_found(segment)
