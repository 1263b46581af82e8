"""Discovery documents: the OpenID Connect configuration of each authority (Entra's v2.0
shape, or AD FS's), the signing keys (JWKS), and Dataverse's Global Discovery Service
(``GET R/api/discovery/v2.0/Instances``: the environments the signed-in user can reach, here
this one organisation).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .authorities import Authority, root_of
from .oauth_errors import OAuthError, oauth_error_response

if TYPE_CHECKING:
    from .app import Service

#: The Dataverse version the emulator answers like.
VERSION = "9.2.0.0"
REGION = "local"
CLAIMS = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "nonce",
    "oid",
    "tid",
    "name",
    "preferred_username",
    "upn",
]


def openid_configuration(a: Authority) -> dict[str, Any]:
    common = {
        "issuer": a.discovery_issuer,
        "authorization_endpoint": a.authorization_endpoint,
        "token_endpoint": a.token_endpoint,
        "device_authorization_endpoint": a.device_authorization_endpoint,
        "revocation_endpoint": a.revocation_endpoint,
        "jwks_uri": a.jwks_uri,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post"],
        "claims_supported": CLAIMS,
        "request_uri_parameter_supported": False,
    }
    if a.adfs:
        return {
            **common,
            "access_token_issuer": a.issuer,
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "password",
                "urn:ietf:params:oauth:grant-type:device_code",
                "device_code",
            ],
            "scopes_supported": ["openid", "profile", "email", "user_impersonation", "allatclaims"],
            "microsoft_multi_refresh_token": True,
            "capabilities": [],
        }
    return {
        **common,
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "client_credentials",
            "password",
        ],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": REGION,
        "cloud_instance_name": "trackbox-crm",
    }


async def configuration(service: Service, request: Request, segment: str) -> Response:
    try:
        authority = service.signin.authority(request, segment)
    except OAuthError as err:
        err.error = "invalid_tenant"
        return oauth_error_response(err, request)
    return JSONResponse(openid_configuration(authority), headers={"Cache-Control": "max-age=3600"})


async def keys(service: Service, request: Request, segment: str) -> Response:
    try:
        service.signin.authority(request, segment)
    except OAuthError as err:
        err.error = "invalid_tenant"
        return oauth_error_response(err, request)
    return JSONResponse(service.tokens.jwks(), headers={"Cache-Control": "max-age=3600"})


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower()) or "org"


async def instances(service: Service, request: Request) -> Response:
    """Global Discovery: a bearer token is required (as the real service requires)."""
    service.auth.authenticate(request, bearer_only=True)
    org = service.storage.organization()
    root = root_of(request)
    found = []
    if org is not None:
        org_id = str(org["organizationid"])
        found.append(
            {
                "Id": org_id,
                "UniqueName": f"org{org_id.replace('-', '')[:8]}",
                "UrlName": _slug(str(org.get("name") or "")),
                "FriendlyName": org.get("name") or "",
                "State": 0,
                "Version": VERSION,
                "Url": root,
                "ApiUrl": root,
                "TenantId": service.storage.tenant_id(),
                "EnvironmentId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"environment:{org_id}")),
                "Region": REGION,
                "LastUpdated": org.get("modifiedon") or org.get("createdon"),
            }
        )
    return JSONResponse(
        {"@odata.context": f"{root}/api/discovery/v2.0/$metadata#Instances", "value": found},
        headers={"OData-Version": "4.0"},
    )
