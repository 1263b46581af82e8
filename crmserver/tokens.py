"""Signed tokens: the organisation's RS256 signing key (made once per database and kept in
storage), access and ID tokens as JWTs shaped like Microsoft Entra's, their verification for the
Web API, and the hashes under which codes and refresh tokens are stored.

Access tokens are for the resource R (the server's root URL): ``aud`` is R, ``scp`` is
``user_impersonation`` for a user (``idtyp`` ``app`` and no ``scp`` for an application), ``oid``
is the system user; or, as Entra issues them from the same sign-in, for Microsoft Graph
(``aud`` ``https://graph.microsoft.com``, ``scp`` its permissions), which the Web API refuses.
ID tokens are for the client: ``aud`` is its client id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .storage import Storage

ALGORITHM = "RS256"


def secret_hash(value: str) -> str:
    """How a code or refresh token is stored and looked up (never the value itself)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def client_info(user_id: str, tenant_id: str) -> str:
    """Entra's ``client_info``: base64url JSON ``{"uid", "utid"}``."""
    return b64url(json.dumps({"uid": user_id, "utid": tenant_id}).encode())


@dataclass(frozen=True)
class Principal:
    """The user a token is about."""

    user_id: str
    email: str
    name: str


@dataclass(frozen=True)
class Audience:
    """Where a token is minted: the resource root R, the issuer, the tenant, the client."""

    root: str
    issuer: str
    tenant_id: str
    client_id: str
    adfs: bool = False


class InvalidToken(Exception):
    """A bearer token that the Web API refuses; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningKey:
    """An RSA key with its ``kid`` (the RFC 7638 thumbprint of its public JWK)."""

    def __init__(self, private: rsa.RSAPrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        numbers = self.public.public_numbers()
        self.jwk_fields = {
            "e": b64url(_int_bytes(numbers.e)),
            "kty": "RSA",
            "n": b64url(_int_bytes(numbers.n)),
        }
        canonical = json.dumps(self.jwk_fields, separators=(",", ":"), sort_keys=True)
        self.kid = b64url(hashlib.sha256(canonical.encode()).digest())

    def jwk(self) -> dict[str, str]:
        return {**self.jwk_fields, "use": "sig", "alg": ALGORITHM, "kid": self.kid}


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


class TokenIssuer:
    """Mints and verifies the organisation's JWTs. The key is loaded (or made) on first use."""

    def __init__(self, storage: Storage, *, access_lifetime: int, clock_skew: int) -> None:
        self.storage = storage
        self.access_lifetime = access_lifetime
        self.clock_skew = clock_skew
        self._key: SigningKey | None = None
        self._lock = threading.Lock()

    def key(self) -> SigningKey:
        with self._lock:
            if self._key is None:
                self._key = self._load_or_make()
            return self._key

    def _load_or_make(self) -> SigningKey:
        row = self.storage.signing_key()
        if row is None:
            made = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = made.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii")
            self.storage.add_signing_key(SigningKey(made).kid, pem, time.time())
            row = self.storage.signing_key()
            assert row is not None
        loaded = serialization.load_pem_private_key(row["private_pem"].encode(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise TypeError("The stored signing key is not an RSA key.")
        return SigningKey(loaded)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key().jwk()]}

    def _sign(self, claims: dict[str, Any]) -> str:
        key = self.key()
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})

    def access_token(
        self,
        audience: Audience,
        principal: Principal,
        *,
        app_only: bool,
        now: float,
        resource: str | None = None,
        scp: str = "user_impersonation",
        roles: tuple[str, ...] = (),
    ) -> str:
        """An access token for ``resource`` (default: this server, R) with the delegated
        permissions ``scp`` (unprefixed, space separated; none for an application) or, for an
        application, the application permissions ``roles`` (Graph's ``Mail.ReadWrite``...)."""
        issued = int(now)
        claims: dict[str, Any] = {
            "aud": resource or audience.root,
            "iss": audience.issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.access_lifetime,
            "sub": _pairwise(audience, principal),
            "oid": principal.user_id,
            "tid": audience.tenant_id,
            "azp": audience.client_id,
            "appid": audience.client_id,
            "idtyp": "app" if app_only else "user",
            "jti": str(uuid.uuid4()),
            "ver": "2.0",
        }
        if app_only and roles:
            claims["roles"] = list(roles)
        if not app_only:
            claims.update(
                scp=scp,
                preferred_username=principal.email,
                upn=principal.email,
                unique_name=principal.email,
                name=principal.name,
            )
        return self._sign(claims)

    def id_token(
        self,
        audience: Audience,
        principal: Principal,
        *,
        nonce: str | None,
        auth_time: float,
        now: float,
    ) -> str:
        issued = int(now)
        claims: dict[str, Any] = {
            "aud": audience.client_id,
            "iss": audience.issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + 3600,
            "sub": _pairwise(audience, principal),
            "oid": principal.user_id,
            "tid": audience.tenant_id,
            "preferred_username": principal.email,
            "name": principal.name,
            "auth_time": int(auth_time),
            "ver": "1.0" if audience.adfs else "2.0",
        }
        if audience.adfs:
            claims.update(upn=principal.email, unique_name=principal.email)
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def verify_access_token(
        self, token: str, *, root: str, issuers: Collection[str]
    ) -> dict[str, Any]:
        """The claims of a valid access token for ``root``; raises :class:`InvalidToken`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("The access token is malformed.") from exc
        key = self.key()
        if header.get("kid") != key.kid or header.get("alg") != ALGORITHM:
            raise InvalidToken("The access token is not signed by this organisation.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=[root, root + "/"],
                issuer=issuers,
                leeway=self.clock_skew,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "oid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("The access token has expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("The access token is for another resource.") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("The access token is invalid.") from exc
        if not isinstance(claims.get("oid"), str):
            raise InvalidToken("The access token names no user.")
        return claims


def _pairwise(audience: Audience, principal: Principal) -> str:
    """Entra's ``sub``: stable per user and client, and different for each client."""
    seed = f"{audience.tenant_id}:{audience.client_id}:{principal.user_id}".encode()
    return b64url(hashlib.sha256(seed).digest())
