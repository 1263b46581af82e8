"""Bearer tokens for the fake Graph server, checked as Graph checks them: an RS256 JWT signed
by a key in the authority's JWKS (found through its OpenID Connect discovery document, over
HTTPS), from its issuer, not expired, for Graph (``aud``), with the delegated scopes (``scp``)
the request needs. The mailbox of ``/me`` is the token's ``preferred_username`` (or ``upn``).
An app-only token (``idtyp`` app, client credentials) carries application permissions
(``roles``) instead and reaches any mailbox through ``/users/{address}``, never ``/me``.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from tests.fakes.graph_store import GraphError

GRAPH_AUDIENCES = (
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000",
)
CLOCK_SKEW = 60


def unauthenticated(message: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )


def access_denied() -> GraphError:
    return GraphError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


@dataclass(frozen=True)
class Caller:
    """Who a valid token is for, and what it may do."""

    user: str
    scopes: frozenset[str]
    #: An app-only token (client credentials): ``scopes`` are its application permissions
    #: (``roles``), ``user`` is empty, it reaches every mailbox through ``/users/{address}``.
    app: bool = False

    def require(self, *any_of: str) -> None:
        """403 unless the token has one of ``any_of`` (a broader scope implies a narrower)."""
        if not self.scopes & set(any_of):
            raise access_denied()


class TokenVerifier:
    """Verifies tokens against one authority (``https://host/<tenant>``); its discovery
    document and keys are fetched once, then again when a token names an unknown key."""

    def __init__(self, authority: str, ca_file: str | None) -> None:
        self.authority = authority.rstrip("/")
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else True
        )
        self._lock = threading.Lock()
        self._issuer = ""
        self._keys: dict[str, Any] = {}

    def _refresh(self) -> None:
        with httpx.Client(verify=self._verify, timeout=30) as client:
            config = client.get(f"{self.authority}/v2.0/.well-known/openid-configuration")
            config.raise_for_status()
            document = config.json()
            keys = client.get(document["jwks_uri"])
            keys.raise_for_status()
        self._issuer = str(document["issuer"])
        self._keys = {k["kid"]: jwt.PyJWK(k).key for k in keys.json()["keys"]}

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys:
                self._refresh()
            return self._keys.get(kid)

    def caller(self, authorization: str | None) -> Caller:
        """The caller of a request with this ``Authorization`` header; raises a 401."""
        if not authorization:
            raise unauthenticated("Access token is empty.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("Access token is empty.")
        try:
            header = jwt.get_unverified_header(token.strip())
        except jwt.PyJWTError as exc:
            raise unauthenticated("IDX14100: JWT is not well formed.") from exc
        key = self._key(str(header.get("kid", "")))
        if key is None or header.get("alg") != "RS256":
            raise unauthenticated("Access token validation failure: unknown signing key.")
        claims = self._claims(token.strip(), key)
        if claims.get("idtyp") == "app":
            roles = claims.get("roles")
            if not isinstance(roles, list) or not roles:
                raise unauthenticated("Access token validation failure: no roles for an app.")
            return Caller("", frozenset(str(r) for r in roles), app=True)
        user = claims.get("preferred_username") or claims.get("upn")
        if not isinstance(user, str) or "@" not in user:
            raise unauthenticated("Access token names no user.")
        scopes = frozenset(str(claims.get("scp", "")).split())
        return Caller(user.lower(), scopes)

    def _claims(self, token: str, key: Any) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=list(GRAPH_AUDIENCES),
                issuer=self._issuer,
                leeway=CLOCK_SKEW,
                options={"require": ["exp", "nbf", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthenticated("Lifetime validation failed, the token is expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise unauthenticated("Access token validation failure. Invalid audience.") from exc
        except jwt.InvalidIssuerError as exc:
            raise unauthenticated("Access token validation failure. Invalid issuer.") from exc
        except jwt.PyJWTError as exc:
            raise unauthenticated(f"Access token validation failure: {exc}.") from exc
        return claims
