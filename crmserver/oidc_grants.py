"""``/token``: reads the client's credentials, hands the request to its grant, and answers
with the token response or an OAuth error. The grants that redeem what an earlier sign-in
stored live here: ``authorization_code`` (single use, same redirect URI, PKCE checked; a
replayed code revokes what it gave) and ``refresh_token`` (rotated: each is good once, and a
replayed one revokes its whole family)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import oauth_errors as codes
from .auth import BASIC_CHALLENGE
from .authorities import ADFS, Authority
from .oauth_clients import OAuthClient, Scope, consent_required, parse_scope, stored_scope
from .oauth_errors import OAuthError, oauth_error_response
from .oidc_context import (
    NO_STORE,
    GrantRequest,
    SignInContext,
    client_auth,
    missing,
    read_form,
)
from .oidc_credential_grants import client_credentials_grant, password_grant
from .oidc_device import DEVICE_CODE_GRANT, device_grant
from .oidc_issue import issue
from .tokens import b64url, secret_hash

Grant = Callable[[GrantRequest], Awaitable[dict[str, Any]]]


async def token(ctx: SignInContext, request: Request, segment: str | None) -> Response:
    """The token endpoint; ``segment`` None is the tenant-less legacy one, whose leniency
    the client credentials and password grants keep."""
    basic = False
    try:
        authority = ctx.authority(request, segment)
        fields = await read_form(request)
        auth = client_auth(request, fields)
        basic = auth.basic
        grant = fields.get("grant_type", "")
        if not grant:
            raise missing("grant_type")
        handler = GRANTS.get(grant)
        if handler is None:
            raise OAuthError(
                "unsupported_grant_type",
                codes.UNSUPPORTED_GRANT,
                f"The grant type '{grant}' is not supported.",
            )
        body = await handler(GrantRequest(ctx, request, authority, fields, auth, segment is None))
    except OAuthError as err:
        if err.status == 401 and basic:
            err.headers.setdefault("WWW-Authenticate", BASIC_CHALLENGE)
        return oauth_error_response(err, request)
    ctx.purge(time.time())
    return JSONResponse(body, headers=NO_STORE)


async def code_grant(grant: GrantRequest) -> dict[str, Any]:
    """``authorization_code``: redeem a code from ``/authorize`` once."""
    ctx, request, authority, fields, auth, legacy = grant.unpacked()
    client = ctx.registered_client(auth)
    code = fields.get("code", "")
    if not code:
        raise missing("code")
    code_hash = secret_hash(code)
    row = _usable_code(ctx, authority, client, code_hash, fields)
    granted = stored_scope(row["scope"])
    scope = _asked(grant, granted)
    if not ctx.storage.redeem_auth_code(code_hash):
        _code_replayed(ctx, row)
    body, family = issue(
        ctx,
        authority,
        client.client_id,
        ctx.principal(row["user_id"]),
        scope,
        consent=granted,
        nonce=row["nonce"],
        auth_time=row["auth_time"],
        refresh="offline_access" in granted.oidc,
        with_client_info=fields.get("client_info") == "1",
    )
    if family is not None:
        ctx.storage.set_auth_code_family(code_hash, family)
    return body


def _usable_code(
    ctx: SignInContext,
    authority: Authority,
    client: OAuthClient,
    code_hash: str,
    fields: dict[str, str],
) -> dict[str, Any]:
    """The stored code, checked: this client's, this authority's, unused, unexpired, for
    the same redirect URI and with the PKCE verifier of its challenge."""
    row = ctx.storage.auth_code(code_hash)
    if row is None or row["client_id"] != client.client_id:
        raise OAuthError(
            "invalid_grant", codes.INVALID_GRANT, "The provided authorization code is invalid."
        )
    if (row["authority"] == ADFS) != authority.adfs:
        raise OAuthError(
            "invalid_grant",
            codes.OTHER_TENANT,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        )
    if row["used"]:
        _code_replayed(ctx, row)
    if row["expires"] < time.time():
        raise OAuthError(
            "invalid_grant", codes.EXPIRED, "The provided authorization code has expired."
        )
    if fields.get("redirect_uri", "") != row["redirect_uri"]:
        raise OAuthError(
            "invalid_grant",
            codes.CODE_REDIRECT_MISMATCH,
            "The reply address does not match the reply address provided when requesting "
            "the authorization code.",
        )
    _check_verifier(row["code_challenge"], fields.get("code_verifier", ""))
    return row


def _check_verifier(challenge: str | None, verifier: str) -> None:
    """PKCE: the verifier must hash to the challenge, and there is none without one."""
    if challenge:
        expected = b64url(_sha256(verifier)) if verifier else ""
        if not verifier or not hmac.compare_digest(expected, challenge):
            raise OAuthError(
                "invalid_grant",
                codes.PKCE_MISMATCH,
                "The code_verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )
    elif verifier:
        raise OAuthError(
            "invalid_grant",
            codes.PKCE_MISMATCH,
            "A code_verifier was sent, but the authorization request had no code_challenge.",
        )


def _code_replayed(ctx: SignInContext, row: dict[str, Any]) -> None:
    """A code used twice: what it gave is revoked (RFC 6749 section 4.1.2)."""
    if row.get("family_id"):
        ctx.storage.revoke_token_family(row["family_id"])
    raise OAuthError(
        "invalid_grant",
        codes.CODE_REDEEMED,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code "
        "or use an existing refresh token.",
    )


async def refresh_grant(grant: GrantRequest) -> dict[str, Any]:
    """``refresh_token``: a new token response, the refresh token rotated in its family."""
    ctx, request, authority, fields, auth, legacy = grant.unpacked()
    client = ctx.registered_client(auth)
    token = fields.get("refresh_token", "")
    if not token:
        raise missing("refresh_token")
    token_hash = secret_hash(token)
    row = _usable_refresh_token(ctx, authority, client, token_hash)
    granted = stored_scope(row["scope"])
    scope = _asked(grant, granted, add_oidc=True)
    principal = ctx.principal(row["user_id"])
    if not ctx.storage.rotate_refresh_token(token_hash):
        _refresh_replayed(ctx, row["family_id"])
    body, _ = issue(
        ctx,
        authority,
        client.client_id,
        principal,
        scope,
        consent=granted,
        auth_time=row["auth_time"],
        family_id=row["family_id"],
        refresh=True,
        with_client_info=fields.get("client_info") == "1",
    )
    return body


def _asked(grant: GrantRequest, granted: Scope, *, add_oidc: bool = False) -> Scope:
    """The scope a code or refresh token is redeemed for: the request's resource items
    (else all it was granted), which the consent must cover, checked before the code or
    token is used up. The OpenID Connect scopes are the grant's (and the request's too when
    ``add_oidc``)."""
    authority = grant.authority
    asked = parse_scope(
        grant.fields.get("scope", ""), authority.root, required=False, graph=not authority.adfs
    )
    oidc = granted.oidc | asked.oidc if add_oidc else granted.oidc
    scope = Scope(oidc, asked.resource or granted.resource)
    if not granted.covers(scope):
        raise consent_required(grant.auth.client_id, scope)
    return scope


def _usable_refresh_token(
    ctx: SignInContext, authority: Authority, client: OAuthClient, token_hash: str
) -> dict[str, Any]:
    """The stored refresh token, checked: this client's, live, unused and this authority's."""
    row = ctx.storage.refresh_token(token_hash)
    if row is None or row["client_id"] != client.client_id:
        raise OAuthError("invalid_grant", codes.MALFORMED, "The provided refresh token is invalid.")
    if row["revoked"]:
        raise OAuthError("invalid_grant", codes.REVOKED, "The refresh token has been revoked.")
    if row["used"]:
        _refresh_replayed(ctx, row["family_id"])
    if row["expires"] < time.time():
        raise OAuthError(
            "invalid_grant",
            codes.REFRESH_EXPIRED,
            "The refresh token has expired due to inactivity.",
        )
    if (row["authority"] == ADFS) != authority.adfs:
        raise OAuthError(
            "invalid_grant",
            codes.OTHER_TENANT,
            "The refresh token was issued by another authority.",
        )
    return row


def _refresh_replayed(ctx: SignInContext, family_id: str) -> None:
    """A refresh token used twice: every token of its sign-in is revoked."""
    ctx.storage.revoke_token_family(family_id)
    raise OAuthError(
        "invalid_grant",
        codes.REVOKED,
        "The refresh token was already used; every token of this sign-in is revoked.",
    )


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("ascii", "replace")).digest()


GRANTS: dict[str, Grant] = {
    "authorization_code": code_grant,
    "refresh_token": refresh_grant,
    DEVICE_CODE_GRANT: device_grant,
    "client_credentials": client_credentials_grant,
    "password": password_grant,
}
